/** The lab itself: hosts, inventories of both eras, the API from every host, cleanup. */
import {beforeAll, describe, expect, test} from '@jest/globals';
import {existsSync} from 'node:fs';
import {writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {Lab} from '../lab/lab.js';
import {startBird} from '../lab/bird.js';
import {nodeBird2Config, routerBird2Config, routerNexthops, waitFor} from '../lab/bgp.js';
import {certDir, startEtcd, type LabEtcd} from '../lab/etcd.js';
import {diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {runPlaybook} from '../helpers/ansible.js';
import {useLab} from '../helpers/lab.js';

const lab = useLab({nodes: 3});

describe('a 3-node lab', () => {
  test('each node has its eth0 address and reaches the others through the router', async () => {
    const addr = await lab.exec('node2', 'ip', ['-j', 'addr', 'show', 'dev', 'eth0']);
    expect(JSON.parse(addr.stdout)[0].addr_info.map((a: {local: string}) => a.local)).toContain('10.210.1.12');
    const ping = await lab.exec('node1', 'ping', ['-c', '1', '-W', '2', '10.210.1.13']);
    expect(ping.exitCode).toBe(0);
    const lo = await lab.exec('node3', 'ip', ['-j', 'link', 'show', 'dev', 'lo']);
    expect(JSON.parse(lo.stdout)[0].operstate).toBe('UNKNOWN'); // lo is up
  });

  test.each(['kargo', 'kubespray'])('Ansible runs a module inside each node from the %s-era inventory, and facts show its address', async (era) => {
    const inventory = era === 'kargo' ? lab.kargoInventory : lab.kubesprayInventory;
    const playbook = join(lab.dir, `facts-${era}.yml`);
    await writeFile(playbook, `- hosts: ${era === 'kargo' ? 'kube-node' : 'kube_node'}\n  gather_facts: true\n  gather_subset: [network]\n  tasks:\n    - ansible.builtin.debug:\n        msg: "ADDR {{ inventory_hostname }} {{ ansible_default_ipv4.address }}"\n`);
    const run = await runPlaybook(['-i', inventory, playbook]);
    expect(run.exitCode).toBe(0);
    for (const h of lab.hosts) expect(run.stdout).toContain(`ADDR ${h.name} ${h.ip}`);
  });

  test('kubectl reaches the API over TLS from the control-plane host and from this machine', async () => {
    const fromHost = await lab.exec('node1', lab.kubectlPath, ['--kubeconfig', join(lab.host('node1').root, 'etc/kubernetes/admin.conf'), 'get', 'nodes', '-o', 'name']);
    expect(fromHost.stdout.split('\n')).toEqual(['node/node1', 'node/node2', 'node/node3']);
    const nodes = JSON.parse((await lab.kubectl(['get', 'nodes', '-o', 'json'])).stdout);
    expect(nodes.items.map((n: any) => n.status.addresses[0].address)).toEqual(['10.210.1.11', '10.210.1.12', '10.210.1.13']);
    // A wrong CA is refused: the lab's kubeconfig is real TLS.
    const insecure = await execa(lab.kubectlPath, ['--server', lab.k8s.url, '--certificate-authority', '/etc/ssl/certs/ca-certificates.crt', '--token', 'not-a-token', 'get', 'nodes'], {reject: false, input: '', env: {KUBECACHEDIR: join(lab.dir, 'c2'), KUBECONFIG: '/dev/null'}});
    expect(insecure.stderr).toMatch(/certificate/);
  });
});

test('two labs run side by side, and stop leaves nothing behind', async () => {
  const other = await Lab.start({nodes: 2});
  const namespaces = [other.router.ns, ...other.hosts.map((h) => h.ns)];
  expect(other.id).not.toBe(lab.id);
  const list = (await execa('ip', ['netns', 'list'])).stdout;
  for (const ns of namespaces) expect(list).toContain(ns);
  const socats = (await execa('pgrep', ['-f', `socat .*${other.dir}`], {reject: false})).stdout.trim().split('\n').filter(Boolean);
  expect(socats).toHaveLength(2);
  await other.stop();
  const after = (await execa('ip', ['netns', 'list'])).stdout;
  for (const ns of namespaces) expect(after).not.toContain(ns);
  expect((await execa('pgrep', ['-f', other.dir], {reject: false})).stdout.trim()).toBe('');
  expect(existsSync(other.dir)).toBe(false);
});

describe('etcd, BIRD and snapshots', () => {
  let etcd: LabEtcd;
  beforeAll(async () => {
    etcd = await startEtcd(lab);
  });

  test('etcd v2 set, get and rm work over TLS from the control-plane host', async () => {
    expect((await etcd.etcdctl(['set', '/calico/bgp/v1/global/custom_filters/v4/test', 'accept;'], 'node1')).exitCode).toBe(0);
    expect((await etcd.etcdctl(['get', '/calico/bgp/v1/global/custom_filters/v4/test'], 'node1')).stdout).toBe('accept;');
    expect((await etcd.etcdctl(['rm', '/calico/bgp/v1/global/custom_filters/v4/test'], 'node1')).exitCode).toBe(0);
    const missing = await etcd.etcdctl(['get', '/calico/bgp/v1/global/custom_filters/v4/test'], 'node1');
    expect(missing.exitCode).toBe(4);
    expect(missing.stderr).toContain('Key not found');
    // Without a client certificate etcd refuses.
    const anonymous = await lab.exec('node1', 'env', ['ETCDCTL_API=2', 'etcdctl', '--endpoints', etcd.endpoint, '--ca-file', join(certDir(lab.hosts[0]), 'ca.pem'), 'ls', '/']);
    expect(anonymous.exitCode).not.toBe(0);
  });

  test('BIRD daemons per namespace: a /32 on lo of node1 and node3 becomes an ECMP route on the router', async () => {
    await startBird(lab, 'tor', routerBird2Config(lab));
    for (const name of ['node1', 'node3']) await startBird(lab, name, nodeBird2Config(lab, lab.host(name)));
    for (const name of ['node1', 'node3']) await lab.exec(name, 'ip', ['address', 'add', '10.0.0.7/32', 'dev', 'lo']);
    await waitFor('two nexthops for 10.0.0.7', async () => (await routerNexthops(lab, '10.0.0.7')).length === 2, 30000);
    expect(await routerNexthops(lab, '10.0.0.7')).toEqual(['10.210.1.11', '10.210.1.13']);
    expect(await routerNexthops(lab, '127.0.0.0/8')).toEqual([]);
    await lab.exec('node1', 'ip', ['address', 'del', '10.0.0.7/32', 'dev', 'lo']);
    await waitFor('one nexthop for 10.0.0.7', async () => (await routerNexthops(lab, '10.0.0.7')).length === 1);
    await lab.exec('node3', 'ip', ['address', 'del', '10.0.0.7/32', 'dev', 'lo']);
    await waitFor('no route for 10.0.0.7', async () => (await routerNexthops(lab, '10.0.0.7')).length === 0);
  });

  test('snapshot compare detects a changed label, an added address and an added etcd key, and shows them', async () => {
    const snap = () => takeSnapshot(lab, {etcdKeys: () => etcd.keys()});
    const before = await snap();
    expect(diffSnapshots(before, await snap())).toEqual([]);
    await lab.kubectl(['label', 'node', 'node2', 'extip-test=yes']);
    await lab.exec('node3', 'ip', ['address', 'add', '10.0.0.99/32', 'dev', 'lo']);
    await etcd.etcdctl(['set', '/calico/test', 'x']);
    const diff = diffSnapshots(before, await snap());
    const at = (line: string) => diff.indexOf(line);
    expect(diff[at('~ object /node /node2') + 1]).toBe('    .metadata.labels.extip-test: added "yes"');
    expect(diff[at('~ addresses of node3') + 1]).toBe('    + lo 10.0.0.99/32');
    expect(diff).toContain('+ etcd key /calico/test');
    await lab.kubectl(['label', 'node', 'node2', 'extip-test-']);
    await lab.exec('node3', 'ip', ['address', 'del', '10.0.0.99/32', 'dev', 'lo']);
    await etcd.etcdctl(['rm', '/calico/test']);
    // The router's BGP route for the address goes a moment later.
    await waitFor('the snapshot to match again', async () => diffSnapshots(before, await snap()).length === 0);
  });
});
