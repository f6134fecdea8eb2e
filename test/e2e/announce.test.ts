/**
 * The agent's ARP probe and announcement (agent/announce.ts), run with
 * the real arping and kernel in two network namespaces joined by a veth
 * pair: "holder" holds addresses, "newcomer" probes and announces.
 */
import {afterAll, beforeAll, expect, test} from '@jest/globals';
import {randomBytes} from 'node:crypto';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from '../helpers/root.js';

const id = `${process.pid}-${randomBytes(2).toString('hex')}`;
const holder = `extip-an-${id}-h`;
const newcomer = `extip-an-${id}-n`;
const module = join(repoRoot, 'dist/agent/announce.js');

const ip = (ns: string, ...args: string[]) => execa('ip', ['-n', ns, ...args]);
const mac = async (ns: string, dev: string) => JSON.parse((await ip(ns, '-j', 'link', 'show', 'dev', dev)).stdout)[0].address as string;

/** Calls one of announce.ts's functions inside the newcomer's namespace; returns its result and how long it took. */
async function inNewcomer(call: string): Promise<{result: unknown; ms: number}> {
  const script = `import(${JSON.stringify(module)}).then(async (m) => { const t = Date.now(); const result = await m.${call}; console.log(JSON.stringify({result, ms: Date.now() - t})); })`;
  const r = await execa('ip', ['netns', 'exec', newcomer, process.execPath, '-e', script]);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  await execa('ip', ['netns', 'add', holder]);
  await execa('ip', ['netns', 'add', newcomer]);
  await execa('ip', ['link', 'add', 'h0', 'netns', holder, 'type', 'veth', 'peer', 'name', 'n0', 'netns', newcomer]);
  for (const [ns, dev, addr] of [[holder, 'h0', '10.98.0.1/24'], [newcomer, 'n0', '10.98.0.2/24']]) {
    await ip(ns, 'link', 'set', 'lo', 'up');
    await ip(ns, 'link', 'set', dev, 'up');
    await ip(ns, 'address', 'add', addr, 'dev', dev);
  }
  await ip(holder, 'address', 'add', '10.98.0.7/32', 'dev', 'h0');
});

afterAll(async () => {
  for (const ns of [holder, newcomer]) await execa('ip', ['netns', 'del', ns], {reject: false});
});

test('a probe finds the host that answers for an address, by its MAC, without waiting out the timeout', async () => {
  const {result, ms} = await inNewcomer(`probeIPv4('n0', '10.98.0.7', 3000)`);
  expect(result).toEqual({taken: true, by: await mac(holder, 'h0')});
  expect(ms).toBeLessThan(3000);
});

test('a probe of an address nobody holds says free after the wait', async () => {
  const {result, ms} = await inNewcomer(`probeIPv4('n0', '10.98.0.8', 300)`);
  expect(result).toEqual({taken: false});
  expect(ms).toBeGreaterThanOrEqual(250);
});

test('a probe that cannot run says why instead of guessing', async () => {
  const {result} = await inNewcomer(`probeIPv4('nosuch0', '10.98.0.8', 300)`);
  expect(result).toEqual({unknown: expect.stringContaining('nosuch0')});
});

test('an announcement moves a neighbour\'s entry for the address to the announcer\'s MAC', async () => {
  // The holder believes 10.98.0.9 is at some other MAC, as a client of the previous holder does.
  await ip(holder, 'neigh', 'replace', '10.98.0.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'h0', 'nud', 'reachable');
  await ip(newcomer, 'address', 'add', '10.98.0.9/32', 'dev', 'n0');
  const {result} = await inNewcomer(`announceIPv4('n0', '10.98.0.9', 1)`);
  expect(result).toBeUndefined();
  const entry = JSON.parse((await ip(holder, '-j', 'neigh', 'show', '10.98.0.9', 'dev', 'h0')).stdout)[0];
  expect(entry.lladdr).toBe(await mac(newcomer, 'n0'));
});

test('an announcement that cannot be sent says why', async () => {
  const {result} = await inNewcomer(`announceIPv4('nosuch0', '10.98.0.9', 1)`);
  expect(result).toEqual(expect.stringContaining('nosuch0'));
});
