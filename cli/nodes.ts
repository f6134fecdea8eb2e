/**
 * Which Kubernetes node each inventory host is: the rule of the role's
 * extip_node_names filter (roles/externalip/filter_plugins/extip_nodes.py).
 * Both run the cases of test/fixtures/node-name-cases.json.
 */
export type NodeNameLookup = 'inventory' | 'internal_ip';

export interface NodeObject {
  metadata?: {name?: string};
  status?: {addresses?: Array<{type?: string; address?: string}>};
}

/**
 * inventory: kube_override_hostname, else the inventory name (kubespray's rule).
 * internal_ip: the node whose InternalIP is the host's ip, access_ip or
 * ansible_host, the first of them set (the original role's rule). A host
 * without a match maps to "".
 */
export function nodeNames(
  hosts: readonly string[],
  hostvars: Record<string, Record<string, unknown>>,
  nodes: readonly NodeObject[],
  lookup: NodeNameLookup | string = 'inventory',
): Record<string, string> {
  const byIp = new Map<string, string>();
  for (const n of nodes) {
    for (const a of n.status?.addresses ?? []) if (a.type === 'InternalIP' && a.address) byIp.set(a.address, n.metadata?.name ?? '');
  }
  const names: Record<string, string> = {};
  for (const h of hosts) {
    const hv = hostvars[h] ?? {};
    if (lookup === 'internal_ip') names[h] = byIp.get(String(hv.ip || hv.access_ip || hv.ansible_host || '')) ?? '';
    else names[h] = String(hv.kube_override_hostname || h);
  }
  return names;
}
