/**
 * Install benchmark: lab up/down and role install/re-run/uninstall wall times
 * for 3 and 30 nodes, with the number of kubectl invocations, against a
 * baseline measured in the same run (a one-task play over the same hosts).
 * "kubectl floor" is the baseline plus as many of the cheapest kubectl calls
 * (get --raw /readyz) as the install made, one after the other: what an
 * install that made those calls and nothing else would cost.
 * Usage: npm run bench:install
 */
import {chmod, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {Lab} from '../lab/lab.js';
import {runPlaybook} from '../helpers/ansible.js';
import {runRole} from '../helpers/role.js';

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
