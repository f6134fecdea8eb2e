/**
 * Claims mode under hostile tenants, on the pure decision (agent/tenancy.ts):
 * what a tenant with `edit` in its own namespace, or with `services/status`,
 * can ask for, and what it gets.
 */
import {expect, test} from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import {AddressPolicy} from '../../lib/policy.js';
import {canonicalIp} from '../../lib/ipnet.js';
import {type PoolView, planPools} from '../../lib/pools.js';
import {admit} from '../../lib/tenancy.js';

// The layout of the hostile-tenant report: pool a for team-a, pool b for team-b, and a declared range.
const pools: PoolView[] = [
  {name: 'a', cidr: '10.210.1.0/25', ranges: [['10.210.1.100', '10.210.1.110']], allocated: {'10.210.1.100': '10-210-1-100-24'}, namespaces: ['team-a']},
  {name: 'b', cidr: '10.210.1.128/25', ranges: [['10.210.1.211', '10.210.1.220']], allocated: {}, namespaces: ['team-b']},
];
// What the role passes as --allowed-cidrs: the declared range and the pools' ranges (never their whole CIDRs).
const policy = () => new AddressPolicy({allowed: ['10.210.1.192/26', '10.210.1.100/30', '10.210.1.104/30', '10.210.1.108/31', '10.210.1.110/32', '10.210.1.211/32', '10.210.1.212/30', '10.210.1.216/30', '10.210.1.220/32']});

let clock = 0;
const service = (ns: string, name: string, spec: Partial<k8s.V1ServiceSpec> = {}, extra: {ingress?: string[]; annotations?: Record<string, string>} = {}): k8s.V1Service => ({
  metadata: {namespace: ns, name, uid: `${ns}-${name}`, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, clock++)), annotations: extra.annotations},
  spec,
  status: extra.ingress ? {loadBalancer: {ingress: extra.ingress.map((ip) => ({ip}))}} : {},
});
const run = (services: k8s.V1Service[], holders: Array<[string, string[]]> = [], recent: Array<[string, string]> = []) =>
  admit(services, {policy: policy(), pools, holders: new Map(holders), recent: new Map(recent), lbClass: 'extip.io/ipmanager', mask: 24, mask6: 128});
const refusals = (a: ReturnType<typeof run>) => a.invalid.map((r) => `${r.service} ${r.value}: ${r.rule}`);

test('a zone-qualified address is refused, never thrown: the other Services go on', () => {
  expect(canonicalIp('fe80::1%eth0')).toEqual({refused: "an address with a zone (%...), which names one host's interface"});
  expect(canonicalIp('[::1]')).toEqual({refused: 'not an IP address'});
  const bad = service('team-b', 'bad', {type: 'LoadBalancer', loadBalancerIP: 'fe80::1%eth0'}, {annotations: {'extip.io/load-balancer-ip': 'fe80::1%eth0'}});
  const good = service('team-a', 'web', {type: 'LoadBalancer'});
  const a = run([bad, good]);
  const plan = planPools(a.views, pools);
  expect(plan.allocate.map((x) => (x.kind === 'failed' ? `${x.service.key} failed: ${x.reason}` : `${x.service.key} ${x.ip}`))).toEqual([
    // The older first.
    'team-b/bad failed: the address asked for, "fe80::1%eth0", is an address with a zone (%...), which names one host\'s interface',
    'team-a/web 10.210.1.101',
  ]);
  // Also in spec.externalIPs and in status: refused with the rule, not a crash.
  const inStatus = run([service('team-b', 's', {type: 'LoadBalancer', externalIPs: ['fe80::1%eth0']}, {ingress: ['fe80::2%lo']})]);
  expect(refusals(inStatus)).toEqual(['team-b/s fe80::1%eth0: not-an-ip', 'team-b/s fe80::2%lo: not-an-ip']);
});

test('a pool\'s addresses go only to Services of its namespaces, asked for in any way', () => {
  const stealer = service('team-b', 'steal', {externalIPs: ['10.210.1.100', '10.210.1.105', '10.210.1.50']});
  const viaStatus = service('team-b', 'lb', {type: 'LoadBalancer'}, {ingress: ['10.210.1.101']});
  const a = run([stealer, viaStatus]);
  expect(refusals(a)).toEqual([
    'team-b/steal 10.210.1.100: pool-namespace',
    'team-b/steal 10.210.1.105: pool-namespace',
    // In pool a's CIDR but in no range, and outside the declared range.
    'team-b/steal 10.210.1.50: not-allowed',
    'team-b/lb 10.210.1.101: pool-namespace',
  ]);
  expect([...a.wanted]).toEqual([]);
  // The LoadBalancer whose status named another tenant's address gets one of its own pool, which replaces it:
  // the one it held before (its claim records it), not a new one.
  const held = planPools(a.views, [pools[0], {...pools[1], allocated: {'10.210.1.211': 'x', '10.210.1.212': 'y'}}], new Map(), new Map([['10.210.1.212', ['team-b/lb']]]));
  expect(held.allocate.map((x) => `${x.kind} ${x.service.key} ${'ip' in x ? x.ip : ''}`)).toEqual(['ingress team-b/lb 10.210.1.212']);
  expect(held.release.get('b')).toEqual(['10.210.1.211']);
  const plan = planPools(a.views, pools);
  expect(plan.allocate.map((x) => `${x.kind} ${x.service.key} ${'ip' in x ? x.ip : ''}`)).toEqual(['ingress team-b/lb 10.210.1.211']);
  // What team-b asked for keeps nothing allocated in pool a: .100 goes once team-a's Service does.
  expect([...plan.release]).toEqual([['a', ['10.210.1.100']]]);
});

test('an address one namespace holds is refused to another, whoever is older; one namespace may share it', () => {
  const open: PoolView[] = [{name: 'open', cidr: '10.210.1.192/26', ranges: [['10.210.1.230', '10.210.1.239']], allocated: {}}];
  const older = service('team-b', 'old', {externalIPs: ['10.210.1.230']});
  const holder = service('team-a', 'lb', {type: 'LoadBalancer'}, {ingress: ['10.210.1.230']});
  const sibling = service('team-a', 'other-port', {externalIPs: ['10.210.1.230']});
  const admitIn = (holders: Array<[string, string[]]>, recent: Array<[string, string]> = []) =>
    admit([older, holder, sibling], {policy: policy(), pools: open, holders: new Map(holders), recent: new Map(recent), lbClass: 'extip.io/ipmanager', mask: 24, mask6: 128});
  // The claim records team-a's LoadBalancer: team-b's older Service does not get it.
  const recorded = admitIn([['10.210.1.230', ['team-a/lb']]]);
  expect(refusals(recorded)).toEqual(['team-b/old 10.210.1.230: taken']);
  expect(recorded.invalid[0].reason).toBe('10.210.1.230 is held by Service team-a/lb, of another namespace');
  expect([...recorded.wanted]).toEqual([['10.210.1.230/24', ['team-a/lb', 'team-a/other-port']]]);
  // Given moments ago, not yet recorded: the Service it was given to holds it.
  expect(refusals(admitIn([], [['10.210.1.230', 'team-a/lb']]))).toEqual(['team-b/old 10.210.1.230: taken']);
  // No record at all: the oldest asking holds it.
  expect(refusals(admitIn([]))).toEqual(['team-a/lb 10.210.1.230: taken', 'team-a/other-port 10.210.1.230: taken']);
  // A holder that no longer asks frees it for the next.
  expect(refusals(admitIn([['10.210.1.230', ['team-c/gone']]]))).toEqual(['team-a/lb 10.210.1.230: taken', 'team-a/other-port 10.210.1.230: taken']);
});

test('the segment\'s network and broadcast addresses, and a pool CIDR\'s, are refused', () => {
  const p = policy();
  p.setSubnets('pools', pools.map((x) => x.cidr));
  p.setSubnets('interface', ['10.210.1.11/24']);
  const a = admit([service('team-b', 'edges', {externalIPs: ['10.210.1.255', '10.210.1.0', '10.210.1.200']})], {policy: p, pools, holders: new Map(), lbClass: 'x', mask: 32, mask6: 128});
  expect(a.invalid.map((r) => r.reason)).toEqual(['10.210.1.255 is the broadcast address of the subnet 10.210.1.128/25', '10.210.1.0 is the network address of the subnet 10.210.1.0/25']);
  expect([...a.wanted.keys()]).toEqual(['10.210.1.200/32']);
});

test('a Service that cannot be read is refused whole, and the others are admitted', () => {
  const broken = {metadata: {namespace: 'team-b', name: 'broken'}, get spec(): k8s.V1ServiceSpec {
    throw new Error('unreadable');
  }} as k8s.V1Service;
  const a = run([broken, service('team-a', 'ok', {externalIPs: ['10.210.1.200']})]);
  expect(refusals(a)).toEqual(['team-b/broken (the Service): not-an-ip']);
  expect([...a.wanted.keys()]).toEqual(['10.210.1.200/24']);
});

test('one namespace shares an address, but not a port on it, and two LoadBalancers only with one sharing key', () => {
  const open: PoolView[] = [{name: 'open', cidr: '10.210.1.192/26', ranges: [['10.210.1.230', '10.210.1.239']], allocated: {}}];
  const first = service('team-a', 'first', {externalIPs: ['10.210.1.230'], ports: [{port: 80}]});
  const clash = service('team-a', 'clash', {externalIPs: ['10.210.1.230'], ports: [{port: 8080}, {port: 80}]});
  const udp = service('team-a', 'udp', {externalIPs: ['10.210.1.230'], ports: [{port: 80, protocol: 'UDP'}]});
  const run2 = (services: k8s.V1Service[], holders: Array<[string, string[]]> = []) =>
    admit(services, {policy: policy(), pools: open, holders: new Map(holders), lbClass: 'extip.io/ipmanager', mask: 24, mask6: 128});
  const a = run2([first, clash, udp]);
  expect(refusals(a)).toEqual(['team-a/clash 10.210.1.230: port-clash']);
  expect(a.invalid[0].reason).toBe('10.210.1.230 is held by Service team-a/first, which has port TCP/80 too');
  expect([...a.wanted]).toEqual([['10.210.1.230/24', ['team-a/first', 'team-a/udp']]]);
  // Two LoadBalancers with the address in their status: the second needs the first's sharing key.
  const lb = (name: string, port: number, key?: string) => service('team-a', name, {type: 'LoadBalancer', ports: [{port}]}, {ingress: ['10.210.1.231'], annotations: key ? {'metallb.io/allow-shared-ip': key} : undefined});
  const keyless = run2([lb('one', 80, 'k'), lb('two', 443)], [['10.210.1.231', ['team-a/one']]]);
  expect(refusals(keyless)).toEqual(['team-a/two 10.210.1.231: not-shared']);
  expect(refusals(run2([lb('one', 80, 'k'), lb('two', 443, 'k')], [['10.210.1.231', ['team-a/one']]]))).toEqual([]);
  // The holder is who the claim records, not who is older.
  expect(refusals(run2([lb('one', 80, 'k'), lb('two', 443)], [['10.210.1.231', ['team-a/two']]]))).toEqual(['team-a/one 10.210.1.231: not-shared']);
});
