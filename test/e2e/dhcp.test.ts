/**
 * A Service's DHCP lease (agent/dhcp.ts) on real programs: Debian's dnsmasq
 * in a router's namespace serving a bridged segment, and the agent's
 * DhcpLease, with busybox's udhcpc, run inside the namespaces of two nodes
 * on that segment. What the server's lease table says is read from its
 * file; what the nodes hold, from `ip`.
 */
import {afterAll, beforeAll, expect, test} from '@jest/globals';
import {randomBytes} from 'node:crypto';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type ResultPromise, execa} from 'execa';
import {leaseHostname, leaseLink, leaseMac} from '../../agent/dhcp.js';
import {type DhcpServer, startDhcpServer} from '../lab/dhcp.js';
import {repoRoot} from '../helpers/root.js';

const id = `${process.pid}-${randomBytes(2).toString('hex')}`;
const router = `extip-dh-${id}-r`;
const nodes = [`extip-dh-${id}-1`, `extip-dh-${id}-2`];
let dir: string;
let server: DhcpServer;
const FIRST = 100;
const LAST = 119;

/** One node's DhcpLease for a Service, in the node's namespace: what it said (one JSON line each), and commands to it. */
interface Holder {
  said: Array<{lease?: {ip: string; server?: string; seconds: number} | null; error?: string | null; started?: boolean; done?: string}>;
  log: () => string;
  until(what: string, check: (s: Holder['said'][number]) => boolean, ms?: number): Promise<Holder['said'][number]>;
  /** `release`, `stop` (no release, the link removed: the node is gone) or `keep` (no release, the link left). */
  end(how: 'release' | 'stop' | 'keep'): Promise<void>;
}

const running: ResultPromise[] = [];

function holder(ns: string, service: string, requested?: string): Holder {
  const module = JSON.stringify(join(repoRoot, 'dist/agent/dhcp.js'));
  const world = JSON.stringify(join(repoRoot, 'dist/agent/world.js'));
  const script = `
    const {DhcpLease} = await import(${module});
    const {systemClock} = await import(${world});
    const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
    const log = {info: (l, m) => process.stderr.write('I ' + m + '\\n'), warn: (m) => process.stderr.write('W ' + m + '\\n'), error: (m) => process.stderr.write('E ' + m + '\\n')};
    const lease = new DhcpLease({service: ${JSON.stringify(service)}, lower: 'eth0', ${requested ? `requested: ${JSON.stringify(requested)},` : ''} log, clock: systemClock,
      onChange: (l, e) => say({lease: l ?? null, error: e ?? null})});
    await lease.start();
    say({started: true});
    process.stdin.on('data', async (d) => {
      const how = String(d).trim();
      if (how === 'release') await lease.release(); else await lease.stop({keepLink: how === 'keep'});
      say({done: how});
      process.exit(0);
    });`;
  const child = execa('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], {stdin: 'pipe', reject: false, buffer: false});
  running.push(child);
  const said: Holder['said'] = [];
  let err = '';
  let rest = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) said.push(JSON.parse(l));
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const h: Holder = {
    said,
    log: () => err,
    async until(what, check, ms = 20000) {
      const end = Date.now() + ms;
      for (;;) {
        const found = said.find(check);
        if (found) return found;
        if (Date.now() > end || child.exitCode !== null) throw new Error(`${ns}: not within ${ms} ms: ${what}\nsaid: ${said.map((s) => JSON.stringify(s)).join('\n')}\nlog:\n${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async end(how) {
      child.stdin!.write(`${how}\n`);
      await h.until(`ended (${how})`, (s) => s.done === how, 10000);
      await child;
    },
  };
  return h;
}

const ip = (ns: string, ...args: string[]) => execa('ip', ['-n', ns, ...args]);
/** The IPv4 addresses on a link of a node, none when there is no such link. */
const held = async (ns: string, link: string) => {
  const r = await execa('ip', ['-n', ns, '-j', '-4', 'address', 'show', 'dev', link], {reject: false});
  return r.exitCode === 0 ? (JSON.parse(r.stdout)[0]?.addr_info ?? []).map((a: {local: string; prefixlen: number}) => `${a.local}/${a.prefixlen}`) : [];
};
const linkMac = async (ns: string, link: string) => JSON.parse((await ip(ns, '-j', 'link', 'show', 'dev', link)).stdout)[0].address as string;
const reaches = async (addr: string) => (await execa('ip', ['netns', 'exec', router, 'ping', '-c', '1', '-W', '1', addr], {reject: false})).exitCode === 0;
const inRange = (addr: string) => {
  const last = Number(addr.split('.')[3]);
  return addr.startsWith('10.96.0.') && last >= FIRST && last <= LAST;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extip-test-dhcp-'));
  await execa('ip', ['netns', 'add', router]);
  await ip(router, 'link', 'set', 'lo', 'up');
  await ip(router, 'link', 'add', 'br0', 'type', 'bridge');
  await ip(router, 'address', 'add', '10.96.0.1/24', 'dev', 'br0');
  await ip(router, 'link', 'set', 'br0', 'up');
  for (const [i, ns] of nodes.entries()) {
    await execa('ip', ['netns', 'add', ns]);
    await ip(router, 'link', 'add', `v${i + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await ip(router, 'link', 'set', `v${i + 1}`, 'master', 'br0');
    await ip(router, 'link', 'set', `v${i + 1}`, 'up');
    await ip(ns, 'link', 'set', 'lo', 'up');
    await ip(ns, 'address', 'add', `10.96.0.${11 + i}/24`, 'dev', 'eth0');
    await ip(ns, 'link', 'set', 'eth0', 'up');
  }
  server = await startDhcpServer({ns: router, iface: 'br0', server: '10.96.0.1', first: `10.96.0.${FIRST}`, last: `10.96.0.${LAST}`, prefix: 24, dir});
}, 60000);

afterAll(async () => {
  for (const c of running) c.kill('SIGKILL');
  await server?.stop();
  for (const ns of [...nodes, router]) {
    const pids = (await execa('ip', ['netns', 'pids', ns], {reject: false})).stdout.split('\n').filter(Boolean);
    if (pids.length) await execa('kill', ['-9', ...pids], {reject: false});
    await execa('ip', ['netns', 'del', ns], {reject: false});
  }
  if (dir) await rm(dir, {recursive: true, force: true});
});

test('names from the Service: a locally administered unicast MAC, a link name that fits, a host name the server takes', () => {
  const mac = leaseMac('default/web');
  expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  expect(parseInt(mac.slice(0, 2), 16) & 0x03).toBe(0x02);
  expect(leaseMac('default/web')).toBe(mac);
  expect(leaseMac('default/web2')).not.toBe(mac);
  expect(leaseLink('default/web')).toMatch(/^exd[0-9a-f]{12}$/);
  expect(leaseHostname('Team_A/web.v2')).toBe('team-a-web-v2');
});

test('a lease on a macvlan with the Service\'s MAC; another node takes the same MAC over and gets the same address; a release leaves the server\'s table', async () => {
  const service = 'default/web';
  const link = leaseLink(service);
  const first = holder(nodes[0], service);
  const got = await first.until('a lease', (s) => Boolean(s.lease));
  const addr = got.lease!.ip;
  expect(inRange(addr)).toBe(true);
  expect(got.lease!.server).toBe('10.96.0.1');
  expect(await held(nodes[0], link)).toEqual([`${addr}/32`]);
  expect(await linkMac(nodes[0], link)).toBe(leaseMac(service));
  expect(await server.leases()).toEqual([expect.objectContaining({mac: leaseMac(service), ip: addr, hostname: 'default-web'})]);
  expect(await reaches(addr)).toBe(true);

  // The holder's node is lost (no release, its link gone); the next holder starts with the claim's address: up at once, then leased again.
  await first.end('stop');
  expect(await held(nodes[0], link)).toEqual([]);
  const second = holder(nodes[1], service, addr);
  await second.until('started', (s) => s.started === true);
  expect(await held(nodes[1], link)).toEqual([`${addr}/32`]);
  const again = await second.until('the lease', (s) => Boolean(s.lease));
  expect(again.lease!.ip).toBe(addr);
  expect(await server.leases()).toEqual([expect.objectContaining({mac: leaseMac(service), ip: addr})]);
  expect(await reaches(addr)).toBe(true);

  // The server restarts and the next holder knows no address (no claim record): the MAC alone gets the same one back.
  await second.end('stop');
  await server.stop();
  await server.start();
  const third = holder(nodes[0], service);
  const back = await third.until('the lease', (s) => Boolean(s.lease));
  expect(back.lease!.ip).toBe(addr);

  // The Service goes: the lease is released, and the link with its address.
  await third.end('release');
  expect(await server.leases()).toEqual([]);
  expect((await execa('ip', ['-n', nodes[0], 'link', 'show', 'dev', link], {reject: false})).exitCode).not.toBe(0);
  expect(third.log()).toContain('lease released');
}, 90000);

test('no server answers: the holder says so and tries again after a second, then twice as long; the lease once the server is back', async () => {
  await server.stop();
  const h = holder(nodes[1], 'team-a/db');
  const failed = await h.until('no server', (s) => Boolean(s.error), 20000);
  expect(failed.error).toMatch(new RegExp(`^no DHCP server answered 3 DISCOVERs from ${leaseLink('team-a/db')} \\(MAC ${leaseMac('team-a/db')}\\) on eth0; trying again in 1 s$`));
  const twice = await h.until('a second failure', (s) => Boolean(s.error?.endsWith('trying again in 2 s')), 20000);
  expect(twice.lease).toBeNull();
  await server.start();
  const got = await h.until('the lease', (s) => Boolean(s.lease), 30000);
  expect(inRange(got.lease!.ip)).toBe(true);
  await h.end('release');
  expect(await server.leases()).toEqual([]);
}, 90000);
