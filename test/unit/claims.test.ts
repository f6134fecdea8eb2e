/** Claims mode's decisions on their own: names, placement, liveness, the fence time. */
import {describe, expect, test} from '@jest/globals';
import {type ClaimView, Liveness, claimName, decide, fenceAfterMs, givenBack, handoffs} from '../../agent/claims.js';
import {FlagError, parseAgentFlags} from '../../lib/agent-flags.js';

const cidrs = (n: number) => Array.from({length: n}, (_, i) => `10.0.0.${i + 1}/32`);
const perNode = (d: ReturnType<typeof decide>, claims: ClaimView[] = []) => {
  const where = new Map(claims.map((c) => [c.name, c.node]));
  for (const c of d.create) where.set(c.name, c.node);
  for (const m of d.move) where.set(m.name, m.to);
  for (const r of d.remove) where.delete(r);
  const counts: Record<string, number> = {};
  for (const n of where.values()) counts[n] = (counts[n] ?? 0) + 1;
  return counts;
};

test('claim names are upstream\'s, and valid object names for IPv6 too', () => {
  expect(claimName('10.0.0.7/24')).toBe('10-0-0-7-24');
  expect(claimName('fd00::7/128')).toBe('fd00--7-128');
  expect(claimName('::1/128')).toBe('0--1-128');
});

describe('fair', () => {
  test('6 addresses on 3 nodes: 2 each', () => {
    const d = decide(new Set(cidrs(6)), [], ['node1', 'node2', 'node3'], 'fair');
    expect(perNode(d)).toEqual({node1: 2, node2: 2, node3: 2});
    expect(d.move).toEqual([]);
  });

  test('a healthy claim stays unless the imbalance is above one', () => {
    const claims = cidrs(5).map((cidr, i) => ({name: claimName(cidr), cidr, node: ['node1', 'node1', 'node2', 'node2', 'node3'][i]}));
    const d = decide(new Set(cidrs(5)), claims, ['node1', 'node2', 'node3'], 'fair');
    expect(d).toEqual({create: [], move: [], remove: [], waiting: []});
    const lopsided = cidrs(4).map((cidr) => ({name: claimName(cidr), cidr, node: 'node1'}));
    const r = decide(new Set(cidrs(4)), lopsided, ['node1', 'node2', 'node3'], 'fair');
    expect(perNode(r, lopsided)).toEqual({node1: 2, node2: 1, node3: 1});
    expect(r.move.every((m) => m.from === 'node1' && m.reason.startsWith('rebalancing'))).toBe(true);
  });

  test('a dead node\'s claims go to the live ones, with the reason; unwanted claims are removed', () => {
    const claims = cidrs(4).map((cidr, i) => ({name: claimName(cidr), cidr, node: ['node1', 'node2', 'node3', 'node3'][i]}));
    const d = decide(new Set(cidrs(3)), claims, ['node1', 'node2'], 'fair', (n) => `${n} is silent`);
    expect(d.remove).toEqual(['10-0-0-4-32']);
    expect(d.move).toEqual([{name: '10-0-0-3-32', cidr: '10.0.0.3/32', from: 'node3', to: 'node1', reason: 'node3 is silent'}]);
  });

  test('with no live node, addresses wait', () => {
    const d = decide(new Set(cidrs(2)), [], [], 'fair');
    expect(d.waiting).toEqual(cidrs(2));
    expect(d.create).toEqual([]);
  });
});

test('first-alive packs every claim onto the node holding the most, and stays there', () => {
  const d = decide(new Set(cidrs(6)), [], ['node1', 'node2', 'node3'], 'first-alive');
  expect(perNode(d)).toEqual({node1: 6});
  const spread = cidrs(3).map((cidr, i) => ({name: claimName(cidr), cidr, node: ['node2', 'node2', 'node3'][i]}));
  const packed = decide(new Set(cidrs(3)), spread, ['node1', 'node2', 'node3'], 'first-alive');
  expect(perNode(packed, spread)).toEqual({node2: 3});
  const settled = cidrs(3).map((cidr) => ({name: claimName(cidr), cidr, node: 'node2'}));
  expect(decide(new Set(cidrs(3)), settled, ['node1', 'node2', 'node3'], 'first-alive').move).toEqual([]);
});

describe('handoffs', () => {
  const live = ['node1', 'node2'];
  const lopsided = (extra: Partial<ClaimView> = {}): ClaimView[] =>
    cidrs(3).map((cidr, i) => ({name: claimName(cidr), cidr, node: 'node1', ...(i === 2 ? extra : {})}));
  const kinds = (claims: ClaimView[], alive = live) => handoffs(decide(new Set(cidrs(3)), claims, alive, 'fair'), claims, alive)
    .map((s) => (s.kind === 'cancel' ? `cancel ${s.name}` : `${s.kind} ${s.move.name} ${s.move.from}->${s.move.to}`));

  test('a claim on a live node is asked for, waited on, and assigned only once its holder let go', () => {
    expect(kinds(lopsided())).toEqual(['ask 10-0-0-3-32 node1->node2']);
    expect(kinds(lopsided({releaseTo: 'node2'}))).toEqual(['wait 10-0-0-3-32 node1->node2']);
    // Confirmed by another node than the holder: not a confirmation.
    expect(kinds(lopsided({releaseTo: 'node2', releasedBy: 'node3'}))).toEqual(['wait 10-0-0-3-32 node1->node2']);
    const confirmed = lopsided({releaseTo: 'node2', releasedBy: 'node1'});
    const steps = handoffs(decide(new Set(cidrs(3)), confirmed, live, 'fair'), confirmed, live);
    expect(steps).toEqual([{kind: 'assign', move: expect.objectContaining({name: '10-0-0-3-32', from: 'node1', to: 'node2', reason: expect.stringContaining('node1 let go first')})}]);
  });

  test('asked for another node than the one now chosen: asked again', () => {
    expect(kinds(lopsided({releaseTo: 'node3', releasedBy: 'node1'}))).toEqual(['ask 10-0-0-3-32 node1->node2']);
  });

  test('a dead holder\'s claims are assigned at once, even in the middle of a handoff', () => {
    const claims = cidrs(2).map((cidr, i) => ({name: claimName(cidr), cidr, node: 'node3', ...(i === 0 ? {releaseTo: 'node2'} : {})}));
    const steps = handoffs(decide(new Set(cidrs(2)), claims, ['node1', 'node2'], 'fair'), claims, ['node1', 'node2']);
    expect(steps.map((s) => s.kind)).toEqual(['assign', 'assign']);
  });

  test('a handoff the decision no longer wants is cancelled; a removed claim needs none', () => {
    const three = ['node1', 'node2', 'node3'];
    const settled = cidrs(3).map((cidr, i) => ({name: claimName(cidr), cidr, node: three[i], ...(i === 1 ? {releaseTo: 'node3', releasedBy: 'node2'} : {})}));
    expect(kinds(settled, three)).toEqual(['cancel 10-0-0-2-32']);
    const unwanted = [{name: '10-0-0-9-32', cidr: '10.0.0.9/32', node: 'node1', releaseTo: 'node2'}];
    expect(handoffs(decide(new Set(), unwanted, live, 'fair'), unwanted, live)).toEqual([]);
  });
});

test('a claim goes back to the live node that still has its address up, only while the node it went to has not brought it up', () => {
  const claim = (extra: Partial<ClaimView>): ClaimView => ({name: '10-0-0-1-32', cidr: '10.0.0.1/32', node: 'node2', ...extra});
  expect(givenBack([claim({heldBy: 'node3', upOn: 'node3'})], ['node2', 'node3'])).toEqual([
    {name: '10-0-0-1-32', cidr: '10.0.0.1/32', from: 'node2', to: 'node3', reason: 'node3 still has it up and node2 did not bring it up', alreadyUp: true},
  ]);
  expect(givenBack([claim({heldBy: 'node3'})], ['node2', 'node3'])).toHaveLength(1);
  // The node it went to has it up: it stays there.
  expect(givenBack([claim({heldBy: 'node3', upOn: 'node2'})], ['node2', 'node3'])).toEqual([]);
  // The holder is not live (it went quiet again), or it is the claim's node already.
  expect(givenBack([claim({heldBy: 'node3'})], ['node2'])).toEqual([]);
  expect(givenBack([claim({heldBy: 'node2'})], ['node2', 'node3'])).toEqual([]);
  // A handoff asked of node2, which never had it up: the claim goes back all the same.
  expect(givenBack([claim({heldBy: 'node3', releaseTo: 'node1'})], ['node1', 'node2', 'node3'])).toHaveLength(1);
  expect(givenBack([claim({})], ['node2', 'node3'])).toEqual([]);
});

test('liveness: a node is live while its heartbeat value changes within the timeout; reset gives a full timeout', () => {
  const l = new Liveness(1000);
  expect(l.observe('a', 1, 0)).toBe(true);
  l.observe('b', 1, 0);
  expect(l.observe('a', 1, 900)).toBe(false); // the same value: not a heartbeat
  expect(l.observe('b', 2, 900)).toBe(true);
  expect(l.live(1500)).toEqual(['b']);
  expect(l.silentFor('a', 1500)).toBe(1500);
  l.reset(1500);
  expect(l.live(2400)).toEqual(['a', 'b']);
  l.forget(['b']);
  expect(l.live(2400)).toEqual(['b']);
});

test('liveness: the next expiry is the first live node\'s last heartbeat plus the timeout, just past it', () => {
  const l = new Liveness(1000);
  expect(l.nextExpiry(0)).toBeUndefined();
  l.observe('a', 1, 0);
  l.observe('b', 1, 300);
  expect(l.nextExpiry(500)).toBe(1001);
  expect(l.live(1001)).toEqual(['b']);
  // Once a has expired, b is next; once both have, nothing.
  expect(l.nextExpiry(1001)).toBe(1301);
  expect(l.nextExpiry(1301)).toBeUndefined();
});

test('the fence comes before the scheduler may move: --monitor less min(--hb, --monitor/4)', () => {
  expect(fenceAfterMs(500, 2000)).toBe(1500);
  expect(fenceAfterMs(2000, 4000)).toBe(3000);
  for (const [hb, monitor] of [[100, 400], [500, 2000], [2000, 4000], [900, 1000]]) {
    expect(fenceAfterMs(hb, monitor)).toBeLessThan(monitor);
    expect(fenceAfterMs(hb, monitor)).toBeGreaterThan(0);
  }
});

test('claims-mode flags: upstream defaults, and what cannot work is refused', () => {
  const f = parseAgentFlags(['--iface=eth0']);
  expect([f.hbMs, f.monitorMs, f.nodefilter, f.leaderElect, f.leaseDurationMs, f.renewDeadlineMs, f.retryPeriodMs]).toEqual([2000, 4000, 'fair', false, 15000, 10000, 2000]);
  expect(() => parseAgentFlags(['--hb=2s', '--monitor=1s'])).toThrow(/--monitor \(1s\) must be longer than --hb \(2s\)/);
  expect(() => parseAgentFlags(['--nodefilter=random'])).toThrow(FlagError);
  expect(() => parseAgentFlags(['--leader-elect-resource-lock=endpoints'])).toThrow(/only leases/);
  expect(() => parseAgentFlags(['--leader-elect-renew-deadline=20s'])).toThrow(/lease-duration > --leader-elect-renew-deadline/);
});

test('a lease duration given alone scales the renew deadline and retry period as Kubernetes defaults 15s/10s/2s do', () => {
  const short = parseAgentFlags(['--leader-elect-lease-duration=3s']);
  expect([short.leaseDurationMs, short.renewDeadlineMs, short.retryPeriodMs]).toEqual([3000, 2000, 400]);
  const given = parseAgentFlags(['--leader-elect-lease-duration=3s', '--leader-elect-renew-deadline=2500ms', '--leader-elect-retry-period=1s']);
  expect([given.renewDeadlineMs, given.retryPeriodMs]).toEqual([2500, 1000]);
  expect(() => parseAgentFlags(['--leader-elect-lease-duration=3s', '--leader-elect-renew-deadline=10s'])).toThrow(/lease-duration > --leader-elect-renew-deadline/);
});

test('the probe and announcement flags: defaults, off with 0, and bounds', () => {
  const f = parseAgentFlags([]);
  expect([f.dadWaitMs, f.announce]).toEqual([100, 3]);
  const off = parseAgentFlags(['--dad-wait=0', '--announce=0']);
  expect([off.dadWaitMs, off.announce]).toEqual([0, 0]);
  expect(parseAgentFlags(['--dad-wait', '1s']).dadWaitMs).toBe(1000);
  expect(() => parseAgentFlags(['--dad-wait=1m'])).toThrow(/longer than 10s/);
  expect(() => parseAgentFlags(['--dad-wait=soon'])).toThrow(/invalid duration "soon"/);
  expect(() => parseAgentFlags(['--announce=many'])).toThrow(/invalid --announce "many" \(gratuitous ARPs/);
  expect(() => parseAgentFlags(['--announce=11'])).toThrow(FlagError);
});
