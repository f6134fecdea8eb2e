/**
 * Claims mode's data and decisions, kept free of I/O so they can be tested on
 * their own: the upstream resources (group ipcontroller.ext, version v1,
 * cluster-scoped IpNode, IpClaim, IpClaimPool), claim names, node liveness
 * from heartbeats, and where each address goes.
 */
import {createHash} from 'node:crypto';
import {isIPv4} from 'node:net';
import {dhcpService, isDhcpKey} from '../lib/pools.js';

export const GROUP_PATH = '/apis/ipcontroller.ext/v1';
export const CLAIMS = `${GROUP_PATH}/ipclaims`;
export const NODES = `${GROUP_PATH}/ipnodes`;
export const POOLS = `${GROUP_PATH}/ipclaimpools`;
/** The label upstream puts on a claim: the IpNode it is assigned to. */
export const NODE_LABEL = 'ipnode';
/**
 * A handoff between two live nodes goes in two steps, so that no moment has
 * the address on both: the scheduler asks the holder to let go (RELEASE_TO
 * names the next node), the holder takes the address down and says so
 * (RELEASED_BY, its own name), and only then is the claim assigned anew.
 */
export const RELEASE_TO = 'extip.io/release-to';
export const RELEASED_BY = 'extip.io/released-by';
/**
 * A controller that crashed and came back (its node was fine all along) finds
 * its addresses still up while the scheduler gave their claims to another
 * node, whose ARP probe found them answered and so kept them down. It keeps
 * them up and says so (HELD_BY, its own name) for a while, and the scheduler
 * gives such a claim back: traffic never stops, where taking the address down
 * would leave it without a holder until the other node's next probe.
 */
export const HELD_BY = 'extip.io/held-by';
/**
 * Who takes a claim next, in order (comma-separated node names), written by
 * the scheduler ahead of time: when the controllers' membership finds the
 * holder gone, its first standby that the group holds live brings the address
 * up at once, without a round trip to the API server.
 */
export const STANDBYS = 'extip.io/standbys';
/** The standby that took the claim over (its own name), written when the API answers; the scheduler then assigns it there. */
export const TAKEN_BY = 'extip.io/taken-by';
export {UPNP_ANNOTATION, UPNP_PORTS} from '../lib/pools.js';
/**
 * On an IpNode, written with each heartbeat: the other nodes its controller's
 * membership holds alive (comma-separated). A node cut off from the API alone
 * is vouched for by the others, and the scheduler does not move its claims.
 */
export const HEARS = 'extip.io/hears';
/** How many standbys each claim names. */
export const STANDBY_COUNT = 2;

/**
 * Upstream's claim name: the address and prefix with "." ":" "/" turned
 * into "-" (10.0.0.7/24 -> 10-0-0-7-24). A DHCP claim's: `dhcp-`, a digest
 * of the Service (namespace-name alone could be two Services'), then the
 * namespace and name for the eye.
 */
export function claimName(cidr: string): string {
  if (isDhcpKey(cidr)) {
    const service = dhcpService(cidr);
    const digest = createHash('sha256').update(service).digest('hex').slice(0, 8);
    return `dhcp-${digest}-${service.replace(/[^a-z0-9-]+/g, '-')}`.slice(0, 253).replace(/-+$/, '');
  }
  const name = cidr.replace(/[.:/]/g, '-');
  // An IPv6 address starting with "::" would give a name starting with "-", which Kubernetes refuses.
  return name.startsWith('-') ? `0${name}` : name;
}

/** The value a pool records for an address: the claim's name, as upstream does. */
export function allocationValue(ip: string, mask: number, mask6: number): string {
  return claimName(`${ip}/${isIPv4(ip) ? mask : mask6}`);
}

export type NodeFilter = 'fair' | 'first-alive';

export interface ClaimView {
  name: string;
  cidr: string;
  /** The IpNode it is assigned to ('' when none). */
  node: string;
  /** A handoff in progress: the node asked for, and the node that confirmed letting go. */
  releaseTo?: string;
  releasedBy?: string;
  /** The node that says it still has the address up (HELD_BY), and the node whose controller last brought it up. */
  heldBy?: string;
  upOn?: string;
  /** The scheduler's standbys, in order (STANDBYS), and the standby that says it took the claim over (TAKEN_BY). */
  standbys?: string[];
  takenBy?: string;
}

/** The node names of a comma-separated annotation (STANDBYS, HEARS). */
export function parseNodeList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((n) => n.trim()).filter(Boolean);
}

/** A stable number for a claim on a node (FNV-1a): each claim orders the nodes its own way, the same on every run. */
function weight(claim: string, node: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${claim}\u0000${node}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/**
 * A claim's standbys: the live nodes other than its holder, ordered by
 * rendezvous hashing, the first `count`. Each claim gets its own order, so a
 * lost node's claims spread over the others; and a node that joins or leaves
 * changes only the lists it is in.
 */
export function standbysFor(claim: string, holder: string, live: readonly string[], count = STANDBY_COUNT): string[] {
  return live
    .filter((n) => n !== holder)
    .map((n) => ({n, w: weight(claim, n)}))
    .sort((a, b) => b.w - a.w || a.n.localeCompare(b.n))
    .slice(0, count)
    .map((x) => x.n);
}

/**
 * Whether `self` takes a claim over without the API server: its holder is
 * dead to the group, and `self` is its first standby that the group does not
 * hold dead (a suspect one may still refute and take the claim itself, so it
 * stands in the way). Standbys the group does not know are passed over.
 */
export function takesOver(self: string, holder: string, standbys: readonly string[], state: (node: string) => string | undefined): boolean {
  if (!holder || holder === self || state(holder) !== 'dead') return false;
  for (const s of standbys) {
    if (s === self) return true;
    const st = state(s);
    if (s !== holder && st !== undefined && st !== 'dead') return false;
  }
  return false;
}

/**
 * Claims a standby took over (TAKEN_BY) while the API server could not be
 * told: assigned to it, live, where the address is up already. The holder
 * named before lets go of it (it has fenced, or it comes back and is no
 * longer the claim's node).
 */
export function takenOver(claims: readonly ClaimView[], live: readonly string[]): Move[] {
  return claims
    .filter((c) => c.takenBy && c.takenBy !== c.node && live.includes(c.takenBy))
    .map((c) => ({
      name: c.name,
      cidr: c.cidr,
      from: c.node,
      to: c.takenBy!,
      reason: `${c.takenBy} took it over: ${c.node || 'no node'} stopped answering its peers`,
      alreadyUp: true,
    }));
}

export interface Move {
  name: string;
  cidr: string;
  from: string;
  to: string;
  reason: string;
  /** The address is up on the new node already (a claim given back to the node that still holds it). */
  alreadyUp?: boolean;
}

/**
 * Claims to give back to the live node that still holds their address: it
 * says so (HELD_BY), and the node the claim went to never brought it up (so a
 * handoff asked of that node has nothing to hand off, and gives way).
 */
export function givenBack(claims: readonly ClaimView[], live: readonly string[]): Move[] {
  return claims
    .filter((c) => c.heldBy && c.heldBy !== c.node && live.includes(c.heldBy) && c.upOn !== c.node)
    .map((c) => ({
      name: c.name,
      cidr: c.cidr,
      from: c.node,
      to: c.heldBy!,
      reason: `${c.heldBy} still has it up and ${c.node || 'no node'} did not bring it up`,
      alreadyUp: true,
    }));
}

export interface Decision {
  create: Array<{name: string; cidr: string; node: string}>;
  move: Move[];
  /** Claims no Service wants any more. */
  remove: string[];
  /** Addresses wanted while no node is live: they wait. */
  waiting: string[];
}

/**
 * Where each wanted address goes. `fair`: claims on a live node stay, except
 * the fewest moves needed to keep every live node within one claim of the
 * others; claims of a node that is not live, and new addresses, go to the
 * live node with the fewest. `first-alive`: every claim on one node, the
 * live node that already holds the most (the first by name when none does).
 * `dead` says why a node is not live, for the move's reason.
 */
export function decide(
  wanted: ReadonlySet<string>,
  claims: readonly ClaimView[],
  live: readonly string[],
  filter: NodeFilter,
  dead: (node: string) => string = (node) => `node ${node} is not live`,
  targets?: ReadonlySet<string>,
): Decision {
  const d: Decision = {create: [], move: [], remove: [], waiting: []};
  const nodes = [...live].sort();
  // Live nodes that may be given claims (targets); the others keep theirs but get none.
  const eligible = (n: string) => !targets || targets.has(n);
  const open = nodes.filter(eligible);
  const load = new Map(nodes.map((n) => [n, [] as ClaimView[]]));
  const byCidr = new Map<string, ClaimView>();
  const orphans: ClaimView[] = [];
  for (const c of [...claims].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!wanted.has(c.cidr) || byCidr.has(c.cidr)) {
      d.remove.push(c.name);
      continue;
    }
    byCidr.set(c.cidr, c);
    const held = load.get(c.node);
    if (held) held.push(c);
    else orphans.push(c);
  }
  const count = (n: string) => load.get(n)!.length;
  const target = (): string | undefined => {
    if (!open.length) return undefined;
    if (filter === 'first-alive') return open.reduce((best, n) => (count(n) > count(best) ? n : best), open[0]);
    return open.reduce((best, n) => (count(n) < count(best) ? n : best), open[0]);
  };
  for (const c of orphans) {
    // The first live standby: where the controllers' membership brings the address up before this runs.
    const standby = c.standbys?.find((n) => load.has(n) && eligible(n));
    const to = standby ?? target();
    if (!to) {
      d.waiting.push(c.cidr);
      continue;
    }
    d.move.push({name: c.name, cidr: c.cidr, from: c.node, to, reason: c.node ? dead(c.node) : 'it had no node'});
    // At the front: rebalancing takes from the back, so the claims a standby brought up stay there
    // and others move instead, in two steps.
    if (standby) load.get(to)!.unshift({...c, node: to});
    else load.get(to)!.push({...c, node: to});
  }
  for (const cidr of [...wanted].sort()) {
    if (byCidr.has(cidr)) continue;
    const to = target();
    if (!to) {
      d.waiting.push(cidr);
      continue;
    }
    const claim = {name: claimName(cidr), cidr, node: to};
    d.create.push(claim);
    load.get(to)!.push(claim);
  }
  if (filter === 'first-alive' && nodes.length > 1 && open.length) {
    // Pack: the node holding the most keeps them all; the others' claims join it.
    const to = target()!;
    for (const n of nodes) {
      if (n === to) continue;
      for (const c of load.get(n)!.splice(0)) {
        const created = d.create.find((x) => x.name === c.name);
        const earlier = d.move.find((m) => m.name === c.name);
        if (created) created.node = to;
        else if (earlier) earlier.to = to;
        else d.move.push({name: c.name, cidr: c.cidr, from: n, to, reason: `first-alive packs every claim onto one node (${to})`});
        load.get(to)!.push({...c, node: to});
      }
    }
  }
  if (filter === 'fair' && nodes.length > 1 && open.length) {
    for (;;) {
      const most = nodes.reduce((best, n) => (count(n) > count(best) ? n : best), nodes[0]);
      const least = open.reduce((best, n) => (count(n) < count(best) ? n : best), open[0]);
      if (count(most) - count(least) <= 1) break;
      const c = load.get(most)!.pop()!;
      const created = d.create.find((x) => x.name === c.name);
      if (created) created.node = least;
      else {
        const earlier = d.move.find((m) => m.name === c.name);
        if (earlier) earlier.to = least;
        else d.move.push({name: c.name, cidr: c.cidr, from: most, to: least, reason: `rebalancing: ${most} held ${count(most) + 1} claims, ${least} ${count(least)}`});
      }
      load.get(least)!.push({...c, node: least});
    }
  }
  return d;
}

/**
 * Which IpNodes are live, by the scheduler's own clock: a node is live while
 * its heartbeat (the IpNode's Revision) has changed within `timeoutMs` of
 * this process observing it. Heartbeat values are compared, never clocks of
 * other machines. `reset` gives every node a full timeout again (after the
 * scheduler starts, becomes leader, or its view of the nodes was interrupted).
 */
export class Liveness {
  private seen = new Map<string, {revision: unknown; at: number; beat: number}>();
  /** When every node was last given a full timeout (reset). */
  private resetAt = -Infinity;

  constructor(readonly timeoutMs: number) {}

  /** Records a heartbeat value seen now; says whether it was a new one. */
  observe(name: string, revision: unknown, now: number): boolean {
    const prev = this.seen.get(name);
    if (prev && prev.revision === revision) return false;
    this.seen.set(name, {revision, at: now, beat: now});
    return true;
  }

  forget(names: Iterable<string>): void {
    const keep = new Set(names);
    for (const n of [...this.seen.keys()]) if (!keep.has(n)) this.seen.delete(n);
  }

  reset(now: number): void {
    this.resetAt = now;
    for (const v of this.seen.values()) v.at = now;
  }

  /**
   * Live nodes whose heartbeat was seen since the last reset: those that may
   * be given claims. A reset keeps every node live (its claims stay), but one
   * that was lost while nothing could be seen must not be given claims on
   * that credit alone.
   */
  heard(now: number): string[] {
    return this.live(now).filter((n) => this.seen.get(n)!.beat > this.resetAt);
  }

  live(now: number): string[] {
    return [...this.seen].filter(([, v]) => now - v.at <= this.timeoutMs).map(([n]) => n).sort();
  }

  /** When the first live node stops being live, if none beats before then (undefined: no live node). */
  nextExpiry(now: number): number | undefined {
    let next: number | undefined;
    for (const v of this.seen.values()) {
      const at = v.at + this.timeoutMs + 1;
      if (at > now && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /** Milliseconds since the node's last heartbeat was seen. */
  silentFor(name: string, now: number): number | undefined {
    const v = this.seen.get(name);
    return v ? now - v.at : undefined;
  }
}

/**
 * How long a claim controller may go without a successful heartbeat before it
 * takes its addresses down (self-fencing). The scheduler moves a node's claims
 * no sooner than `monitor` after the last heartbeat it saw, and it sees a
 * heartbeat no sooner than the controller sent it; fencing at `monitor` less a
 * margin (a heartbeat interval, at most a quarter of `monitor`) counted from
 * the sending of the last heartbeat that succeeded takes the addresses down
 * before any other node can be given them.
 */
export function fenceAfterMs(hbMs: number, monitorMs: number): number {
  return monitorMs - Math.min(hbMs, monitorMs / 4);
}

export type Step =
  /** Assign the claim to `to` now (and clear any handoff). */
  | {kind: 'assign'; move: Move}
  /** Ask the holder to let go before `to` gets the claim. */
  | {kind: 'ask'; move: Move}
  /** The asked holder has not let go yet: nothing to do but wait. */
  | {kind: 'wait'; move: Move}
  /** A handoff no longer wanted: clear it, so the holder brings the address back. */
  | {kind: 'cancel'; name: string; node: string};

/**
 * Turns the decided moves into steps. A claim whose node is not live (or has
 * none) is assigned at once: that node has fenced itself or withdrawn. A
 * claim on a live node is handed off: first asked, then assigned once its
 * holder confirmed it let go. A handoff that the decision no longer wants is
 * cancelled.
 */
export function handoffs(d: Decision, claims: readonly ClaimView[], live: readonly string[]): Step[] {
  const alive = new Set(live);
  const byName = new Map(claims.map((c) => [c.name, c]));
  const moving = new Set(d.move.map((m) => m.name));
  const gone = new Set(d.remove);
  const steps: Step[] = [];
  for (const m of d.move) {
    const c = byName.get(m.name);
    if (!m.from || !alive.has(m.from)) steps.push({kind: 'assign', move: m});
    else if (c?.releaseTo === m.to && c.releasedBy === m.from) steps.push({kind: 'assign', move: {...m, reason: `${m.reason}; ${m.from} let go first`}});
    else if (c?.releaseTo === m.to) steps.push({kind: 'wait', move: m});
    else steps.push({kind: 'ask', move: m});
  }
  for (const c of claims) {
    if ((c.releaseTo || c.releasedBy) && !moving.has(c.name) && !gone.has(c.name)) steps.push({kind: 'cancel', name: c.name, node: c.node});
  }
  return steps;
}

/**
 * The live nodes, with those a live node's controller hears over the
 * membership (HEARS): their own heartbeats may not reach the API server, but
 * they serve their addresses, and their peers would take them over at once if
 * they were lost. Only nodes that have an IpNode count.
 */
export function vouched(live: readonly string[], hears: ReadonlyMap<string, readonly string[]>, known: ReadonlySet<string>): string[] {
  const out = new Set(live);
  for (const n of live) for (const h of hears.get(n) ?? []) if (known.has(h)) out.add(h);
  return [...out].sort();
}
