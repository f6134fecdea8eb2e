/**
 * DHCP-leased LoadBalancers in claims mode, on the simulated cluster
 * (test/helpers/simcluster.ts) with a simulated DHCP server
 * (test/helpers/simdhcp.ts): the scheduler with --lb-dhcp makes a claim for
 * the Service's lease, its holder takes the lease and records it, the
 * scheduler gives the Service the address; the holder's node is lost and a
 * standby takes the lease over with the same MAC and address; the Service
 * goes and the lease is released. udhcpc against dnsmasq is
 * test/e2e/dhcp.test.ts's.
 */
import {afterEach, expect, test} from '@jest/globals';
import {leaseMac} from '../../agent/dhcp.js';
import {CLAIMS} from '../../agent/claims.js';
import {SimCluster, sleep} from '../helpers/simcluster.js';
import {SimDhcpServer} from '../helpers/simdhcp.js';

let cluster: SimCluster;
let server: SimDhcpServer;
const NAMES = ['node1', 'node2'];

async function start(schedulerFlags: string[], dhcp = new SimDhcpServer()): Promise<void> {
  cluster = await SimCluster.start();
  server = dhcp;
  for (const [i, name] of NAMES.entries()) await cluster.addNode(name, `10.1.0.${i + 1}`, {dhcp: server.taker(name)});
  await cluster.addScheduler('scheduler', schedulerFlags);
}

afterEach(async () => {
  await cluster?.stop();
});

const events = () => cluster.api.objects('/api/v1/events').map((e) => `${e.reason}: ${e.message}`);
const claim = () => cluster.api.objects(CLAIMS).find((c) => String(c.spec?.cidr).startsWith('dhcp:'));
const service = (name: string) => cluster.api.objects('/api/v1/services').find((s) => s.metadata.name === name);
const lb = (name: string, spec: object, annotations: Record<string, string> = {}) => cluster.api.client().call('POST', '/api/v1/namespaces/default/services', {
  apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default', annotations}, spec: {type: 'LoadBalancer', ports: [{port: 80}], ...spec}});

test('0.0.0.0: the holder leases the address with the Service\'s MAC, the Service gets it; the holder\'s node lost, a standby takes the lease over with the same address; the Service goes, the lease is released', async () => {
  await start(['--lb-dhcp']);
  await lb('web', {loadBalancerIP: '0.0.0.0'});
  await cluster.until('the lease recorded on the claim', () => claim()?.status?.lease?.ip !== undefined);
  const c = claim()!;
  expect(c.spec.cidr).toBe('dhcp:default/web');
  expect(c.metadata.name).toMatch(/^dhcp-[0-9a-f]{8}-default-web$/);
  const mac = leaseMac('default/web');
  const ip = c.status.lease.ip;
  expect(c.status.lease).toMatchObject({ip: '10.1.0.60', server: '10.1.0.254', mac});
  expect(server.table).toEqual(new Map([[mac, ip]]));
  expect(server.upOn.get(ip)).toBe(c.spec.nodeName);
  await cluster.until('the Service\'s ingress', () => service('web')?.status?.loadBalancer?.ingress?.[0]?.ip === ip);
  await cluster.until('an AddressLeased Event', () => events().includes(`AddressLeased: ${ip} leased from 10.1.0.254 by ${c.spec.nodeName} (MAC ${mac})`));
  expect(events()).toContain(`AddressAssigned: a lease from the segment's DHCP server, taken by ${c.spec.nodeName}`);
  // The pools have no part in it.
  expect(events().filter((e) => e.startsWith('AllocationFailed'))).toEqual([]);

  // The holder's node is lost (its cable): a standby brings the address up and takes the same lease.
  const lost = c.spec.nodeName;
  await cluster.until('every node hears the two others', () => cluster.api.objects('/apis/ipcontroller.ext/v1/ipnodes').every((n) => (n.metadata.annotations?.['extip.io/hears'] ?? '').split(',').length === NAMES.length - 1));
  const cut = Date.now();
  cluster.nodes.get(lost)!.host.linkUp = false;
  await cluster.until('the address up on another node', () => (server.upOn.get(ip) ?? lost) !== lost);
  const moved = Date.now() - cut;
  const taker = server.upOn.get(ip)!;
  await cluster.until('the claim on the node that took it, the lease renewed there', () => claim()?.spec.nodeName === taker && server.said.some((s) => s.startsWith(`${taker} lease ${ip}`)));
  expect(server.table).toEqual(new Map([[mac, ip]]));
  // Taken over, not given back: the lease is released only when the Service goes.
  await sleep(1000);
  expect(server.said.filter((s) => s.includes(' release '))).toEqual([]);
  expect(server.upOn.get(ip)).toBe(taker);
  expect(service('web')!.status.loadBalancer.ingress).toEqual([{ip, ipMode: 'VIP'}]);
  await cluster.until('an AddressLeased Event naming the new holder', () => events().includes(`AddressLeased: ${ip} leased from 10.1.0.254 by ${taker} (MAC ${mac})`));
  console.log(`the DHCP lease's holder lost: ${ip} up on ${taker} after ${moved} ms`);
  expect(moved).toBeLessThan(3000);

  // The Service goes: the claim goes, the holder releases the lease.
  await cluster.api.client().request('DELETE', '/api/v1/namespaces/default/services/web');
  await cluster.until('the lease released', () => server.table.size === 0 && server.said.at(-1) === `${taker} release ${ip} ${mac}`);
  expect(claim()).toBeUndefined();
  expect(server.upOn.size).toBe(0);
});

test('no server answers: a LeaseFailed Event, tried again; the lease once it answers', async () => {
  await start(['--lb-dhcp']);
  server.up = false;
  await lb('db', {}, {'extip.io/load-balancer-ips': '0.0.0.0'});
  await cluster.until('a LeaseFailed Event', () => events().some((e) => /^LeaseFailed: node\d: no DHCP server answered 3 DISCOVERs from exd[0-9a-f]{12} \(MAC [0-9a-f:]{17}\) on eth0; trying again in 1 s$/.test(e)));
  expect(service('db')!.status?.loadBalancer?.ingress ?? []).toEqual([]);
  server.up = true;
  await cluster.until('the lease', () => service('db')?.status?.loadBalancer?.ingress?.[0]?.ip === '10.1.0.60', 8000);
  expect(claim()!.status.leaseError).toBeUndefined();
});

test('without --lb-dhcp, 0.0.0.0 is refused with an Event that says what to set; :: is refused as an IPv6 lease; neither gets a claim', async () => {
  await start([]);
  await lb('web', {loadBalancerIP: '0.0.0.0'});
  await lb('six', {}, {'extip.io/load-balancer-ips': '::'});
  await cluster.until('both refused', () => events().some((e) => e.startsWith('ExternalIPRefused: ') && e.includes('0.0.0.0 (spec.loadBalancerIP) asks for a lease from the segment\'s DHCP server, which extip takes only with extip_lb_dhcp: true'))
    && events().some((e) => e.startsWith('ExternalIPRefused: ') && e.includes(':: (the annotation extip.io/load-balancer-ips) asks for an IPv6 lease')));
  await sleep(500);
  expect(cluster.api.objects(CLAIMS)).toEqual([]);
  expect(server.said).toEqual([]);
});

test('an address the policy refuses (the segment\'s broadcast address): released, a LeaseFailed Event that says why, no ingress', async () => {
  await start(['--lb-dhcp'], new SimDhcpServer('10.1.0.254', {prefix: '10.1.0.', first: 255, last: 255}));
  await lb('odd', {loadBalancerIP: '0.0.0.0'});
  await cluster.until('a LeaseFailed Event', () => events().some((e) => /^LeaseFailed: node\d: the DHCP server leased 10\.1\.0\.255, which the address policy refuses: .*broadcast.*; the lease is released/.test(e)));
  await cluster.until('the lease released', () => server.said.some((s) => / release 10\.1\.0\.255 /.test(s)) && server.table.size === 0);
  expect(service('odd')!.status?.loadBalancer?.ingress ?? []).toEqual([]);
  expect(claim()!.status.lease ?? null).toBeNull();
  await sleep(1500);
  // Not asked for again while the claim stays where it is.
  expect(server.said.filter((s) => / lease /.test(s))).toHaveLength(1);
});
