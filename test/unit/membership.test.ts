/**
 * The agents' membership protocol (lib/membership.ts) on a simulated network
 * with a simulated clock: seeded randomness, latency, jitter, loss and cut
 * links, so that minutes of protocol run in a second and every run is the
 * same. What it must do: find a dead member within a second, never call a
 * live one dead for one lossy link or a lossy segment, refute a false
 * suspicion, ignore what is not signed with the key, go on through a key
 * rotation, and send about as much per member at 50 members as at 3.
 */
import {expect, test} from '@jest/globals';
import {randomBytes} from 'node:crypto';
import {type Clock, Membership, type MembershipOptions, type MemberState} from '../../lib/membership.js';

/** A seeded generator (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Timers on a simulated clock, run in order of their time. */
class SimClock implements Clock {
  private t = 0;
  private id = 0;
  private readonly timers = new Map<number, {at: number; fn: () => void}>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    this.timers.set(++this.id, {at: this.t + Math.max(0, ms), fn});
    return this.id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Runs every timer due up to `ms` from now. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, {at: number; fn: () => void}] | undefined;
      for (const e of this.timers) if (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0])) next = e;
      if (!next || next[1].at > end) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

interface NetOptions {
  latencyMs?: number;
  jitterMs?: number;
  loss?: number;
}

/** n members on one simulated segment; `cut` drops what goes between two of them. */
function cluster(n: number, opts: NetOptions & {seed?: number; keys?: (i: number) => Buffer[]; tune?: Partial<MembershipOptions>} = {}) {
  const clock = new SimClock();
  const random = seeded(opts.seed ?? 1);
  const key = randomBytes(32);
  const names = Array.from({length: n}, (_, i) => `node${i + 1}`);
  const down = new Set<string>();
  const cuts = new Set<string>();
  const changes: Array<{at: number; by: string; name: string; state: MemberState}> = [];
  const injected: Array<(to: string, data: Buffer) => void> = [];
  const members = new Map<string, Membership>();
  for (const [i, name] of names.entries()) {
    const m = new Membership({
      self: {name, address: name},
      keys: opts.keys ? opts.keys(i) : [key],
      clock,
      random,
      transport: {
        send: (to, data) => {
          for (const spy of injected) spy(to, data);
          if (down.has(name) || down.has(to) || cuts.has(`${name}|${to}`) || cuts.has(`${to}|${name}`)) return;
          if (random() < (opts.loss ?? 0)) return;
          const delay = (opts.latencyMs ?? 0.3) + random() * (opts.jitterMs ?? 0);
          clock.setTimeout(() => {
            if (!down.has(to)) members.get(to)!.receive(data);
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
  return {clock, members, names, down, cuts, changes, key, injected};
}

test('five live members for a simulated minute: nobody suspected, nobody dead', () => {
  const c = cluster(5);
  c.clock.advance(60_000);
  expect(c.changes).toEqual([]);
  for (const m of c.members.values()) expect(m.live()).toEqual(c.names);
});

test('a member that dies is dead in every other member\'s view within a second', () => {
  const c = cluster(5, {seed: 7});
  c.clock.advance(5000);
  const at = c.clock.now();
  c.down.add('node3');
  c.clock.advance(3000);
  const dead = c.changes.filter((x) => x.name === 'node3' && x.state === 'dead');
  expect(dead.map((d) => d.by).sort()).toEqual(['node1', 'node2', 'node4', 'node5']);
  const last = Math.max(...dead.map((d) => d.at)) - at;
  expect(last).toBeLessThan(1000);
  // Back (a node that was lost and returns): it refutes with a higher incarnation and is alive again everywhere.
  c.down.delete('node3');
  c.clock.advance(10_000);
  for (const [name, m] of c.members) if (name !== 'node3') expect(m.state('node3')).toBe('alive');
});

test('detection time over many deaths: p95 under a second with the defaults', () => {
  const times: number[] = [];
  for (let seed = 1; seed <= 40; seed++) {
    const c = cluster(3, {seed, jitterMs: 2});
    c.clock.advance(2000 + seed * 37);
    const at = c.clock.now();
    c.down.add('node2');
    c.clock.advance(3000);
    const dead = c.changes.filter((x) => x.name === 'node2' && x.state === 'dead');
    expect(dead).toHaveLength(2);
    times.push(Math.min(...dead.map((d) => d.at)) - at);
  }
  times.sort((a, b) => a - b);
  const pct = (p: number) => times[Math.ceil((p / 100) * times.length) - 1];
  console.log(`membership: a death seen by the first member after p50 ${pct(50)} ms, p95 ${pct(95)} ms, max ${times[times.length - 1]} ms (40 deaths, 3 members)`);
  expect(pct(95)).toBeLessThan(1000);
});

test('one dead link between two live members: the others probe for them, nobody is declared dead', () => {
  const c = cluster(4, {seed: 3});
  c.cuts.add('node1|node2');
  c.clock.advance(120_000);
  expect(c.changes.filter((x) => x.state === 'dead')).toEqual([]);
});

test('a lossy segment (2 % loss, 10 ms jitter) for ten simulated minutes, five times over: nobody declared dead', () => {
  for (const seed of [11, 12, 13, 14, 15]) {
    const c = cluster(3, {seed, loss: 0.02, jitterMs: 10});
    c.clock.advance(600_000);
    const suspected = c.changes.filter((x) => x.state === 'suspect').length;
    console.log(`membership: 10 min at 2 % loss, seed ${seed}: ${suspected} suspicions, every one refuted`);
    expect([seed, c.changes.filter((x) => x.state === 'dead')]).toEqual([seed, []]);
  }
});

test('a member falsely suspected refutes it and stays alive', () => {
  const c = cluster(3, {seed: 5});
  c.clock.advance(2000);
  // node2 hears nothing for a moment (a stall): it is suspected, then answers again and refutes.
  c.down.add('node2');
  c.clock.advance(250);
  c.down.delete('node2');
  c.clock.advance(5000);
  for (const [name, m] of c.members) if (name !== 'node2') expect(m.state('node2')).toBe('alive');
  expect(c.changes.filter((x) => x.state === 'dead')).toEqual([]);
});

test('without the key nothing counts: forged news of a death, and forged acks for a dead member, are dropped', () => {
  const c = cluster(3, {seed: 9});
  c.clock.advance(2000);
  // A host on the segment with its own key says node2 is dead.
  const forger = new Membership({self: {name: 'node1', address: 'evil'}, keys: [randomBytes(32)], clock: c.clock, random: seeded(99), transport: {send: (to, data) => c.members.get(to)?.receive(data)}});
  forger.join([{name: 'node2', address: 'node2'}, {name: 'node3', address: 'node3'}]);
  forger.start();
  c.clock.advance(3000);
  forger.stop();
  expect(c.changes).toEqual([]);
  // A replay of node3's own (signed) messages after node3 died: they keep nothing alive once their time is past the skew.
  const captured: Buffer[] = [];
  c.injected.push((to, data) => {
    if (to === 'node1') captured.push(data);
  });
  c.clock.advance(1000);
  c.down.add('node3');
  c.clock.advance(2000);
  expect(c.members.get('node1')!.state('node3')).toBe('dead');
  const old = captured.slice(-5);
  c.clock.advance(31_000);
  for (const data of old) c.members.get('node1')!.receive(data);
  expect(c.members.get('node1')!.state('node3')).toBe('dead');
});

test('a key rotation without a gap: members that sign with the new key and members that still sign with the old one understand each other', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  // node1 has moved on (signs with the new key, still takes the old); node2 and node3 not yet.
  const c = cluster(3, {seed: 13, keys: (i) => (i === 0 ? [newKey, oldKey] : [oldKey, newKey])});
  c.clock.advance(30_000);
  expect(c.changes).toEqual([]);
  // A member with only the old key cannot read node1: it would suspect it.
  const d = cluster(2, {seed: 13, keys: (i) => (i === 0 ? [newKey] : [oldKey])});
  d.clock.advance(5000);
  expect(d.changes.filter((x) => x.state === 'dead').map((x) => x.name).sort()).toEqual(['node1', 'node2']);
});

test('what each member sends stays about the same from 3 to 50 members', () => {
  const perMember = (n: number) => {
    const c = cluster(n, {seed: 21});
    c.clock.advance(5000); // the join's news spread
    const before = [...c.members.values()].reduce((s, m) => s + m.sent.bytes, 0);
    c.clock.advance(20_000);
    const after = [...c.members.values()].reduce((s, m) => s + m.sent.bytes, 0);
    return (after - before) / n / 20;
  };
  const small = perMember(3);
  const large = perMember(50);
  console.log(`membership traffic per member: ${small.toFixed(0)} B/s at 3 members, ${large.toFixed(0)} B/s at 50`);
  expect(large / small).toBeLessThan(1.5);
});
