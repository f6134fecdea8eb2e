/**
 * Which of the addresses the Services ask for each one may have, in claims
 * mode, kept free of I/O. Every tenant who may create a Service can write
 * any address into its `spec.externalIPs`, and a tenant's own controller may
 * write its LoadBalancer's `status.loadBalancer.ingress`; neither may take
 * what belongs to another tenant. An address a Service asks for is admitted
 * when:
 *  - it is an IP address, and the address policy allows it for the
 *    Service's namespace with the prefix it comes up with;
 *  - it is in no IpClaimPool's ranges, or in those of a pool that serves the
 *    Service's namespace (`pool-namespace`);
 *  - no Service of another namespace holds it (`taken`). The holder is, in
 *    this order: a Service its IpClaim records (`status.services`, written by
 *    the scheduler only), the Service the scheduler gave it to moments ago,
 *    the oldest Service asking. Services of one namespace may share an
 *    address (they belong to one tenant), but not a port on it
 *    (`port-clash`), and two LoadBalancers only with one sharing key
 *    (`not-shared`, lib/pools.ts's sharingRefusal).
 * Each Service is read on its own: one that cannot be read is refused whole,
 * and the others go on.
 */
import type * as k8s from '@kubernetes/client-node';
import type {AddressPolicy, Refused} from './policy.js';
import {canonicalIp} from './ipnet.js';
import {type PoolView, type ServiceView, dhcpKey, poolHolding, serviceView, sharingRefusal} from './pools.js';

export interface TenancyInput {
  policy: AddressPolicy;
  pools: readonly PoolView[];
  /** Address -> the Services its IpClaim records as holders ("namespace/name"). */
  holders: ReadonlyMap<string, readonly string[]>;
  /** Address -> the Service the scheduler gave it to moments ago. */
  recent?: ReadonlyMap<string, string>;
  lbClass: string;
  mask: number;
  mask6: number;
  /** LoadBalancers asking for 0.0.0.0 get a lease from the segment's DHCP server (--lb-dhcp). */
  dhcp?: boolean;
}

export interface Admitted {
  /** Each Service extip reads, with `refused` set to the addresses it may not have. */
  views: ServiceView[];
  /** "ip/prefix" -> the Services admitted to it, in the order they hold it; a DHCP lease's key (agent/claims.ts's dhcpKey) -> its Service. */
  wanted: Map<string, string[]>;
  invalid: Refused[];
}

interface Ask {
  view: ServiceView & {refused: Set<string>};
  uid?: string;
  created: string;
  value: string;
  ip: string;
  cidr: string;
}

export function admit(services: readonly k8s.V1Service[], input: TenancyInput): Admitted {
  const invalid: Refused[] = [];
  const views: ServiceView[] = [];
  const asks: Ask[] = [];
  const dhcpWanted = new Map<string, string[]>();
  const ordered = [...services].sort((a, b) => created(a).localeCompare(created(b)) || key(a).localeCompare(key(b)));
  for (const s of ordered) {
    const service = key(s);
    const uid = s.metadata?.uid;
    let view: ServiceView;
    try {
      view = serviceView(s, input.lbClass);
    } catch (err) {
      invalid.push({service, uid, value: '(the Service)', rule: 'not-an-ip', reason: `the Service cannot be read: ${(err as Error).message}`});
      continue;
    }
    const refused = new Set<string>();
    const held: ServiceView & {refused: Set<string>} = {...view, refused};
    views.push(held);
    // A LoadBalancer leased from DHCP: its ingress is the lease, the holder's to check; it wants its lease.
    if (view.dhcp) {
      const asked = view.dhcp === 4 ? '0.0.0.0' : '::';
      if (view.dhcp === 6) {
        invalid.push({service, uid, value: asked, rule: 'unspecified', reason: `${asked} (${view.requestedFrom}) asks for an IPv6 lease from a DHCP server, which extip does not take: its DHCP client, busybox's udhcpc, has no DHCPv6; name an address or ask a pool instead`});
      } else if (!input.dhcp) {
        invalid.push({service, uid, value: asked, rule: 'unspecified', reason: `${asked} (${view.requestedFrom}) asks for a lease from the segment's DHCP server, which extip takes only with extip_lb_dhcp: true (the scheduler's --lb-dhcp)`});
      } else dhcpWanted.set(dhcpKey(service), [service]);
    }
    const entries = [...view.externalIPs, ...(view.lb && !view.dhcp ? view.ingress : [])];
    for (const value of new Set(entries)) {
      const c = canonicalIp(value);
      const no = (rule: Refused['rule'], reason: string) => {
        invalid.push({service, uid, value, rule, reason});
        refused.add('ip' in c ? c.ip : value);
      };
      if ('refused' in c) {
        no('not-an-ip', `"${value}" is ${c.refused}`);
        continue;
      }
      const prefix = c.family === 4 ? input.mask : input.mask6;
      const policy = input.policy.check(c.ip, view.namespace, prefix);
      if (policy) {
        no(policy.rule, policy.reason);
        continue;
      }
      const pool = poolHolding(c.ip, input.pools);
      if (pool?.namespaces && !pool.namespaces.includes(view.namespace)) {
        no('pool-namespace', `${c.ip} is an address of IpClaimPool ${pool.name}, which serves only namespace${pool.namespaces.length > 1 ? 's' : ''} ${pool.namespaces.join(', ')}`);
        continue;
      }
      asks.push({view: held, uid, created: created(s), value, ip: c.ip, cidr: `${c.ip}/${prefix}`});
    }
  }
  // Who holds each address: one namespace at a time.
  const byIp = new Map<string, Ask[]>();
  for (const a of asks) {
    const list = byIp.get(a.ip);
    if (list) list.push(a);
    else byIp.set(a.ip, [a]);
  }
  const wanted = new Map<string, string[]>();
  for (const [ip, list] of byIp) {
    const keys = new Set(list.map((a) => a.view.key));
    const holder =
      (input.holders.get(ip) ?? []).find((k) => keys.has(k)) ??
      [input.recent?.get(ip)].find((k): k is string => k !== undefined && keys.has(k)) ??
      list[0].view.key;
    // The holder first, then the others as they came: each may share with those admitted before it.
    const admitted: Ask[] = [];
    for (const a of [...list.filter((x) => x.view.key === holder), ...list.filter((x) => x.view.key !== holder)]) {
      const refusal = admitted.filter((b) => b.view.key !== a.view.key).map((b) => sharingRefusal(b.view, a.view)).find((r) => r !== undefined);
      if (refusal) {
        invalid.push({service: a.view.key, uid: a.uid, value: a.value, rule: refusal.rule, reason: `${ip} is ${refusal.reason}`});
        a.view.refused.add(a.ip);
        continue;
      }
      admitted.push(a);
      const users = wanted.get(a.cidr) ?? [];
      if (!users.includes(a.view.key)) users.push(a.view.key);
      wanted.set(a.cidr, users);
    }
  }
  // The holder first: claims record the Services in this order.
  for (const [cidr, users] of wanted) {
    const ip = cidr.split('/')[0];
    const recorded = input.holders.get(ip) ?? [];
    users.sort((a, b) => rank(recorded, a) - rank(recorded, b));
    wanted.set(cidr, users);
  }
  for (const [k, users] of dhcpWanted) wanted.set(k, users);
  return {views, wanted, invalid};
}

/** Address -> the Services its IpClaim records as holding it (status.services, the holder first). */
export function claimHolders(claims: ReadonlyArray<{spec?: {cidr?: unknown}; status?: {services?: unknown}}>): Map<string, string[]> {
  const holders = new Map<string, string[]>();
  for (const c of claims) {
    const ip = canonicalIp(String(c.spec?.cidr ?? '').split('/')[0]);
    const services = c.status?.services;
    if ('ip' in ip && Array.isArray(services)) holders.set(ip.ip, services.map(String));
  }
  return holders;
}

function rank(recorded: readonly string[], service: string): number {
  const i = recorded.indexOf(service);
  return i < 0 ? recorded.length : i;
}

function key(s: k8s.V1Service): string {
  return `${s.metadata?.namespace}/${s.metadata?.name}`;
}

function created(s: k8s.V1Service): string {
  const t = s.metadata?.creationTimestamp as unknown;
  return t instanceof Date ? t.toISOString() : typeof t === 'string' ? t : '';
}
