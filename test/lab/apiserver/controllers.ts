/**
 * The small controllers a real cluster runs that kubectl and extip rely on:
 * CRDs become Established (and their resources appear in discovery), deleting
 * a namespace deletes what is in it, owned objects follow their owner, and
 * DaemonSets/Deployments get a status. The workload status comes from a
 * provider: by default every matching node counts as running a ready pod; the
 * lab's kubelet replaces it with the state of real processes.
 */
import type {Store, WatchEvent} from './store.js';
import {type Json, type JsonObject, type KubeObject, type ResourceType, isObject} from './types.js';

export interface WorkloadCounts {
  /** Pods the workload should have. */
  desired: number;
  /** Pods running the current template. */
  updated: number;
  ready: number;
}

/** How many pods of a workload exist and are ready; the kubelet's seam. */
export type WorkloadStatusProvider = (workload: KubeObject, matchingNodes: KubeObject[]) => WorkloadCounts;

/** Annotating a node with this makes the simulated kubelet on it "down": no pods run there. */
export const KUBELET_DOWN = 'lab.extip.io/kubelet-down';

export const simulatedWorkloads: WorkloadStatusProvider = (w, nodes) => {
  const up = nodes.filter((n) => !(n.metadata.annotations as Record<string, string> | undefined)?.[KUBELET_DOWN]);
  if (w.kind === 'DaemonSet') return {desired: nodes.length, updated: up.length, ready: up.length};
  const replicas = Number((w.spec as JsonObject | undefined)?.replicas ?? 1);
  const running = up.length > 0 ? replicas : 0;
  return {desired: replicas, updated: running, ready: running};
};

/**
 * Where the simulated scheduler puts a workload's pods: a DaemonSet one per
 * matching node, a Deployment its replicas spread over them.
 */
export function placements(w: KubeObject, nodes: KubeObject[]): Array<{name: string; node: string}> {
  const up = nodes.filter((n) => !(n.metadata.annotations as Record<string, string> | undefined)?.[KUBELET_DOWN]);
  const base = String(w.metadata.name);
  if (w.kind === 'DaemonSet') return up.map((n) => ({name: `${base}-${n.metadata.name}`, node: String(n.metadata.name)}));
  const replicas = Number((w.spec as JsonObject | undefined)?.replicas ?? 1);
  if (!up.length) return [];
  return Array.from({length: replicas}, (_, i) => ({name: `${base}-${i}`, node: String(up[i % up.length].metadata.name)}));
}

/** Keeps Pod objects for the simulated workloads: what a scheduler and kubelets would report. */
function syncSimulatedPods(store: Store): void {
  const podType = type(store, '', 'pods');
  const wanted = new Set<string>();
  for (const plural of ['daemonsets', 'deployments']) {
    for (const w of store.list(type(store, 'apps', plural), undefined, () => true, () => true)) {
      if (w.metadata.deletionTimestamp) continue;
      const template = ((w.spec as JsonObject).template ?? {}) as JsonObject;
      const templateMeta = (template.metadata ?? {}) as JsonObject;
      for (const p of placements(w, matchingNodes(store, w))) {
        wanted.add(`${w.metadata.namespace}/${p.name}`);
        if (store.tryGet(podType, w.metadata.namespace, p.name)) continue;
        const pod = store.create(podType, w.metadata.namespace, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: p.name,
            labels: (templateMeta.labels ?? {}) as Json,
            ownerReferences: [{apiVersion: 'apps/v1', kind: w.kind, name: String(w.metadata.name), uid: String(w.metadata.uid), controller: true}],
          },
          spec: {...((template.spec ?? {}) as JsonObject), nodeName: p.node},
        }, {});
        store.setStatus(podType, w.metadata.namespace, String(pod.metadata.name), {
          phase: 'Running',
          conditions: [{type: 'Ready', status: 'True'}],
          hostIP: p.node,
        });
      }
    }
  }
  for (const pod of store.list(podType, undefined, () => true, () => true)) {
    const owner = ((pod.metadata.ownerReferences ?? []) as JsonObject[])[0];
    if (!owner || !['DaemonSet', 'Deployment'].includes(String(owner.kind))) continue;
    if (!wanted.has(`${pod.metadata.namespace}/${pod.metadata.name}`)) store.removeObject(podType, pod.metadata.namespace, String(pod.metadata.name));
  }
}

const providers = new WeakMap<Store, WorkloadStatusProvider>();

export function setWorkloadStatusProvider(store: Store, provider: WorkloadStatusProvider): void {
  providers.set(store, provider);
  refreshWorkloads(store);
}

function type(store: Store, group: string, plural: string): ResourceType {
  const t = store.types.get(`${group}/${plural}`);
  if (!t) throw new Error(`no type ${group}/${plural}`);
  return t;
}

/** Nodes a pod template can land on: its nodeSelector matches, and the node is not cordoned. */
export function matchingNodes(store: Store, workload: KubeObject): KubeObject[] {
  const template = (workload.spec as JsonObject | undefined)?.template as JsonObject | undefined;
  const podSpec = (template?.spec ?? {}) as JsonObject;
  const selector = (podSpec.nodeSelector ?? {}) as Record<string, string>;
  const nodes = store.list(type(store, '', 'nodes'), undefined, () => true, () => true);
  return nodes.filter((n) => {
    const labels = n.metadata.labels ?? {};
    if ((n.spec as JsonObject | undefined)?.unschedulable === true) return false;
    return Object.entries(selector).every(([k, v]) => labels[k] === v);
  });
}

function workloadStatus(w: KubeObject, counts: WorkloadCounts): JsonObject {
  const generation = Number(w.metadata.generation ?? 1);
  if (w.kind === 'DaemonSet') {
    return {
      observedGeneration: generation,
      desiredNumberScheduled: counts.desired,
      currentNumberScheduled: counts.updated,
      updatedNumberScheduled: counts.updated,
      numberReady: counts.ready,
      numberAvailable: counts.ready,
      numberMisscheduled: 0,
      ...(counts.desired - counts.ready > 0 ? {numberUnavailable: counts.desired - counts.ready} : {}),
    };
  }
  const available = counts.ready >= counts.desired;
  return {
    observedGeneration: generation,
    replicas: counts.updated,
    updatedReplicas: counts.updated,
    readyReplicas: counts.ready,
    availableReplicas: counts.ready,
    ...(counts.desired - counts.ready > 0 ? {unavailableReplicas: counts.desired - counts.ready} : {}),
    conditions: [
      {type: 'Available', status: available ? 'True' : 'False', reason: available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', message: available ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.'},
      {type: 'Progressing', status: 'True', reason: available ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated', message: `ReplicaSet "${w.metadata.name}" is progressing.`},
    ],
  };
}

export function refreshWorkloads(store: Store): void {
  const provider = providers.get(store) ?? simulatedWorkloads;
  if (!providers.has(store)) syncSimulatedPods(store);
  for (const plural of ['daemonsets', 'deployments']) {
    const t = type(store, 'apps', plural);
    for (const w of store.list(t, undefined, () => true, () => true)) {
      if (w.metadata.deletionTimestamp) continue;
      const status = workloadStatus(w, provider(w, matchingNodes(store, w)));
      const old = (w.status ?? {}) as JsonObject;
      // Keep condition timestamps stable: compare without them.
      if (JSON.stringify(old) !== JSON.stringify(status)) store.setStatus(t, w.metadata.namespace, String(w.metadata.name), status);
    }
  }
}

function crdTypes(crd: KubeObject): ResourceType[] {
  const spec = crd.spec as JsonObject;
  const names = spec.names as JsonObject;
  const versions = (spec.versions as JsonObject[] | undefined) ?? [];
  const served = versions.filter((v) => v.served !== false);
  // The fake serves one version per CRD: the storage version (or the first served one).
  const v = served.find((x) => x.storage === true) ?? served[0];
  if (!v) return [];
  const subresources = isObject(v.subresources) ? Object.keys(v.subresources) : [];
  return [{
    group: String(spec.group),
    version: String(v.name),
    plural: String(names.plural),
    singular: String(names.singular ?? String(names.kind).toLowerCase()),
    kind: String(names.kind),
    namespaced: spec.scope === 'Namespaced',
    shortNames: (names.shortNames as string[] | undefined) ?? undefined,
    subresources,
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    crd: String(crd.metadata.name),
  }];
}

function onCrd(store: Store, event: WatchEvent): void {
  const crd = event.object;
  const crdType = type(store, 'apiextensions.k8s.io', 'customresourcedefinitions');
  const spec = crd.spec as JsonObject;
  const names = spec.names as JsonObject;
  const key = `${spec.group}/${names.plural}`;
  if (event.type === 'DELETED' || crd.metadata.deletionTimestamp) {
    const t = store.types.get(key);
    if (t) {
      for (const o of store.list(t, undefined, () => true, () => true)) store.removeObject(t, o.metadata.namespace, String(o.metadata.name));
      store.unregisterType(key);
    }
    return;
  }
  for (const t of crdTypes(crd)) {
    const existing = store.types.get(key);
    if (!existing || JSON.stringify(existing) !== JSON.stringify(t)) store.registerType(t);
  }
  const status: JsonObject = {
    acceptedNames: names as Json,
    storedVersions: [String(((spec.versions as JsonObject[]).find((v) => v.storage) ?? (spec.versions as JsonObject[])[0]).name)],
    conditions: [
      {type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: String(crd.metadata.creationTimestamp)},
      {type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: String(crd.metadata.creationTimestamp)},
    ],
  };
  store.setStatus(crdType, undefined, String(crd.metadata.name), status);
}

function onNamespace(store: Store, event: WatchEvent): void {
  const ns = event.object;
  if (event.type !== 'MODIFIED' || !ns.metadata.deletionTimestamp) return;
  // Delete the contents, then the namespace itself.
  for (const {type: t, object} of store.all()) {
    if (t.namespaced && object.metadata.namespace === ns.metadata.name) store.removeObject(t, object.metadata.namespace, String(object.metadata.name));
  }
  store.removeObject(type(store, '', 'namespaces'), undefined, String(ns.metadata.name));
}

function onDeleted(store: Store, event: WatchEvent): void {
  const uid = event.object.metadata.uid;
  for (const {type: t, object} of store.all()) {
    const owners = (object.metadata.ownerReferences ?? []) as JsonObject[];
    if (!owners.some((o) => o.uid === uid)) continue;
    // Graceful deletion: a pod with a finalizer (the lab kubelet's) stays until its container has stopped.
    store.delete(t, object.metadata.namespace, String(object.metadata.name), {});
  }
}

/** Starts the controllers; returns a function that stops them. */
export function startControllers(store: Store): () => void {
  let pending = false;
  let stopped = false;
  const queue: WatchEvent[] = [];
  const run = () => {
    pending = false;
    if (stopped) return;
    let workloads = false;
    while (queue.length) {
      const event = queue.shift()!;
      const key = event.typeKey;
      if (key === 'apiextensions.k8s.io/customresourcedefinitions') onCrd(store, event);
      if (key === '/namespaces') onNamespace(store, event);
      if (event.type === 'DELETED') onDeleted(store, event);
      if (key === 'apps/daemonsets' || key === 'apps/deployments' || key === '/nodes') workloads = true;
    }
    if (workloads) refreshWorkloads(store);
  };
  const hook = (event: WatchEvent) => {
    // Status writes of the controllers themselves need no reaction.
    queue.push(event);
    if (!pending) {
      pending = true;
      setImmediate(run);
    }
  };
  store.hooks.push(hook);
  return () => {
    stopped = true;
    const i = store.hooks.indexOf(hook);
    if (i >= 0) store.hooks.splice(i, 1);
  };
}
