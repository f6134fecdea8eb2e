/**
 * The one module that talks to the Kubernetes API (@kubernetes/client-node).
 * It loads kubeconfig the standard way (--kubeconfig, else KUBECONFIG's files
 * merged as client-go merges them, else ~/.kube/config, else in-cluster) and every reader takes the KubeConfig as a parameter, so
 * tests point it at the lab.
 */
import {extipSelector, ledger as ledgerRef} from './role.js';
import * as k8s from '@kubernetes/client-node';
import {ExitCode, type ExitCodeValue, ExtipError, UserError} from '../lib/errors.js';
import {readFileSync} from 'node:fs';
import YAML from 'yaml';
import {defaultKubeconfigFiles, mergeKubeconfigs} from '../lib/kubeconfig.js';
import {delimiter, join} from 'node:path';
import {roleDir} from './paths.js';
import {type Schema, schemaProblems} from '../lib/schema.js';

export class ClusterUnreachableError extends ExtipError {
  readonly exitCode: ExitCodeValue = ExitCode.unreachable;
}

export function loadKubeConfig(path?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (path) {
    kc.loadFromFile(path);
    return kc;
  }
  // client-node's own lookup merges $KUBECONFIG otherwise than kubectl (the last current-context
  // wins, a name in two files or a missing file throws): read it as client-go does.
  const files = defaultKubeconfigFiles();
  if (files.length) {
    let merged;
    try {
      merged = mergeKubeconfigs(files);
    } catch (err) {
      throw new UserError((err as Error).message, 'fix the file, or pass --kubeconfig with another');
    }
    const {sources: _, ...doc} = merged;
    kc.loadFromString(YAML.stringify(doc));
  } else if ((process.env.KUBECONFIG ?? '').split(delimiter).some(Boolean)) {
    throw new UserError(`none of the files in KUBECONFIG exists (${process.env.KUBECONFIG})`, 'set KUBECONFIG to the kubeconfig of the cluster, or pass --kubeconfig');
  } else kc.loadFromDefault();
  return kc;
}

/** What extip's scheduler and claim controllers record in an IpClaim's status. */
export interface ClaimStatus {
  node?: string;
  /** Since when the claim is on its node. */
  since?: string;
  previousNode?: string | null;
  /** When the previous node was last heard from (its last heartbeat, or when it let go). */
  previousLastSeen?: string | null;
  reason?: string;
  movedAt?: string;
  /** When the address came up, and on which node. */
  upAt?: string | null;
  upOn?: string | null;
  /** The Services that hold the address, the holder first. */
  services?: string[];
  /** The holder's UPnP mappings (agent/upnpkeeper.ts's report). */
  upnp?: {node: string; gateway?: string; external?: string; mapped?: string[]; error?: string; at?: string};
  /** A DHCP claim's lease, as its holder records it (agent/claimcontroller.ts), and why there is none. */
  lease?: {ip: string; server?: string | null; seconds?: number; at?: string; mac?: string; link?: string} | null;
  leaseError?: string | null;
}

export interface ClusterState {
  server: string;
  nodes: k8s.V1Node[];
  workloads: Array<k8s.V1DaemonSet | k8s.V1Deployment>;
  pods: k8s.V1Pod[];
  services: k8s.V1Service[];
  claims: Array<{metadata: {name: string; annotations?: Record<string, string>}; spec?: {cidr?: string; nodeName?: string}; status?: ClaimStatus}>;
  pools: Array<{metadata: {name: string}; spec?: {cidr?: string; ranges?: string[][]; allocated?: Record<string, string>; namespaces?: string[]}}>;
  leases: k8s.V1Lease[];
  /** The claims-mode CRDs the API server does not serve (their names). */
  missingCrds?: string[];
  /** Events extip's agents write: AllocationFailed on Services, BGPSessionDown/Up on Nodes. */
  events?: k8s.CoreV1Event[];
  /** The install ledger (the role's extip__ledger_namespace/extip__ledger_name), when there is one and it follows its schema. */
  ledger?: Ledger;
  /** How the ledger breaks its schema (roles/externalip/files/ledger.schema.json), as the role reads it too. */
  ledgerProblems?: string[];
}

/** What install recorded (roles/externalip/tasks/ledger-write.yml); only what status reads. */
export interface Ledger {
  calico?: {
    etcd?: Record<string, {previous: string | null; written: string}>;
    bgpconfiguration?: {created?: boolean; added?: string[]};
  };
}


/** Reads what status and doctor look at. */
/** Items a page when status lists (kubectl's --chunk-size default). */
export const LIST_PAGE = 500;

/**
 * Every item of a list, read in pages (limit/continue) as kubectl reads
 * lists: 10,000 Services are twenty responses, not one the API server must
 * build whole. `list` is one call of a client's list function.
 */
export async function allPages<T>(list: (page: {limit: number; _continue?: string}) => Promise<{items: T[]; metadata?: {_continue?: string; continue?: string}}>, limit = LIST_PAGE): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const r = await list({limit, ...(token ? {_continue: token} : {})});
    items.push(...r.items);
    // The typed lists name the token _continue; a custom object list is the API's JSON, continue.
    token = r.metadata?._continue || r.metadata?.continue || undefined;
  } while (token);
  return items;
}

export async function readCluster(kc: k8s.KubeConfig): Promise<ClusterState> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  const server = kc.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
  let nodes: k8s.V1Node[];
  try {
    nodes = await allPages((p) => core.listNode(p));
  } catch (err) {
    throw new ClusterUnreachableError(`cannot read the cluster at ${server}: ${describe(err)}`);
  }
  const [daemonsets, deployments, services, leases] = await Promise.all([
    apps.listDaemonSetForAllNamespaces({labelSelector: `${extipSelector},app.kubernetes.io/component=controller`}),
    apps.listDeploymentForAllNamespaces({labelSelector: extipSelector}),
    allPages((p) => core.listServiceForAllNamespaces(p)),
    allPages((p) => coordination.listLeaseForAllNamespaces(p)).catch(() => [] as k8s.V1Lease[]),
  ]);
  // A list's items carry no kind: status tells a DaemonSet from a Deployment by it.
  const workloads = [...daemonsets.items.map((d) => ({...d, kind: 'DaemonSet'})), ...deployments.items.map((d) => ({...d, kind: 'Deployment'}))];
  const namespaces = [...new Set(workloads.map((w) => w.metadata?.namespace ?? 'default'))];
  const pods = (await Promise.all(namespaces.map((ns) => core.listNamespacedPod({namespace: ns, labelSelector: extipSelector})))).flatMap((l) => l.items);
  const missingCrds: string[] = [];
  const listCustom = async (plural: string) => {
    try {
      return await allPages((p) => custom.listClusterCustomObject({group: 'ipcontroller.ext', version: 'v1', plural, ...p}) as Promise<{items: never[]; metadata?: {continue?: string}}>);
    } catch (err) {
      // 404: the API server does not serve the kind, its CRD is gone.
      if ((err as {code?: number}).code === 404) missingCrds.push(`${plural}.ipcontroller.ext`);
      return [];
    }
  };
  // The scheduler's AllocationFailed on Services; the BGP speakers' session changes on Nodes.
  const events = (
    await Promise.all(
      ['AllocationFailed', 'BGPSessionDown', 'BGPSessionUp'].map((reason) =>
        core
          .listEventForAllNamespaces({fieldSelector: `reason=${reason}`})
          .then((l) => l.items)
          .catch(() => [] as k8s.CoreV1Event[]),
      ),
    )
  ).flat();
  const ledgerText = await core
    .readNamespacedConfigMap(ledgerRef)
    .then((cm) => cm.data?.['ledger.json'] ?? '{}')
    .catch(() => undefined);
  const {ledger, problems: ledgerProblems} = readLedger(ledgerText);
  const [claims, pools] = [await listCustom('ipclaims'), await listCustom('ipclaimpools')];
  await listCustom('ipnodes');
  return {server, nodes, workloads, pods, services, claims, pools, leases, ledger, ledgerProblems, missingCrds, events};
}

/** The ledger's text, checked against the schema the role checks it with; a ledger with a problem is read as none. */
export function readLedger(text: string | undefined): {ledger?: Ledger; problems: string[]} {
  if (text === undefined) return {problems: []};
  let data: unknown;
  try {
    data = JSON.parse(text || '{}');
  } catch (err) {
    return {problems: [`ledger.json is not JSON (${(err as Error).message})`]};
  }
  const schema = JSON.parse(readFileSync(join(roleDir, 'files/ledger.schema.json'), 'utf8')) as Schema;
  const problems = schemaProblems(data, schema);
  return problems.length ? {problems} : {ledger: data as Ledger, problems};
}

function describe(err: unknown): string {
  const e = err as {code?: number; body?: unknown; message?: string; cause?: {code?: string; message?: string}};
  if (e.cause?.code) return `${e.cause.code} ${e.cause.message ?? ''}`.trim();
  return (e.message ?? String(err)).split('\n')[0];
}
