/**
 * The externalip role on the lab, through real ansible-playbook and kubectl:
 * install in both modes, idempotence, check mode, changed variables,
 * uninstall back to the exact state before, and both inventory eras.
 */
import {describe, expect, test} from '@jest/globals';
import {copyFile, mkdir, readFile, readdir, stat, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import YAML from 'yaml';
import {Lab} from '../../lab/lab.js';
import {diffSnapshots, takeSnapshot} from '../../lab/snapshot.js';
import {repoRoot} from '../../helpers/ansible.js';
import {extip} from '../../helpers/cli.js';
import {explain, runRole} from '../../helpers/role.js';
import {useLab} from '../../helpers/lab.js';

const ecmp = YAML.parse(await readFile(join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml'), 'utf8')) as Record<string, unknown>;

async function getJson(lab: Lab, args: string[]): Promise<any> {
  const r = await lab.kubectl([...args, '-o', 'json']);
  if (r.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('ECMP setup (the seed variables) on a 3-node lab', () => {
  const lab = useLab({nodes: 3});

  test('--check on a fresh cluster changes nothing anywhere', async () => {
    const before = await takeSnapshot(lab);
    const run = await runRole(lab, {vars: ecmp, args: ['--check', '--diff']});
    expect(run.exitCode).toBe(0);
    expect(run.totalChanged).toBeGreaterThan(0); // it reports what it would do
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
  });

  test('install labels the nodes and deploys the naive controller with least privilege; a second run reports changed=0', async () => {
    const before = await takeSnapshot(lab);
    const first = await runRole(lab, {vars: ecmp});
    expect(first.exitCode).toBe(0);
    expect(first.totalChanged).toBeGreaterThan(0);

    const nodes = await getJson(lab, ['get', 'nodes', '-l', 'externalip=true']);
    expect(nodes.items.map((n: any) => n.metadata.name)).toEqual(['node1', 'node2', 'node3']);

    const ds = await getJson(lab, ['get', 'daemonset', 'claimcontroller', '-n', 'default']);
    const pod = ds.spec.template.spec;
    expect(pod.nodeSelector).toEqual({externalip: 'true'});
    expect(pod.hostNetwork).toBe(true);
    expect(pod.containers[0].args).toEqual([
      'naivecontroller', '--iface=lo', '--mask=32', '--mask-v6=128', '--owner=default.claimcontroller', '--resync=20s',
      '--allowed-cidrs=10.0.0.0/24', '--service-cidr=10.233.0.0/18', '--cluster-cidr=10.233.64.0/18', '--health-port=10295', '--logtostderr', '--v=5',
    ]);
    // Hardened, as the API server (Pod Security admission included) took it.
    expect(pod.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, seccompProfile: {type: 'RuntimeDefault'},
      capabilities: {drop: ['ALL'], add: ['NET_ADMIN']},
    });
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.containers[0].resources).toEqual({requests: {cpu: '20m', memory: '128Mi'}, limits: {memory: '256Mi'}});
    expect(pod.containers[0].livenessProbe.httpGet).toEqual({host: '127.0.0.1', path: '/healthz', port: 10295, scheme: 'HTTP'});
    expect(pod.containers[0].readinessProbe.httpGet).toEqual({host: '127.0.0.1', path: '/readyz', port: 10295, scheme: 'HTTP'});
    // extip's own image, which the lab kubelet runs under runc (test/lab/images.ts).
    expect(pod.containers[0].image).toBe(`ghcr.io/extip/ipmanager:${JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')).version}`);
    expect(ds.metadata.labels).toMatchObject({'app.kubernetes.io/managed-by': 'extip', 'app.kubernetes.io/name': 'externalipcontroller'});

    const role = await getJson(lab, ['get', 'clusterrole', 'extip:claimcontroller']);
    expect(role.rules).toEqual([
      {apiGroups: [''], resources: ['services'], verbs: ['list', 'watch']},
      {apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch']},
      {apiGroups: [''], resources: ['events'], verbs: ['create']},
    ]);
    const bindings = await getJson(lab, ['get', 'clusterrolebindings']);
    // None of extip's bindings grants cluster-admin (the cluster's own system:masters one is not extip's).
    const extips = bindings.items.filter((b: any) => b.metadata.labels?.['app.kubernetes.io/managed-by'] === 'extip');
    expect(extips.length).toBeGreaterThan(0);
    expect(extips.filter((b: any) => b.roleRef.name === 'cluster-admin')).toEqual([]);
    // Naive mode needs neither the scheduler nor the CRDs.
    expect((await lab.kubectl(['get', 'crd', 'ipclaims.ipcontroller.ext'])).exitCode).not.toBe(0);
    expect((await lab.kubectl(['get', 'deployment', 'claimscheduler', '-n', 'default'])).exitCode).not.toBe(0);
    // The manifests are on the control-plane host, as the original role left them.
    const written = await readFile(join(lab.host('node1').root, 'etc/kubernetes/extip.yml'), 'utf8');
    expect(written).toContain('naivecontroller');

    const second = await runRole(lab, {vars: ecmp});
    expect([second.exitCode, second.totalChanged, second.changedTasks]).toEqual([0, 0, []]);

    // --check with a changed variable reports the change and changes nothing.
    const installed = await takeSnapshot(lab);
    const check = await runRole(lab, {vars: {...ecmp, extip_ctrl_verbose: 2}, args: ['--check', '--diff']});
    expect(check.exitCode).toBe(0);
    expect(check.changedTasks.some((t) => t.includes('Compare the manifests with the cluster (kubectl diff)'))).toBe(true);
    expect(check.stdout).toContain('--v=2');
    expect(diffSnapshots(installed, await takeSnapshot(lab))).toEqual([]);

    // Changed variables are applied (the original never re-applied).
    const changed = await runRole(lab, {vars: {...ecmp, extip_ctrl_verbose: 2}});
    expect(changed.exitCode).toBe(0);
    expect((await getJson(lab, ['get', 'daemonset', 'claimcontroller', '-n', 'default'])).spec.template.spec.containers[0].args).toContain('--v=2');

    // Uninstall, with a Service whose external IPs are up on the nodes (as the controller
    // brings them up: with its label), gives back the exact state before.
    await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'web', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7', '10.0.0.8']}}));
    for (const h of ['node1', 'node3']) {
      await lab.exec(h, 'ip', ['address', 'add', '10.0.0.7/32', 'dev', 'lo', 'label', 'lo:extip']);
      await lab.exec(h, 'ip', ['address', 'add', '10.0.0.8/32', 'dev', 'lo', 'label', 'lo:extip']);
    }
    // An address the operator put there, and one with another mask, are not extip's to remove.
    await lab.exec('node2', 'ip', ['address', 'add', '10.0.0.9/32', 'dev', 'lo']);
    await lab.exec('node2', 'ip', ['address', 'add', '10.0.0.8/24', 'dev', 'lo']);
    const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: ecmp});
    expect(removal.exitCode).toBe(0);
    await lab.kubectl(['delete', 'service', 'web', '-n', 'default']);
    const after = await takeSnapshot(lab);
    expect(after.addresses.node2).toEqual(expect.arrayContaining(['lo 10.0.0.9/32', 'lo 10.0.0.8/24']));
    await lab.exec('node2', 'ip', ['address', 'del', '10.0.0.9/32', 'dev', 'lo']);
    await lab.exec('node2', 'ip', ['address', 'del', '10.0.0.8/24', 'dev', 'lo']);
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);

    // Twice is fine.
    const again = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: ecmp});
    expect([again.exitCode, again.totalChanged]).toEqual([0, 0]);
  });

  test('a label the operator set before install stays after uninstall', async () => {
    await lab.kubectl(['label', 'node', 'node2', 'externalip=true']);
    const before = await takeSnapshot(lab);
    expect((await runRole(lab, {vars: ecmp})).exitCode).toBe(0);
    expect((await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: ecmp})).exitCode).toBe(0);
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
    await lab.kubectl(['label', 'node', 'node2', 'externalip-']);
  });

  test('phase tags: extip_preflight changes nothing, extip_calico only the export, extip_install the rest; extip_uninstall asks for extip_state=absent', async () => {
    // Calico v3's CRD, so that there is an export to make (last in this describe: it stays).
    const crd = (await execa('bash', [join(repoRoot, 'test/calico/crd.sh'), 'bgpconfigurations'])).stdout.trim();
    expect((await lab.kubectl(['create', '-f', crd])).exitCode).toBe(0);
    await lab.kubectl(['wait', '--for=condition=Established', 'crd/bgpconfigurations.crd.projectcalico.org']);
    const before = await takeSnapshot(lab);
    const exported = async () => {
      const r = await lab.kubectl(['get', 'bgpconfigurations.crd.projectcalico.org', 'default', '-o', 'json', '--ignore-not-found']);
      return r.stdout.trim() ? (JSON.parse(r.stdout).spec.serviceExternalIPs ?? []).map((x: {cidr: string}) => x.cidr) : null;
    };
    const installed = async () => (await lab.kubectl(['get', 'daemonsets', '-A', '-l', 'app.kubernetes.io/managed-by=extip', '-o', 'name'])).stdout.trim();

    for (const tag of ['extip_preflight', 'preflight']) {
      const checks = await runRole(lab, {vars: ecmp, args: ['-t', tag]});
      expect([checks.exitCode, checks.totalChanged]).toEqual([0, 0]);
    }
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);

    const calico = await runRole(lab, {vars: ecmp, args: ['-t', 'extip_calico']});
    expect(calico.exitCode).toBe(0);
    expect(await exported()).toEqual(['10.0.0.0/24']);
    expect(await installed()).toBe('');
    expect((await lab.kubectl(['get', 'nodes', '-l', 'externalip=true', '-o', 'name'])).stdout.trim()).toBe('');

    const install = await runRole(lab, {vars: ecmp, args: ['-t', 'extip_install']});
    expect(install.exitCode).toBe(0);
    expect(await installed()).toBe('daemonset.apps/claimcontroller');

    const wrong = await runRole(lab, {vars: ecmp, args: ['-t', 'extip_uninstall']});
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.failures.map((f) => f.msg).join('\n')).toMatch(/-t extip_uninstall removes extip, but extip_state is present: nothing would be done\. Add -e extip_state=absent/);
    expect(await installed()).toBe('daemonset.apps/claimcontroller');

    const removal = await runRole(lab, {vars: {...ecmp, extip_state: 'absent'}, args: ['-t', 'extip_uninstall']});
    expect(removal.exitCode).toBe(0);
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
  });
});

describe('claims mode (balance) on a 3-node lab', () => {
  const lab = useLab({nodes: 3});

  const balance = {
    extip_distribution: 'balance',
    extip_ctrl_app_kind: 'DaemonSet',
    extip_namespace: 'extip',
    extip_ip_pools: [{name: 'pool-a', cidr: '192.0.2.0/24', ranges: [['192.0.2.10', '192.0.2.50']]}],
  };

  test('install: CRDs Established, scheduler and controller with the right arguments, pools; uninstall restores everything', async () => {
    const before = await takeSnapshot(lab);
    const run = await runRole(lab, {vars: balance, inventory: lab.kargoInventory});
    if (run.exitCode !== 0) console.log(explain(run).slice(0, 3000));
    expect(run.exitCode).toBe(0);
    for (const crd of ['ipnodes', 'ipclaims', 'ipclaimpools']) {
      const c = await getJson(lab, ['get', 'crd', `${crd}.ipcontroller.ext`]);
      expect(c.status.conditions.find((x: any) => x.type === 'Established').status).toBe('True');
    }
    const ctrl = await getJson(lab, ['get', 'daemonset', 'claimcontroller', '-n', 'extip']);
    expect(ctrl.spec.template.spec.containers[0].args).toEqual(['claimcontroller', '--iface=eth0', '--mask=24', '--mask-v6=128', '--owner=extip.claimcontroller', '--resync=20s', '--allowed-cidrs=192.0.2.10/31,192.0.2.12/30,192.0.2.16/28,192.0.2.32/28,192.0.2.48/31,192.0.2.50/32', '--service-cidr=10.233.0.0/18', '--cluster-cidr=10.233.64.0/18', '--hostname=$(NODE_NAME)', '--hb=500ms', '--monitor=1500ms', '--peer-port=10295', '--peer-address=$(NODE_IP)', '--peer-keys=/etc/extip/peers/keys.json', '--health-port=10295', '--logtostderr', '--v=5']);
    // The membership's keys: a Secret of one key, mounted read-only.
    expect(ctrl.spec.template.spec.volumes).toContainEqual({name: 'peers', secret: {secretName: 'claimcontroller-peers', defaultMode: 0o400}});
    expect(ctrl.spec.template.spec.containers[0].volumeMounts).toContainEqual({name: 'peers', mountPath: '/etc/extip/peers', readOnly: true});
    const secret = await getJson(lab, ['get', 'secret', 'claimcontroller-peers', '-n', 'extip']);
    const keys = JSON.parse(Buffer.from(secret.data['keys.json'], 'base64').toString());
    expect(keys).toEqual([{key: expect.stringMatching(/^[A-Za-z0-9+/]{64}$/), from: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)}]);
    expect(ctrl.spec.template.spec.containers[0].securityContext.capabilities).toEqual({drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW']});
    expect(ctrl.spec.template.spec.containers[0].env[0]).toEqual({name: 'NODE_NAME', valueFrom: {fieldRef: {apiVersion: 'v1', fieldPath: 'spec.nodeName'}}});
    const sched = await getJson(lab, ['get', 'deployment', 'claimscheduler', '-n', 'extip']);
    expect(sched.spec.replicas).toBe(2);
    expect(sched.spec.template.spec.containers[0].args).toEqual(['scheduler', '--iface=eth0', '--mask=24', '--mask-v6=128', '--nodefilter=fair', '--monitor=1500ms', '--lb-class=extip.io/ipmanager', '--allowed-cidrs=192.0.2.10/31,192.0.2.12/30,192.0.2.16/28,192.0.2.32/28,192.0.2.48/31,192.0.2.50/32', '--service-cidr=10.233.0.0/18', '--cluster-cidr=10.233.64.0/18', '--leader-elect=true', '--leader-elect-lease-duration=3s', '--leader-elect-resource-name=claimscheduler', '--leader-elect-resource-namespace=extip', '--health-port=10295', '--health-address=0.0.0.0', '--logtostderr', '--v=5']);
    // The scheduler needs no privilege at all.
    expect(sched.spec.template.spec.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 65532,
      seccompProfile: {type: 'RuntimeDefault'}, capabilities: {drop: ['ALL']},
    });
    expect(sched.spec.template.spec.containers[0].readinessProbe.httpGet).toEqual({path: '/readyz', port: 10295, scheme: 'HTTP'});
    const pools = await getJson(lab, ['get', 'ipclaimpools']);
    expect(pools.items.map((p: any) => [p.metadata.name, p.spec])).toEqual([['pool-a', {cidr: '192.0.2.0/24', ranges: [['192.0.2.10', '192.0.2.50']]}]]);
    const role = await getJson(lab, ['get', 'clusterrole', 'extip:claimcontroller']);
    expect(role.rules.map((r: any) => r.resources[0])).toEqual(['ipnodes', 'ipclaims']);

    // render --manifests writes exactly what install applied (the same templates).
    const varsFile = join(lab.dir, 'balance.yml');
    await writeFile(varsFile, YAML.stringify(balance));
    const out = join(lab.dir, 'manifests');
    // The lab inventory gives each node its own state directory; the render has no inventory.
    const rendered = await extip(['render', '--manifests', '--out', out, '-e', `@${varsFile}`, '--set', `extip_state_dir=${join(lab.host('node1').root, 'run/extip')}`]);
    expect(rendered.exitCode).toBe(0);
    const files = ['extip_namespace.yml', 'extip_rbac.yml', 'extip_crds.yml', 'extip_controller.yml', 'extip_scheduler.yml', 'extip_peers.yml', 'extip_pools.yml'];
    expect((await readdir(out)).sort()).toEqual([...files].sort());
    // install writes them as one stream, in apply order, to extip.yml, readable by root alone; but
    // for the membership key, which each render makes anew.
    const texts = await Promise.all(files.map(async (f) => (await readFile(join(out, f), 'utf8')).trim()));
    const applied = join(lab.host('node1').root, 'etc/kubernetes/extip.yml');
    const key = /keys\.json: "[A-Za-z0-9+/=]+"/g;
    expect((await readFile(applied, 'utf8')).replace(key, 'KEY')).toBe(`${texts.join('\n')}\n`.replace(key, 'KEY'));
    expect((await stat(applied)).mode & 0o777).toBe(0o600);
    expect((await stat(join(out, 'extip_peers.yml'))).mode & 0o777).toBe(0o600);
    // A second install keeps the key (nothing changes); a rotation adds one that signs three minutes later.
    const rotated = await runRole(lab, {vars: {...balance, extip_peer_key_rotate: true}, inventory: lab.kargoInventory});
    expect(rotated.exitCode).toBe(0);
    const after = JSON.parse(Buffer.from((await getJson(lab, ['get', 'secret', 'claimcontroller-peers', '-n', 'extip'])).data['keys.json'], 'base64').toString());
    expect(after).toEqual([{key: expect.any(String), from: expect.any(String)}, keys[0]]);
    expect(after[0].key).not.toBe(keys[0].key);
    expect(Date.parse(after[0].from) - Date.now()).toBeGreaterThan(120_000);

    // single mode is claims mode packing onto the first live node.
    const single = await runRole(lab, {vars: {...balance, extip_distribution: 'single'}, inventory: lab.kargoInventory});
    expect(single.exitCode).toBe(0);
    expect((await getJson(lab, ['get', 'deployment', 'claimscheduler', '-n', 'extip'])).spec.template.spec.containers[0].args).toContain('--nodefilter=first-alive');

    // Switching to ECMP removes what claims mode needed.
    const toAll = await runRole(lab, {vars: {...balance, extip_distribution: 'all'}, inventory: lab.kargoInventory});
    if (toAll.exitCode !== 0) console.log(explain(toAll));
    expect(toAll.exitCode).toBe(0);
    expect((await lab.kubectl(['get', 'deployment', 'claimscheduler', '-n', 'extip'])).exitCode).not.toBe(0);
    expect((await lab.kubectl(['get', 'crd', 'ipclaims.ipcontroller.ext'])).exitCode).not.toBe(0);

    const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: balance, inventory: lab.kargoInventory});
    expect(removal.exitCode).toBe(0);
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
  });

  test('a rollout that does not finish fails with the pods\' state, not a bare timeout', async () => {
    for (const h of lab.hosts) await lab.kubectl(['patch', 'node', h.name, '--type=merge', '-p', '{"spec":{"unschedulable":true}}']);
    const run = await runRole(lab, {vars: {...balance, extip_ctrl_app_kind: 'Deployment', extip_ctrl_replicas: 2, extip_rollout_timeout: '2s'}});
    expect(run.exitCode).not.toBe(0);
    const failure = run.failures.find((f) => f.task.includes('Report the failed rollout'));
    expect(failure?.msg).toContain('did not become ready within 2s (extip_rollout_timeout)');
    expect(failure?.msg).toContain('Pods:');
    for (const h of lab.hosts) await lab.kubectl(['patch', 'node', h.name, '--type=merge', '-p', '{"spec":{"unschedulable":null}}']);
    expect((await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: balance})).exitCode).toBe(0);
  });

  test('preflight: ranges over the Service CIDR or a node\'s address are refused, naming the variable; none at all is a loud warning', async () => {
    const before = await takeSnapshot(lab);
    const overlaps = await runRole(lab, {vars: {...ecmp, extip_external_cidrs: ['10.233.0.0/24', '10.210.1.8/29']}});
    expect(overlaps.exitCode).not.toBe(0);
    const failure = overlaps.failures.find((f) => f.task.includes('where external IPs may come from'));
    expect(failure?.msg).toContain('extip_external_cidrs: 10.233.0.0/24 overlaps the Service CIDR 10.233.0.0/18 (extip_service_cidr)');
    expect(failure?.msg).toContain('extip_external_cidrs: 10.210.1.8/29 holds 10.210.1.11, the address of node node1');
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
    const open = await runRole(lab, {vars: {...ecmp, extip_external_cidrs: []}, args: ['--check']});
    expect(open.exitCode).toBe(0);
    expect(open.warnings.join(' ').replace(/\s+/g, ' ')).toContain('extip_external_cidrs is empty: the controller will bring up any address a Service names');
  });

  test('preflight: a host that is not a node, and a missing interface, fail with what to change', async () => {
    const badIface = await runRole(lab, {vars: {extip_iface: 'eth9'}});
    expect(badIface.exitCode).not.toBe(0);
    // Each host that fails says so for itself, in whatever order the hosts finish.
    expect(badIface.failures.length).toBeGreaterThan(0);
    for (const f of badIface.failures) expect(f.msg).toMatch(/^Interface eth9 does not exist on node[123] \(it has eth0, lo\)\. Set extip_iface to an interface every target host has/);
    const badLookup = await runRole(lab, {vars: {extip_node_name_lookup: 'internal_ip'}, args: ['-e', 'ip=10.9.9.9']});
    expect(badLookup.exitCode).not.toBe(0);
    expect(badLookup.failures[0].msg).toContain('These hosts are not Kubernetes nodes: node1, node2, node3');
    const badVar = await runRole(lab, {vars: {extip_mask: 40, extip_iface: 'a;b'}});
    expect(badVar.exitCode).not.toBe(0);
    expect(badVar.failures[0].msg).toContain('extip_mask = 40 is not valid');
    expect(badVar.failures[0].msg).toContain('extip_iface = "a;b" is not valid');
  });
});

describe('the role inside a Kargo/kubespray checkout, run with -t externalip', () => {
  const lab = useLab({nodes: 2});

  test.each(['kargo', 'kubespray'])('%s-era checkout with group_vars', async (era) => {
    const root = join(lab.dir, `checkout-${era}`);
    await mkdir(join(root, 'roles/kubernetes/preinstall/tasks'), {recursive: true});
    await writeFile(join(root, 'roles/kubernetes/preinstall/tasks/main.yml'), '---\n- name: Preinstall\n  ansible.builtin.fail:\n    msg: not with -t externalip\n');
    await writeFile(join(root, 'cluster.yml'), `---\n- name: Cluster\n  hosts: ${era === 'kargo' ? 'k8s-cluster' : 'k8s_cluster'}\n  gather_facts: false\n  roles:\n    - { role: kubernetes/preinstall, tags: preinstall }\n`);
    const inv = era === 'kargo' ? join(root, 'inventory') : join(root, 'inventory/mycluster');
    await mkdir(join(inv, 'group_vars'), {recursive: true});
    if (era === 'kargo') {
      await copyFile(lab.kargoInventory, join(inv, 'inventory.cfg'));
      await writeFile(join(inv, 'group_vars/all.yml'), 'bootstrap_os: ubuntu\n');
    } else {
      await copyFile(lab.kubesprayInventory, join(inv, 'hosts.yaml'));
      await mkdir(join(inv, 'group_vars/all'), {recursive: true});
      await writeFile(join(inv, 'group_vars/all/all.yml'), 'bin_dir: /usr/local/bin\n');
    }
    const render = await extip(['render', '--kargo', root, '-e', `@${join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml')}`]);
    expect(render.exitCode).toBe(0);
    const inventory = era === 'kargo' ? join(inv, 'inventory.cfg') : join(inv, 'hosts.yaml');
    const run = await runRole(lab, {inventory, playbook: join(root, 'cluster.yml'), args: ['-t', 'externalip'], env: {ANSIBLE_ROLES_PATH: join(root, 'roles')}});
    expect(run.exitCode).toBe(0);
    const ds = await getJson(lab, ['get', 'daemonset', 'claimcontroller', '-n', 'default']);
    expect(ds.spec.template.spec.containers[0].args.slice(0, 3)).toEqual(['naivecontroller', '--iface=lo', '--mask=32']);
    const again = await runRole(lab, {inventory, playbook: join(root, 'cluster.yml'), args: ['-t', 'externalip'], env: {ANSIBLE_ROLES_PATH: join(root, 'roles')}});
    expect([again.exitCode, again.totalChanged]).toEqual([0, 0]);
    const removal = await runRole(lab, {inventory, playbook: join(root, 'cluster.yml'), args: ['-t', 'externalip', '-e', 'extip_state=absent'], env: {ANSIBLE_ROLES_PATH: join(root, 'roles')}});
    expect(removal.exitCode).toBe(0);
    expect((await lab.kubectl(['get', 'daemonset', 'claimcontroller', '-n', 'default'])).exitCode).not.toBe(0);
  });
});
