/** What the CLI reads of Services: the addresses each one asks for. */

export interface ServiceLike {
  metadata?: {namespace?: string; name?: string};
  spec?: {externalIPs?: string[]};
  status?: {loadBalancer?: {ingress?: Array<{ip?: string}>}};
}

/**
 * Every address a Service wants brought up, by address: its spec.externalIPs
 * and the LoadBalancer ingress IPs a pool gave it, each with the Services
 * (namespace/name) that name it. status and doctor both read it.
 */
export function wantedAddresses(services: readonly ServiceLike[]): Map<string, string[]> {
  const byIp = new Map<string, string[]>();
  for (const s of services) {
    const name = `${s.metadata?.namespace}/${s.metadata?.name}`;
    const ips = [...(s.spec?.externalIPs ?? []), ...(s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '')].filter(Boolean);
    for (const ip of ips) byIp.set(ip, [...(byIp.get(ip) ?? []), name]);
  }
  return byIp;
}
