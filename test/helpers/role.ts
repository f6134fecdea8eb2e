/** Runs the role's playbooks against a lab with real ansible-playbook, and reads the result. */
import {readFile, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import YAML from 'yaml';
import type {Lab} from '../lab/lab.js';
import {type HostCounts, eventsEnv, outcome, parseEvents} from '../../cli/ansible.js';
import {repoRoot, runPlaybook} from './ansible.js';

export interface RoleRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Per-host counts from the extip_events callback's summary. */
  stats: Record<string, HostCounts>;
  changedTasks: string[];
  failures: Array<{host: string; task: string; msg: string}>;
  /** What tasks reported as Ansible warnings (extip_warn among them). */
  warnings: string[];
  totalChanged: number;
}

export interface RoleRunOptions {
  playbook?: 'externalip.yml' | 'externalip-uninstall.yml' | string;
  inventory?: string;
  vars?: Record<string, unknown>;
  args?: string[];
  env?: Record<string, string>;
}

let seq = 0;

export async function runRole(lab: Lab, options: RoleRunOptions = {}): Promise<RoleRun> {
  const n = ++seq;
  const events = join(lab.dir, `events-${n}.jsonl`);
  const args = ['-i', options.inventory ?? lab.kubesprayInventory];
  if (options.vars) {
    const varsFile = join(lab.dir, `vars-${n}.yml`);
    await writeFile(varsFile, YAML.stringify(options.vars));
    args.push('-e', `@${varsFile}`);
  }
  const playbook = options.playbook ?? 'externalip.yml';
  args.push(playbook.startsWith('/') ? playbook : join(repoRoot, 'playbooks', playbook), ...(options.args ?? []));
  const run = await runPlaybook(args, {...eventsEnv(events), ...options.env});
  const result = outcome(parseEvents(await readFile(events, 'utf8').catch(() => '')));
  await rm(events, {force: true});
  return {
    ...run,
    stats: result.hosts,
    changedTasks: result.changedTasks.map((c) => `${c.host}: ${c.task}`),
    failures: result.failures.map((f) => ({host: f.host, task: f.task, msg: f.message})),
    warnings: result.warnings.map((w) => w.message),
    totalChanged: Object.values(result.hosts).reduce((sum, s) => sum + s.changed, 0),
  };
}

export function explain(run: RoleRun): string {
  return `exit ${run.exitCode}; failures: ${JSON.stringify(run.failures, null, 1)}; changed: ${run.changedTasks.join(' | ')}\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-2000)}`;
}
