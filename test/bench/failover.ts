/**
 * Failover benchmark (claims mode, balance, installed by the role on the
 * lab's real control plane): the holder of an external IP loses its link to
 * the segment (Lab.loseNode), and the time is taken from the cut to the first
 * TCP connection answered by the new holder, as seen by a client behind the
 * router, whose ARP entry for the address is warm (it held the old holder's
 * MAC). The client connects every 20 ms with a 150 ms timeout; each node
 * answers with its name.
 *
 * Two profiles, each on a lab of its own in the same run: the role's defaults
 * (extip_ctrl_hb 500ms, extip_sched_monitor 2s) and, as the baseline, the
 * upstream controller's timings (--hb=2s --monitor=4s). Prints p50 / p95 /
 * max per profile and the ratio of the defaults to the baseline.
 * Usage: npm run bench:failover [-- --cuts N]   (default 20)
 */
import {spawn} from 'node:child_process';
import {Lab} from '../lab/lab.js';
import {waitFor} from '../lab/bgp.js';
import {explain, runRole} from '../helpers/role.js';

const cutsArg = process.argv.indexOf('--cuts');
const CUTS = cutsArg > 0 ? Number(process.argv[cutsArg + 1]) : 20;
if (!Number.isInteger(CUTS) || CUTS < 1) {
  console.error('--cuts takes a whole number above 0');
  process.exit(2);
}
const ADDRESS = '10.210.1.150';
const base = {extip_distribution: 'balance', extip_ctrl_app_kind: 'DaemonSet', extip_namespace: 'extip', extip_iface: 'eth0', extip_mask: 32};
const profiles: Array<{name: string; vars: Record<string, string>}> = [
  {name: 'role defaults (hb 500ms, monitor 2s)', vars: {}},
  {name: 'baseline: upstream timings (hb 2s, monitor 4s)', vars: {extip_ctrl_hb: '2s', extip_sched_monitor: '4s'}},
];

interface Answer {
  at: number;
  from: string;
}

/** Each profile's heartbeat interval, to cut at a random point within it. */
const HB_MS = [500, 2000];
let profileIndex = 0;

async function measure(vars: Record<string, string>): Promise<number[]> {
  const lab = await Lab.start({nodes: 3});
  try {
    const run = await runRole(lab, {vars: {...base, ...vars}});
    if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
    for (const h of lab.hosts) lab.startIn(h.name, process.execPath, ['-e', `require('net').createServer((s) => s.end('${h.name}\\n')).listen(80, '0.0.0.0')`]);
    const client = await lab.addClient();
    const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'bench', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: [ADDRESS]}};
    const applied = await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc));
    if (applied.exitCode !== 0) throw new Error(applied.stderr);

    // The client: one connection every 20 ms, each answer (or '-') with the time it came.
    const answers: Answer[] = [];
    const script = `const net = require('net');
      const once = () => { const s = net.connect({host: '${ADDRESS}', port: 80, timeout: 150}); let d = ''; let over = false;
        const done = (a) => { if (over) return; over = true; s.destroy(); console.log(Date.now() + ' ' + a); setTimeout(once, 20); };
        s.on('data', (x) => (d += x)); s.on('end', () => done(d.trim() || '-'));
        s.on('error', () => done('-')); s.on('timeout', () => done('-')); };
      once();`;
    const prober = spawn('ip', ['netns', 'exec', client.ns, process.execPath, '-e', script], {stdio: ['ignore', 'pipe', 'inherit']});
    let partial = '';
    prober.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const [at, from] = line.split(' ');
        answers.push({at: Number(at), from});
      }
    });
    const last = () => answers[answers.length - 1]?.from;
    const times: number[] = [];
    try {
      await waitFor('the client answered', async () => Boolean(last()) && last() !== '-', 60000);
      for (let i = 0; i < CUTS; i++) {
        // A random moment within the heartbeat interval (and past any announcement still going).
        await new Promise((r) => setTimeout(r, Math.random() * HB_MS[profileIndex]));
        const holder = last()!;
        const cut = Date.now();
        await lab.loseNode(holder);
        await waitFor(`an answer from another node than ${holder}`, async () => answers.some((a) => a.at >= cut && a.from !== '-' && a.from !== holder), 60000);
        const took = answers.find((a) => a.at >= cut && a.from !== '-' && a.from !== holder)!.at - cut;
        times.push(took);
        process.stderr.write(`  cut ${i + 1}/${CUTS}: ${holder} -> ${last()} in ${took} ms\n`);
        await lab.restoreNode(holder);
        // Until the restored node's controller serves again (Ready), so the next cut starts from three live nodes.
        await waitFor(`${holder}'s controller ready`, async () => {
          const r = await lab.kubectl(['get', 'pods', '-n', 'extip', '-l', 'app.kubernetes.io/component=controller', '--field-selector', `spec.nodeName=${holder}`, '-o', 'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}']);
          return r.stdout.trim() === 'True';
        }, 120000);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      prober.kill();
    }
    return times;
  } finally {
    await lab.stop();
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const results: Array<{name: string; p50: number; p95: number; max: number}> = [];
for (const [i, profile] of profiles.entries()) {
  profileIndex = i;
  process.stderr.write(`${profile.name}: ${CUTS} cuts\n`);
  const times = (await measure(profile.vars)).sort((a, b) => a - b);
  results.push({name: profile.name, p50: pct(times, 50), p95: pct(times, 95), max: times[times.length - 1]});
}
const [ours, baseline] = results;
console.log(`failover: link cut to first answer from the new holder, ${CUTS} cuts each`);
console.log('profile'.padEnd(50) + 'p50 ms'.padStart(9) + 'p95 ms'.padStart(9) + 'max ms'.padStart(9));
for (const r of results) console.log(r.name.padEnd(50) + String(r.p50).padStart(9) + String(r.p95).padStart(9) + String(r.max).padStart(9));
const ratio = (a: number, b: number) => (a / b).toFixed(2);
console.log(`ratio defaults / baseline: p50 ${ratio(ours.p50, baseline.p50)}, p95 ${ratio(ours.p95, baseline.p95)}, max ${ratio(ours.max, baseline.max)}`);
