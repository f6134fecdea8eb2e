/**
 * Claims mode whole, on a simulated cluster (test/helpers/simcluster.ts): two
 * schedulers electing a leader on a Lease and three claim controllers, each
 * on its host of a simulated segment, all on the in-memory API server. What
 * the claims lab proves with root and a booted control plane, here without
 * either: the Services' addresses are placed and come up, a LoadBalancer is
 * given one from a pool, a node lost with the scheduler's leader moves as
 * fast as any other, and the API server away for everyone neither takes an
 * address down nor moves one when it returns.
 *
 * The holders are sampled every 20 ms: never two hosts that hear each other
 * with one address.
 */
import {afterEach, beforeEach, expect, test} from '@jest/globals';
import {CLAIMS, RELEASE_TO, STANDBYS, claimName} from '../../agent/claims.js';
import type {Json} from '../../agent/api.js';
import {SimCluster, type SimScheduler, sleep} from '../helpers/simcluster.js';

const NAMES = ['node1', 'node2', 'node3'];
/** As in test/unit/claimcontroller.test.ts: the membership's detection with the lab tests' room. */
const MOVE_BOUND_MS = 1500;
const EXTERNAL = ['10.1.0.101', '10.1.0.102', '10.1.0.103'];
/** What the pool gives the LoadBalancer: the first address of 10.1.0.128/28 but for its network address. */
const POOLED = '10.1.0.129';
const ALL = [...EXTERNAL, POOLED];
const SERVICES = '/api/v1/namespaces/default/services';
const MERGE = {contentType: 'application/merge-patch+json'};

let cluster: SimCluster;
const until = (what: string, ok: () => boolean, ms?: number) => cluster.until(what, ok, ms);
const holders = (addresses: readonly string[] = ALL) => cluster.holders(addresses);

function claim(ip: string): Json | undefined {
  return cluster.api.objects(CLAIMS).find((c) => c.metadata.name === claimName(`${ip}/32`));
}

/** Each Event's reason and message, in the order written. */
function events(): string[] {
  return cluster.api.objects('/api/v1/events').sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion)).map((e) => `${e.reason}: ${e.message}`);
}

function leader(): SimScheduler | undefined {
  return [...cluster.schedulers.values()].find((s) => s.scheduler.leading);
}

/** Every address up on exactly the node its claim names. */
function placed(addresses: readonly string[] = ALL): boolean {
  const now = holders(addresses);
  return addresses.every((ip) => {
    const node = claim(ip)?.spec?.nodeName;
    return node && now.get(ip)!.join() === node;
  });
}

/** No node with more than two of the four addresses (fair), and no claim asked to move. */
function balanced(): boolean {
  const claims = cluster.api.objects(CLAIMS);
  return NAMES.every((n) => claims.filter((c) => c.spec.nodeName === n).length <= 2) && claims.every((c) => !c.metadata.annotations?.[RELEASE_TO]);
}

beforeEach(async () => {
  cluster = await SimCluster.start();
  for (const [i, name] of NAMES.entries()) await cluster.addNode(name, `10.1.0.${i + 1}`);
  const api = cluster.api.client();
  await api.call('POST', '/apis/ipcontroller.ext/v1/ipclaimpools', {apiVersion: 'ipcontroller.ext/v1', kind: 'IpClaimPool', metadata: {name: 'lb'}, spec: {cidr: '10.1.0.128/28'}});
  await api.call('POST', SERVICES, {apiVersion: 'v1', kind: 'Service', metadata: {name: 'web', namespace: 'default'}, spec: {type: 'ClusterIP', externalIPs: EXTERNAL, ports: [{port: 80}]}});
  await api.call('POST', SERVICES, {apiVersion: 'v1', kind: 'Service', metadata: {name: 'shop', namespace: 'default'}, spec: {type: 'LoadBalancer', ports: [{port: 443}]}});
  await cluster.addScheduler('scheduler-a');
  await cluster.addScheduler('scheduler-b');
  await until('one scheduler leads', () => leader() !== undefined);
  // The first claims go to the nodes heard from first; the leader then spreads them, one handoff at a time.
  await until('every address up on the node its claim names, spread, no handoff under way', () => placed() && balanced(), 15000);
});

afterEach(async () => {
  await cluster.stop();
});

test('the leader places each address on a live node, spread, with the others as its standbys; the LoadBalancer gets its address from the pool; each Service is told', async () => {
  expect([...cluster.schedulers.values()].filter((s) => s.scheduler.leading)).toHaveLength(1);
  for (const ip of ALL) {
    const c = claim(ip)!;
    expect(c.metadata.annotations[STANDBYS].split(',').sort()).toEqual(NAMES.filter((n) => n !== c.spec.nodeName));
  }
  const shop = cluster.api.objects('/api/v1/services').find((s) => s.metadata.name === 'shop')!;
  expect(shop.status.loadBalancer.ingress).toEqual([{ip: POOLED, ipMode: 'VIP'}]);
  expect(Object.keys(cluster.api.objects('/apis/ipcontroller.ext/v1/ipclaimpools')[0].spec.allocated)).toEqual([POOLED]);
  await until('the Events written', () => events().some((e) => e.startsWith(`AddressAssigned: ${POOLED}/32 on`)));
  expect(events()).toContain(`AddressAllocated: ${POOLED} from IpClaimPool lb`);
  // Each address's last Event names the node its claim names (assigned there first, or moved there since when the leader spread them).
  for (const ip of ALL) {
    const last = events().filter((e) => e.includes(` ${ip}/32 `)).pop();
    expect(last).toMatch(new RegExp(`^(AddressAssigned: ${ip}/32 on|AddressMoved: ${ip}/32 moved \\S+ ->) ${claim(ip)!.spec.nodeName}\\b`));
  }
});

test('the node lost runs the scheduler\'s leader: its addresses answer elsewhere as fast as any node\'s; the standby scheduler takes the Lease and records the moves', async () => {
  const lead = leader()!;
  // The lost node: one that holds addresses. Its scheduler's leader goes with it.
  const lost = cluster.nodes.get(claim(EXTERNAL[0])!.spec.nodeName)!;
  const theirs = ALL.filter((ip) => claim(ip)!.spec.nodeName === lost.name);
  await until('every node hears the two others', () => cluster.api.objects('/apis/ipcontroller.ext/v1/ipnodes').every((n) => (n.metadata.annotations?.['extip.io/hears'] ?? '').split(',').length === 2));
  const s = cluster.sampler(ALL);
  const cut = Date.now();
  lost.host.linkUp = false;
  await cluster.crash(lead);
  await until(`${lost.name}'s addresses up on other nodes`, () => theirs.every((ip) => holders().get(ip)!.some((n) => n !== lost.name)));
  const moved = Date.now() - cut;
  // The standby leads once the Lease (2 s) has run out, and records where the addresses went.
  await until('the standby leads', () => leader() !== undefined, 10000);
  await until('the claims name the nodes that took the addresses', () => theirs.every((ip) => {
    const c = claim(ip);
    return c?.spec.nodeName !== lost.name && c?.status?.previousNode === lost.name && holders().get(ip)!.includes(c?.spec.nodeName);
  }), 10000);
  const {doubles, longestGap} = await s.stop();
  console.log(`the leader's node lost: addresses up elsewhere after ${moved} ms; the standby scheduler recorded them ${Date.now() - cut} ms after the cut`);
  expect(doubles).toEqual([]);
  expect(moved).toBeLessThan(MOVE_BOUND_MS);
  for (const ip of ALL.filter((a) => !theirs.includes(a))) expect(longestGap.get(ip) ?? 0).toBe(0);
  await until('each Service told of the move', () => theirs.every((ip) => events().some((e) => e.startsWith(`AddressMoved: ${ip}/32 moved ${lost.name} -> `))));
});

test('the API server away for everyone: no address goes down and none moves, not while it is away and not when it returns; a Service created after gets its address', async () => {
  const before = JSON.stringify([...holders()]);
  const placements = ALL.map((ip) => claim(ip)!.spec.nodeName);
  const moves = events().filter((e) => e.startsWith('AddressMoved'));
  const s = cluster.sampler(ALL);
  await cluster.api.away();
  // Three times --monitor and the lease: the schedulers cannot see a heartbeat, the controllers cannot write one.
  await sleep(5000);
  const during = JSON.stringify([...holders()]);
  await cluster.api.back();
  await until('one scheduler leads again', () => leader() !== undefined, 10000);
  // Heartbeats unseen for 5 s are not nodes lost: a scheduler back from an outage gives every node --monitor anew.
  await sleep(3000);
  const {doubles, longestGap} = await s.stop();
  expect(during).toBe(before);
  expect(JSON.stringify([...holders()])).toBe(before);
  expect(ALL.map((ip) => claim(ip)!.spec.nodeName)).toEqual(placements);
  expect(doubles).toEqual([]);
  for (const ip of ALL) expect(longestGap.get(ip) ?? 0).toBe(0);
  expect(events().filter((e) => e.startsWith('AddressMoved'))).toEqual(moves);
  await cluster.api.client().call('POST', SERVICES, {apiVersion: 'v1', kind: 'Service', metadata: {name: 'late', namespace: 'default'}, spec: {type: 'ClusterIP', externalIPs: ['10.1.0.110'], ports: [{port: 80}]}});
  await until('the new Service\'s address up on the node its claim names', () => placed(['10.1.0.110']), 10000);
});

test('a Service that stops asking: its claim is deleted and its address comes down; the pool takes its address back when the LoadBalancer goes', async () => {
  const api = cluster.api.client();
  await api.call('PATCH', `${SERVICES}/web`, {spec: {externalIPs: [EXTERNAL[0], EXTERNAL[1]]}}, MERGE);
  await until(`${EXTERNAL[2]} down everywhere, its claim gone`, () => holders().get(EXTERNAL[2])!.length === 0 && !claim(EXTERNAL[2]));
  await api.request('DELETE', `${SERVICES}/shop`);
  await until(`${POOLED} down everywhere, its claim gone, back in the pool`, () => holders().get(POOLED)!.length === 0 && !claim(POOLED)
    && !(POOLED in (cluster.api.objects('/apis/ipcontroller.ext/v1/ipclaimpools')[0].spec.allocated ?? {})));
  // What stays is served (the leader may spread the two anew).
  await until('the two others up on the nodes their claims name', () => placed([EXTERNAL[0], EXTERNAL[1]]) && balanced());
});

test('LoadBalancers of both families and shared addresses: RequireDualStack gets one address a family, both up; two with one sharing key share one, a third with a port in common is told why not', async () => {
  const api = cluster.api.client();
  await api.call('POST', '/apis/ipcontroller.ext/v1/ipclaimpools', {apiVersion: 'ipcontroller.ext/v1', kind: 'IpClaimPool', metadata: {name: 'lb6'}, spec: {cidr: 'fd00:1::/64', ranges: [['fd00:1::10', 'fd00:1::1f']]}});
  const lb = (name: string, spec: Json, annotations: Record<string, string> = {}) => api.call('POST', SERVICES, {apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default', annotations}, spec: {type: 'LoadBalancer', ...spec}});
  await lb('both', {ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'], ports: [{port: 80}]});
  const service = (name: string) => cluster.api.objects('/api/v1/services').find((s) => s.metadata.name === name);
  const ingress = (name: string) => (service(name)?.status?.loadBalancer?.ingress ?? []).map((i: {ip: string}) => i.ip);
  await until('both of its addresses given, the IPv6 one first', () => ingress('both').length === 2);
  const [six, four] = ingress('both');
  expect(six).toBe('fd00:1::10');
  expect(four).toMatch(/^10\.1\.0\.1[34]\d$/);
  // Each on one node, where its claim says (an IPv6 address claimed with --mask-v6's /128).
  await until('both up on the nodes their claims name', () => [six, four].every((ip) => {
    const c = cluster.api.objects(CLAIMS).find((x) => x.spec.cidr.split('/')[0] === ip);
    return c && holders([ip]).get(ip)!.join() === c.spec.nodeName;
  }));
  // Sharing: front on 80 with the key, tls on 443 asking for front's address with MetalLB's annotations.
  await lb('front', {ports: [{port: 80}]}, {'extip.io/allow-shared-ip': 'front'});
  await until('front has its address', () => ingress('front').length === 1);
  const [shared] = ingress('front');
  await lb('tls', {ports: [{port: 443}]}, {'metallb.io/allow-shared-ip': 'front', 'metallb.io/loadBalancerIPs': shared});
  await lb('clash', {ports: [{port: 80}]}, {'extip.io/allow-shared-ip': 'front', 'kube-vip.io/loadbalancerIPs': shared});
  await until('tls shares front\'s address', () => ingress('tls').join() === shared);
  await until('the claim records both', () => JSON.stringify(claim(shared)?.status?.services) === JSON.stringify(['default/front', 'default/tls']));
  await until('clash told why not', () => events().some((e) => e.startsWith(`AllocationFailed: no address from the IpClaimPools: the address asked for, ${shared}, is taken: held by Service default/front, which has port TCP/80 too`)));
  expect(ingress('clash')).toEqual([]);
  expect(events()).toContain(`AddressShared: ${shared} (IpClaimPool lb) shared with Service default/front`);
  expect(cluster.api.objects(CLAIMS).filter((c) => c.spec.cidr === `${shared}/32`)).toHaveLength(1);
});
