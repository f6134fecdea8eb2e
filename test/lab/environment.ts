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
import {SERVICE_CIDRS} from './controlplane.js';
import {Lab, type LabClient, type LabRouter, segment6} from './lab.js';

export interface LabInfo {
  kubeconfig: string;
  kubectl: string;
  inventories: {kubespray: string; kargo: string};
  /** ip6: in a dual-stack lab, the IPv6 address of each node, router and the client. */
  nodes: Array<{name: string; namespace: string; ip: string; ip6?: string; rack: number}>;
  /** The first rack's ToR, as a one-rack lab has had it. */
  router: {namespace: string; ip: string; ip6?: string};
  routers: Array<{name: string; namespace: string; ip: string; ip6?: string; role: LabRouter['role']; rack?: number}>;
  etcd: {endpoint: string};
  /** With the client option: where to run traffic from, and the router it sits behind. */
  client?: {namespace: string; ip: string; ip6?: string; behind: string};
  /** A dual-stack lab's IPv6 segment and Service CIDR. */
  dualStack?: {segment: string; serviceCidr: string};
  /** With the upnp option: the gateway's description URL, its external address, and the host behind it. */
  upnp?: {gateway: string; external: string; internet: {namespace: string; ip: string}};
  /** With the dhcp option: the DHCP server's address and the range it leases. */
  dhcp?: {server: string; range: string};
}

export interface EnvironmentOptions {
  /** 'v2' (default): calico/node v2 on every node; 'none': no Calico, the router waits for extip's speakers. */
  calico?: 'v2' | 'none';
  /** Racks the nodes spread over (default 1); with more, a core router joins their ToRs over eBGP. */
  racks?: number;
  /** A client host too (10.99.0.2), behind the core when there is one, else behind the ToR. */
  client?: boolean;
  /** IPv6 beside IPv4 on the segment, the client and the API server's Service CIDRs (one rack). */
  dualStack?: boolean;
  /** A UPnP Internet gateway on the first ToR (miniupnpd), with a host on its external side. */
  upnp?: boolean;
  /** A DHCP server (dnsmasq) on the first ToR, leasing part of the first segment. */
  dhcp?: boolean;
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
  const lab = await Lab.start({nodes, racks, dualStack: options.dualStack});
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
    const upnp = options.upnp ? await lab.addUpnpGateway() : undefined;
    const dhcp = options.dhcp ? await lab.addDhcpServer() : undefined;
    const info: LabInfo = {
      kubeconfig: lab.api.kubeconfig,
      kubectl: lab.kubectlPath,
      inventories: {kubespray: lab.kubesprayInventory, kargo: lab.kargoInventory},
      nodes: lab.hosts.map((h) => ({name: h.name, namespace: h.ns, ip: h.ip, ...(h.ip6 ? {ip6: h.ip6} : {}), rack: h.rack})),
      router: {namespace: lab.router.ns, ip: lab.router.ip, ...(lab.routers[0].ip6 ? {ip6: lab.routers[0].ip6} : {})},
      routers: lab.routers.map((r) => ({name: r.name, namespace: r.ns, ip: r.ip, ...(r.ip6 ? {ip6: r.ip6} : {}), role: r.role, ...(r.rack ? {rack: r.rack} : {})})),
      etcd: {endpoint: etcd.endpoint},
      ...(client ? {client: {namespace: client.ns, ip: client.ip, ...(client.ip6 ? {ip6: client.ip6} : {}), behind: (lab.core ?? lab.routers[0]).name}} : {}),
      ...(lab.dualStack ? {dualStack: {segment: `${segment6(1)}/64`, serviceCidr: SERVICE_CIDRS.v6}} : {}),
      ...(upnp ? {upnp: {gateway: upnp.location, external: upnp.external, internet: {namespace: upnp.internet.ns, ip: upnp.internet.ip}}} : {}),
      ...(dhcp ? {dhcp: {server: dhcp.server, range: `${dhcp.range.first}-${dhcp.range.last}`}} : {}),
    };
    return {lab, etcd, info, client};
  } catch (err) {
    await lab.stop();
    throw err;
  }
}
