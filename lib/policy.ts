/**
 * Which addresses a Service may have brought up on a node. Anyone who can
 * create a Service can write any address in spec.externalIPs
 * (CVE-2020-8554); the agent brings up only those inside the ranges the
 * operator declared (--allowed-cidrs), from the namespaces allowed
 * (--allowed-namespaces), and never an address that would break the node or
 * the cluster, whatever the ranges say: the unspecified, loopback,
 * link-local, multicast, broadcast and reserved addresses, the network and
 * broadcast address of the subnet it would come up in or of a known subnet
 * (a pool's CIDR, the interface's own), a node's own address, the Service
 * and pod CIDRs, the API server's address.
 */
import {type Cidr, type Family, formatIp, isCidr, parseCidr, parseIp} from './ipnet.js';

/** Each way an address is refused; the name goes into logs and the metric's label. */
export type Rule =
  | 'not-an-ip'
  | 'unspecified'
  | 'loopback'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'service-cidr'
  | 'cluster-cidr'
  | 'node-address'
  | 'apiserver'
  | 'namespace'
  | 'not-allowed'
  /** Claims mode: an address of an IpClaimPool that does not serve the Service's namespace. */
  | 'pool-namespace'
  /** Claims mode: an address another namespace's Service holds. */
  | 'taken'
  /** Claims mode: an address a Service of the namespace holds with a port this one has too. */
  | 'port-clash'
  /** Claims mode: a LoadBalancer's address another LoadBalancer holds without their sharing key. */
  | 'not-shared';

export const RULES: readonly Rule[] = ['not-an-ip', 'unspecified', 'loopback', 'link-local', 'multicast', 'broadcast', 'service-cidr', 'cluster-cidr', 'node-address', 'apiserver', 'namespace', 'not-allowed', 'pool-namespace', 'taken', 'port-clash', 'not-shared'];

/** One entry of a Service that is refused, with the rule and why. */
export interface Refused {
  /** namespace/name */
  service: string;
  /** The Service's uid: a Service deleted and made again is another Service. */
  uid?: string;
  value: string;
  rule: Rule;
  reason: string;
}

export interface Refusal {
  rule: Rule;
  /** Why, in words for the Service's owner and the operator. */
  reason: string;
}

/** Ranges no external IP may come from, with the rule and how to name them. */
const SPECIAL: ReadonlyArray<{rule: Rule; what: string; parsed: Cidr}> = ([
  {cidr: '0.0.0.0/32', rule: 'unspecified', what: 'the unspecified address'},
  {cidr: '::/128', rule: 'unspecified', what: 'the unspecified address'},
  {cidr: '0.0.0.0/8', rule: 'unspecified', what: 'an address of "this network" (0.0.0.0/8)'},
  {cidr: '127.0.0.0/8', rule: 'loopback', what: 'a loopback address (127.0.0.0/8)'},
  {cidr: '::1/128', rule: 'loopback', what: 'the loopback address'},
  {cidr: '169.254.0.0/16', rule: 'link-local', what: 'a link-local address (169.254.0.0/16)'},
  {cidr: 'fe80::/10', rule: 'link-local', what: 'a link-local address (fe80::/10)'},
  {cidr: '224.0.0.0/4', rule: 'multicast', what: 'a multicast address (224.0.0.0/4)'},
  {cidr: 'ff00::/8', rule: 'multicast', what: 'a multicast address (ff00::/8)'},
  {cidr: '255.255.255.255/32', rule: 'broadcast', what: 'the broadcast address'},
  {cidr: '240.0.0.0/4', rule: 'broadcast', what: 'a reserved address (240.0.0.0/4)'},
] as Array<{cidr: string; rule: Rule; what: string}>).map((s) => ({rule: s.rule, what: s.what, parsed: parseCidr(s.cidr) as Cidr}));

export interface PolicyOptions {
  /** Where external IPs may come from; undefined: anywhere but the ranges that are never allowed. */
  allowed?: readonly string[];
  serviceCidrs?: readonly string[];
  clusterCidrs?: readonly string[];
  /** Only Services of these namespaces; undefined or empty: any namespace. */
  namespaces?: readonly string[];
  /** The API server's addresses, as the agent reaches it. */
  apiservers?: readonly string[];
}

/** Parses a list of CIDRs, or throws naming the bad one; an address alone is a /32 or /128. */
export function parseCidrs(list: readonly string[], what: string): Cidr[] {
  return list.map((text) => {
    const full = text.includes('/') ? text : `${text}/${parseIp(text)?.family === 6 ? 128 : 32}`;
    const c = parseCidr(full, false);
    if (!isCidr(c)) throw new Error(`${what}: "${text}" ${c.error}`);
    return c;
  });
}

function inside(c: Cidr, ip: {family: Family; value: bigint}): boolean {
  return c.family === ip.family && ip.value >= c.network && ip.value <= c.last;
}

export class AddressPolicy {
  private readonly allowed?: Cidr[];
  private readonly service: Cidr[];
  private readonly cluster: Cidr[];
  private readonly namespaces?: ReadonlySet<string>;
  private readonly apiservers: Cidr[];
  /** Each node's addresses, kept current by the caller (a watch of the Nodes): address -> node. */
  private nodes = new Map<string, string>();
  /** Subnets whose network and broadcast addresses are never brought up (pools' CIDRs, the interface's subnets), by who knows them. */
  private edges = new Map<string, Cidr[]>();

  constructor(options: PolicyOptions = {}) {
    this.allowed = options.allowed?.length ? parseCidrs(options.allowed, '--allowed-cidrs') : undefined;
    this.service = parseCidrs(options.serviceCidrs ?? [], '--service-cidr');
    this.cluster = parseCidrs(options.clusterCidrs ?? [], '--cluster-cidr');
    this.namespaces = options.namespaces?.length ? new Set(options.namespaces) : undefined;
    this.apiservers = parseCidrs((options.apiservers ?? []).filter((a) => parseIp(a)), 'the API server');
  }

  /** True when any address outside the special ranges is allowed: no --allowed-cidrs. */
  get open(): boolean {
    return !this.allowed;
  }

  get allowedText(): string {
    return this.allowed ? this.allowed.map((c) => c.text).join(', ') : '(any)';
  }

  /** Replaces what is known of the nodes' addresses: node name -> its addresses. */
  setNodeAddresses(byNode: ReadonlyMap<string, readonly string[]>): void {
    const next = new Map<string, string>();
    for (const [node, addresses] of byNode) {
      for (const a of addresses) {
        const ip = parseIp(a);
        if (ip) next.set(formatIp(ip.value, ip.family), node);
      }
    }
    this.nodes = next;
  }

  /**
   * Replaces one source's subnets whose network and broadcast addresses are
   * never brought up: `source` names who knows them ("pools", "interface"),
   * so each source keeps its own list current.
   */
  setSubnets(source: string, cidrs: readonly string[]): void {
    const parsed: Cidr[] = [];
    for (const text of cidrs) {
      const c = parseCidr(text, false);
      if (isCidr(c)) parsed.push(c);
    }
    this.edges.set(source, parsed);
  }

  /**
   * Why `ip` (canonical, as canonicalIp gives it) may not be brought up for a
   * Service of `namespace`, or undefined when it may. `prefix`, the length it
   * comes up with, refuses the network and broadcast address of that subnet.
   * The rules that protect the node and the cluster come first, so the
   * reason names the real danger.
   */
  check(ip: string, namespace?: string, prefix?: number): Refusal | undefined {
    const parsed = parseIp(ip);
    if (!parsed) return {rule: 'not-an-ip', reason: `"${ip}" is not an IP address`};
    for (const s of SPECIAL) if (inside(s.parsed, parsed)) return {rule: s.rule, reason: `${ip} is ${s.what}`};
    const edge = subnetEdge(parsed, prefix, [...this.edges.values()].flat());
    if (edge) return {rule: 'broadcast', reason: `${ip} is ${edge}`};
    const node = this.nodes.get(formatIp(parsed.value, parsed.family));
    if (node) return {rule: 'node-address', reason: `${ip} is an address of node ${node}`};
    if (this.apiservers.some((c) => inside(c, parsed))) return {rule: 'apiserver', reason: `${ip} is the API server's address`};
    const service = this.service.find((c) => inside(c, parsed));
    if (service) return {rule: 'service-cidr', reason: `${ip} is inside the Service CIDR ${service.text}`};
    const cluster = this.cluster.find((c) => inside(c, parsed));
    if (cluster) return {rule: 'cluster-cidr', reason: `${ip} is inside the pod CIDR ${cluster.text}`};
    if (this.namespaces && namespace !== undefined && !this.namespaces.has(namespace)) {
      return {rule: 'namespace', reason: `Services of namespace ${namespace} may not have external IPs (allowed: ${[...this.namespaces].sort().join(', ')})`};
    }
    if (this.allowed && !this.allowed.some((c) => inside(c, parsed))) {
      return {rule: 'not-allowed', reason: `${ip} is outside the ranges external IPs may come from (${this.allowedText}); the cluster's operator declares them (extip_external_cidrs, or an IpClaimPool)`};
    }
    return undefined;
  }
}

/**
 * Whether the address is the network or broadcast address of the subnet
 * `prefix` makes it part of, or of one of `subnets`: IPv4 subnets of 30 bits
 * or fewer, and the network address (the subnet-router anycast) of IPv6
 * subnets of 126 bits or fewer. Says which, or undefined.
 */
function subnetEdge(ip: {family: Family; value: bigint}, prefix: number | undefined, subnets: readonly Cidr[]): string | undefined {
  const width = ip.family === 4 ? 32 : 128;
  const candidates = subnets.map((c) => ({c, name: `the subnet ${c.text}`}));
  if (prefix !== undefined && Number.isInteger(prefix) && prefix >= 0 && prefix <= width) {
    const own = parseCidr(`${formatIp(ip.value, ip.family)}/${prefix}`, false);
    if (isCidr(own)) candidates.unshift({c: own, name: `its own /${prefix}, the prefix it would come up with`});
  }
  for (const {c, name} of candidates) {
    if (c.family !== ip.family || c.prefix > width - 2) continue;
    if (ip.value === c.network) return `the network address of ${name}`;
    if (ip.family === 4 && ip.value === c.last) return `the broadcast address of ${name}`;
  }
  return undefined;
}

/** The node addresses a Node object lists (InternalIP, ExternalIP), by node name. */
export function nodeAddresses(nodes: ReadonlyArray<{metadata?: {name?: string}; status?: {addresses?: Array<{type?: string; address?: string}>}}>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of nodes) {
    const name = n.metadata?.name;
    if (!name) continue;
    out.set(name, (n.status?.addresses ?? []).filter((a) => (a.type === 'InternalIP' || a.type === 'ExternalIP') && a.address).map((a) => a.address!));
  }
  return out;
}

/** The address policy the flags describe, with the API server's address when the kubeconfig names it by address. */
export function policyFrom(flags: {allowedCidrs?: string[]; serviceCidrs: string[]; clusterCidrs: string[]; allowedNamespaces: string[]}, server?: string): AddressPolicy {
  let host = '';
  try {
    host = server ? new URL(server).hostname.replace(/^\[|\]$/g, '') : '';
  } catch {
    // Not a URL: no address to protect.
  }
  // In a pod the client reaches the API server through the kubernetes Service's address.
  const inCluster = process.env.KUBERNETES_SERVICE_HOST;
  return new AddressPolicy({
    allowed: flags.allowedCidrs,
    serviceCidrs: flags.serviceCidrs,
    clusterCidrs: flags.clusterCidrs,
    namespaces: flags.allowedNamespaces,
    apiservers: [host, inCluster ?? ''].filter((a) => parseIp(a)),
  });
}
