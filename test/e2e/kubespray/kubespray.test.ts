/**
 * extip inside kubespray as it is today (test/fixtures/kubespray: the thin root
 * playbooks, kubespray_defaults, dynamic_groups, its Calico role's handling of
 * serviceExternalIPs), on the lab, with the ansible-core kubespray pins: render
 * --kargo, then the command it prints, run as printed.
 */
import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {Lab} from '../../lab/lab.js';
import {diffSnapshots, takeSnapshot} from '../../lab/snapshot.js';
import {repoRoot} from '../../helpers/ansible.js';
import {extip} from '../../helpers/cli.js';
import {fixtureCheckout, labInventory, runPrinted} from '../../helpers/kubespray.js';

const ecmp = join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml');

let lab: Lab;
let work: string;
beforeAll(async () => {
  lab = await Lab.start({nodes: 3});
  work = await mkdtemp(join(tmpdir(), 'extip-kubespray-'));
  // Calico v3's CRD, as a kubespray cluster with Calico has it.
  const crd = (await execa('bash', [join(repoRoot, 'test/calico/crd.sh'), 'bgpconfigurations'])).stdout.trim();
  expect((await lab.kubectl(['create', '-f', crd])).exitCode).toBe(0);
  await lab.kubectl(['wait', '--for=condition=Established', 'crd/bgpconfigurations.crd.projectcalico.org']);
});
afterAll(async () => {
  await lab?.stop();
  if (work) await rm(work, {recursive: true, force: true});
});

async function serviceExternalIPs(): Promise<string[] | null> {
  const r = await lab.kubectl(['get', 'bgpconfigurations.crd.projectcalico.org', 'default', '-o', 'json', '--ignore-not-found']);
  if (!r.stdout.trim()) return null;
  return ((JSON.parse(r.stdout).spec.serviceExternalIPs ?? []) as Array<{cidr: string}>).map((x) => x.cidr);
}
async function labelled(): Promise<string[]> {
  const r = await lab.kubectl(['get', 'nodes', '-l', 'externalip=true', '-o', 'name']);
  return r.stdout.split('\n').filter(Boolean).sort();
}
async function controllers(): Promise<string[]> {
  const r = await lab.kubectl(['get', 'daemonsets', '-A', '-l', 'app.kubernetes.io/managed-by=extip', '-o', 'name']);
  return r.stdout.split('\n').filter(Boolean);
}
const extipChanges = (changed: string[]) => changed.filter((t) => t.includes('externalip :'));

describe('kubespray of today, with its Calico role', () => {
  let root: string;
  let command: string;

  test('render --kargo prints a command that, run as printed, installs extip with kubespray\'s defaults; a re-run changes nothing', async () => {
    root = await fixtureCheckout(join(work, 'kubespray'));
    await labInventory(lab, root, 'mycluster');
    // The cluster as kubespray left it: its Calico role wrote the default BGPConfiguration.
    const network = await runPrinted(`cd ${root} && ansible-playbook -i inventory/mycluster/inventory.ini -b cluster.yml -t network`, [], work);
    expect([network.exitCode, network.output.slice(-2000)]).toEqual([0, expect.anything()]);
    expect(await serviceExternalIPs()).toEqual([]);

    const render = await extip(['render', '--kargo', root, '--kargo-inventory', 'inventory/mycluster', '-e', `@${ecmp}`, '--json']);
    expect(render.exitCode).toBe(0);
    command = JSON.parse(render.stdout).command;
    expect(command).toBe(`cd ${root} && ansible-playbook -i inventory/mycluster/inventory.ini -b cluster.yml -t externalip`);

    const install = await runPrinted(command, [], work);
    if (install.exitCode !== 0) console.log(install.output.slice(-6000));
    expect(install.exitCode).toBe(0);
    // The role ran on every node, with the kubeconfig and kubectl of kube_config_dir and bin_dir.
    expect(install.hosts.filter((h) => h !== 'localhost').sort()).toEqual(lab.hosts.map((h) => h.name).sort());
    expect(await labelled()).toEqual(lab.hosts.map((h) => `node/${h.name}`).sort());
    expect(await controllers()).toEqual(['daemonset.apps/claimcontroller']);
    expect(await serviceExternalIPs()).toEqual(['10.0.0.0/24']);

    const again = await runPrinted(command, [], work);
    expect(again.exitCode).toBe(0);
    expect(extipChanges(again.changed)).toEqual([]);
  });

  test('kubespray\'s next Calico run keeps the range, because render set calico_advertise_service_external_ips; extip then changes nothing', async () => {
    const calico = await runPrinted(`cd ${root} && ansible-playbook -i inventory/mycluster/inventory.ini -b cluster.yml -t network`, [], work);
    expect(calico.exitCode).toBe(0);
    expect(await serviceExternalIPs()).toEqual(['10.0.0.0/24']);
    const again = await runPrinted(command, [], work);
    expect(again.exitCode).toBe(0);
    expect(extipChanges(again.changed)).toEqual([]);
  });

  test('scale.yml and upgrade_cluster.yml run extip too, with nothing to change', async () => {
    for (const playbook of ['scale.yml', 'upgrade_cluster.yml']) {
      const run = await runPrinted(command.replace(' cluster.yml ', ` ${playbook} `), [], work);
      if (run.exitCode !== 0) console.log(run.output.slice(-4000));
      expect(run.exitCode).toBe(0);
      expect(run.hosts.filter((h) => h !== 'localhost').sort()).toEqual(lab.hosts.map((h) => h.name).sort());
      expect(extipChanges(run.changed)).toEqual([]);
    }
  });

  test('-i naming the inventory directory (Ansible skips its .ini) fails, saying to name the file; from elsewhere than the root kubespray\'s roles are not found', async () => {
    const before = await takeSnapshot(lab);
    const dir = await runPrinted(command.replace('inventory/mycluster/inventory.ini', 'inventory/mycluster'), [], work);
    expect(dir.exitCode).not.toBe(0);
    expect(dir.output).toContain('Give -i the inventory file itself (inventory/<name>/inventory.ini)');
    // Without the cd, kubespray's ansible.cfg is not read, and with it its roles_path.
    const elsewhere = await runPrinted(`ansible-playbook -i ${root}/inventory/mycluster/inventory.ini -b ${root}/cluster.yml -t externalip`, [], work);
    expect(elsewhere.exitCode).not.toBe(0);
    expect(elsewhere.output).toMatch(/the role 'dynamic_groups' was not found/);
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
  });

  test('a calico_advertise_service_external_ips without the range stops the role before it changes anything, naming the variable', async () => {
    const calicoVars = join(root, 'inventory/mycluster/group_vars/k8s_cluster/k8s-net-calico.yml');
    const saved = await readFile(calicoVars, 'utf8');
    await writeFile(calicoVars, '---\ncalico_advertise_service_external_ips: [192.0.2.0/24]\n');
    try {
      const before = await takeSnapshot(lab);
      const run = await runPrinted(command, ['-e', '{"extip_external_cidrs": ["10.0.0.0/24", "10.9.0.0/24"]}'], work);
      expect(run.exitCode).not.toBe(0);
      expect(run.output).toContain('Add 10.0.0.0/24, 10.9.0.0/24 to calico_advertise_service_external_ips in the inventory\'s group_vars');
      expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
    } finally {
      await writeFile(calicoVars, saved);
    }
  });

  test('-e extip_state=absent removes what extip installed, and leaves the range kubespray\'s inventory lists', async () => {
    const removal = await runPrinted(command, ['-e', 'extip_state=absent'], work);
    if (removal.exitCode !== 0) console.log(removal.output.slice(-4000));
    expect(removal.exitCode).toBe(0);
    expect(await labelled()).toEqual([]);
    expect(await controllers()).toEqual([]);
    // kubespray put 10.0.0.0/24 there on its last Calico run, from the inventory: extip did not add it then.
    expect(await serviceExternalIPs()).toEqual(['10.0.0.0/24']);
  });
});

test('a Kargo-era inventory (kube-master, kube-node) in today\'s kubespray: dynamic_groups maps the names, the printed command installs and removes', async () => {
  const root = await fixtureCheckout(join(work, 'kargo-names'));
  await labInventory(lab, root, 'oldnames', 'kargo');
  const before = await takeSnapshot(lab);
  const render = await extip(['render', '--kargo', root, '--kargo-inventory', 'inventory/oldnames', '-e', `@${ecmp}`, '--set', 'extip_calico_export=none', '--json']);
  expect(render.exitCode).toBe(0);
  const command = JSON.parse(render.stdout).command as string;
  const install = await runPrinted(command, [], work);
  if (install.exitCode !== 0) console.log(install.output.slice(-6000));
  expect(install.exitCode).toBe(0);
  expect(await labelled()).toEqual(lab.hosts.map((h) => `node/${h.name}`).sort());
  const removal = await runPrinted(command, ['-e', 'extip_state=absent'], work);
  expect(removal.exitCode).toBe(0);
  expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
});
