/**
 * Runs the shipped playbooks with ansible-playbook and turns its events (one
 * JSON line each, from the extip_events callback) into progress and a result.
 */
import {type AnsibleOptions, ansibleArgs} from './ansible-flags.js';
import {mkdtemp, open, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import type {Value} from '../lib/catalogue.js';
import {MissingToolError, tail} from '../lib/errors.js';
import {playbooksDir, rolesDir} from './paths.js';
import {run, spawnProgram} from '../lib/run.js';
import YAML from 'yaml';

/** The oldest ansible-core the role is tested on: kubespray's pin. */
export const MIN_ANSIBLE = [2, 18] as const;
export const ANSIBLE_INSTALL_HINT =
  'install ansible-core 2.18 or newer (kubespray pins 2.18): "pipx install ansible-core", or "pip install -r requirements.txt" in a kubespray checkout\'s virtualenv';

/** The ansible-playbook version, or a MissingToolError saying how to get one. */
export async function checkAnsible(binary = 'ansible-playbook'): Promise<string> {
  const r = await run(binary, ['--version'], {installHint: ANSIBLE_INSTALL_HINT});
  const m = /\[core (\d+)\.(\d+)\.(\d+)[^\]]*\]/.exec(r.stdout) ?? /ansible-playbook (\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  if (r.exitCode !== 0 || !m) throw new MissingToolError(binary, `${binary} --version did not answer as ansible-playbook does; ${ANSIBLE_INSTALL_HINT}`);
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < MIN_ANSIBLE[0] || (major === MIN_ANSIBLE[0] && minor < MIN_ANSIBLE[1])) {
    throw new MissingToolError(binary, `${binary} is ansible-core ${m[1]}.${m[2]}.${m[3]}; extip needs ${MIN_ANSIBLE.join('.')} or newer: ${ANSIBLE_INSTALL_HINT}`);
  }
  return `${m[1]}.${m[2]}.${m[3]}`;
}

export type AnsibleEvent =
  | {event: 'playbook_start'; playbook: string; t: number}
  | {event: 'play_start'; play: string; t: number}
  | {event: 'task_start'; task: string; t: number}
  | {event: 'ok' | 'skipped'; host: string; task: string; changed: boolean; stdout?: string; warnings?: string[]; t: number}
  | {event: 'failed' | 'unreachable'; host: string; task: string; changed: boolean; msg: string; stderr: string; rc: number | null; ignored?: boolean; t: number}
  | {event: 'stats'; hosts: Record<string, HostCounts>; t: number};

export interface HostCounts {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export interface Failure {
  host: string;
  task: string;
  message: string;
  stderr: string;
  unreachable: boolean;
}

export interface PlaybookResult {
  exitCode: number | undefined;
  interrupted: boolean;
  hosts: Record<string, HostCounts>;
  changedTasks: Array<{host: string; task: string}>;
  failures: Failure[];
  /** Warnings tasks returned (Ansible's [WARNING] lines), e.g. "auto found no Calico". */
  warnings: Array<{host: string; task: string; message: string}>;
  durationSeconds: number;
  /** The end of Ansible's own output, for failures that produced no event. */
  outputTail: string;
  /** Every event, in order. */
  events: AnsibleEvent[];
}

export interface PlaybookOptions extends AnsibleOptions {
  playbook: 'externalip.yml' | 'externalip-uninstall.yml' | 'externalip-manifests.yml' | 'externalip-doctor.yml';
  inventory: string;
  /** Variables handed over in a temporary file, never on the command line. */
  extraVars: Record<string, Value>;
  /**
   * Variables that are data, not templates: written with Ansible's `!unsafe`
   * tag, so that a value such as "{{ lookup('pipe', ...) }}" given to the CLI
   * is never evaluated on the control machine. Wins over `extraVars`.
   */
  dataVars?: Record<string, Value>;
  check?: boolean;
  diff?: boolean;
  passthrough?: string[];
  binary?: string;
  onEvent?: (event: AnsibleEvent) => void;
  /** Ansible's own output, as it comes (for --verbose). */
  onOutput?: (chunk: string) => void;
  /** Include the tasks' stdout in the events. */
  withStdout?: boolean;
  /** Aborted by Ctrl-C. */
  signal?: AbortSignal;
}

export function playbookArgs(options: PlaybookOptions, varsFile: string): string[] {
  const args = ['-i', options.inventory, '-e', `@${varsFile}`];
  args.push(...ansibleArgs(options));
  if (options.check) args.push('--check');
  if (options.diff) args.push('--diff');
  args.push(...(options.passthrough ?? []), join(playbooksDir, options.playbook));
  return args;
}

/** The extra-vars file: `data` values carry `!unsafe` on every string inside them. */
export function varsDocument(extraVars: Record<string, Value>, data: Record<string, Value>): string {
  const doc = new YAML.Document({...extraVars, ...data}, {version: '1.1'});
  const dataNames = new Set(Object.keys(data));
  YAML.visit(doc, {
    Pair(_key, pair) {
      if (!YAML.isScalar(pair.key) || !dataNames.has(String(pair.key.value))) return;
      const mark = (node: unknown) => {
        if (YAML.isScalar(node) && typeof node.value === 'string') node.tag = '!unsafe';
        else if (YAML.isCollection(node)) for (const item of node.items) YAML.isPair(item) ? mark(item.value) : mark(item);
      };
      mark(pair.value);
      return YAML.visit.SKIP;
    },
  });
  return doc.toString({lineWidth: 0, blockQuote: 'literal'});
}

export async function runPlaybook(options: PlaybookOptions): Promise<PlaybookResult> {
  const dir = await mkdtemp(join(tmpdir(), 'extip-run-'));
  const varsFile = join(dir, 'extip-vars.yml');
  const eventsFile = join(dir, 'events.jsonl');
  const started = Date.now();
  try {
    await writeFile(varsFile, varsDocument(options.extraVars, options.dataVars ?? {}), {mode: 0o600});
    await writeFile(eventsFile, '');
    let output = '';
    const spawned = spawnProgram(options.binary ?? 'ansible-playbook', playbookArgs(options, varsFile), {
      env: {
        ANSIBLE_ROLES_PATH: [rolesDir, process.env.ANSIBLE_ROLES_PATH].filter(Boolean).join(':'),
        ...eventsEnv(eventsFile),
        ...(options.withStdout ? {EXTIP_EVENTS_STDOUT: '1'} : {}),
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_FORCE_COLOR: '0',
        ANSIBLE_RETRY_FILES_ENABLED: '0',
      },
      installHint: ANSIBLE_INSTALL_HINT,
      onOutput: (chunk) => {
        output = (output + chunk).slice(-64 * 1024);
        options.onOutput?.(chunk);
      },
    });
    let interrupted = false;
    const onAbort = () => {
      interrupted = true;
      // Ansible stops cleanly on SIGINT, as on Ctrl-C in a terminal.
      spawned.child.kill('SIGINT');
      setTimeout(() => spawned.child.kill('SIGKILL'), 15000).unref();
    };
    options.signal?.addEventListener('abort', onAbort, {once: true});

    const events: AnsibleEvent[] = [];
    const reader = await open(eventsFile, 'r');
    let offset = 0;
    let partial = '';
    const drain = async () => {
      const buffer = Buffer.alloc(64 * 1024);
      for (;;) {
        const {bytesRead} = await reader.read(buffer, 0, buffer.length, offset);
        if (!bytesRead) break;
        offset += bytesRead;
        partial += buffer.subarray(0, bytesRead).toString('utf8');
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          const event = parseEvent(line);
          // Ansible has read the extra vars by the time the playbook starts: the file
          // (which may hold passwords given with -e) goes now, so that not even a
          // SIGKILL of extip later can leave it behind.
          if (event.event === 'playbook_start') await rm(varsFile, {force: true});
          events.push(event);
          options.onEvent?.(event);
        }
      }
    };
    let finished = false;
    const poller = (async () => {
      while (!finished) {
        await drain();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const {exitCode} = await spawned.done;
    finished = true;
    await poller;
    await drain();
    await reader.close();
    options.signal?.removeEventListener('abort', onAbort);
    return summarise(events, exitCode, interrupted, (Date.now() - started) / 1000, tail(output, 30));
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

function summarise(events: AnsibleEvent[], exitCode: number | undefined, interrupted: boolean, durationSeconds: number, outputTail: string): PlaybookResult {
  return {exitCode, interrupted, ...outcome(events), durationSeconds, outputTail, events};
}

/** The environment that makes ansible-playbook write extip's events (playbooks/callback_plugins/extip_events.py) to `file`. */
export function eventsEnv(file: string): Record<string, string> {
  return {ANSIBLE_CALLBACK_PLUGINS: join(playbooksDir, 'callback_plugins'), ANSIBLE_CALLBACKS_ENABLED: 'extip_events', EXTIP_EVENTS_FILE: file};
}

/** One line of the events file. */
export function parseEvent(line: string): AnsibleEvent {
  return JSON.parse(line) as AnsibleEvent;
}

/** Every event of an events file's text, in order. */
export function parseEvents(text: string): AnsibleEvent[] {
  return text.split('\n').filter((l) => l.trim()).map(parseEvent);
}

/** What a run's events say: per-host counts, the tasks that changed something, failures and warnings. */
export function outcome(events: readonly AnsibleEvent[]): Pick<PlaybookResult, 'hosts' | 'changedTasks' | 'failures' | 'warnings'> {
  const stats = events.find((e): e is Extract<AnsibleEvent, {event: 'stats'}> => e.event === 'stats');
  const changedTasks: Array<{host: string; task: string}> = [];
  const failures: Failure[] = [];
  const warnings: PlaybookResult['warnings'] = [];
  for (const e of events) {
    if (e.event === 'ok' && e.changed) changedTasks.push({host: e.host, task: e.task});
    if (e.event === 'ok') for (const message of e.warnings ?? []) warnings.push({host: e.host, task: e.task, message});
    if ((e.event === 'failed' && !e.ignored) || e.event === 'unreachable') {
      failures.push({host: e.host, task: e.task, message: e.msg, stderr: tail(e.stderr ?? '', 10), unreachable: e.event === 'unreachable'});
    }
  }
  return {hosts: stats?.hosts ?? {}, changedTasks, failures, warnings};
}
