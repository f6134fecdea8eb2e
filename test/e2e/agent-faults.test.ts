/**
 * The agent under faults, run exactly as the role's manifest runs it (its
 * command and args from `extip render --manifests`, started the way the lab
 * kubelet starts containers), watched with `ip monitor`: an address it should
 * hold is never removed, whatever the API server does.
 */
import {afterEach, expect, test} from '@jest/globals';
import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import YAML from 'yaml';
import {waitFor} from '../lab/bgp.js';
import {type Daemon, startDaemon} from '../lab/procs.js';
import {repoRoot, tempDir} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';
import {useLab} from '../helpers/lab.js';

const lab = useLab({nodes: 1});
// A failed test must not leave agents that disturb the next one.
const started: Daemon[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((d) => d.stop('SIGTERM')));
});

/** The controller container's argv, as the role renders it for these variables. */
async function manifestArgv(sets: string[]): Promise<string[]> {
  const out = await tempDir();
  try {
    const r = await extip(['render', '--manifests', '--out', out.path, '--set', 'extip_distribution=all', '--set', 'extip_ctrl_app_kind=DaemonSet', ...sets.flatMap((s) => ['--set', s])]);
    expect(r.exitCode).toBe(0);
    const docs = YAML.parseAllDocuments(await readFile(join(out.path, 'extip_controller.yml'), 'utf8')).map((d) => d.toJS());
    const c = docs.find((d) => d?.kind === 'DaemonSet').spec.template.spec.containers[0];
    return [...c.command, ...c.args];
  } finally {
    await out.cleanup();
  }
}

/** Starts the agent as the lab kubelet starts the container: ipmanager is the package's bin, --state-dir per node. */
function runAgent(argv: string[], options: {kubeconfig?: string; extra?: string[]} = {}): Daemon {
  expect(argv[0]).toBe('ipmanager');
  const host = lab.host('node1');
  const d = lab.startIn('node1', process.execPath, [join(repoRoot, 'bin/ipmanager.js'), ...argv.slice(1), `--state-dir=${join(host.root, 'run/extip')}`, ...(options.extra ?? [])], {
    ...process.env,
    NODE_NAME: 'node1',
    KUBECONFIG: options.kubeconfig ?? join(host.root, 'etc/kubernetes/admin.conf'),
  });
  started.push(d);
  return d;
}

/** `ip monitor address` in node1: every line it prints, to check that nothing was ever deleted. */
function monitor(): {deleted: (ip: string) => string[]; stop: () => Promise<void>} {
  const d = startDaemon('ip', ['netns', 'exec', lab.host('node1').ns, 'ip', '-o', 'monitor', 'address']);
  return {
    deleted: (ip) => d.output().split('\n').filter((l) => l.startsWith('Deleted') && l.includes(` ${ip}/`)),
    stop: () => d.stop('SIGTERM'),
  };
}

async function addrs(dev: string): Promise<string[]> {
  const a = JSON.parse((await lab.exec('node1', 'ip', ['-j', 'address', 'show', 'dev', dev])).stdout);
  return a[0].addr_info.map((i: {local: string; prefixlen: number}) => `${i.local}/${i.prefixlen}`);
}

async function service(name: string, ips: string[] | null) {
  const r = ips === null
    ? await lab.kubectl(['delete', 'service', name, '-n', 'default', '--ignore-not-found'])
    : await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ips}}));
  // The API server's warnings (externalIPs are deprecated; an IPv6 address not in RFC 5952 form) are
  // no failure; anything else is.
  expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Warning: '))).toEqual([]);
  expect(r.exitCode).toBe(0);
}

const alive = (d: Daemon) => d.child.exitCode === null && d.child.signalCode === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('rides out an API outage and a restart with the API down, never dropping an address, without --health-port', async () => {
  // The role passes --health-port; the agent must ride it out without one too.
  const rendered = await manifestArgv(['extip_iface=lo', 'extip_mask=32']);
  expect(rendered).toContain('--health-port=10295');
  const argv = rendered.filter((a) => !a.startsWith('--health-port'));
  await service('outage', ['10.0.0.41', '10.0.0.42']);
  const mon = monitor();
  const first = runAgent(argv);
  await waitFor('both up', async () => (await addrs('lo')).filter((a) => a.startsWith('10.0.0.4')).length === 2);

  // An outage of several seconds: the agent stays, keeps its addresses, says what it waits for.
  await lab.k8s!.stopApiServer();
  await sleep(4000);
  expect(alive(first)).toBe(true);
  expect(first.output()).toMatch(/waiting for https:\/\/127\.0\.0\.1:6443.*keeping the current addresses/);
  await lab.k8s!.startApiServer();

  // A restart (no --keep-on-exit in the manifest, so it withdraws on SIGTERM; a crash does not):
  // kill -9, then start again while the API is down.
  await sleep(1500);
  await first.stop('SIGKILL');
  await lab.k8s!.stopApiServer();
  const second = runAgent(argv);
  await sleep(4000);
  expect(alive(second)).toBe(true);
  expect(second.output()).toMatch(/no address is touched until the Services are listed/);
  await lab.k8s!.startApiServer();
  await service('outage', ['10.0.0.41', '10.0.0.43']);
  await waitFor('converged after the API returned', async () => {
    const a = (await addrs('lo')).filter((x) => x.startsWith('10.0.0.4')).sort();
    return JSON.stringify(a) === JSON.stringify(['10.0.0.41/32', '10.0.0.43/32']);
  }, 60000).catch((err) => {
    throw new Error(`${err.message}\n${second.output()}`);
  });

  // And a restart with the API up: no gap either.
  await second.stop('SIGKILL');
  const third = runAgent(argv);
  await sleep(3000);
  expect(alive(third)).toBe(true);
  expect(mon.deleted('10.0.0.41')).toEqual([]);
  expect(mon.deleted('10.0.0.43')).toEqual([]);
  expect(mon.deleted('10.0.0.42').length).toBe(1); // the one the Service dropped
  await third.stop('SIGTERM');
  expect(third.child.exitCode).toBe(0);
  await mon.stop();
  await service('outage', null);
  expect((await addrs('lo')).filter((x) => x.startsWith('10.0.0.4'))).toEqual([]);
});

test('an API that answers 500 gets few, growing retries; /readyz is 503 until a list succeeds', async () => {
  // An HTTP "API server" in node1's namespace that answers every request with 500.
  const port = 18000 + Math.floor(Math.random() * 1000);
  const broken = lab.startIn('node1', process.execPath, ['-e', `
    let n = 0;
    require('http').createServer((req, res) => { n++; console.log('request ' + n + ' ' + req.url); res.writeHead(500, {'content-type': 'application/json'}).end('{"kind":"Status","code":500}'); }).listen(${port}, '127.0.0.1');
  `]);
  const dir = await tempDir();
  const kubeconfig = join(dir.path, 'broken.conf');
  await writeFile(kubeconfig, YAML.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'x',
    clusters: [{name: 'x', cluster: {server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true}}],
    users: [{name: 'x', user: {token: 'x'}}], contexts: [{name: 'x', context: {cluster: 'x', user: 'x'}}],
  }));
  const healthPort = 19100 + Math.floor(Math.random() * 500);
  const agent = runAgent(await manifestArgv(['extip_iface=lo']), {kubeconfig, extra: [`--health-port=${healthPort}`]});
  await sleep(10000);
  // The Services' list and watch (the Nodes' list retries on its own backoff).
  const requests = broken.output().split('\n').filter((l) => /^request \d+ \/api\/v1\/services/.test(l)).length;
  const ready = await lab.exec('node1', process.execPath, ['-e', `fetch('http://127.0.0.1:${healthPort}/readyz').then(r => console.log(r.status))`]);
  expect(alive(agent)).toBe(true);
  expect(ready.stdout.trim()).toBe('503');
  // 0.5 s doubling to a 30 s cap, with jitter: at most 6 tries in 10 s (one every 0.5 s would be 20).
  expect(requests).toBeGreaterThanOrEqual(2);
  expect(requests).toBeLessThanOrEqual(6);
  await agent.stop('SIGTERM');
  await broken.stop('SIGTERM');
  await dir.cleanup();
});

test('two agents of different workloads on one node: stopping one leaves the address the other wants', async () => {
  const a = runAgent(await manifestArgv(['extip_iface=lo', 'extip_mask=32', 'extip_ctrl_app=old-controller']));
  // Two agents in one network namespace: the second serves its health port elsewhere.
  const b = runAgent(await manifestArgv(['extip_iface=lo', 'extip_mask=32', 'extip_ctrl_app=new-controller']), {extra: ['--health-port=10296']});
  await service('shared', ['10.0.0.51']);
  await waitFor('10.0.0.51 up', async () => (await addrs('lo')).includes('10.0.0.51/32'));
  await sleep(1500); // both have reconciled and recorded it
  const mon = monitor();
  await sleep(300);
  await a.stop('SIGTERM');
  await sleep(1000);
  expect(mon.deleted('10.0.0.51')).toEqual([]);
  expect(await addrs('lo')).toContain('10.0.0.51/32');
  // The one left withdraws it when it goes too.
  await b.stop('SIGTERM');
  expect(await addrs('lo')).not.toContain('10.0.0.51/32');
  await mon.stop();
  await service('shared', null);
});

test('IPv6: its own prefix, canonical addresses, IPv4-mapped refused, failed adds not recorded', async () => {
  const argv = await manifestArgv(['extip_iface=lo', 'extip_mask=32']);
  // Kubernetes 1.36 refuses an IPv4-mapped address itself; 1.34 takes it with a warning, and then the
  // agent must skip it. Either way it never comes up.
  const mapped = await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'v6', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['::ffff:10.1.1.1']}}));
  const apiRefuses = mapped.exitCode !== 0;
  if (apiRefuses) expect(mapped.stderr).toContain('must not be an IPv4-mapped IPv6 address');
  else expect(mapped.stderr).toContain('non-standard IP address "::ffff:10.1.1.1"');
  await service('v6', apiRefuses ? ['FD00:0:0::0007', '10.0.0.61'] : ['FD00:0:0::0007', '::ffff:10.1.1.1', '10.0.0.61']);
  const agent = runAgent(argv);
  await waitFor('fd00::7/128 and 10.0.0.61/32 up', async () => {
    const a = await addrs('lo');
    return a.includes('fd00::7/128') && a.includes('10.0.0.61/32');
  });
  const lo = await addrs('lo');
  expect(lo.filter((x) => x.startsWith('fd00::7/'))).toEqual(['fd00::7/128']);
  expect(lo.some((x) => x.startsWith('::/') || x.startsWith('::ffff'))).toBe(false);
  if (!apiRefuses) expect(agent.output()).toContain('skip ::ffff:10.1.1.1 of Service default/v6: an IPv4-mapped IPv6 address');
  await agent.stop('SIGTERM');
  expect((await addrs('lo')).filter((x) => x.startsWith('fd00::7') || x.startsWith('10.0.0.61'))).toEqual([]);

  // An add the kernel refuses (IPv6 off on eth0) leaves no trace in the record.
  await lab.exec('node1', 'sysctl', ['-qw', 'net.ipv6.conf.eth0.disable_ipv6=1']);
  await service('v6', ['fd00::8']);
  const eth0 = runAgent(await manifestArgv(['extip_iface=eth0']));
  await waitFor('the add was tried', async () => eth0.output().includes('fd00::8'));
  await sleep(500);
  const record = JSON.parse(await readFile(join(lab.host('node1').root, 'run/extip/owners/eth0/default.claimcontroller.json'), 'utf8'));
  expect(record.addresses).toEqual([]);
  await eth0.stop('SIGTERM');
  await lab.exec('node1', 'sysctl', ['-qw', 'net.ipv6.conf.eth0.disable_ipv6=0']);
  await service('v6', null);
});

test('a shared /24 on eth0: removing the primary never takes the other Service\'s address down', async () => {
  await lab.exec('node1', 'sysctl', ['-qw', 'net.ipv4.conf.eth0.promote_secondaries=0']);
  const argv = await manifestArgv(['extip_iface=eth0', 'extip_mask=24']);
  await service('first', ['10.50.0.10']);
  const agent = runAgent(argv);
  await waitFor('10.50.0.10/24 up', async () => (await addrs('eth0')).includes('10.50.0.10/24'));
  await service('second', ['10.50.0.11']);
  await waitFor('10.50.0.11/24 up', async () => (await addrs('eth0')).includes('10.50.0.11/24'));
  const mon = monitor();
  await sleep(300);
  await service('first', null);
  await waitFor('10.50.0.10 gone', async () => !(await addrs('eth0')).includes('10.50.0.10/24'));
  await sleep(500);
  expect(mon.deleted('10.50.0.11')).toEqual([]);
  expect(await addrs('eth0')).toContain('10.50.0.11/24');
  await agent.stop('SIGTERM');
  await mon.stop();
  await service('second', null);
  expect((await addrs('eth0')).filter((a) => a.startsWith('10.50.'))).toEqual([]);
});

test('a watch that expires (410 Gone) while the node was cut off and the API restarted: a fresh list, no address dropped', async () => {
  const argv = await manifestArgv(['extip_iface=lo', 'extip_mask=32']);
  await service('gone', ['10.0.0.71', '10.0.0.72']);
  const agent = runAgent(argv, {extra: ['--v=1']});
  await waitFor('both up', async () => (await addrs('lo')).filter((a) => a.startsWith('10.0.0.7')).length === 2);
  const mon = monitor();
  await sleep(300);
  // The node loses the API; the Service changes; kube-apiserver restarts over a compacted etcd,
  // so its watch cache starts after the version the agent's watch resumes from.
  (await lab.apiProxy('node1')).refuse();
  await service('gone', ['10.0.0.71', '10.0.0.73']);
  await lab.k8s!.stopApiServer();
  await lab.k8s!.compactEtcd();
  await lab.k8s!.startApiServer();
  expect(alive(agent)).toBe(true);
  (await lab.apiProxy('node1')).resume();
  await waitFor('converged after the watch expired', async () => {
    const a = (await addrs('lo')).filter((x) => x.startsWith('10.0.0.7')).sort();
    return JSON.stringify(a) === JSON.stringify(['10.0.0.71/32', '10.0.0.73/32']);
  }, 60000).catch((err) => {
    throw new Error(`${err.message}\n${agent.output()}`);
  });
  expect(agent.output()).toMatch(/the Services watch from resourceVersion \d+ expired \(410 Gone\); listing again/);
  expect(mon.deleted('10.0.0.71')).toEqual([]);
  await agent.stop('SIGTERM');
  await mon.stop();
  await service('gone', null);
});

test('a stalled connection to the API (no answer, no close): addresses kept; the change lands when it flows again', async () => {
  const argv = await manifestArgv(['extip_iface=lo', 'extip_mask=32']);
  await service('stall', ['10.0.0.81']);
  const agent = runAgent(argv);
  await waitFor('10.0.0.81 up', async () => (await addrs('lo')).includes('10.0.0.81/32'));
  const mon = monitor();
  await sleep(300);
  (await lab.apiProxy('node1')).stall();
  await service('stall', ['10.0.0.81', '10.0.0.82']);
  await sleep(3000);
  expect(alive(agent)).toBe(true);
  expect((await addrs('lo')).filter((a) => a.startsWith('10.0.0.8'))).toEqual(['10.0.0.81/32']);
  (await lab.apiProxy('node1')).resume();
  await waitFor('10.0.0.82 up after the stall', async () => (await addrs('lo')).includes('10.0.0.82/32'), 60000);
  expect(mon.deleted('10.0.0.81')).toEqual([]);
  await agent.stop('SIGTERM');
  await mon.stop();
  await service('stall', null);
});
