/**
 * Agent benchmark (ipmanager naivecontroller on a lab node):
 *  - latency from creating a Service with an external IP to the address being
 *    on the interface, p50/p99 over 200 Services (seen with `ip monitor`);
 *  - cold convergence of 1,000 Services x 2 external IPs: agent start to all
 *    2,000 addresses present, against the floor measured in the same run (the
 *    same 2,000 addresses added by one `ip -batch`) and the time of one list
 *    of the 1,000 Services; the agent's peak RSS.
 * Usage: npm run bench:agent
 */
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {execa} from 'execa';
import {Lab} from '../lab/lab.js';
import {hrms, inBatches, monitorAddresses, percentile} from './common.js';
import {repoRoot} from '../helpers/root.js';

const lab = await Lab.start({nodes: 2});
const kc = new k8s.KubeConfig();
kc.loadFromFile(lab.api.kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);
/** Streams `ip monitor address` in a node; calls back with each new address and the time it was seen. */
const monitor = (node: string, onAdd: (cidr: string, at: number) => void) => monitorAddresses(lab, node, onAdd);

async function createService(name: string, ips: string[]) {
  await core.createNamespacedService({namespace: 'default', body: {apiVersion: 'v1', kind: 'Service', metadata: {name}, spec: {ports: [{port: 80}], externalIPs: ips}}});
}

function agent(node: string, extra: string[] = []) {
  return lab.startIn(node, process.execPath, [
    join(repoRoot, 'bin/ipmanager.js'), 'n', '--iface=lo', '--mask=32', `--kubeconfig=${join(lab.host(node).root, 'etc/kubernetes/admin.conf')}`,
    `--state-dir=${join(lab.host(node).root, 'run/extip')}`, '--resync=60s', ...extra,
  ]);
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

const seen = new Map<string, number>();
try {
  // Latency, one Service at a time.
  const mon1 = monitor('node1', (cidr, at) => seen.set(cidr, at));
  const a1 = agent('node1');
  await new Promise((r) => setTimeout(r, 1500));
  const latencies: number[] = [];
  for (let i = 0; i < 200; i++) {
    const ip = `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    const start = hrms();
    await createService(`lat-${i}`, [ip]);
    const deadline = start + 5000;
    while (!seen.has(`${ip}/32`) && hrms() < deadline) await new Promise((r) => setImmediate(r));
    if (!seen.has(`${ip}/32`)) throw new Error(`${ip} never appeared`);
    latencies.push(seen.get(`${ip}/32`)! - start);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => percentile(latencies, p);
  await a1.stop('SIGTERM');
  await mon1.stop();
  await inBatches(200, (i) => core.deleteNamespacedService({namespace: 'default', name: `lat-${i}`}));

  // Cold convergence: 1,000 Services with 2 IPs each, agent started afterwards.
  const cidrs: string[] = [];
  const coldIps = (i: number) => [`10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`, `10.3.${Math.floor(i / 250)}.${(i % 250) + 1}`];
  for (let i = 0; i < 1000; i++) cidrs.push(...coldIps(i).map((ip) => `${ip}/32`));
  await inBatches(1000, (i) => createService(`cold-${i}`, coldIps(i)));
  // The floor: the same 2,000 addresses with one ip -batch, in node2.
  const floorStart = hrms();
  await execa('ip', ['-n', lab.host('node2').ns, '-batch', '-'], {input: cidrs.map((c) => `address add ${c} dev lo`).join('\n') + '\n'});
  const floor = hrms() - floorStart;
  // One list of the 1,000 Services, as the agent's first list does.
  const listStart = hrms();
  const listed = await core.listServiceForAllNamespaces();
  const list = hrms() - listStart;

  seen.clear();
  const mon2 = monitor('node1', (cidr, at) => seen.set(cidr, at));
  await new Promise((r) => setTimeout(r, 300));
  const coldStart = hrms();
  const a2 = agent('node1');
  const deadline = coldStart + 60000;
  while (cidrs.some((c) => !seen.has(c)) && hrms() < deadline) await new Promise((r) => setTimeout(r, 5));
  const missing = cidrs.filter((c) => !seen.has(c)).length;
  const cold = Math.max(...cidrs.map((c) => seen.get(c) ?? Infinity)) - coldStart;
  const rss = await peakRss(a2.pid);
  await a2.stop('SIGTERM');
  await mon2.stop();

  console.log(`latency, Service created -> address on lo (200 Services): p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${latencies[latencies.length - 1].toFixed(1)} ms`);
  console.log(`cold convergence, ${listed.items.length} Services x 2 IPs: ${missing ? `${missing} addresses MISSING after 60 s` : `${cold.toFixed(0)} ms from agent start to all ${cidrs.length} addresses`}`);
  console.log(`  floor: one ip -batch of the same ${cidrs.length} addresses ${floor.toFixed(0)} ms; one list of the Services ${list.toFixed(0)} ms`);
  console.log(`  ratio: ${(cold / floor).toFixed(1)}x the floor; ${(cold / (3 * floor + list)).toFixed(2)} of (3x floor + list); includes starting Node (~100 ms)`);
  console.log(`  agent peak RSS: ${rss.toFixed(0)} MiB`);
} finally {
  await lab.stop();
}
