/** `extip render` and `extip init`, run as built, as a user types them. */
import {afterEach, beforeEach, describe, expect, test} from '@jest/globals';
import {mkdir, readFile, readdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {parseYaml} from '../cli/yamlio.js';
import {repoRoot, runPlaybook, tempDir} from './helpers/ansible.js';
import {extip} from './helpers/cli.js';

let dir: {path: string; cleanup: () => Promise<void>};
beforeEach(async () => (dir = await tempDir()));
afterEach(async () => dir.cleanup());

const ecmp = join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml');

describe('render --out', () => {
  test('writes a workspace whose group_vars hold the seed ECMP values and whose playbooks pass --syntax-check', async () => {
    const out = join(dir.path, 'ws');
    const run = await extip(['render', '--out', out, '-e', `@${ecmp}`]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('ansible-playbook -i <inventory>');

    const groupVars = await readFile(join(out, 'group_vars/all/extip.yml'), 'utf8');
    expect(parseYaml(groupVars, 'group_vars')).toEqual({
      extip_ctrl_app_kind: 'DaemonSet',
      extip_distribution: 'all',
      extip_mask: 32,
      extip_iface: 'lo',
      extip_external_cidrs: ['10.0.0.0/24'],
    });
    // Every other variable is there, documented and commented out.
    expect(groupVars).toContain('# extip_image_tag: release-0.2.1');
    expect(groupVars).toContain(`# (set in ${ecmp})`);
    expect(groupVars.replaceAll(ecmp, 'extip_ecmp.yaml')).toMatchSnapshot();

    expect((await readdir(join(out, 'roles/externalip/tasks'))).sort()).toContain('main.yml');
    // One ansible-playbook run checks both playbooks (it takes several).
    const check = await runPlaybook(['--syntax-check', '-i', join(repoRoot, 'inventory-examples/kubespray/hosts.yaml'), join(out, 'externalip.yml'), join(out, 'externalip-uninstall.yml')]);
    expect([check.exitCode, check.stderr]).toEqual([0, '']);
    expect(check.stdout).toMatch(/playbook: .*externalip\.yml[\s\S]*playbook: .*externalip-uninstall\.yml/);
  });

  test('--json prints one result object and nothing else', async () => {
    const run = await extip(['render', '--out', join(dir.path, 'ws'), '--set', 'extip_iface=lo', '--json']);
    expect(run.exitCode).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({mode: 'workspace', changed: true});
    expect(result.files).toContain('group_vars/all/extip.yml');
  });

  test('a second render replaces the first; a foreign directory is refused', async () => {
    const out = join(dir.path, 'ws');
    expect((await extip(['render', '--out', out, '--set', 'extip_mask=30'])).exitCode).toBe(0);
    expect((await extip(['render', '--out', out, '--set', 'extip_mask=29'])).exitCode).toBe(0);
    expect(parseYaml(await readFile(join(out, 'group_vars/all/extip.yml'), 'utf8'), 'x')).toEqual({extip_mask: 29});

    await writeFile(join(dir.path, 'mine.txt'), 'keep me');
    const run = await extip(['render', '--out', dir.path]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('not empty and was not written by extip render');
    expect(await readFile(join(dir.path, 'mine.txt'), 'utf8')).toBe('keep me');
  });

  test.each([
    ['extip_mask=33', /extip_mask: got 33/],
    ['extip_iface=eth0;reboot', /extip_iface: got "eth0;reboot"/],
    ['extip_distribution=balanced', /did you mean "balance"/],
    ['extip_ctrl_replicas=0', /extip_ctrl_replicas: got 0/],
    ['extip_ctrl_hb=500', /rule: a Go duration/],
    ['extip_image_repo=Bad/Repo', /extip_image_repo/],
    ['extip_node_label=-bad', /extip_node_label/],
    ['extip_ip_pools=[{name: a, cidr: 10.0.0.0/24}, {name: b, cidr: 10.0.0.0/25}]', /overlaps pool "a"/],
    ['extip_maks=32', /did you mean extip_mask\?/],
  ])('--set %s exits 2, names the problem and writes nothing', async (set, message) => {
    const out = join(dir.path, 'ws');
    const run = await extip(['render', '--out', out, '--set', set]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain('(from --set');
    expect(await readdir(dir.path)).toEqual([]);
  });

  test('a bad value in a file names the file', async () => {
    const file = join(dir.path, 'vars.yml');
    await writeFile(file, 'extip_mask: 0\n');
    const run = await extip(['render', '--out', join(dir.path, 'ws'), '-e', `@${file}`]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(`extip_mask: got 0 (from ${file})`);
    expect(await readdir(dir.path)).toEqual(['vars.yml']);
  });

  test('flag mistakes are usage errors (exit 2)', async () => {
    expect((await extip(['render'])).exitCode).toBe(2);
    expect((await extip(['render', '--out', 'a', '--kargo', 'b'])).exitCode).toBe(2);
    expect((await extip(['render', '--bogus'])).exitCode).toBe(2);
  });
});

/** A tree shaped like a Kargo checkout of 2017. */
async function kargoTree(root: string): Promise<void> {
  await mkdir(join(root, 'roles/kubernetes/preinstall/tasks'), {recursive: true});
  await writeFile(join(root, 'roles/kubernetes/preinstall/tasks/main.yml'), '---\n- name: Preinstall\n  ansible.builtin.debug:\n    msg: preinstall\n');
  await mkdir(join(root, 'inventory/group_vars'), {recursive: true});
  await writeFile(join(root, 'inventory/inventory.cfg'), await readFile(join(repoRoot, 'inventory-examples/kargo/inventory.cfg'), 'utf8'));
  await writeFile(join(root, 'inventory/group_vars/all.yml'), '# Kargo settings\nbootstrap_os: ubuntu\n');
  await writeFile(
    join(root, 'cluster.yml'),
    '---\n# Kargo cluster playbook\n- hosts: k8s-cluster:etcd:calico-rr\n  any_errors_fatal: true\n  gather_facts: false\n  roles:\n    - { role: kubernetes/preinstall, tags: preinstall }\n',
  );
}

describe('render --kargo', () => {
  test('adds the role, the variables and the tag; a second run changes nothing', async () => {
    const root = join(dir.path, 'kargo');
    await kargoTree(root);
    const before = await readFile(join(root, 'cluster.yml'), 'utf8');

    const first = await extip(['render', '--kargo', root, '-e', `@${ecmp}`]);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain('+++ b/cluster.yml');
    expect(first.stdout).toContain('+    - { role: externalip, tags: externalip }');

    const cluster = await readFile(join(root, 'cluster.yml'), 'utf8');
    expect(cluster.startsWith(before)).toBe(true); // what was there is untouched
    // all.yml is a file in Kargo's layout: the variables go where they do not hide it.
    expect(parseYaml(await readFile(join(root, 'inventory/group_vars/kube-node/extip.yml'), 'utf8'), 'x')).toMatchObject({extip_iface: 'lo', extip_mask: 32});
    expect(await readFile(join(root, 'inventory/group_vars/all.yml'), 'utf8')).toContain('bootstrap_os');

    const second = await extip(['render', '--kargo', root, '-e', `@${ecmp}`, '--json']);
    expect(second.exitCode).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({changed: false, files: []});

    // The tag selects the role; both eras' group names work with the Kargo inventory.
    const list = await runPlaybook(['-i', join(root, 'inventory/inventory.cfg'), join(root, 'cluster.yml'), '-t', 'externalip', '--list-tasks'], {
      ANSIBLE_ROLES_PATH: join(root, 'roles'),
    });
    expect(list.exitCode).toBe(0);
    expect(list.stdout).toContain('externalip : Externalip | Validate the extip_* variables');
    expect(list.stdout).not.toContain('Preinstall');
  });

  test('--dry-run shows the diff and writes nothing', async () => {
    const root = join(dir.path, 'kargo');
    await kargoTree(root);
    const run = await extip(['render', '--kargo', root, '--dry-run', '--set', 'extip_iface=lo']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('+++ b/roles/externalip/tasks/main.yml');
    expect(await readdir(join(root, 'roles'))).toEqual(['kubernetes']);
  });

  test('refuses a directory that is not a Kargo/kubespray checkout', async () => {
    const run = await extip(['render', '--kargo', dir.path]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('is not a Kargo/kubespray checkout: it has no cluster.yml, roles/, inventory/');
  });

  test('a kubespray layout gets group_vars/all/extip.yml in its one inventory', async () => {
    const root = join(dir.path, 'kubespray');
    await mkdir(join(root, 'roles'), {recursive: true});
    await mkdir(join(root, 'inventory/sample/group_vars/all'), {recursive: true});
    await mkdir(join(root, 'inventory/mycluster/group_vars/all'), {recursive: true});
    await writeFile(join(root, 'cluster.yml'), '---\n- name: Kubespray\n  hosts: k8s_cluster\n  roles: []\n');
    const run = await extip(['render', '--kargo', root, '--set', 'extip_iface=lo']);
    expect(run.exitCode).toBe(0);
    expect(await readFile(join(root, 'inventory/mycluster/group_vars/all/extip.yml'), 'utf8')).toContain('extip_iface: lo');
  });
});

describe('init', () => {
  test.each([['kubespray', 'hosts.yaml', 'group_vars/all/extip.yml'], ['kargo', 'inventory.cfg', 'group_vars/all.yml']])(
    '%s era writes an inventory that render reads',
    async (era, inventoryFile, varsFile) => {
      const out = join(dir.path, 'inv');
      const run = await extip(['init', '--out', out, '--era', era, '--json']);
      expect(run.exitCode).toBe(0);
      expect(JSON.parse(run.stdout).files).toEqual([varsFile, inventoryFile].sort());
      const rendered = await extip(['render', '--out', join(dir.path, 'ws'), '-i', join(out, inventoryFile), '--json']);
      expect(rendered.exitCode).toBe(0);
      expect(parseYaml(await readFile(join(dir.path, 'ws/group_vars/all/extip.yml'), 'utf8'), 'x')).toMatchObject({extip_distribution: 'all', extip_iface: 'lo'});
      const again = await extip(['init', '--out', out, '--era', era]);
      expect(again.exitCode).toBe(2);
      expect(again.stderr).toContain('would overwrite');
    },
  );
});
