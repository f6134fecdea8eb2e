/** `extip install` / `uninstall` of the claims-mode (balance) setup through the built CLI. */
import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {waitFor} from '../lab/bgp.js';
import {diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {repoRoot} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';
import {useLab} from '../helpers/lab.js';

const balance = join(repoRoot, 'inventory-examples/balance/extip_balance.yaml');
const lab = useLab({nodes: 3});

test('balance setup: install with progress and summary, status, uninstall back to the state before', async () => {
  const before = await takeSnapshot(lab);
  const install = await extip(['install', '-i', lab.kargoInventory, '-e', `@${balance}`, '--set', 'extip_namespace=extip']);
  expect(install.exitCode).toBe(0);
  expect(install.stderr).toMatch(/TASK Externalip \| Wait for the CRDs to be Established/);
  expect(install.stderr).toMatch(/changed: node1: Externalip \| Apply the objects of the kinds the CRDs added/);
  expect(install.stderr).toMatch(/^node3\s+ok=\d+\s+changed=0\s+failed=0\s+unreachable=0/m);
  expect((await lab.kubectl(['get', 'ipclaimpools', 'pool-a'])).exitCode).toBe(0);

  // The scheduler's leader: a pod of the Deployment, with its process's UUID.
  let report: any;
  await waitFor('a scheduler leader', async () => {
    report = JSON.parse((await extip(['status', '--kubeconfig', lab.api.kubeconfig, '--json'])).stdout);
    return report.schedulerLeader !== '(none)';
  }, 60000);
  expect(report).toMatchObject({installed: true, mode: 'balance'});
  expect(report.schedulerLeader).toMatch(/^claimscheduler-[a-z0-9]+-[a-z0-9]+_[0-9a-f-]{36}$/);
  expect(report.pools).toEqual([{name: 'pool-a', cidr: '192.0.2.0/24', allocated: 0}]);

  const removal = await extip(['uninstall', '-i', lab.kargoInventory, '-e', `@${balance}`, '--set', 'extip_namespace=extip', '--yes', '--json']);
  expect(removal.exitCode).toBe(0);
  expect(JSON.parse(removal.stdout)).toMatchObject({action: 'uninstall', ok: true, failures: [], warnings: []});
  expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
});
