/**
 * DHCP-leased LoadBalancers on the lab: the first ToR is the segment's DHCP
 * server (dnsmasq, leasing 10.210.1.60-79), and the role installs claims
 * mode with `extip_lb_dhcp: true`. A LoadBalancer asking for 0.0.0.0 gets an
 * address the server leased to the Service's MAC, which a client behind
 * the router reaches; the holder's node is lost and the same address
 * answers from the other node, the server's table unchanged; the Service
 * goes and the lease is released; uninstall leaves no macvlan and no lease.
 */
import {expect, test} from '@jest/globals';
import {leaseLink, leaseMac} from '../../agent/dhcp.js';
import {waitFor} from '../lab/bgp.js';
import type {DhcpServer} from '../lab/dhcp.js';
import {DHCP_RANGE, type Lab, type LabClient, SEGMENT} from '../lab/lab.js';
import {type Snapshot, diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {explain, runRole} from '../helpers/role.js';
import {useLab} from '../helpers/lab.js';

const vars = {
  extip_distribution: 'balance',
  extip_namespace: 'extip',
  extip_iface: 'eth0',
  extip_mask: 32,
  extip_lb_dhcp: true,
};

let server: DhcpServer;
let client: LabClient;
let before: Snapshot;
/** The lab's state, with the DHCP server's lease table. */
const snapshot = (of: Lab) => takeSnapshot(of, {extra: async () => ({'DHCP leases': (await server.leases()).map((l) => `${l.mac} ${l.ip} ${l.hostname}`)})});
const lab = useLab({nodes: 2}, async (started) => {
  server = await started.addDhcpServer();
  client = await started.addClient();
  for (const h of started.hosts) started.serveName(h.name, 80);
  before = await snapshot(started);
  const run = await runRole(started, {vars});
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
});

const leased = (name: string, annotations: Record<string, string> = {}) =>
  ({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default', annotations}, spec: {type: 'LoadBalancer', loadBalancerIP: '0.0.0.0', ports: [{name: 'http', port: 80}]}});

async function ingress(name: string): Promise<string | undefined> {
  const r = await lab.kubectl(['get', 'service', name, '-n', 'default', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
  return r.stdout || undefined;
}

/** Where `ip` is up: the node and the link, none when no node has it. */
async function holderOf(ip: string): Promise<{node: string; link: string} | undefined> {
  for (const h of lab.hosts) {
    const r = await lab.exec(h.name, 'ip', ['-j', '-4', 'address', 'show']);
    const link = (JSON.parse(r.stdout) as Array<{ifname: string; addr_info: Array<{local: string}>}>).find((l) => l.addr_info.some((a) => a.local === ip));
    if (link) return {node: h.name, link: link.ifname};
  }
  return undefined;
}

/** The lease macvlans (exd...) on every node. */
async function leaseLinks(): Promise<string[]> {
  const links: string[] = [];
  for (const h of lab.hosts) {
    const r = await lab.exec(h.name, 'ip', ['-j', 'link', 'show', 'type', 'macvlan']);
    for (const l of JSON.parse(r.stdout || '[]') as Array<{ifname: string}>) if (/^exd[0-9a-f]{12}$/.test(l.ifname)) links.push(`${h.name}:${l.ifname}`);
  }
  return links;
}

/** Which node answers a connection from the client to ip:80; undefined when none does. */
async function answers(ip: string): Promise<string | undefined> {
  const r = await client.connectMany(ip, 80, 1);
  return Object.keys(r.byAnswer)[0];
}

async function until(what: string, check: () => Promise<boolean>, ms = 30000): Promise<void> {
  await waitFor(what, check, ms).catch(async (err: Error) => {
    const claims = (await lab.kubectl(['get', 'ipclaims', '-o', 'json'])).stdout;
    const said = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n').filter((l) => /DHCP|lease|udhcpc|[Cc]laim|leading|^---/.test(l)).slice(-80).join('\n');
    throw new Error(`${err.message}\nclaims: ${claims.slice(0, 3000)}\nagents:\n${said}\ndnsmasq:\n${server.log().split('\n').filter((l) => /DHCP[A-Z]+\(/.test(l)).slice(-30).join('\n')}\nlease table: ${JSON.stringify(await server.leases())}`);
  });
}

async function events(name: string, reason: string): Promise<string> {
  return (await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${name},reason=${reason}`, '-o', 'jsonpath={.items[*].message}'])).stdout;
}

const inRange = (ip: string) => ip.startsWith(`${SEGMENT}.`) && Number(ip.split('.')[3]) >= DHCP_RANGE.first && Number(ip.split('.')[3]) <= DHCP_RANGE.last;

test('0.0.0.0: an address the server leased to the Service\'s MAC, on the holder\'s macvlan, that the client reaches', async () => {
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(leased('web')))).exitCode).toBe(0);
  await until('web has its address', async () => (await ingress('web')) !== undefined);
  const ip = (await ingress('web'))!;
  expect(inRange(ip)).toBe(true);
  expect(await server.leases()).toEqual([expect.objectContaining({mac: leaseMac('default/web'), ip, hostname: 'default-web'})]);
  const holder = (await holderOf(ip))!;
  expect(holder.link).toMatch(/^exd[0-9a-f]{12}$/);
  await until('the client reaches the holder', async () => (await answers(ip)) === holder.node, 15000);
  await until('an AddressLeased Event', async () => (await events('web', 'AddressLeased')).includes(`${ip} leased from ${server.server} by ${holder.node} (MAC ${leaseMac('default/web')})`), 15000);
});

test('the holder\'s node is lost: the same address answers from the other node, the server\'s table unchanged', async () => {
  const ip = (await ingress('web'))!;
  const before = (await holderOf(ip))!.node;
  const other = lab.hosts.map((h) => h.name).find((n) => n !== before)!;
  const cut = Date.now();
  await lab.loseNode(before);
  try {
    await until('the address up on the other node', async () => (await holderOf(ip))?.node === other);
    const took = Date.now() - cut;
    await until('the client reaches the other node', async () => (await answers(ip)) === other, 15000);
    const reached = Date.now() - cut;
    console.log(`the DHCP lease's holder lost: ${ip} up on ${other} ${took} ms later, answering the client ${reached} ms later`);
    // Claims mode's failover (the standby takes the claim over) plus the sampling's time on a loaded machine.
    expect(took).toBeLessThan(3000);
    await until('the lease renewed from the other node', async () => server.log().split('\n').filter((l) => l.includes(`DHCPACK(br0) ${ip} ${leaseMac('default/web')}`)).length >= 2, 15000);
    expect(await server.leases()).toEqual([expect.objectContaining({mac: leaseMac('default/web'), ip})]);
    expect(await ingress('web')).toBe(ip);
  } finally {
    await lab.restoreNode(before);
  }
  // The lost node, back, leaves the address to the other: no macvlan of it left there.
  await until('no lease link left on the node that came back', async () => !(await leaseLinks()).some((l) => l.startsWith(`${before}:`)));
});

test('the Service goes: the lease is released and the macvlan goes', async () => {
  const ip = (await ingress('web'))!;
  expect((await lab.kubectl(['delete', 'service', 'web', '-n', 'default'])).exitCode).toBe(0);
  await until('the lease released', async () => (await server.leases()).length === 0);
  expect(server.log()).toContain(`DHCPRELEASE(br0) ${ip} ${leaseMac('default/web')}`);
  await until('no macvlan left', async () => (await leaseLinks()).length === 0 && (await holderOf(ip)) === undefined);
});

test('uninstall, the Service still asking, leaves no macvlan and no lease: the lab as it was before the install', async () => {
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(leased('db')))).exitCode).toBe(0);
  await until('db has its address', async () => (await ingress('db')) !== undefined);
  expect((await leaseLinks()).some((l) => l.endsWith(`:${leaseLink('default/db')}`))).toBe(true);
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: {extip_namespace: 'extip'}});
  expect(removal.exitCode).toBe(0);
  expect(await leaseLinks()).toEqual([]);
  expect(await server.leases()).toEqual([]);
  await lab.kubectl(['delete', 'service', 'db', 'web', '-n', 'default', '--ignore-not-found']);
  await waitFor('the state before install', async () => diffSnapshots(before, await snapshot(lab)).length === 0, 30000).catch(async () => {
    expect(diffSnapshots(before, await snapshot(lab))).toEqual([]);
  });
});
