/**
 * Where external IPs may come from, against what they must never be: the
 * ranges of extip_external_cidrs and of the pools must not overlap the
 * Service or pod CIDR, nor hold a node's address. Preflight (the role's
 * extip_policy_errors) and `extip doctor` check it with these words; both run
 * test/fixtures/range-cases.json.
 */
import {type Cidr, formatIp, isCidr, parseCidr, parseIp} from './ipnet.js';

export interface NodeAddresses {
  name: string;
  addresses: readonly string[];
}

export function rangeErrors(externalCidrs: readonly unknown[], pools: readonly unknown[], serviceCidr: unknown, podCidr: unknown, nodes: readonly NodeAddresses[]): string[] {
  // (where, CIDR, the address ranges in it that are given out): a pool gives out its
  // ranges only, so its CIDR may be the nodes' own segment, as claims mode on eth0 wants.
  const ranges: Array<{where: string; text: string; given?: unknown[]}> = [
    ...externalCidrs.filter((c): c is string => typeof c === 'string').map((text) => ({where: 'extip_external_cidrs', text})),
    ...pools
      .filter((p): p is {name?: unknown; cidr: string; ranges?: unknown[]} => !!p && typeof p === 'object' && typeof (p as {cidr?: unknown}).cidr === 'string')
      .map((p) => ({where: `extip_ip_pools (pool "${String(p.name)}")`, text: p.cidr, given: Array.isArray(p.ranges) && p.ranges.length ? p.ranges : undefined})),
  ];
  const never: Array<[string, unknown, string]> = [['extip_service_cidr', serviceCidr, 'the Service CIDR'], ['extip_pod_cidr', podCidr, 'the pod CIDR']];
  const addresses: Array<{ip: {family: 4 | 6; value: bigint}; node: string}> = [];
  for (const n of nodes) for (const a of n.addresses) {
    const ip = parseIp(a);
    if (ip) addresses.push({ip, node: n.name});
  }
  const errors: string[] = [];
  for (const {where, text, given} of ranges) {
    const network = parseCidr(text);
    if (!isCidr(network)) continue; // each variable's own rule reports it
    for (const [variable, otherText, what] of never) {
      const other = typeof otherText === 'string' ? parseCidr(otherText) : undefined;
      if (other && isCidr(other) && other.family === network.family && overlaps(network, other)) errors.push(`${where}: ${text} overlaps ${what} ${otherText} (${variable})`);
    }
    const spans: Array<{label: string; first: bigint; last: bigint; family: 4 | 6}> = [];
    for (const pair of given ?? [[formatIp(network.network, network.family), formatIp(network.last, network.family)]]) {
      const [a, b] = Array.isArray(pair) ? pair : [];
      const first = parseIp(String(a));
      const last = parseIp(String(b));
      if (first && last) spans.push({label: given ? `${formatIp(first.value, first.family)}-${formatIp(last.value, last.family)}` : text, first: first.value, last: last.value, family: first.family});
    }
    for (const {ip, node} of addresses) {
      for (const s of spans) {
        if (ip.family === s.family && s.first <= ip.value && ip.value <= s.last) errors.push(`${where}: ${s.label} holds ${formatIp(ip.value, ip.family)}, the address of node ${node}`);
      }
    }
  }
  return errors;
}

function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network <= b.last && b.network <= a.last;
}
