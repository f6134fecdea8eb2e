/**
 * Install benchmark: lab up/down and role install/re-run/uninstall wall times
 * for 3 and 30 nodes, with the number of kubectl invocations, against a
 * baseline measured in the same run (a one-task play over the same hosts).
 * "kubectl floor" is the baseline plus as many of the cheapest kubectl calls
 * (get --raw /readyz) as the install made, one after the other: what an
 * install that made those calls and nothing else would cost.
 *
 * With --kubespray <checkout>, first extip against kubespray's own MetalLB
 * add-on, side by side in one copy of the checkout on one lab through the same
 * inventory: `cluster.yml -t externalip` (as extip render --kargo prints it,
 * claims mode with a pool on the segment) and `cluster.yml -t metallb` with
 * metallb_enabled and an L2 pool of the same range, MetalLB built from its Go
 * module at the version kubespray deploys (test/metallb). Runs alternate, so
 * that the machine's drift falls on both; each add-on's own time is read from
 * its role's tasks (first task to last result), which the variance of
 * kubespray's fact gathering around it does not touch.
 */
import {chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {execa} from 'execa';
import YAML from 'yaml';
import {Lab} from '../lab/lab.js';
import {runPlaybook} from '../helpers/ansible.js';
import {runRole} from '../helpers/role.js';
import {labInventory, runPrinted, taskSpan} from '../helpers/kubespray.js';
import {repoRoot} from '../helpers/root.js';
import {metallbImages} from '../metallb/images.js';

const usage = `Usage: npm run bench:install [-- --kubespray <checkout>] [--side-nodes 3,10] [--repeat 3] [--no-role]

Prints install, re-run and uninstall times of the role on labs of 3 and 30
nodes, as ratios to a one-task play over the same hosts. With --kubespray, first
extip's install against kubespray's MetalLB add-on in that checkout (a copy),
on labs of --side-nodes nodes (re-runs --repeat times each, medians shown).
--no-role leaves out the 3/30-node table.`;

const {values: opts} = parseArgs({options: {kubespray: {type: 'string'}, 'side-nodes': {type: 'string', default: '3,10'}, repeat: {type: 'string', default: '3'}, 'no-role': {type: 'boolean', default: false}, help: {type: 'boolean', short: 'h'}}});
if (opts.help) {
  console.log(usage);
  process.exit(0);
}

const POOL = {first: '10.210.1.200', last: '10.210.1.250'};
const repeat = Number(opts.repeat);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** extip against kubespray's MetalLB add-on on one lab of `nodes` nodes: a table row. */
async function sideBySide(checkout: string, nodes: number): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'extip-bench-kubespray-'));
  const images = join(work, 'images');
  await mkdir(images);
  const version = await metallbImages(images);
  const lab = await Lab.start({nodes, imageDirs: [images]});
  try {
    const root = join(work, 'kubespray');
    await cp(resolve(checkout), root, {recursive: true, filter: (src) => !src.includes('/.git')});
    await labInventory(lab, root, 'extip-lab');
    // kubespray's Ansible (its requirements.txt: ansible with the collections its plays use),
    // and what its kubernetes/client role gives root on a control-plane host: the admin kubeconfig.
    const venv = (await execa('bash', [join(repoRoot, 'test/ansible/venv.sh'), 'kubespray'], {stderr: 'inherit'})).stdout.trim();
    const env = {PATH: `${venv}:${process.env.PATH}`, KUBECONFIG: join(lab.controlPlane[0].root, 'etc/kubernetes/admin.conf')};
    // Both move addresses by ARP: with kubespray's default kube-proxy mode (ipvs) both ask for strict ARP.
    const common = ['-e', 'kube_proxy_strict_arp=true'];
    const extipVars = join(work, 'extip.yml');
    await writeFile(extipVars, YAML.stringify({
      extip_distribution: 'balance', extip_iface: 'eth0', extip_mask: 24, extip_ctrl_app_kind: 'DaemonSet',
      extip_ip_pools: [{name: 'lab', cidr: '10.210.1.0/24', ranges: [[POOL.first, POOL.last]]}],
    }));
    const metallbVars = join(work, 'metallb.yml');
    await writeFile(metallbVars, YAML.stringify({
      metallb_enabled: true, metallb_speaker_enabled: true,
      metallb_config: {address_pools: {lab: {ip_range: [`${POOL.first}-${POOL.last}`], auto_assign: true}}, layer2: ['lab']},
    }));
    const render = await execa('node', [join(repoRoot, 'bin/run.js'), 'render', '--kargo', root, '--kargo-inventory', 'inventory/extip-lab', '-e', `@${extipVars}`, '--json']);
    const extipCommand = JSON.parse(render.stdout).command as string;
    const metallbCommand = extipCommand.replace(' -t externalip', ' -t metallb');
    const baselinePlay = join(work, 'baseline.yml');
    await writeFile(baselinePlay, '- hosts: k8s_cluster\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: "true"\n      changed_when: false\n');
    const baselineCommand = extipCommand.replace(/ -b cluster\.yml -t externalip.*$/, ` -b ${baselinePlay}`);

    // kubespray's own part of any -t run: its plays, facts and checks, with a tag nothing has.
    const floorCommand = extipCommand.replace(' -t externalip', ' -t extip-bench-nothing');
    // Each add-on's own part of a run: from its role's first task to its last result.
    const own: Record<string, Array<{seconds: number; results: number}>> = {};
    const run = async (name: string, command: string, extra: string[]) => {
      const [r, t] = await timed(() => runPrinted(command, extra, work, env));
      (own[name] ??= []).push(taskSpan(r, name.startsWith('extip') ? 'externalip : ' : 'kubernetes-apps/metallb : '));
      if (r.exitCode !== 0) {
        const pods = await lab.kubectl(['get', 'pods', '-n', 'metallb-system', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.containerStatuses}{"\\n"}{end}']);
        throw new Error(`${name} failed (exit ${r.exitCode}) on ${nodes} nodes:\n${r.output.slice(-3000)}\nmetallb-system pods:\n${pods.stdout}${pods.stderr}`);
      }
      return t;
    };
    const t: Record<string, number> = {};
    t.baseline = await run('baseline', baselineCommand, []);
    t.floor = await run('floor', floorCommand, common);
    t.metallb = await run('metallb', metallbCommand, [...common, '-e', `@${metallbVars}`]);
    t.extip = await run('extip', extipCommand, common);
    // Re-runs, alternating, --repeat times each: the medians.
    const again: Record<'baseline' | 'floor' | 'metallb' | 'extip', number[]> = {baseline: [], floor: [], metallb: [], extip: []};
    for (let i = 0; i < repeat; i++) {
      again.baseline.push(await run('baseline', baselineCommand, []));
      again.floor.push(await run('floor', floorCommand, common));
      again.metallb.push(await run('metallb again', metallbCommand, [...common, '-e', `@${metallbVars}`]));
      again.extip.push(await run('extip again', extipCommand, common));
    }
    t.metallbAgain = median(again.metallb);
    t.extipAgain = median(again.extip);
    const base = median([t.baseline, ...again.baseline]);
    const floor = median([t.floor, ...again.floor]);
    const span = (name: string) => median(own[name].map((o) => o.seconds));
    const slots = (name: string) => String(own[name][0].results).padStart(5);
    // Each gives a LoadBalancer an address from its pool: what the install was for.
    const ready = await lab.kubectl(['get', 'deployment', 'controller', '-n', 'metallb-system', '-o', 'jsonpath={.status.readyReplicas}']);
    const f = (x: number) => x.toFixed(1).padStart(6);
    return `${String(nodes).padStart(5)}  ${base.toFixed(1).padStart(8)}  ${floor.toFixed(1).padStart(5)}  ` +
      `${f(t.extip)} ${f(span('extip'))} ${slots('extip')}  ${f(t.metallb)} ${f(span('metallb'))} ${slots('metallb')}  ${(span('extip') / span('metallb')).toFixed(2).padStart(5)}  ` +
      `${f(t.extipAgain)} ${f(span('extip again'))}  ${f(t.metallbAgain)} ${f(span('metallb again'))}  ${(span('extip again') / span('metallb again')).toFixed(2).padStart(5)}   ` +
      `MetalLB ${version}, controller ready: ${ready.stdout || 0}`;
  } finally {
    await lab.stop();
    await rm(work, {recursive: true, force: true});
  }
}

if (opts.kubespray) {
  const rows: string[] = [];
  for (const n of opts['side-nodes']!.split(',').map(Number)) rows.push(await sideBySide(opts.kubespray, n));
  const commit = await execa('git', ['-C', opts.kubespray, 'log', '-1', '--format=%h %cs'], {reject: false});
  console.log(`extip against kubespray's MetalLB add-on (kubespray ${commit.stdout || 'checkout'}), one checkout and inventory, seconds.`);
  console.log('baseline: a one-task play over k8s_cluster; floor: cluster.yml with a tag nothing has (kubespray\'s own part of every -t run);');
  console.log(`own: from the add-on's first task to its last result; slots: its task results over every host; ratio: extip's own time to MetalLB's;`);
  console.log(`re-runs: medians of ${repeat}; baseline and floor: of ${repeat + 1}.`);
  console.log('                         ----- extip install ----  ---- metallb install ---         ----- extip re-run --  --- metallb re-run --');
  console.log('nodes  baseline  floor    total    own slots   total    own slots  ratio    total    own    total    own  ratio');
  for (const row of rows) console.log(row);
  if (opts['no-role']) process.exit(0);
}

const ecmp = {extip_ctrl_app_kind: 'DaemonSet', extip_distribution: 'all', extip_mask: 32, extip_iface: 'lo'};

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const result = await fn();
  return [result, Number(process.hrtime.bigint() - start) / 1e9];
}

const rows: string[] = [];
for (const nodes of [3, 30]) {
  const [lab, up] = await timed(() => Lab.start({nodes}));
  let down = 0;
  try {
    const log = join(lab.dir, 'kubectl.log');
    const wrapper = join(lab.dir, 'kubectl-counting');
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> ${log}\nexec ${lab.kubectlPath} "$@"\n`);
    await chmod(wrapper, 0o755);
    const count = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
    const vars = {...ecmp, extip_kubectl: wrapper};

    const playbook = join(lab.dir, 'baseline.yml');
    await writeFile(playbook, '- hosts: kube_node\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: "true"\n      changed_when: false\n');
    const [, baseline] = await timed(() => runPlaybook(['-i', lab.kubesprayInventory, playbook]));

    const [install, tInstall] = await timed(() => runRole(lab, {vars}));
    const nInstall = await count();
    const [again, tAgain] = await timed(() => runRole(lab, {vars}));
    const nAgain = (await count()) - nInstall;
    const [, tCalls] = await timed(async () => {
      for (let i = 0; i < nInstall; i++) await lab.kubectl(['get', '--raw', '/readyz']);
    });
    const floor = baseline + tCalls;
    const [removal, tRemove] = await timed(() => runRole(lab, {vars, playbook: 'externalip-uninstall.yml'}));
    const nRemove = (await count()) - nInstall - nAgain;
    for (const [name, r] of [['install', install], ['re-run', again], ['uninstall', removal]] as const) {
      if (r.exitCode !== 0) throw new Error(`${name} failed on ${nodes} nodes: ${JSON.stringify(r.failures)}`);
    }
    rows.push(
      `${String(nodes).padStart(5)}  ${up.toFixed(2).padStart(7)}  ${baseline.toFixed(2).padStart(8)}  ` +
        `${tInstall.toFixed(2).padStart(7)} (${(tInstall / baseline).toFixed(1)}x)  ${tAgain.toFixed(2).padStart(6)} (${(tAgain / baseline).toFixed(1)}x)  ` +
        `${tRemove.toFixed(2).padStart(7)} (${(tRemove / baseline).toFixed(1)}x)  ${String(nInstall).padStart(7)} ${String(nAgain).padStart(7)} ${String(nRemove).padStart(7)}  ` +
        `${floor.toFixed(2).padStart(6)} (${(floor / baseline).toFixed(1)}x)`,
    );
  } finally {
    [, down] = await timed(() => lab.stop());
    rows[rows.length - 1] += `  ${down.toFixed(2).padStart(6)}`;
  }
}
console.log('seconds (ratio to the baseline play over the same hosts); kubectl = invocations');
console.log('nodes  lab-up  baseline  install          re-run           uninstall        kubectl: inst  re-run  uninst  kubectl floor  lab-down');
for (const r of rows) console.log(r);
