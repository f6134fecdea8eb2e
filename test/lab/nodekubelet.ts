/**
 * The lab's kubelet for the real control plane, one per node, as faithful to
 * the pod spec as a machine without a container runtime allows.
 *
 * It registers its Node with the node's own credentials (system:node:<name>,
 * so the Node authorizer and NodeRestriction apply to it), reports addresses,
 * capacity and Ready, renews its Lease in kube-node-lease, and watches the Pods
 * the scheduler binds to it. A container runs from the image it names (the
 * lab's images, test/lab/images.ts) under runc, with the OCI spec a CRI runtime
 * writes (see ociSpec); one naming lab/none runs its command as a process in
 * the node's network namespace and a mount namespace of its own. Either way
 * hostPath volumes (under the node's root directory), configMap and secret
 * volumes (secrets kept up to date) and the projected service-account token
 * (TokenRequest, bound to the pod), ca.crt and namespace are bind-mounted at
 * their paths. Env includes downward-API fieldRefs and
 * KUBERNETES_SERVICE_HOST/PORT. Probes run as declared (HTTP and TCP ones from
 * the node to the pod's address); a container that exits
 * restarts with back-off (CrashLoopBackOff); a deleted Pod's processes get
 * SIGTERM, then SIGKILL after the grace period. A spec the lab cannot honour
 * (a pod network) gets a status that says so, and an image the lab does not
 * have, ErrImagePull.
 */
import {spawn, type ChildProcess} from 'node:child_process';
import {existsSync} from 'node:fs';
import {chown, mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises';
import {request as httpsRequest} from 'node:https';
import {dirname, join} from 'node:path';
import {execa} from 'execa';
import YAML from 'yaml';
import {type LabImage, NO_IMAGE} from './images.js';
import {trackNamespace, trackRuncRoot, untrackNamespace} from './procs.js';

type Json = Record<string, any>;

/** A small client with a node's client certificate. */
export class NodeClient {
  /** While set, every request fails as if the network between the node and the API server were down. */
  partitioned = false;

  constructor(private url: string, private tls: {ca: string; cert: string; key: string}) {}

  static async fromKubeconfig(file: string, url: string): Promise<NodeClient> {
    const cfg = YAML.parse(await readFile(file, 'utf8'));
    const user = cfg.users[0].user;
    const cluster = cfg.clusters[0].cluster;
    return new NodeClient(url, {ca: await readFile(cluster['certificate-authority'], 'utf8'), cert: await readFile(user['client-certificate'], 'utf8'), key: await readFile(user['client-key'], 'utf8')});
  }

  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{status: number; body: Json}> {
    // An explicit length: Node sends a DELETE body unframed (and so unread) without one.
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = payload ? {'Content-Type': contentType, 'Content-Length': String(payload.length)} : {};
    if (this.partitioned) return Promise.reject(new Error(`${method} ${path}: the node is cut off from the API server`));
    return new Promise((resolve, reject) => {
      const req = httpsRequest(`${this.url}${path}`, {method, ...this.tls, headers, timeout: 15000}, (res) => {
        let data = '';
        res.on('data', (d) => (data += d));
        res.on('end', () => {
          let parsed: Json = {};
          try {
            parsed = data ? JSON.parse(data) : {};
          } catch {
            parsed = {raw: data};
          }
          resolve({status: res.statusCode ?? 0, body: parsed});
        });
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** Streams watch events until the connection ends; resolves then. */
  watch(path: string, onEvent: (type: string, object: Json) => void, signal: AbortSignal): Promise<void> {
    if (this.partitioned) return Promise.resolve();
    return new Promise((resolve) => {
      const req = httpsRequest(`${this.url}${path}`, {method: 'GET', ...this.tls, signal}, (res) => {
        let buf = '';
        res.on('data', (d) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i).trim();
            buf = buf.slice(i + 1);
            if (line) {
              try {
                const e = JSON.parse(line);
                onEvent(e.type, e.object);
              } catch {
                /* a torn line: the relist repairs */
              }
            }
          }
        });
        res.on('end', () => resolve());
        res.on('error', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
  }
}

interface Running {
  name: string;
  /** What the current run printed (stdout and stderr), as kubectl logs shows it. */
  output?: Buffer[];
  child?: ChildProcess;
  restarts: number;
  ready: boolean;
  started?: string;
  lastExit?: {exitCode: number; finishedAt: string; startedAt: string; reason: string};
  waiting?: {reason: string; message?: string};
  /** The runc container of the current run, when the container runs from an image. */
  runcId?: string;
  backoffUntil: number;
  timers: NodeJS.Timeout[];
  probeFailures: number;
}

interface PodState {
  uid: string;
  namespace: string;
  name: string;
  pod: Json;
  dir: string;
  containers: Map<string, Running>;
  deleting: boolean;
  unsupported?: string;
  /** Set when a container names an image the lab does not have: the pod stays Pending. */
  pullError?: string;
  startTime: string;
  /** The network namespace its containers run in: the node's (hostNetwork) or the pod's own. */
  netns: string;
  podIP: string;
  /** The pod's own network: its namespace and the socat that brings the API to its loopback. */
  network?: {ns: string; api: ChildProcess};
  /** The timer that keeps its secret volumes up to date. */
  secretSync?: ReturnType<typeof setInterval>;
}

export interface NodeKubeletOptions {
  name: string;
  /** The node's network namespace. */
  ns: string;
  ip: string;
  /** The node's root directory: hostPath volumes live under it. */
  root: string;
  /** API URL from this machine, and the node's kubeconfig (its client certificate). */
  url: string;
  kubeconfig: string;
  labels?: Record<string, string>;
  /** Where pods' token and scratch files go. */
  dir: string;
  /** First restart back-off; the kubelet's is 10 s, doubling to 300 s. */
  backoffSeconds?: number;
  /** The node's pod CIDR, a /24 (10.244.N.0/24): pods without hostNetwork get .2 to .254. */
  podCidr?: string;
  /** The unix socket of the node's way to the API server, brought to each pod's 127.0.0.1:6443. */
  apiSocket?: string;
  /**
   * Lease renewal interval; the lease lasts 5 times as long. The kubelet's is 10 s
   * of 40 s; the lab's controller-manager is set to match what the lab passes.
   */
  heartbeatSeconds?: number;
  /** The images this node has (test/lab/images.ts): a container naming one runs from it under runc. */
  images?: Map<string, LabImage>;
}

const BACKOFF_MAX = 300;
/** How often a running pod's secret volumes are brought up to date. */
const SECRET_SYNC_MS = 5000;

/** The capabilities a container runtime (containerd, CRI-O) gives a container before its securityContext's drop and add. */
const DEFAULT_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'];

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m);
}

function fieldRef(pod: Json, path: string, hostIP: string, podIP = hostIP): string | undefined {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return pod.metadata?.[m[1]]?.[m[2]];
  switch (path) {
    case 'metadata.name': return pod.metadata.name;
    case 'metadata.namespace': return pod.metadata.namespace;
    case 'metadata.uid': return pod.metadata.uid;
    case 'spec.nodeName': return pod.spec.nodeName;
    case 'spec.serviceAccountName': return pod.spec.serviceAccountName;
    case 'status.hostIP': return hostIP;
    case 'status.podIP': return podIP;
    default: return undefined;
  }
}

export class NodeKubelet {
  readonly events: string[] = [];
  private client!: NodeClient;
  private pods = new Map<string, PodState>();
  /** What the containers of deleted pods printed, for a failed test's message (a drain's story is in them). */
  private deletedOutput: Array<{namespace: string; pod: string; container: string; text: string}> = [];
  private abort = new AbortController();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private leaseRv?: string;

  constructor(readonly options: NodeKubeletOptions) {}

  get name(): string {
    return this.options.name;
  }

  private get heartbeatSeconds(): number {
    return this.options.heartbeatSeconds ?? 10;
  }

  /**
   * Cuts this kubelet off from the API server, as a dead kubelet or a network
   * partition would: no heartbeats, no status, no watch. Its containers go on
   * running. The node lifecycle controller then marks the Node and its Pods
   * not ready after its grace period.
   */
  partition(): void {
    this.client.partitioned = true;
    this.abort.abort();
    this.abort = new AbortController();
  }

  /** Ends a partition: heartbeats, node status and every pod's status again. */
  async heal(): Promise<void> {
    this.client.partitioned = false;
    this.leaseRv = undefined;
    await this.heartbeat(); // finds the Lease
    await this.heartbeat(); // renews it
    await this.patchNodeStatus();
    await Promise.all([...this.pods.values()].map((s) => this.reportStatus(s)));
  }

  async start(): Promise<void> {
    this.client = await NodeClient.fromKubeconfig(this.options.kubeconfig, this.options.url);
    await mkdir(this.options.dir, {recursive: true});
    await this.register();
    await this.heartbeat();
    this.timers.push(setInterval(() => void this.heartbeat().catch(() => {}), this.heartbeatSeconds * 1000));
    void this.watchPods();
  }

  private nodeStatus(): Json {
    const t = now();
    return {
      addresses: [{type: 'InternalIP', address: this.options.ip}, {type: 'Hostname', address: this.name}],
      capacity: {cpu: '2', memory: '4Gi', pods: '110', 'ephemeral-storage': '20Gi'},
      allocatable: {cpu: '2', memory: '4Gi', pods: '110', 'ephemeral-storage': '20Gi'},
      conditions: [
        {type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'lab node', lastHeartbeatTime: t, lastTransitionTime: t},
        {type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'lab node', lastHeartbeatTime: t, lastTransitionTime: t},
        {type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'lab node', lastHeartbeatTime: t, lastTransitionTime: t},
        {type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'lab kubelet is posting ready status (processes, no container runtime)', lastHeartbeatTime: t, lastTransitionTime: t},
      ],
      nodeInfo: {
        machineID: this.name, systemUUID: this.name, bootID: this.name, kernelVersion: '', osImage: 'extip lab',
        containerRuntimeVersion: 'lab://processes', kubeletVersion: 'v0.0.0-lab', kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64',
      },
      daemonEndpoints: {kubeletEndpoint: {Port: 10250}},
    };
  }

  private async register(): Promise<void> {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {name: this.name, labels: {'kubernetes.io/hostname': this.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', ...this.options.labels}},
      spec: {},
    };
    const r = await this.client.request('POST', '/api/v1/nodes', node);
    if (r.status !== 201 && r.status !== 409) throw new Error(`registering node ${this.name}: ${r.status} ${JSON.stringify(r.body)}`);
    await this.patchNodeStatus();
  }

  private async patchNodeStatus(): Promise<void> {
    const r = await this.client.request('PATCH', `/api/v1/nodes/${this.name}/status`, {status: this.nodeStatus()}, 'application/strategic-merge-patch+json');
    if (r.status !== 200) throw new Error(`node ${this.name} status: ${r.status} ${JSON.stringify(r.body)}`);
  }

  private heartbeatCount = 0;
  private async heartbeat(): Promise<void> {
    if (this.stopped) return;
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.name}`;
    const spec = {holderIdentity: this.name, leaseDurationSeconds: this.heartbeatSeconds * 5, renewTime: new Date().toISOString().replace('Z', '000Z')};
    if (!this.leaseRv) {
      const r = await this.client.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: {name: this.name, namespace: 'kube-node-lease'}, spec,
      });
      if (r.status === 201) this.leaseRv = r.body.metadata.resourceVersion;
      else if (r.status === 409) this.leaseRv = (await this.client.request('GET', path)).body.metadata?.resourceVersion;
      return;
    }
    const r = await this.client.request('PUT', path, {apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: {name: this.name, namespace: 'kube-node-lease', resourceVersion: this.leaseRv}, spec});
    this.leaseRv = r.status === 200 ? r.body.metadata.resourceVersion : undefined;
    // The status's heartbeat every 4th lease renewal (the kubelet's 40 s --node-status-report-frequency, shortened).
    if (++this.heartbeatCount % 4 === 0) await this.patchNodeStatus().catch(() => {});
  }

  private async watchPods(): Promise<void> {
    const selector = encodeURIComponent(`spec.nodeName=${this.name}`);
    while (!this.stopped) {
      try {
        const list = await this.client.request('GET', `/api/v1/pods?fieldSelector=${selector}`);
        if (list.status !== 200) throw new Error(`listing pods: ${list.status}`);
        const seen = new Set<string>();
        for (const pod of list.body.items ?? []) {
          seen.add(pod.metadata.uid);
          this.onPod('MODIFIED', pod);
        }
        for (const [uid, state] of this.pods) if (!seen.has(uid)) void this.teardown(state, 0, false);
        await this.client.watch(`/api/v1/pods?watch=1&allowWatchBookmarks=false&fieldSelector=${selector}&resourceVersion=${list.body.metadata.resourceVersion}`, (type, obj) => this.onPod(type, obj), this.abort.signal);
      } catch {
        /* the API server is away: try again */
      }
      if (!this.stopped) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  private onPod(type: string, pod: Json): void {
    if (this.stopped || !pod?.metadata?.uid) return;
    const uid = pod.metadata.uid as string;
    let state = this.pods.get(uid);
    if (type === 'DELETED') {
      if (state) void this.teardown(state, 0, false);
      return;
    }
    if (!state) {
      if (pod.metadata.deletionTimestamp) {
        void this.client.request('DELETE', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, {kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: {uid}});
        return;
      }
      if (['Succeeded', 'Failed'].includes(pod.status?.phase)) return;
      state = {uid, namespace: pod.metadata.namespace, name: pod.metadata.name, pod, dir: join(this.options.dir, uid), containers: new Map(), deleting: false, startTime: now(), netns: this.options.ns, podIP: this.options.ip};
      this.pods.set(uid, state);
      void this.startPodOrReport(state);
      return;
    }
    state.pod = pod;
    if (pod.metadata.deletionTimestamp && !state.deleting) {
      void this.teardown(state, pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30, true);
    }
  }

  /** Why the lab cannot run this pod, or undefined. */
  private unsupported(pod: Json): string | undefined {
    if (!pod.spec.hostNetwork && (!this.options.podCidr || !this.options.apiSocket)) return 'this lab node has no pod network: it runs only hostNetwork pods';
    for (const c of pod.spec.containers ?? []) {
      if (c.image === NO_IMAGE && !c.command?.length) return `container ${c.name} has image ${NO_IMAGE} (the node's own files) and no command to run there`;
    }
    for (const v of pod.spec.volumes ?? []) {
      if (!v.hostPath && !v.projected && !v.configMap && !v.secret && !v.emptyDir) return `volume ${v.name}: the lab mounts hostPath, projected, configMap, secret and emptyDir volumes only`;
    }
    if (pod.spec.initContainers?.length) return 'the lab does not run init containers';
    return undefined;
  }

  /**
   * Starts a pod; when that fails (a token the API refused, a volume that
   * cannot be written), says so in the pod's status, as the kubelet does with
   * CreateContainerConfigError, and tries again after a back-off.
   */
  private async startPodOrReport(state: PodState, attempt = 0): Promise<void> {
    try {
      await this.startPod(state);
    } catch (err) {
      const message = String((err as Error)?.message ?? err);
      this.events.push(`start ${state.namespace}/${state.name}: ${message}`);
      if (this.stopped || state.deleting) return;
      await this.stopContainers(state);
      for (const c of state.pod.spec.containers ?? []) {
        state.containers.set(c.name, {name: c.name, restarts: 0, ready: false, waiting: {reason: 'CreateContainerConfigError', message}, backoffUntil: 0, timers: [], probeFailures: 0});
      }
      await this.reportStatus(state).catch(() => {});
      const delay = Math.min(30000, 1000 * 2 ** attempt);
      setTimeout(() => {
        if (!this.stopped && !state.deleting && this.pods.get(state.uid) === state) void this.startPodOrReport(state, attempt + 1);
      }, delay);
    }
  }

  /** Stops a pod's containers started so far (a start that failed half way) and its network. */
  private async stopContainers(state: PodState): Promise<void> {
    await Promise.all([...state.containers.values()].map(async (r) => {
      for (const t of r.timers.splice(0)) clearTimeout(t);
      if (r.child) await this.kill(r.child, 0, r.runcId);
    }));
    state.containers.clear();
    if (state.secretSync) clearInterval(state.secretSync);
    state.secretSync = undefined;
    if (state.network) {
      state.network.api.kill('SIGKILL');
      await execa('ip', ['netns', 'del', state.network.ns], {reject: false});
      untrackNamespace(state.network.ns);
      state.network = undefined;
      state.netns = this.options.ns;
      state.podIP = this.options.ip;
    }
  }

  private async startPod(state: PodState): Promise<void> {
    const pod = state.pod;
    const why = this.unsupported(pod);
    if (why) {
      state.unsupported = why;
      for (const c of pod.spec.containers ?? []) state.containers.set(c.name, {name: c.name, restarts: 0, ready: false, waiting: {reason: 'LabUnsupported', message: why}, backoffUntil: 0, timers: [], probeFailures: 0});
      this.events.push(`unsupported ${state.namespace}/${state.name}: ${why}`);
      await this.reportStatus(state);
      return;
    }
    const missing = (pod.spec.containers as Json[]).filter((c) => c.image !== NO_IMAGE && !this.options.images?.has(c.image));
    if (missing.length) {
      const have = [...(this.options.images?.keys() ?? [])];
      for (const c of pod.spec.containers as Json[]) {
        const message = `Failed to pull image "${c.image}": the lab has no such image; it has ${have.length ? have.join(', ') : 'none'} (npm run image builds extip's), and ${NO_IMAGE} runs a command on the node's own files`;
        state.containers.set(c.name, {name: c.name, restarts: 0, ready: false, waiting: missing.includes(c) ? {reason: 'ErrImagePull', message} : {reason: 'PodInitializing'}, backoffUntil: 0, timers: [], probeFailures: 0});
      }
      state.pullError = missing.map((c) => c.image).join(', ');
      this.events.push(`no image ${state.namespace}/${state.name}: ${state.pullError}`);
      await this.reportStatus(state);
      return;
    }
    await mkdir(state.dir, {recursive: true});
    if (!pod.spec.hostNetwork) await this.podNetwork(state);
    await this.writeVolumes(state);
    this.syncSecretVolumes(state);
    for (const c of pod.spec.containers) {
      const running: Running = {name: c.name, restarts: 0, ready: false, backoffUntil: 0, timers: [], probeFailures: 0};
      state.containers.set(c.name, running);
      await this.runContainer(state, c, running);
    }
    await this.reportStatus(state);
  }

  /**
   * A pod network the way Calico builds one: the pod's own network namespace,
   * a veth whose node end answers ARP for everything (proxy_arp), the pod's
   * /32 routed to it on the node, and the pod's default route via
   * 169.254.1.1. The kubernetes Service is the API server on the pod's own
   * 127.0.0.1:6443 (the node's way to it, brought in by socat), as
   * KUBERNETES_SERVICE_HOST says.
   */
  private async podNetwork(state: PodState): Promise<void> {
    const used = new Set([...this.pods.values()].map((p) => p.podIP));
    const prefix = this.options.podCidr!.replace(/\.0\/24$/, '');
    let k = 2;
    while (used.has(`${prefix}.${k}`)) k++;
    if (k > 254) throw new Error(`node ${this.name}: its pod CIDR ${this.options.podCidr} is full`);
    const ip = `${prefix}.${k}`;
    const ns = `${this.options.ns}-p${k}`;
    const veth = `pod${k}`;
    trackNamespace(ns);
    await execa('ip', ['netns', 'del', ns], {reject: false});
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', this.options.ns, '-batch', '-'], {
      input: [`link add ${veth} type veth peer name eth0 netns ${ns}`, `link set ${veth} up`, `route add ${ip}/32 dev ${veth}`].join('\n') + '\n',
    });
    // Proxy ARP answers only on an interface that forwards (Calico turns forwarding on for its veths too).
    await execa('ip', ['netns', 'exec', this.options.ns, 'sysctl', '-qw', `net.ipv4.conf.${veth}.proxy_arp=1`, `net.ipv4.conf.${veth}.forwarding=1`]);
    await execa('ip', ['-n', ns, '-batch', '-'], {
      input: ['link set lo up', `address add ${ip}/32 dev eth0`, 'link set eth0 up', 'route add 169.254.1.1 dev eth0 scope link', 'route add default via 169.254.1.1 dev eth0'].join('\n') + '\n',
    });
    const api = spawn('ip', ['netns', 'exec', ns, 'socat', 'TCP-LISTEN:6443,bind=127.0.0.1,reuseaddr,fork', `UNIX-CONNECT:${this.options.apiSocket}`], {stdio: 'ignore'});
    state.netns = ns;
    state.podIP = ip;
    state.network = {ns, api};
    for (let i = 0; i < 100; i++) {
      const r = await execa('ip', ['netns', 'exec', ns, 'socat', '-u', 'OPEN:/dev/null', 'TCP:127.0.0.1:6443'], {reject: false});
      if (r.exitCode === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`pod ${state.namespace}/${state.name}: the API is not reachable in its network namespace`);
  }

  /** Files for projected (token, ca.crt, namespace), configMap and emptyDir volumes. */
  private async writeVolumes(state: PodState): Promise<void> {
    const pod = state.pod;
    for (const v of pod.spec.volumes ?? []) {
      const dir = join(state.dir, 'volumes', v.name);
      await mkdir(dir, {recursive: true});
      if (v.projected) {
        for (const source of v.projected.sources ?? []) {
          if (source.serviceAccountToken) {
            const r = await this.client.request('POST', `/api/v1/namespaces/${state.namespace}/serviceaccounts/${pod.spec.serviceAccountName}/token`, {
              apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
              spec: {audiences: source.serviceAccountToken.audience ? [source.serviceAccountToken.audience] : [], expirationSeconds: source.serviceAccountToken.expirationSeconds ?? 3607, boundObjectRef: {kind: 'Pod', apiVersion: 'v1', name: state.name, uid: state.uid}},
            });
            if (r.status !== 201) throw new Error(`token for ${state.namespace}/${pod.spec.serviceAccountName}: ${r.status} ${JSON.stringify(r.body)}`);
            const token = join(dir, source.serviceAccountToken.path);
            await writeFile(token, r.body.status.token, {mode: 0o600});
            // As the kubelet does: readable by the pod's user when every container runs as the same non-root one.
            const users = new Set((pod.spec.containers as Json[]).map((c) => c.securityContext?.runAsUser ?? pod.spec.securityContext?.runAsUser ?? 0));
            if (users.size === 1 && [...users][0] !== 0) {
              const ctr = (pod.spec.containers as Json[])[0];
              await chown(token, Number([...users][0]), Number(ctr.securityContext?.runAsGroup ?? pod.spec.securityContext?.runAsGroup ?? 0));
            }
          }
          if (source.configMap) await this.writeConfigMap(state.namespace, source.configMap.name, source.configMap.items, dir);
          if (source.downwardAPI) {
            for (const item of source.downwardAPI.items ?? []) {
              if (item.fieldRef) await writeFile(join(dir, item.path), fieldRef(pod, item.fieldRef.fieldPath, this.options.ip, state.podIP) ?? '');
            }
          }
        }
      }
      if (v.configMap) await this.writeConfigMap(state.namespace, v.configMap.name, v.configMap.items, dir);
      if (v.secret) await this.writeSecret(state.namespace, v.secret, dir);
    }
  }

  /**
   * A secret volume's files, written again every SECRET_SYNC_MS while the pod
   * runs, as the kubelet syncs them (within its sync period, a minute by
   * default): a controller that writes its own certificate into the Secret
   * (a webhook's) finds it in the volume later.
   */
  private async writeSecret(namespace: string, secret: Json, dir: string): Promise<void> {
    const r = await this.client.request('GET', `/api/v1/namespaces/${namespace}/secrets/${secret.secretName}`);
    if (r.status !== 200 && !(r.status === 404 && secret.optional)) throw new Error(`secret ${namespace}/${secret.secretName}: ${r.status}`);
    const data = (r.body.data ?? {}) as Record<string, string>;
    const items = (secret.items as Array<{key: string; path: string}> | undefined) ?? Object.keys(data).map((k) => ({key: k, path: k}));
    for (const {key, path} of items) {
      const file = join(dir, path);
      const content = Buffer.from(data[key] ?? '', 'base64');
      const now = await readFile(file).catch(() => undefined);
      if (!now || !now.equals(content)) {
        // Replaced whole (a rename), so that a reader never sees half a file.
        await writeFile(`${file}.tmp`, content, {mode: secret.defaultMode ?? 0o644});
        await rename(`${file}.tmp`, file);
      }
    }
  }

  private syncSecretVolumes(state: PodState): void {
    const volumes = ((state.pod.spec.volumes ?? []) as Json[]).filter((v) => v.secret);
    if (!volumes.length) return;
    state.secretSync = setInterval(() => {
      for (const v of volumes) void this.writeSecret(state.namespace, v.secret, join(state.dir, 'volumes', v.name)).catch(() => undefined);
    }, SECRET_SYNC_MS);
  }

  private async writeConfigMap(namespace: string, name: string, items: Array<{key: string; path: string}> | undefined, dir: string): Promise<void> {
    const r = await this.client.request('GET', `/api/v1/namespaces/${namespace}/configmaps/${name}`);
    if (r.status !== 200) throw new Error(`configmap ${namespace}/${name}: ${r.status}`);
    const data = (r.body.data ?? {}) as Record<string, string>;
    for (const {key, path} of items ?? Object.keys(data).map((k) => ({key: k, path: k}))) await writeFile(join(dir, path), data[key] ?? '');
  }

  private async containerEnv(state: PodState, c: Json): Promise<Record<string, string>> {
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOSTNAME: state.pod.spec.hostNetwork ? this.name : state.name,
      // The kubernetes Service, as kube-proxy would make it reachable: here the API on the node's loopback.
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: '6443',
      KUBERNETES_SERVICE_PORT_HTTPS: '6443',
      KUBERNETES_PORT: 'tcp://127.0.0.1:6443',
    };
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = expand(String(e.value), env);
      else if (e.valueFrom?.fieldRef) env[e.name] = fieldRef(state.pod, e.valueFrom.fieldRef.fieldPath, this.options.ip, state.podIP) ?? '';
      else if (e.valueFrom?.configMapKeyRef) {
        const r = await this.client.request('GET', `/api/v1/namespaces/${state.namespace}/configmaps/${e.valueFrom.configMapKeyRef.name}`);
        env[e.name] = r.body.data?.[e.valueFrom.configMapKeyRef.key] ?? '';
      } else if (e.valueFrom?.secretKeyRef) {
        const r = await this.client.request('GET', `/api/v1/namespaces/${state.namespace}/secrets/${e.valueFrom.secretKeyRef.name}`);
        const v = r.body.data?.[e.valueFrom.secretKeyRef.key];
        env[e.name] = v ? Buffer.from(v, 'base64').toString('utf8') : '';
      }
    }
    return env;
  }

  /**
   * Where a hostPath lives on this node: under its root. A path under a lab
   * host's root (the lab's inventories give each host its own extip_state_dir
   * there, and one DaemonSet carries the first host's) is the same path under
   * this node's root, as /run/extip is the same path on every real node.
   */
  private hostPath(path: string): string {
    const hosts = dirname(this.options.root);
    if (path.startsWith(hosts + '/')) return join(this.options.root, path.slice(hosts.length + 1).split('/').slice(1).join('/'));
    return join(this.options.root, path);
  }

  /** runc's state directory for this node's containers. */
  private get runcRoot(): string {
    return join(this.options.dir, 'runc');
  }

  /** Where a volume's files are on this machine. */
  private volumeSource(state: PodState, v: Json): string {
    return v.hostPath ? this.hostPath(v.hostPath.path) : join(state.dir, 'volumes', v.name);
  }

  /**
   * The OCI runtime spec of a container run from an image, as a CRI runtime
   * writes it: the image's root filesystem (read-only if the securityContext
   * says so), its entrypoint and env under the container's command, args and
   * env; the user, group, capabilities (the runtime's defaults, then drop and
   * add) and no_new_privs of the securityContext; the volumes bind-mounted; the
   * pod's network namespace joined, its own pid, ipc, uts and mount namespaces.
   * Not applied: seccomp profiles, AppArmor, cgroup limits.
   */
  private ociSpec(state: PodState, c: Json, image: LabImage, env: Record<string, string>): Json {
    const sc: Json = {...(state.pod.spec.securityContext ?? {}), ...(c.securityContext ?? {})};
    const uid = Number(sc.runAsUser ?? 0);
    const gid = Number(sc.runAsGroup ?? 0);
    if (sc.runAsNonRoot && uid === 0) throw new Error(`container ${c.name} has runAsNonRoot and image will run as root`);
    const drop = new Set<string>((sc.capabilities?.drop ?? []).map((x: string) => x.toUpperCase()));
    const caps = new Set<string>(drop.has('ALL') ? [] : DEFAULT_CAPS.filter((x) => !drop.has(x)));
    for (const add of sc.capabilities?.add ?? []) caps.add(String(add).toUpperCase());
    const set = [...caps].sort().map((x) => `CAP_${x}`);
    // A process that is not root keeps capabilities in its bounding set only, as under containerd.
    const active = uid === 0 ? set : [];
    const vars = new Map<string, string>(image.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    for (const [k, v] of Object.entries(env)) if (k !== 'PATH') vars.set(k, v);
    const expandIn = (a: string) => expand(String(a), Object.fromEntries(vars));
    const args = c.command?.length ? [...c.command, ...(c.args ?? [])] : [...image.entrypoint, ...(c.args ?? image.cmd)];
    const mounts: Json[] = [
      {destination: '/proc', type: 'proc', source: 'proc'},
      {destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
      {destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620']},
      {destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
      {destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev']},
      {destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro']},
    ];
    for (const m of c.volumeMounts ?? []) {
      const v = (state.pod.spec.volumes ?? []).find((x: Json) => x.name === m.name);
      if (v) mounts.push({destination: m.mountPath, type: 'bind', source: this.volumeSource(state, v), options: ['rbind', m.readOnly ? 'ro' : 'rw']});
    }
    return {
      ociVersion: '1.0.2',
      process: {
        terminal: false,
        user: {uid, gid, additionalGids: [...(state.pod.spec.securityContext?.supplementalGroups ?? []), ...(state.pod.spec.securityContext?.fsGroup !== undefined ? [state.pod.spec.securityContext.fsGroup] : [])]},
        args: args.map(expandIn),
        env: [...vars].map(([k, v]) => `${k}=${v}`),
        cwd: c.workingDir || image.workingDir || '/',
        capabilities: {bounding: set, effective: active, permitted: active, inheritable: [], ambient: []},
        noNewPrivileges: sc.allowPrivilegeEscalation === false,
      },
      root: {path: image.rootfs, readonly: sc.readOnlyRootFilesystem === true},
      hostname: state.pod.spec.hostNetwork ? this.name : state.name,
      mounts,
      linux: {
        namespaces: [{type: 'pid'}, {type: 'ipc'}, {type: 'uts'}, {type: 'mount'}, {type: 'network', path: `/var/run/netns/${state.netns}`}],
        maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
        readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      },
    };
  }

  /** The shell line that bind-mounts the pod's volumes at their paths inside the container's mount namespace. */
  private mounts(state: PodState, c: Json): string[] {
    const lines: string[] = [];
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    for (const m of c.volumeMounts ?? []) {
      const v = (state.pod.spec.volumes ?? []).find((x: Json) => x.name === m.name);
      if (!v) continue;
      let source: string;
      if (v.hostPath) {
        // Under the node's root; a path already there (the lab's inventories point extip_state_dir there) as it is.
        source = this.hostPath(v.hostPath.path);
        lines.push(`mkdir -p ${q(source)}`);
      } else {
        source = join(state.dir, 'volumes', v.name);
      }
      lines.push(`mkdir -p ${q(m.mountPath)}`, `mount --bind ${m.readOnly ? '-o ro ' : ''}${q(source)} ${q(m.mountPath)}`);
    }
    return lines;
  }

  private async runContainer(state: PodState, c: Json, running: Running): Promise<void> {
    if (this.stopped || state.deleting) return;
    const env = await this.containerEnv(state, c);
    const image = this.options.images?.get(c.image);
    let child: ChildProcess;
    if (image) {
      const id = `${this.name}-${state.uid.slice(0, 8)}-${c.name}-${running.restarts}`;
      const bundle = join(state.dir, 'bundles', id);
      await mkdir(bundle, {recursive: true});
      // hostPath directories are made when missing, as for type DirectoryOrCreate (the lab did so before images too).
      for (const m of c.volumeMounts ?? []) {
        const v = (state.pod.spec.volumes ?? []).find((x: Json) => x.name === m.name);
        if (v?.hostPath && v.hostPath.type !== 'File' && v.hostPath.type !== 'FileOrCreate') await mkdir(this.volumeSource(state, v), {recursive: true});
      }
      await writeFile(join(bundle, 'config.json'), JSON.stringify(this.ociSpec(state, c, image, env)));
      running.runcId = id;
      trackRuncRoot(this.runcRoot);
      child = spawn('runc', ['--root', this.runcRoot, 'run', '--bundle', bundle, id], {stdio: ['ignore', 'pipe', 'pipe']});
    } else {
      const argv = [...(c.command ?? []), ...(c.args ?? [])].map((a: string) => expand(String(a), env));
      const script = [...this.mounts(state, c), 'exec "$@"'].join(' && ');
      child = spawn('ip', ['netns', 'exec', state.netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'container', ...argv], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
        cwd: c.workingDir && existsSync(c.workingDir) ? c.workingDir : '/',
      });
    }
    running.child = child;
    running.started = now();
    running.waiting = undefined;
    running.ready = !c.readinessProbe;
    running.probeFailures = 0;
    const log = join(state.dir, `${c.name}.log`);
    const chunks: Buffer[] = [];
    running.output = chunks;
    child.stdout?.on('data', (d: Buffer) => chunks.push(d));
    child.stderr?.on('data', (d: Buffer) => chunks.push(d));
    this.events.push(`start ${state.namespace}/${state.name}/${c.name} pid ${child.pid}`);
    this.startProbes(state, c, running, child);
    child.once('exit', (code, signal) => {
      void writeFile(log, Buffer.concat(chunks)).catch(() => {});
      if (running.runcId) void execa('runc', ['--root', this.runcRoot, 'delete', '--force', running.runcId], {reject: false});
      for (const t of running.timers.splice(0)) clearInterval(t);
      const exitCode = code ?? (signal ? 128 + (({SIGKILL: 9, SIGTERM: 15, SIGINT: 2} as Record<string, number>)[signal] ?? 1) : 1);
      running.lastExit = {exitCode, finishedAt: now(), startedAt: running.started!, reason: exitCode === 0 ? 'Completed' : 'Error'};
      running.child = undefined;
      running.ready = false;
      this.events.push(`exit ${state.namespace}/${state.name}/${c.name} ${exitCode}`);
      if (this.stopped || state.deleting) return;
      // restartPolicy Always (the only one workloads use): back-off 10 s doubling to 300 s.
      const base = this.options.backoffSeconds ?? 10;
      const delay = Math.min(BACKOFF_MAX, base * 2 ** running.restarts);
      running.restarts++;
      running.waiting = {reason: 'CrashLoopBackOff', message: `back-off ${delay}s restarting failed container=${c.name} pod=${state.name}`};
      void this.reportStatus(state);
      const t = setTimeout(() => void this.runContainer(state, c, running).then(() => this.reportStatus(state)), delay * 1000);
      running.timers.push(t);
    });
  }

  /**
   * One probe, as the kubelet runs it: an HTTP or TCP one from the node (its
   * network namespace) to the pod's IP unless the probe names a host, on a port
   * given by number or by the name of one of the container's ports; an exec one
   * in the container's.
   */
  private async probe(p: Json, state: PodState, c: Json): Promise<boolean> {
    const netns = this.options.ns;
    const timeout = (p.timeoutSeconds ?? 1) * 1000;
    const port = (given: number | string) =>
      typeof given === 'number' || /^\d+$/.test(given) ? Number(given) : ((c.ports ?? []) as Json[]).find((x) => x.name === given)?.containerPort;
    if (p.httpGet) {
      const target = port(p.httpGet.port);
      if (target === undefined) return false;
      const path = p.httpGet.path ?? '/';
      const scheme = (p.httpGet.scheme ?? 'HTTP').toLowerCase();
      const r = await execa('ip', ['netns', 'exec', netns, 'curl', '-s', '-k', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', String(timeout / 1000), `${scheme}://${p.httpGet.host ?? state.podIP}:${target}${path}`], {reject: false});
      const status = Number(r.stdout);
      return status >= 200 && status < 400;
    }
    if (p.tcpSocket) {
      const target = port(p.tcpSocket.port);
      if (target === undefined) return false;
      const r = await execa('ip', ['netns', 'exec', netns, 'socat', '-u', 'OPEN:/dev/null', `TCP:${p.tcpSocket.host ?? state.podIP}:${target},connect-timeout=${timeout / 1000}`], {reject: false});
      return r.exitCode === 0;
    }
    if (p.exec) {
      const r = await execa('ip', ['netns', 'exec', state.netns, ...p.exec.command], {reject: false, timeout});
      return r.exitCode === 0;
    }
    return true;
  }

  private startProbes(state: PodState, c: Json, running: Running, child: ChildProcess): void {
    const schedule = (p: Json | undefined, onResult: (ok: boolean) => void) => {
      if (!p) return;
      const first = setTimeout(() => {
        const tick = async () => {
          if (running.child !== child) return;
          onResult(await this.probe(p, state, c).catch(() => false));
        };
        void tick();
        running.timers.push(setInterval(() => void tick(), (p.periodSeconds ?? 10) * 1000));
      }, (p.initialDelaySeconds ?? 0) * 1000);
      running.timers.push(first);
    };
    let readyStreak = 0;
    let failStreak = 0;
    schedule(c.readinessProbe, (ok) => {
      const p = c.readinessProbe;
      readyStreak = ok ? readyStreak + 1 : 0;
      failStreak = ok ? 0 : failStreak + 1;
      const was = running.ready;
      if (ok && readyStreak >= (p.successThreshold ?? 1)) running.ready = true;
      if (!ok && failStreak >= (p.failureThreshold ?? 3)) running.ready = false;
      if (was !== running.ready) void this.reportStatus(state);
    });
    let liveFails = 0;
    schedule(c.livenessProbe, (ok) => {
      liveFails = ok ? 0 : liveFails + 1;
      if (liveFails >= (c.livenessProbe.failureThreshold ?? 3)) {
        this.events.push(`liveness failed ${state.namespace}/${state.name}/${c.name}: restarting`);
        liveFails = 0;
        void this.kill(child, state.pod.spec.terminationGracePeriodSeconds ?? 30, running.runcId);
      }
    });
  }

  private kill(child: ChildProcess, graceSeconds: number, runcId?: string): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      // runc run passes SIGTERM on to the container; SIGKILL cannot be passed, so runc kill sends it.
      const timer = setTimeout(() => (runcId ? void execa('runc', ['--root', this.runcRoot, 'kill', runcId, 'KILL'], {reject: false}) : child.kill('SIGKILL')), graceSeconds * 1000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      // ip netns exec and unshare exec into sh, which execs the command: the pid is the container's.
      child.kill('SIGTERM');
    });
  }

  private async teardown(state: PodState, graceSeconds: number, deleteAfter: boolean): Promise<void> {
    if (state.deleting) return;
    state.deleting = true;
    this.events.push(`teardown ${state.namespace}/${state.name} grace ${graceSeconds}s${deleteAfter ? ', then delete' : ''}`);
    await Promise.all([...state.containers.values()].map(async (r) => {
      for (const t of r.timers.splice(0)) clearTimeout(t);
      if (r.child) await this.kill(r.child, graceSeconds, r.runcId);
    }));
    this.pods.delete(state.uid);
    for (const r of state.containers.values()) {
      if (r.output) this.deletedOutput.push({namespace: state.namespace, pod: state.name, container: r.name, text: Buffer.concat(r.output).toString('utf8')});
    }
    this.deletedOutput.splice(0, this.deletedOutput.length - 20);
    if (state.secretSync) clearInterval(state.secretSync);
    if (state.network) {
      state.network.api.kill('SIGKILL');
      await execa('ip', ['netns', 'del', state.network.ns], {reject: false});
      untrackNamespace(state.network.ns);
    }
    await rm(state.dir, {recursive: true, force: true}).catch(() => {});
    if (deleteAfter && !this.stopped) {
      // As the kubelet does: the terminal phase first (every container terminated), then the final delete.
      const exits = [...state.containers.values()].map((r) => ({
        name: r.name,
        ready: false,
        restartCount: r.restarts,
        image: ((state.pod.spec.containers as Json[]).find((c) => c.name === r.name) ?? {}).image,
        imageID: '',
        state: {terminated: {exitCode: r.lastExit?.exitCode ?? 137, reason: r.lastExit?.reason ?? 'Error', finishedAt: r.lastExit?.finishedAt ?? now(), startedAt: r.lastExit?.startedAt ?? state.startTime}},
      }));
      const phase = exits.every((e) => e.state.terminated.exitCode === 0) ? 'Succeeded' : 'Failed';
      await this.client
        .request('PATCH', `/api/v1/namespaces/${state.namespace}/pods/${state.name}/status`, {status: {phase, containerStatuses: exits}}, 'application/merge-patch+json')
        .catch(() => undefined);
      const r = await this.client
        .request('DELETE', `/api/v1/namespaces/${state.namespace}/pods/${state.name}`, {kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: {uid: state.uid}})
        .catch((err) => ({status: 0, body: {message: String(err)}}));
      if (r.status !== 200 && r.status !== 404) this.events.push(`delete failed: ${state.namespace}/${state.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
  }

  private async reportStatus(state: PodState): Promise<void> {
    if (this.stopped || state.deleting) return;
    const t = now();
    const statuses = [...state.containers.values()].map((r) => {
      const c = (state.pod.spec.containers as Json[]).find((x) => x.name === r.name)!;
      const s: Json = {name: r.name, image: c.image, imageID: '', ready: r.ready, restartCount: r.restarts, started: Boolean(r.child)};
      if (r.child) s.state = {running: {startedAt: r.started}};
      else if (r.waiting) s.state = {waiting: r.waiting};
      else s.state = {waiting: {reason: 'ContainerCreating'}};
      if (r.lastExit) s.lastState = {terminated: {exitCode: r.lastExit.exitCode, reason: r.lastExit.reason, startedAt: r.lastExit.startedAt, finishedAt: r.lastExit.finishedAt}};
      return s;
    });
    const allReady = statuses.length > 0 && statuses.every((s) => s.ready);
    const status: Json = {
      phase: state.unsupported || state.pullError ? 'Pending' : 'Running',
      hostIP: this.options.ip,
      hostIPs: [{ip: this.options.ip}],
      podIP: state.podIP,
      podIPs: [{ip: state.podIP}],
      startTime: state.startTime,
      conditions: [
        {type: 'PodScheduled', status: 'True', lastTransitionTime: state.startTime},
        {type: 'Initialized', status: 'True', lastTransitionTime: state.startTime},
        {type: 'ContainersReady', status: allReady ? 'True' : 'False', lastTransitionTime: t, ...(allReady ? {} : {reason: 'ContainersNotReady'})},
        {type: 'Ready', status: allReady ? 'True' : 'False', lastTransitionTime: t, ...(allReady ? {} : {reason: 'ContainersNotReady'})},
      ],
      containerStatuses: statuses,
      ...(state.unsupported ? {reason: 'LabUnsupported', message: state.unsupported} : {}),
    };
    const r = await this.client.request('PATCH', `/api/v1/namespaces/${state.namespace}/pods/${state.name}/status`, {status}, 'application/merge-patch+json').catch(() => undefined);
    if (r && r.status !== 200) this.events.push(`status ${state.namespace}/${state.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  }

  /** What a pod's container has printed so far in its current run (kubectl logs). */
  logs(namespace: string, pod: string, container?: string): string {
    const state = [...this.pods.values()].find((p) => p.namespace === namespace && p.name === pod);
    const r = state && (container ? state.containers.get(container) : [...state.containers.values()][0]);
    return r?.output ? Buffer.concat(r.output).toString('utf8') : '';
  }

  /** Every container's output on this node (deleted pods' first), headed by pod and container, for a failed test's message. */
  allLogs(filter: (namespace: string, pod: string) => boolean = () => true): string {
    const deleted = this.deletedOutput.filter((d) => filter(d.namespace, d.pod)).map((d) => `--- ${this.name} ${d.namespace}/${d.pod}/${d.container} (deleted)\n${d.text}`);
    const current = [...this.pods.values()]
      .filter((p) => filter(p.namespace, p.name))
      .flatMap((p) => [...p.containers.values()].map((r) => `--- ${this.name} ${p.namespace}/${p.name}/${r.name}\n${r.output ? Buffer.concat(r.output).toString('utf8') : ''}`));
    return [...deleted, ...current].join('\n');
  }

  /** Stops every container (SIGTERM, then SIGKILL) and the heartbeats; the Node stays registered. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.pods.values()].map((s) => this.teardown(s, 5, false)));
  }
}
