/** Allocation from IpClaimPools on its own: which Service gets which address, what is released, what fails and why. */
import {expect, test} from '@jest/globals';
import {type PoolView, type ServiceView, planPools, poolAddresses, serviceView} from '../../lib/pools.js';

const pool = (extra: Partial<PoolView> = {}): PoolView => ({name: 'pool-a', cidr: '192.0.2.0/24', ranges: [['192.0.2.10', '192.0.2.12']], allocated: {}, ...extra});
const svc = (name: string, extra: Partial<ServiceView> = {}): ServiceView => ({key: `default/${name}`, namespace: 'default', name, auto: false, lb: false, externalIPs: [], ingress: [], ...extra});
const given = (p: ReturnType<typeof planPools>) => p.allocate.map((a) => (a.kind === 'failed' ? `${a.service.name} failed: ${a.reason}` : `${a.service.name} ${a.kind} ${a.ip}`));

test('a pool gives its ranges, or its whole cidr but the network and broadcast addresses', () => {
  expect(poolAddresses(pool())).toEqual(['192.0.2.10', '192.0.2.11', '192.0.2.12']);
  expect(poolAddresses(pool({cidr: '198.51.100.0/30', ranges: []}))).toEqual(['198.51.100.1', '198.51.100.2']);
  expect(poolAddresses(pool({cidr: '198.51.100.7/32', ranges: []}))).toEqual(['198.51.100.7']);
  // A range reaching outside the cidr is cut to it.
  expect(poolAddresses(pool({cidr: '192.0.2.0/30', ranges: [['192.0.2.2', '192.0.2.9']]}))).toEqual(['192.0.2.2', '192.0.2.3']);
});

test('LoadBalancers and external-ip: auto Services get the first free addresses; what is taken is skipped', () => {
  const p = planPools([
    svc('lb', {lb: true}),
    svc('auto', {auto: true}),
    svc('manual', {externalIPs: ['192.0.2.10']}),
  ], [pool({allocated: {'192.0.2.11': '192-0-2-11-32'}})]);
  // 192.0.2.10 is some Service's already, .11 is allocated: the first by name gets .12, and the pool is then exhausted.
  expect(given(p)).toEqual(['auto external-ip 192.0.2.12', 'lb failed: every IpClaimPool is exhausted (pool-a)']);
});

test('a LoadBalancer gets the address it asks for when a pool holds it and it is free, and is told why not otherwise', () => {
  const pools = [pool({allocated: {'192.0.2.11': 'x'}})];
  expect(given(planPools([svc('a', {lb: true, requested: '192.0.2.12'})], pools))).toEqual(['a ingress 192.0.2.12']);
  expect(given(planPools([svc('a', {lb: true, requested: '192.0.2.11'})], pools))).toEqual(['a failed: the address asked for, 192.0.2.11, is taken']);
  expect(given(planPools([svc('a', {lb: true, requested: '203.0.113.5'})], pools))).toEqual(['a failed: the address asked for, 203.0.113.5, is in no IpClaimPool']);
  expect(given(planPools([svc('a', {lb: true})], []))).toEqual(['a failed: there is no IpClaimPool']);
});

test('a Service that has its address keeps it; one the pool does not record yet is recorded', () => {
  const pools = [pool({allocated: {'192.0.2.10': '192-0-2-10-32'}})];
  expect(given(planPools([svc('lb', {lb: true, ingress: ['192.0.2.10']})], pools))).toEqual([]);
  expect(given(planPools([svc('auto', {auto: true, externalIPs: ['192.0.2.10']})], pools))).toEqual([]);
  expect(given(planPools([svc('lb', {lb: true, ingress: ['192.0.2.11']})], pools))).toEqual(['lb record 192.0.2.11']);
});

test('an address no Service uses is released, unless it was given moments ago', () => {
  const pools = [pool({allocated: {'192.0.2.10': 'a', '192.0.2.11': 'b'}})];
  const p = planPools([svc('keep', {externalIPs: ['192.0.2.10']})], pools);
  expect([...p.release]).toEqual([['pool-a', ['192.0.2.11']]]);
  expect([...planPools([svc('keep', {externalIPs: ['192.0.2.10']})], pools, new Map([['192.0.2.11', 'default/other']])).release]).toEqual([]);
});

test('a Service whose write of its address failed gets the same address again, not a second one', () => {
  // auto was given .10 moments ago (the pool records it), but its cached version was stale and the
  // Service does not show it; lb asks next.
  const pools = [pool({allocated: {'192.0.2.10': 'x'}})];
  const p = planPools([svc('auto', {auto: true}), svc('lb', {lb: true})], pools, new Map([['192.0.2.10', 'default/auto']]));
  expect(given(p)).toEqual(['auto external-ip 192.0.2.10', 'lb ingress 192.0.2.11']);
  expect([...p.release]).toEqual([]);
});

test('a Service no longer a LoadBalancer extip serves has its ingress cleared and its address released', () => {
  const p = planPools([svc('was-lb', {lb: false, ingress: ['192.0.2.10']})], [pool({allocated: {'192.0.2.10': 'x'}})]);
  expect(p.clearIngress.map((s) => s.name)).toEqual(['was-lb']);
  expect([...p.release]).toEqual([['pool-a', ['192.0.2.10']]]);
});

test('which Services extip serves: LoadBalancers of no class or its own, and the upstream annotation', () => {
  const lb = (spec: Record<string, unknown>, annotations: Record<string, string> = {}) => serviceView({metadata: {name: 's', namespace: 'n', annotations}, spec: {type: 'LoadBalancer', ...spec}}, 'extip.io/ipmanager');
  expect(lb({}).lb).toBe(true);
  expect(lb({loadBalancerClass: 'extip.io/ipmanager'}).lb).toBe(true);
  expect(lb({loadBalancerClass: 'metallb.io/metallb'}).lb).toBe(false);
  expect(lb({loadBalancerIP: '192.0.2.11'}).requested).toBe('192.0.2.11');
  expect(lb({loadBalancerIP: '192.0.2.11'}, {'extip.io/load-balancer-ip': '192.0.2.12'}).requested).toBe('192.0.2.12');
  const auto = serviceView({metadata: {name: 's', namespace: 'n', annotations: {'external-ip': 'auto'}}, spec: {type: 'ClusterIP', externalIPs: ['10.0.0.1']}}, 'x');
  expect([auto.auto, auto.lb, auto.externalIPs]).toEqual([true, false, ['10.0.0.1']]);
});

test('a pool limited to namespaces gives addresses only to Services there, and says so to the others', () => {
  const pools = [pool({name: 'team-a', namespaces: ['team-a']}), pool({name: 'shared', cidr: '198.51.100.0/30', ranges: []})];
  const inA = svc('x', {lb: true, namespace: 'team-a', key: 'team-a/x'});
  const inB = svc('y', {lb: true, namespace: 'team-b', key: 'team-b/y'});
  expect(given(planPools([inA, inB], pools))).toEqual(['x ingress 192.0.2.10', 'y ingress 198.51.100.1']);
  expect(given(planPools([inB], [pools[0]]))).toEqual(['y failed: no IpClaimPool serves namespace team-b']);
  expect(given(planPools([{...inB, requested: '192.0.2.11'}], pools))).toEqual(['y failed: the address asked for, 192.0.2.11, is in IpClaimPool team-a, which does not serve namespace team-b']);
});

test('which pool gives an address, found without listing the pools\' addresses, agrees with the list', async () => {
  const {poolHolding} = await import('../../lib/pools.js');
  const pools = [pool({name: 'a', cidr: '192.0.2.0/25', ranges: [['192.0.2.10', '192.0.2.12'], ['192.0.2.100', '192.0.2.200']]}), pool({name: 'b', cidr: '192.0.2.128/26', ranges: []})];
  for (let n = 0; n < 256; n++) {
    const ip = `192.0.2.${n}`;
    const listed = pools.find((p) => poolAddresses(p).includes(ip))?.name;
    expect([ip, poolHolding(ip, pools)?.name]).toEqual([ip, listed]);
  }
});
