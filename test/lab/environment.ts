/**
 * A whole lab for a person or the demo: the real control plane with a lab
 * kubelet per node, Calico v2's etcd on node1, calico/node v2 (BIRD 1.6) on
 * every node and a router per rack peering with them, which merges equal
 * paths (ECMP); with several racks, a core router peers with the ToRs over
 * eBGP and merges the racks' paths.
 * With calico 'none' no calico/node runs: the router (BFD on) peers with
 * whatever speaker extip runs on the nodes (extip_bgp_speaker: extip).
 */
import {startRouters} from './bgp.js';
import {startCalicoNode} from './calico.js';
import {type LabEtcd, startEtcd} from './etcd.js';
import {Lab, type LabClient, type LabRouter} from './lab.js';

export interface LabInfo {
  kubeconfig: string;
  kubectl: string;
  inventories: {kubespray: string; kargo: string};
  nodes: Array<{name: string; namespace: string; ip: string; rack: number}>;
  /** The first rack's ToR, as a one-rack lab has had it. */
  router: {namespace: string; ip: string};
  routers: Array<{name: string; namespace: string; ip: string; role: LabRouter['role']; rack?: number}>;
  etcd: {endpoint: string};
  /** With the client option: where to run traffic from, and the router it sits behind. */
  client?: {namespace: string; ip: string; behind: string};
}

export interface EnvironmentOptions {
  /** 'v2' (default): calico/node v2 on every node; 'none': no Calico, the router waits for extip's speakers. */
  calico?: 'v2' | 'none';
  /** Racks the nodes spread over (default 1); with more, a core router joins their ToRs over eBGP. */
  racks?: number;
  /** A client host too (10.99.0.2), behind the core when there is one, else behind the ToR. */
  client?: boolean;
}

export interface LabEnvironment {
  lab: Lab;
  etcd: LabEtcd;
  info: LabInfo;
  client?: LabClient;
}

export async function startEnvironment(nodes: number, progress: (line: string) => void = () => {}, options: EnvironmentOptions = {}): Promise<LabEnvironment> {
  progress(`starting the control plane and ${nodes} node${nodes === 1 ? '' : 's'}`);
  const racks = options.racks ?? 1;
  const lab = await Lab.start({nodes, racks});
  const routers = racks > 1 ? `the ToRs' and the core's BGP` : "the router's BGP";
  try {
    const etcd = await startEtcd(lab);
    if (options.calico === 'none') {
      progress(`starting Calico v2's etcd and ${routers} with BFD (no calico/node: the routers peer with extip's speakers)`);
      await startRouters(lab, {bfd: true});
    } else {
      progress(`starting Calico v2's etcd, calico/node on every node and ${routers}`);
      await startRouters(lab);
      await Promise.all(lab.hosts.map((h) => startCalicoNode(lab, etcd, h.name)));
    }
    const client = options.client ? await lab.addClient() : undefined;
    const info: LabInfo = {
      kubeconfig: lab.api.kubeconfig,
      kubectl: lab.kubectlPath,
      inventories: {kubespray: lab.kubesprayInventory, kargo: lab.kargoInventory},
      nodes: lab.hosts.map((h) => ({name: h.name, namespace: h.ns, ip: h.ip, rack: h.rack})),
      router: {namespace: lab.router.ns, ip: lab.router.ip},
      routers: lab.routers.map((r) => ({name: r.name, namespace: r.ns, ip: r.ip, role: r.role, ...(r.rack ? {rack: r.rack} : {})})),
      etcd: {endpoint: etcd.endpoint},
      ...(client ? {client: {namespace: client.ns, ip: client.ip, behind: (lab.core ?? lab.routers[0]).name}} : {}),
    };
    return {lab, etcd, info, client};
  } catch (err) {
    await lab.stop();
    throw err;
  }
}
