/**
 * The simulated hosts the claim controller's tests run on
 * (test/helpers/simhost.ts) held to the real ones: one script of host
 * operations run on the agent's own `realHost` (agent/world.ts) inside a
 * network namespace, with `ip`, sysfs and arping, and on a SimHost; the
 * answers must be the same. Two namespaces joined by a veth pair stand for
 * two nodes on a segment: "a" runs the script, "b" holds an address and can
 * pull the cable (its end of the pair down).
 */
import {afterAll, beforeAll, expect, test} from '@jest/globals';
import {randomBytes} from 'node:crypto';
import {join} from 'node:path';
import {execa} from 'execa';
import type {HostAddress} from '../../agent/addresses.js';
import {repoRoot} from '../helpers/root.js';
import {SimSegment} from '../helpers/simhost.js';

const id = `${process.pid}-${randomBytes(2).toString('hex')}`;
const nsA = `extip-sh-${id}-a`;
const nsB = `extip-sh-${id}-b`;
const world = join(repoRoot, 'dist/agent/world.js');

const ip = (ns: string, ...args: string[]) => execa('ip', ['-n', ns, ...args]);

/** Calls a method of realHost inside namespace a; its result. */
async function realCall(call: string): Promise<any> {
  const script = `import(${JSON.stringify(world)}).then(async (m) => { const r = await m.realHost.${call}; console.log(JSON.stringify(r ?? null)); })`;
  const r = await execa('ip', ['netns', 'exec', nsA, process.execPath, '-e', script]);
  return JSON.parse(r.stdout);
}

/** What the script can do to a world: run host calls on a, and hold an address on b or cut b's cable. */
interface Side {
  call(method: string, ...args: unknown[]): Promise<any>;
  holdOnB(cidr: string): Promise<void>;
  cable(up: boolean): Promise<void>;
  /** Lets time pass (duplicate address detection runs meanwhile). */
  wait(ms: number): Promise<void>;
  bMac: string;
}

/** One script, its answers in order: what a controller asks of its host, in the order it asks it. */
async function script(s: Side): Promise<Array<[string, unknown]>> {
  const out: Array<[string, unknown]> = [];
  const step = async (what: string, method: string, ...args: unknown[]) => {
    let r = await s.call(method, ...args);
    if (method === 'ipBatch') r = {exitCode: r.exitCode, stderr: r.stderr.trim().split('\n').filter(Boolean)};
    // The addresses of a0 but its link-local one, which the kernel makes and the simulation does not.
    if (method === 'addresses') {
      r = (r as HostAddress[]).filter((a) => a.iface === 'a0' && !a.ip.startsWith('fe80:'))
        .map((a) => `${a.ip}/${a.prefix} ${a.label ?? '-'}${a.tentative ? ' tentative' : ''}${a.dadfailed ? ' dadfailed' : ''}`);
    }
    if (method === 'probeIPv4' && r.taken) r = {taken: true, byB: r.by === s.bMac};
    if (r === undefined) r = null;
    out.push([what, r]);
  };
  await step('add two, one labelled', 'ipBatch', ['address add 10.97.0.10/32 dev a0 label a0:extip', 'address add 10.97.0.11/32 dev a0']);
  await step('add one present, remove one absent, remove one present', 'ipBatch', ['address add 10.97.0.10/32 dev a0', 'address del 10.97.0.12/32 dev a0', 'address del 10.97.0.11/32 dev a0']);
  await step('addresses of a0', 'addresses');
  await step('link of a0', 'linkState', 'a0');
  await step('link of an interface that is not there', 'linkState', 'nosuch0');
  await s.holdOnB('10.97.0.20/32');
  await step('probe of an address b holds', 'probeIPv4', 'a0', '10.97.0.20', 300);
  await step('probe of an address nobody holds', 'probeIPv4', 'a0', '10.97.0.21', 300);
  await step('announce', 'announceIPv4', 'a0', '10.97.0.10', 1);
  await s.cable(false);
  await step('link of a0, its cable cut', 'linkState', 'a0');
  await s.cable(true);
  await step('link of a0, the cable back', 'linkState', 'a0');
  // IPv6: duplicate address detection, against an address b holds.
  await s.holdOnB('fd00:97::20/128');
  await s.wait(2500);
  await step('add two IPv6 addresses, one that b holds', 'ipBatch', ['address add fd00:97::10/128 dev a0', 'address add fd00:97::20/128 dev a0']);
  await step('addresses of a0 while DAD runs', 'addresses');
  await step('add an IPv6 address present, remove one absent', 'ipBatch', ['address add fd00:97::10/128 dev a0', 'address del fd00:97::12/128 dev a0']);
  await s.wait(2500);
  await step('addresses of a0 after DAD', 'addresses');
  await step('remove', 'ipBatch', ['address del 10.97.0.10/32 dev a0', 'address del fd00:97::10/128 dev a0', 'address del fd00:97::20/128 dev a0']);
  await step('addresses of a0 at the end', 'addresses');
  return out;
}

beforeAll(async () => {
  await execa('ip', ['netns', 'add', nsA]);
  await execa('ip', ['netns', 'add', nsB]);
  await execa('ip', ['link', 'add', 'a0', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'b0', 'netns', nsB]);
  for (const [ns, dev, addr] of [[nsA, 'a0', '10.97.0.1/24'], [nsB, 'b0', '10.97.0.2/24']]) {
    await ip(ns, 'link', 'set', 'lo', 'up');
    await ip(ns, 'link', 'set', dev, 'up');
    await ip(ns, 'address', 'add', addr, 'dev', dev);
  }
});

afterAll(async () => {
  for (const ns of [nsA, nsB]) await execa('ip', ['netns', 'del', ns], {reject: false});
});

test('a simulated host answers what the real one (ip, sysfs, arping in a namespace) answers', async () => {
  const bMac = JSON.parse((await ip(nsB, '-j', 'link', 'show', 'dev', 'b0')).stdout)[0].address as string;
  const real = await script({
    call: (method, ...args) => realCall(`${method}(${args.map((a) => JSON.stringify(a)).join(', ')})`),
    holdOnB: async (cidr) => void (await ip(nsB, 'address', 'add', cidr, 'dev', 'b0')),
    cable: async (up) => {
      await ip(nsB, 'link', 'set', 'b0', up ? 'up' : 'down');
      // The carrier of a0 follows its peer's state asynchronously.
      for (let i = 0; i < 20 && ((await realCall(`linkState('a0')`)) === 'up') !== up; i++) await new Promise((r) => setTimeout(r, 20));
    },
    wait: (ms) => new Promise((r) => setTimeout(r, ms)),
    bMac,
  });
  const segment = new SimSegment();
  const a = segment.add('a', 'a0', '10.97.0.1');
  const b = segment.add('b', 'b0', '10.97.0.2');
  const sim = await script({
    call: (method, ...args) => (a as any)[method](...args),
    holdOnB: async (cidr) => void (await b.ipBatch([`address add ${cidr} dev b0`])),
    cable: async (up) => void (a.linkUp = up),
    wait: (ms) => new Promise((r) => setTimeout(r, ms)),
    bMac: b.mac,
  });
  expect(sim).toEqual(real);
  // And what the real one said, so that a change in either is seen for what it is.
  expect(Object.fromEntries(real)).toEqual({
    'add two, one labelled': {exitCode: 0, stderr: []},
    'add one present, remove one absent, remove one present': {exitCode: 1, stderr: ['Error: ipv4: Address already assigned.', 'Command failed -:1', 'Error: ipv4: Address not found.', 'Command failed -:2']},
    'addresses of a0': ['10.97.0.1/24 a0', '10.97.0.10/32 a0:extip'],
    'link of a0': 'up',
    'link of an interface that is not there': 'gone',
    'probe of an address b holds': {taken: true, byB: true},
    'probe of an address nobody holds': {taken: false},
    'announce': null,
    'link of a0, its cable cut': 'down',
    'link of a0, the cable back': 'up',
    'add two IPv6 addresses, one that b holds': {exitCode: 0, stderr: []},
    'addresses of a0 while DAD runs': ['10.97.0.1/24 a0', '10.97.0.10/32 a0:extip', 'fd00:97::20/128 - tentative', 'fd00:97::10/128 - tentative'],
    'add an IPv6 address present, remove one absent': {exitCode: 1, stderr: ['Error: ipv6: address already assigned.', 'Command failed -:1', 'Error: ipv6: address not found.', 'Command failed -:2']},
    'addresses of a0 after DAD': ['10.97.0.1/24 a0', '10.97.0.10/32 a0:extip', 'fd00:97::20/128 - tentative dadfailed', 'fd00:97::10/128 -'],
    'remove': {exitCode: 0, stderr: []},
    'addresses of a0 at the end': ['10.97.0.1/24 a0'],
  });
});
