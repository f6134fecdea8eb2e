/**
 * The lab's kubelet stand-in: for each DaemonSet/Deployment whose pods would
 * land on a lab node (node selector, replicas), it starts the pod's container
 * command as a process inside that node's namespace, with the pod's env
 * (downward API spec.nodeName and friends) and a kubeconfig for the lab API,
 * publishes a Pod with nodeName and a Ready condition, and stops the process
 * (SIGTERM) when the workload, the label or the node goes away. `ipmanager`
 * maps to the package's bin/ipmanager.js.
 */
import {join} from 'node:path';
import type {WorkloadStatusProvider} from './apiserver/controllers.js';
import {matchingNodes, placements, refreshWorkloads, simulatedWorkloads} from './apiserver/controllers.js';
import type {Store, WatchEvent} from './apiserver/store.js';
import type {JsonObject, KubeObject} from './apiserver/types.js';
import type {Daemon} from './procs.js';
import type {Kubelet, Lab} from './lab.js';
import {repoRoot} from './tools.js';

interface Container {
  key: string;
  namespace: string;
  pod: string;
  node: string;
  workload: string;
  generation: number;
  daemon: Daemon;
  exited: boolean;
}

/** Pods the kubelet runs carry this finalizer: deleting them waits until the container stopped. */
export const KUBELET_FINALIZER = 'lab.extip.io/kubelet';


function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m);
}

export class LabKubelet implements Kubelet {
  private lab!: Lab;
  private store!: Store;
  private containers = new Map<string, Container>();
  private hook?: (e: WatchEvent) => void;
  private pending = false;
  private stopped = false;
  /** Log of what the kubelet did, for tests and debugging. */
  readonly events: string[] = [];

  async start(lab: Lab): Promise<WorkloadStatusProvider> {
    this.lab = lab;
    this.store = lab.api.server.store;
    this.hook = (e) => {
      if (!['apps/daemonsets', 'apps/deployments', '/nodes'].includes(e.typeKey)) return;
      if (this.pending || this.stopped) return;
      this.pending = true;
      setImmediate(() => {
        this.pending = false;
        void this.sync();
      });
    };
    this.store.hooks.push(this.hook);
    await this.sync();
    return (w, nodes) => {
      const want = simulatedWorkloads(w, nodes).desired;
      const mine = [...this.containers.values()].filter((c) => c.workload === `${w.metadata.namespace}/${w.metadata.name}` && !c.exited);
      const current = mine.filter((c) => c.generation === Number(w.metadata.generation ?? 1)).length;
      return {desired: want, updated: current, ready: current};
    };
  }

  /** The running container of a workload on a node. */
  container(workload: string, node: string): Container | undefined {
    return [...this.containers.values()].find((c) => c.workload === workload && c.node === node);
  }

  private async sync(): Promise<void> {
    if (this.stopped) return;
    const wanted = new Map<string, {w: KubeObject; node: string; pod: string}>();
    for (const plural of ['daemonsets', 'deployments']) {
      const t = this.store.types.get(`apps/${plural}`)!;
      for (const w of this.store.list(t, undefined, () => true, () => true)) {
        if (w.metadata.deletionTimestamp) continue;
        for (const {name: pod, node} of placements(w, matchingNodes(this.store, w))) {
          wanted.set(`${w.metadata.namespace}/${pod}`, {w, node, pod});
        }
      }
    }
    // Stop what is no longer wanted, or runs an old template.
    for (const [key, c] of this.containers) {
      const want = wanted.get(key);
      if (want && want.node === c.node && Number(want.w.metadata.generation ?? 1) === c.generation) continue;
      this.containers.delete(key);
      await this.kill(c);
    }
    for (const [key, {w, node, pod}] of wanted) {
      if (!this.containers.has(key)) this.run(key, w, node, pod);
    }
    refreshWorkloads(this.store);
  }

  private run(key: string, w: KubeObject, node: string, pod: string): void {
    const template = (w.spec as JsonObject).template as JsonObject;
    const spec = template.spec as JsonObject;
    const c = (spec.containers as JsonObject[])[0];
    const env: Record<string, string> = {};
    for (const e of (c.env as JsonObject[] | undefined) ?? []) {
      const from = (e.valueFrom as JsonObject | undefined)?.fieldRef as JsonObject | undefined;
      if (from) {
        const path = String(from.fieldPath);
        env[String(e.name)] = path === 'spec.nodeName' ? node : path === 'metadata.name' ? pod : path === 'metadata.namespace' ? String(w.metadata.namespace) : '';
      } else env[String(e.name)] = String(e.value ?? '');
    }
    const host = this.lab.host(node);
    const argv = [...((c.command as string[] | undefined) ?? []), ...((c.args as string[] | undefined) ?? [])].map((a) => expand(a, env));
    if (argv[0] === 'ipmanager') {
      argv.splice(0, 1, process.execPath, join(repoRoot, 'bin/ipmanager.js'));
      // Each node keeps its own state directory (the lab's hosts share one filesystem).
      argv.push(`--state-dir=${join(host.root, 'run/extip')}`);
    }
    const daemon = this.lab.startIn(node, argv[0], argv.slice(1), {
      ...process.env,
      ...env,
      KUBECONFIG: join(host.root, 'etc/kubernetes/admin.conf'),
    });
    const container: Container = {key, namespace: String(w.metadata.namespace), pod, node, workload: `${w.metadata.namespace}/${w.metadata.name}`, generation: Number(w.metadata.generation ?? 1), daemon, exited: false};
    this.containers.set(key, container);
    this.events.push(`start ${key} on ${node}: ${argv.slice(argv[0] === process.execPath ? 2 : 0).join(' ')}`);
    const podType = this.store.types.get('/pods')!;
    this.store.removeObject(podType, container.namespace, pod);
    const created = this.store.create(podType, container.namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {name: pod, finalizers: [KUBELET_FINALIZER], labels: ((template.metadata as JsonObject).labels ?? {}) as JsonObject, ownerReferences: [{apiVersion: 'apps/v1', kind: w.kind, name: String(w.metadata.name), uid: String(w.metadata.uid), controller: true}]},
      spec: {...spec, nodeName: node},
    }, {});
    this.store.setStatus(podType, container.namespace, String(created.metadata.name), {phase: 'Running', hostIP: host.ip, conditions: [{type: 'Ready', status: 'True'}]});
    daemon.child.once('exit', (code, signal) => {
      container.exited = true;
      this.events.push(`exit ${key}: ${code ?? signal}`);
      // Not restarted: the pod shows the container as terminated.
      if (this.containers.get(key) === container) {
        this.store.setStatus(podType, container.namespace, pod, {phase: 'Running', hostIP: host.ip, conditions: [{type: 'Ready', status: 'False', reason: 'ContainerTerminated'}]});
      }
      refreshWorkloads(this.store);
    });
  }

  private async kill(c: Container): Promise<void> {
    this.events.push(`stop ${c.key}`);
    await c.daemon.stop('SIGTERM');
    const podType = this.store.types.get('/pods')!;
    this.store.removeObject(podType, c.namespace, c.pod);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.hook) {
      const i = this.store.hooks.indexOf(this.hook);
      if (i >= 0) this.store.hooks.splice(i, 1);
    }
    await Promise.all([...this.containers.values()].map((c) => this.kill(c)));
    this.containers.clear();
  }
}
