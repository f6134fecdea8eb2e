/**
 * Typed errors and the one table of exit codes.
 *
 * Every failure the CLI reports is one of these classes; the base command maps
 * them to an exit code and a message. README's "Exit codes" section is this table.
 */

export const ExitCode = {
  /** Everything worked. */
  ok: 0,
  /** A bug in extip: an error nobody anticipated. */
  internal: 1,
  /** Bad flags, arguments or variables. Nothing was written or run. */
  usage: 2,
  /** A required program (ansible-playbook, kubectl, ...) is missing or too old. */
  missingTool: 3,
  /** An Ansible task or another external command failed. */
  commandFailed: 4,
  /** One or more hosts could not be reached. */
  unreachable: 5,
  /** A check found problems (status, doctor). */
  problemsFound: 6,
  /** Interrupted by the user (Ctrl-C / SIGINT). */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Rows for the README's exit-code table, in order. */
export const exitCodeTable: ReadonlyArray<{code: number; meaning: string}> = [
  {code: ExitCode.ok, meaning: 'Success.'},
  {code: ExitCode.internal, meaning: 'Unexpected internal error (a bug: please report it with the output).'},
  {code: ExitCode.usage, meaning: 'Invalid flags, arguments or `extip_*` variables; nothing was written or run.'},
  {code: ExitCode.missingTool, meaning: 'A required program (ansible-playbook, kubectl) is missing or too old.'},
  {code: ExitCode.commandFailed, meaning: 'An Ansible task or another external command failed.'},
  {code: ExitCode.unreachable, meaning: 'One or more hosts were unreachable.'},
  {code: ExitCode.problemsFound, meaning: '`status` or `doctor` found problems.'},
  {code: ExitCode.interrupted, meaning: 'Interrupted (Ctrl-C); run the same command again to finish.'},
];

export abstract class ExtipError extends Error {
  abstract readonly exitCode: ExitCodeValue;
}

/** Something the user gave us is wrong; the message says what to change. */
export class UserError extends ExtipError {
  readonly exitCode: ExitCodeValue = ExitCode.usage;
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** One problem with one variable. */
export interface VariableProblem {
  name: string;
  value: unknown;
  rule: string;
  example: string;
  hint?: string;
  /** Where the value came from: a file or a flag. */
  origin?: string;
}

/** All the problems with the variables, reported at once. */
export class ValidationError extends UserError {
  constructor(readonly problems: readonly VariableProblem[]) {
    super(formatProblems(problems));
    this.name = 'ValidationError';
  }
}

function formatProblems(problems: readonly VariableProblem[]): string {
  const lines = [`${problems.length} invalid variable${problems.length === 1 ? '' : 's'}; nothing was written or run:`];
  for (const p of problems) {
    lines.push(`  ${p.name}: got ${showValue(p.value)}${p.origin ? ` (from ${p.origin})` : ''}`);
    lines.push(`    rule: ${p.rule}`);
    if (p.hint) lines.push(`    ${p.hint}`);
    lines.push(`    example: ${p.name}: ${p.example}`);
  }
  return lines.join('\n');
}

export function showValue(value: unknown): string {
  if (value === undefined) return '(nothing)';
  const text = JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** A program we need is not there, or too old. */
export class MissingToolError extends ExtipError {
  readonly exitCode: ExitCodeValue = ExitCode.missingTool;
  constructor(
    readonly tool: string,
    message: string,
  ) {
    super(message);
    this.name = 'MissingToolError';
  }
}

/** An external command exited non-zero. */
export class CommandError extends ExtipError {
  readonly exitCode: ExitCodeValue = ExitCode.commandFailed;
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly code: number | undefined,
    readonly stderrTail: string,
    summary?: string,
  ) {
    super(
      `${summary ?? `${command} failed`} (exit code ${code ?? 'none'}): ${command} ${args.join(' ')}` +
        (stderrTail ? `\n${indent(stderrTail)}` : ''),
    );
    this.name = 'CommandError';
  }
}

export function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

export function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}
