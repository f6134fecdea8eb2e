/**
 * The claim controller's rules (agent/holding.ts), run without a host or an
 * API server: first the fence's state machine event by event, then every row
 * of the README's table of cases on a simulated cluster (test/helpers/simfleet.ts:
 * the controllers' own decisions and their real membership on a simulated
 * segment and clock), sampled every 20 ms as the lab does, and under message
 * loss and reordering. The lab (test/e2e/claims-lab.test.ts) runs the same
 * cases on real programs.
 */
import {describe, expect, test} from '@jest/globals';
import {type ClaimSeen, type FenceEvent, type FenceState, type FenceWorld, duty, fenceStep, seeMoves, startFence, takeovers, wouldTakeOver} from '../../agent/holding.js';
import {Fleet} from '../helpers/simfleet.js';

const FENCE_MS = 1125;

/** Runs events through the machine; returns the last state and every effect, in order. */
function play(events: Array<[FenceEvent, Partial<FenceWorld>?]>, from: FenceState = startFence(0)): {state: FenceState; effects: string[]} {
  let state = from;
  const effects: string[] = [];
  for (const [e, w] of events) {
    const step = fenceStep(state, e, {now: 0, fenceMs: FENCE_MS, ...w});
    state = step.state;
    effects.push(...step.effects.map((x) => (x.do === 'note' ? `note:${x.what}` : x.do)));
  }
  return {state, effects};
}

describe('the fence', () => {
  test('a controller starts fenced, and serves once a heartbeat sent after the start came back and the claims were listed', () => {
    expect(play([[{type: 'beat-ok', sentAt: 10}, {now: 20}]]).state.mode).toBe('fenced');
    const r = play([[{type: 'beat-ok', sentAt: 10}, {now: 20}], [{type: 'claims-listed'}, {now: 30, listedAt: 25}]]);
    expect(r.state.mode).toBe('serving');
    expect(r.effects).toEqual(['list-claims', 'note:serving', 'serve']);
  });

  test('claims listed before the fence began do not end it: the machine asks for a new list', () => {
    const r = play([[{type: 'beat-ok', sentAt: 10}, {now: 20, listedAt: -5}]]);
    expect(r.state.mode).toBe('fenced');
    expect(r.effects).toEqual(['list-claims']);
  });

  test('no heartbeat for the fence time without a membership: the addresses come down', () => {
    const serving: FenceState = {mode: 'serving', lastBeat: 1000, fencedAt: 0, beatFailing: false};
    expect(play([[{type: 'tick'}, {now: 1000 + FENCE_MS}]], serving).state.mode).toBe('serving');
    const r = play([[{type: 'beat-failed'}, {now: 1500}], [{type: 'tick'}, {now: 1001 + FENCE_MS}]], serving);
    expect(r.state).toMatchObject({mode: 'fenced', fencedAt: 1001 + FENCE_MS});
    expect(r.effects).toEqual(['note:beat-failing', 'fence', 'note:self-fenced']);
  });

  test('no heartbeat but peers answer: kept, said once; the peers silent too: fenced; a heartbeat: serving', () => {
    const serving: FenceState = {mode: 'serving', lastBeat: 1000, fencedAt: 0, beatFailing: true};
    const kept = play([[{type: 'tick'}, {now: 3000, peersHeard: true}], [{type: 'tick'}, {now: 3100, peersHeard: true}]], serving);
    expect(kept.state.mode).toBe('keeping');
    expect(kept.effects).toEqual(['note:kept-without-api']);
    expect(play([[{type: 'tick'}, {now: 3200, peersHeard: false}]], kept.state).effects).toEqual(['fence', 'note:self-fenced']);
    const back = play([[{type: 'beat-ok', sentAt: 3300}, {now: 3310}]], kept.state);
    expect(back.state.mode).toBe('serving');
    expect(back.effects).toEqual(['note:beat-back']);
  });

  test('heartbeat replies out of order: the newest send counts, an older reply does not set it back', () => {
    const serving: FenceState = {mode: 'serving', lastBeat: 1000, fencedAt: 0, beatFailing: false};
    const r = play([[{type: 'beat-ok', sentAt: 2000}, {now: 2010}], [{type: 'beat-ok', sentAt: 1500}, {now: 2020}]], serving);
    expect(r.state.lastBeat).toBe(2000);
    expect(play([[{type: 'tick'}, {now: 2000 + FENCE_MS}]], r.state).state.mode).toBe('serving');
  });

  test('a lost heartbeat or two within the fence time changes nothing but the log', () => {
    const serving: FenceState = {mode: 'serving', lastBeat: 1000, fencedAt: 0, beatFailing: false};
    const r = play([[{type: 'beat-failed'}, {now: 1500}], [{type: 'tick'}, {now: 1600}], [{type: 'beat-failed'}, {now: 2000}], [{type: 'tick'}, {now: 2100}]], serving);
    expect(r.state.mode).toBe('serving');
    expect(r.effects).toEqual(['note:beat-failing']);
  });

  test('the link goes: peers paused, addresses down, IpNode deleted; a heartbeat sent before says nothing; back: fenced until a new heartbeat and list', () => {
    const serving: FenceState = {mode: 'serving', lastBeat: 1000, fencedAt: 0, beatFailing: false};
    const lost = play([[{type: 'link-down', state: 'lowerlayerdown'}, {now: 1100}], [{type: 'beat-ok', sentAt: 1050}, {now: 1150}], [{type: 'link-down', state: 'down'}, {now: 1200}]], serving);
    expect(lost.state).toMatchObject({mode: 'link-lost', lastBeat: 0, link: 'lowerlayerdown', fencedAt: 1100});
    expect(lost.effects).toEqual(['pause-peers', 'fence', 'delete-ipnode', 'note:link-lost']);
    const back = play([[{type: 'link-up'}, {now: 5000}]], lost.state);
    expect(back.state.mode).toBe('fenced');
    expect(back.effects).toEqual(['note:link-back', 'resume-peers', 'heartbeat']);
    expect(play([[{type: 'beat-ok', sentAt: 5010}, {now: 5020, listedAt: 5015}]], back.state).state.mode).toBe('serving');
  });

  test('stopped is final', () => {
    const r = play([[{type: 'stop'}], [{type: 'beat-ok', sentAt: 10}, {now: 20, listedAt: 20}], [{type: 'link-down', state: 'down'}]]);
    expect(r.state.mode).toBe('stopped');
    expect(r.effects).toEqual([]);
  });
});

describe('takeovers and duties', () => {
  const members = ['node1', 'node2', 'node3'];
  const claim: ClaimSeen = {name: 'c1', holder: 'node2', cidr: '10.0.0.1/32'};
  const world = (self: string, dead: string[], over: Partial<Parameters<typeof takeovers>[2]> = {}) => ({
    self, members, state: (n: string) => (dead.includes(n) ? 'dead' : 'alive'), hearing: true, upHere: () => false, ...over,
  });

  test('exactly one live member takes a dead holder\'s claim: the first of its standbys', () => {
    const takers = members.filter((m) => takeovers(new Map(), [claim], world(m, ['node2'])).serve.has('c1'));
    expect(takers).toHaveLength(1);
    expect(takers[0]).not.toBe('node2');
  });

  test('one that hears nobody takes nothing, however dead the others look', () => {
    for (const m of ['node1', 'node3']) expect(takeovers(new Map(), [claim], world(m, members.filter((x) => x !== m), {hearing: false})).serve.size).toBe(0);
  });

  test('a takeover lasts until the claim is assigned anew; one that never came up here ends when the holder is back', () => {
    const taker = members.find((m) => takeovers(new Map(), [claim], world(m, ['node2'])).serve.has('c1'))!;
    const t = takeovers(new Map(), [claim], world(taker, ['node2']));
    expect(takeovers(t.taken, [claim], world(taker, [], {upHere: () => true})).serve.has('c1')).toBe(true);
    expect(takeovers(t.taken, [claim], world(taker, [], {upHere: () => false})).serve.has('c1')).toBe(false);
    expect(takeovers(t.taken, [{...claim, holder: taker}], world(taker, [])).taken.size).toBe(0);
  });

  test('while a holder is only suspect, the node that would take its claim over is the one that does once it is dead', () => {
    const alive = () => 'alive';
    const would = members.filter((m) => m !== 'node2' && wouldTakeOver(m, 'node2', 'c1', members, alive));
    const does = members.filter((m) => takeovers(new Map(), [claim], world(m, ['node2'])).serve.has('c1'));
    expect(would).toEqual(does);
    expect(would).toHaveLength(1);
  });

  test('a claim moved to its holder after this node found the holder dead is not taken (the scheduler saw it live later); a new death is', () => {
    const taker = members.find((m) => takeovers(new Map(), [claim], world(m, ['node2'])).serve.has('c1'))!;
    // node2 found dead at 1000; the scheduler gives the claim to node2 at 5000 (node2 is back, and this node has not heard).
    let seen = seeMoves(new Map(), [{name: 'c1', holder: 'node1'}], 0);
    seen = seeMoves(seen, [{name: 'c1', holder: 'node2'}], 5000);
    expect(seen.get('c1')).toEqual({holder: 'node2', at: 5000});
    expect(seeMoves(seen, [{name: 'c1', holder: 'node2'}], 9000).get('c1')).toEqual({holder: 'node2', at: 5000});
    const moved = {...claim, movedAt: seen.get('c1')!.at};
    expect(takeovers(new Map(), [moved], world(taker, ['node2'], {deadSince: () => 1000})).serve.has('c1')).toBe(false);
    // node2 dies again after the move: taken.
    expect(takeovers(new Map(), [moved], world(taker, ['node2'], {deadSince: () => 6000})).serve.has('c1')).toBe(true);
    // Held by node2 since this node first saw it: a death is a death.
    expect(takeovers(new Map(), [claim], world(taker, ['node2'], {deadSince: () => 1000})).serve.has('c1')).toBe(true);
  });

  test('duty: a claim here that another node says it took stays with the taker; a handoff is let go', () => {
    expect(duty({name: 'c1', holder: 'node1'}, 'node1', new Set())).toBe('serve');
    expect(duty({name: 'c1', holder: 'node1', takenBy: 'node3'}, 'node1', new Set())).toBe('none');
    expect(duty({name: 'c1', holder: 'node1', takenBy: 'node1'}, 'node1', new Set())).toBe('serve');
    expect(duty({name: 'c1', holder: 'node1', releaseTo: 'node2'}, 'node1', new Set())).toBe('release');
    expect(duty({name: 'c1', holder: 'node2', releaseTo: 'node3'}, 'node1', new Set(['c1']))).toBe('serve');
    expect(duty({name: 'c1', holder: 'node2'}, 'node1', new Set())).toBe('none');
    expect(duty({name: 'c1', holder: 'node1', deleting: true}, 'node1', new Set())).toBe('none');
  });
});

/**
 * Samples a fleet every 20 ms: no two holders that hear each other, ever,
 * and for each address the longest time nobody reachable answered for it
 * (from when `from` says the clock starts counting).
 */
function watch(f: Fleet): {sample: () => void; gaps: Map<string, number>; doubles: string[]} {
  const since = new Map<string, number>();
  const gaps = new Map<string, number>();
  const doubles: string[] = [];
  return {
    gaps,
    doubles,
    sample: () => {
      for (const d of f.doubleHolders()) doubles.push(`${f.now}: ${d}`);
      for (const c of f.claims.values()) {
        if (f.answering(c.cidr).length) {
          since.delete(c.cidr);
          continue;
        }
        const s = since.get(c.cidr) ?? f.now;
        since.set(c.cidr, s);
        gaps.set(c.cidr, Math.max(gaps.get(c.cidr) ?? 0, f.now - s + 20));
      }
    },
  };
}

/** A fleet of three with six addresses, two a node, settled. */
function settled(opts: ConstructorParameters<typeof Fleet>[0] = {}): Fleet {
  const f = new Fleet({nodes: 3, claims: 6, ...opts});
  f.run(5000);
  for (const c of f.claims.values()) expect([c.cidr, f.holders(c.cidr)]).toEqual([c.cidr, [c.holder]]);
  return f;
}

/** Prints the longest gap of the lost addresses, as the lab tests print theirs. */
function report(what: string, gaps: ReadonlyMap<string, number>, lost: readonly string[]): void {
  console.log(`simulated: ${what}: its ${lost.length} addresses answered elsewhere after at most ${Math.max(...lost.map((c) => gaps.get(c) ?? 0))} ms (sampled every 20 ms)`);
}

const holdersOf = (f: Fleet) => Object.fromEntries([...f.claims.values()].map((c) => [c.cidr, c.holder]));
const mine = (f: Fleet, node: string) => [...f.claims.values()].filter((c) => c.holder === node).map((c) => c.cidr);

describe('the table of cases, on a simulated cluster', () => {
  test.each([
    ['a quiet segment', {}],
    ['a lossy segment (2 % loss, 10 ms jitter)', {loss: 0.02, jitterMs: 10, seed: 11}],
  ])('the API server down for every node, 5 minutes, on %s: no address goes down, none moves', (_, segment) => {
    const f = settled(segment);
    const before = holdersOf(f);
    const w = watch(f);
    f.api = false;
    f.run(5 * 60_000, w.sample);
    expect(w.gaps.size).toBe(0);
    expect(w.doubles).toEqual([]);
    for (const c of f.claims.values()) expect([c.cidr, f.holders(c.cidr)]).toEqual([c.cidr, [before[c.cidr]]]);
    f.api = true;
    f.run(10_000, w.sample);
    expect(holdersOf(f)).toEqual(before);
    expect(f.moves).toEqual([]);
    expect(w.gaps.size).toBe(0);
  });

  test('a node loses its link (the API too): its addresses answer elsewhere in under 1 s; it withdraws them itself', () => {
    const f = settled();
    const lost = mine(f, 'node2');
    const w = watch(f);
    f.setLink('node2', false);
    f.apiCut.add('node2');
    f.run(10_000, w.sample);
    report('node2 lost its link and the API', w.gaps, lost);
    for (const cidr of lost) expect(w.gaps.get(cidr)).toBeLessThan(1000);
    expect(f.node('node2').up.size).toBe(0);
    expect(w.doubles).toEqual([]);
    for (const cidr of lost) expect(f.answering(cidr)).toHaveLength(1);
    // Back: it serves again, never beside another holder.
    f.setLink('node2', true);
    f.apiCut.delete('node2');
    f.run(20_000, w.sample);
    expect(w.doubles).toEqual([]);
    for (const c of f.claims.values()) expect(f.holders(c.cidr)).toEqual([c.holder]);
  });

  test('a node loses only the API: it keeps its addresses; nothing moves', () => {
    const f = settled();
    const before = holdersOf(f);
    const w = watch(f);
    f.apiCut.add('node3');
    f.run(60_000, w.sample);
    expect(f.moves).toEqual([]);
    expect(holdersOf(f)).toEqual(before);
    for (const c of f.claims.values()) expect(f.holders(c.cidr)).toEqual([before[c.cidr]]);
    expect(w.gaps.size).toBe(0);
    expect(f.node('node3').notes.some((n) => n.endsWith('kept-without-api'))).toBe(true);
  });

  test('a node\'s interface loses its link while its API path is fine: its addresses answer elsewhere in under 1 s', () => {
    const f = settled();
    const lost = mine(f, 'node1');
    const w = watch(f);
    f.setLink('node1', false);
    f.run(10_000, w.sample);
    report('node1\'s interface lost its link, its API path fine', w.gaps, lost);
    for (const cidr of lost) expect(w.gaps.get(cidr)).toBeLessThan(1000);
    expect(w.doubles).toEqual([]);
    // The API saw the IpNode deleted: the claims were moved to where they answer.
    for (const cidr of lost) expect(f.holders(cidr)).toEqual([[...f.claims.values()].find((c) => c.cidr === cidr)!.holder]);
  });

  test('a node lost while the API is down: its addresses answer elsewhere in under 1 s; the records catch up when it returns', () => {
    const f = settled();
    const lost = mine(f, 'node2');
    const w = watch(f);
    f.api = false;
    f.run(5000, w.sample);
    f.setLink('node2', false);
    f.apiCut.add('node2');
    f.run(20_000, w.sample);
    report('node2 lost while the API is down', w.gaps, lost);
    for (const cidr of lost) expect(w.gaps.get(cidr)).toBeLessThan(1000);
    for (const c of f.claims.values()) if (lost.includes(c.cidr)) expect(c.holder).toBe('node2');
    f.api = true;
    f.run(10_000, w.sample);
    for (const c of f.claims.values()) expect([c.cidr, f.answering(c.cidr)]).toEqual([c.cidr, [c.holder]]);
    expect(f.moves.filter((m) => lost.includes(f.claims.get(m.name)!.cidr)).every((m) => m.why === 'taken-over')).toBe(true);
    expect(w.doubles).toEqual([]);
    // node2 comes back: never two holders.
    f.setLink('node2', true);
    f.apiCut.delete('node2');
    f.run(20_000, w.sample);
    expect(w.doubles).toEqual([]);
  });

  test('the lost node ran the scheduler\'s leader: no slower than any other node loss', () => {
    const f = settled();
    const lost = mine(f, 'node1');
    const w = watch(f);
    f.setLink('node1', false);
    f.apiCut.add('node1');
    f.schedulerPausedUntil = f.now + 15_000;
    f.run(10_000, w.sample);
    report('node1 lost with the scheduler\'s leader', w.gaps, lost);
    for (const cidr of lost) expect(w.gaps.get(cidr)).toBeLessThan(1000);
    expect(w.doubles).toEqual([]);
  });

  test('the controller is killed (kill -9), its node fine: no gap, no move', () => {
    const f = settled();
    const before = holdersOf(f);
    const w = watch(f);
    f.kill('node3');
    f.run(1000, w.sample);
    f.restart('node3');
    f.run(20_000, w.sample);
    expect(w.gaps.size).toBe(0);
    expect(w.doubles).toEqual([]);
    expect(f.moves).toEqual([]);
    expect(holdersOf(f)).toEqual(before);
  });

  test('a lossy segment (2 % loss, 10 ms jitter: messages lost and reordered) for 10 minutes: no failover at all', () => {
    const f = settled({loss: 0.02, jitterMs: 10, seed: 7});
    const before = holdersOf(f);
    const w = watch(f);
    f.run(10 * 60_000, w.sample);
    expect(w.gaps.size).toBe(0);
    expect(w.doubles).toEqual([]);
    expect(f.moves).toEqual([]);
    expect(holdersOf(f)).toEqual(before);
    for (const n of f.nodes.values()) expect([n.name, n.notes.filter((x) => x.includes('took over'))]).toEqual([n.name, []]);
  });
});
