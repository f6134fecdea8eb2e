import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {loadVariables} from '../../cli/loader.js';
import {extip} from '../helpers/cli.js';
import {useWorkDir} from '../helpers/workdir.js';

const dir = useWorkDir();

test('defaults come from the catalogue when nothing is given', async () => {
  const vars = await loadVariables({});
  expect(vars.values.extip_mask).toBe(24);
  expect(vars.explicit.size).toBe(0);
});

test('precedence: group_vars all < k8s_cluster < -e files in order < --set', async () => {
  await dir.write('inv/hosts.yaml', 'all: {}\n');
  await dir.write('inv/group_vars/all/a.yml', 'extip_mask: 30\nextip_iface: eth1\nextip_ctrl_replicas: 3\nextip_ctrl_verbose: 1\n');
  await dir.write('inv/group_vars/all/b.yml', 'extip_mask: 29\n');
  await dir.write('inv/group_vars/k8s_cluster/x.yml', 'extip_iface: eth2\nextip_ctrl_verbose: 2\n');
  const e1 = await dir.write('e1.yml', 'extip_ctrl_replicas: 4\nextip_ctrl_verbose: 3\n');
  const e2 = await dir.write('e2.yml', 'extip_ctrl_verbose: 4\n');
  const vars = await loadVariables({
    inventory: join(dir.path, 'inv/hosts.yaml'),
    extraVars: [`@${e1}`, `@${e2}`, 'extip_sched_replicas=5'],
    sets: ['extip_sched_replicas=6'],
  });
  expect(vars.values.extip_mask).toBe(29); // b.yml after a.yml
  expect(vars.values.extip_iface).toBe('eth2'); // k8s_cluster over all
  expect(vars.values.extip_ctrl_replicas).toBe(4); // -e over group_vars
  expect(vars.values.extip_ctrl_verbose).toBe(4); // later -e wins
  expect(vars.values.extip_sched_replicas).toBe(6); // --set wins
  expect(vars.explicit.get('extip_ctrl_verbose')).toBe(e2);
});

test('Kargo-era group_vars files (all.yml, k8s-cluster.yml) next to inventory.cfg', async () => {
  await dir.write('inventory/inventory.cfg', '[kube-node]\nnode1\n');
  await dir.write('inventory/group_vars/all.yml', 'extip_iface: lo\nextip_mask: 32\n');
  await dir.write('inventory/group_vars/k8s-cluster.yml', 'extip_mask: 31\n');
  const vars = await loadVariables({inventory: join(dir.path, 'inventory/inventory.cfg')});
  expect(vars.values).toMatchObject({extip_iface: 'lo', extip_mask: 31});
});

test('like Ansible, group_vars/all/ hides group_vars/all.yml', async () => {
  await dir.write('inv/group_vars/all.yml', 'extip_iface: lo\n');
  await dir.write('inv/group_vars/all/extip.yml', 'extip_mask: 32\n');
  const vars = await loadVariables({inventory: join(dir.path, 'inv')});
  expect(vars.values.extip_iface).toBe('eth0');
  expect(vars.values.extip_mask).toBe(32);
});

test('YAML 1.1 as Ansible reads it: yes/no are booleans, quoted "true" stays a string', async () => {
  const f = await dir.write('v.yml', 'extip_ctrl_privileged: yes\nextip_calico_filter_v6_enabled: off\nextip_sched_leader_elect: "true"\n');
  const vars = await loadVariables({varsFiles: [f]});
  expect(vars.values.extip_ctrl_privileged).toBe(true);
  expect(vars.values.extip_calico_filter_v6_enabled).toBe(false);
  expect(vars.values.extip_sched_leader_elect).toBe('true');
});

test('Jinja expressions pass through untouched', async () => {
  const f = await dir.write('v.yml', 'extip_ctrl_hostname: "{{ ansible_hostname }}"\nextip_iface: "{{ ansible_default_ipv4.interface }}"\n');
  const vars = await loadVariables({varsFiles: [f]});
  expect(vars.given.extip_iface).toBe('{{ ansible_default_ipv4.interface }}');
});

test('-e name=value gives strings, as Ansible does; --set reads YAML', async () => {
  const vars = await loadVariables({extraVars: ['extip_mask=32 extip_iface="lo"'], sets: ['extip_ip_pools=[{name: a, cidr: 10.0.0.0/24}]']});
  expect(vars.given.extip_mask).toBe('32');
  expect(vars.given.extip_iface).toBe('lo');
  expect(vars.given.extip_ip_pools).toEqual([{name: 'a', cidr: '10.0.0.0/24'}]);
});

test('-e with an inline mapping', async () => {
  const vars = await loadVariables({extraVars: ['{"extip_mask": 32, "extip_iface": "lo"}']});
  expect(vars.given).toMatchObject({extip_mask: 32, extip_iface: 'lo'});
});

test('the old k8s_namespace sets extip_namespace unless that is set too', async () => {
  expect((await loadVariables({extraVars: ['k8s_namespace=kube-system']})).values.extip_namespace).toBe('kube-system');
  expect((await loadVariables({extraVars: ['k8s_namespace=kube-system', 'extip_namespace=extip']})).values.extip_namespace).toBe('extip');
});

test('variables that are not extip_* from -e are kept for Ansible; group_vars ones are ignored', async () => {
  await dir.write('inv/group_vars/all.yml', 'kube_version: v1.30.0\nextip_mask: 32\n');
  const vars = await loadVariables({inventory: join(dir.path, 'inv'), extraVars: ['ansible_ssh_pass=vagrant']});
  expect(vars.passthrough).toEqual({ansible_ssh_pass: 'vagrant'});
  expect('kube_version' in vars.given).toBe(false);
});

test.each([
  ['a missing file', {varsFiles: ['/nonexistent/x.yml']}, /cannot read: ENOENT/],
  ['bad YAML', {sets: ['extip_mask=[1']}, /not valid YAML/],
  ['a list file', {extraVars: ['{]']}, /not valid YAML/],
  ['--set without =', {sets: ['extip_mask']}, /expected name=value/],
  ['a missing inventory', {inventory: '/nonexistent/inv'}, /inventory \/nonexistent\/inv does not exist/],
])('%s is a clear user error', async (_label, inputs, message) => {
  await expect(loadVariables(inputs)).rejects.toThrow(message);
});

test('a variables file that is a list is refused', async () => {
  const f = await dir.write('l.yml', '- a\n- b\n');
  await expect(loadVariables({varsFiles: [f]})).rejects.toThrow(/must be a mapping/);
});

test.each([
  ['an alias bomb', 'a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n', /bomb\.yml: not accepted: .*alias/],
  ['a duplicate key', 'extip_iface: lo\nextip_mask: 32\nextip_iface: eth0\n', /dup\.yml:3:1: not valid YAML: Map keys must be unique/],
  ['bytes that are not UTF-8', Buffer.from('extip_namespace: ok\nextip_iface: l\xe9\n', 'latin1'), /latin\.yml:2: not UTF-8 text/],
])('%s is refused with the file and line, not read differently', async (label, content, message) => {
  const name = label.includes('alias') ? 'bomb.yml' : label.includes('duplicate') ? 'dup.yml' : 'latin.yml';
  const path = await dir.write(name, content);
  await expect(loadVariables({varsFiles: [path]})).rejects.toThrow(message);
  // The CLI as a user types it: exit 2 and the same message, also under --json.
  const r = await extip(['render', '--manifests', '--out', join(dir.path, 'out'), '-e', `@${path}`, '--json']);
  expect(r.exitCode).toBe(2);
  expect(`${r.stdout}${r.stderr}`).toMatch(message);
});
