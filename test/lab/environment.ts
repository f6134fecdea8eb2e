/**
 * A whole lab for a person or the demo: the real control plane with a lab
 * kubelet per node, Calico v2's etcd on node1, calico/node v2 (BIRD 1.6) on
 * every node and a router peering with them, which merges equal paths (ECMP).
 * With calico 'none' no calico/node runs: the router (BFD on) peers with
 * whatever speaker extip runs on the nodes (extip_bgp_speaker: extip).
 */
import {startBird} from './bird.js';
import {routerBird2Config} from './bgp.js';
import {startCalicoNode} from './calico.js';
import {type LabEtcd, startEtcd} from './etcd.js';
import {Lab} from './lab.js';

export interface LabInfo {
  kubeconfig: string;
  kubectl: string;
  inventories: {kubespray: string; kargo: string};
  nodes: Array<{name: string; namespace: string; ip: string}>;
  router: {namespace: string; ip: string};
  etcd: {endpoint: string};
}

export interface EnvironmentOptions {
  /** 'v2' (default): calico/node v2 on every node; 'none': no Calico, the router waits for extip's speakers. */
  calico?: 'v2' | 'none';
}

export interface LabEnvironment {
  lab: Lab;
  etcd: LabEtcd;
  info: LabInfo;
}

export async function startEnvironment(nodes: number, progress: (line: string) => void = () => {}, options: EnvironmentOptions = {}): Promise<LabEnvironment> {
  progress(`starting the control plane and ${nodes} node${nodes === 1 ? '' : 's'}`);
  const lab = await Lab.start({nodes});
  try {
    const etcd = await startEtcd(lab);
    if (options.calico === 'none') {
      progress("starting Calico v2's etcd and the router's BGP with BFD (no calico/node: the router peers with extip's speakers)");
      await startBird(lab, 'tor', routerBird2Config(lab, lab.hosts, {bfd: true}));
    } else {
      progress("starting Calico v2's etcd, calico/node on every node and the router's BGP");
      await startBird(lab, 'tor', routerBird2Config(lab));
      await Promise.all(lab.hosts.map((h) => startCalicoNode(lab, etcd, h.name)));
    }
    const info: LabInfo = {
      kubeconfig: lab.api.kubeconfig,
      kubectl: lab.kubectlPath,
      inventories: {kubespray: lab.kubesprayInventory, kargo: lab.kargoInventory},
      nodes: lab.hosts.map((h) => ({name: h.name, namespace: h.ns, ip: h.ip})),
      router: {namespace: lab.router.ns, ip: lab.router.ip},
      etcd: {endpoint: etcd.endpoint},
    };
    return {lab, etcd, info};
  } catch (err) {
    await lab.stop();
    throw err;
  }
}
