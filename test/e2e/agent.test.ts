/** The ipmanager agent (naive mode) in a lab node, against the lab API, with real iproute2. */
import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {waitFor} from '../lab/bgp.js';
import type {Daemon} from '../lab/procs.js';
import {repoRoot} from '../helpers/ansible.js';
import {useLab} from '../helpers/lab.js';

const lab = useLab({nodes: 1});

function startAgent(extra: string[] = []): Daemon {
  return lab.startIn('node1', process.execPath, [
    join(repoRoot, 'bin/ipmanager.js'), 'n', '--iface=lo', '--mask=32', `--kubeconfig=${join(lab.host('node1').root, 'etc/kubernetes/admin.conf')}`,
    '--resync=1s', '--health-port=9100', `--state-dir=${join(lab.dir, 'state-node1')}`, '--logtostderr', '--v=2', ...extra,
  ]);
}

async function lo(): Promise<string[]> {
  const a = JSON.parse((await lab.exec('node1', 'ip', ['-j', 'address', 'show', 'dev', 'lo'])).stdout);
  return a[0].addr_info.map((i: {local: string; prefixlen: number; label?: string}) => `${i.local}/${i.prefixlen}${i.label && i.label !== 'lo' ? ` ${i.label}` : ''}`);
}

async function service(name: string, ips: string[] | null) {
  if (ips === null) return lab.kubectl(['delete', 'service', name, '-n', 'default']);
  return lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ips}}));
}

async function get(path: string): Promise<{code: number; body: string}> {
  const r = await lab.exec('node1', process.execPath, ['-e', `fetch('http://127.0.0.1:9100${path}').then(async r => console.log(r.status + ' ' + await r.text()))`]);
  const [code, ...body] = r.stdout.split(' ');
  return {code: Number(code), body: body.join(' ')};
}

test('brings Service IPs up with its label, follows edits, skips bad entries, and never touches other addresses', async () => {
  await lab.exec('node1', 'ip', ['address', 'add', '10.0.0.50/32', 'dev', 'lo']); // the operator's
  // The API server refuses an entry that is not an IP (the agent skips one too: agent-unit.test.ts).
  expect((await service('web', ['10.0.0.7', 'not-an-ip'])).stderr).toContain('must be a valid IP address');
  await service('web', ['10.0.0.7', '10.0.0.8', '10.210.1.11']);
  const agent = startAgent();
  await waitFor('10.0.0.7 and 10.0.0.8 on lo', async () => {
    const a = await lo();
    return a.includes('10.0.0.7/32 lo:extip') && a.includes('10.0.0.8/32 lo:extip');
  });
  await waitFor('ready', async () => (await get('/readyz')).code === 200);
  // node1's own address (its InternalIP): refused before anything looks at the interfaces.
  expect(agent.output()).toContain('refused for Service default/web: external IP not brought up: 10.210.1.11: 10.210.1.11 is an address of node node1');

  await service('web', ['10.0.0.7']);
  await waitFor('10.0.0.8 removed', async () => !(await lo()).some((a) => a.startsWith('10.0.0.8/')));
  await service('other', ['10.0.0.7', '10.0.0.9']);
  await waitFor('10.0.0.9 up', async () => (await lo()).includes('10.0.0.9/32 lo:extip'));
  await service('web', null);
  await new Promise((r) => setTimeout(r, 300));
  expect(await lo()).toContain('10.0.0.7/32 lo:extip'); // still wanted by "other"

  const metrics = await get('/metrics');
  expect(metrics.body).toMatch(/^extip_desired_addresses 2$/m);
  expect(metrics.body).toMatch(/^extip_reconciles_total [1-9]\d*$/m);

  // SIGTERM withdraws its addresses, promptly, and only its own.
  const start = Date.now();
  await agent.stop('SIGTERM');
  expect(Date.now() - start).toBeLessThan(5000);
  expect(agent.child.exitCode).toBe(0);
  const after = await lo();
  expect(after.filter((a) => a.includes('lo:extip'))).toEqual([]);
  expect(after).toContain('10.0.0.50/32');
  await service('other', null);
});

test('hostile Services: only addresses inside --allowed-cidrs come up, each refusal is one Event on its Service, and the agent stays up', async () => {
  const hostile: Record<string, {ips: string[]; says: string}> = {
    'h-unspecified': {ips: ['0.0.0.0'], says: 'is the unspecified address'},
    'h-loopback': {ips: ['127.0.0.1'], says: 'is a loopback address (127.0.0.0/8)'},
    'h-multicast': {ips: ['224.0.0.1'], says: 'is a multicast address (224.0.0.0/4)'},
    'h-broadcast': {ips: ['255.255.255.255'], says: 'is the broadcast address'},
    'h-linklocal': {ips: ['169.254.1.1'], says: 'is a link-local address (169.254.0.0/16)'},
    'h-loopback6': {ips: ['::1'], says: 'is the loopback address'},
    'h-linklocal6': {ips: ['fe80::1'], says: 'is a link-local address (fe80::/10)'},
    'h-node': {ips: ['10.210.1.11'], says: 'is an address of node node1'},
    'h-service-cidr': {ips: ['10.96.0.10'], says: 'is inside the Service CIDR 10.96.0.0/12'},
    'h-pod-cidr': {ips: ['10.244.1.5'], says: 'is inside the pod CIDR 10.244.0.0/16'},
    'h-outside': {ips: ['10.0.0.7', '8.8.8.8'], says: '8.8.8.8 is outside the ranges external IPs may come from (10.0.0.0/24, fd00:1::/64)'},
    'h-same': {ips: ['10.0.0.7'], says: ''},
    'h-flood': {ips: Array.from({length: 10000}, (_, i) => `10.1.${Math.floor(i / 256)}.${i % 256}`), says: '10000 external IPs not brought up: 10.1.0.0: 10.1.0.0 is outside'},
  };
  // The API server refuses some of these itself; the agent must refuse whatever it lets through.
  const stored: string[] = [];
  for (const [name, h] of Object.entries(hostile)) if ((await service(name, h.ips)).exitCode === 0) stored.push(name);
  console.log(`hostile Services the API server stored: ${stored.join(' ')}; refused: ${Object.keys(hostile).filter((n) => !stored.includes(n)).join(' ')}`);
  expect(stored).toEqual(expect.arrayContaining(['h-outside', 'h-same', 'h-flood', 'h-node', 'h-service-cidr', 'h-pod-cidr']));
  const agent = startAgent(['--allowed-cidrs=10.0.0.0/24,fd00:1::/64', '--service-cidr=10.96.0.0/12', '--cluster-cidr=10.244.0.0/16']);
  try {
    await waitFor('10.0.0.7 up', async () => (await lo()).includes('10.0.0.7/32 lo:extip'));
    const events = async () => {
      const r = await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'reason=ExternalIPRefused', '-o', 'json']);
      return JSON.parse(r.stdout).items as Array<{involvedObject: {name: string}; message: string; type: string; count: number}>;
    };
    const expected = stored.filter((n) => hostile[n].says);
    await waitFor('an ExternalIPRefused Event on each stored hostile Service', async () => {
      const e = await events();
      return expected.every((n) => e.some((x) => x.involvedObject.name === n));
    }, 15000);
    // Several reconciles later (--resync=1s): still one Event each, never a storm.
    await new Promise((r) => setTimeout(r, 3500));
    const all = await events();
    for (const name of expected) {
      const mine = all.filter((x) => x.involvedObject.name === name);
      expect([name, mine.length]).toEqual([name, 1]);
      expect(mine[0]).toMatchObject({type: 'Warning', count: 1});
      expect(mine[0].message).toContain(hostile[name].says);
    }
    expect(all.filter((x) => x.involvedObject.name === 'h-same')).toEqual([]);
    // Exactly the allowed address is up, once for both Services that want it.
    expect((await lo()).filter((a) => a.includes('lo:extip'))).toEqual(['10.0.0.7/32 lo:extip']);
    const metrics = (await get('/metrics')).body;
    expect(metrics).toMatch(/^extip_refused_addresses\{rule="not-allowed"\} 10001$/m);
    expect(metrics).toMatch(/^extip_refused_addresses\{rule="node-address"\} 1$/m);
    expect((await get('/healthz')).code).toBe(200);
    // A change is a new Event: h-outside now asks for another address outside.
    await service('h-outside', ['10.0.0.7', '8.8.4.4']);
    await waitFor('a second Event on h-outside', async () => (await events()).filter((x) => x.involvedObject.name === 'h-outside').length === 2, 15000);
    expect(agent.child.exitCode).toBeNull();
  } finally {
    await agent.stop('SIGTERM');
    for (const name of stored) await service(name, null);
  }
}, 120000);

test('--keep-on-exit leaves the addresses up; the next start removes the stale ones', async () => {
  await service('keep', ['10.0.0.21', '10.0.0.22']);
  const first = startAgent(['--keep-on-exit']);
  await waitFor('both up', async () => (await lo()).filter((a) => a.includes('lo:extip')).length === 2);
  await first.stop('SIGTERM');
  expect((await lo()).filter((a) => a.includes('lo:extip')).length).toBe(2);
  await service('keep', ['10.0.0.21']);
  const second = startAgent();
  await waitFor('the stale 10.0.0.22 removed', async () => {
    const a = await lo();
    return a.includes('10.0.0.21/32 lo:extip') && !a.some((x) => x.startsWith('10.0.0.22/'));
  });
  await second.stop('SIGTERM');
  await service('keep', null);
  expect((await lo()).filter((a) => a.includes('lo:extip'))).toEqual([]);
});

test('IPv6: the addresses it adds are recorded and withdrawn; others stay', async () => {
  await lab.exec('node1', 'ip', ['-6', 'address', 'add', 'fd00::99/128', 'dev', 'lo']);
  await service('v6', ['fd00::7']);
  const agent = lab.startIn('node1', process.execPath, [
    join(repoRoot, 'bin/ipmanager.js'), 'n', '--iface=lo', '--mask=128', `--kubeconfig=${join(lab.host('node1').root, 'etc/kubernetes/admin.conf')}`, `--state-dir=${join(lab.dir, 'state-v6')}`, '--v=2',
  ]);
  await waitFor('fd00::7 up', async () => (await lo()).includes('fd00::7/128'));
  await agent.stop('SIGTERM');
  const after = await lo();
  if (after.includes('fd00::7/128')) console.log(`AGENT OUTPUT exit=${agent.child.exitCode} signal=${agent.child.signalCode}\n${agent.output()}`);
  expect(after).not.toContain('fd00::7/128');
  expect(after).toContain('fd00::99/128');
  await service('v6', null);
});

test('flags that cannot work exit 2 and say why, before anything runs', async () => {
  const r = await lab.exec('node1', process.execPath, [join(repoRoot, 'bin/ipmanager.js'), 'claimcontroller', '--iface=lo', '--hb=2s', '--monitor=1s']);
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('--monitor (1s) must be longer than --hb (2s)');
  const unknown = await lab.exec('node1', process.execPath, [join(repoRoot, 'bin/ipmanager.js'), 'claimcontrol']);
  expect(unknown.exitCode).toBe(2);
  expect(unknown.stderr).toContain('unknown command "claimcontrol"');
});

test('a burst of Service events costs few reconciles', async () => {
  const agent = startAgent(['--resync=60s']);
  try {
    await waitFor('ready', async () => (await get('/readyz')).code === 200);
    const reconciles = async () => Number(/^extip_reconciles_total (\d+)$/m.exec((await get('/metrics')).body)?.[1]);
    const before = await reconciles();
    // 100 Services created in one kubectl call, as fast as the API server takes them.
    const burst = Array.from({length: 100}, (_, i) => ({apiVersion: 'v1', kind: 'Service', metadata: {name: `burst-${i}`, namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: [`10.4.0.${i + 1}`]}}));
    expect((await lab.kubectl(['create', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'List', items: burst}))).exitCode).toBe(0);
    await waitFor('all 100 up', async () => (await lo()).filter((a) => a.startsWith('10.4.0.')).length === 100);
    const used = (await reconciles()) - before;
    // The API server takes the 100 creates one after another over a second or more; the agent
    // folds the events that arrive while it reconciles into the next reconcile. How many a
    // reconcile folds depends on how long one takes against the API server's pace (some 40
    // reconciles on a busy 2-core machine); one reconcile an event would be 100.
    expect(used).toBeLessThan(75);
    expect((await lab.kubectl(['delete', 'services', '-n', 'default', '--wait=false', ...burst.map((b) => b.metadata.name)])).exitCode).toBe(0);
    await waitFor('all 100 down', async () => (await lo()).filter((a) => a.startsWith('10.4.0.')).length === 0);
  } finally {
    await agent.stop('SIGTERM');
  }
});

test('a health port that is taken stops the agent at once with exit 1, saying so', async () => {
  const holder = lab.startIn('node1', process.execPath, ['-e', "require('net').createServer().listen(9101, '127.0.0.1')"]);
  await waitFor('port 9101 taken', async () => (await lab.exec('node1', 'socat', ['-u', 'OPEN:/dev/null', 'TCP:127.0.0.1:9101'])).exitCode === 0);
  const r = await lab.exec('node1', process.execPath, [join(repoRoot, 'bin/ipmanager.js'), 'n', '--iface=lo', '--health-port=9101', `--kubeconfig=${join(lab.host('node1').root, 'etc/kubernetes/admin.conf')}`, `--state-dir=${join(lab.dir, 'state-port')}`]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain('cannot serve --health-port=9101 on 127.0.0.1 (EADDRINUSE)');
  await holder.stop('SIGTERM');
});

test('an API outage keeps the addresses; the agent converges when the API returns', async () => {
  await service('outage', ['10.0.0.31', '10.0.0.32']);
  const agent = startAgent(['--resync=1s']);
  await waitFor('both up', async () => (await lo()).filter((a) => a.startsWith('10.0.0.3')).length === 2);
  // The API becomes unreachable from the node; meanwhile the Service changes and time passes.
  (await lab.apiProxy('node1')).refuse();
  await service('outage', ['10.0.0.31', '10.0.0.33']);
  await new Promise((r) => setTimeout(r, 2500));
  expect((await lo()).filter((a) => a.startsWith('10.0.0.3')).sort()).toEqual(['10.0.0.31/32 lo:extip', '10.0.0.32/32 lo:extip']);
  (await lab.apiProxy('node1')).resume();
  await waitFor('converged after the outage', async () => {
    const a = (await lo()).filter((x) => x.startsWith('10.0.0.3')).sort();
    return JSON.stringify(a) === JSON.stringify(['10.0.0.31/32 lo:extip', '10.0.0.33/32 lo:extip']);
  }, 60000);
  expect(agent.output()).toMatch(/keeping the current addresses|retrying in/);
  await agent.stop('SIGTERM');
  await service('outage', null);
});
