/**
 * `npm run lab`: comes up with the nodes and racks asked for, writes --info,
 * answers kubectl, routes from the client behind the core to every rack, and
 * on SIGTERM removes every namespace, process and directory.
 */
import {expect, test} from '@jest/globals';
import {type ChildProcess, spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {eventProgram, parseEventLine} from '../../agent/dhcp.js';
import {repoRoot} from '../helpers/root.js';
import {tempDir} from '../helpers/ansible.js';

/** `npm run lab` with these arguments and --info, until it says it is up: its output so far, its --info, and its exit. */
async function labUp(dir: string, args: string[]): Promise<{child: ChildProcess; out: () => string; info: any; exited: Promise<number | null>}> {
  const infoFile = join(dir, 'lab.json');
  const child = spawn(process.execPath, [join(repoRoot, 'dist/test/lab/up.js'), ...args, '--info', infoFile], {stdio: ['ignore', 'pipe', 'pipe']});
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 120_000;
  while (!out.includes('The lab is up') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
  expect(out).toContain('The lab is up');
  return {child, out: () => out, info: JSON.parse(await readFile(infoFile, 'utf8')), exited};
}

test('the lab comes up with --nodes, --racks and --info, and goes without a trace on SIGTERM', async () => {
  const dir = await tempDir();
  try {
    const {child, out: output, info, exited} = await labUp(dir.path, ['--nodes', '3', '--racks', '2']);
    // Nodes spread over the racks in order: node1 and node2 in rack 1, node3 in rack 2.
    expect(info.nodes.map((n: {name: string; ip: string; rack: number}) => [n.name, n.ip, n.rack])).toEqual([['node1', '10.210.1.11', 1], ['node2', '10.210.1.12', 1], ['node3', '10.210.2.13', 2]]);
    expect(Object.keys(info.inventories).sort()).toEqual(['kargo', 'kubespray']);
    expect(info.routers.map((r: {name: string; ip: string; role: string; rack?: number}) => [r.name, r.ip, r.role, r.rack])).toEqual([
      ['tor1', '10.210.1.1', 'tor', 1],
      ['tor2', '10.210.2.1', 'tor', 2],
      ['core', '192.168.192.1', 'core', undefined],
    ]);
    expect(info.router).toEqual({namespace: info.routers[0].namespace, ip: '10.210.1.1'});
    expect(info.client).toMatchObject({ip: '10.99.0.2', behind: 'core'});
    expect(info.etcd.endpoint).toBe('https://10.210.1.11:2379');
    const nodes = await execa(info.kubectl, ['--kubeconfig', info.kubeconfig, 'get', 'nodes', '-o', 'name'], {reject: false});
    expect(nodes.stdout.split('\n').sort()).toEqual(['node/node1', 'node/node2', 'node/node3']);
    // The client reaches both racks through the core and their ToRs; node1 reaches node3 the same way.
    for (const ip of ['10.210.1.12', '10.210.2.13']) expect((await execa('ip', ['netns', 'exec', info.client.namespace, 'ping', '-c', '1', '-W', '2', ip], {reject: false})).exitCode).toBe(0);
    const trace = await execa('ip', ['netns', 'exec', info.nodes[0].namespace, 'ping', '-c', '1', '-W', '2', '-R', '10.210.2.13'], {reject: false});
    expect(trace.exitCode).toBe(0);
    expect(trace.stdout).toContain('192.168.192.');
    const labDir = join(info.kubeconfig, '..', '..');
    expect(existsSync(labDir)).toBe(true);

    child.kill('SIGTERM');
    await exited;
    // The lab stopped in order (pods, then daemons), not only by the interrupted run's clean-up.
    expect(output()).toContain('lab: stopped in');
    const namespaces = (await execa('ip', ['netns', 'list'])).stdout;
    for (const n of [...info.nodes, ...info.routers, info.client]) expect(namespaces).not.toContain(n.namespace);
    expect(existsSync(labDir)).toBe(false);
    const left = await execa('pgrep', ['-f', labDir], {reject: false});
    expect(left.stdout).toBe('');
  } finally {
    await dir.cleanup();
  }
}, 180_000);

test('npm run lab refuses a bad --nodes, saying what it takes', async () => {
  const r = await execa(process.execPath, [join(repoRoot, 'dist/test/lab/up.js'), '--nodes', 'many'], {reject: false});
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('--nodes takes a whole number from 1 to 200, not many');
  const racks = await execa(process.execPath, [join(repoRoot, 'dist/test/lab/up.js'), '--nodes', '3', '--racks', '4'], {reject: false});
  expect(racks.exitCode).toBe(2);
  expect(racks.stderr).toContain('--racks takes a whole number from 1 to 3');
  const dual = await execa(process.execPath, [join(repoRoot, 'dist/test/lab/up.js'), '--nodes', '3', '--racks', '2', '--dual-stack'], {reject: false});
  expect(dual.exitCode).toBe(2);
  expect(dual.stderr).toContain('--dual-stack takes one rack: leave --racks out');
});

test('--dual-stack, --upnp and --dhcp: every host has its IPv6 address too, the ToR is a UPnP gateway and a DHCP server, --info says where, and the client reaches a node over IPv6', async () => {
  const dir = await tempDir();
  try {
    const {child, out, info, exited} = await labUp(dir.path, ['--nodes', '2', '--dual-stack', '--upnp', '--dhcp']);
    try {
      expect(info.nodes.map((n: {name: string; ip6: string}) => [n.name, n.ip6])).toEqual([['node1', 'fd10:210:1::b'], ['node2', 'fd10:210:1::c']]);
      expect(info.router.ip6).toBe('fd10:210:1::1');
      expect(info.client).toMatchObject({ip: '10.99.0.2', ip6: 'fd10:99::2'});
      expect(info.dualStack).toEqual({segment: 'fd10:210:1::/64', serviceCidr: 'fd00:10:96::/112'});
      expect(out()).toContain('fd10:210:1::b');
      expect(info.upnp).toMatchObject({gateway: 'http://10.210.1.1:5000/rootDesc.xml', external: '1.2.3.1', internet: {ip: '1.2.3.2'}});
      // The gateway describes itself to the segment as an Internet gateway device.
      const description = await execa('ip', ['netns', 'exec', info.nodes[0].namespace, 'curl', '-sf', info.upnp.gateway], {reject: false});
      expect(description.stdout).toMatch(/urn:schemas-upnp-org:device:InternetGatewayDevice:[12]/);
      // The ToR leases from its range to a client on a node (udhcpc on a macvlan, once, as the agent's image has it).
      expect(info.dhcp).toEqual({server: '10.210.1.1', range: '10.210.1.60-10.210.1.79'});
      expect(out()).toContain('leases 10.210.1.60-10.210.1.79');
      const node = info.nodes[0].namespace;
      await execa('ip', ['-n', node, 'link', 'add', 'link', 'eth0', 'name', 'dhcptest', 'address', '02:00:00:00:00:01', 'type', 'macvlan', 'mode', 'bridge']);
      await execa('ip', ['-n', node, 'link', 'set', 'dhcptest', 'up']);
      const leased = await execa('ip', ['netns', 'exec', node, 'udhcpc', '-f', '-q', '-n', '-B', '-t', '3', '-T', '1', '-i', 'dhcptest', '-s', await eventProgram()], {reject: false});
      await execa('ip', ['-n', node, 'link', 'del', 'dhcptest'], {reject: false});
      const bound = leased.stdout.split('\n').map(parseEventLine).find((e) => e?.event === 'bound');
      expect(bound?.ip).toMatch(/^10\.210\.1\.(6\d|7\d)$/);
      // The client reaches node2 through the ToR over IPv6; the API server takes a dual-stack Service.
      expect((await execa('ip', ['netns', 'exec', info.client.namespace, 'ping', '-6', '-c', '1', '-W', '2', 'fd10:210:1::c'], {reject: false})).exitCode).toBe(0);
      const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'both', namespace: 'default'}, spec: {ipFamilyPolicy: 'RequireDualStack', ports: [{port: 80}]}};
      const applied = await execa(info.kubectl, ['--kubeconfig', info.kubeconfig, 'apply', '-o', 'json', '-f', '-'], {input: JSON.stringify(svc), reject: false});
      expect(applied.exitCode).toBe(0);
      expect(JSON.parse(applied.stdout).spec.ipFamilies).toEqual(['IPv4', 'IPv6']);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  } finally {
    await dir.cleanup();
  }
}, 180_000);
