/**
 * Claims-mode benchmark (balance, installed by the role with its defaults on
 * a 3-node lab's real control plane):
 *  - latency from creating a Service with an external IP to the address being
 *    up on some node's interface, p50/p99 over 200 Services (seen with `ip
 *    monitor`): the scheduler's claim, the controller's ARP probe (--dad-wait,
 *    100 ms by default) and the bring-up;
 *  - cold convergence of 1,000 Services: the scheduler scaled to 0, the
 *    Services created, then the scheduler started: time to all 1,000
 *    addresses up, and how evenly they landed.
 * Baselines measured in the same run: the naive agent's latency for the same
 * 200 Services on the same lab (no claim, no probe), and for convergence the
 * floor of one `ip -batch` of the same addresses plus one list of the Services.
 * Usage: npm run bench:claims
 */
import {join} from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {execa} from 'execa';
import {Lab} from '../lab/lab.js';
import {waitFor} from '../lab/bgp.js';
import {repoRoot} from '../lab/tools.js';
import {explain, runRole} from '../helpers/role.js';
import {hrms, inBatches, monitorAddresses, percentile} from './common.js';

const LATENCY_SERVICES = 200;
const COLD_SERVICES = 1000;
const lab = await Lab.start({nodes: 3});
const kc = new k8s.KubeConfig();
kc.loadFromFile(lab.api.kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);

const ipOf = (block: number, i: number) => `10.${block}.${Math.floor(i / 250)}.${(i % 250) + 1}`;

async function createService(name: string, ip: string) {
  await core.createNamespacedService({namespace: 'default', body: {apiVersion: 'v1', kind: 'Service', metadata: {name}, spec: {ports: [{port: 80}], externalIPs: [ip]}}});
}

/** Creates the Services one at a time and times each to its address appearing on `dev` of any node. */
async function latencies(prefix: string, block: number, dev: string): Promise<number[]> {
  const seen = new Map<string, number>();
  const monitors = lab.hosts.map((h) => monitorAddresses(lab, h.name, (cidr, at, d) => d === dev && !seen.has(cidr) && seen.set(cidr, at)));
  await new Promise((r) => setTimeout(r, 300));
  const out: number[] = [];
  try {
    for (let i = 0; i < LATENCY_SERVICES; i++) {
      const ip = ipOf(block, i);
      const start = hrms();
      await createService(`${prefix}-${i}`, ip);
      const deadline = start + 10000;
      while (!seen.has(`${ip}/32`) && hrms() < deadline) await new Promise((r) => setTimeout(r, 1));
      if (!seen.has(`${ip}/32`)) throw new Error(`${ip} never came up on ${dev}`);
      out.push(seen.get(`${ip}/32`)! - start);
    }
  } finally {
    await Promise.all(monitors.map((m) => m.stop()));
  }
  await inBatches(LATENCY_SERVICES, (i) => core.deleteNamespacedService({namespace: 'default', name: `${prefix}-${i}`}));
  return out.sort((a, b) => a - b);
}

async function kubectlOk(args: string[]) {
  const r = await lab.kubectl(args);
  if (r.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

try {
  // The baseline: the naive agent on node1's lo, started by hand, for the same Services.
  const node1 = lab.host('node1');
  const naive = lab.startIn('node1', process.execPath, [
    join(repoRoot, 'bin/ipmanager.js'), 'n', '--iface=lo', '--mask=32', `--kubeconfig=${join(node1.root, 'etc/kubernetes/admin.conf')}`,
    `--state-dir=${join(node1.root, 'run/extip-bench')}`, '--resync=60s',
  ]);
  await new Promise((r) => setTimeout(r, 1500));
  const naiveLat = await latencies('naive', 30, 'lo');
  await naive.stop('SIGTERM');

  // Claims mode, as the role installs it.
  const run = await runRole(lab, {vars: {extip_distribution: 'balance', extip_ctrl_app_kind: 'DaemonSet', extip_namespace: 'extip', extip_iface: 'eth0', extip_mask: 32}});
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
  const claimsLat = await latencies('lat', 31, 'eth0');
  await waitFor('the latency Services\' claims gone', async () => (await kubectlOk(['get', 'ipclaims', '-o', 'name'])).trim() === '', 120000);

  // Cold convergence: no scheduler while the Services are created.
  await kubectlOk(['scale', 'deployment', '-n', 'extip', 'claimscheduler', '--replicas=0']);
  await waitFor('the scheduler gone', async () => (await kubectlOk(['get', 'pods', '-n', 'extip', '-l', 'app.kubernetes.io/component=scheduler', '-o', 'name'])).trim() === '', 120000);
  const cold = Array.from({length: COLD_SERVICES}, (_, i) => `${ipOf(32, i)}/32`);
  await inBatches(COLD_SERVICES, (i) => createService(`cold-${i}`, ipOf(32, i)));
  // The floor: the same addresses with one ip -batch (in node3's lo), and one list of the Services.
  const floorStart = hrms();
  await execa('ip', ['-n', lab.host('node3').ns, '-batch', '-'], {input: cold.map((c) => `address add ${c} dev lo`).join('\n') + '\n'});
  const floor = hrms() - floorStart;
  await execa('ip', ['-n', lab.host('node3').ns, 'address', 'flush', 'dev', 'lo', 'scope', 'global']);
  const listStart = hrms();
  await core.listServiceForAllNamespaces();
  const list = hrms() - listStart;

  const where = new Map<string, string>();
  const seenAt = new Map<string, number>();
  const monitors = lab.hosts.map((h) => monitorAddresses(lab, h.name, (cidr, at, dev) => {
    if (dev !== 'eth0' || seenAt.has(cidr)) return;
    seenAt.set(cidr, at);
    where.set(cidr, h.name);
  }));
  await new Promise((r) => setTimeout(r, 300));
  const coldStart = hrms();
  await kubectlOk(['scale', 'deployment', '-n', 'extip', 'claimscheduler', '--replicas=2']);
  const deadline = coldStart + 300000;
  while (cold.some((c) => !seenAt.has(c)) && hrms() < deadline) await new Promise((r) => setTimeout(r, 20));
  await Promise.all(monitors.map((m) => m.stop()));
  const missing = cold.filter((c) => !seenAt.has(c)).length;
  const converged = Math.max(...cold.map((c) => seenAt.get(c) ?? Infinity)) - coldStart;
  const perNode = lab.hosts.map((h) => `${h.name} ${cold.filter((c) => where.get(c) === h.name).length}`).join(', ');

  // What happened on the way: claims moved between nodes, and controllers that fenced themselves.
  const logs = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n');
  const moved = logs.filter((l) => / moved \S+ -> \S+: /.test(l));
  const fences = logs.filter((l) => l.includes('self-fenced'));
  if (process.env.EXTIP_BENCH_LOGS) console.error([...fences, ...moved.slice(0, 20)].join('\n'));
  const fmt = (v: number[]) => `p50 ${percentile(v, 50).toFixed(0)} ms, p99 ${percentile(v, 99).toFixed(0)} ms, max ${v[v.length - 1].toFixed(0)} ms`;
  console.log(`latency, Service created -> address up (${LATENCY_SERVICES} Services, one at a time):`);
  console.log(`  claims mode (balance, role defaults): ${fmt(claimsLat)}`);
  console.log(`  baseline, naive agent on lo:          ${fmt(naiveLat)}`);
  console.log(`  ratio claims / naive: p50 ${(percentile(claimsLat, 50) / percentile(naiveLat, 50)).toFixed(1)}x, p99 ${(percentile(claimsLat, 99) / percentile(naiveLat, 99)).toFixed(1)}x`);
  console.log(`cold convergence, ${COLD_SERVICES} Services, scheduler started after them: ${missing ? `${missing} addresses MISSING after 300 s` : `${converged.toFixed(0)} ms to all ${COLD_SERVICES} addresses up (${perNode})`}`);
  console.log(`  floor: one ip -batch of the same addresses ${floor.toFixed(0)} ms; one list of the Services ${list.toFixed(0)} ms`);
  console.log(`  on the way: ${moved.length} claim moves, ${fences.length} self-fences (EXTIP_BENCH_LOGS=1 prints them)`);
  if (!missing) console.log(`  ratio: ${(converged / (floor + list)).toFixed(1)}x (floor + list); includes the scheduler pod's start`);
} finally {
  await lab.stop();
}
