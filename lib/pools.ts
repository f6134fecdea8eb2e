/**
 * Address allocation from IpClaimPools, the cloud-provider way, kept free of
 * I/O. Two kinds of Service ask for addresses:
 *  - annotated `external-ip: auto` (upstream's annotation): one is appended
 *    to `spec.externalIPs`, unless one of those is already in a pool;
 *  - `type: LoadBalancer` with no `loadBalancerClass` or extip's own class:
 *    one address a family it asks for is written to
 *    `status.loadBalancer.ingress` (one family for `SingleStack`, both in the
 *    order of `spec.ipFamilies` for `PreferDualStack` and
 *    `RequireDualStack`), or the addresses it names (extip's annotations,
 *    MetalLB's or kube-vip's, or `spec.loadBalancerIP`), each when a pool
 *    holds it and it is free.
 * LoadBalancers of one namespace with one sharing key (SHARING_ANNOTATIONS)
 * and no port in common may share an address: one that asks for another's
 * address, or has none of a family that another already has, gets it.
 * A pool with `spec.namespaces` serves only Services in those namespaces;
 * a pool gives addresses of its CIDR's family. It records each address it
 * gave in `spec.allocated` (address -> the claim's name, as upstream does).
 * An allocation no Service uses any more is released, except one made
 * moments ago whose Service update may not have been seen yet.
 */
import {type Family, canonicalIp, formatIp, ipFamily, isCidr, parseCidr, parseIp} from './ipnet.js';

type Json = Record<string, any>;

export const AUTO_ANNOTATION = 'external-ip';
/** The one address a LoadBalancer asks for (before LB_IPS_ANNOTATION). */
export const LB_IP_ANNOTATION = 'extip.io/load-balancer-ip';
/** The addresses a LoadBalancer asks for, comma-separated. */
export const LB_IPS_ANNOTATION = 'extip.io/load-balancer-ips';
/**
 * Where a LoadBalancer's addresses are read from, the first that is set:
 * extip's own, then MetalLB's (both its spellings) and kube-vip's, so that a
 * cluster moves to extip without editing its Services; `spec.loadBalancerIP`
 * (deprecated, one address) last.
 */
export const LB_IPS_ANNOTATIONS = [LB_IPS_ANNOTATION, LB_IP_ANNOTATION, 'metallb.io/loadBalancerIPs', 'metallb.universe.tf/loadBalancerIPs', 'kube-vip.io/loadbalancerIPs'];
/** On a Service: "true" asks for its ports to be mapped on the segment's UPnP Internet gateway (claims mode, `--upnp`). */
export const UPNP_ANNOTATION = 'extip.io/upnp';
/**
 * On an IpClaim: the ports its holder maps on the UPnP gateway
 * (`TCP/80,UDP/53`), written by the scheduler from the Services using the
 * address that ask for it; the holder records what it got in the claim's
 * `status.upnp`.
 */
export const UPNP_PORTS = 'extip.io/upnp-ports';
/** A LoadBalancer's sharing key: extip's own, then MetalLB's (both spellings). */
export const SHARING_ANNOTATIONS = ['extip.io/allow-shared-ip', 'metallb.io/allow-shared-ip', 'metallb.universe.tf/allow-shared-ip'];

export interface PoolView {
  name: string;
  cidr: string;
  /** [first, last] pairs inside the cidr; none: the whole cidr but its network and broadcast addresses. */
  ranges: Array<[string, string]>;
  allocated: Record<string, string>;
  /** Only Services in these namespaces get its addresses (none: every namespace). */
  namespaces?: string[];
}

export function poolFrom(obj: Json): PoolView {
  const ranges = Array.isArray(obj.spec?.ranges) ? obj.spec.ranges.filter((r: unknown) => Array.isArray(r) && r.length === 2).map((r: string[]) => [String(r[0]), String(r[1])] as [string, string]) : [];
  const namespaces = Array.isArray(obj.spec?.namespaces) ? obj.spec.namespaces.map(String) : undefined;
  return {name: obj.metadata.name, cidr: String(obj.spec?.cidr ?? ''), ranges, allocated: {...(obj.spec?.allocated ?? {})}, ...(namespaces ? {namespaces} : {})};
}

/** The family of a pool's CIDR, if it is one. */
export function poolFamily(pool: PoolView): Family | undefined {
  const c = parseCidr(pool.cidr, false);
  return isCidr(c) ? c.family : undefined;
}

/**
 * The [first, last] spans of the addresses a pool gives: its ranges (cut to
 * its CIDR), or the whole CIDR but its network address, and for IPv4 its
 * broadcast address (a /31 or /32 gives all it has).
 */
function poolSpans(pool: PoolView): {family: Family; spans: Array<[bigint, bigint]>} | undefined {
  const c = parseCidr(pool.cidr, false);
  if (!isCidr(c)) return undefined;
  if (pool.ranges.length) {
    const spans: Array<[bigint, bigint]> = [];
    for (const [a, b] of pool.ranges) {
      const first = parseIp(a);
      const last = parseIp(b);
      if (first?.family !== c.family || last?.family !== c.family) continue;
      spans.push([first.value > c.network ? first.value : c.network, last.value < c.last ? last.value : c.last]);
    }
    return {family: c.family, spans};
  }
  const size = c.last - c.network + 1n;
  if (size <= 2n) return {family: c.family, spans: [[c.network, c.last]]};
  return {family: c.family, spans: [[c.network + 1n, c.family === 4 ? c.last - 1n : c.last]]};
}

/** An address in the spelling `ip` and the Services' canonical form use. */
function text(value: bigint, family: Family): string {
  const t = formatIp(value, family);
  const c = canonicalIp(t);
  return 'ip' in c ? c.ip : t;
}

/** Every address a pool can give, in order (at most 65,536 per pool). */
export function poolAddresses(pool: PoolView): string[] {
  const out: string[] = [];
  const p = poolSpans(pool);
  if (!p) return out;
  for (const [first, last] of p.spans) for (let n = first; n <= last && out.length < 65536; n++) out.push(text(n, p.family));
  return out;
}

/** The first of the pools that gives this (canonical) address, without listing their addresses. */
export function poolHolding(ip: string, pools: readonly PoolView[]): PoolView | undefined {
  const a = parseIp(ip);
  if (!a) return undefined;
  return pools.find((pool) => {
    const p = poolSpans(pool);
    return p?.family === a.family && p.spans.some(([first, last]) => first <= a.value && a.value <= last);
  });
}

/** What a LoadBalancer's `spec.ipFamilyPolicy` asks: one family, both if it can, or both. */
export type DualStack = 'single' | 'prefer' | 'require';

export interface ServiceView {
  key: string;
  namespace: string;
  name: string;
  /** When it was created (ISO 8601): the older Service is served first. */
  created?: string;
  auto: boolean;
  /** A LoadBalancer extip serves. */
  lb: boolean;
  /** The addresses a LoadBalancer names, as written, in order (none: it asks by family). */
  requested: string[];
  /** Where `requested` was read from, for messages: "the annotation metallb.io/loadBalancerIPs". */
  requestedFrom?: string;
  /**
   * A LoadBalancer whose address is to be leased from the segment's DHCP
   * server: it asks for 0.0.0.0 (kube-vip's convention), or `::` for an
   * IPv6 lease (`6`, which extip does not offer).
   */
  dhcp?: 4 | 6;
  /** The families a LoadBalancer asks for, in the order of `spec.ipFamilies`. */
  families: Family[];
  dualStack: DualStack;
  /** Its sharing key (SHARING_ANNOTATIONS), if any. */
  sharing?: string;
  /** Its ports, as `TCP/80`. */
  ports: string[];
  externalIPs: string[];
  ingress: string[];
  /**
   * Addresses of this Service's that it may not have (canonical): another
   * tenant's (lib/tenancy.ts). They neither keep an allocation nor count
   * as the Service's address.
   */
  refused?: ReadonlySet<string>;
}

/**
 * What a claim of a DHCP-leased LoadBalancer has for its address
 * (`spec.cidr`), and the scheduler's and controllers' key for it: the
 * Service, since the address is the server's to give (`dhcp:namespace/name`).
 */
export const DHCP_KEY_PREFIX = 'dhcp:';
export const dhcpKey = (service: string) => `${DHCP_KEY_PREFIX}${service}`;
export const isDhcpKey = (cidr: string) => cidr.startsWith(DHCP_KEY_PREFIX);
export const dhcpService = (key: string) => key.slice(DHCP_KEY_PREFIX.length);

/** What each Service asks of extip; `lbClass` is extip's loadBalancerClass. */
export function serviceView(s: Json, lbClass: string): ServiceView {
  const annotations: Record<string, unknown> = s.metadata?.annotations ?? {};
  const cls = s.spec?.loadBalancerClass;
  const lb = s.spec?.type === 'LoadBalancer' && (!cls || cls === lbClass);
  const from = LB_IPS_ANNOTATIONS.find((a) => String(annotations[a] ?? '').trim());
  const requested = from
    ? String(annotations[from]).split(',').map((t) => t.trim()).filter(Boolean)
    : s.spec?.loadBalancerIP ? [String(s.spec.loadBalancerIP)] : [];
  const policy = s.spec?.ipFamilyPolicy;
  const dualStack: DualStack = policy === 'RequireDualStack' ? 'require' : policy === 'PreferDualStack' ? 'prefer' : 'single';
  const listed: Family[] = (Array.isArray(s.spec?.ipFamilies) ? s.spec.ipFamilies : []).map((f: unknown) => (f === 'IPv6' ? 6 : f === 'IPv4' ? 4 : 0)).filter((f: number) => f);
  const first: Family = listed[0] ?? 4;
  const sharing = SHARING_ANNOTATIONS.map((a) => annotations[a]).find((v) => typeof v === 'string' && v.trim() !== '') as string | undefined;
  const ports = (Array.isArray(s.spec?.ports) ? s.spec.ports : []).map((p: {protocol?: string; port?: number}) => `${p.protocol ?? 'TCP'}/${p.port}`);
  const t = s.metadata?.creationTimestamp as unknown;
  const created = t instanceof Date ? t.toISOString() : typeof t === 'string' ? t : undefined;
  const dhcp = !lb ? undefined : requested.includes('0.0.0.0') ? 4 : requested.includes('::') ? 6 : undefined;
  return {
    key: `${s.metadata?.namespace}/${s.metadata?.name}`,
    namespace: s.metadata?.namespace,
    name: s.metadata?.name,
    ...(created ? {created} : {}),
    auto: annotations[AUTO_ANNOTATION] === 'auto',
    lb,
    requested,
    ...(dhcp ? {dhcp} : {}),
    ...(from ? {requestedFrom: `the annotation ${from}`} : requested.length ? {requestedFrom: 'spec.loadBalancerIP'} : {}),
    families: dualStack === 'single' ? [first] : [first, first === 4 ? 6 : 4],
    dualStack,
    ...(sharing ? {sharing: sharing.trim()} : {}),
    ports,
    externalIPs: (s.spec?.externalIPs ?? []).map(String),
    ingress: (s.status?.loadBalancer?.ingress ?? []).map((i: {ip?: string}) => i.ip).filter(Boolean),
  };
}

/**
 * Why `other` may not use an address `holder` uses, or undefined when it may:
 * Services of one namespace may, but no two with a port in common, and two
 * LoadBalancers only with one sharing key (MetalLB's rule).
 */
export function sharingRefusal(holder: ServiceView, other: ServiceView): {rule: 'taken' | 'port-clash' | 'not-shared'; reason: string} | undefined {
  if (holder.namespace !== other.namespace) return {rule: 'taken', reason: `held by Service ${holder.key}, of another namespace`};
  const common = other.ports.filter((p) => holder.ports.includes(p));
  if (common.length) return {rule: 'port-clash', reason: `held by Service ${holder.key}, which has port${common.length > 1 ? 's' : ''} ${common.join(', ')} too`};
  if (holder.lb && other.lb && (!holder.sharing || holder.sharing !== other.sharing)) {
    return {rule: 'not-shared', reason: `held by LoadBalancer ${holder.key}; two LoadBalancers share an address only with one sharing key (the annotation ${SHARING_ANNOTATIONS[0]} with one value on both)`};
  }
  return undefined;
}

export type Allocation =
  | {kind: 'external-ip'; service: ServiceView; pool: string; ip: string}
  /** A LoadBalancer's address from a pool, which the pool must record. */
  | {kind: 'ingress'; service: ServiceView; pool: string; ip: string}
  /** The LoadBalancer already has its address; the pool must record it (a new leader, a pool created after). */
  | {kind: 'record'; service: ServiceView; pool: string; ip: string}
  /** A LoadBalancer shares the address another Service has (the pool records it already). */
  | {kind: 'share'; service: ServiceView; pool: string; ip: string; with: string}
  | {kind: 'failed'; service: ServiceView; reason: string};

export interface PoolPlan {
  allocate: Allocation[];
  /** The LoadBalancers whose `status.loadBalancer.ingress` changes, with their addresses in order. */
  ingress: Array<{service: ServiceView; ips: string[]}>;
  /** Pool -> addresses to release. */
  release: Map<string, string[]>;
  /** LoadBalancer ingress to clear: the Service is no longer one extip serves. */
  clearIngress: ServiceView[];
}

const familyName = (f: Family) => (f === 4 ? 'IPv4' : 'IPv6');

/**
 * Decides the allocations and releases for these Services and pools.
 * `recent`: addresses allocated moments ago by this process, and to which
 * Service, kept even when no Service shows them yet; a Service that does not
 * show its address yet (the write of it failed: its cached version was
 * stale) gets that address again, not a second one. `holders`: address -> the Services its IpClaim
 * records, the holder first; a LoadBalancer that lost its address (its
 * status was overwritten) gets back the one it holds, not a new one.
 */
export function planPools(services: readonly ServiceView[], pools: readonly PoolView[], recent: ReadonlyMap<string, string> = new Map(), holders: ReadonlyMap<string, readonly string[]> = new Map()): PoolPlan {
  const plan: PoolPlan = {allocate: [], ingress: [], release: new Map(), clearIngress: []};
  // Each pool's addresses, listed once for this round.
  const addresses = new Map(pools.map((p) => [p.name, poolAddresses(p)]));
  const familyOf = new Map(pools.map((p) => [p.name, poolFamily(p)]));
  const owner = new Map<string, string>();
  for (const p of pools) for (const ip of addresses.get(p.name)!) if (!owner.has(ip)) owner.set(ip, p.name);
  const inPool = (ip: string) => owner.has(ip);
  const mixed = new Set(pools.map((p) => familyOf.get(p.name))).size > 1;
  // The addresses each Service may have: what another tenant holds is not its own.
  const own = (s: ServiceView, list: readonly string[]) => list.map(canonical).filter((ip) => !s.refused?.has(ip));
  // Every address some Service uses, and which Services: never given to another, but shared by the rules.
  const usedBy = new Map<string, ServiceView[]>();
  const use = (ip: string, s: ServiceView) => usedBy.set(ip, [...(usedBy.get(ip) ?? []), s]);
  for (const s of services) {
    for (const ip of own(s, s.externalIPs)) use(ip, s);
    if (s.lb) for (const ip of own(s, s.ingress)) use(ip, s);
  }
  const used = new Set(usedBy.keys());
  const taken = new Set<string>([...used, ...pools.flatMap((p) => Object.keys(p.allocated))]);
  const allocated = new Map(pools.map((p) => [p.name, new Set(Object.keys(p.allocated))]));
  // Service -> the addresses its claims record it as holding (it first): indexed once, not searched per Service.
  const heldBy = new Map<string, string[]>();
  for (const [ip, keys] of holders) if (keys[0]) heldBy.set(keys[0], [...(heldBy.get(keys[0]) ?? []), ip]);
  // And those given to it moments ago, first.
  for (const [ip, key] of recent) heldBy.set(key, [ip, ...(heldBy.get(key) ?? [])]);
  // Given in this round: never released in it.
  const given = new Set<string>();
  const give = (pool: string, ip: string, s: ServiceView) => {
    taken.add(ip);
    given.add(ip);
    allocated.get(pool)?.add(ip);
    use(ip, s);
  };
  const byName = new Map(pools.map((p) => [p.name, p]));
  const serves = (p: PoolView, s: ServiceView) => !p.namespaces || p.namespaces.includes(s.namespace);
  const ofFamily = (ip: string, family?: Family) => family === undefined || ipFamily(ip) === family;
  const firstFree = (s: ServiceView, family?: Family): {pool: string; ip: string} | undefined => {
    // The address this Service holds (or was given moments ago), if no Service uses it now.
    for (const ip of heldBy.get(s.key) ?? []) {
      const pool = owner.get(ip);
      if (pool && ofFamily(ip, family) && !used.has(ip) && !given.has(ip) && serves(byName.get(pool)!, s)) return {pool, ip};
    }
    for (const p of pools) {
      if (!serves(p, s) || (family !== undefined && familyOf.get(p.name) !== family)) continue;
      for (const ip of addresses.get(p.name)!) if (!taken.has(ip)) return {pool: p.name, ip};
    }
    return undefined;
  };
  const none = (s: ServiceView, family?: Family) => {
    const kind = pools.filter((p) => family === undefined || familyOf.get(p.name) === family);
    const open = kind.filter((p) => serves(p, s));
    const of = family === undefined ? '' : ` of ${familyName(family)} addresses`;
    if (!kind.length) return `there is no IpClaimPool${of}`;
    if (!open.length) return `no IpClaimPool${of} serves namespace ${s.namespace}`;
    return `every IpClaimPool${of} is exhausted (${open.map((p) => p.name).join(', ')})`;
  };
  /** A Service that uses this address and would not have `s` share it, if any (why), or the one to share it with. */
  const sharing = (ip: string, s: ServiceView): {with: string} | {refused: string} => {
    const users = (usedBy.get(ip) ?? []).filter((u) => u.key !== s.key);
    if (!users.length) return {refused: 'taken'};
    for (const u of users) {
      const why = sharingRefusal(u, s);
      if (why) return {refused: `taken: ${why.reason}`};
    }
    return {with: users[0].key};
  };
  // The oldest first (by name among those of one age): a Service made later cannot take what an older one asks for.
  /** An address of this family that a LoadBalancer of `s`'s namespace has in its status and may share with it, and with whom. */
  const siblingAddress = (s: ServiceView, family: Family): {ip: string; with: string} | undefined => {
    for (const [ip, users] of usedBy) {
      if (!inPool(ip) || !ofFamily(ip, family) || !users.some((u) => u.lb && u.key !== s.key && own(u, u.ingress).includes(ip))) continue;
      const share = sharing(ip, s);
      if ('with' in share) return {ip, with: share.with};
    }
    return undefined;
  };
  const sorted = [...services].sort((a, b) => (a.created ?? '').localeCompare(b.created ?? '') || a.key.localeCompare(b.key));
  for (const s of sorted) {
    if (s.lb) {
      const current = own(s, s.ingress).filter(inPool);
      const want: string[] = [];
      const keep = (ip: string) => {
        want.push(ip);
        const pool = owner.get(ip)!;
        if (!allocated.get(pool)?.has(ip)) {
          plan.allocate.push({kind: 'record', service: s, pool, ip});
          give(pool, ip, s);
        }
      };
      const failed = (reason: string) => plan.allocate.push({kind: 'failed', service: s, reason});
      if (s.requested.length) {
        for (const asked of s.requested) {
          const c = canonicalIp(asked);
          if ('refused' in c) {
            failed(`the address asked for, "${asked}", is ${c.refused}`);
            continue;
          }
          const ip = c.ip;
          const pool = owner.get(ip);
          if (want.includes(ip)) continue;
          if (current.includes(ip)) keep(ip);
          else if (!pool) failed(`the address asked for, ${asked}, is in no IpClaimPool`);
          else if (!serves(byName.get(pool)!, s)) failed(`the address asked for, ${asked}, is in IpClaimPool ${pool}, which does not serve namespace ${s.namespace}`);
          else if (taken.has(ip)) {
            const share = sharing(ip, s);
            if ('refused' in share) failed(`the address asked for, ${asked}, is ${share.refused}`);
            else {
              want.push(ip);
              plan.allocate.push({kind: 'share', service: s, pool, ip, with: share.with});
              use(ip, s);
            }
          } else {
            want.push(ip);
            plan.allocate.push({kind: 'ingress', service: s, pool, ip});
            give(pool, ip, s);
          }
        }
      } else {
        for (const [i, family] of s.families.entries()) {
          const have = current.find((ip) => ofFamily(ip, family));
          if (have) {
            keep(have);
            continue;
          }
          // A LoadBalancer of its namespace with its sharing key and other ports: its address.
          const sibling = s.sharing ? siblingAddress(s, family) : undefined;
          if (sibling) {
            want.push(sibling.ip);
            plan.allocate.push({kind: 'share', service: s, pool: owner.get(sibling.ip)!, ip: sibling.ip, with: sibling.with});
            use(sibling.ip, s);
            continue;
          }
          const free = firstFree(s, family);
          if (free) {
            want.push(free.ip);
            plan.allocate.push({kind: 'ingress', service: s, ...free});
            give(free.pool, free.ip, s);
          } else if (i === 0 || s.dualStack === 'require' || pools.some((p) => familyOf.get(p.name) === family)) {
            // (PreferDualStack where no pool gives the second family: one family is what it gets.)
            // The family is named where it tells something: a Service of two, or pools of two.
            failed(none(s, s.families.length > 1 || mixed ? family : undefined));
          }
        }
      }
      if (want.join(' ') !== own(s, s.ingress).join(' ') && want.length) plan.ingress.push({service: s, ips: want});
    } else if (s.ingress.length && s.ingress.some((ip) => inPool(canonical(ip)))) {
      plan.clearIngress.push(s);
    }
    if (s.auto && !own(s, s.externalIPs).some(inPool)) {
      const free = firstFree(s);
      if (free) {
        plan.allocate.push({kind: 'external-ip', service: s, ...free});
        give(free.pool, free.ip, s);
      } else plan.allocate.push({kind: 'failed', service: s, reason: none(s)});
    }
  }
  for (const p of pools) {
    const gone = Object.keys(p.allocated).filter((ip) => !used.has(ip) && !recent.has(ip) && !given.has(ip));
    if (gone.length) plan.release.set(p.name, gone);
  }
  return plan;
}

function canonical(ip: string): string {
  const c = canonicalIp(ip);
  return 'ip' in c ? c.ip : ip;
}
