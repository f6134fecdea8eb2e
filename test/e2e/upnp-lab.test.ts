/**
 * UPnP port mappings on the lab: the first ToR is the segment's Internet
 * gateway (miniupnpd, in secure mode, its external side 1.2.3.1 with a host
 * behind it), and the role installs claims mode with `extip_upnp: true`. A
 * LoadBalancer annotated `extip.io/upnp: "true"` has its port forwarded from
 * the gateway's external address to its own, by the node that holds it: a
 * host on the Internet side reaches it; the mapping follows a failover (the
 * new holder renews it); it goes with the annotation, the Service, and
 * uninstall; a port the gateway refuses is an Event; `extip status` shows
 * each mapping. The uninstall is a snapshot test: the lab, the gateway's
 * table with it, as before the install.
 */
import {expect, test} from '@jest/globals';
import {waitFor} from '../lab/bgp.js';
import type {Lab, LabUpnp} from '../lab/lab.js';
import {type Snapshot, diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {explain, runRole} from '../helpers/role.js';
import {extip} from '../helpers/cli.js';
import {useLab} from '../helpers/lab.js';

const POOLED = ['10.210.1.200', '10.210.1.201'];
/** A port the gateway's rules refuse to map. */
const REFUSED_PORT = 2222;
const vars = {
  extip_distribution: 'balance',
  extip_namespace: 'extip',
  extip_iface: 'eth0',
  extip_mask: 32,
  extip_ip_pools: [{name: 'lab', cidr: '10.210.1.0/24', ranges: [[POOLED[0], POOLED[1]]]}],
  extip_upnp: true,
};

let gateway: LabUpnp;
let before: Snapshot;
/** The lab's state, with the gateway's table of mappings. */
const snapshot = (of: Lab) => takeSnapshot(of, {extra: async () => ({'UPnP mappings': await gateway.mappings()})});
const lab = useLab({nodes: 2}, async (started) => {
  gateway = await started.addUpnpGateway({deny: [REFUSED_PORT]});
  for (const h of started.hosts) for (const port of [80, REFUSED_PORT]) started.serveName(h.name, port);
  before = await snapshot(started);
  const run = await runRole(started, {vars});
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
});

const loadBalancer = (name: string, port: number, annotations: Record<string, string>) =>
  ({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default', annotations}, spec: {type: 'LoadBalancer', ports: [{name: 'p', port}]}});

async function ingress(name: string): Promise<string | undefined> {
  const r = await lab.kubectl(['get', 'service', name, '-n', 'default', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}']);
  return r.stdout || undefined;
}

async function holderOf(ip: string): Promise<string | undefined> {
  for (const h of lab.hosts) {
    const r = await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    if (JSON.parse(r.stdout)[0].addr_info.some((a: {local: string}) => a.local === ip)) return h.name;
  }
  return undefined;
}

/** The claims and what the agents said about UPnP, for a failed wait's message. */
async function diagnosis(): Promise<string> {
  const claims = (await lab.kubectl(['get', 'ipclaims', '-o', 'json'])).stdout;
  const said = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n').filter((l) => /UPnP|upnp|^---/.test(l)).slice(-40).join('\n');
  return `claims: ${claims.slice(0, 3000)}\nagents:\n${said}`;
}

/** waitFor, with the claims and the agents' words on UPnP when it fails. */
async function until(what: string, check: () => Promise<boolean>, ms = 30000): Promise<void> {
  await waitFor(what, check, ms).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await diagnosis()}`);
  });
}

async function events(name: string, reason: string): Promise<string> {
  return (await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${name},reason=${reason}`, '-o', 'jsonpath={.items[*].message}'])).stdout;
}

test('a LoadBalancer that asks for it is reachable from the Internet side through the gateway; extip status shows the mapping', async () => {
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(loadBalancer('web', 80, {'extip.io/upnp': 'true'})))).exitCode).toBe(0);
  await until('web has its address', async () => (await ingress('web')) !== undefined, 30000);
  const ip = (await ingress('web'))!;
  await until('the gateway forwards port 80 to it', async () => (await gateway.mappings()).join() === `TCP 80 -> ${ip}:80`);
  const holder = await holderOf(ip);
  expect(await gateway.connect(80)).toBe(holder);
  await until('an UPnPMapped Event on web', async () => (await events('web', 'UPnPMapped')).includes(`1.2.3.1:80 TCP -> ${ip} (by ${holder})`), 15000);
  const status = JSON.parse((await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig])).stdout);
  expect(status.ips.find((i: {ip: string}) => i.ip === ip).upnp).toEqual({gateway: gateway.location, mapped: ['1.2.3.1:80 TCP'], node: holder});
  expect((await extip(['status', '--kubeconfig', lab.api.kubeconfig])).stdout).toMatch(new RegExp(`${ip.replace(/\./g, '\\.')}\\s+1\\.2\\.3\\.1:80 TCP\\s+${holder}`));
});

test('the mapping follows a failover: the node that takes the address renews it, and the Internet side reaches that node', async () => {
  const ip = (await ingress('web'))!;
  const before = (await holderOf(ip))!;
  await lab.exec(before, 'ip', ['link', 'set', 'eth0', 'down']);
  try {
    await waitFor('the address up on the other node', async () => {
      const h = await holderOf(ip);
      return h !== undefined && h !== before;
    }, 30000);
    const after = (await holderOf(ip))!;
    await waitFor('the claim says the new holder mapped it', async () => {
      const r = await lab.kubectl(['get', 'ipclaim', `${ip.replace(/\./g, '-')}-32`, '-o', 'jsonpath={.status.upnp.node}']);
      return r.stdout === after;
    }, 30000);
    expect(await gateway.mappings()).toEqual([`TCP 80 -> ${ip}:80`]);
    await until('the Internet side reaches the new holder', async () => (await gateway.connect(80)) === after, 15000);
  } finally {
    // Up again, with the default route the link took with it.
    await lab.exec(before, 'ip', ['link', 'set', 'eth0', 'up']);
    await lab.exec(before, 'ip', ['route', 'replace', 'default', 'via', lab.router.ip]);
  }
});

test('a port the gateway refuses is an Event; the mapping goes with the annotation and with the Service', async () => {
  try {
    expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(loadBalancer('ssh', REFUSED_PORT, {'extip.io/upnp': 'true'})))).exitCode).toBe(0);
    await until('an UPnPMappingFailed Event on ssh', async () => (await events('ssh', 'UPnPMappingFailed')).includes(`TCP/${REFUSED_PORT}: AddPortMapping: UPnP error`), 30000);
    expect((await gateway.mappings()).filter((m) => m.startsWith(`TCP ${REFUSED_PORT} `))).toEqual([]);
    // web drops the annotation: its mapping is removed, its address stays.
    const ip = (await ingress('web'))!;
    expect((await lab.kubectl(['annotate', 'service', 'web', '-n', 'default', 'extip.io/upnp-'])).exitCode).toBe(0);
    await until('the mapping removed', async () => (await gateway.mappings()).length === 0, 30000);
    expect(await holderOf(ip)).toBeDefined();
    expect(await gateway.connect(80)).toMatch(/^error: /);
    // Asked again, then the Service goes: the mapping goes before the address.
    expect((await lab.kubectl(['annotate', 'service', 'web', '-n', 'default', 'extip.io/upnp=true'])).exitCode).toBe(0);
    await until('mapped again', async () => (await gateway.mappings()).join() === `TCP 80 -> ${ip}:80`, 30000);
    expect((await lab.kubectl(['delete', 'service', 'web', '-n', 'default'])).exitCode).toBe(0);
    await until('the mapping and the address gone', async () => (await gateway.mappings()).length === 0 && (await holderOf(ip)) === undefined, 30000);
  } finally {
    await lab.kubectl(['delete', 'service', '-n', 'default', '--ignore-not-found', 'ssh', 'web']);
  }
});

test('uninstall, the Service still asking, leaves no port mapping on the gateway: the lab as it was before the install', async () => {
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(loadBalancer('web', 80, {'extip.io/upnp': 'true'})))).exitCode).toBe(0);
  await until('mapped', async () => (await gateway.mappings()).length === 1, 30000);
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: {extip_namespace: 'extip'}});
  expect(removal.exitCode).toBe(0);
  expect(await gateway.mappings()).toEqual([]);
  for (const ip of POOLED) expect(await holderOf(ip)).toBeUndefined();
  await lab.kubectl(['delete', 'service', 'web', '-n', 'default', '--ignore-not-found']);
  await waitFor('the state before install', async () => diffSnapshots(before, await snapshot(lab)).length === 0, 30000).catch(async () => {
    expect(diffSnapshots(before, await snapshot(lab))).toEqual([]);
  });
});
