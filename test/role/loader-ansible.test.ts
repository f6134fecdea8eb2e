/** The loader against Ansible itself: group_vars read as ansible-inventory reads them. */
import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {execa} from 'execa';
import {loadVariables} from '../../cli/loader.js';
import {ansibleEnv} from '../helpers/ansible.js';
import {useWorkDir} from '../helpers/workdir.js';

const dir = useWorkDir();

test('group_vars are read as real Ansible reads them (checked with ansible-inventory)', async () => {
  await dir.write('inv/hosts.ini', '[kube_node]\nnode1\n[k8s_cluster:children]\nkube_node\n');
  await dir.write('inv/group_vars/all/10-a.yml', 'extip_mask: 30\nextip_iface: eth1\nextip_ctrl_replicas: 3\n');
  await dir.write('inv/group_vars/all/20-b.yaml', 'extip_mask: 29\nextip_ctrl_privileged: yes\n');
  await dir.write('inv/group_vars/all.yml', 'extip_ctrl_verbose: 9\n'); // hidden by all/
  await dir.write('inv/group_vars/k8s_cluster.yml', 'extip_iface: eth2\nextip_sched_leader_elect: "true"\n');
  await dir.write('inv/group_vars/kube_node/x.yml', 'extip_ctrl_replicas: 7\n');
  const ours = await loadVariables({inventory: join(dir.path, 'inv/hosts.ini')});
  const run = await execa('ansible-inventory', ['-i', join(dir.path, 'inv/hosts.ini'), '--host', 'node1'], {env: ansibleEnv()});
  const theirs = JSON.parse(run.stdout) as Record<string, unknown>;
  expect(ours.given).toEqual(theirs);
});
