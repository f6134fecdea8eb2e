/** `extip status` and `extip doctor`, built, on the lab. */
import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {waitFor} from '../lab/bgp.js';
import {repoRoot} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';
import {useLab} from '../helpers/lab.js';

const ecmp = join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml');
const lab = useLab({nodes: 3});

/** The controller pod on a node, and whether it is Ready. */
async function controllerReady(node: string): Promise<boolean> {
  const pods = JSON.parse((await lab.kubectl(['get', 'pods', '-A', '-l', 'app.kubernetes.io/component=controller', '--field-selector', `spec.nodeName=${node}`, '-o', 'json'])).stdout).items;
  return pods.some((p: {status: {conditions?: Array<{type: string; status: string}>}}) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
}

/**
 * A node's kubelet cut off from the API server (down = true) or back: the
 * node lifecycle controller marks the node and its pods not ready after its
 * grace period, as in a cluster whose kubelet died.
 */
async function setKubelet(node: string, down: boolean) {
  const kubelet = lab.nodeKubelets.find((k) => k.name === node)!;
  if (down) kubelet.partition();
  else await kubelet.heal();
  await waitFor(`${node}'s controller ${down ? 'not ready' : 'ready'}`, async () => (await controllerReady(node)) !== down, 60000);
}

test('doctor passes on a good setup, then catches an external IP that is a node address and a pool in the service CIDR', async () => {
  const good = await extip(['doctor', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--kubeconfig', lab.api.kubeconfig]);
  expect(good.stdout).toContain('All checks passed.');
  expect(good.exitCode).toBe(0);
  expect(good.stdout).toMatch(/pass\s+interface\s+lo exists on every target host/);
  expect(good.stdout).toMatch(/pass\s+policy\s+external IPs only from 10\.0\.0\.0\/24/);
  expect(good.stdout).toMatch(/pass\s+image\s+ghcr\.io\/extip\/ipmanager:\d/);
  // The upstream image cannot run claims mode.
  const upstream = await extip(['doctor', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--kubeconfig', lab.api.kubeconfig, '--set', 'extip_distribution=balance',
    '--set', 'extip_image_repo=mirantis/k8s-externalipcontroller', '--set', 'extip_image_tag=release-0.2.1', '--json']);
  expect(upstream.exitCode).toBe(6);
  expect(JSON.parse(upstream.stdout).checks.find((c: {name: string}) => c.name === 'image')).toMatchObject({
    ok: false, detail: 'mirantis/k8s-externalipcontroller:release-0.2.1 is the upstream image, which cannot run claims mode (extip_distribution balance) on current Kubernetes'});

  await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'clash', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.210.1.12']}}));
  const bad = await extip(['doctor', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--kubeconfig', lab.api.kubeconfig, '--set', 'extip_distribution=balance', '--set', 'extip_ip_pools=[{name: p, cidr: 10.233.0.0/24}]', '--set', 'extip_iface=eth3', '--json']);
  expect(bad.exitCode).toBe(6);
  const report = JSON.parse(bad.stdout);
  const check = (name: string) => report.checks.find((c: {name: string}) => c.name === name);
  expect(check('addresses').ok).toBe(false);
  expect(check('addresses').detail).toContain('external IP 10.210.1.12 of default/clash is the address of node node2');
  // In the words of the role's preflight (lib/ranges.ts and extip_policy_errors share them).
  expect(check('addresses').detail).toContain('extip_ip_pools (pool "p"): 10.233.0.0/24 overlaps the Service CIDR 10.233.0.0/18 (extip_service_cidr)');
  expect(check('interface')).toMatchObject({ok: false, detail: 'eth3 is missing on node1, node2, node3'});
  const open = await extip(['doctor', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--kubeconfig', lab.api.kubeconfig, '--set', 'extip_external_cidrs=[]', '--json']);
  expect(JSON.parse(open.stdout).checks.find((c: {name: string}) => c.name === 'policy')).toMatchObject({ok: false, detail: 'extip_external_cidrs is empty: the controller brings up any address a Service names (CVE-2020-8554)', fix: 'set extip_external_cidrs to the ranges your Services\' external IPs come from'});
  expect(check('API').ok).toBe(true);
  await lab.kubectl(['delete', 'service', 'clash', '-n', 'default']);
});

test('status reports a healthy ECMP install, then a labelled node without its controller and an IP nobody holds', async () => {
  const install = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`]);
  expect(install.exitCode).toBe(0);
  await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'web', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7', '10.0.0.8']}}));

  const healthy = await extip(['status', '--kubeconfig', lab.api.kubeconfig]);
  expect(healthy.exitCode).toBe(0);
  expect(healthy.stdout).toContain('Mode:       all (ECMP');
  expect(healthy.stdout).toMatch(/node2\s+yes\s+yes\s+ready/);
  expect(healthy.stdout).toMatch(/10\.0\.0\.7\s+default\/web\s+node1,node2,node3/);
  expect(healthy.stdout).toContain('No problems found.');

  await setKubelet('node2', true);
  const missing = await extip(['status', '--json'], {env: {KUBECONFIG: lab.api.kubeconfig}});
  expect(missing.exitCode).toBe(6);
  const report = JSON.parse(missing.stdout);
  expect(report.problems).toEqual(['node node2 is labelled externalip=true but its controller is not ready']);
  expect(report.nodes.find((n: {name: string}) => n.name === 'node2')).toMatchObject({ready: false, controller: 'not ready'});
  expect(report.ips.find((i: {ip: string}) => i.ip === '10.0.0.7').heldBy).toEqual(['node1', 'node3']);

  await setKubelet('node1', true);
  await setKubelet('node3', true);
  const nobody = await extip(['status', '--kubeconfig', lab.api.kubeconfig]);
  expect(nobody.exitCode).toBe(6);
  expect(nobody.stdout).toContain('external IP 10.0.0.7 (default/web) is not held by any controller');
  for (const n of ['node1', 'node2', 'node3']) await setKubelet(n, false);

  // The hosts' kubeconfig names https://127.0.0.1:6443, which nothing serves on this machine.
  const unreachable = await extip(['status', '--kubeconfig', lab.api.hostKubeconfig]);
  expect(unreachable.exitCode).toBe(5);
  expect(unreachable.stderr).toContain('cannot read the cluster at https://127.0.0.1:6443');
  await lab.kubectl(['delete', 'service', 'web', '-n', 'default']);
});
