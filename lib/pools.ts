/**
 * Address allocation from IpClaimPools, the cloud-provider way, kept free of
 * I/O. Two kinds of Service ask for an address:
 *  - annotated `external-ip: auto` (upstream's annotation): one is appended
 *    to `spec.externalIPs`, unless one of those is already in a pool;
 *  - `type: LoadBalancer` with no `loadBalancerClass` or extip's own class:
 *    one is written to `status.loadBalancer.ingress`; the Service may ask for
 *    a particular one (`spec.loadBalancerIP`, or the annotation
 *    LB_IP_ANNOTATION), which it gets when a pool holds it and it is free.
 * A pool with `spec.namespaces` serves only Services in those namespaces.
 * A pool records each address it gave in `spec.allocated` (address -> the
 * claim's name, as upstream does). An allocation no Service uses any more is
 * released, except one made moments ago whose Service update may not have
 * been seen yet.
 */
import {isIPv4} from 'node:net';
import {canonicalIp} from './ipnet.js';

type Json = Record<string, any>;

export const AUTO_ANNOTATION = 'external-ip';
export const LB_IP_ANNOTATION = 'extip.io/load-balancer-ip';

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

const v4 = (ip: string) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const v4text = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The [first, last] spans of the addresses a pool gives, as numbers (IPv4 pools only). */
function poolSpans(pool: PoolView): Array<[number, number]> {
  const [net, bitsText] = pool.cidr.split('/');
  const bits = Number(bitsText);
  if (!isIPv4(net ?? '') || !Number.isInteger(bits) || bits < 0 || bits > 32) return [];
  const size = 2 ** (32 - bits);
  const base = Math.floor(v4(net) / size) * size;
  return pool.ranges.length
    ? pool.ranges.filter(([a, b]) => isIPv4(a) && isIPv4(b)).map(([a, b]) => [Math.max(v4(a), base), Math.min(v4(b), base + size - 1)])
    : [[size > 2 ? base + 1 : base, size > 2 ? base + size - 2 : base + size - 1]];
}

/** Every address a pool can give, in order (IPv4 pools only; at most 65,536 per pool). */
export function poolAddresses(pool: PoolView): string[] {
  const out: string[] = [];
  for (const [first, last] of poolSpans(pool)) for (let n = first; n <= last && out.length < 65536; n++) out.push(v4text(n));
  return out;
}

/** The first of the pools that gives this (canonical) address, without listing their addresses. */
export function poolHolding(ip: string, pools: readonly PoolView[]): PoolView | undefined {
  if (!isIPv4(ip)) return undefined;
  const n = v4(ip);
  return pools.find((p) => poolSpans(p).some(([first, last]) => first <= n && n <= last));
}

export interface ServiceView {
  key: string;
  namespace: string;
  name: string;
  auto: boolean;
  /** A LoadBalancer extip serves. */
  lb: boolean;
  /** The address a LoadBalancer asks for, if any. */
  requested?: string;
  externalIPs: string[];
  ingress: string[];
  /**
   * Addresses of this Service's that it may not have (canonical): another
   * tenant's (lib/tenancy.ts). They neither keep an allocation nor count
   * as the Service's address.
   */
  refused?: ReadonlySet<string>;
}

/** What each Service asks of extip; `lbClass` is extip's loadBalancerClass. */
export function serviceView(s: Json, lbClass: string): ServiceView {
  const annotations = s.metadata?.annotations ?? {};
  const cls = s.spec?.loadBalancerClass;
  const lb = s.spec?.type === 'LoadBalancer' && (!cls || cls === lbClass);
  const requested = annotations[LB_IP_ANNOTATION] || s.spec?.loadBalancerIP || undefined;
  return {
    key: `${s.metadata?.namespace}/${s.metadata?.name}`,
    namespace: s.metadata?.namespace,
    name: s.metadata?.name,
    auto: annotations[AUTO_ANNOTATION] === 'auto',
    lb,
    requested: requested ? String(requested) : undefined,
    externalIPs: (s.spec?.externalIPs ?? []).map(String),
    ingress: (s.status?.loadBalancer?.ingress ?? []).map((i: {ip?: string}) => i.ip).filter(Boolean),
  };
}

export type Allocation =
  | {kind: 'external-ip'; service: ServiceView; pool: string; ip: string}
  | {kind: 'ingress'; service: ServiceView; pool: string; ip: string}
  /** The LoadBalancer already has its address; the pool must record it (a new leader, a pool created after). */
  | {kind: 'record'; service: ServiceView; pool: string; ip: string}
  | {kind: 'failed'; service: ServiceView; reason: string};

export interface PoolPlan {
  allocate: Allocation[];
  /** Pool -> addresses to release. */
  release: Map<string, string[]>;
  /** LoadBalancer ingress to clear: the Service is no longer one extip serves. */
  clearIngress: ServiceView[];
}

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
  const plan: PoolPlan = {allocate: [], release: new Map(), clearIngress: []};
  // Each pool's addresses, listed once for this round.
  const addresses = new Map(pools.map((p) => [p.name, poolAddresses(p)]));
  const owner = new Map<string, string>();
  for (const p of pools) for (const ip of addresses.get(p.name)!) if (!owner.has(ip)) owner.set(ip, p.name);
  const inPool = (ip: string) => owner.has(ip);
  // The addresses each Service may have: what another tenant holds is not its own.
  const own = (s: ServiceView, list: readonly string[]) => list.map(canonical).filter((ip) => !s.refused?.has(ip));
  // Every address some Service uses: never given to another.
  const used = new Set<string>();
  for (const s of services) {
    for (const ip of own(s, s.externalIPs)) used.add(ip);
    if (s.lb) for (const ip of own(s, s.ingress)) used.add(ip);
  }
  const taken = new Set<string>([...used, ...pools.flatMap((p) => Object.keys(p.allocated))]);
  const allocated = new Map(pools.map((p) => [p.name, new Set(Object.keys(p.allocated))]));
  // Service -> the addresses its claims record it as holding (it first): indexed once, not searched per Service.
  const heldBy = new Map<string, string[]>();
  for (const [ip, keys] of holders) if (keys[0]) heldBy.set(keys[0], [...(heldBy.get(keys[0]) ?? []), ip]);
  // And those given to it moments ago, first.
  for (const [ip, key] of recent) heldBy.set(key, [ip, ...(heldBy.get(key) ?? [])]);
  // Given in this round: never released in it.
  const given = new Set<string>();
  const give = (pool: string, ip: string) => {
    taken.add(ip);
    given.add(ip);
    allocated.get(pool)?.add(ip);
  };
  const byName = new Map(pools.map((p) => [p.name, p]));
  const serves = (p: PoolView, s: ServiceView) => !p.namespaces || p.namespaces.includes(s.namespace);
  const firstFree = (s: ServiceView): {pool: string; ip: string} | undefined => {
    // The address this Service holds (or was given moments ago), if no Service uses it now.
    for (const ip of heldBy.get(s.key) ?? []) {
      const pool = owner.get(ip);
      if (pool && !used.has(ip) && !given.has(ip) && serves(byName.get(pool)!, s)) return {pool, ip};
    }
    for (const p of pools) if (serves(p, s)) for (const ip of addresses.get(p.name)!) if (!taken.has(ip)) return {pool: p.name, ip};
    return undefined;
  };
  const none = (s: ServiceView) => {
    const open = pools.filter((p) => serves(p, s));
    if (!pools.length) return 'there is no IpClaimPool';
    if (!open.length) return `no IpClaimPool serves namespace ${s.namespace}`;
    return `every IpClaimPool is exhausted (${open.map((p) => p.name).join(', ')})`;
  };
  const sorted = [...services].sort((a, b) => a.key.localeCompare(b.key));
  for (const s of sorted) {
    if (s.lb) {
      const current = own(s, s.ingress).find(inPool);
      const asked = s.requested === undefined ? undefined : canonicalIp(s.requested);
      if (asked && 'refused' in asked) plan.allocate.push({kind: 'failed', service: s, reason: `the address asked for, "${s.requested}", is ${asked.refused}`});
      else if (current && (!s.requested || canonical(s.requested) === current)) {
        if (!allocated.get(owner.get(current)!)?.has(current)) {
          plan.allocate.push({kind: 'record', service: s, pool: owner.get(current)!, ip: current});
          give(owner.get(current)!, current);
        }
      } else if (s.requested) {
        const want = canonical(s.requested);
        if (!inPool(want)) plan.allocate.push({kind: 'failed', service: s, reason: `the address asked for, ${s.requested}, is in no IpClaimPool`});
        else if (!serves(byName.get(owner.get(want)!)!, s)) plan.allocate.push({kind: 'failed', service: s, reason: `the address asked for, ${s.requested}, is in IpClaimPool ${owner.get(want)}, which does not serve namespace ${s.namespace}`});
        else if (taken.has(want) && !own(s, s.ingress).includes(want)) plan.allocate.push({kind: 'failed', service: s, reason: `the address asked for, ${s.requested}, is taken`});
        else {
          plan.allocate.push({kind: 'ingress', service: s, pool: owner.get(want)!, ip: want});
          give(owner.get(want)!, want);
        }
      } else {
        const free = firstFree(s);
        if (free) {
          plan.allocate.push({kind: 'ingress', service: s, ...free});
          give(free.pool, free.ip);
        } else plan.allocate.push({kind: 'failed', service: s, reason: none(s)});
      }
    } else if (s.ingress.length && s.ingress.some((ip) => inPool(canonical(ip)))) {
      plan.clearIngress.push(s);
    }
    if (s.auto && !own(s, s.externalIPs).some(inPool)) {
      const free = firstFree(s);
      if (free) {
        plan.allocate.push({kind: 'external-ip', service: s, ...free});
        give(free.pool, free.ip);
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
