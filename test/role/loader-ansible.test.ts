/** The loader against Ansible itself: group_vars read as ansible-inventory reads them. */
import {afterEach, beforeEach, expect, test} from '@jest/globals';
import {mkdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {loadVariables} from '../../cli/loader.js';
import {ansibleEnv, tempDir} from '../helpers/ansible.js';

let dir: {path: string; cleanup: () => Promise<void>};
beforeEach(async () => (dir = await tempDir()));
afterEach(async () => dir.cleanup());

async function write(rel: string, text: string): Promise<string> {
  const path = join(dir.path, rel);
  await mkdir(join(path, '..'), {recursive: true});
  await writeFile(path, text);
  return path;
}

test('group_vars are read as real Ansible reads them (checked with ansible-inventory)', async () => {
  await write('inv/hosts.ini', '[kube_node]\nnode1\n[k8s_cluster:children]\nkube_node\n');
  await write('inv/group_vars/all/10-a.yml', 'extip_mask: 30\nextip_iface: eth1\nextip_ctrl_replicas: 3\n');
  await write('inv/group_vars/all/20-b.yaml', 'extip_mask: 29\nextip_ctrl_privileged: yes\n');
  await write('inv/group_vars/all.yml', 'extip_ctrl_verbose: 9\n'); // hidden by all/
  await write('inv/group_vars/k8s_cluster.yml', 'extip_iface: eth2\nextip_sched_leader_elect: "true"\n');
  await write('inv/group_vars/kube_node/x.yml', 'extip_ctrl_replicas: 7\n');
  const ours = await loadVariables({inventory: join(dir.path, 'inv/hosts.ini')});
  const run = await execa('ansible-inventory', ['-i', join(dir.path, 'inv/hosts.ini'), '--host', 'node1'], {env: ansibleEnv()});
  const theirs = JSON.parse(run.stdout) as Record<string, unknown>;
  expect(ours.given).toEqual(theirs);
});
