/**
 * A real Kubernetes control plane for the lab: etcd (Debian's), kube-apiserver,
 * kube-controller-manager and kube-scheduler built from their Go module by
 * test/controlplane/build.sh, configured as kubeadm and kubespray configure
 * them: TLS from the lab CA, client certificates, the Node and RBAC
 * authorizers, the default admission plugins with Pod Security enforcing
 * `baseline` outside kube-system (kubespray's kube_pod_security_default_enforce),
 * and service-account token signing.
 *
 * The hosts reach the API server at 127.0.0.1:6443 inside their namespaces,
 * forwarded by socat to a unix socket served by a small TCP proxy here; the
 * proxy can cut or stall every connection through it, for fault tests.
 *
 * The API server reaches the cluster (admission and conversion webhooks, on
 * pods' addresses) through an HTTP CONNECT proxy on a unix socket, as it
 * reaches a cluster behind Konnectivity: its egress selector's `cluster`
 * traffic goes there, and with --enable-aggregator-routing it dials a
 * Service's endpoints, not its cluster IP (there is no kube-proxy here). The
 * lab tells the proxy which host's network namespace holds an address
 * (setClusterRoute); the proxy connects from there.
 */
import {createServer, connect, type Server, type Socket} from 'node:net';
import {createServer as createHttpServer} from 'node:http';
import {spawn} from 'node:child_process';
import {get as httpsGet} from 'node:https';
import {mkdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import YAML from 'yaml';
import {createPki, type Cert, type Pki} from './pki.js';
import {type Daemon, startDaemon} from './procs.js';
import {repoRoot} from './tools.js';

/**
 * The hosts' way to the API server. cut closes every open connection; refuse
 * does that and closes new ones at once (the API unreachable from the hosts);
 * stall holds open and new connections without an answer; resume ends
 * refusing and stalling.
 */
export interface ApiProxy {
  cut(): void;
  refuse(): void;
  stall(): void;
  resume(): void;
  connections(): number;
}

/** How often the lab kubelets renew their node Lease, and how long the node lifecycle controller waits for one. */
export const NODE_HEARTBEAT_SECONDS = 2;
export const NODE_GRACE_SECONDS = 10;

export interface ControlPlaneOptions {
  /** Kubernetes version to build or take from the cache (default: EXTIP_KUBE_VERSION, else test/controlplane/VERSION). */
  version?: string;
  /** Service CIDRs of both families (IPv4 first), so that the API server takes dual-stack Services. */
  dualStack?: boolean;
}

/** The Service CIDRs: IPv4 alone, or with IPv6 for a dual-stack lab. */
export const SERVICE_CIDRS = {v4: '10.96.0.0/12', v6: 'fd00:10:96::/112'};

export interface ControlPlane {
  /** The directory with kube-apiserver, kube-controller-manager, kube-scheduler and kubectl. */
  binDir: string;
  kubectlPath: string;
  pki: Pki;
  /** https://127.0.0.1:<port>, straight to the API server (this machine's namespace). */
  url: string;
  /** Admin kubeconfig for this machine (system:masters client certificate). */
  kubeconfig: string;
  /** Admin kubeconfig for the hosts (https://127.0.0.1:6443 through the proxy). */
  hostKubeconfig: string;
  /** The unix socket the hosts' socat forwards 127.0.0.1:6443 to. */
  socketPath: string;
  /** A kubeconfig with node `name`'s own credentials (system:node:<name>), for the hosts. */
  nodeKubeconfig(name: string): Promise<string>;
  /** The proxy in front of the API server for the hosts (not for this machine's kubectl, nor the lab kubelets). */
  proxy: ApiProxy;
  /** A proxy of one host's own (made on first use), so that a fault can cut one host off: its socket and controls. */
  hostProxy(name: string): Promise<{socketPath: string; proxy: ApiProxy}>;
  /** Stops kube-apiserver (an outage) and starts it again with the same state. */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** The API server's audit log (JSON lines): every request a ServiceAccount made, at Metadata level. */
  auditLog: string;
  /** Which network namespace the API server's cluster traffic to an address leaves from (undefined: none, refused). */
  setClusterRoute(route: (ip: string) => string | undefined): void;
  /** Compacts etcd at its current revision: watches from older resourceVersions get 410 Gone. */
  compactEtcd(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as {port: number}).port;
      s.close(() => resolve(port));
    });
  });
}

/** Builds the control plane if the cache does not have it, and returns its directory. */
export async function controlPlaneBinaries(version?: string): Promise<string> {
  const env = version ? {...process.env, EXTIP_KUBE_VERSION: version} : process.env;
  const r = await execa('bash', [join(repoRoot, 'test/controlplane/build.sh')], {env, reject: false, stderr: 'inherit'});
  if (r.exitCode !== 0) throw new Error(`test/controlplane/build.sh failed (exit ${r.exitCode})`);
  return r.stdout.trim().split('\n').pop()!;
}

function kubeconfigFor(server: string, caFile: string, user: {cert: string; key: string}): string {
  const credentials = {'client-certificate': user.cert, 'client-key': user.key};
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{name: 'lab', cluster: {server, 'certificate-authority': caFile}}],
    users: [{name: 'lab-user', user: credentials}],
    contexts: [{name: 'lab', context: {cluster: 'lab', user: 'lab-user'}}],
    'current-context': 'lab',
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, daemon: Daemon | undefined, ms = 60000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (daemon && daemon.child.exitCode !== null) throw new Error(`${what} exited (${daemon.child.exitCode}):\n${daemon.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${what} did not become ready in ${ms / 1000} s:\n${daemon?.output().slice(-3000) ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The TCP proxy the hosts' API traffic goes through, with the fault switches. */
function startProxy(socketPath: string, port: number): Promise<{server: Server} & ApiProxy> {
  const open = new Set<Socket>();
  let stalled = false;
  let refusing = false;
  const waiting: Array<() => void> = [];
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const start = () => {
      const upstream = connect(port, '127.0.0.1');
      open.add(client);
      open.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
        open.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
      if (stalled) {
        client.pause();
        upstream.pause();
      }
    };
    if (stalled) waiting.push(start);
    else start();
  });
  const cut = () => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () =>
      resolve({
        server,
        cut,
        refuse: () => {
          refusing = true;
          cut();
        },
        stall: () => {
          stalled = true;
          for (const s of open) s.pause();
        },
        resume: () => {
          stalled = false;
          refusing = false;
          for (const s of open) s.resume();
          for (const start of waiting.splice(0)) start();
        },
        connections: () => open.size / 2,
      }),
    );
  });
}

/**
 * The API server's way into the cluster: HTTP CONNECT on a unix socket, each
 * tunnel a socat run in the network namespace route() names for the address.
 */
function startClusterEgress(socketPath: string): Promise<{server: Server; setRoute(route: (ip: string) => string | undefined): void; closeAll(): void}> {
  let route: (ip: string) => string | undefined = () => undefined;
  const open = new Set<Socket>();
  const server = createHttpServer((_req, res) => {
    res.writeHead(405).end('CONNECT only\n');
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const target = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(req.url ?? '');
    const ns = target ? route(target[1]) : undefined;
    if (!target || !ns) {
      client.end(`HTTP/1.1 503 Service Unavailable\r\n\r\nno lab host holds ${req.url}\n`);
      return;
    }
    const tunnel = spawn('ip', ['netns', 'exec', ns, 'socat', 'STDIO', `TCP:${target[1]}:${target[2]},connect-timeout=5`], {stdio: ['pipe', 'pipe', 'ignore']});
    open.add(client);
    // Either end may go first (the pod deleted, the API server stopped): each closes the other.
    const end = () => {
      open.delete(client);
      client.destroy();
      tunnel.kill();
    };
    for (const stream of [tunnel, tunnel.stdin, tunnel.stdout, client]) stream.on('error', end);
    tunnel.on('exit', end);
    client.on('close', end);
    client.write('HTTP/1.1 200 Connection established\r\n\r\n');
    if (head.length) tunnel.stdin.write(head);
    client.pipe(tunnel.stdin);
    tunnel.stdout.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve({server, setRoute: (r) => (route = r), closeAll: () => [...open].forEach((s) => s.destroy())}));
  });
}

export async function startControlPlane(dir: string, options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = await controlPlaneBinaries(options.version);
  const kubectlPath = join(binDir, 'kubectl');
  const pkiDir = join(dir, 'pki');
  await mkdir(pkiDir, {recursive: true});
  const pki = await createPki(pkiDir);
  const [apiPort, etcdPort, etcdPeerPort] = [await freePort(), await freePort(), await freePort()];
  const serving = await pki.issue('kube-apiserver', {ips: ['127.0.0.1', '10.96.0.1'], dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local']});
  const clients: Record<string, Cert> = {};
  for (const [name, subject] of [
    ['admin', '/O=system:masters/CN=kubernetes-admin'],
    ['controller-manager', '/CN=system:kube-controller-manager'],
    ['scheduler', '/CN=system:kube-scheduler'],
    ['apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client'],
  ] as const) {
    clients[name] = await pki.issue(name, {client: true, subject});
  }
  const saKey = join(pkiDir, 'sa.key');
  const saPub = join(pkiDir, 'sa.pub');
  await execa('openssl', ['genrsa', '-out', saKey, '2048']);
  await execa('openssl', ['rsa', '-in', saKey, '-pubout', '-out', saPub]);

  const url = `https://127.0.0.1:${apiPort}`;
  const kubeconfig = join(dir, 'admin.conf');
  await writeFile(kubeconfig, kubeconfigFor(url, pki.caFile, {cert: clients.admin.certFile, key: clients.admin.keyFile}), {mode: 0o600});
  const hostKubeconfig = join(dir, 'admin-hosts.conf');
  await writeFile(hostKubeconfig, kubeconfigFor('https://127.0.0.1:6443', pki.caFile, {cert: clients.admin.certFile, key: clients.admin.keyFile}), {mode: 0o600});
  const componentConfig = async (name: string) => {
    const file = join(dir, `${name}.conf`);
    await writeFile(file, kubeconfigFor(url, pki.caFile, {cert: clients[name].certFile, key: clients[name].keyFile}), {mode: 0o600});
    return file;
  };
  const cmConfig = await componentConfig('controller-manager');
  const schedConfig = await componentConfig('scheduler');

  // Pod Security as kubespray sets it with kube_pod_security_use_default: baseline enforced, kube-system exempt.
  const admission = join(dir, 'admission.yaml');
  await writeFile(admission, YAML.stringify({
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AdmissionConfiguration',
    plugins: [{
      name: 'PodSecurity',
      configuration: {
        apiVersion: 'pod-security.admission.config.k8s.io/v1',
        kind: 'PodSecurityConfiguration',
        defaults: {enforce: 'baseline', 'enforce-version': 'latest', audit: 'restricted', 'audit-version': 'latest', warn: 'restricted', 'warn-version': 'latest'},
        exemptions: {usernames: [], runtimeClasses: [], namespaces: ['kube-system']},
      },
    }],
  }));

  // Every request of a ServiceAccount, with its verb, resource and answer: what the agent's
  // RBAC is checked against (test/rbac-audit.ts).
  const auditPolicy = join(dir, 'audit-policy.yaml');
  const auditLog = join(dir, 'audit.log');
  await writeFile(auditPolicy, YAML.stringify({
    apiVersion: 'audit.k8s.io/v1',
    kind: 'Policy',
    omitStages: ['RequestReceived'],
    rules: [{level: 'Metadata', userGroups: ['system:serviceaccounts']}, {level: 'None'}],
  }));

  const daemons: Daemon[] = [];
  const etcd = startDaemon('etcd', [
    '--name', 'kube-etcd',
    '--data-dir', join(dir, 'kube-etcd'),
    '--listen-client-urls', `http://127.0.0.1:${etcdPort}`,
    '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPeerPort}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeerPort}`,
    '--initial-cluster', `kube-etcd=http://127.0.0.1:${etcdPeerPort}`,
    '--log-level', 'warn',
  ]);
  daemons.push(etcd);

  // Webhooks and aggregated APIs on pods, through the lab's way into the cluster.
  const egress = await startClusterEgress(join(dir, 'egress.sock'));
  const egressConfig = join(dir, 'egress-selector.yaml');
  await writeFile(egressConfig, YAML.stringify({
    apiVersion: 'apiserver.k8s.io/v1beta1',
    kind: 'EgressSelectorConfiguration',
    egressSelections: [{name: 'cluster', connection: {proxyProtocol: 'HTTPConnect', transport: {uds: {udsName: join(dir, 'egress.sock')}}}}],
  }));
  const apiArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    `--secure-port=${apiPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--tls-cert-file=${serving.certFile}`,
    `--tls-private-key-file=${serving.keyFile}`,
    `--client-ca-file=${pki.caFile}`,
    `--kubelet-client-certificate=${clients['apiserver-kubelet-client'].certFile}`,
    `--kubelet-client-key=${clients['apiserver-kubelet-client'].keyFile}`,
    `--service-account-key-file=${saPub}`,
    `--service-account-signing-key-file=${saKey}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    `--admission-control-config-file=${admission}`,
    `--service-cluster-ip-range=${options.dualStack ? `${SERVICE_CIDRS.v4},${SERVICE_CIDRS.v6}` : SERVICE_CIDRS.v4}`,
    `--audit-policy-file=${auditPolicy}`,
    `--audit-log-path=${auditLog}`,
    '--audit-log-format=json',
    '--audit-log-mode=blocking',
    '--allow-privileged=true',
    `--egress-selector-config-file=${egressConfig}`,
    '--enable-aggregator-routing=true',
    '--profiling=false',
    '--v=1',
  ];
  let apiserver: Daemon | undefined;
  const adminTls = {ca: pki.ca, cert: await readFile(clients.admin.certFile, 'utf8'), key: await readFile(clients.admin.keyFile, 'utf8')};
  const curlReady = () =>
    new Promise<boolean>((resolve) => {
      const req = httpsGet(`${url}/readyz`, {...adminTls, timeout: 2000}, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
  const startApiServer = async () => {
    apiserver = startDaemon(join(binDir, 'kube-apiserver'), apiArgs);
    await waitFor('kube-apiserver', curlReady, apiserver);
  };
  await waitFor('etcd', async () => (await execa('etcdctl', ['--endpoints', `http://127.0.0.1:${etcdPort}`, 'endpoint', 'health'], {reject: false, env: {...process.env, ETCDCTL_API: '3'}})).exitCode === 0, etcd, 20000);
  await startApiServer();

  // What controller-manager and scheduler share: their kubeconfig for everything, no serving port, one instance.
  const componentArgs = (config: string) => [
    `--kubeconfig=${config}`,
    `--authentication-kubeconfig=${config}`,
    `--authorization-kubeconfig=${config}`,
    '--bind-address=127.0.0.1',
    '--secure-port=0',
    '--leader-elect=false',
    '--v=1',
  ];
  daemons.push(startDaemon(join(binDir, 'kube-controller-manager'), [
    ...componentArgs(cmConfig),
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${saKey}`,
    `--root-ca-file=${pki.caFile}`,
    `--cluster-signing-cert-file=${pki.caFile}`,
    `--cluster-signing-key-file=${pki.caKeyFile}`,
    '--controllers=*,-nodeipam,-cloud-node-lifecycle',
    // Node failure is noticed in NODE_GRACE_SECONDS (kubeadm's 40 s, shortened with the lab kubelets' heartbeat).
    `--node-monitor-grace-period=${NODE_GRACE_SECONDS}s`,
    '--node-monitor-period=1s',
  ]));
  daemons.push(startDaemon(join(binDir, 'kube-scheduler'), componentArgs(schedConfig)));

  const socketPath = join(dir, 'api.sock');
  const proxy = await startProxy(socketPath, apiPort);
  const hostProxies = new Map<string, Promise<{socketPath: string; proxy: {server: Server} & ApiProxy}>>();

  return {
    binDir,
    kubectlPath,
    pki,
    url,
    kubeconfig,
    hostKubeconfig,
    socketPath,
    auditLog,
    async nodeKubeconfig(name: string) {
      const cert = await pki.issue(`node-${name}`, {client: true, subject: `/O=system:nodes/CN=system:node:${name}`});
      const file = join(dir, `kubelet-${name}.conf`);
      await writeFile(file, kubeconfigFor('https://127.0.0.1:6443', pki.caFile, {cert: cert.certFile, key: cert.keyFile}), {mode: 0o600});
      return file;
    },
    proxy: {cut: proxy.cut, refuse: proxy.refuse, stall: proxy.stall, resume: proxy.resume, connections: proxy.connections},
    hostProxy(name: string) {
      let p = hostProxies.get(name);
      if (!p) {
        const path = join(dir, `api-${name}.sock`);
        p = startProxy(path, apiPort).then((hp) => ({socketPath: path, proxy: hp}));
        hostProxies.set(name, p);
      }
      return p;
    },
    async stopApiServer() {
      await apiserver?.stop();
      apiserver = undefined;
    },
    startApiServer,
    setClusterRoute: egress.setRoute,
    async compactEtcd() {
      const env = {...process.env, ETCDCTL_API: '3'};
      const status = await execa('etcdctl', ['--endpoints', `http://127.0.0.1:${etcdPort}`, 'endpoint', 'status', '-w', 'json'], {env});
      const revision = JSON.parse(status.stdout)[0].Status.header.revision as number;
      await execa('etcdctl', ['--endpoints', `http://127.0.0.1:${etcdPort}`, 'compaction', String(revision)], {env});
    },
    async stop() {
      for (const p of [proxy, ...(await Promise.all(hostProxies.values())).map((h) => h.proxy)]) {
        p.cut();
        await new Promise<void>((resolve) => p.server.close(() => resolve()));
      }
      await Promise.all(daemons.slice(1).map((d) => d.stop()));
      await apiserver?.stop();
      egress.closeAll();
      await new Promise<void>((resolve) => egress.server.close(() => resolve()));
      await etcd.stop();
    },
  };
}
