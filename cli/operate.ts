/**
 * What `extip install` and `extip uninstall` do: validate the variables, check
 * Ansible, run the shipped playbook with progress, and report the result with
 * an exit code that says what kind of failure it was.
 */
import type {AnsibleOptions} from './ansible-flags.js';
import {type PlaybookResult, checkAnsible, runPlaybook} from './ansible.js';
import type {Value} from '../lib/catalogue.js';
import {checkCalicoFilters} from './bird.js';
import {ExitCode, type ExitCodeValue, UserError, ValidationError, indent} from '../lib/errors.js';
import {type VariableInputs, loadVariables} from './loader.js';
import {createProgress, summaryLines} from './progress.js';
import {assertValid} from './validate.js';

export interface OperateOptions {
  action: 'install' | 'uninstall';
  inputs: VariableInputs;
  kubeconfig?: string;
  /** ansible-playbook's own options (--limit, --tags, --user, --become). */
  ansible: AnsibleOptions;
  dryRun?: boolean;
  /** Take the run lock whoever holds it (extip_break_lock). */
  breakLock?: boolean;
  passthrough: string[];
  /** Show progress on stderr (not with --json). */
  progress: boolean;
  verbose: boolean;
  ansiblePlaybook?: string;
  log: (line: string) => void;
}

export interface OperateResult {
  action: 'install' | 'uninstall';
  dryRun: boolean;
  ok: boolean;
  exitCode: number;
  durationSeconds: number;
  ansibleVersion: string;
  hosts: PlaybookResult['hosts'];
  changedTasks: PlaybookResult['changedTasks'];
  failures: PlaybookResult['failures'];
  warnings: PlaybookResult['warnings'];
  interrupted: boolean;
}

export async function operate(options: OperateOptions): Promise<OperateResult> {
  if (!options.inputs.inventory) throw new UserError('an inventory is needed', 'pass it with -i/--inventory (a file or a directory)');
  const vars = await loadVariables(options.inputs);
  if (options.kubeconfig) {
    vars.given.extip_kubeconfig = options.kubeconfig;
    vars.explicit.set('extip_kubeconfig', '--kubeconfig');
  }
  assertValid(vars.given, vars.explicit, vars.templated);
  if (options.action === 'install') {
    // A filter BIRD cannot parse would break BGP on every node: refuse it before anything runs.
    const filters = await checkCalicoFilters(vars.values, vars.explicit);
    if (filters.problems.length) throw new ValidationError(filters.problems);
  }
  const ansibleVersion = await checkAnsible(options.ansiblePlaybook);

  // Only what came from flags goes to Ansible as extra vars; Ansible reads the group_vars itself.
  // extip's own values from flags are data (never templated); other -e values are Ansible's business.
  const extraVars: Record<string, Value> = {...vars.passthrough};
  const dataVars: Record<string, Value> = {...vars.fromFlags};
  if (options.kubeconfig) dataVars.extip_kubeconfig = options.kubeconfig;
  if (options.action === 'uninstall') dataVars.extip_state = 'absent';
  if (options.breakLock) dataVars.extip_break_lock = true;

  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) return;
    options.log('\nInterrupted: stopping Ansible (it finishes the task under way)...');
    controller.abort();
  };
  // A dropped SSH session (SIGHUP) stops Ansible as Ctrl-C does: ansible-playbook runs in
  // its own process group and would go on orphaned, and the vars file must not stay behind.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSigint);
  const progress = options.progress ? createProgress(process.stderr) : undefined;
  let result: PlaybookResult;
  try {
    result = await runPlaybook({
      playbook: options.action === 'install' ? 'externalip.yml' : 'externalip-uninstall.yml',
      inventory: options.inputs.inventory,
      extraVars,
      dataVars,
      ...options.ansible,
      check: options.dryRun,
      diff: options.dryRun,
      passthrough: options.passthrough,
      binary: options.ansiblePlaybook,
      onEvent: progress ? (e) => progress.onEvent(e) : undefined,
      onOutput: options.verbose ? (chunk) => process.stderr.write(chunk) : undefined,
      signal: controller.signal,
    });
  } finally {
    progress?.finish();
    for (const s of signals) process.removeListener(s, onSigint);
  }

  const exitCode = classify(result);
  if (options.progress) {
    for (const line of summaryLines(result)) options.log(line);
    report(options, result, exitCode);
  }
  return {
    action: options.action,
    dryRun: Boolean(options.dryRun),
    ok: exitCode === ExitCode.ok,
    exitCode,
    durationSeconds: Math.round(result.durationSeconds * 10) / 10,
    ansibleVersion,
    hosts: result.hosts,
    changedTasks: result.changedTasks,
    failures: result.failures,
    warnings: result.warnings,
    interrupted: result.interrupted,
  };
}

export function classify(result: PlaybookResult): ExitCodeValue {
  if (result.interrupted) return ExitCode.interrupted;
  if (result.failures.some((f) => f.unreachable) || Object.values(result.hosts).some((h) => h.unreachable > 0)) return ExitCode.unreachable;
  if (result.exitCode !== 0 || result.failures.length) return ExitCode.commandFailed;
  // ansible-playbook exits 0 when no host matched: that did nothing, and is not success.
  if (!matchedHosts(result).length) return ExitCode.commandFailed;
  return ExitCode.ok;
}

/** The inventory hosts the run did something on (the implicit localhost of the inventory check is not one). */
function matchedHosts(result: PlaybookResult): string[] {
  return Object.keys(result.hosts).filter((h) => h !== 'localhost');
}

function report(options: OperateOptions, result: PlaybookResult, exitCode: number): void {
  const what = options.action === 'install' ? 'Install' : 'Uninstall';
  const changed = result.changedTasks.length;
  for (const message of new Set(result.warnings.map((w) => w.message))) options.log(`Warning: ${message}`);
  if (exitCode === ExitCode.ok) {
    options.log(`${what}${options.dryRun ? ' (dry run: nothing was changed)' : ''} finished in ${result.durationSeconds.toFixed(1)}s: ${changed} change${changed === 1 ? '' : 's'}.`);
    return;
  }
  if (exitCode === ExitCode.interrupted) {
    options.log(`${what} was interrupted after ${result.durationSeconds.toFixed(1)}s.`);
    options.log(`What ran before the interruption may be half-done (${changed} change${changed === 1 ? '' : 's'} were made).`);
    options.log(`Run the same command again to finish it${options.action === 'install' ? ', or "extip uninstall" to remove what was done' : ''}.`);
    return;
  }
  options.log(`${what} failed after ${result.durationSeconds.toFixed(1)}s.`);
  for (const f of result.failures) {
    options.log(`${f.unreachable ? 'Unreachable' : 'Failed'}: host ${f.host}, task "${f.task.replace(/^externalip : /, '')}":`);
    options.log(indent(f.message.trim() || '(no message)', '    '));
    if (f.stderr.trim()) options.log(indent(`stderr: ${f.stderr.trim()}`, '    '));
  }
  if (!result.failures.length && result.exitCode === 0) {
    options.log('ansible-playbook ran nothing on any host: the inventory (with --limit, if given) matched no kube_node host.');
    options.log('Give -i the inventory file itself (for example inventory/mycluster/inventory.ini): Ansible skips .ini files when -i names a directory.');
    return;
  }
  if (!result.failures.length) {
    options.log(`ansible-playbook exited ${result.exitCode ?? 'abnormally'} without reporting a failed task; its last output:`);
    options.log(indent(result.outputTail, '    '));
  }
}
