/**
 * `npm run test:kubespray -- <kubespray checkout>`: what test/e2e/kubespray/kubespray.test.ts
 * does with the fixture, against a real kubespray checkout, on the lab. The
 * checkout is copied (without .git) and never changed; its sample inventory
 * becomes inventory/extip-lab, pointed at the lab's hosts.
 */
import {cp, mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {execa} from 'execa';
import {Lab} from '../lab/lab.js';
import {repoRoot} from '../helpers/root.js';
import {labInventory, runPrinted} from '../helpers/kubespray.js';

const usage = `Usage: npm run test:kubespray -- <path to a kubespray checkout>

Copies the checkout, renders extip into it with extip render --kargo (the ECMP
example's variables), and runs the printed command against the lab, with the
Ansible kubespray pins: install, a re-run that must change nothing of extip's,
scale.yml, a run with the inventory directory (must fail), and
-e extip_state=absent. Prints one line per step; exits 1 if one fails.
Needs root (the lab).`;

const checkout = process.argv[2];
if (!checkout || checkout === '-h' || checkout === '--help') {
  process.stdout.write(`${usage}\n`);
  process.exit(checkout ? 0 : 2);
}
if (process.getuid?.() !== 0) {
  process.stderr.write(`test:kubespray: the lab needs root\n\n${usage}\n`);
  process.exit(2);
}
for (const f of ['cluster.yml', 'playbooks/cluster.yml', 'roles/kubespray_defaults', 'inventory/sample/inventory.ini']) {
  if (!(await readFile(join(checkout, f)).then(() => true, (e) => e.code === 'EISDIR'))) {
    process.stderr.write(`test:kubespray: ${checkout} has no ${f}: not a kubespray checkout of v2.23 or later\n`);
    process.exit(2);
  }
}

let failures = 0;
function report(ok: boolean, what: string, detail = ''): void {
  if (!ok) failures++;
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'}  ${what}${detail ? `: ${detail}` : ''}\n`);
}
const seconds = (start: number) => `${((Date.now() - start) / 1000).toFixed(1)} s`;

const work = await mkdtemp(join(tmpdir(), 'extip-test-kubespray-'));
const root = join(work, 'kubespray');
let lab: Lab | undefined;
const stop = async () => {
  await lab?.stop();
  await rm(work, {recursive: true, force: true});
};
process.on('SIGINT', () => void stop().then(() => process.exit(130)));
try {
  await cp(resolve(checkout), root, {recursive: true, filter: (src) => !src.includes('/.git')});
  const commit = await execa('git', ['-C', checkout, 'log', '-1', '--format=%h %cs'], {reject: false});
  const ansible = await execa('ansible-playbook', ['--version'], {reject: false});
  process.stdout.write(`kubespray ${commit.stdout || '(no git)'}; ${ansible.stdout.split('\n')[0]}\n`);

  let start = Date.now();
  lab = await Lab.start({nodes: 3});
  const crd = (await execa('bash', [join(repoRoot, 'test/calico/crd.sh'), 'bgpconfigurations'])).stdout.trim();
  await lab.kubectl(['create', '-f', crd]);
  await lab.kubectl(['wait', '--for=condition=Established', 'crd/bgpconfigurations.crd.projectcalico.org']);
  await labInventory(lab, root, 'extip-lab');
  report(true, 'lab up, Calico v3 CRD, inventory/extip-lab', seconds(start));

  const render = await execa('node', [join(repoRoot, 'bin/run.js'), 'render', '--kargo', root, '--kargo-inventory', 'inventory/extip-lab',
    '-e', `@${join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml')}`, '--json'], {reject: false});
  const rendered = render.exitCode === 0 ? JSON.parse(render.stdout) : undefined;
  report(Boolean(rendered), 'extip render --kargo', rendered ? `${rendered.files.filter((f: string) => !f.startsWith('roles/')).join(', ')} (+ roles/externalip)` : render.stderr);
  if (!rendered) throw new Error('render failed');
  const command = rendered.command as string;
  process.stdout.write(`      ${command}\n`);

  const nodes = lab.hosts.map((h) => h.name).sort();
  const labelled = async () => (await lab!.kubectl(['get', 'nodes', '-l', 'externalip=true', '-o', 'name'])).stdout.split('\n').filter(Boolean).length;
  const extipChanges = (changed: string[]) => changed.filter((t) => t.includes('externalip :'));

  start = Date.now();
  const install = await runPrinted(command, [], work);
  const ran = install.hosts.filter((h) => h !== 'localhost').sort();
  report(install.exitCode === 0 && JSON.stringify(ran) === JSON.stringify(nodes) && (await labelled()) === nodes.length,
    'install, the command as printed', `exit ${install.exitCode}, ran on ${ran.join(', ') || 'no host'}, ${await labelled()} nodes labelled, ${extipChanges(install.changed).length} changes, ${seconds(start)}`);
  if (install.exitCode !== 0) process.stdout.write(`${install.output.slice(-5000)}\n`);

  start = Date.now();
  const again = await runPrinted(command, [], work);
  report(again.exitCode === 0 && extipChanges(again.changed).length === 0, 'the same command again changes nothing of extip\'s',
    `exit ${again.exitCode}, ${extipChanges(again.changed).join('; ') || 'changed=0'}, ${seconds(start)}`);

  start = Date.now();
  const scale = await runPrinted(command.replace(' cluster.yml ', ' scale.yml '), [], work);
  report(scale.exitCode === 0 && extipChanges(scale.changed).length === 0, 'scale.yml -t externalip', `exit ${scale.exitCode}, ${extipChanges(scale.changed).length} changes, ${seconds(start)}`);
  if (scale.exitCode !== 0) process.stdout.write(`${scale.output.slice(-5000)}\n`);

  const dir = await runPrinted(command.replace('inventory/extip-lab/inventory.ini', 'inventory/extip-lab'), [], work);
  report(dir.exitCode !== 0 && dir.output.includes('Give -i the inventory file itself'), '-i naming the directory fails and says why', `exit ${dir.exitCode}`);

  start = Date.now();
  const removal = await runPrinted(command, ['-e', 'extip_state=absent'], work);
  const left = (await lab.kubectl(['get', 'daemonsets', '-A', '-l', 'app.kubernetes.io/managed-by=extip', '-o', 'name'])).stdout.trim();
  report(removal.exitCode === 0 && (await labelled()) === 0 && !left, '-e extip_state=absent', `exit ${removal.exitCode}, ${await labelled()} nodes labelled, ${left || 'no controller'}, ${seconds(start)}`);
  if (removal.exitCode !== 0) process.stdout.write(`${removal.output.slice(-5000)}\n`);
} catch (err) {
  report(false, 'the run', (err as Error).message);
} finally {
  await stop();
}
process.stdout.write(failures ? `${failures} step(s) failed\n` : 'every step passed\n');
process.exit(failures ? 1 : 0);
