/**
 * The one module that runs external programs: argv arrays, never a shell
 * string, so no value from a user ever reaches a shell.
 */
import {execa, type ResultPromise} from 'execa';
import {CommandError, MissingToolError, tail} from './errors.js';

export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
  /** Hint shown when the program is not installed. */
  installHint?: string;
  /** Stops the program (SIGTERM) after this long; the result then says `timedOut`. */
  timeoutMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Stopped at `timeoutMs`. */
  timedOut?: boolean;
}

function missing(command: string, hint?: string): MissingToolError {
  return new MissingToolError(command, `${command} is not installed or not on PATH${hint ? `; ${hint}` : ''}`);
}

/** Runs a program to completion; a non-zero exit is returned, not thrown. */
export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  try {
    const r = await execa(command, [...args], {reject: false, env: options.env, input: options.input, cwd: options.cwd, timeout: options.timeoutMs});
    if (r.timedOut) return {exitCode: -1, stdout: String(r.stdout), stderr: String(r.stderr), timedOut: true};
    if (r.failed && r.exitCode === undefined) {
      const code = (r as unknown as {code?: string}).code;
      if (code === 'ENOENT') throw missing(command, options.installHint);
      throw new CommandError(command, args, undefined, String(r.message), `${command} could not be started`);
    }
    return {exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr)};
  } catch (err) {
    if ((err as {code?: string}).code === 'ENOENT') throw missing(command, options.installHint);
    throw err;
  }
}

/** Runs a program and throws a CommandError (with the tail of its stderr) when it fails. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.exitCode !== 0) throw new CommandError(command, args, r.exitCode, tail(r.stderr || r.stdout));
  return r;
}

export interface Spawned {
  child: ResultPromise;
  /** Resolves with the exit code (or the signal's name) when the program ends. */
  done: Promise<{exitCode: number | undefined; signal: string | undefined}>;
}

/** Starts a long-running program; its output goes to `onOutput` as it comes. */
export function spawnProgram(command: string, args: readonly string[], options: RunOptions & {onOutput?: (chunk: string) => void}): Spawned {
  // In its own process group: a Ctrl-C in the terminal reaches only us, and we
  // pass it on once (a second SIGINT would make Ansible abort harder).
  const child = execa(command, [...args], {reject: false, env: options.env, cwd: options.cwd, buffer: false, stdin: 'ignore', all: true, detached: true, cleanup: true});
  child.all?.on('data', (d: Buffer) => options.onOutput?.(d.toString()));
  const done = child.then(
    (r) => {
      if (r.failed && (r as unknown as {code?: string}).code === 'ENOENT') throw missing(command, options.installHint);
      return {exitCode: r.exitCode, signal: r.signal};
    },
    (err: {code?: string}) => {
      if (err.code === 'ENOENT') throw missing(command, options.installHint);
      throw err;
    },
  );
  return {child, done};
}
