/**
 * The Calico v2 export (etcd-v2-filter), against real etcd (v2 API, TLS), BIRD 1.6 as
 * calico/node v2's BGP speaker on every node (test/lab/calico.ts) and a BIRD 2
 * router: extip writes the default filter, the router learns the /32s on lo with
 * ECMP and nothing else, and uninstall takes it all back.
 */
import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {routerBird2Config, routerNexthops, waitFor} from '../lab/bgp.js';
import {startBird} from '../lab/bird.js';
import {CUSTOM_FILTERS, type CalicoNode, startCalicoNode} from '../lab/calico.js';
import {type CalicoV3Node, startCalicoV3Node} from '../lab/calico-v3.js';
import {type LabEtcd, startEtcd} from '../lab/etcd.js';
import {Lab} from '../lab/lab.js';
import {type Snapshot, diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {repoRoot} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';
import {explain, runRole} from '../helpers/role.js';
import {SEED_FILTER_V4, SEED_FILTER_V6} from '../../lib/catalogue.js';

const ecmp = join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml');
const V4 = `${CUSTOM_FILTERS}/v4/lo_iface`;
const V6 = `${CUSTOM_FILTERS}/v6/lo_iface`;

let lab: Lab;
let etcd: LabEtcd;
let calico: CalicoNode[];

beforeAll(async () => {
  lab = await Lab.start({nodes: 3});
  etcd = await startEtcd(lab);
  await startBird(lab, 'tor', routerBird2Config(lab));
  calico = [];
  for (const h of lab.hosts) calico.push(await startCalicoNode(lab, etcd, h.name));
});
afterAll(async () => lab?.stop());

const snapshot = () => takeSnapshot(lab, {etcdKeys: () => etcd.keys()});
async function expectSameState(before: Snapshot): Promise<void> {
  await waitFor('the state before install', async () => diffSnapshots(before, await snapshot()).length === 0, 20000).catch(async () => {
    expect(diffSnapshots(before, await snapshot())).toEqual([]);
  });
}
async function key(k: string): Promise<string | null> {
  const r = await etcd.etcdctl(['-o', 'json', 'get', k]);
  return r.exitCode === 0 ? (JSON.parse(r.stdout).node.value as string) : null;
}
/** Removes a key a test wrote and the directories left empty, up to /calico/bgp/v1/global. */
async function removeKey(k: string): Promise<void> {
  await etcd.etcdctl(['rm', k]);
  // rmdir fails on a directory that is not empty, and so stops there.
  for (let dir = k.slice(0, k.lastIndexOf('/')); dir.length >= '/calico/bgp/v1/global'.length; dir = dir.slice(0, dir.lastIndexOf('/'))) {
    await etcd.etcdctl(['rmdir', dir]);
  }
}
/** Routes the router learned over BGP. */
async function birdRoutes(): Promise<string[]> {
  const r = JSON.parse((await lab.exec('tor', 'ip', ['-j', 'route', 'show', 'proto', 'bird'])).stdout || '[]') as Array<{dst: string}>;
  return r.map((x) => x.dst).sort();
}
async function sessionsUp(): Promise<void> {
  for (const c of calico) {
    await waitFor(`BGP session of ${c.host.name}`, async () => /Established/.test(await c.bird.birdc('show protocols')), 30000);
  }
}

describe('etcd-v2-filter, as the original install guide did it, through the CLI', () => {
  test('install exports 10.0.0.7 from node1 and node3 with ECMP and nothing else; uninstall takes it back', async () => {
    await sessionsUp();
    // By hand, as in this issue: the /32 on lo of node1 and node3.
    for (const n of ['node1', 'node3']) expect((await lab.exec(n, 'ip', ['address', 'add', '10.0.0.7/32', 'dev', 'lo'])).exitCode).toBe(0);
    // Without the filter calico_pools exports nothing (no pod routes in the lab).
    await new Promise((resolve) => setTimeout(resolve, 1500)); // one scan time of BIRD's device protocol
    expect(await birdRoutes()).toEqual([]);
    const before = await snapshot();

    const install = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--limit', 'node1,node3']);
    expect(install.exitCode).toBe(0);
    // The default filter, limited to extip_external_cidrs of the ECMP example (10.0.0.0/24).
    expect(await key(V4)).toBe('if ( ifname = "lo" ) then {\n  if net ~ [ 10.0.0.0/24+ ] then accept;\n}\n');
    await waitFor('10.0.0.7 with two nexthops', async () => (await routerNexthops(lab, '10.0.0.7')).length === 2, 30000);
    expect(await routerNexthops(lab, '10.0.0.7')).toEqual(['10.210.1.11', '10.210.1.13']);
    // The filter let only lo's /32 through: no 127.0.0.0/8, no eth0 subnet, nothing else.
    expect(await birdRoutes()).toEqual(['10.0.0.7']);
    for (const c of calico) expect(c.filters()).toContain('if net ~ [ 10.0.0.0/24+ ] then accept;');
    // A Service asks for 10.0.0.7 and 8.8.8.8: the controllers do not bring 8.8.8.8 up (outside
    // extip_external_cidrs), and had anything else put it on lo, the filter would not export it.
    await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'v2', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7', '8.8.8.8']}}));
    await waitFor('an ExternalIPRefused Event on v2', async () => (await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=v2,reason=ExternalIPRefused', '-o', 'name'])).stdout.trim() !== '', 15000);
    await lab.exec('node1', 'ip', ['address', 'add', '8.8.8.8/32', 'dev', 'lo']);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past BIRD's scan time of the interfaces
    expect(await birdRoutes()).toEqual(['10.0.0.7']);
    await lab.exec('node1', 'ip', ['address', 'del', '8.8.8.8/32', 'dev', 'lo']);
    expect(await routerNexthops(lab, '10.0.0.7')).toEqual(['10.210.1.11', '10.210.1.13']);
    await lab.kubectl(['delete', 'service', 'v2', '-n', 'default']);
    const status = await extip(['status', '--kubeconfig', lab.api.kubeconfig]);
    expect(status.stdout).toContain(`BGP export: Calico v2 filter in etcd at ${V4}`);

    // A second install changes nothing.
    const again = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--limit', 'node1,node3', '--json']);
    expect(again.exitCode).toBe(0);
    expect(JSON.parse(again.stdout).changedTasks).toEqual([]);

    const removal = await extip(['uninstall', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--limit', 'node1,node3', '--yes']);
    expect(removal.exitCode).toBe(0);
    expect(await key(V4)).toBeNull();
    await waitFor('no route for 10.0.0.7', async () => (await routerNexthops(lab, '10.0.0.7')).length === 0, 30000);
    for (const c of calico) expect(c.filters()).not.toContain('accept');
    await expectSameState(before);
    for (const n of ['node1', 'node3']) await lab.exec(n, 'ip', ['address', 'del', '10.0.0.7/32', 'dev', 'lo']);
  });
});

describe('etcd-v2-filter through the role (no CLI)', () => {
  // ECMP, the mode Calico's export is for: one node (--limit node1) is a whole setup here.
  const mode = {extip_distribution: 'all', extip_iface: 'lo', extip_calico_export: 'etcd-v2-filter'};

  test('--check --diff shows the old and new value and writes nothing; v6 key; uninstall puts back the previous value', async () => {
    const OLD = 'if ( net = 10.0.0.9/32 ) then accept;\n';
    expect((await etcd.etcdctl(['set', V4], 'node1', OLD)).exitCode).toBe(0);
    const before = await snapshot();
    const vars = {...mode, extip_calico_filter_v6_enabled: true};

    const check = await runRole(lab, {vars, args: ['--limit', 'node1', '--check', '--diff', '-vvv']});
    expect(check.exitCode).toBe(0);
    // Even at -vvv, the client key's material never shows (only its path does).
    const keyLines = (await readFile(String(lab.hostVars(lab.hosts[0]).extip_etcd_key_file), 'utf8')).split('\n').filter((l) => l && !l.startsWith('-----'));
    expect(keyLines.length).toBeGreaterThan(0);
    for (const line of keyLines) expect(`${check.stdout}${check.stderr}`).not.toContain(line);
    expect(check.stdout).toContain(`--- before: ${V4}`);
    expect(check.stdout).toContain('-if ( net = 10.0.0.9/32 ) then accept;');
    expect(check.stdout).toContain('+  if net != 127.0.0.0/8 then accept;');
    expect(check.stdout).toContain(`+++ after: ${V6}`);
    expect(await key(V4)).toBe(OLD);
    expect(await key(V6)).toBeNull();

    const install = await runRole(lab, {vars, args: ['--limit', 'node1']});
    expect(install.exitCode).toBe(0);
    expect(await key(V4)).toBe(SEED_FILTER_V4);
    expect(await key(V6)).toBe(SEED_FILTER_V6);
    expect(install.changedTasks.some((t) => t.includes('Write the export filter in etcd'))).toBe(true);
    // The calico/node stand-ins took the new filter (and BIRD 1.6 accepted it).
    await Promise.all(calico.map((c) => waitFor(`${c.host.name} reloads`, async () => c.filters().includes('127.0.0.0/8'))));

    const again = await runRole(lab, {vars, args: ['--limit', 'node1']});
    expect(again.exitCode).toBe(0);
    expect(again.changedTasks).toEqual([]);

    const removal = await runRole(lab, {vars, playbook: 'externalip-uninstall.yml', args: ['--limit', 'node1']});
    expect(removal.exitCode).toBe(0);
    expect(await key(V4)).toBe(OLD);
    expect(await key(V6)).toBeNull();
    await expectSameState(before); // also: the v6 directory extip made is gone
    await removeKey(V4);
  });

  test('renaming the filter moves the key; switching to none removes it; nothing is left', async () => {
    const before = await snapshot();
    const OLD_NAME = `${CUSTOM_FILTERS}/v4/a_first`;
    const NEW_NAME = `${CUSTOM_FILTERS}/v4/z_second`;
    expect((await runRole(lab, {vars: {...mode, extip_calico_filter_name: 'a_first'}, args: ['--limit', 'node1']})).exitCode).toBe(0);
    expect(await key(OLD_NAME)).toBe(SEED_FILTER_V4);
    expect((await runRole(lab, {vars: {...mode, extip_calico_filter_name: 'z_second'}, args: ['--limit', 'node1']})).exitCode).toBe(0);
    expect([await key(OLD_NAME), await key(NEW_NAME)]).toEqual([null, SEED_FILTER_V4]);
    expect((await runRole(lab, {vars: {...mode, extip_calico_export: 'none'}, args: ['--limit', 'node1']})).exitCode).toBe(0);
    expect(await key(NEW_NAME)).toBeNull();
    expect((await runRole(lab, {vars: mode, playbook: 'externalip-uninstall.yml', args: ['--limit', 'node1']})).exitCode).toBe(0);
    await expectSameState(before);
  });

  test('a filter changed by someone else after install is left alone by uninstall, with a warning', async () => {
    const before = await snapshot();
    expect((await runRole(lab, {vars: mode, args: ['--limit', 'node1']})).exitCode).toBe(0);
    const THEIRS = 'if ( ifname = "lo" ) then accept;\n';
    await etcd.etcdctl(['set', V4], 'node1', THEIRS);
    const removal = await runRole(lab, {vars: mode, playbook: 'externalip-uninstall.yml', args: ['--limit', 'node1']});
    expect(removal.exitCode).toBe(0);
    expect(`${removal.stdout}\n${removal.stderr}`).toMatch(/\[WARNING\]: \/calico\S+ changed in etcd\s+since extip wrote it; left as it is/);
    expect(await key(V4)).toBe(THEIRS);
    await removeKey(V4); // and the directories extip would have removed, had the key been its own
    await expectSameState(before);
  });
});

describe('bad input: nothing is written', () => {
  const base = ['install', '-i', '', '-e', `@${ecmp}`, '--set', 'extip_calico_export=etcd-v2-filter', '--limit', 'node1'];
  const args = (...more: string[]) => [...base.map((a) => (a === '' ? lab.kubesprayInventory : a)), ...more];

  test('a filter BIRD cannot parse is refused with BIRD\'s message (exit 2)', async () => {
    const before = await snapshot();
    const r = await extip(args('--set', 'extip_calico_filter_v4="if net ~ then accept;"'));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('extip_calico_filter_v4');
    expect(r.stderr).toMatch(/BIRD says: line 1, column \d+: syntax error/);
    expect(diffSnapshots(before, await snapshot())).toEqual([]);
  });

  test('unreachable etcd fails in preflight, naming the endpoint (exit 4)', async () => {
    const before = await snapshot();
    const r = await extip(args('--set', 'extip_etcd_endpoints=https://127.0.0.1:2399'));
    expect(r.exitCode).toBe(4);
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/etcd at https:\/\/127\.0\.0\.1:2399.*connection refused/);
    expect(diffSnapshots(before, await snapshot())).toEqual([]);
  });

  test('a missing client certificate fails naming the file (exit 4)', async () => {
    const before = await snapshot();
    const r = await extip(args('--set', 'extip_etcd_cert_file=/etc/ssl/etcd/ssl/admin-nowhere.pem'));
    expect(r.exitCode).toBe(4);
    expect(`${r.stdout}\n${r.stderr}`).toContain('cert file /etc/ssl/etcd/ssl/admin-nowhere.pem does not exist');
    expect(diffSnapshots(before, await snapshot())).toEqual([]);
  });

  test('a CA that did not sign etcd\'s certificate fails on TLS, naming the endpoint (exit 4)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'extip-ca-'));
    try {
      const ca = join(dir, 'other-ca.pem');
      await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', ca, '-days', '1', '-subj', '/CN=other-ca']);
      const before = await snapshot();
      const r = await extip(args('--set', `extip_etcd_ca_file=${ca}`));
      expect(r.exitCode).toBe(4);
      expect(`${r.stdout}\n${r.stderr}`).toMatch(/etcd at https:\/\/127\.0\.0\.1:2379.*certificate/);
      expect(diffSnapshots(before, await snapshot())).toEqual([]);
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  });

  test('the etcd TLS defaults are where Kargo puts them, on the first etcd host', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'extip-defaults-'));
    try {
      await writeFile(join(dir, 'hosts.ini'), '[etcd]\netcd1\netcd2\n');
      const r = await execa('ansible', ['localhost', '-c', 'local', '-i', join(dir, 'hosts.ini'), '-m', 'ansible.builtin.debug',
        '-a', 'msg={{ [extip_etcd_host, extip_etcd_endpoints, extip_etcdctl, extip_etcd_ca_file, extip_etcd_cert_file, extip_etcd_key_file] | to_json }}',
        '-e', `@${join(repoRoot, 'roles/externalip/defaults/main.yml')}`], {reject: false});
      expect(r.exitCode).toBe(0);
      const msg = JSON.parse(JSON.parse(r.stdout.slice(r.stdout.indexOf('=>') + 2)).msg);
      expect(msg).toEqual(['etcd1', 'https://127.0.0.1:2379', '/usr/local/bin/etcdctl', '/etc/ssl/etcd/ssl/ca.pem', '/etc/ssl/etcd/ssl/admin-etcd1.pem', '/etc/ssl/etcd/ssl/admin-etcd1-key.pem']);
    } finally {
      await rm(dir, {recursive: true, force: true});
    }
  });
});

describe('bgpconfiguration (Calico v3) against the lab API', () => {
  const claims = {
    extip_iface: 'lo',
    extip_distribution: 'balance',
    extip_calico_service_cidrs: ['10.0.0.0/24', '192.0.2.0/24'],
    extip_ip_pools: [{name: 'pool-a', cidr: '10.1.0.0/24'}],
  };
  const bgp = async () => {
    const r = await lab.kubectl(['get', 'bgpconfigurations.crd.projectcalico.org', 'default', '-o', 'json', '--ignore-not-found']);
    return r.stdout.trim() ? JSON.parse(r.stdout) : null;
  };

  let v3: CalicoV3Node[] = [];
  beforeAll(async () => {
    // Calico's own CRD, from its Go module (test/calico/crd.sh).
    const crd = (await execa('bash', [join(repoRoot, 'test/calico/crd.sh'), 'bgpconfigurations'])).stdout.trim();
    const created = await lab.kubectl(['create', '-f', crd]);
    expect(created.stderr).toBe('');
    await lab.kubectl(['wait', '--for=condition=Established', 'crd/bgpconfigurations.crd.projectcalico.org']);
    // Calico v3 in place of v2 on every node: the v2 stand-ins go.
    for (const c of calico) {
      await c.watch.stop();
      await c.bird.daemon.stop();
    }
    for (const h of lab.hosts) v3.push(await startCalicoV3Node(lab, h.name));
  });
  afterAll(async () => {
    for (const n of v3) await n.stop();
    v3 = [];
  });

  test('the calico/node v3 stand-in: every node advertises what serviceExternalIPs lists, and stops when it is gone', async () => {
    const conf = {apiVersion: 'crd.projectcalico.org/v1', kind: 'BGPConfiguration', metadata: {name: 'default'}, spec: {serviceExternalIPs: [{cidr: '198.51.100.0/24'}]}};
    expect((await lab.kubectl(['create', '-f', '-'], JSON.stringify(conf))).exitCode).toBe(0);
    await waitFor('198.51.100.0/24 from the three nodes', async () => (await routerNexthops(lab, '198.51.100.0/24')).length === 3, 30000);
    expect(await routerNexthops(lab, '198.51.100.0/24')).toEqual(lab.hosts.map((h) => h.ip).sort());
    await lab.kubectl(['delete', 'bgpconfigurations.crd.projectcalico.org', 'default']);
    await waitFor('198.51.100.0/24 withdrawn', async () => (await routerNexthops(lab, '198.51.100.0/24')).length === 0, 30000);
  });

  test('auto finds Calico v3; install adds exactly the missing CIDRs, a re-run changes nothing, uninstall gives the object back', async () => {
    const mine = {apiVersion: 'crd.projectcalico.org/v1', kind: 'BGPConfiguration', metadata: {name: 'default'},
      spec: {asNumber: 64512, nodeToNodeMeshEnabled: false, serviceExternalIPs: [{cidr: '192.0.2.0/24'}], serviceLoadBalancerIPs: [{cidr: '198.51.100.0/24'}]}};
    expect((await lab.kubectl(['create', '-f', '-'], JSON.stringify(mine))).exitCode).toBe(0);
    // The router's routes are part of the snapshot: take it once every node advertises 192.0.2.0/24.
    await waitFor('192.0.2.0/24 from the three nodes', async () => (await routerNexthops(lab, '192.0.2.0/24')).length === 3, 30000);
    const before = await snapshot();
    const keysBefore = await etcd.keys();

    const check = await runRole(lab, {vars: claims, args: ['--check', '--diff']});
    if (check.exitCode !== 0) console.log(explain(check));
    expect(check.exitCode).toBe(0);
    expect(check.stdout).toContain('serviceExternalIPs after:  192.0.2.0/24, 10.0.0.0/24, 10.1.0.0/24');
    expect((await bgp()).spec).toEqual(mine.spec);

    const install = await runRole(lab, {vars: claims});
    expect(install.exitCode).toBe(0);
    const after = (await bgp()).spec;
    expect(after.serviceExternalIPs).toEqual([{cidr: '192.0.2.0/24'}, {cidr: '10.0.0.0/24'}, {cidr: '10.1.0.0/24'}]);
    expect(after.serviceLoadBalancerIPs).toEqual(mine.spec.serviceLoadBalancerIPs);
    expect(after.asNumber).toBe(64512);
    expect(await etcd.keys()).toEqual(keysBefore); // auto chose Calico v3, not the etcd filter

    const status = await extip(['status', '--kubeconfig', lab.api.kubeconfig]);
    expect(status.stdout).toContain('BGP export: Calico v3 BGPConfiguration default, serviceExternalIPs added: 10.0.0.0/24, 10.1.0.0/24');
    const again = await runRole(lab, {vars: claims});
    expect(again.exitCode).toBe(0);
    expect(again.changedTasks).toEqual([]);

    const removal = await runRole(lab, {vars: claims, playbook: 'externalip-uninstall.yml'});
    expect(removal.exitCode).toBe(0);
    expect((await bgp()).spec).toEqual(mine.spec);
    await expectSameState(before);
    await lab.kubectl(['delete', 'bgpconfigurations.crd.projectcalico.org', 'default']);
    // The next test snapshots the router: BGP withdraws asynchronously, so wait for it here.
    await waitFor('192.0.2.0/24 withdrawn', async () => (await routerNexthops(lab, '192.0.2.0/24')).length === 0, 30000);
  });

  test('auto on Calico v3 with nothing to advertise stops before changing anything, naming the variable; extip_external_cidrs is what it advertises', async () => {
    const before = await snapshot();
    const nothing = await runRole(lab, {vars: {extip_iface: 'lo', extip_distribution: 'all'}});
    expect(nothing.exitCode).not.toBe(0);
    expect(explain(nothing)).toContain('Calico v3 runs here (bgpconfiguration), which advertises only the ranges in the BGPConfiguration\'s serviceExternalIPs, but there is nothing to add: extip_external_cidrs is empty');
    await expectSameState(before);
    const vars = {extip_iface: 'lo', extip_distribution: 'all', extip_ctrl_app_kind: 'DaemonSet', extip_mask: 32, extip_external_cidrs: ['10.0.0.0/24']};
    const install = await runRole(lab, {vars});
    if (install.exitCode !== 0) console.log(explain(install));
    expect(install.exitCode).toBe(0);
    expect((await bgp()).spec).toEqual({serviceExternalIPs: [{cidr: '10.0.0.0/24'}]});
    // A Service asks for 10.0.0.7 and 8.8.8.8: the router reaches 10.0.0.7 over every node
    // (Calico advertises the range), and has no route for 8.8.8.8, which no node brought up.
    await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'v3', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7', '8.8.8.8']}}));
    await waitFor('10.0.0.0/24 from the three nodes', async () => (await routerNexthops(lab, '10.0.0.0/24')).length === 3, 30000);
    const via = JSON.parse((await lab.exec('tor', 'ip', ['-j', 'route', 'get', '10.0.0.7'])).stdout)[0];
    expect(lab.hosts.map((h) => h.ip)).toContain(via.gateway);
    expect((await lab.exec('tor', 'ip', ['route', 'get', '8.8.8.8'])).exitCode).not.toBe(0);
    for (const h of lab.hosts) {
      await waitFor(`10.0.0.7 on lo of ${h.name}`, async () => JSON.parse((await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'lo'])).stdout)[0].addr_info.some((a: {local: string}) => a.local === '10.0.0.7'), 15000);
      expect(JSON.parse((await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'lo'])).stdout)[0].addr_info.map((a: {local: string}) => a.local)).not.toContain('8.8.8.8');
    }
    await lab.kubectl(['delete', 'service', 'v3', '-n', 'default']);
    const removal = await runRole(lab, {vars, playbook: 'externalip-uninstall.yml'});
    expect(removal.exitCode).toBe(0);
    expect(await bgp()).toBeNull();
    await waitFor('10.0.0.0/24 withdrawn', async () => (await routerNexthops(lab, '10.0.0.0/24')).length === 0, 30000);
    await expectSameState(before);
  });

  test('with no default BGPConfiguration, install creates it and uninstall deletes it', async () => {
    const before = await snapshot();
    const vars = {extip_iface: 'lo', extip_calico_export: 'bgpconfiguration', extip_calico_service_cidrs: ['10.0.0.0/24']};
    const install = await runRole(lab, {vars});
    if (install.exitCode !== 0) console.log(explain(install));
    expect(install.exitCode).toBe(0);
    expect((await bgp()).spec).toEqual({serviceExternalIPs: [{cidr: '10.0.0.0/24'}]});
    const removal = await runRole(lab, {vars, playbook: 'externalip-uninstall.yml'});
    expect(removal.exitCode).toBe(0);
    expect(await bgp()).toBeNull();
    await expectSameState(before);
  });
});
