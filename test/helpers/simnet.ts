/**
 * A simulated segment for the agents' membership protocol (lib/membership.ts):
 * a clock whose timers run in order of their time, seeded randomness, and a
 * network with latency, jitter, loss, members that are down and links that
 * are cut. Minutes of protocol among hundreds of members run in seconds, the
 * same way every time. The unit tests and `npm run bench:membership` use it.
 */
import {randomBytes} from 'node:crypto';
import {type Clock, Membership, type MembershipOptions, type MemberState} from '../../lib/membership.js';
import type {Clock as AgentClock} from '../../agent/world.js';

/** A seeded generator (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Timer {
  at: number;
  id: number;
  fn: () => void;
}

/** Timers on a simulated clock, run in order of their time (and of their setting, at one time). */
export class SimClock implements Clock {
  private t = 0;
  private id = 0;
  private readonly heap: Timer[] = [];
  private readonly cancelled = new Set<number>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): number {
    this.push({at: this.t + Math.max(0, ms), id: ++this.id, fn});
    return this.id;
  }

  clearTimeout(handle: unknown): void {
    this.cancelled.add(handle as number);
  }

  /** These timers as the agent's components take a clock (agent/world.ts). */
  forAgent(): AgentClock {
    return {
      now: () => this.now(),
      after: (ms, fn) => {
        const h = this.setTimeout(fn, ms);
        return () => this.clearTimeout(h);
      },
      every: (ms, fn) => {
        let h = 0;
        const arm = () => {
          h = this.setTimeout(() => {
            arm();
            fn();
          }, ms);
        };
        arm();
        return () => this.clearTimeout(h);
      },
    };
  }

  /** Runs every timer due up to `ms` from now. */
  advance(ms: number): void {
    const end = this.t + ms;
    while (this.heap.length && this.heap[0].at <= end) {
      const next = this.pop();
      if (this.cancelled.delete(next.id)) continue;
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }

  private before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.id < b.id);
  }

  private push(x: Timer): void {
    const h = this.heap;
    h.push(x);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Timer {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l], h[m])) m = l;
        if (r < h.length && this.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

export interface SimOptions {
  latencyMs?: number;
  jitterMs?: number;
  loss?: number;
  seed?: number;
  /** Each member's keys (by index); by default one key for all. */
  keys?: (i: number) => Buffer[];
  tune?: Partial<MembershipOptions>;
}

export interface SimCluster {
  clock: SimClock;
  members: Map<string, Membership>;
  names: string[];
  /** Members whose traffic goes nowhere and who hear nothing. */
  down: Set<string>;
  /** `a|b`: nothing passes between a and b. */
  cuts: Set<string>;
  /** Every change of a member's view: when, whose view, of whom, to what. */
  changes: Array<{at: number; by: string; name: string; state: MemberState}>;
  /** Called with every datagram sent, before the network decides its fate. */
  taps: Array<(to: string, data: Buffer) => void>;
}

/** n members (node1..noden) on one simulated segment, each joined with the full list and started. */
export function simCluster(n: number, opts: SimOptions = {}): SimCluster {
  const clock = new SimClock();
  const random = seeded(opts.seed ?? 1);
  const key = randomBytes(32);
  const names = Array.from({length: n}, (_, i) => `node${i + 1}`);
  const down = new Set<string>();
  const cuts = new Set<string>();
  const changes: SimCluster['changes'] = [];
  const taps: SimCluster['taps'] = [];
  const members = new Map<string, Membership>();
  for (const [i, name] of names.entries()) {
    const m = new Membership({
      self: {name, address: name},
      keys: opts.keys ? opts.keys(i) : [key],
      clock,
      random,
      transport: {
        send: (to, data) => {
          for (const tap of taps) tap(to, data);
          if (down.has(name) || down.has(to) || cuts.has(`${name}|${to}`) || cuts.has(`${to}|${name}`)) return;
          if (random() < (opts.loss ?? 0)) return;
          const delay = (opts.latencyMs ?? 0.3) + random() * (opts.jitterMs ?? 0);
          clock.setTimeout(() => {
            if (!down.has(to)) members.get(to)?.receive(data);
          }, delay);
        },
      },
      onChange: (who, state) => changes.push({at: clock.now(), by: name, name: who, state}),
      ...opts.tune,
    });
    members.set(name, m);
  }
  for (const m of members.values()) m.join(names.map((x) => ({name: x, address: x})));
  for (const m of members.values()) m.start();
  return {clock, members, names, down, cuts, changes, taps};
}
