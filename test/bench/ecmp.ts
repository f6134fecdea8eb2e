/**
 * `npm run bench:ecmp`: how long a router keeps sending to a lost node in
 * ECMP mode, and what a client behind the router loses meanwhile.
 *
 * Each profile runs on a lab of its own (3 nodes over --racks racks, default
 * 2: node1 and node2 behind one ToR, node3 behind another, a core router over
 * eBGP; every node holding 10.0.0.7 on lo, a TCP server on each answering with
 * its name, a client behind the core, or behind the router with --racks 1,
 * opening a connection every 20 ms). A cut takes a node's link down
 * (Lab.loseNode: link down, API refused, kubelet silent) at a random moment;
 * the time is taken from the cut until no router forwards 10.0.0.7 to the
 * node: its ToR no longer lists it and, when it was its rack's only node, the
 * core no longer lists that rack; polled every 10 ms. The share of failed connections
 * (no answer within 1 s) is counted over the client's connections opened from
 * the cut to 500 ms after the router forgot the node. Drains (the node's label
 * removed: its controller gets SIGTERM) count the failed connections opened
 * from the label's removal until the pod is gone.
 *
 * Profiles, side by side in one run:
 *   extip speaker, BFD      extip_bgp_speaker: extip (BIRD 2 beside ipmanager), BFD 100 ms x 3
 *   extip speaker, no BFD   the same with bfd: false: BGP's hold timer (9 s) alone
 *   baseline: Calico        extip_calico_export (calico/node v2's BIRD 1.6, as the demo
 *                           installs it), Calico's default timers: the hold timer (240 s)
 * The baseline takes minutes a cut, so it gets --baseline-cuts (default 2) and
 * the ratios are taken against its median.
 *
 * Usage: npm run bench:ecmp [-- --cuts N] [--drains N] [--baseline-cuts N] [--racks R] [--only extip|baseline]
 */
import {Lab, type LabHost} from '../lab/lab.js';
import {routerNexthops, waitFor} from '../lab/bgp.js';
import {startEnvironment} from '../lab/environment.js';
import {startProber} from '../lab/prober.js';
import {explain, runRole} from '../helpers/role.js';

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} takes a whole number, not ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return n;
}
const CUTS = numberArg('--cuts', 20);
const DRAINS = numberArg('--drains', 5);
const BASELINE_CUTS = numberArg('--baseline-cuts', 2);
const RACKS = numberArg('--racks', 2);
if (RACKS < 1 || RACKS > 3) {
  console.error('--racks takes 1 to 3 (the labs have 3 nodes)');
  process.exit(2);
}
const ADDRESS = '10.0.0.7';

const ecmp = {extip_distribution: 'all', extip_iface: 'lo', extip_mask: 32, extip_ctrl_app_kind: 'DaemonSet', extip_external_cidrs: ['10.0.0.0/24']};

interface Profile {
  name: string;
  calico: 'v2' | 'none';
  vars: Record<string, unknown>;
  cuts: number;
  drains: number;
}

// Each rack's nodes peer with their ToR (10.210.R.1).
const speaker = (bfd: boolean) => ({
  ...ecmp,
  extip_bgp_speaker: 'extip',
  extip_bgp_peers: Array.from({length: RACKS}, (_, r) => ({address: `10.210.${r + 1}.1`, asn: 64512, bfd, nodes: [0, 1, 2].filter((i) => Math.floor((i * RACKS) / 3) === r).map((i) => `node${i + 1}`)})),
});
let profiles: Profile[] = [
  {name: 'extip speaker, BFD', calico: 'none', vars: speaker(true), cuts: CUTS, drains: DRAINS},
  {name: 'extip speaker, no BFD', calico: 'none', vars: speaker(false), cuts: Math.min(CUTS, 5), drains: 0},
  {name: 'baseline: Calico export', calico: 'v2', vars: {...ecmp, extip_calico_export: 'auto'}, cuts: BASELINE_CUTS, drains: DRAINS},
];
const only = process.argv.indexOf('--only');
if (only > 0) {
  const word = process.argv[only + 1] ?? '';
  profiles = profiles.filter((p) => p.name.startsWith(word));
  if (!profiles.length) {
    console.error(`--only ${word}: no profile's name starts so`);
    process.exit(2);
  }
}

interface Result {
  name: string;
  /** Link cut until the router no longer lists the node, ms. */
  detect: number[];
  /** The same, by case: a node that shares its rack, and its rack's only node (the core must move). */
  byCase: Record<string, number[]>;
  /** Failed connections / all, per cut. */
  failedShare: number[];
  /** Failed connections per drain. */
  drainFailures: number[];
}

async function ready(lab: Lab, node: string): Promise<boolean> {
  const r = await lab.kubectl(['get', 'pods', '-n', 'extip', '-l', 'app.kubernetes.io/component=controller', '--field-selector', `spec.nodeName=${node}`, '-o', 'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}']);
  return r.stdout.trim() === 'True';
}

/** Every router forwards to every node: each ToR lists its rack's nodes, the core every rack. */
async function complete(lab: Lab): Promise<boolean> {
  for (const r of lab.routers) {
    const want = r.role === 'core' ? lab.routers.filter((t) => t.role === 'tor').map((t) => t.uplink!.ip) : lab.rackHosts(r.rack!).map((h) => h.ip);
    if ((await routerNexthops(lab, ADDRESS, r.name)).join() !== want.sort().join()) return false;
  }
  return true;
}

/** No router forwards to `host` any more, and the address still has a route (not a moment between two). */
async function forgotten(lab: Lab, host: LabHost): Promise<boolean> {
  const tor = lab.torOf(host);
  const hops = await routerNexthops(lab, ADDRESS, tor.name);
  if (hops.includes(host.ip)) return false;
  const alone = lab.rackHosts(host.rack).length === 1;
  if (!alone) return hops.length > 0;
  if (!lab.core) return false;
  const core = await routerNexthops(lab, ADDRESS, 'core');
  return core.length > 0 && !core.includes(tor.uplink!.ip);
}

async function measure(profile: Profile): Promise<Result> {
  const env = await startEnvironment(3, (line) => process.stderr.write(`  ${line}\n`), {calico: profile.calico, racks: RACKS});
  const lab = env.lab;
  const result: Result = {name: profile.name, detect: [], byCase: {}, failedShare: [], drainFailures: []};
  try {
    const run = await runRole(lab, {vars: {...profile.vars, extip_namespace: 'extip'}});
    if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
    await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'bench', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: [ADDRESS]}}));
    for (const h of lab.hosts) lab.serveName(h.name);
    await waitFor('every node a nexthop', () => complete(lab), 120000);
    const client = await lab.addClient();
    const prober = startProber(client, ADDRESS, 80, 20, 1000);
    try {
      await waitFor('the client answered', async () => Boolean(prober.last()) && prober.last() !== '-', 60000);
      for (let i = 0; i < profile.cuts; i++) {
        const host = lab.hosts[i % lab.hosts.length];
        await new Promise((r) => setTimeout(r, Math.random() * 1000));
        const cut = Date.now();
        await lab.loseNode(host.name);
        const ms = await waitFor(`${host.name} gone from the routers`, () => forgotten(lab, host), 300000);
        await new Promise((r) => setTimeout(r, 500));
        // Once the connections opened in the window have ended (answered, or 1 s without).
        await new Promise((r) => setTimeout(r, 1000));
        const window = prober.openedBetween(cut, cut + ms + 500);
        const failed = window.filter((a) => a.from === '-').length;
        result.detect.push(ms);
        const kind = lab.rackHosts(host.rack).length === 1 ? "its rack's only node" : 'a node with rack-mates';
        (result.byCase[kind] ??= []).push(ms);
        result.failedShare.push(window.length ? failed / window.length : 0);
        process.stderr.write(`  cut ${i + 1}/${profile.cuts}: ${host.name} left the router after ${ms} ms; ${failed} of ${window.length} connections failed\n`);
        await lab.restoreNode(host.name);
        await waitFor(`${host.name} back on the routers`, () => complete(lab), 300000);
        await waitFor(`${host.name}'s pod ready`, () => ready(lab, host.name), 120000);
      }
      for (let i = 0; i < profile.drains; i++) {
        const host = lab.hosts[i % lab.hosts.length];
        await new Promise((r) => setTimeout(r, 500));
        const start = Date.now();
        await lab.kubectl(['label', 'node', host.name, 'externalip-']);
        // When the router stops listing the node, beside when its controller is gone.
        let forgot: number | undefined;
        const watching = waitFor(`${host.name} gone from the routers`, () => forgotten(lab, host), 120000).then((ms) => (forgot = ms), () => undefined);
        const gone = await waitFor(`${host.name}'s controller gone`, async () => {
          const r = await lab.kubectl(['get', 'pods', '-n', 'extip', '--field-selector', `spec.nodeName=${host.name}`, '-o', 'name']);
          return r.stdout.trim() === '';
        }, 120000);
        await watching;
        await new Promise((r) => setTimeout(r, 1500));
        const window = prober.openedBetween(start, start + gone + 500);
        const failed = window.filter((a) => a.from === '-').length;
        result.drainFailures.push(failed);
        process.stderr.write(`  drain ${i + 1}/${profile.drains}: ${host.name}: the router forgot it after ${forgot ?? 'more than 120000'} ms, its controller was gone after ${gone} ms; ${failed} of ${window.length} connections failed\n`);
        await lab.kubectl(['label', 'node', host.name, 'externalip=true']);
        await waitFor(`${host.name} back on the routers`, () => complete(lab), 300000);
        await waitFor(`${host.name}'s pod ready`, () => ready(lab, host.name), 120000);
      }
    } finally {
      prober.stop();
    }
    return result;
  } finally {
    await lab.stop();
  }
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

const results: Result[] = [];
for (const profile of profiles) {
  process.stderr.write(`${profile.name}: ${profile.cuts} cuts, ${profile.drains} drains\n`);
  results.push(await measure(profile));
}
const baseline = results.find((r) => r.name.startsWith('baseline'));
const base = baseline?.detect.length ? pct(baseline.detect, 50) : undefined;
console.log(`ecmp (${RACKS} rack${RACKS === 1 ? '' : 's'}${RACKS > 1 ? ', client behind the core' : ''}): link cut until no router forwards to the node; failed share of a client's connections (one every 20 ms) from the cut to 500 ms after`);
console.log(`${'profile'.padEnd(26)}${'cuts'.padStart(5)}${'p50 ms'.padStart(9)}${'p95 ms'.padStart(9)}${'max ms'.padStart(9)}${'p95/base'.padStart(10)}${'failed p50'.padStart(12)}${'failed max'.padStart(12)}${'drains'.padStart(8)}${'drain fails'.padStart(13)}`);
for (const r of results) {
  const share = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(1)}%`);
  const n = r.detect.length;
  console.log(
    r.name.padEnd(26) +
      String(n).padStart(5) +
      (n ? String(pct(r.detect, 50)) : '-').padStart(9) +
      (n ? String(pct(r.detect, 95)) : '-').padStart(9) +
      (n ? String(Math.max(...r.detect)) : '-').padStart(9) +
      (n && base ? (pct(r.detect, 95) / base).toFixed(4) : '-').padStart(10) +
      share(n ? pct(r.failedShare, 50) : undefined).padStart(12) +
      share(n ? Math.max(...r.failedShare) : undefined).padStart(12) +
      String(r.drainFailures.length).padStart(8) +
      (r.drainFailures.length ? `${r.drainFailures.reduce((a, b) => a + b, 0)} total` : '-').padStart(13),
  );
}
if (base) console.log(`(p95/base: against the baseline's median, ${base} ms, over its ${baseline!.detect.length} cuts)`);
// Each case on its own: the cuts go round the nodes, so every run has both when there are racks.
console.log('by case (cut until no router forwards to the node, ms):');
for (const r of results) {
  for (const [kind, values] of Object.entries(r.byCase)) {
    console.log(`  ${r.name}, ${kind}: ${values.length} cuts, p50 ${pct(values, 50)}, p95 ${pct(values, 95)}, max ${Math.max(...values)}`);
  }
}
process.exit(0);
