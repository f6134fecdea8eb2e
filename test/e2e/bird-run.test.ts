/**
 * `ipmanager bgp-speaker`, the speaker container's entry point, with the real
 * BIRD 2 (an idle configuration: no session, no port): on SIGTERM BIRD keeps
 * running until the controller writes "released" beside its socket, or until
 * --grace has passed; BIRD gone on its own ends it with BIRD's status.
 */
import {afterAll, expect, test} from '@jest/globals';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {IDLE_CONFIG} from '../../lib/bgp.js';
import {repoRoot} from '../helpers/root.js';
import {waitFor} from '../lab/bgp.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, {recursive: true, force: true});
});

async function start(grace: string) {
  const dir = await mkdtemp(join(tmpdir(), 'extip-birdrun-'));
  dirs.push(dir);
  await writeFile(join(dir, 'idle.conf'), IDLE_CONFIG);
  // A marker left by the pod's previous container is not this one's: it is removed at start.
  await writeFile(join(dir, 'released'), 'old\n');
  const socket = join(dir, 'bird.ctl');
  const child = execa(process.execPath, [join(repoRoot, 'bin/ipmanager.js'), 'bgp-speaker', `--bgp-socket=${socket}`, `--config=${join(dir, 'idle.conf')}`, `--grace=${grace}`], {reject: false});
  const up = async () => (await execa('birdc', ['-s', socket, 'show', 'status'], {reject: false})).stdout.includes('Daemon is up');
  await waitFor('BIRD answering', up, 10000);
  return {dir, child, up};
}

test('on SIGTERM BIRD runs on until the controller has released it, then stops', async () => {
  const {dir, child, up} = await start('20s');
  child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  expect(await up()).toBe(true);
  expect(child.exitCode).toBeNull();
  const released = Date.now();
  await writeFile(join(dir, 'released'), 'now\n');
  const r = await child;
  expect(Date.now() - released).toBeLessThan(3000);
  expect(r.exitCode).toBe(0);
  expect(r.stderr).toContain('BIRD keeps its sessions until the controller has withdrawn the routes');
});

test('without the controller\'s word, BIRD stops after --grace', async () => {
  const {child} = await start('2s');
  const term = Date.now();
  child.kill('SIGTERM');
  const r = await child;
  expect(Date.now() - term).toBeGreaterThanOrEqual(1900);
  expect(Date.now() - term).toBeLessThan(6000);
  expect(r.exitCode).toBe(0);
});

test('BIRD killed ends the container with its status, for the kubelet to restart it', async () => {
  const {child, dir} = await start('20s');
  const pid = (await execa('pgrep', ['-f', '--', `bird -f -c ${join(dir, 'idle.conf')}`])).stdout.trim().split('\n')[0];
  process.kill(Number(pid), 'SIGKILL');
  const r = await child;
  expect(r.exitCode).toBe(128);
});

test('a bad flag is refused with the usage', async () => {
  const r = await execa(process.execPath, [join(repoRoot, 'bin/ipmanager.js'), 'bgp-speaker', '--grace=soon'], {reject: false});
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('unknown or bad flag --grace=soon');
  expect(r.stderr).toContain('Usage: ipmanager bgp-speaker');
});
