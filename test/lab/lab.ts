/**
 * The lab: a simulated bare-metal cluster on one machine.
 *
 * Hosts are network namespaces (node1..nodeN and a top-of-rack router holding
 * the bridge that joins them). With several racks, each rack is its own
 * segment (10.210.R.0/24) behind its own top-of-rack router, and a core
 * router joins the ToRs over point-to-point links (192.168.192.0/22, a /30 a
 * rack, as the ECMP design's example). Ansible reaches them through inventories whose
 * hosts run modules inside their namespace. A real control plane (etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler; controlplane.ts)
 * runs on this machine, reached from every host at 127.0.0.1:6443 through
 * socat and a proxy of the host's own; a lab kubelet per node
 * (nodekubelet.ts) runs the pods bound to it. Each host has its own
 * directory tree for the files extip writes (/etc/kubernetes,
 * /etc/ssl/etcd/ssl).
 */
import {randomBytes} from 'node:crypto';
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import YAML from 'yaml';
import {waitFor} from './bgp.js';
import {type ApiProxy, type ControlPlane, NODE_HEARTBEAT_SECONDS, startControlPlane} from './controlplane.js';
import {type DhcpServer, startDhcpServer} from './dhcp.js';
import {loadImages} from './images.js';
import {repoRoot} from './tools.js';
import {NodeKubelet} from './nodekubelet.js';
import {type Daemon, reapStaleNamespaces, startDaemon, trackDir, trackNamespace, untrackDir, untrackNamespace} from './procs.js';

export const NS_PREFIX = 'extip';
let labCount = 0;

export interface LabHost {
  name: string;
  /** The host's network namespace. */
  ns: string;
  /** Address on the lab segment (eth0). */
  ip: string;
  /** Its IPv6 address on the segment, in a dual-stack lab. */
  ip6?: string;
  /** The host's own root for files extip writes (its "/"). */
  root: string;
  /** The rack the host sits in, from 1: its segment and top-of-rack router. */
  rack: number;
}

/** A router of the lab: a rack's top-of-rack router, or the core that joins the racks. */
export interface LabRouter {
  /** tor1..torR, or core; lab.exec and lab.startIn take these names ('tor' is tor1). */
  name: string;
  ns: string;
  /** A ToR's address on its rack's segment (the nodes' gateway and BGP peer); the core's on its link to rack 1. */
  ip: string;
  /** A ToR's IPv6 address on its segment, in a dual-stack lab. */
  ip6?: string;
  role: 'tor' | 'core';
  /** The rack a ToR serves (absent for the core). */
  rack?: number;
  /** A ToR's end of its link to the core, and the core's (absent without a core). */
  uplink?: {ip: string; coreIp: string};
}

export interface LabOptions {
  nodes?: number;
  /**
   * Racks the nodes spread over in order (node1 first; with 3 nodes and 2
   * racks, node1 and node2 in rack 1 and node3 in rack 2). Default 1: one
   * segment and its router, no core.
   */
  racks?: number;
  /**
   * With the real control plane: namespaces labelled to admit privileged pods
   * (pod-security.kubernetes.io/enforce=privileged), as an operator does when
   * extip's preflight asks for it. Default ['default'], where the seed setups
   * install; every other namespace enforces the cluster's `baseline`.
   */
  privilegedNamespaces?: string[];
  /** Number of control-plane hosts (the first N nodes); default 1. */
  controlPlane?: number;
  /** Directories of OCI layouts (as dist/image holds) whose images the nodes have besides extip's. */
  imageDirs?: string[];
  /**
   * IPv6 beside IPv4 (one rack only): the segment fd10:210:1::/64 (the ToR
   * ::1, node i ::(11+i)), routed by the ToR, the client's fd10:99::2 behind
   * it, and an API server with Service CIDRs of both families
   * (dual-stack Services).
   */
  dualStack?: boolean;
}

/** The IPv6 segment of rack r in a dual-stack lab. */
export const segment6 = (rack: number) => `fd10:210:${rack}::`;

/**
 * The lab's Internet side, for UPnP: the first ToR's link `wan` to a host
 * on 1.2.3.0/24. The addresses look public because miniupnpd forwards from
 * no reserved or private external address; the namespace reaches nothing
 * beyond the lab.
 */
export const INTERNET = {gateway: '1.2.3.1', host: '1.2.3.2', prefix: 24};

/** The last octets of what the lab's DHCP server leases on the first segment (addDhcpServer). */
export const DHCP_RANGE = {first: 60, last: 79};

/** The UPnP Internet gateway on the first ToR (addUpnpGateway). */
export interface LabUpnp {
  /** Where its description is (SSDP's LOCATION). */
  location: string;
  /** Its external address. */
  external: string;
  /** The host on the Internet side: where to reach a mapped port from. */
  internet: {ns: string; ip: string};
  /** The ports it forwards now, from its table of mappings: `TCP 80 -> 10.210.1.200:80`. */
  mappings(): Promise<string[]>;
  /** Opens a TCP connection from the Internet host to the external address's port; what came back, or why not. */
  connect(port: number): Promise<string>;
}

/** What tests reach as `lab.api`: the control plane's kubeconfigs and CA. */
export interface LabApi {
  pki: ControlPlane['pki'];
  /** Admin kubeconfig for this machine (https://127.0.0.1:<port>). */
  kubeconfig: string;
  /** Admin kubeconfig for the hosts (https://127.0.0.1:6443). */
  hostKubeconfig: string;
}

export const SEGMENT = '10.210.1';

/** The core's AS: another AS than the racks' (the ToRs peer with it over eBGP). */
export const CORE_AS = 64600;

/** The rack of node i (from 0) of n over r racks: contiguous runs, the first racks the larger. */
export function rackOf(i: number, nodes: number, racks: number): number {
  return Math.floor((i * racks) / nodes) + 1;
}

export interface LabClient {
  ns: string;
  ip: string;
  /** In a dual-stack lab. */
  ip6?: string;
  /** Opens `count` TCP connections one after another; counts the answers. */
  connectMany(ip: string, port: number, count: number): Promise<{byAnswer: Record<string, number>; failures: number}>;
}

export class Lab {
  readonly id: string;
  readonly dir: string;
  readonly hosts: LabHost[];
  /** The first rack's top-of-rack router (what a one-rack lab calls "the router"). */
  readonly router: {ns: string; ip: string};
  /** The ToRs (tor1..torR) and, with more than one rack, the core. */
  readonly routers: LabRouter[];
  api!: LabApi;
  /** The control plane and the nodes' kubelets. */
  k8s!: ControlPlane;
  nodeKubelets: NodeKubelet[] = [];
  private daemons: Daemon[] = [];
  private dhcp?: DhcpServer;
  private extraNamespaces: string[] = [];
  private up = false;

  private constructor(dir: string, nodes: number, readonly racks: number, readonly controlPlaneCount: number, readonly privilegedNamespaces: string[], private imageDirs: string[] = [], readonly dualStack = false) {
    this.id = `${process.pid}-${++labCount}${randomBytes(2).toString('hex')}`;
    this.dir = dir;
    this.routers = Array.from({length: racks}, (_, i) => ({
      name: `tor${i + 1}`,
      ns: `${NS_PREFIX}-${this.id}-tor${i + 1}`,
      ip: `10.210.${i + 1}.1`,
      ...(dualStack ? {ip6: `${segment6(i + 1)}1`} : {}),
      role: 'tor' as const,
      rack: i + 1,
      ...(racks > 1 ? {uplink: {ip: `192.168.192.${4 * i + 2}`, coreIp: `192.168.192.${4 * i + 1}`}} : {}),
    }));
    if (racks > 1) this.routers.push({name: 'core', ns: `${NS_PREFIX}-${this.id}-core`, ip: '192.168.192.1', role: 'core'});
    this.router = {ns: this.routers[0].ns, ip: this.routers[0].ip};
    this.hosts = Array.from({length: nodes}, (_, i) => {
      const name = `node${i + 1}`;
      const rack = rackOf(i, nodes, racks);
      return {name, ns: `${NS_PREFIX}-${this.id}-${name}`, ip: `10.210.${rack}.${11 + i}`, ...(dualStack ? {ip6: `${segment6(rack)}${(11 + i).toString(16)}`} : {}), root: join(dir, 'hosts', name), rack};
    });
  }

  static async start(options: LabOptions = {}): Promise<Lab> {
    await checkPrerequisites();
    reapStaleNamespaces(NS_PREFIX);
    const nodes = options.nodes ?? 3;
    if (nodes < 1 || nodes > 200) throw new Error('a lab has 1 to 200 nodes');
    const racks = options.racks ?? 1;
    if (!Number.isInteger(racks) || racks < 1 || racks > Math.min(nodes, 60)) throw new Error(`a lab of ${nodes} nodes has 1 to ${Math.min(nodes, 60)} racks`);
    if (options.dualStack && racks > 1) throw new Error('a dual-stack lab has one rack');
    const dir = await mkdtemp(join(tmpdir(), 'extip-lab-'));
    trackDir(dir);
    const lab = new Lab(dir, nodes, racks, options.controlPlane ?? 1, options.privilegedNamespaces ?? ['default'], options.imageDirs, options.dualStack);
    try {
      await lab.bringUp();
    } catch (err) {
      await lab.stop();
      throw err;
    }
    return lab;
  }

  get controlPlane(): LabHost[] {
    return this.hosts.slice(0, this.controlPlaneCount);
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in the lab`);
    return h;
  }

  /** A router by name: tor1..torR ('tor' is tor1), or core. */
  routerNamed(name: string): LabRouter {
    const r = this.routers.find((x) => x.name === (name === 'tor' ? 'tor1' : name));
    if (!r) throw new Error(`no router ${name} in the lab (it has ${this.routers.map((x) => x.name).join(', ')})`);
    return r;
  }

  /** Rack r's top-of-rack router. */
  tor(rack: number): LabRouter {
    return this.routerNamed(`tor${rack}`);
  }

  /** The top-of-rack router of a node. */
  torOf(h: LabHost): LabRouter {
    return this.tor(h.rack);
  }

  /** The core router, with more than one rack. */
  get core(): LabRouter | undefined {
    return this.routers.find((r) => r.role === 'core');
  }

  /** The nodes of rack r. */
  rackHosts(rack: number): LabHost[] {
    return this.hosts.filter((h) => h.rack === rack);
  }

  /** The namespace of a host or a router. */
  private nsOf(name: string): string {
    return this.hosts.find((h) => h.name === name)?.ns ?? this.routerNamed(name).ns;
  }

  private async bringUp(): Promise<void> {
    // Namespaces, and in each ToR the bridge of its rack.
    for (const ns of [...this.routers.map((r) => r.ns), ...this.hosts.map((h) => h.ns)]) {
      trackNamespace(ns);
      await execa('ip', ['netns', 'add', ns]);
    }
    for (const tor of this.routers.filter((r) => r.role === 'tor')) {
      const cmds = ['link set lo up', 'link add br0 type bridge', 'link set br0 up', `address add ${tor.ip}/24 dev br0`];
      this.hosts.forEach((h, i) => {
        if (h.rack === tor.rack) cmds.push(`link add v${i + 1} type veth peer name eth0 netns ${h.ns}`, `link set v${i + 1} master br0`, `link set v${i + 1} up`);
      });
      if (tor.ip6) cmds.push(`address add ${tor.ip6}/64 dev br0 nodad`);
      await execa('ip', ['-n', tor.ns, '-batch', '-'], {input: cmds.join('\n') + '\n'});
      await execa('ip', ['netns', 'exec', tor.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', ...(tor.ip6 ? ['net.ipv6.conf.all.forwarding=1'] : [])]);
    }
    const core = this.core;
    if (core) {
      // A /30 from the core to each ToR; the ToR's default route is the core, the core reaches each rack's segment through its ToR.
      const cmds = ['link set lo up'];
      for (const tor of this.routers.filter((r) => r.role === 'tor')) {
        cmds.push(
          `link add rack${tor.rack} type veth peer name core netns ${tor.ns}`,
          `address add ${tor.uplink!.coreIp}/30 dev rack${tor.rack}`,
          `link set rack${tor.rack} up`,
          `route add 10.210.${tor.rack}.0/24 via ${tor.uplink!.ip}`,
        );
      }
      await execa('ip', ['-n', core.ns, '-batch', '-'], {input: cmds.join('\n') + '\n'});
      await execa('ip', ['netns', 'exec', core.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      await execa('ip', ['netns', 'exec', core.ns, 'sysctl', '-qw', 'net.ipv4.fib_multipath_hash_policy=1']);
      for (const tor of this.routers.filter((r) => r.role === 'tor')) {
        await execa('ip', ['-n', tor.ns, '-batch', '-'], {input: [`address add ${tor.uplink!.ip}/30 dev core`, 'link set core up', `route add default via ${tor.uplink!.coreIp}`].join('\n') + '\n'});
      }
    }
    await Promise.all(
      this.hosts.map((h) =>
        execa('ip', ['-n', h.ns, '-batch', '-'], {
          input: ['link set lo up', `address add ${h.ip}/24 dev eth0`, ...(h.ip6 ? [`address add ${h.ip6}/64 dev eth0 nodad`] : []), 'link set eth0 up', `route add default via ${this.torOf(h).ip}`,
            ...(h.ip6 ? [`route add ::/0 via ${this.torOf(h).ip6}`] : [])].join('\n') + '\n',
        }),
      ),
    );

    await this.bringUpControlPlane();
  }

  /** The real control plane, a kubelet per node registering itself, and the way in from every host. */
  private async bringUpControlPlane(): Promise<void> {
    const cp = await startControlPlane(join(this.dir, 'controlplane'), {dualStack: this.dualStack});
    this.k8s = cp;
    this.api = {pki: cp.pki, kubeconfig: cp.kubeconfig, hostKubeconfig: cp.hostKubeconfig};
    const admin = await readFile(cp.hostKubeconfig, 'utf8');
    const images = await loadImages();
    for (const d of this.imageDirs) for (const [ref, image] of await loadImages(d)) images.set(ref, image);
    for (const h of this.hosts) {
      const way = await cp.hostProxy(h.name);
      this.daemons.push(startDaemon('ip', ['netns', 'exec', h.ns, 'socat', 'TCP-LISTEN:6443,bind=127.0.0.1,reuseaddr,fork', `UNIX-CONNECT:${way.socketPath}`]));
      await mkdir(join(h.root, 'etc', 'kubernetes'), {recursive: true});
      await writeFile(join(h.root, 'etc', 'kubernetes', 'admin.conf'), admin, {mode: 0o600});
      const kubelet = new NodeKubelet({
        name: h.name, ns: h.ns, ip: h.ip, root: h.root, url: cp.url,
        kubeconfig: await cp.nodeKubeconfig(h.name),
        dir: join(this.dir, 'kubelet', h.name),
        heartbeatSeconds: NODE_HEARTBEAT_SECONDS,
        podCidr: `10.244.${this.hosts.indexOf(h) + 1}.0/24`,
        apiSocket: way.socketPath,
        images,
      });
      this.nodeKubelets.push(kubelet);
    }
    // The API server reaches a pod (a webhook) or a node from the host that holds the address.
    cp.setClusterRoute((ip) => {
      const pod = /^10\.244\.(\d+)\./.exec(ip);
      return (pod ? this.hosts[Number(pod[1]) - 1] : this.hosts.find((h) => h.ip === ip))?.ns;
    });
    await Promise.all(this.nodeKubelets.map((k) => k.start()));
    // As kubeadm does: the control-plane role label is set by an admin (NodeRestriction keeps kubelets from it).
    // Nodes that are also in kube_node are not tainted, as kubespray leaves them.
    await this.kubectl(['label', 'nodes', ...this.controlPlane.map((h) => h.name), 'node-role.kubernetes.io/control-plane=', '--overwrite']);
    const ready = await this.kubectl(['wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=60s']);
    if (ready.exitCode !== 0) throw new Error(`the lab's nodes did not become Ready: ${ready.stderr}`);
    await waitFor('the default ServiceAccount', async () => (await this.kubectl(['-n', 'default', 'get', 'serviceaccount', 'default'])).exitCode === 0, 60000);
    for (const ns of this.privilegedNamespaces) {
      await this.kubectl(['create', 'namespace', ns]);
      const r = await this.kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=privileged', '--overwrite']);
      if (r.exitCode !== 0) throw new Error(`lab: cannot allow privileged pods in ${ns}: ${r.stderr}`);
    }
    await waitFor('the nodes to lose their not-ready taints', async () => {
      const nodes = JSON.parse((await this.kubectl(['get', 'nodes', '-o', 'json'])).stdout).items as Array<{spec: {taints?: unknown[]}}>;
      return nodes.every((n) => !n.spec.taints?.length);
    }, 60000);
    await this.writeInventories();
    await this.waitForApiFromHosts();
    this.up = true;
  }


  /** The proxy between one host and the API server: cut, refuse, stall, resume. */
  async apiProxy(host: string): Promise<ApiProxy> {
    return (await this.k8s.hostProxy(this.host(host).name)).proxy;
  }

  /**
   * A node lost, as when its switch port or power goes: its link to the
   * segment down, its way to the API server refusing, its kubelet silent.
   * Its processes go on running, cut off.
   */
  async loseNode(name: string): Promise<void> {
    const h = this.host(name);
    await execa('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'down']);
    (await this.apiProxy(name)).refuse();
    this.nodeKubelets.find((k) => k.name === name)?.partition();
  }

  /** Brings a lost node back: link up (and its default route), API reachable, kubelet reporting. */
  async restoreNode(name: string): Promise<void> {
    const h = this.host(name);
    await execa('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    await execa('ip', ['-n', h.ns, 'route', 'replace', 'default', 'via', this.torOf(h).ip]);
    (await this.apiProxy(name)).resume();
    await this.nodeKubelets.find((k) => k.name === name)?.heal();
  }

  /** The kubectl the lab drives: the one built with the control plane. */
  get kubectlPath(): string {
    return this.k8s.kubectlPath;
  }

  /** Waits until kubectl answers from the control-plane host (socat listening). */
  private async waitForApiFromHosts(): Promise<void> {
    const deadline = Date.now() + 15000;
    for (const h of this.hosts) {
      for (;;) {
        const r = await execa('ip', ['netns', 'exec', h.ns, 'socat', '-u', 'OPEN:/dev/null', 'TCP:127.0.0.1:6443'], {reject: false});
        if (r.exitCode === 0) break;
        if (Date.now() > deadline) throw new Error(`the API is not reachable from ${h.name}: ${r.stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** Host variables that point the role at the lab's paths on each host. */
  hostVars(h: LabHost): Record<string, string> {
    const etcdHost = this.hosts[0];
    return {
      ansible_connection: 'local',
      // A wrapper that enters the host's namespace (Ansible 2.19 and later take a path only, no arguments).
      ansible_python_interpreter: this.interpreter(h),
      // The shell that runs commands on the host (the role's extip_exec and every module
      // start go through it): /bin/sh in the host's namespace, as ssh would give it.
      ansible_shell_executable: this.shell(h),
      ip: h.ip,
      access_ip: h.ip,
      // kubectl with this lab's own discovery cache: every lab's hosts reach their API server as
      // 127.0.0.1:6443, and kubectl keys its cache by that, so labs side by side would share one.
      extip_kubectl: join(this.binDir, 'kubectl'),
      extip_kubeconfig: join(h.root, 'etc/kubernetes/admin.conf'),
      extip_manifest_dir: join(h.root, 'etc/kubernetes'),
      // The lab kubelet starts each node's agent with --state-dir under the node's root.
      extip_state_dir: join(h.root, 'run/extip'),
      // No containerd here: a stand-in ctr (test/lab/ctr.py) keeps each node's image list.
      extip_ctr: join(this.dir, 'ctr', h.name),
      // Paths on the etcd host (node1), where Kargo puts the admin certificates; etcdctl
      // runs there. The lab's hosts share one filesystem, each under its own root.
      extip_etcdctl: '/usr/bin/etcdctl',
      extip_etcd_ca_file: join(etcdHost.root, 'etc/ssl/etcd/ssl/ca.pem'),
      extip_etcd_cert_file: join(etcdHost.root, `etc/ssl/etcd/ssl/admin-${etcdHost.name}.pem`),
      extip_etcd_key_file: join(etcdHost.root, `etc/ssl/etcd/ssl/admin-${etcdHost.name}-key.pem`),
    };
  }

  /** The lab's bin_dir: kubectl with the lab's own discovery cache. */
  get binDir(): string {
    return join(this.dir, 'bin');
  }

  /** Where the stand-in ctr keeps a node's images (images.json) and the calls it got (calls.jsonl). */
  containerdRoot(h: LabHost): string {
    return join(h.root, 'var/lib/containerd');
  }

  private interpreter(h: LabHost): string {
    return join(this.dir, 'interpreters', h.name);
  }

  private shell(h: LabHost): string {
    return join(this.dir, 'shells', h.name);
  }

  /** The Kargo-era inventory (kube-master, kube-node, etcd, k8s-cluster). */
  get kargoInventory(): string {
    return join(this.dir, 'inventory-kargo', 'inventory.cfg');
  }

  /** The kubespray-era inventory (kube_control_plane, kube_node, etcd, k8s_cluster). */
  get kubesprayInventory(): string {
    return join(this.dir, 'inventory-kubespray', 'hosts.yaml');
  }

  private async writeInventories(): Promise<void> {
    await mkdir(join(this.dir, 'interpreters'), {recursive: true});
    await mkdir(join(this.dir, 'shells'), {recursive: true});
    await mkdir(join(this.dir, 'ctr'), {recursive: true});
    await mkdir(this.binDir, {recursive: true});
    await writeFile(join(this.binDir, 'kubectl'), `#!/bin/sh\nKUBECACHEDIR=${join(this.dir, 'kubecache')} exec ${this.kubectlPath} "$@"\n`, {mode: 0o755});
    for (const h of this.hosts) {
      await writeFile(this.interpreter(h), `#!/bin/sh\nexec /usr/sbin/ip netns exec ${h.ns} /usr/bin/python3 "$@"\n`, {mode: 0o755});
      await writeFile(this.shell(h), `#!/bin/sh\nexec /usr/sbin/ip netns exec ${h.ns} /bin/sh "$@"\n`, {mode: 0o755});
      await writeFile(join(this.dir, 'ctr', h.name), `#!/bin/sh\nEXTIP_LAB_CONTAINERD_ROOT=${this.containerdRoot(h)} exec /usr/bin/python3 ${join(repoRoot, 'test/lab/ctr.py')} "$@"\n`, {mode: 0o755});
    }
    const quote = (v: string) => (/\s/.test(v) ? `"${v}"` : v);
    const kargo = [
      '[all]',
      ...this.hosts.map((h) => `${h.name} ${Object.entries(this.hostVars(h)).map(([k, v]) => `${k}=${quote(v)}`).join(' ')}`),
      '',
      '[kube-master]',
      ...this.controlPlane.map((h) => h.name),
      '',
      '[etcd]',
      this.hosts[0].name,
      '',
      '[kube-node]',
      ...this.hosts.map((h) => h.name),
      '',
      '[k8s-cluster:children]',
      'kube-node',
      'kube-master',
      '',
    ].join('\n');
    await mkdir(join(this.dir, 'inventory-kargo'), {recursive: true});
    await writeFile(this.kargoInventory, kargo);
    const names = (hs: LabHost[]) => Object.fromEntries(hs.map((h) => [h.name, null]));
    const kubespray = {
      all: {
        hosts: Object.fromEntries(this.hosts.map((h) => [h.name, this.hostVars(h)])),
        children: {
          kube_control_plane: {hosts: names(this.controlPlane)},
          etcd: {hosts: names([this.hosts[0]])},
          kube_node: {hosts: names(this.hosts)},
          k8s_cluster: {children: {kube_control_plane: null, kube_node: null}},
        },
      },
    };
    await mkdir(join(this.dir, 'inventory-kubespray'), {recursive: true});
    await writeFile(this.kubesprayInventory, YAML.stringify(kubespray));
  }

  /** Runs a command inside a host's or a router's namespace. */
  async exec(host: string, command: string, args: string[], input?: string) {
    return execa('ip', ['netns', 'exec', this.nsOf(host), command, ...args], {reject: false, input});
  }

  /** kubectl against the lab API from this machine. */
  async kubectl(args: string[], input?: string) {
    return execa(this.kubectlPath, ['--kubeconfig', this.api.kubeconfig, ...args], {
      reject: false,
      input,
      env: {KUBECACHEDIR: join(this.dir, 'kubecache')},
    });
  }

  /** Starts a process in a host's namespace, stopped with the lab. */
  startIn(host: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Daemon {
    const d = startDaemon('ip', ['netns', 'exec', this.nsOf(host), command, ...args], env);
    this.daemons.push(d);
    return d;
  }

  /**
   * A TCP server on a host that answers every connection with the host's
   * name, on every address. A connection reset under it (a flow that an
   * ECMP router moved to another node mid-way) is that connection's
   * failure only: an unhandled socket error would end the server, and every
   * later connection to the node would be refused.
   */
  serveName(host: string, port = 80): Daemon {
    const name = this.host(host).name;
    // In a dual-stack lab on '::', which takes IPv4 connections too (as IPv4-mapped): every address of either family.
    const any = this.dualStack ? '::' : '0.0.0.0';
    return this.startIn(name, process.execPath, ['-e', `require('net').createServer((s) => { s.on('error', () => {}); s.end('${name}\\n'); }).listen(${port}, '${any}')`]);
  }

  /**
   * A UPnP Internet Gateway Device on the first ToR, as a home router has
   * one: miniupnpd (Debian's, on iptables-legacy) listening on the segment,
   * forwarding from its external link `wan` (1.2.3.1, to a host 1.2.3.2) to
   * the segment, in secure mode (a host maps ports only to itself), every
   * port allowed but those in `deny` (a refusal to provoke). Stopped with
   * the lab.
   */
  async addUpnpGateway(options: {deny?: number[]} = {}): Promise<LabUpnp> {
    const tor = this.routers[0];
    const ns = `${NS_PREFIX}-${this.id}-inet`;
    trackNamespace(ns);
    this.extraNamespaces.push(ns);
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', tor.ns, '-batch', '-'], {
      input: [`link add wan type veth peer name eth0 netns ${ns}`, `address add ${INTERNET.gateway}/${INTERNET.prefix} dev wan`, 'link set wan up'].join('\n') + '\n',
    });
    await execa('ip', ['-n', ns, '-batch', '-'], {input: ['link set lo up', `address add ${INTERNET.host}/${INTERNET.prefix} dev eth0`, 'link set eth0 up', `route add default via ${INTERNET.gateway}`].join('\n') + '\n'});
    // The chains miniupnpd writes its rules into (its init script's, for the one external interface).
    const chains = [
      ['-t', 'nat', '-N', 'MINIUPNPD'], ['-t', 'nat', '-I', 'PREROUTING', '-i', 'wan', '-j', 'MINIUPNPD'],
      ['-t', 'nat', '-N', 'MINIUPNPD-POSTROUTING'], ['-t', 'nat', '-I', 'POSTROUTING', '-o', 'wan', '-j', 'MINIUPNPD-POSTROUTING'],
      ['-t', 'mangle', '-N', 'MINIUPNPD'], ['-t', 'mangle', '-I', 'PREROUTING', '-i', 'wan', '-j', 'MINIUPNPD'],
      ['-t', 'filter', '-N', 'MINIUPNPD'], ['-t', 'filter', '-I', 'FORWARD', '-i', 'wan', '!', '-o', 'wan', '-j', 'MINIUPNPD'],
    ];
    for (const c of chains) await execa('ip', ['netns', 'exec', tor.ns, 'iptables-legacy', ...c]);
    const dir = join(this.dir, 'upnp');
    await mkdir(dir, {recursive: true});
    const conf = join(dir, 'miniupnpd.conf');
    const port = 5000;
    await writeFile(conf, [
      'ext_ifname=wan', 'listening_ip=br0', `http_port=${port}`, 'enable_natpmp=no', 'enable_upnp=yes', 'secure_mode=yes', 'system_uptime=yes',
      `uuid=3e8a4d52-0b6a-4c1b-9a4e-${randomBytes(6).toString('hex')}`, `lease_file=${join(dir, 'leases')}`,
      ...(options.deny ?? []).map((p) => `deny ${p} ${SEGMENT}.0/24 0-65535`),
      `allow 1-65535 ${SEGMENT}.0/24 1-65535`, 'deny 0-65535 0.0.0.0/0 0-65535', '',
    ].join('\n'));
    const daemon = startDaemon('ip', ['netns', 'exec', tor.ns, 'miniupnpd', '-f', conf, '-d', '-P', join(dir, 'miniupnpd.pid')]);
    this.daemons.push(daemon);
    const location = `http://${tor.ip}:${port}/rootDesc.xml`;
    await waitFor('miniupnpd to serve its description', async () => (await execa('ip', ['netns', 'exec', tor.ns, 'curl', '-sf', '-o', '/dev/null', location], {reject: false})).exitCode === 0, 15000);
    return {
      location,
      external: INTERNET.gateway,
      internet: {ns, ip: INTERNET.host},
      // miniupnpd's own table, its lease file (`TCP:80:10.210.1.200:80:expiry:description` a line): iptables-legacy
      // cannot print the DNAT target's revision that miniupnpd writes.
      mappings: async () => {
        const text = await readFile(join(dir, 'leases'), 'utf8').catch(() => '');
        return text.split('\n').map((l) => /^(TCP|UDP):(\d+):([^:]+):(\d+):/.exec(l)).filter((m): m is RegExpExecArray => Boolean(m))
          .map((m) => `${m[1]} ${m[2]} -> ${m[3]}:${m[4]}`).sort();
      },
      connect: async (p: number) => {
        const script = `const s = require('net').connect({host: '${INTERNET.gateway}', port: ${p}, timeout: 2000}); let d = '';
          s.on('data', (x) => (d += x)); s.on('end', () => console.log(d.trim())); s.on('error', (e) => console.log('error: ' + e.code)); s.on('timeout', () => { console.log('error: timeout'); s.destroy(); });`;
        return (await execa('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {reject: false})).stdout.trim();
      },
    };
  }

  /**
   * A DHCP server on the first rack's segment, as a small office's router
   * has one: dnsmasq on the ToR's bridge, leasing DHCP_RANGE (for
   * LoadBalancer addresses leased from the network, extip_lb_dhcp). Stopped
   * with the lab.
   */
  async addDhcpServer(): Promise<DhcpServer> {
    const tor = this.routers[0];
    const server = await startDhcpServer({ns: tor.ns, iface: 'br0', server: tor.ip, first: `${SEGMENT}.${DHCP_RANGE.first}`, last: `${SEGMENT}.${DHCP_RANGE.last}`, prefix: 24, dir: join(this.dir, 'dhcp')});
    this.dhcp = server;
    return server;
  }

  /**
   * A client host for traffic to the external IPs, on its own segment
   * (10.99.0.0/24) behind the core when the lab has one, else behind the
   * first ToR. The routers hash multipath routes on L4, so separate
   * connections spread over the nexthops.
   */
  async addClient(): Promise<LabClient> {
    const ns = `${NS_PREFIX}-${this.id}-client`;
    trackNamespace(ns);
    this.extraNamespaces.push(ns);
    await execa('ip', ['netns', 'add', ns]);
    const gateway = this.core ?? this.routers[0];
    const v6 = this.dualStack;
    await execa('ip', ['-n', gateway.ns, '-batch', '-'], {
      input: [`link add vc type veth peer name eth0 netns ${ns}`, 'address add 10.99.0.1/24 dev vc', ...(v6 ? ['address add fd10:99::1/64 dev vc nodad'] : []), 'link set vc up'].join('\n') + '\n',
    });
    await execa('ip', ['-n', ns, '-batch', '-'], {input: ['link set lo up', 'address add 10.99.0.2/24 dev eth0', ...(v6 ? ['address add fd10:99::2/64 dev eth0 nodad'] : []), 'link set eth0 up', 'route add default via 10.99.0.1',
      ...(v6 ? ['route add ::/0 via fd10:99::1'] : [])].join('\n') + '\n'});
    for (const [i, r] of this.routers.entries()) {
      // Each router hashes the 5-tuple afresh with a seed of its own (policy 3, the fields
      // below), as real routers do: policy 1 reuses the hash the packet already carries, so a
      // ToR behind the core would send every flow the core gave it to one node.
      const custom = await execa('ip', ['netns', 'exec', r.ns, 'sysctl', '-qw', 'net.ipv4.fib_multipath_hash_fields=0x0037', `net.ipv4.fib_multipath_hash_seed=${7919 * (i + 1)}`, 'net.ipv4.fib_multipath_hash_policy=3'], {reject: false});
      if (custom.exitCode !== 0) await execa('ip', ['netns', 'exec', r.ns, 'sysctl', '-qw', 'net.ipv4.fib_multipath_hash_policy=1']);
    }
    return {
      ns,
      ip: '10.99.0.2',
      ...(v6 ? {ip6: 'fd10:99::2'} : {}),
      connectMany: async (ip: string, port: number, count: number) => {
        const script = `const net = require('net'); const out = {byAnswer: {}, failures: 0};
          (async () => { for (let i = 0; i < ${count}; i++) { await new Promise((resolve) => {
            const s = net.connect({host: '${ip}', port: ${port}, timeout: 2000}); let data = '';
            s.on('data', (d) => (data += d)); s.on('end', () => { const a = data.trim(); out.byAnswer[a] = (out.byAnswer[a] || 0) + 1; resolve(); });
            s.on('error', () => { out.failures++; resolve(); }); s.on('timeout', () => { out.failures++; s.destroy(); resolve(); }); }); }
            console.log(JSON.stringify(out)); })();`;
        const r = await execa('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {reject: false});
        return JSON.parse(r.stdout || '{"byAnswer":{},"failures":-1}') as {byAnswer: Record<string, number>; failures: number};
      },
    };
  }

  async stop(): Promise<void> {
    this.up = false;
    await Promise.all(this.nodeKubelets.map((k) => k.stop().catch(() => {})));
    await Promise.all([...this.daemons.map((d) => d.stop()), this.dhcp?.stop()]);
    this.daemons = [];
    await this.k8s?.stop().catch(() => {});
    for (const ns of [...this.routers.map((r) => r.ns), ...this.hosts.map((h) => h.ns), ...this.extraNamespaces]) {
      await execa('ip', ['netns', 'del', ns], {reject: false});
      untrackNamespace(ns);
    }
    await rm(this.dir, {recursive: true, force: true});
    untrackDir(this.dir);
  }

  get running(): boolean {
    return this.up;
  }
}

async function checkPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces); run the tests as root');
  for (const tool of ['ip', 'socat', 'openssl', 'ansible-playbook']) {
    const r = await execa('sh', ['-c', `command -v ${tool}`], {reject: false});
    if (r.exitCode !== 0) throw new Error(`the lab needs ${tool}; run test/setup.sh as root`);
  }
  const probe = `extip-probe-${process.pid}`;
  const r = await execa('ip', ['netns', 'add', probe], {reject: false});
  if (r.exitCode !== 0) throw new Error(`cannot create network namespaces here: ${r.stderr}`);
  await execa('ip', ['netns', 'del', probe], {reject: false});
}
