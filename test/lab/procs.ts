/**
 * Every process and namespace the lab starts is recorded here, so that it can
 * be stopped by PID and removed, also when a test fails or the run is
 * interrupted (exit and signal handlers clean up synchronously).
 */
import {execFileSync, spawn, type ChildProcess} from 'node:child_process';
import {existsSync, rmSync} from 'node:fs';

interface Owned {
  pids: Set<number>;
  namespaces: Set<string>;
  dirs: Set<string>;
  /** runc state directories: their containers are not children of any process recorded here. */
  runcRoots: Set<string>;
}

const owned: Owned = {pids: new Set(), namespaces: new Set(), dirs: new Set(), runcRoots: new Set()};
let hooked = false;

function cleanupSync(): void {
  // First the containers: killing `runc run` leaves its container running, and the state
  // that names them goes with the lab's directory below.
  for (const root of owned.runcRoots) {
    try {
      const ids = execFileSync('runc', ['--root', root, 'list', '-q'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).split('\n').filter(Boolean);
      for (const id of ids) execFileSync('runc', ['--root', root, 'delete', '--force', id], {stdio: 'ignore'});
    } catch {
      /* no runc state, or already gone */
    }
  }
  owned.runcRoots.clear();
  for (const pid of owned.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  owned.pids.clear();
  for (const ns of owned.namespaces) {
    try {
      execFileSync('ip', ['netns', 'del', ns], {stdio: 'ignore'});
    } catch {
      /* already gone */
    }
  }
  owned.namespaces.clear();
  for (const dir of owned.dirs) rmSync(dir, {recursive: true, force: true});
  owned.dirs.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      // A program that handles the signal itself (npm run lab stops its lab in order) goes on;
      // whatever it leaves is cleaned up when it exits.
      if (process.listenerCount(signal) > 0) return;
      cleanupSync();
      process.kill(process.pid, signal);
    });
  }
}

/** Records a runc state directory: its containers are killed with the rest on an interrupted run. */
export function trackRuncRoot(root: string): void {
  hook();
  owned.runcRoots.add(root);
}

export function trackNamespace(ns: string): void {
  hook();
  owned.namespaces.add(ns);
}

export function untrackNamespace(ns: string): void {
  owned.namespaces.delete(ns);
}

export function trackDir(dir: string): void {
  hook();
  owned.dirs.add(dir);
}

export function untrackDir(dir: string): void {
  owned.dirs.delete(dir);
}

export interface Daemon {
  pid: number;
  child: ChildProcess;
  /** Output so far (stdout and stderr), for error messages. */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a long-running process, recorded for cleanup. */
export function startDaemon(command: string, args: string[], env?: NodeJS.ProcessEnv): Daemon {
  hook();
  const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env});
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  owned.pids.add(pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => owned.pids.delete(pid));
  return {
    pid,
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Removes namespaces left by lab processes that no longer exist (a killed test run). */
export function reapStaleNamespaces(prefix: string): string[] {
  if (!existsSync('/run/netns')) return [];
  const list = execFileSync('ip', ['netns', 'list'], {encoding: 'utf8'});
  const removed: string[] = [];
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    const m = new RegExp(`^${prefix}-(\\d+)-`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) {
      execFileSync('ip', ['netns', 'del', name], {stdio: 'ignore'});
      removed.push(name);
    }
  }
  return removed;
}
