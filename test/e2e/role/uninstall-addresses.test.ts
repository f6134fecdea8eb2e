/**
 * Uninstall removes only the addresses the controller added (its IPv4 label or
 * its records), never a node's own address, and follows the interface the
 * install recorded in the ledger, not the variables of the uninstall run.
 */
import {expect, test} from '@jest/globals';
import {mkdir, readdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {explain, runRole} from '../../helpers/role.js';
import {useLab} from '../../helpers/lab.js';

const lab = useLab({nodes: 2});

async function eth0(node: string): Promise<string[]> {
  const a = JSON.parse((await lab.exec(node, 'ip', ['-j', 'address', 'show', 'dev', 'eth0'])).stdout);
  return a[0].addr_info.filter((i: {family: string}) => i.family === 'inet').map((i: {local: string; prefixlen: number}) => `${i.local}/${i.prefixlen}`);
}

test('a Service naming node1\'s InternalIP does not cost node1 its address; only labelled or recorded addresses go', async () => {
  const node1 = lab.host('node1');
  // The defaults: balance, eth0, mask 24.
  const install = await runRole(lab, {vars: {extip_ip_pools: []}});
  expect(install.exitCode).toBe(0);
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'takes-node1', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: [node1.ip, '10.0.0.99', '10.0.0.98', '10.0.0.97']}};
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).exitCode).toBe(0);
  // The operator's own 10.0.0.99 (no label), one the controller added with its label, one it recorded.
  await lab.exec('node1', 'ip', ['address', 'add', '10.0.0.99/24', 'dev', 'eth0']);
  await lab.exec('node1', 'ip', ['address', 'add', '10.0.0.98/24', 'dev', 'eth0', 'label', 'eth0:extip']);
  await lab.exec('node1', 'ip', ['address', 'add', '10.0.0.97/24', 'dev', 'eth0']);
  const records = join(node1.root, 'run/extip/owners/eth0');
  await mkdir(records, {recursive: true});
  await writeFile(join(records, 'extip.claimcontroller.json'), JSON.stringify({owner: 'extip.claimcontroller', iface: 'eth0', updated: 0, addresses: ['10.0.0.97/24', `${node1.ip}/24`]}));

  // Uninstall with other variables than the install: the ledger says eth0.
  const uninstall = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: {extip_iface: 'lo', extip_mask: 32}});
  expect(uninstall.exitCode).toBe(0);
  if (uninstall.exitCode !== 0) console.log(explain(uninstall));
  const left = await eth0('node1');
  expect(left).toContain(`${node1.ip}/24`);
  expect(left).toContain('10.0.0.99/24');
  expect(left).not.toContain('10.0.0.98/24');
  expect(left).not.toContain('10.0.0.97/24');
  expect(await readdir(records)).toEqual([]);
  // node1 still reaches node2.
  expect((await lab.exec('node1', 'ping', ['-c', '1', '-W', '2', lab.host('node2').ip])).exitCode).toBe(0);
  await lab.exec('node1', 'ip', ['address', 'del', '10.0.0.99/24', 'dev', 'eth0']);
  await lab.kubectl(['delete', 'service', 'takes-node1', '-n', 'default']);
});

async function setLedger(text: string) {
  const r = await lab.kubectl(['-n', 'kube-system', 'patch', 'configmap', 'extip-ledger', '--type=merge', '-p', JSON.stringify({data: {'ledger.json': text}})]);
  expect(r.stderr).toBe('');
}

async function nodeLabels(name: string): Promise<Record<string, string>> {
  return JSON.parse((await lab.kubectl(['get', 'node', name, '-o', 'json'])).stdout).metadata.labels;
}

test('a corrupted or tampered ledger stops uninstall before anything changes, saying what is wrong', async () => {
  expect((await runRole(lab, {vars: {extip_ip_pools: []}})).exitCode).toBe(0);
  expect((await nodeLabels('node2')).externalip).toBe('true');

  await setLedger('{not json');
  const corrupted = await runRole(lab, {playbook: 'externalip-uninstall.yml'});
  expect(corrupted.exitCode).not.toBe(0);
  expect(corrupted.failures.map((f) => f.msg).join('\n')).toMatch(/install ledger .* is damaged: ledger\.json is not JSON/);
  expect((await nodeLabels('node2')).externalip).toBe('true');

  // Steered at Kubernetes' own label and a system namespace.
  await setLedger(JSON.stringify({version: 1, labels: {'node-role.kubernetes.io/control-plane': {node1: null}, externalip: {node1: null, node2: null}}, namespaces_created: ['kube-system']}));
  const tampered = await runRole(lab, {playbook: 'externalip-uninstall.yml'});
  expect(tampered.exitCode).not.toBe(0);
  const msg = tampered.failures.map((f) => f.msg).join('\n');
  // In the words of the ledger's schema (roles/externalip/files/ledger.schema.json).
  expect(msg).toContain('the key "node-role.kubernetes.io/control-plane" of labels is a Kubernetes label, which extip never sets');
  expect(msg).toContain('namespaces_created[0] is a system namespace, which extip never creates');
  expect(Object.keys(await nodeLabels('node1'))).toContain('node-role.kubernetes.io/control-plane');
  expect((await nodeLabels('node2')).externalip).toBe('true');

  // Put right, uninstall finishes.
  await setLedger(JSON.stringify({version: 1, labels: {externalip: {node1: null, node2: null}}, namespaces_created: ['extip']}));
  const fixed = await runRole(lab, {playbook: 'externalip-uninstall.yml'});
  if (fixed.exitCode !== 0) console.log(explain(fixed));
  expect(fixed.exitCode).toBe(0);
  expect((await nodeLabels('node2')).externalip).toBeUndefined();
  expect(Object.keys(await nodeLabels('node1'))).toContain('node-role.kubernetes.io/control-plane');
});
