/**
 * Failover benchmark: the holder of an address loses its link to the segment
 * (Lab.loseNode: link down, its way to the API server refused, its kubelet
 * silent), and the time is taken from the cut to the first TCP connection
 * answered by another node, as seen by a client behind the router whose ARP
 * entry for the address is warm (it held the old holder's MAC). The client
 * connects every 20 ms with a 150 ms timeout; each node answers with its name.
 *
 * Profiles, each on a lab of its own in the same run:
 *  - extip claims mode (balance), installed by the role with its defaults;
 *  - the baseline: the design before the controllers' membership, liveness
 *    through the API alone (the role's defaults, the DaemonSet's --peer-*
 *    flags removed), for any node loss and for the leader's node;
 *  - kube-vip (the version test/kubevip pins, built from its Go module) in
 *    Services mode with ARP and leader election, its DaemonSet as
 *    `kube-vip manifest daemonset --services --arp --leaderElection` writes
 *    it, run by the lab kubelet from an image of the program
 *    (test/kubevip/images.ts), serving a LoadBalancer Service that asks for
 *    the address; once with one leader for all Services (its default) and
 *    once with an election per Service (svc_election). Skipped with
 *    --no-kube-vip;
 *  - MetalLB's layer 2 mode (its speakers find each other with memberlist),
 *    the version kubespray deploys, built from its Go module
 *    (test/metallb) and run from its images by the lab kubelet, from its own
 *    manifest (config/manifests/metallb-native.yaml in that module) less the
 *    admission webhook (the lab's API server cannot call into a pod;
 *    the controller runs with --webhook-mode=disabled), an IPAddressPool of
 *    the one address and an L2Advertisement. MetalLB answers ARP for the
 *    address but does not put it on the node: kube-proxy does, and the lab
 *    has none, so each node holds it on `lo` with arp_ignore=1 and
 *    arp_announce=2 on its interfaces, as kube-proxy's IPVS mode with strict
 *    ARP (which MetalLB's docs ask for) does. Skipped with --no-metallb.
 * Memory: after its cuts, on the same lab, extip's defaults, kube-vip's and
 * MetalLB's profiles are given 1,000 more Services (each with an address of
 * its own, and endpoints as every Service with a selector has) and
 * the peak resident memory (VmHWM) of each of their processes is read a
 * minute later, the largest of each kind (--no-memory leaves it out).
 * For extip, each cut also says whether the lost node ran the scheduler's
 * leader. Two more extip profiles force the cases that chance would pick
 * unevenly: every cut on the node that runs the scheduler's leader (three
 * scheduler replicas, the leader's pod deleted until the lease is on the
 * holder's node), and every cut while the API server is stopped (it starts
 * again after the answer, and the node comes back after that).
 * Prints p50 / p95 / max per profile and the ratios to the baseline.
 * Usage: npm run bench:failover [-- --cuts N] [--no-kube-vip] [--no-metallb] [--only extip|baseline|kube-vip|MetalLB]   (default 20 cuts)
 * EXTIP_BENCH_LOGS=<dir> keeps each node's pod logs (and kube-vip's debug log) there.
 */
import {execa} from 'execa';
import {mkdir, mkdtemp, readFile, readdir, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import YAML from 'yaml';
import {Lab} from '../lab/lab.js';
import {waitFor} from '../lab/bgp.js';
import {startProber} from '../lab/prober.js';
import {repoRoot} from '../lab/tools.js';
import {explain, runRole} from '../helpers/role.js';
import {metallbImages} from '../metallb/images.js';
import {kubeVipImage} from '../kubevip/images.js';

const cutsArg = process.argv.indexOf('--cuts');
const CUTS = cutsArg > 0 ? Number(process.argv[cutsArg + 1]) : 20;
if (!Number.isInteger(CUTS) || CUTS < 1) {
  console.error('--cuts takes a whole number above 0');
  process.exit(2);
}
const ADDRESS = '10.210.1.150';
type Json = Record<string, any>;

interface Setup {
  /** Readiness of the pods that hold addresses on a node. */
  podSelector: string;
  namespace: string;
  /** The node that runs the leader, when the profile has one apart from the holder. */
  leaderNode?: () => Promise<string | undefined>;
}

interface Profile {
  name: string;
  /** How long apart heartbeats come: cuts land at a random point within it. */
  beatMs: number;
  privileged?: string[];
  setup: (lab: Lab) => Promise<Setup>;
  /** What each cut is: any node loss (default), the loss of the scheduler's leader's node, or a loss while the API server is down. */
  cut?: 'any' | 'leader' | 'api-down';
  /** Directories of images the lab's nodes need besides extip's (made before the lab starts). */
  images?: () => Promise<string[]>;
  /** After the cuts: 1,000 Services of this kind, and the peak memory of the processes these patterns name. */
  memory?: {service: (i: number, address: string) => Json; processes: Record<string, RegExp>};
}

const extipBase = {extip_distribution: 'balance', extip_ctrl_app_kind: 'DaemonSet', extip_namespace: 'extip', extip_iface: 'eth0', extip_mask: 32};

function extip(vars: Record<string, unknown>, opts: {noPeers?: boolean} = {}): Profile['setup'] {
  return async (lab) => {
    const run = await runRole(lab, {vars: {...extipBase, ...vars}});
    if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
    if (opts.noPeers) {
      // The design before the controllers' membership: liveness through the API alone.
      const ds = JSON.parse((await lab.kubectl(['get', 'daemonset', '-n', 'extip', 'claimcontroller', '-o', 'json'])).stdout);
      const args = (ds.spec.template.spec.containers[0].args as string[]).filter((a) => !a.startsWith('--peer-'));
      const patch = [{op: 'replace', path: '/spec/template/spec/containers/0/args', value: args}];
      const r = await lab.kubectl(['patch', 'daemonset', '-n', 'extip', 'claimcontroller', '--type=json', '-p', JSON.stringify(patch)]);
      if (r.exitCode !== 0) throw new Error(`cannot turn the membership off: ${r.stderr}`);
      const rolled = await lab.kubectl(['rollout', 'status', '-n', 'extip', 'daemonset/claimcontroller', '--timeout=120s']);
      if (rolled.exitCode !== 0) throw new Error(`the controllers without membership did not roll out: ${rolled.stderr}`);
    }
    await apply(lab, {apiVersion: 'v1', kind: 'Service', metadata: {name: 'bench', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: [ADDRESS]}});
    return {
      podSelector: 'app.kubernetes.io/component=controller',
      namespace: 'extip',
      leaderNode: async () => {
        const holder = (await lab.kubectl(['get', 'lease', '-n', 'extip', 'claimscheduler', '-o', 'jsonpath={.spec.holderIdentity}'])).stdout.trim();
        const pod = holder.replace(/_[0-9a-f-]{36}$/, '');
        return (await lab.kubectl(['get', 'pod', '-n', 'extip', pod, '-o', 'jsonpath={.spec.nodeName}'])).stdout.trim() || undefined;
      },
    };
  };
}

async function apply(lab: Lab, ...objects: unknown[]): Promise<void> {
  const r = await lab.kubectl(['apply', '-f', '-'], objects.map((o) => YAML.stringify(o)).join('---\n'));
  if (r.exitCode !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

/** kube-vip's image for the lab kubelet (built once, then from the cache), and the program in it. */
let kubeVip_: {bin: string; reference: string} | undefined;
async function kubeVipImageDirs(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'extip-bench-kube-vip-'));
  kubeVip_ = await kubeVipImage(dir);
  return [dir];
}

/** kube-vip with one leader for all Services (its default), or a leader election per Service (svc_election): its own manifest, run from its image. */
const kubeVip = (perService: boolean) => async (lab: Lab): Promise<Setup> => {
  const {bin, reference} = kubeVip_!;
  const manifest = await execa(bin, ['manifest', 'daemonset', '--interface', 'eth0', '--services', '--arp', '--leaderElection', '--inCluster']);
  const ds = YAML.parse(manifest.stdout);
  // Built from its module without its release's link flags, it names an image without a tag.
  ds.spec.template.spec.containers[0].image = reference;
  if (perService) ds.spec.template.spec.containers[0].env.push({name: 'svc_election', value: 'true'});
  // EXTIP_BENCH_LOGS=<dir>: kube-vip logs at debug level (kept with every pod's log).
  if (process.env.EXTIP_BENCH_LOGS) ds.spec.template.spec.containers[0].env.push({name: 'vip_loglevel', value: '-4'});
  // What kube-vip's documented RBAC grants.
  const role = {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: {name: 'bench-kube-vip'}, rules: [
    {apiGroups: [''], resources: ['services', 'services/status', 'nodes', 'endpoints'], verbs: ['list', 'get', 'watch', 'update']},
    {apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'get', 'watch', 'update']},
    {apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'get', 'watch', 'update', 'create']},
    {apiGroups: [''], resources: ['events'], verbs: ['create', 'patch']},
  ]};
  await apply(lab,
    {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: 'kube-vip', namespace: 'kube-system'}},
    role,
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: {name: 'bench-kube-vip'}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'bench-kube-vip'}, subjects: [{kind: 'ServiceAccount', name: 'kube-vip', namespace: 'kube-system'}]},
    ds,
  );
  // kube-vip watches Services without a resourceVersion, and on this lab's API server such a watch
  // brings no event for Services that exist already: the Service is created once kube-vip watches.
  if (perService) {
    await waitFor('kube-vip running on every node', async () => {
      const pods = JSON.parse((await lab.kubectl(['get', 'pods', '-n', 'kube-system', '-l', 'app.kubernetes.io/name=kube-vip-ds', '-o', 'json'])).stdout).items as Json[];
      return pods.length === lab.hosts.length && pods.every((p) => p.status?.conditions?.some((c: Json) => c.type === 'Ready' && c.status === 'True'));
    }, 120000);
  } else {
    await waitFor('a kube-vip leader', async () => (await lab.kubectl(['get', 'lease', '-n', 'kube-system', 'plndr-svcs-lock', '-o', 'jsonpath={.spec.holderIdentity}'])).stdout.trim() !== '', 120000);
  }
  await new Promise((r) => setTimeout(r, 2000));
  await apply(lab, {apiVersion: 'v1', kind: 'Service', metadata: {name: 'bench', namespace: 'default', annotations: {'kube-vip.io/loadbalancerIPs': ADDRESS}}, spec: {type: 'LoadBalancer', ports: [{port: 80}]}});
  return {
    podSelector: 'app.kubernetes.io/name=kube-vip-ds',
    namespace: 'kube-system',
    leaderNode: perService ? undefined : async () => (await lab.kubectl(['get', 'lease', '-n', 'kube-system', 'plndr-svcs-lock', '-o', 'jsonpath={.spec.holderIdentity}'])).stdout.trim() || undefined,
  };
};
/** Endpoints for a Service without a selector: the nodes' name servers, on port 80, all ready. */
function nodeEndpoints(lab: Lab, service: string): Json {
  return {apiVersion: 'v1', kind: 'Endpoints', metadata: {name: service, namespace: 'default'},
    subsets: [{addresses: lab.hosts.map((h) => ({ip: h.ip, nodeName: h.name})), ports: [{name: 'http', port: 80, protocol: 'TCP'}]}]};
}

/** The images of MetalLB's controller and speaker (built once, then from the cache), and its version. */
let metallbVersion = '';
async function metallbImageDirs(): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'extip-bench-metallb-'));
  metallbVersion = await metallbImages(dir);
  return [dir];
}

/** MetalLB's own manifest, from its module in Go's module cache (test/metallb/build.sh downloaded it). */
async function metallbManifest(): Promise<Json[]> {
  const version = (await readFile(join(repoRoot, 'test/metallb/VERSION'), 'utf8')).trim();
  const dl = await execa('go', ['mod', 'download', '-json', `go.universe.tf/metallb@${version}`], {cwd: '/', env: {GOFLAGS: '-mod=mod', GO111MODULE: 'on'}});
  const dir = JSON.parse(dl.stdout).Dir as string;
  return YAML.parseAllDocuments(await readFile(join(dir, 'config/manifests/metallb-native.yaml'), 'utf8')).map((d) => d.toJSON() as Json).filter(Boolean);
}

const metallb = async (lab: Lab): Promise<Setup> => {
  const docs = (await metallbManifest()).filter((d) => d.kind !== 'ValidatingWebhookConfiguration');
  const controller = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'controller')!;
  controller.spec.template.spec.containers[0].args.push('--webhook-mode=disabled', '--disable-cert-rotation');
  await apply(lab, ...docs);
  // What kube-proxy's IPVS mode with strict ARP does on every node: the address local (on a dummy
  // interface there, on lo here), and no ARP answer for it but MetalLB's.
  for (const h of lab.hosts) {
    for (const [key, value] of [['net.ipv4.conf.all.arp_ignore', '1'], ['net.ipv4.conf.all.arp_announce', '2']]) {
      const r = await lab.exec(h.name, 'sysctl', ['-qw', `${key}=${value}`]);
      if (r.exitCode !== 0) throw new Error(`sysctl ${key} on ${h.name}: ${r.stderr}`);
    }
    const r = await lab.exec(h.name, 'ip', ['address', 'add', `${ADDRESS}/32`, 'dev', 'lo']);
    if (r.exitCode !== 0) throw new Error(`ip address add on ${h.name}: ${r.stderr}`);
  }
  await waitFor('MetalLB\'s speaker ready on every node and its controller ready', async () => {
    const pods = JSON.parse((await lab.kubectl(['get', 'pods', '-n', 'metallb-system', '-o', 'json'])).stdout).items as Json[];
    const ready = (p: Json) => p.status?.conditions?.some((c: Json) => c.type === 'Ready' && c.status === 'True');
    return pods.filter((p) => p.metadata.labels?.component === 'speaker' && ready(p)).length === lab.hosts.length && pods.some((p) => p.metadata.labels?.component === 'controller' && ready(p));
  }, 180000).catch(async (err: Error) => {
    const pods = await lab.kubectl(['get', 'pods', '-n', 'metallb-system', '-o', 'wide']);
    throw new Error(`${err.message}\n${pods.stdout}${pods.stderr}\n${lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'metallb-system')).join('\n').slice(-4000)}`);
  });
  await apply(lab,
    {apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: {name: 'bench', namespace: 'metallb-system'}, spec: {addresses: [`${ADDRESS}/32`]}},
    {apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: {name: 'bench', namespace: 'metallb-system'}, spec: {ipAddressPools: ['bench']}},
  );
  // MetalLB announces a Service only while it has a ready endpoint: the nodes' name servers are its
  // endpoints (a Service without a selector, with Endpoints written here; MetalLB v0.13.9 reads Endpoints
  // on this API server, and the controller-manager mirrors them into EndpointSlices).
  await apply(lab,
    {apiVersion: 'v1', kind: 'Service', metadata: {name: 'bench', namespace: 'default', annotations: {'metallb.universe.tf/loadBalancerIPs': ADDRESS}}, spec: {type: 'LoadBalancer', ports: [{name: 'http', port: 80}]}},
    nodeEndpoints(lab, 'bench'),
  );
  await waitFor('MetalLB gave the Service its address', async () => {
    const svc = JSON.parse((await lab.kubectl(['get', 'service', '-n', 'default', 'bench', '-o', 'json'])).stdout);
    return svc.status?.loadBalancer?.ingress?.[0]?.ip === ADDRESS;
  }, 60000).catch(async (err: Error) => {
    const svc = await lab.kubectl(['get', 'service', '-n', 'default', 'bench', '-o', 'yaml']);
    throw new Error(`${err.message}\n${svc.stdout}\n${lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'metallb-system')).join('\n').split('\n').filter((l) => !l.includes('reconcile')).slice(-60).join('\n')}`);
  });
  return {podSelector: 'component=speaker', namespace: 'metallb-system'};
};

const kubeVipGlobal = kubeVip(false);
const kubeVipPerService = kubeVip(true);

const MEMORY_SERVICES = 1000;
/** The i-th of the 1,000 Services' addresses: 10.212.0.1 onwards, 250 a /24. */
const manyAddress = (i: number) => `10.212.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const lbService = (annotation: string) => (i: number, address: string): Json => ({apiVersion: 'v1', kind: 'Service', metadata: {name: `many-${i}`, namespace: 'default', annotations: {[annotation]: address}}, spec: {type: 'LoadBalancer', ports: [{name: 'http', port: 80}]}});
const memory = {
  extip: {service: (i: number, address: string): Json => ({apiVersion: 'v1', kind: 'Service', metadata: {name: `many-${i}`, namespace: 'default'}, spec: {ports: [{name: 'http', port: 80}], externalIPs: [address]}}),
    processes: {'extip claimcontroller': /ipmanager\S*\s+(claimcontroller|c)\b/, 'extip scheduler': /ipmanager\S*\s+(scheduler|s)\b/}},
  kubeVip: {service: lbService('kube-vip.io/loadbalancerIPs'), processes: {'kube-vip': /^\/kube-vip\b/}},
  metallb: {service: lbService('metallb.universe.tf/loadBalancerIPs'), processes: {'MetalLB speaker': /^\/speaker/, 'MetalLB controller': /^\/controller/}},
};

const profiles: Profile[] = [
  {name: 'extip, role defaults', beatMs: 500, setup: extip({}), memory: memory.extip},
  {name: 'extip, the leader\'s node lost', beatMs: 500, setup: extip({extip_sched_replicas: 3}), cut: 'leader'},
  {name: 'extip, lost while the API is down', beatMs: 500, setup: extip({}), cut: 'api-down'},
  {name: 'baseline: heartbeats through the API', beatMs: 500, setup: extip({}, {noPeers: true})},
  {name: 'baseline, the leader\'s node lost', beatMs: 500, setup: extip({extip_sched_replicas: 3}, {noPeers: true}), cut: 'leader'},
  {name: 'baseline, lost while the API is down', beatMs: 500, setup: extip({}, {noPeers: true}), cut: 'api-down'},
];
if (!process.argv.includes('--no-kube-vip')) {
  profiles.push(
    {name: 'kube-vip v1.0.0, its defaults', beatMs: 1000, privileged: ['default', 'kube-system'], images: kubeVipImageDirs, setup: kubeVipGlobal, memory: memory.kubeVip},
    {name: 'kube-vip v1.0.0, per-Service election', beatMs: 1000, privileged: ['default', 'kube-system'], images: kubeVipImageDirs, setup: kubeVipPerService},
  );
}
if (!process.argv.includes('--no-metallb')) {
  profiles.push({name: 'MetalLB, layer 2', beatMs: 1000, privileged: ['default', 'metallb-system'], images: metallbImageDirs, setup: metallb, memory: memory.metallb});
}
/** A peer that cannot be built or run here is reported, not fatal to the others. */
const isPeer = (p: Profile) => p.setup === kubeVipGlobal || p.setup === kubeVipPerService || p.setup === metallb;
const isKubeVip = (p: Profile) => p.setup === kubeVipGlobal || p.setup === kubeVipPerService;

const onlyArg = process.argv.indexOf('--only');
if (onlyArg > 0) {
  const word = process.argv[onlyArg + 1] ?? '';
  const kept = profiles.filter((p) => p.name.startsWith(word));
  if (!kept.length) {
    console.error(`--only ${word}: no profile's name starts so (${profiles.map((p) => p.name).join('; ')})`);
    process.exit(2);
  }
  profiles.splice(0, profiles.length, ...kept);
}

/** Moves the scheduler's lease to the scheduler on `node`: its leader's pod deleted (it lets go at once) until the lease is there. */
async function leadFrom(lab: Lab, setup: Setup, node: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const now = await setup.leaderNode?.();
    if (now === node) return;
    const holder = (await lab.kubectl(['get', 'lease', '-n', 'extip', 'claimscheduler', '-o', 'jsonpath={.spec.holderIdentity}'])).stdout.trim();
    await lab.kubectl(['delete', 'pod', '-n', 'extip', holder.replace(/_[0-9a-f-]{36}$/, ''), '--wait=false']);
    await waitFor('another leader', async () => {
      const next = (await lab.kubectl(['get', 'lease', '-n', 'extip', 'claimscheduler', '-o', 'jsonpath={.spec.holderIdentity}'])).stdout.trim();
      return Boolean(next) && next !== holder;
    }, 30000);
  }
  throw new Error(`the scheduler's lease did not come to ${node} in 20 tries`);
}

/**
 * Gives the lab 1,000 Services of the profile's kind (each with an address
 * of its own and endpoints), waits a minute, and reads the peak
 * resident memory (VmHWM) of the profile's processes in every node: the
 * largest of each, in MiB.
 */
async function peakMemory(lab: Lab, m: NonNullable<Profile['memory']>): Promise<Record<string, number>> {
  if (m === memory.metallb) {
    const pool = {apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: {name: 'many', namespace: 'metallb-system'}, spec: {addresses: ['10.212.0.0/22']}};
    const l2 = {apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: {name: 'many', namespace: 'metallb-system'}, spec: {ipAddressPools: ['many']}};
    await apply(lab, pool, l2);
  }
  for (let i = 0; i < MEMORY_SERVICES; i += 100) {
    const batch: Json[] = [];
    for (let j = i; j < Math.min(MEMORY_SERVICES, i + 100); j++) {
      batch.push(m.service(j, manyAddress(j)));
      batch.push(nodeEndpoints(lab, `many-${j}`));
    }
    await apply(lab, ...batch);
  }
  await new Promise((r) => setTimeout(r, 60000));
  // Every process of the machine: pods in a network namespace of their own are in none of the nodes'.
  // One lab runs at a time, so what matches is this lab's.
  const peak: Record<string, number> = {};
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').then((t) => t.split('\0').join(' ').trim(), () => '');
    for (const [label, re] of Object.entries(m.processes)) {
      if (!re.test(cmdline)) continue;
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const mib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      peak[label] = Math.max(peak[label] ?? 0, mib);
    }
  }
  return peak;
}

interface Cut {
  /** Infinity: no other node answered within a minute. */
  ms: number;
  leader: boolean;
  /** When another node took the leader's lease, if the cut node held it. */
  leaseMs?: number;
}

const memoryResults: Array<{profile: string; process: string; mib: number}> = [];

async function measure(profile: Profile): Promise<Cut[]> {
  const lab = await Lab.start({nodes: 3, privilegedNamespaces: profile.privileged, imageDirs: await profile.images?.()});
  try {
    const setup = await profile.setup(lab);
    for (const h of lab.hosts) lab.serveName(h.name);
    const client = await lab.addClient();

    // The client: one connection every 20 ms, each answer (or '-') with the time it came.
    const prober = startProber(client, ADDRESS, 80);
    const answers = prober.answers;
    const last = prober.last;
    const cuts: Cut[] = [];
    try {
      await waitFor('the client answered', async () => Boolean(last()) && last() !== '-', 120000);
      for (let i = 0; i < CUTS; i++) {
        // A random moment within the heartbeat interval (and past any announcement still going).
        await new Promise((r) => setTimeout(r, Math.random() * profile.beatMs));
        // The holder is the node that answers now: after a restore the claims may be handed back (a
        // handoff leaves a moment without an answer), so wait for one.
        await waitFor('an answer before the cut', async () => Boolean(last()) && last() !== '-', 60000);
        const holder = last()!;
        if (profile.cut === 'leader') await leadFrom(lab, setup, holder);
        if (profile.cut === 'api-down') {
          await lab.k8s.stopApiServer();
          // Past the fence time: every controller has lost the API before the cut.
          await new Promise((r) => setTimeout(r, 3000));
        }
        const leader = profile.cut === 'api-down' ? false : (await setup.leaderNode?.()) === holder;
        const cut = Date.now();
        await lab.loseNode(holder);
        let leaseMs: number | undefined;
        let asked = 0;
        const answered = await waitFor(`an answer from another node than ${holder}`, async () => {
          // The lease is read at most every 250 ms, to keep the API server's load that of the system under test.
          if (leader && leaseMs === undefined && Date.now() - asked >= 250) {
            asked = Date.now();
            if ((await setup.leaderNode!()) !== holder) leaseMs = Date.now() - cut;
          }
          return answers.some((a) => a.at >= cut && a.from !== '-' && a.from !== holder);
        }, 60000).then(() => true, () => false);
        if (profile.cut === 'api-down') await lab.k8s.startApiServer();
        if (!answered) {
          cuts.push({ms: Infinity, leader, leaseMs});
          process.stderr.write(`  cut ${i + 1}/${CUTS}: ${holder}: no other node answered within 60 s${leaseMs === undefined ? '' : ` (another node took the lease after ${leaseMs} ms)`}; stopping this profile\n`);
          break;
        }
        const first = answers.find((a) => a.at >= cut && a.from !== '-' && a.from !== holder)!;
        const took = first.at - cut;
        cuts.push({ms: took, leader, leaseMs});
        process.stderr.write(`  cut ${i + 1}/${CUTS}: ${holder}${leader ? ` (ran the leader; ${leaseMs === undefined ? 'answered before the lease moved' : `the lease moved after ${leaseMs} ms`})` : ''} -> ${first.from} in ${took} ms\n`);
        await lab.restoreNode(holder);
        // Until the restored node's pod serves again (Ready), so the next cut starts from three live nodes.
        await waitFor(`${holder}'s pod ready`, async () => {
          const r = await lab.kubectl(['get', 'pods', '-n', setup.namespace, '-l', setup.podSelector, '--field-selector', `spec.nodeName=${holder}`, '-o', 'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}']);
          return r.stdout.trim() === 'True';
        }, 120000);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      prober.stop();
    }
    if (profile.memory && !process.argv.includes('--no-memory')) {
      process.stderr.write(`  ${MEMORY_SERVICES} Services, then the peak memory of each process a minute later\n`);
      const peak = await peakMemory(lab, profile.memory);
      for (const name of Object.keys(profile.memory.processes)) memoryResults.push({profile: profile.name, process: name, mib: peak[name] ?? Number.NaN});
    }
    return cuts;
  } finally {
    // EXTIP_BENCH_LOGS=<dir>: what every pod on each node printed, for reading a slow cut after the run.
    // A log that cannot be written is said, and the lab stops all the same.
    const logs = process.env.EXTIP_BENCH_LOGS;
    if (logs) {
      const slug = profile.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
      await mkdir(logs, {recursive: true})
        .then(async () => {
          for (const k of lab.nodeKubelets) await writeFile(`${logs}/${slug}-${k.name}.log`, `${k.events.join('\n')}\n${k.allLogs()}`);
        })
        .catch((err: Error) => console.error(`  cannot keep the pods' logs in ${logs}: ${err.message}`));
    }
    await lab.stop();
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const results: Array<{name: string; p50: number; p95: number; max: number; note: string}> = [];
for (const profile of profiles) {
  process.stderr.write(`${profile.name}: ${CUTS} cuts\n`);
  let cuts: Cut[];
  try {
    cuts = await measure(profile);
  } catch (err) {
    if (!isPeer(profile)) throw err;
    console.error(`${profile.name}: ${(err as Error).message}`);
    continue;
  }
  const times = cuts.map((c) => c.ms).sort((a, b) => a - b);
  const leaderCuts = cuts.filter((c) => c.leader);
  const others = cuts.filter((c) => !c.leader).map((c) => c.ms).sort((a, b) => a - b);
  const failed = cuts.find((c) => c.ms === Infinity);
  const note = failed ? `no failover within 60 s at cut ${cuts.length}${failed.leaseMs === undefined ? '' : `, though another node took the lease after ${failed.leaseMs} ms`}`
    : isKubeVip(profile) ? 'the holder is the leader'
    : profile.setup === metallb ? `MetalLB ${metallbVersion}: no leader; the announcing speaker is chosen per Service among those memberlist holds live`
    : leaderCuts.length ? `${leaderCuts.length} cut(s) of the leader's node, max ${Math.max(...leaderCuts.map((c) => c.ms))} ms; the others p95 ${others.length ? pct(others, 95) : '-'} ms`
    : 'no cut hit the leader\'s node';
  results.push({name: profile.name, p50: pct(times, 50), p95: pct(times, 95), max: times[times.length - 1], note: `${note} (${cuts.length} cuts)`});
}
const baseline = results.find((r) => r.name.startsWith('baseline:'));
console.log(`failover: link cut to first answer from the new holder, ${CUTS} cuts each`);
console.log('profile'.padEnd(34) + 'p50 ms'.padStart(9) + 'p95 ms'.padStart(9) + 'max ms'.padStart(9) + '   ' + 'ratio p95 to baseline'.padEnd(24) + 'note');
const ratio = (a: number, b: number) => (a / b).toFixed(2);
for (const r of results) {
  const ms = (v: number) => (Number.isFinite(v) ? String(v) : 'none');
  console.log(r.name.padEnd(34) + ms(r.p50).padStart(9) + ms(r.p95).padStart(9) + ms(r.max).padStart(9) + '   ' + (baseline && Number.isFinite(r.p95) ? ratio(r.p95, baseline.p95) : '-').padEnd(24) + r.note);
}
if (memoryResults.length) {
  const reference = memoryResults.find((r) => r.process === 'extip claimcontroller');
  console.log(`\nmemory: peak resident (VmHWM) with ${MEMORY_SERVICES} Services, the largest of each kind, a minute after they were created`);
  console.log('process'.padEnd(24) + 'MiB'.padStart(8) + '   ' + 'ratio to extip\'s controller'.padEnd(30) + 'profile');
  for (const r of memoryResults) {
    const mib = Number.isFinite(r.mib) ? r.mib.toFixed(1) : 'not found';
    console.log(r.process.padEnd(24) + mib.padStart(8) + '   ' + (reference && Number.isFinite(r.mib) ? (r.mib / reference.mib).toFixed(2) : '-').padEnd(30) + r.profile);
  }
}
