/**
 * Claims mode end to end on the lab's real control plane: the role installs
 * the scheduler and the claim controllers (balance), which the lab kubelets
 * run; Services' external IPs become IpClaims, brought up on eth0 of one node
 * each. Every placement is checked on the nodes' interfaces, sampled so that
 * no moment shows two holders of one address.
 */
import {afterAll, beforeAll, expect, test} from '@jest/globals';
import {Lab} from './lab/lab.js';
import {waitFor} from './lab/bgp.js';
import {explain, runRole} from './helpers/role.js';

const IPS = Array.from({length: 6}, (_, i) => `10.210.1.${101 + i}`);
const vars = {
  extip_distribution: 'balance',
  extip_ctrl_app_kind: 'DaemonSet',
  extip_namespace: 'extip',
  extip_iface: 'eth0',
  extip_mask: 32,
};

let lab: Lab;
beforeAll(async () => {
  lab = await Lab.start({nodes: 3});
  const run = await runRole(lab, {vars});
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
});
afterAll(async () => lab?.stop());

/** Which nodes have each of IPS on eth0. */
async function holders(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = Object.fromEntries(IPS.map((ip) => [ip, []]));
  await Promise.all(lab.hosts.map(async (h) => {
    const r = await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    const addrs = r.exitCode === 0 ? (JSON.parse(r.stdout)[0]?.addr_info ?? []).map((a: {local: string}) => a.local) : [];
    for (const ip of IPS) if (addrs.includes(ip)) out[ip].push(h.name);
  }));
  return out;
}

async function claims(): Promise<Record<string, string>> {
  const r = await lab.kubectl(['get', 'ipclaims', '-o', 'json']);
  const items = JSON.parse(r.stdout).items as Array<{spec: {cidr: string; nodeName: string}}>;
  return Object.fromEntries(items.map((c) => [c.spec.cidr.split('/')[0], c.spec.nodeName]));
}

async function claimReasons(): Promise<Record<string, string>> {
  const r = await lab.kubectl(['get', 'ipclaims', '-o', 'json']);
  const items = JSON.parse(r.stdout).items as Array<{spec: {cidr: string}; status?: {reason?: string}}>;
  return Object.fromEntries(items.map((c) => [c.spec.cidr.split('/')[0], c.status?.reason ?? '']));
}

/** Samples the holders every 50 ms while `during` runs; fails on any moment with two holders of one address. */
async function neverTwo<T>(during: () => Promise<T>): Promise<T> {
  let done = false;
  const doubles: string[] = [];
  const sampler = (async () => {
    while (!done) {
      const h = await holders();
      for (const [ip, nodes] of Object.entries(h)) if (nodes.length > 1) doubles.push(`${ip} on ${nodes.join(' and ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return await during();
  } finally {
    done = true;
    await sampler;
    expect(doubles).toEqual([]);
  }
}

const count = (h: Record<string, string[]>, node: string) => Object.values(h).filter((n) => n.includes(node)).length;

async function controllerPod(node: string): Promise<string> {
  const r = await lab.kubectl(['get', 'pods', '-n', 'extip', '-l', 'app.kubernetes.io/component=controller', '--field-selector', `spec.nodeName=${node}`, '-o', 'jsonpath={.items[0].metadata.name}']);
  return r.stdout.trim();
}

test('balance: 6 addresses on 3 nodes, 2 each, each up exactly where its claim says', async () => {
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'six', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: IPS}};
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).exitCode).toBe(0);
  await waitFor('every address on one node', async () => Object.values(await holders()).every((n) => n.length === 1), 60000);
  const h = await holders();
  for (const node of ['node1', 'node2', 'node3']) expect(count(h, node)).toBe(2);
  const c = await claims();
  for (const ip of IPS) expect(h[ip]).toEqual([c[ip]]);
});

test('a drain (SIGTERM) moves the node\'s addresses without waiting for the heartbeat timeout; it gets its share back after', async () => {
  const before = await holders();
  const mine = IPS.filter((ip) => before[ip].includes('node1'));
  expect(mine.length).toBe(2);
  const pod = await controllerPod('node1');
  await neverTwo(async () => {
    const started = Date.now();
    expect((await lab.kubectl(['delete', 'pod', '-n', 'extip', pod, '--wait=false'])).exitCode).toBe(0);
    await waitFor('node1\'s addresses up elsewhere', async () => {
      const h = await holders();
      return mine.every((ip) => h[ip].length === 1 && !h[ip].includes('node1'));
    }, 30000);
    // Well inside the 2 s heartbeat timeout plus the grace it would take otherwise.
    expect(Date.now() - started).toBeLessThan(5000);
  });
  // The DaemonSet starts a new controller on node1; fair gives it claims again,
  // each handed off: the holder lets go before node1 brings it up.
  await neverTwo(() => waitFor('node1 holds addresses again', async () => count(await holders(), 'node1') === 2, 60000));
});

test('a lost node: its addresses come up elsewhere, it fences itself, and holds none when it returns', async () => {
  const before = await holders();
  const mine = IPS.filter((ip) => before[ip].includes('node2'));
  expect(mine.length).toBe(2);
  await neverTwo(async () => {
    await lab.loseNode('node2');
    await waitFor('node2\'s addresses on the others', async () => {
      const h = await holders();
      return mine.every((ip) => h[ip].length === 1 && !h[ip].includes('node2'));
    }, 30000);
  });
  // Cut off, node2 took them down itself.
  expect(count(await holders(), 'node2')).toBe(0);
  const c = await claims();
  for (const ip of mine) expect(c[ip]).not.toBe('node2');
  await neverTwo(async () => {
    await lab.restoreNode('node2');
    await waitFor('node2 serves its share again', async () => count(await holders(), 'node2') === 2, 60000);
  });
  // Both came from live nodes, so each was handed off: asked, let go, then assigned.
  const reasons = await claimReasons();
  const back = Object.entries(await claims()).filter(([, node]) => node === 'node2').map(([ip]) => reasons[ip]);
  expect(back).toHaveLength(2);
  for (const reason of back) expect(reason).toMatch(/^rebalancing: .* let go first$/);
});

test('the scheduler\'s leader goes: the standby takes over and new addresses are still placed', async () => {
  const lease = async () => JSON.parse((await lab.kubectl(['get', 'lease', 'claimscheduler', '-n', 'extip', '-o', 'json'])).stdout).spec.holderIdentity as string;
  const leader = await lease();
  const pod = leader.split('_')[0];
  expect((await lab.kubectl(['delete', 'pod', '-n', 'extip', pod])).exitCode).toBe(0);
  await waitFor('another leader', async () => {
    const now = await lease();
    return Boolean(now) && !now.startsWith(`${pod}_`);
  }, 30000);
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'six', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: IPS.slice(0, 5)}};
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).exitCode).toBe(0);
  await waitFor('the dropped address gone', async () => (await holders())[IPS[5]].length === 0 && !(IPS[5] in (await claims())), 30000);
});

test('single: every address on one node; uninstall takes every address down', async () => {
  const run = await runRole(lab, {vars: {...vars, extip_distribution: 'single'}});
  expect(run.exitCode).toBe(0);
  await waitFor('all on one node', async () => {
    const h = await holders();
    const nodes = new Set(Object.values(h).flat());
    return Object.values(h).slice(0, 5).every((n) => n.length === 1) && nodes.size === 1;
  }, 60000);
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars});
  expect(removal.exitCode).toBe(0);
  await waitFor('no address left', async () => Object.values(await holders()).every((n) => n.length === 0), 30000);
  await lab.kubectl(['delete', 'service', 'six', '-n', 'default']);
});
