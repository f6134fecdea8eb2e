/**
 * The run lock and the ledger under concurrency and loss: a run waits for no
 * one and changes nothing while another holds the lock; a stale lock is taken
 * over; ledger writes are conditional; uninstall deletes a namespace only when
 * it holds nothing but extip's objects and, without a ledger, removes what
 * carries extip's labels and says what it could not know; a re-install prunes
 * what the current setup no longer applies.
 */
import {afterEach, expect, test} from '@jest/globals';
import {hostname, userInfo} from 'node:os';
import {join} from 'node:path';
import {repoRoot} from '../../helpers/ansible.js';
import {extip} from '../../helpers/cli.js';
import {explain, runRole} from '../../helpers/role.js';
import {useLab} from '../../helpers/lab.js';

const lab = useLab({nodes: 2});
afterEach(async () => {
  await lab.kubectl(['-n', 'kube-system', 'delete', 'lease', 'extip-lock', '--ignore-not-found']);
  const r = await runRole(lab, {playbook: 'externalip-uninstall.yml'});
  if (r.exitCode !== 0) console.log(explain(r));
});

const ecmp = {extip_distribution: 'all', extip_iface: 'lo', extip_mask: 32, extip_ip_pools: []};

async function nodeLabels(name: string): Promise<Record<string, string>> {
  return JSON.parse((await lab.kubectl(['get', 'node', name, '-o', 'json'])).stdout).metadata.labels;
}

async function exists(...args: string[]): Promise<boolean> {
  return (await lab.kubectl(['get', ...args])).exitCode === 0;
}

function lease(holder: string, renewedSecondsAgo: number, duration = 900) {
  const t = new Date(Date.now() - renewedSecondsAgo * 1000).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  return JSON.stringify({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {name: 'extip-lock', namespace: 'kube-system'},
    spec: {holderIdentity: holder, leaseDurationSeconds: duration, acquireTime: t, renewTime: t},
  });
}

test('a run held by another stops before changing anything and names the holder; --break-lock takes it over', async () => {
  const holder = 'ops@bastion-2 pid 4242 start 99';
  expect((await lab.kubectl(['create', '-f', '-'], lease(holder, 5))).exitCode).toBe(0);
  const blocked = await runRole(lab, {vars: ecmp});
  expect(blocked.exitCode).not.toBe(0);
  const msg = blocked.failures.map((f) => f.msg).join('\n');
  expect(msg).toContain(`Another extip run holds the lock (Lease kube-system/extip-lock): ${holder}`);
  expect(msg).toContain('--break-lock');
  expect(blocked.changedTasks).toEqual([]);
  expect((await nodeLabels('node1')).externalip).toBeUndefined();
  // Still theirs.
  expect(JSON.parse((await lab.kubectl(['-n', 'kube-system', 'get', 'lease', 'extip-lock', '-o', 'json'])).stdout).spec.holderIdentity).toBe(holder);

  // The CLI's --break-lock sets extip_break_lock; its --json lists the warning.
  const broken = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml')}`, '--break-lock', '--json']);
  expect(broken.exitCode).toBe(0);
  const report = JSON.parse(broken.stdout);
  expect(report.warnings.map((w: {message: string}) => w.message).join('\n')).toContain(`Took over the run lock of ${holder} (extip_break_lock is set)`);
  expect((await nodeLabels('node1')).externalip).toBe('true');
  // Released at the end.
  expect(await exists('-n', 'kube-system', 'lease', 'extip-lock')).toBe(false);
});

test('a lock whose lease ran out, or whose process on this host is gone, is taken over by itself', async () => {
  expect((await lab.kubectl(['create', '-f', '-'], lease('ops@bastion-2 pid 4242 start 99', 901))).exitCode).toBe(0);
  const expired = await runRole(lab, {vars: ecmp});
  expect(expired.exitCode).toBe(0);
  expect(expired.warnings.join('\n')).toMatch(/Took over the run lock of ops@bastion-2 pid 4242 start 99 \(its lease ran out at /);

  // A killed run on this very host: pid 2^22-1 does not exist.
  const dead = `${userInfo().username}@${hostname()} pid 4194303 start 12345`;
  expect((await lab.kubectl(['create', '-f', '-'], lease(dead, 1))).exitCode).toBe(0);
  const again = await runRole(lab, {vars: ecmp});
  expect(again.exitCode).toBe(0);
  expect(again.warnings.join('\n')).toContain(`Took over the run lock of ${dead} (its process (pid 4194303 on ${hostname()}) is gone)`);
});

test('two installs at once with different node labels: one runs, and uninstall leaves neither label', async () => {
  const [a, b] = await Promise.all([
    runRole(lab, {vars: {...ecmp, extip_node_label: 'extip-a'}}),
    runRole(lab, {vars: {...ecmp, extip_node_label: 'extip-b'}}),
  ]);
  const outcomes = [a, b].map((r) => (r.exitCode === 0 ? 'ok' : r.failures.map((f) => f.msg).join(' ')));
  // Both may succeed only one after the other; a failure must be the lock's.
  for (const o of outcomes) if (o !== 'ok') expect(o).toContain('Another extip run holds the lock');
  expect(outcomes).toContain('ok');
  const ledger = JSON.parse(JSON.parse((await lab.kubectl(['-n', 'kube-system', 'get', 'configmap', 'extip-ledger', '-o', 'json'])).stdout).data['ledger.json']);
  for (const [r, key] of [[a, 'extip-a'], [b, 'extip-b']] as const) {
    if (r.exitCode === 0) expect(Object.keys(ledger.labels)).toContain(key);
  }
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: ecmp});
  expect(removal.exitCode).toBe(0);
  for (const node of ['node1', 'node2']) {
    const labels = await nodeLabels(node);
    expect(labels['extip-a']).toBeUndefined();
    expect(labels['extip-b']).toBeUndefined();
  }
});

test('a ledger write is conditional on the version read: a stale one is refused and the run stops', async () => {
  expect((await runRole(lab, {vars: ecmp})).exitCode).toBe(0);
  // The resourceVersion this run believes it read is older than the stored one.
  const stale = await runRole(lab, {vars: {...ecmp, extip_node_label: 'extip-c'}, args: ['-e', 'extip__ledger_rv=1']});
  expect(stale.exitCode).not.toBe(0);
  expect(stale.failures.map((f) => f.msg).join('\n')).toMatch(/install ledger .* was not written: .*It changed since this run read it \(resourceVersion 1\)/s);
  expect((await nodeLabels('node1'))['extip-c']).toBeUndefined();
  // The lock went with the failed run.
  expect(await exists('-n', 'kube-system', 'lease', 'extip-lock')).toBe(false);
});

test('uninstall keeps a namespace extip created once it holds somebody else\'s objects, and says so', async () => {
  const vars = {...ecmp, extip_namespace: 'extip-ns'};
  expect((await runRole(lab, {vars})).exitCode).toBe(0);
  expect(await exists('-n', 'extip-ns', 'daemonset', 'claimcontroller')).toBe(true);
  expect((await lab.kubectl(['-n', 'extip-ns', 'create', 'configmap', 'user-data', '--from-literal=k=v'])).exitCode).toBe(0);
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars});
  expect(removal.exitCode).toBe(0);
  expect(removal.warnings.join('\n')).toContain('Namespace extip-ns was created by extip but was left in place: it holds objects extip did not make (configmap/user-data)');
  expect(await exists('-n', 'extip-ns', 'configmap', 'user-data')).toBe(true);
  expect(await exists('-n', 'extip-ns', 'daemonset', 'claimcontroller')).toBe(false);
  // Once it is empty of others' objects, the namespace goes (the ledger is gone, so by hand).
  await lab.kubectl(['delete', 'namespace', 'extip-ns', '--wait=true']);
});

test('without a ledger, uninstall removes what carries extip\'s labels and says what it could not know', async () => {
  expect((await runRole(lab, {vars: ecmp})).exitCode).toBe(0);
  expect(await exists('-n', 'default', 'daemonset', 'claimcontroller')).toBe(true);
  expect((await lab.kubectl(['-n', 'kube-system', 'delete', 'configmap', 'extip-ledger'])).exitCode).toBe(0);
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: ecmp});
  expect(removal.exitCode).toBe(0);
  expect(await exists('-n', 'default', 'daemonset', 'claimcontroller')).toBe(false);
  expect(await exists('clusterrole', 'extip:claimcontroller')).toBe(false);
  const said = removal.warnings.join('\n');
  expect(said).toContain('There was no install ledger (ConfigMap kube-system/extip-ledger)');
  expect(said).toMatch(/Node label externalip=true is still on node1, node2: remove it \(kubectl label nodes node1 node2 externalip-\)/);
  // It did not guess: the labels stay for the operator to judge.
  expect((await nodeLabels('node1')).externalip).toBe('true');
  await lab.kubectl(['label', 'nodes', 'node1', 'node2', 'externalip-']);
});

test('a re-install after renaming extip_ctrl_app prunes the old workload and RBAC', async () => {
  expect((await runRole(lab, {vars: {...ecmp, extip_ctrl_app: 'old-ctrl'}})).exitCode).toBe(0);
  expect(await exists('-n', 'default', 'daemonset', 'old-ctrl')).toBe(true);
  const renamed = await runRole(lab, {vars: {...ecmp, extip_ctrl_app: 'new-ctrl'}});
  expect(renamed.exitCode).toBe(0);
  expect(renamed.changedTasks.join('\n')).toContain('Prune | Delete what this setup no longer applies');
  expect(await exists('-n', 'default', 'daemonset', 'new-ctrl')).toBe(true);
  expect(await exists('-n', 'default', 'daemonset', 'old-ctrl')).toBe(false);
  expect(await exists('-n', 'default', 'serviceaccount', 'old-ctrl')).toBe(false);
  const ledger = JSON.parse(JSON.parse((await lab.kubectl(['-n', 'kube-system', 'get', 'configmap', 'extip-ledger', '-o', 'json'])).stdout).data['ledger.json']);
  expect(ledger.objects).toContain('default/daemonset.apps/new-ctrl');
  expect(ledger.objects.join(' ')).not.toContain('old-ctrl');
  // An object of the old name without extip's labels is not extip's, and stays.
  expect((await lab.kubectl(['-n', 'default', 'create', 'serviceaccount', 'old-ctrl'])).exitCode).toBe(0);
  expect((await runRole(lab, {vars: {...ecmp, extip_ctrl_app: 'new-ctrl'}})).exitCode).toBe(0);
  expect(await exists('-n', 'default', 'serviceaccount', 'old-ctrl')).toBe(true);
  await lab.kubectl(['-n', 'default', 'delete', 'serviceaccount', 'old-ctrl']);
});
