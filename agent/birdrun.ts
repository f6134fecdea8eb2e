/**
 * `ipmanager bgp-speaker`: runs BIRD in the controller pod's speaker
 * container, and outlives the pod's SIGTERM until ipmanager has drained.
 *
 * The kubelet sends SIGTERM to every container of a pod at once. BIRD on
 * its own would close its sessions at once, and a router would drop the
 * node's routes before ipmanager could announce them with
 * GRACEFUL_SHUTDOWN and withdraw them: behind a core, whose paths lag the
 * ToR's, traffic to a rack whose last node drains would loop for a moment.
 * So on SIGTERM this waits until ipmanager says it is done (the file
 * `released` beside BIRD's socket, which ipmanager writes when it stops), or
 * --grace at most, and only then stops BIRD. BIRD exiting on its own ends
 * this too, with BIRD's status, so that the kubelet restarts the container.
 */
import {spawn} from 'node:child_process';
import {existsSync, rmSync} from 'node:fs';
import {dirname, join} from 'node:path';

/** What ipmanager writes beside BIRD's socket once it no longer needs BIRD (its routes withdrawn). */
export function releasedFile(socket: string): string {
  return join(dirname(socket), 'released');
}

export const BIRD_RUN_USAGE = `Usage: ipmanager bgp-speaker [--bgp-socket=/run/extip-bgp/bird.ctl] [--config=/etc/extip/bird-idle.conf] [--grace=20s]

Runs BIRD (bird -f -c CONFIG -s SOCKET) for the controller beside it. On
SIGTERM it keeps BIRD running until the controller has withdrawn its routes
(it writes "released" beside the socket), or --grace has passed.
`;

export async function birdRun(args: string[]): Promise<number> {
  let socket = '/run/extip-bgp/bird.ctl';
  let config = '/etc/extip/bird-idle.conf';
  let graceMs = 20000;
  for (const a of args) {
    const [name, value] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, ''];
    if (name === '--bgp-socket' && value) socket = value;
    else if (name === '--config' && value) config = value;
    else if (name === '--grace' && /^\d+s$/.test(value)) graceMs = Number(value.slice(0, -1)) * 1000;
    else if (name === '--help' || name === '-h') {
      process.stdout.write(BIRD_RUN_USAGE);
      return 0;
    } else {
      process.stderr.write(`ipmanager bgp-speaker: unknown or bad flag ${a}\n${BIRD_RUN_USAGE}`);
      return 2;
    }
  }
  const released = releasedFile(socket);
  // A marker of the pod's last container, in the same emptyDir: not this one's.
  rmSync(released, {force: true});
  const bird = spawn('bird', ['-f', '-c', config, '-s', socket], {stdio: 'inherit'});
  const exited = new Promise<number>((resolve) => {
    bird.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    bird.once('error', (err) => {
      process.stderr.write(`ipmanager bgp-speaker: cannot run bird: ${err.message}\n`);
      resolve(127);
    });
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const deadline = Date.now() + graceMs;
    process.stderr.write(`ipmanager bgp-speaker: ${signal}: BIRD keeps its sessions until the controller has withdrawn the routes (at most ${graceMs / 1000} s)\n`);
    while (!existsSync(released) && Date.now() < deadline && bird.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    if (bird.exitCode === null) bird.kill('SIGTERM');
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return exited;
}
