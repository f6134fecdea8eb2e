/**
 * The one module that runs external programs: argv arrays, never a shell
 * string, so no value from a user ever reaches a shell.
 *
 * It uses node:child_process, not execa: the agent runs `ip` through it, and
 * loading execa cost every ipmanager start about 0.09 s of CPU (on a node
 * where 30 pods start at once that is seconds of rollout). What execa gave is
 * kept: the environment extends the caller's, a final newline is stripped
 * from the output, a missing program is a MissingToolError.
 */
import {type ChildProcess, spawn} from 'node:child_process';
import {CommandError, MissingToolError, tail} from './errors.js';

export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
  /** Hint shown when the program is not installed. */
  installHint?: string;
  /**
   * Stops the program (SIGTERM) this long after it started (the spawn, not
   * the call: on a busy host starting a process takes a while, and the
   * program is owed its whole time); the result then says `timedOut`.
   */
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

function startError(command: string, args: readonly string[], err: NodeJS.ErrnoException, hint?: string): Error {
  if (err.code === 'ENOENT') return missing(command, hint);
  return new CommandError(command, args, undefined, err.message, `${command} could not be started`);
}

const withoutFinalNewline = (text: string) => text.replace(/\r?\n$/, '');

/** Runs a program to completion; a non-zero exit is returned, not thrown. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      env: options.env ? {...process.env, ...options.env} : process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      const ms = options.timeoutMs;
      child.once('spawn', () => (timer = setTimeout(() => ((timedOut = true), child.kill('SIGTERM')), ms)));
    }
    child.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(startError(command, args, e, options.installHint));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdout = withoutFinalNewline(Buffer.concat(out).toString());
      const stderr = withoutFinalNewline(Buffer.concat(err).toString());
      resolve(timedOut ? {exitCode: -1, stdout, stderr, timedOut: true} : {exitCode: code ?? -1, stdout, stderr});
    });
    if (options.input !== undefined) {
      // A program that exits without reading all of its input is not an error of ours.
      child.stdin?.on('error', () => {});
      child.stdin?.end(options.input);
    }
  });
}

/** Runs a program and throws a CommandError (with the tail of its stderr) when it fails. */
export async function runChecked(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.exitCode !== 0) throw new CommandError(command, args, r.exitCode, tail(r.stderr || r.stdout));
  return r;
}

export interface Spawned {
  child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) when the program ends. */
  done: Promise<{exitCode: number | undefined; signal: string | undefined}>;
}

/** The long-running programs started and not ended: stopped when this process exits. */
const running = new Set<ChildProcess>();
let exitHooked = false;

/** Starts a long-running program; its output goes to `onOutput` as it comes (its stderr to `onStderr` when given). */
export function spawnProgram(command: string, args: readonly string[], options: RunOptions & {onOutput?: (chunk: string) => void; onStderr?: (chunk: string) => void}): Spawned {
  // In its own process group: a Ctrl-C in the terminal reaches only us, and we
  // pass it on once (a second SIGINT would make Ansible abort harder).
  const child = spawn(command, [...args], {
    env: options.env ? {...process.env, ...options.env} : process.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  // Detached, it would outlive us: stopped when we exit (one hook for all of them: the agent runs a
  // DHCP client per lease, more than an EventEmitter's ten listeners).
  running.add(child);
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGTERM');
    });
  }
  child.stdout?.on('data', (d: Buffer) => options.onOutput?.(d.toString()));
  child.stderr?.on('data', (d: Buffer) => (options.onStderr ?? options.onOutput)?.(d.toString()));
  const done = new Promise<{exitCode: number | undefined; signal: string | undefined}>((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      running.delete(child);
      reject(startError(command, args, e, options.installHint));
    });
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({exitCode: code ?? undefined, signal: signal ?? undefined});
    });
  });
  return {child, done};
}
