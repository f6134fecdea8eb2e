/** `extip render` and `extip init`, run as built, as a user types them. */
import {afterEach, beforeEach, describe, expect, test} from '@jest/globals';
import {cp, mkdir, readFile, readdir, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {parseYaml} from '../../cli/yamlio.js';
import {repoRoot, runPlaybook, tempDir} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';

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
    expect(groupVars).toContain('# extip_image_repo: ghcr.io/extip/ipmanager');
    expect(groupVars).toContain(`# (set in ${ecmp})`);
    expect(groupVars.replaceAll(ecmp, 'extip_ecmp.yaml')).toMatchSnapshot();

    expect((await readdir(join(out, 'roles/externalip/tasks'))).sort()).toContain('main.yml');
    // One ansible-playbook run checks both playbooks (it takes several).
    const check = await runPlaybook(['--syntax-check', '-i', join(repoRoot, 'inventory-examples/kubespray/inventory.ini'), join(out, 'externalip.yml'), join(out, 'externalip-uninstall.yml')]);
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
    await writeFile(join(root, 'inventory/mycluster/inventory.ini'), '[kube_node]\nnode1\n');
    const run = await extip(['render', '--kargo', root, '--set', 'extip_iface=lo']);
    expect(run.exitCode).toBe(0);
    expect(await readFile(join(root, 'inventory/mycluster/group_vars/all/extip.yml'), 'utf8')).toContain('extip_iface: lo');
  });
});

/** kubespray's current layout (test/fixtures/kubespray), with an inventory/mycluster copied from its sample. */
async function kubesprayTree(root: string): Promise<void> {
  await cp(join(repoRoot, 'test/fixtures/kubespray'), root, {recursive: true});
  await cp(join(root, 'inventory/sample'), join(root, 'inventory/mycluster'), {recursive: true});
}

describe('render --kargo on kubespray as it is today', () => {
  test('joins cluster.yml, scale.yml and upgrade_cluster.yml with kubespray\'s defaults role, sets kubespray\'s Calico switch, and prints a command with the inventory file', async () => {
    const root = join(dir.path, 'kubespray');
    await kubesprayTree(root);
    const thin = await readFile(join(root, 'scale.yml'), 'utf8');
    const run = await extip(['render', '--kargo', root, '-e', `@${ecmp}`, '--json']);
    expect(run.exitCode).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.command).toBe(`cd ${root} && ansible-playbook -i inventory/mycluster/inventory.ini -b cluster.yml -t externalip`);
    expect(result.playbooks).toEqual(['cluster.yml', 'scale.yml', 'upgrade_cluster.yml']);
    // kubespray's own playbooks under playbooks/ are not touched; the thin root files get one block each.
    expect(result.files.filter((f: string) => !f.startsWith('roles/externalip/')).sort()).toEqual(
      ['cluster.yml', 'inventory/mycluster/group_vars/all/extip.yml', 'scale.yml', 'upgrade_cluster.yml']);
    const scale = await readFile(join(root, 'scale.yml'), 'utf8');
    expect(scale.startsWith(thin)).toBe(true);
    const plays = parseYaml(scale, 'scale.yml') as Array<Record<string, any>>;
    expect(plays.map((p) => p.hosts ?? p['ansible.builtin.import_playbook'])).toEqual(['playbooks/scale.yml', 'localhost', 'kube_node']);
    expect(plays[2].roles).toEqual([{role: 'kubespray_defaults'}, {role: 'externalip', tags: 'externalip'}]);
    expect(plays[2].environment).toBe('{{ proxy_disable_env | default({}) }}');
    const vars = parseYaml(await readFile(join(root, 'inventory/mycluster/group_vars/all/extip.yml'), 'utf8'), 'x') as Record<string, unknown>;
    expect(vars.calico_advertise_service_external_ips).toEqual(['10.0.0.0/24']);

    const again = await extip(['render', '--kargo', root, '-e', `@${ecmp}`, '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({changed: false, files: []});
    // A new render with other values replaces the block and the variables, adding nothing twice.
    const other = await extip(['render', '--kargo', root, '-e', `@${ecmp}`, '--set', 'extip_external_cidrs=["10.0.0.0/24","10.9.0.0/24"]', '--json']);
    expect(JSON.parse(other.stdout).files).toEqual(['inventory/mycluster/group_vars/all/extip.yml']);
    expect((await readFile(join(root, 'cluster.yml'), 'utf8')).match(/BEGIN extip/g)).toHaveLength(1);
  });

  test('adds the missing ranges to an active calico_advertise_service_external_ips where it is, keeping its comments', async () => {
    const root = join(dir.path, 'kubespray');
    await kubesprayTree(root);
    const calico = join(root, 'inventory/mycluster/group_vars/k8s_cluster/k8s-net-calico.yml');
    await writeFile(calico, '---\n# Advertise Service External IPs\ncalico_advertise_service_external_ips:\n  - 192.0.2.0/24  # the lab\n');
    const run = await extip(['render', '--kargo', root, '-e', `@${ecmp}`]);
    expect(run.exitCode).toBe(0);
    const text = await readFile(calico, 'utf8');
    expect(text).toContain('# Advertise Service External IPs');
    expect(text).toContain('# the lab');
    expect((parseYaml(text, 'x') as Record<string, unknown>).calico_advertise_service_external_ips).toEqual(['192.0.2.0/24', '10.0.0.0/24']);
    // Not written twice: extip's own file leaves it to the inventory's.
    expect(await readFile(join(root, 'inventory/mycluster/group_vars/all/extip.yml'), 'utf8')).not.toContain('calico_advertise_service_external_ips');
  });

  test('an inventory directory without an inventory file is refused, saying what to do', async () => {
    const root = join(dir.path, 'kubespray');
    await kubesprayTree(root);
    await mkdir(join(root, 'inventory/empty/group_vars'), {recursive: true});
    const run = await extip(['render', '--kargo', root, '--kargo-inventory', 'inventory/empty', '--set', 'extip_iface=lo']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('inventory/empty has no inventory file (inventory.ini, hosts.yaml or inventory.cfg)');
    expect(run.stderr).toContain('copy kubespray\'s inventory/sample to it');
  });
});

describe('render --manifests with the upstream image', () => {
  test('naive mode gets only the flags the upstream image knows, and no health probes; the default image gets extip\'s', async () => {
    const controller = async (sets: string[]) => {
      const out = join(dir.path, `m${sets.length}`);
      const r = await extip(['render', '--manifests', '--out', out, '-e', `@${ecmp}`, ...sets.flatMap((x) => ['--set', x])]);
      expect(r.exitCode).toBe(0);
      const docs = (await readFile(join(out, 'extip_controller.yml'), 'utf8')).split(/^---$/m).map((d) => parseYaml(d, 'x') as any).filter(Boolean);
      return docs.find((d) => d.kind === 'DaemonSet').spec.template.spec.containers[0];
    };
    const upstream = await controller(['extip_image_repo=mirantis/k8s-externalipcontroller', 'extip_image_tag=release-0.2.1']);
    expect(upstream.image).toBe('mirantis/k8s-externalipcontroller:release-0.2.1');
    expect([...upstream.command, ...upstream.args]).toEqual(['ipmanager', 'naivecontroller', '--iface=lo', '--mask=32', '--logtostderr', '--v=5']);
    expect(upstream.livenessProbe).toBeUndefined();
    const own = await controller([]);
    expect(own.image).toMatch(/^ghcr\.io\/extip\/ipmanager:/);
    expect(own.args).toContain('--allowed-cidrs=10.0.0.0/24');
    expect(own.livenessProbe.httpGet.path).toBe('/healthz');
  });
});

describe('the role\'s defaults inside kubespray', () => {
  // The defaults as the role reads them: with its vars (extip__control_plane_host).
  const paths = '{{ [extip_kubeconfig, extip_manifest_dir, extip_kubectl, extip_etcd_host, extip_etcd_ca_file, extip_etcd_cert_file, extip_etcd_key_file] | to_json }}';
  async function defaults(inventory: string, vars: Record<string, string>): Promise<string[]> {
    await writeFile(join(dir.path, 'hosts.ini'), inventory);
    const r = await runPlaybook(['-i', join(dir.path, 'hosts.ini'), '-c', 'local', join(dir.path, 'show.yml'), '-e', JSON.stringify(vars)]);
    expect([r.exitCode, r.stderr]).toEqual([0, '']);
    return JSON.parse(JSON.parse(r.stdout.slice(r.stdout.indexOf('=>') + 2, r.stdout.indexOf('PLAY RECAP'))).msg);
  }
  beforeEach(async () => {
    await writeFile(join(dir.path, 'show.yml'), `- hosts: localhost\n  gather_facts: false\n  vars_files: [${join(repoRoot, 'roles/externalip/defaults/main.yml')}, ${join(repoRoot, 'roles/externalip/vars/main.yml')}]\n  tasks:\n    - ansible.builtin.debug:\n        msg: "${paths}"\n`);
  });

  test('etcd_deployment_type host: the admin certificate of the first etcd host in etcd_cert_dir; kube_config_dir and bin_dir', async () => {
    expect(await defaults('[kube_control_plane]\ncp1\n[etcd]\netcd1\n', {kube_config_dir: '/srv/k8s', bin_dir: '/opt/bin', etcd_cert_dir: '/srv/etcd-ssl'})).toEqual(
      ['/srv/k8s/admin.conf', '/srv/k8s', '/opt/bin/kubectl', 'etcd1', '/srv/etcd-ssl/ca.pem', '/srv/etcd-ssl/admin-etcd1.pem', '/srv/etcd-ssl/admin-etcd1-key.pem']);
  });

  test('etcd_deployment_type kubeadm: the control plane\'s certificates in kube_cert_dir/etcd, as kubespray\'s etcdctl uses them', async () => {
    expect(await defaults('[kube_control_plane]\ncp1\n[etcd]\n', {etcd_deployment_type: 'kubeadm'})).toEqual(
      ['/etc/kubernetes/admin.conf', '/etc/kubernetes', '/usr/local/bin/kubectl', 'cp1', '/etc/kubernetes/ssl/etcd/ca.crt', '/etc/kubernetes/ssl/etcd/server.crt', '/etc/kubernetes/ssl/etcd/server.key']);
  });
});

describe('init', () => {
  test.each([['kubespray', 'inventory.ini', 'group_vars/all/extip.yml'], ['kargo', 'inventory.cfg', 'group_vars/all.yml']])(
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
