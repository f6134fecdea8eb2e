/**
 * A simulated claims-mode cluster on a simulated clock: the claim
 * controllers' own decisions (agent/holding.ts: the fence, the takeovers,
 * each claim's duty) and their real membership (lib/membership.ts on
 * test/helpers/simnet.ts's segment), an API server that can be away for
 * everyone or for one node, nodes whose link or controller is lost, and ARP
 * probes that see who holds an address on the segment. Minutes of cluster
 * run in well under a second, the same way every time.
 *
 * The scheduler's rules are its own too (agent/claims.ts: vouched,
 * takenOver, decide, handoffs, standbysFor); what is modelled around them:
 * heartbeats read into liveness, the two-step handoff between live nodes
 * (not done: such claims stay), the watch (a copy of the claims whenever the
 * API answers, a full list when asked) and the host (addresses as sets). The lab (test/e2e/claims-lab.test.ts)
 * proves the wiring on real programs; this proves the rules on every row of
 * the README's table, and under loss and reordering.
 */
import {type ClaimView, STANDBY_COUNT, decide, fenceAfterMs, handoffs, standbysFor, takenOver, vouched} from '../../agent/claims.js';
import {CONFLICT_RETRY_MS, type FenceEffect, type FenceEvent, type FenceState, type HolderSeen, TAKEOVER_HEARD_MS, beating, duty, fenceStep, seeMoves, serves, startFence, takeovers} from '../../agent/holding.js';
import type {Membership} from '../../lib/membership.js';
import {type SimCluster, type SimOptions, simCluster} from './simnet.js';

export interface FleetOptions extends Pick<SimOptions, 'loss' | 'jitterMs' | 'seed' | 'latencyMs'> {
  nodes?: number;
  /** Addresses (10.0.0.1.. /32), one claim each, spread over the nodes. */
  claims?: number;
  /** The role's defaults: --hb 500ms, --monitor 1500ms, --dad-wait 100ms. */
  hbMs?: number;
  monitorMs?: number;
  dadWaitMs?: number;
}

export interface StoredClaim {
  name: string;
  cidr: string;
  holder: string;
  takenBy?: string;
  standbys: string[];
}

/** What the scheduler did to a claim. */
export interface Move {
  at: number;
  name: string;
  from: string;
  to: string;
  why: 'taken-over' | 'holder-lost';
}

interface FleetNode {
  name: string;
  fence: FenceState;
  taken: Map<string, string>;
  /** Each claim's holder as this node last saw it (seeMoves). */
  holders: HolderSeen;
  /** Addresses on its interface. */
  up: Set<string>;
  /** Probes running: when each ends. */
  probing: Map<string, number>;
  /** Addresses another host answered for, and until when they are left alone. */
  conflicts: Map<string, number>;
  /** The watch's copy of the claims. */
  cache: Map<string, StoredClaim>;
  listedAt?: number;
  relist: boolean;
  /** Takeovers whose TAKEN_BY is still to be written. */
  recording: Set<string>;
  killed: boolean;
  nextBeat: number;
  notes: string[];
}

const TICK_MS = 20;
const SCHEDULE_MS = 100;

export class Fleet {
  readonly net: SimCluster;
  readonly hbMs: number;
  readonly monitorMs: number;
  readonly fenceMs: number;
  readonly dadWaitMs: number;
  /** The API server answers (for the nodes not in apiCut). */
  api = true;
  /** Nodes whose path to the API is cut. */
  readonly apiCut = new Set<string>();
  /** Nodes whose interface's link is down: silent on the segment, their addresses unreachable. */
  readonly linkDown = new Set<string>();
  /** The scheduler does nothing until then (its leader was lost, and a new one waits for the Lease). */
  schedulerPausedUntil = 0;
  readonly claims = new Map<string, StoredClaim>();
  readonly moves: Move[] = [];
  readonly nodes = new Map<string, FleetNode>();
  /** The IpNodes: each node's last heartbeat as the API recorded it, and whom it hears. */
  private readonly ipnodes = new Map<string, {at: number; hears: string[]}>();
  private liveAt = new Map<string, number>();
  private resetAt = -Infinity;
  private apiWasUp = true;
  private nextSchedule = 0;

  constructor(o: FleetOptions = {}) {
    const n = o.nodes ?? 3;
    this.hbMs = o.hbMs ?? 500;
    this.monitorMs = o.monitorMs ?? 1500;
    this.fenceMs = fenceAfterMs(this.hbMs, this.monitorMs);
    this.dadWaitMs = o.dadWaitMs ?? 100;
    this.net = simCluster(n, {loss: o.loss, jitterMs: o.jitterMs, seed: o.seed, latencyMs: o.latencyMs});
    for (const name of this.net.names) {
      this.nodes.set(name, {name, fence: startFence(0), taken: new Map(), holders: new Map(), up: new Set(), probing: new Map(), conflicts: new Map(), cache: new Map(), relist: true, recording: new Set(), killed: false, nextBeat: 0, notes: []});
    }
    for (let i = 0; i < (o.claims ?? 6); i++) {
      const cidr = `10.0.0.${i + 1}/32`;
      const holder = this.net.names[i % n];
      this.claims.set(`c${i + 1}`, {name: `c${i + 1}`, cidr, holder, standbys: []});
    }
    this.every(TICK_MS, () => this.tick());
  }

  get now(): number {
    return this.net.clock.now();
  }

  /** Runs the cluster for `ms`, calling `sample` every 20 ms. */
  run(ms: number, sample?: () => void): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.net.clock.advance(Math.min(TICK_MS, end - this.now));
      sample?.();
    }
  }

  /** Which nodes have an address up, whether or not anyone can reach them. */
  holders(cidr: string): string[] {
    return [...this.nodes.values()].filter((n) => n.up.has(cidr)).map((n) => n.name);
  }

  /** The holders a client on the segment reaches (their link is up). */
  answering(cidr: string): string[] {
    return this.holders(cidr).filter((n) => !this.linkDown.has(n));
  }

  /** Pairs of holders of one address that can hear each other (both links up, no cut between them). */
  doubleHolders(): string[] {
    const out: string[] = [];
    for (const c of this.claims.values()) {
      const h = this.answering(c.cidr);
      for (let i = 0; i < h.length; i++) for (let j = i + 1; j < h.length; j++) if (this.segment(h[i], h[j])) out.push(`${c.cidr}: ${h[i]} and ${h[j]}`);
    }
    return out;
  }

  node(name: string): FleetNode {
    return this.nodes.get(name)!;
  }

  membership(name: string): Membership {
    return this.net.members.get(name)!;
  }

  /** The node's link goes down (or comes back): silent on the segment. */
  setLink(name: string, up: boolean): void {
    if (up) {
      this.linkDown.delete(name);
      this.net.down.delete(name);
    } else {
      this.linkDown.add(name);
      this.net.down.add(name);
    }
  }

  /** kill -9 of the controller: its addresses stay up, its membership is silent until it starts again. */
  kill(name: string): void {
    const n = this.node(name);
    n.killed = true;
    this.membership(name).stop();
  }

  /** The controller starts again (the kubelet restarts it): fenced until a heartbeat and a list, at a new incarnation. */
  restart(name: string): void {
    const n = this.node(name);
    n.killed = false;
    n.fence = startFence(this.now);
    n.taken.clear();
    n.probing.clear();
    n.relist = true;
    n.nextBeat = this.now;
    this.membership(name).rejoin();
  }

  private every(ms: number, fn: () => void): void {
    const loop = () => {
      fn();
      this.net.clock.setTimeout(loop, ms);
    };
    this.net.clock.setTimeout(loop, ms);
  }

  private reaches(name: string): boolean {
    return this.api && !this.apiCut.has(name);
  }

  private segment(a: string, b: string): boolean {
    return !this.linkDown.has(a) && !this.linkDown.has(b) && !this.net.cuts.has(`${a}|${b}`) && !this.net.cuts.has(`${b}|${a}`);
  }

  private isolated(name: string, windowMs: number): boolean {
    const m = this.membership(name);
    const heard = m.lastHeard();
    return m.view().length < 2 || heard === undefined || this.now - heard > windowMs;
  }

  private tick(): void {
    if (this.api && !this.apiWasUp) this.reset();
    this.apiWasUp = this.api;
    for (const n of this.nodes.values()) if (!n.killed) this.control(n);
    if (this.api && this.now >= this.nextSchedule && this.now >= this.schedulerPausedUntil) {
      this.nextSchedule = this.now + SCHEDULE_MS;
      this.schedule();
    }
  }

  private dispatch(n: FleetNode, event: FenceEvent): void {
    const step = fenceStep(n.fence, event, {
      now: this.now,
      fenceMs: this.fenceMs,
      peersHeard: !this.isolated(n.name, this.fenceMs),
      listedAt: n.listedAt,
    });
    n.fence = step.state;
    for (const e of step.effects) this.effect(n, e);
  }

  private effect(n: FleetNode, e: FenceEffect): void {
    switch (e.do) {
      case 'fence':
        n.up.clear();
        n.probing.clear();
        n.taken.clear();
        n.relist = true;
        break;
      case 'pause-peers':
        this.membership(n.name).stop();
        break;
      case 'resume-peers':
        this.membership(n.name).rejoin();
        break;
      case 'delete-ipnode':
        if (this.reaches(n.name)) this.ipnodes.delete(n.name);
        break;
      case 'heartbeat':
        n.nextBeat = this.now;
        break;
      case 'list-claims':
        n.relist = true;
        break;
      case 'serve':
        break;
      case 'note':
        n.notes.push(`${this.now} ${e.what}`);
        break;
    }
  }

  /** One watchdog tick of a node's controller: link, heartbeat, watch, fence, and a pass. */
  private control(n: FleetNode): void {
    this.dispatch(n, this.linkDown.has(n.name) ? {type: 'link-down', state: 'down'} : {type: 'link-up'});
    if (this.now >= n.nextBeat) {
      n.nextBeat = this.now + this.hbMs;
      if (n.fence.mode !== 'link-lost') {
        if (this.reaches(n.name)) {
          const hears = this.membership(n.name).view().filter((m) => m.name !== n.name && m.state === 'alive').map((m) => m.name);
          this.ipnodes.set(n.name, {at: this.now, hears});
          this.dispatch(n, {type: 'beat-ok', sentAt: this.now});
        } else {
          this.dispatch(n, {type: 'beat-failed'});
        }
      }
    }
    if (this.reaches(n.name)) {
      n.cache = new Map([...this.claims].map(([k, c]) => [k, {...c, standbys: [...c.standbys]}]));
      if (n.relist) {
        n.relist = false;
        n.listedAt = this.now;
        this.dispatch(n, {type: 'claims-listed'});
      }
      for (const name of n.recording) {
        const c = this.claims.get(name);
        if (c && n.taken.has(name)) c.takenBy = n.name;
      }
      n.recording.clear();
    }
    this.dispatch(n, {type: 'tick'});
    if (serves(n.fence)) this.pass(n);
  }

  private pass(n: FleetNode): void {
    const m = this.membership(n.name);
    const list = [...n.cache.values()];
    n.holders = seeMoves(n.holders, list, this.now);
    const t = takeovers(n.taken, list.map((c) => ({name: c.name, holder: c.holder, cidr: c.cidr, movedAt: n.holders.get(c.name)?.at})), {
      self: n.name,
      members: m.view().map((v) => v.name),
      state: (x) => m.state(x),
      hearing: !this.isolated(n.name, TAKEOVER_HEARD_MS) || beating(n.fence, {now: this.now, fenceMs: this.fenceMs}),
      upHere: (cidr) => n.up.has(cidr),
      deadSince: (x) => m.since(x),
    });
    n.taken = t.taken;
    for (const c of t.began) n.notes.push(`${this.now} took over ${c.name} from ${c.holder}`);
    const wanted = new Map<string, string>();
    for (const c of list) if (duty({name: c.name, holder: c.holder, takenBy: c.takenBy}, n.name, t.serve) === 'serve') wanted.set(c.cidr, c.name);
    for (const cidr of [...n.up]) if (!wanted.has(cidr)) n.up.delete(cidr);
    for (const [cidr, name] of wanted) {
      if (n.up.has(cidr)) continue;
      const ends = n.probing.get(cidr);
      if (ends === undefined) {
        if ((n.conflicts.get(cidr) ?? 0) <= this.now) n.probing.set(cidr, this.now + this.dadWaitMs);
        continue;
      }
      if (ends > this.now) continue;
      n.probing.delete(cidr);
      // The ARP probe: any other host on the segment with the address up answers it.
      if (this.holders(cidr).some((h) => h !== n.name && this.segment(h, n.name))) {
        n.conflicts.set(cidr, this.now + CONFLICT_RETRY_MS);
        continue;
      }
      n.up.add(cidr);
      if (n.taken.has(name)) n.recording.add(name);
    }
  }

  /** The API is back after an outage: every node gets a full timeout, and only those heard since may be given claims. */
  private reset(): void {
    this.resetAt = this.now;
    for (const name of this.ipnodes.keys()) this.liveAt.set(name, this.now);
  }

  private schedule(): void {
    for (const [name, beat] of this.ipnodes) if ((this.liveAt.get(name) ?? -Infinity) < beat.at) this.liveAt.set(name, beat.at);
    for (const name of [...this.liveAt.keys()]) if (!this.ipnodes.has(name)) this.liveAt.delete(name);
    const beatLive = [...this.liveAt].filter(([, at]) => this.now - at <= this.monitorMs).map(([n]) => n).sort();
    const hears = new Map([...this.ipnodes].map(([k, v]) => [k, v.hears]));
    const live = vouched(beatLive, hears, new Set(this.ipnodes.keys()));
    const targets = live.filter((x) => (this.ipnodes.get(x)?.at ?? -Infinity) > this.resetAt);
    // The scheduler's own rules (agent/claims.ts), in its order: takeovers recorded first, then
    // what decide() and handoffs() make of the rest. A handoff between live nodes (ask, confirm,
    // assign) is not modelled: those claims stay where they are.
    const views = (): ClaimView[] => [...this.claims.values()].map((c) => ({name: c.name, cidr: c.cidr, node: c.holder, takenBy: c.takenBy, standbys: c.standbys}));
    for (const m of takenOver(views(), live)) {
      const c = this.claims.get(m.name)!;
      this.moves.push({at: this.now, name: c.name, from: c.holder, to: m.to, why: 'taken-over'});
      c.holder = m.to;
      c.takenBy = undefined;
    }
    for (const c of this.claims.values()) if (c.takenBy && c.takenBy !== c.holder && !live.includes(c.takenBy)) c.takenBy = undefined;
    const d = decide(new Set([...this.claims.values()].map((c) => c.cidr)), views(), live, 'fair', undefined, new Set(targets));
    for (const step of handoffs(d, views(), live)) {
      if (step.kind !== 'assign') continue;
      const c = this.claims.get(step.move.name)!;
      this.moves.push({at: this.now, name: c.name, from: c.holder, to: step.move.to, why: 'holder-lost'});
      c.holder = step.move.to;
      c.takenBy = undefined;
    }
    for (const c of this.claims.values()) {
      c.standbys = standbysFor(c.name, c.holder, live, STANDBY_COUNT);
    }
  }
}
