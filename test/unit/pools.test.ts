/** Allocation from IpClaimPools on its own: which Service gets which address, what is released, what fails and why. */
import {expect, test} from '@jest/globals';
import {type PoolView, type ServiceView, planPools, poolAddresses, serviceView} from '../../lib/pools.js';

const pool = (extra: Partial<PoolView> = {}): PoolView => ({name: 'pool-a', cidr: '192.0.2.0/24', ranges: [['192.0.2.10', '192.0.2.12']], allocated: {}, ...extra});
const svc = (name: string, extra: Partial<ServiceView> = {}): ServiceView => ({key: `default/${name}`, namespace: 'default', name, auto: false, lb: false, requested: [], families: [4], dualStack: 'single', ports: [], externalIPs: [], ingress: [], ...extra});
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
  expect(given(planPools([svc('a', {lb: true, requested: ['192.0.2.12']})], pools))).toEqual(['a ingress 192.0.2.12']);
  expect(given(planPools([svc('a', {lb: true, requested: ['192.0.2.11']})], pools))).toEqual(['a failed: the address asked for, 192.0.2.11, is taken']);
  expect(given(planPools([svc('a', {lb: true, requested: ['203.0.113.5']})], pools))).toEqual(['a failed: the address asked for, 203.0.113.5, is in no IpClaimPool']);
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
  expect(lb({loadBalancerIP: '192.0.2.11'}).requested).toEqual(['192.0.2.11']);
  expect(lb({loadBalancerIP: '192.0.2.11'}, {'extip.io/load-balancer-ip': '192.0.2.12'}).requested).toEqual(['192.0.2.12']);
  const auto = serviceView({metadata: {name: 's', namespace: 'n', annotations: {'external-ip': 'auto'}}, spec: {type: 'ClusterIP', externalIPs: ['10.0.0.1']}}, 'x');
  expect([auto.auto, auto.lb, auto.externalIPs]).toEqual([true, false, ['10.0.0.1']]);
});

test('a pool limited to namespaces gives addresses only to Services there, and says so to the others', () => {
  const pools = [pool({name: 'team-a', namespaces: ['team-a']}), pool({name: 'shared', cidr: '198.51.100.0/30', ranges: []})];
  const inA = svc('x', {lb: true, namespace: 'team-a', key: 'team-a/x'});
  const inB = svc('y', {lb: true, namespace: 'team-b', key: 'team-b/y'});
  expect(given(planPools([inA, inB], pools))).toEqual(['x ingress 192.0.2.10', 'y ingress 198.51.100.1']);
  expect(given(planPools([inB], [pools[0]]))).toEqual(['y failed: no IpClaimPool serves namespace team-b']);
  expect(given(planPools([{...inB, requested: ['192.0.2.11']}], pools))).toEqual(['y failed: the address asked for, 192.0.2.11, is in IpClaimPool team-a, which does not serve namespace team-b']);
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

test('what a LoadBalancer asks for: its addresses from extip\'s annotations, MetalLB\'s or kube-vip\'s, or spec.loadBalancerIP; its families; its sharing key and ports', () => {
  const lb = (spec: Record<string, unknown>, annotations: Record<string, string> = {}) => serviceView({metadata: {name: 's', namespace: 'n', annotations}, spec: {type: 'LoadBalancer', ...spec}}, 'extip.io/ipmanager');
  expect(lb({}, {'extip.io/load-balancer-ips': '192.0.2.10, 2001:db8::10'})).toMatchObject({requested: ['192.0.2.10', '2001:db8::10'], requestedFrom: 'the annotation extip.io/load-balancer-ips'});
  expect(lb({}, {'metallb.io/loadBalancerIPs': '192.0.2.11,2001:db8::11'}).requested).toEqual(['192.0.2.11', '2001:db8::11']);
  expect(lb({}, {'metallb.universe.tf/loadBalancerIPs': '192.0.2.12'}).requested).toEqual(['192.0.2.12']);
  expect(lb({}, {'kube-vip.io/loadbalancerIPs': '192.0.2.13'})).toMatchObject({requested: ['192.0.2.13'], requestedFrom: 'the annotation kube-vip.io/loadbalancerIPs'});
  // extip's own first, then MetalLB's, kube-vip's, and the deprecated field last.
  expect(lb({loadBalancerIP: '192.0.2.14'}, {'kube-vip.io/loadbalancerIPs': '192.0.2.13', 'extip.io/load-balancer-ips': '192.0.2.10'}).requested).toEqual(['192.0.2.10']);
  expect(lb({loadBalancerIP: '192.0.2.14'})).toMatchObject({requested: ['192.0.2.14'], requestedFrom: 'spec.loadBalancerIP'});
  expect(lb({loadBalancerIP: '192.0.2.14'}, {'kube-vip.io/loadbalancerIPs': ' '}).requested).toEqual(['192.0.2.14']);
  // Families: one for SingleStack (IPv4 unless the API server listed another first), both in order otherwise.
  expect(lb({}).families).toEqual([4]);
  expect(lb({ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv6']}).families).toEqual([6]);
  expect(lb({ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4']})).toMatchObject({families: [6, 4], dualStack: 'require'});
  // The API server of a single-stack cluster lists one family for PreferDualStack: the other comes second.
  expect(lb({ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4']})).toMatchObject({families: [4, 6], dualStack: 'prefer'});
  expect(lb({ports: [{port: 80}, {port: 53, protocol: 'UDP'}]}, {'metallb.universe.tf/allow-shared-ip': 'dns'})).toMatchObject({ports: ['TCP/80', 'UDP/53'], sharing: 'dns'});
  expect(lb({}, {'extip.io/allow-shared-ip': 'web', 'metallb.io/allow-shared-ip': 'other'}).sharing).toBe('web');
});

test('IPv6 pools give their ranges, or their whole CIDR but its first address, in the spelling ip uses', async () => {
  const {poolHolding} = await import('../../lib/pools.js');
  const v6 = pool({name: 'v6', cidr: '2001:db8:0:1::/64', ranges: [['2001:db8:0:1::a', '2001:db8:0:1::c']]});
  expect(poolAddresses(v6)).toEqual(['2001:db8:0:1::a', '2001:db8:0:1::b', '2001:db8:0:1::c']);
  expect(poolAddresses(pool({cidr: '2001:db8::/126', ranges: []}))).toEqual(['2001:db8::1', '2001:db8::2', '2001:db8::3']);
  // A range of the other family gives nothing.
  expect(poolAddresses(pool({cidr: '2001:db8::/126', ranges: [['192.0.2.1', '192.0.2.2']]}))).toEqual([]);
  expect(poolHolding('2001:db8:0:1::b', [pool(), v6])?.name).toBe('v6');
  expect(poolHolding('2001:db8:0:1::d', [pool(), v6])).toBeUndefined();
});

test('dual-stack: an address a family, in the order of its families; PreferDualStack takes what there is, RequireDualStack says what is missing', () => {
  const v4 = pool({name: 'v4'});
  const v6 = pool({name: 'v6', cidr: '2001:db8::/64', ranges: [['2001:db8::10', '2001:db8::11']]});
  const both = svc('both', {lb: true, families: [6, 4], dualStack: 'require'});
  const p = planPools([both], [v4, v6]);
  expect(given(p)).toEqual(['both ingress 2001:db8::10', 'both ingress 192.0.2.10']);
  expect(p.ingress).toEqual([{service: both, ips: ['2001:db8::10', '192.0.2.10']}]);
  // It had its IPv4 address: the IPv6 one is added, in the order of its families.
  const half = planPools([{...both, ingress: ['192.0.2.12']}], [v4, v6]);
  expect(given(half)).toEqual(['both ingress 2001:db8::10', 'both record 192.0.2.12']);
  expect(half.ingress[0].ips).toEqual(['2001:db8::10', '192.0.2.12']);
  // Nothing to change: nothing written.
  expect(planPools([{...both, ingress: ['2001:db8::10', '192.0.2.12']}], [{...v4, allocated: {'192.0.2.12': 'x'}}, {...v6, allocated: {'2001:db8::10': 'y'}}]).ingress).toEqual([]);
  // No IPv6 pool: PreferDualStack gets its IPv4 address and no complaint; RequireDualStack gets it and is told.
  expect(given(planPools([svc('prefer', {lb: true, families: [4, 6], dualStack: 'prefer'})], [v4]))).toEqual(['prefer ingress 192.0.2.10']);
  expect(given(planPools([svc('require', {lb: true, families: [4, 6], dualStack: 'require'})], [v4]))).toEqual(['require ingress 192.0.2.10', 'require failed: there is no IpClaimPool of IPv6 addresses']);
  // The IPv6 pool exhausted: said whatever the policy.
  const full = {...v6, allocated: {'2001:db8::10': 'a', '2001:db8::11': 'b'}};
  expect(given(planPools([svc('prefer', {lb: true, families: [4, 6], dualStack: 'prefer'})], [v4, full]))).toEqual(['prefer ingress 192.0.2.10', 'prefer failed: every IpClaimPool of IPv6 addresses is exhausted (v6)']);
  // A single-stack IPv6 Service among pools of both families.
  expect(given(planPools([svc('six', {lb: true, families: [6]})], [v4, v6]))).toEqual(['six ingress 2001:db8::10']);
});

test('a LoadBalancer that names its addresses gets each that a pool holds and is free, and is told of each it cannot have', () => {
  const v6 = pool({name: 'v6', cidr: '2001:db8::/64', ranges: [['2001:db8::10', '2001:db8::11']]});
  const named = svc('named', {lb: true, requested: ['2001:db8::11', '192.0.2.11'], requestedFrom: 'the annotation metallb.io/loadBalancerIPs'});
  const p = planPools([named], [pool(), v6]);
  expect(given(p)).toEqual(['named ingress 2001:db8::11', 'named ingress 192.0.2.11']);
  expect(p.ingress[0].ips).toEqual(['2001:db8::11', '192.0.2.11']);
  const some = planPools([{...named, requested: ['192.0.2.11', '203.0.113.9', 'nonsense', '2001:DB8::0011']}], [pool({allocated: {}}), v6]);
  expect(given(some)).toEqual([
    'named ingress 192.0.2.11',
    'named failed: the address asked for, 203.0.113.9, is in no IpClaimPool',
    'named failed: the address asked for, "nonsense", is not an IP address',
    'named ingress 2001:db8::11',
  ]);
  expect(some.ingress[0].ips).toEqual(['192.0.2.11', '2001:db8::11']);
});

test('shared addresses: LoadBalancers of one namespace with one sharing key and other ports share; a port in common, no key, or another namespace is refused', () => {
  const web = svc('web', {lb: true, sharing: 'front', ports: ['TCP/80'], ingress: ['192.0.2.10']});
  const pools = [pool({allocated: {'192.0.2.10': '192-0-2-10-32'}})];
  // One asking for web's address, one asking for none: both get it.
  const asks = svc('tls', {lb: true, sharing: 'front', ports: ['TCP/443'], requested: ['192.0.2.10']});
  const joins = svc('dns', {lb: true, sharing: 'front', ports: ['UDP/53']});
  const p = planPools([web, asks, joins], pools);
  expect(p.allocate.map((a) => (a.kind === 'share' ? `${a.service.name} share ${a.ip} with ${a.with}` : `${a.service.name} ${a.kind}`))).toEqual(['dns share 192.0.2.10 with default/web', 'tls share 192.0.2.10 with default/web']);
  expect(p.ingress.map((i) => `${i.service.name} ${i.ips.join(' ')}`)).toEqual(['dns 192.0.2.10', 'tls 192.0.2.10']);
  expect([...p.release]).toEqual([]);
  // A port in common: refused, with which.
  expect(given(planPools([web, {...asks, ports: ['TCP/443', 'TCP/80']}], pools))).toEqual(['tls failed: the address asked for, 192.0.2.10, is taken: held by Service default/web, which has port TCP/80 too']);
  // No key in common: refused; one with no address asked for gets its own.
  expect(given(planPools([web, {...asks, sharing: 'other'}], pools))[0]).toMatch(/^tls failed: the address asked for, 192.0.2.10, is taken: held by LoadBalancer default\/web; two LoadBalancers share an address only with one sharing key/);
  expect(given(planPools([web, {...joins, sharing: undefined}], pools))).toEqual(['dns ingress 192.0.2.11']);
  // Another namespace, whatever its key.
  expect(given(planPools([web, {...asks, namespace: 'other', key: 'other/tls'}], pools))).toEqual(['tls failed: the address asked for, 192.0.2.10, is taken: held by Service default/web, of another namespace']);
  // The address goes back to the pool only when the last Service sharing it goes.
  expect([...planPools([{...asks, ingress: ['192.0.2.10']}], pools).release]).toEqual([]);
  expect([...planPools([], pools).release]).toEqual([['pool-a', ['192.0.2.10']]]);
});

test('the older Service is served first: one made later does not take the address an older one asks for', () => {
  const older = svc('zz-older', {lb: true, requested: ['192.0.2.10'], created: '2026-01-01T00:00:00Z'});
  const newer = svc('aa-newer', {lb: true, requested: ['192.0.2.10'], created: '2026-01-02T00:00:00Z'});
  expect(given(planPools([newer, older], [pool()]))).toEqual(['zz-older ingress 192.0.2.10', 'aa-newer failed: the address asked for, 192.0.2.10, is taken: held by LoadBalancer default/zz-older; two LoadBalancers share an address only with one sharing key (the annotation extip.io/allow-shared-ip with one value on both)']);
});
