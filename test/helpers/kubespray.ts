/**
 * A kubespray checkout pointed at the lab, and the commands extip prints for it,
 * run as printed: by a shell, from wherever the command says, with nothing from
 * the test's own Ansible settings (no roles path of extip's).
 */
import {eventsEnv, outcome, parseEvents} from '../../cli/ansible.js';
import {cp, mkdir, readFile, rm, writeFile} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {execa} from 'execa';
import type {Lab} from '../lab/lab.js';
import {repoRoot} from './root.js';

export type Era = 'kubespray' | 'kargo';

/**
 * Writes inventory/<name>/inventory.ini for the lab into a kubespray checkout,
 * with group_vars copied from its sample. The hosts carry kubespray's variables
 * (kube_config_dir, bin_dir) and no extip_* paths, so the role finds the admin
 * kubeconfig and kubectl the way it does in a real kubespray run. `era`
 * kargo uses the old group names, which kubespray's dynamic_groups maps.
 */
export async function labInventory(lab: Lab, root: string, name: string, era: Era = 'kubespray'): Promise<string> {
  const dir = join(root, 'inventory', name);
  await rm(dir, {recursive: true, force: true});
  await cp(join(root, 'inventory/sample'), dir, {recursive: true});
  const bin = lab.binDir;
  const line = (h: Lab['hosts'][number]) => {
    const own = lab.hostVars(h);
    const vars: Record<string, string> = {
      ansible_connection: 'local',
      ansible_python_interpreter: own.ansible_python_interpreter,
      ansible_shell_executable: own.ansible_shell_executable,
      // The lab runs as root and has no sudo: -b becomes root with su, which asks root nothing.
      ansible_become_method: 'su',
      ip: h.ip,
      access_ip: h.ip,
      // One path on every host, as on a real cluster: the control-plane host's (the lab's
      // hosts share one filesystem, each under its own root).
      kube_config_dir: join(lab.controlPlane[0].root, 'etc/kubernetes'),
      bin_dir: bin,
      // No kubespray variable for it: the lab kubelet gives each node's agent this state dir.
      extip_state_dir: own.extip_state_dir,
    };
    return `${h.name} ${Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(' ')}`;
  };
  const [cpGroup, nodeGroup] = era === 'kargo' ? ['kube-master', 'kube-node'] : ['kube_control_plane', 'kube_node'];
  const text = [
    `[${cpGroup}]`,
    ...lab.controlPlane.map(line),
    '',
    '[etcd:children]',
    cpGroup,
    '',
    `[${nodeGroup}]`,
    ...lab.hosts.filter((h) => !lab.controlPlane.includes(h)).map(line),
    ...lab.controlPlane.map((h) => h.name),
    '',
  ].join('\n');
  await writeFile(join(dir, 'inventory.ini'), text);
  return join(dir, 'inventory.ini');
}

/** A fresh copy of the kubespray-shaped fixture (test/fixtures/kubespray). */
export async function fixtureCheckout(root: string): Promise<string> {
  await mkdir(dirname(root), {recursive: true});
  await cp(join(repoRoot, 'test/fixtures/kubespray'), root, {recursive: true});
  return root;
}

export interface PrintedRun {
  exitCode: number;
  output: string;
  /** Tasks that reported a change, as "host: role : task". */
  changed: string[];
  /** Hosts that ran tasks. */
  hosts: string[];
  /** Each task's name (role : task), its start and its last result, in seconds. */
  tasks: Array<{task: string; start: number; end: number; results: number}>;
}

/** From the first to the last result of the tasks whose names start with `prefix` (a role's: "name : "), and their results. */
export function taskSpan(run: PrintedRun, prefix: string): {seconds: number; results: number} {
  const mine = run.tasks.filter((t) => t.task.startsWith(prefix) && t.results > 0);
  if (!mine.length) return {seconds: 0, results: 0};
  return {seconds: mine[mine.length - 1].end - mine[0].start, results: mine.reduce((n, t) => n + t.results, 0)};
}

let seq = 0;

/** Runs a command line extip printed, in bash, with extra arguments appended; reads what changed. */
export async function runPrinted(command: string, extra: string[] = [], eventsDir: string, env: Record<string, string> = {}): Promise<PrintedRun> {
  const events = join(eventsDir, `printed-events-${++seq}.jsonl`);
  const quoted = extra.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const run = await execa('bash', ['-c', `${command} ${quoted}`], {
    reject: false,
    all: true,
    cwd: '/',
    env: {
      ANSIBLE_NOCOLOR: '1',
      ...env,
      // extip's event callback, to read which tasks changed; it prints nothing.
      ...eventsEnv(events),
    },
  });
  const parsed = parseEvents(await readFile(events, 'utf8').catch(() => ''));
  const result = outcome(parsed);
  await rm(events, {force: true});
  const tasks: PrintedRun['tasks'] = [];
  for (const e of parsed) {
    if (e.event === 'task_start') tasks.push({task: e.task, start: e.t, end: e.t, results: 0});
    else if ((e.event === 'ok' || e.event === 'skipped' || e.event === 'failed') && tasks.length) {
      tasks[tasks.length - 1].end = e.t;
      tasks[tasks.length - 1].results++;
    }
  }
  return {
    exitCode: run.exitCode ?? -1,
    output: run.all ?? '',
    changed: result.changedTasks.map((c) => `${c.host}: ${c.task}`),
    hosts: Object.keys(result.hosts).filter((h) => result.hosts[h].ok + result.hosts[h].changed > 0),
    tasks,
  };
}
