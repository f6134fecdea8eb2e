/**
 * extip's own BGP speaker (extip_bgp_speaker: extip): what the role hands the
 * controller pods (the speaker spec, JSON in ipmanager's --bgp-speaker), the
 * checks of extip_bgp_peers, and the BIRD 2 configuration ipmanager writes for
 * the BIRD beside it.
 *
 * The configuration exports exactly the addresses ipmanager names (a static
 * protocol it rewrites), each a /32 inside the declared ranges and never the
 * node's own address, and imports nothing: whatever else is on lo, a default
 * route or the node's subnet never reaches the routers. A route about to be
 * withdrawn is first announced with GRACEFUL_SHUTDOWN (RFC 8326), so that
 * every router on the way (a ToR, then the core) moves to other paths before
 * any loses this one: withdrawing at once would leave a core sending to a ToR
 * that already has no route.
 */
import {isCidr, parseCidr, parseIp} from './ipnet.js';

export interface SpeakerPeer {
  address: string;
  asn: number;
  /** The nodes that peer with it; every labelled node when absent. */
  nodes?: string[];
  /** BFD on the session; default on. */
  bfd?: boolean;
  port?: number;
}

/**
 * A rack's route reflector (the ECMP design's multirack topology): the rack's
 * speakers peer with `address`, which the speaker of one of the rack's nodes
 * holds (a Lease decides which; it moves when that node's controller goes),
 * and that speaker reflects every node's path to `peers` (the rack's ToR)
 * with ADD-PATH, so the ToR keeps one nexthop a node. The ToR peers with
 * `address` whichever node holds it.
 */
export interface RouteReflector {
  address: string;
  /** The rack's nodes: they peer with the reflector, and one of them holds it. */
  nodes: string[];
  /** The routers the reflector passes every path to (the rack's ToR). */
  peers: Array<Omit<SpeakerPeer, 'nodes'>>;
}

export interface SpeakerSpec {
  asn: number;
  peers: SpeakerPeer[];
  /** Route reflectors, one a rack (extip_bgp_route_reflectors); absent or empty: none. */
  reflectors?: RouteReflector[];
  /** The declared ranges (extip_external_cidrs): only /32s inside them are exported. */
  ranges: string[];
  /** BGP hold time in seconds; keepalives every third of it. */
  holdTime: number;
  bfd: {intervalMs: number; multiplier: number};
  /** Graceful restart (RFC 4724) with this restart time in seconds; 0: only aware of the peers'. */
  restartTime: number;
}

/** The BGP protocol name BIRD shows for a peer. */
export function peerName(peer: Pick<SpeakerPeer, 'address'>): string {
  return `peer_${peer.address.replace(/[^0-9A-Za-z]/g, '_')}`;
}

/** RFC 8326's GRACEFUL_SHUTDOWN community: a router that honours it gives the route the lowest preference. */
export const GRACEFUL_SHUTDOWN = '(65535, 0)';

/** The static protocol that holds the exported routes: the export filter accepts nothing else. */
export const EXPORTS_PROTOCOL = 'extip_exports';

const ASN_MAX = 4294967295;
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The same checks as the role's `extip_bgp_peer_errors` filter (filter_plugins/extip_bgp.py). */
export function bgpPeerErrors(value: unknown): string[] {
  if (!Array.isArray(value)) return ['not a list'];
  const errors: string[] = [];
  const seen = new Set<string>();
  value.forEach((item: unknown, index) => {
    const where = `peer ${index + 1}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push(`${where} is not a mapping`);
      return;
    }
    const p = item as Record<string, unknown>;
    const unknownKeys = Object.keys(p).filter((k) => !['address', 'asn', 'nodes', 'bfd', 'port'].includes(k));
    if (unknownKeys.length) errors.push(`${where} has unknown keys ${unknownKeys.join(', ')} (allowed: address, asn, nodes, bfd, port)`);
    const ip = typeof p.address === 'string' ? parseIp(p.address) : undefined;
    if (!ip || ip.family !== 4) errors.push(`${where}: address ${JSON.stringify(p.address ?? null)} is not an IPv4 address`);
    else if (seen.has(p.address as string)) errors.push(`${where}: address ${p.address} is listed twice`);
    else seen.add(p.address as string);
    if (!Number.isInteger(p.asn) || (p.asn as number) < 1 || (p.asn as number) > ASN_MAX) errors.push(`${where}: asn ${JSON.stringify(p.asn ?? null)} is not an AS number from 1 to ${ASN_MAX}`);
    if (p.nodes !== undefined && (!Array.isArray(p.nodes) || !p.nodes.length || p.nodes.some((n) => typeof n !== 'string' || !NODE_NAME.test(n)))) {
      errors.push(`${where}: nodes is not a non-empty list of node names`);
    }
    if (p.bfd !== undefined && typeof p.bfd !== 'boolean') errors.push(`${where}: bfd is not true or false`);
    if (p.port !== undefined && (!Number.isInteger(p.port) || (p.port as number) < 1 || (p.port as number) > 65535)) errors.push(`${where}: port ${JSON.stringify(p.port)} is not a port from 1 to 65535`);
  });
  return errors;
}

/** The same checks as the role's `extip_bgp_reflector_errors` filter (filter_plugins/extip_bgp.py). */
export function bgpReflectorErrors(value: unknown): string[] {
  if (!Array.isArray(value)) return ['not a list'];
  const errors: string[] = [];
  const addresses = new Set<string>();
  const placed = new Map<string, number>();
  value.forEach((item: unknown, index) => {
    const where = `reflector ${index + 1}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push(`${where} is not a mapping`);
      return;
    }
    const r = item as Record<string, unknown>;
    const unknownKeys = Object.keys(r).filter((k) => !['address', 'nodes', 'peers'].includes(k));
    if (unknownKeys.length) errors.push(`${where} has unknown keys ${unknownKeys.join(', ')} (allowed: address, nodes, peers)`);
    const ip = typeof r.address === 'string' ? parseIp(r.address) : undefined;
    if (!ip || ip.family !== 4) errors.push(`${where}: address ${JSON.stringify(r.address ?? null)} is not an IPv4 address`);
    else if (addresses.has(r.address as string)) errors.push(`${where}: address ${r.address} is listed twice`);
    else addresses.add(r.address as string);
    if (!Array.isArray(r.nodes) || !r.nodes.length || r.nodes.some((n) => typeof n !== 'string' || !NODE_NAME.test(n))) {
      errors.push(`${where}: nodes is not a non-empty list of node names (the rack's nodes)`);
    } else {
      for (const n of r.nodes as string[]) {
        const other = placed.get(n);
        if (other !== undefined && other !== index) errors.push(`${where}: node ${n} is in reflector ${other + 1} too; a node peers with one reflector`);
        else placed.set(n, index);
      }
    }
    if (!Array.isArray(r.peers) || !r.peers.length) errors.push(`${where}: peers is not a non-empty list of routers (the rack's ToR, such as [{address: 10.210.1.1, asn: 64512}])`);
    else {
      errors.push(...bgpPeerErrors(r.peers).map((e) => `${where}: ${e}`));
      if (r.peers.some((p) => typeof p === 'object' && p !== null && 'nodes' in p)) errors.push(`${where}: its peers take no nodes (the reflector peers with them from whichever node holds it)`);
      if (r.peers.some((p) => typeof p === 'object' && p !== null && (p as Record<string, unknown>).address === r.address)) errors.push(`${where}: a peer has the reflector's own address ${r.address}`);
    }
  });
  return errors;
}

/** What is wrong with a speaker spec read from its file; empty when it is good. */
export function speakerSpecErrors(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['not a JSON object'];
  const s = value as Record<string, unknown>;
  const errors = bgpPeerErrors(s.peers).map((e) => `peers: ${e}`);
  if (!Number.isInteger(s.asn) || (s.asn as number) < 1 || (s.asn as number) > ASN_MAX) errors.push(`asn ${JSON.stringify(s.asn ?? null)} is not an AS number`);
  if (!Array.isArray(s.ranges) || s.ranges.some((r) => typeof r !== 'string' || !isCidr(parseCidr(r)))) errors.push('ranges is not a list of CIDRs');
  if (!Number.isInteger(s.holdTime) || (s.holdTime as number) < 3 || (s.holdTime as number) > 65535) errors.push('holdTime is not a whole number of seconds from 3 to 65535');
  const bfd = s.bfd as Record<string, unknown> | undefined;
  if (!bfd || !Number.isInteger(bfd.intervalMs) || !Number.isInteger(bfd.multiplier)) errors.push('bfd is not {intervalMs, multiplier}');
  if (!Number.isInteger(s.restartTime) || (s.restartTime as number) < 0) errors.push('restartTime is not a whole number of seconds');
  if (s.reflectors !== undefined) errors.push(...bgpReflectorErrors(s.reflectors).map((e) => `reflectors: ${e}`));
  return errors;
}

/** The route reflector of a node's rack, if it has one. */
export function reflectorOf(spec: SpeakerSpec, node: string): RouteReflector | undefined {
  return spec.reflectors?.find((r) => r.nodes.includes(node));
}

/** The BGP protocol name BIRD shows for the reflector's session with one of its routers. */
export function reflectorPeerName(peer: Pick<SpeakerPeer, 'address'>): string {
  return `reflector_${peer.address.replace(/[^0-9A-Za-z]/g, '_')}`;
}

/** The dynamic BGP protocol that takes the rack's speakers as the reflector's clients. */
export const REFLECTOR_CLIENTS = 'reflector_clients';

/**
 * The peers a node speaks to: those that name it, those that name no node,
 * and its rack's reflector (a multihop session: the reflector may be on this
 * very node) unless this node holds the reflector.
 */
export function peersOf(spec: SpeakerSpec, node: string, reflecting = false): Array<SpeakerPeer & {reflector?: true}> {
  const rr = reflectorOf(spec, node);
  return [
    ...spec.peers.filter((p) => !p.nodes || p.nodes.includes(node)),
    ...(rr && !reflecting ? [{address: rr.address, asn: spec.asn, reflector: true as const}] : []),
  ];
}

export interface SpeakerPlace {
  node: string;
  /** The node's address: BIRD's router ID, and never exported. */
  routerId: string;
  /** The node's connected IPv4 subnets: a peer inside one is a direct (single-hop) session. */
  subnets: readonly string[];
}

function inSubnet(ip: string, subnet: string): boolean {
  const c = parseCidr(subnet, false);
  const a = parseIp(ip);
  return isCidr(c) && !!a && a.family === c.family && a.value >= c.network && a.value <= c.last;
}

/**
 * The BIRD 2 configuration of the speaker on one node, exporting `exports`
 * (IPv4 /32s; anything else is left out here, and the filter would refuse it).
 * `reflecting`: this node holds its rack's reflector address, in `subnet`
 * (its connected subnet, from which the rack's speakers connect).
 */
export function speakerConfig(
  spec: SpeakerSpec,
  place: SpeakerPlace,
  exports: readonly string[],
  reflecting?: {reflector: RouteReflector; subnet: string},
  shuttingDown: ReadonlySet<string> = new Set(),
): string {
  const v4 = spec.ranges.filter((r) => !r.includes(':'));
  const routes = exports.filter((e) => /^\d+\.\d+\.\d+\.\d+\/32$/.test(e) && e !== `${place.routerId}/32`);
  const bfd = `min rx interval ${spec.bfd.intervalMs} ms; min tx interval ${spec.bfd.intervalMs} ms; multiplier ${spec.bfd.multiplier};`;
  const keepalive = Math.max(1, Math.floor(spec.holdTime / 3));
  const lines = [
    `# extip's BGP speaker on ${place.node}, written by ipmanager: do not edit, it is rewritten.`,
    `router id ${place.routerId};`,
    'log stderr { info, remote, warning, error, auth, fatal, bug };',
    'protocol device { scan time 10; }',
    `protocol bfd extip_bfd {\n  interface "*" { ${bfd} };\n  multihop { ${bfd} };\n}`,
    `# The addresses ipmanager brought up on this node; nothing else is exported. One about to be\n# withdrawn carries GRACEFUL_SHUTDOWN (RFC 8326) first: routers that honour it move to other paths\n# while this one still works.\nprotocol static ${EXPORTS_PROTOCOL} {\n  ipv4;\n${routes
      .map((r) => (shuttingDown.has(r) ? `  route ${r} blackhole { bgp_community.add(${GRACEFUL_SHUTDOWN}); };\n` : `  route ${r} blackhole;\n`))
      .join('')}}`,
    `# A /32 inside the declared ranges, not the node's own address.\nfunction extip_exportable() {\n  if net.type != NET_IP4 || net.len != 32 then return false;\n  if net = ${place.routerId}/32 then return false;\n${
      v4.length ? `  if net ~ [ ${v4.map((r) => `${r}+`).join(', ')} ] then return true;\n` : ''
    }  return false;\n}`,
    `filter extip_export {\n  if proto != "${EXPORTS_PROTOCOL}" then reject;\n  if extip_exportable() then accept;\n  reject;\n}`,
  ];
  const timers = [
    `  hold time ${spec.holdTime}; keepalive time ${keepalive};`,
    '  connect delay time 1; connect retry time 5; error wait time 1, 10;',
    spec.restartTime > 0 ? `  graceful restart on; graceful restart time ${spec.restartTime};` : '  graceful restart off;',
  ];
  // One BGP session with a router or a reflector. Every session listens on its own local
  // address (strict bind): the reflector's address on this node, or another node's speaker,
  // never meets a listener on every address.
  const session = (name: string, description: string, local: string, peer: Omit<SpeakerPeer, 'nodes'>, direct: boolean, channel: string) =>
    [
      `protocol bgp ${name} {`,
      `  description "${description}";`,
      `  local ${local} as ${spec.asn};`,
      `  neighbor ${peer.address}${peer.port && peer.port !== 179 ? ` port ${peer.port}` : ''} as ${peer.asn};`,
      `  ${direct ? 'direct' : 'multihop'};`,
      '  strict bind on;',
      ...timers,
      `  bfd ${peer.bfd === false ? 'off' : 'on'};`,
      channel,
      '}',
    ].join('\n');
  for (const peer of peersOf(spec, place.node, Boolean(reflecting))) {
    const direct = !peer.reflector && place.subnets.some((s) => inSubnet(peer.address, s));
    const what = `extip ${peer.reflector ? 'route reflector' : 'peer'} ${peer.address} AS ${peer.asn}`;
    lines.push(session(peerName(peer), what, place.routerId, peer, direct, '  ipv4 { import none; export filter extip_export; next hop self; };'));
  }
  if (reflecting) {
    const rr = reflecting.reflector;
    lines.push(
      `# This node holds the route reflector ${rr.address} of ${rr.nodes.join(', ')}: it takes their speakers' paths\n# and passes every one, and its own, to the reflector's routers (ADD-PATH).`,
      `filter extip_reflect {\n  if net.type != NET_IP4 || net.len != 32 then reject;\n${
        v4.length ? `  if net ~ [ ${v4.map((r) => `${r}+`).join(', ')} ] then accept;\n` : ''
      }  reject;\n}`,
      [
        `protocol bgp ${REFLECTOR_CLIENTS} {`,
        `  description "extip route reflector ${rr.address}: the speakers of ${rr.nodes.join(', ')}";`,
        `  local ${rr.address} as ${spec.asn};`,
        `  neighbor range ${reflecting.subnet} as ${spec.asn};`,
        '  dynamic name "client_";',
        '  multihop;',
        '  strict bind on;',
        '  rr client;',
        `  rr cluster id ${rr.address};`,
        ...timers,
        '  bfd on;',
        '  ipv4 { import filter extip_reflect; export none; };',
        '}',
      ].join('\n'),
    );
    for (const peer of rr.peers) {
      const direct = place.subnets.some((s) => inSubnet(peer.address, s));
      // This node's own routes leave with its own address as their nexthop (not the
      // reflector's, which moves); the clients' keep theirs (iBGP reflection).
      const channel = `  ipv4 {\n    import none;\n    add paths tx;\n    export filter {\n      if proto = "${EXPORTS_PROTOCOL}" then { if !extip_exportable() then reject; bgp_next_hop = ${place.routerId}; accept; }\n      if source = RTS_BGP then accept;\n      reject;\n    };\n  };`;
      lines.push(session(reflectorPeerName(peer), `extip route reflector ${rr.address} to ${peer.address} AS ${peer.asn}`, rr.address, peer, direct, channel));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** What BIRD runs before ipmanager gives it the speaker's configuration (the image's /etc/extip/bird-idle.conf): no peer, nothing exported. */
export const IDLE_CONFIG = `# extip's BGP speaker before ipmanager configures it: no peers, nothing exported.
log stderr { info, remote, warning, error, auth, fatal, bug };
protocol device { scan time 10; }
`;

export interface BgpSetup {
  speaker: string;
  peers: unknown;
  /** extip_bgp_route_reflectors: the rack's speakers peer with these (absent: none). */
  reflectors?: unknown;
  distribution: string;
  externalCidrs: readonly unknown[];
  calicoExport: string;
  /** extip_mask: the prefix the addresses come up with. */
  mask: unknown;
}

/**
 * What the BGP variables ask that cannot work together, in words that say what
 * to change; the role's `extip_bgp_errors` filter (filter_plugins/extip_bgp.py)
 * says the same (test/fixtures/bgp-cases.json).
 */
export function bgpSetupErrors(s: BgpSetup): string[] {
  if (s.speaker !== 'extip') return [];
  const errors: string[] = [];
  if (s.distribution !== 'all') {
    errors.push(`extip_bgp_speaker is extip, which announces every address from every labelled node (ECMP), but extip_distribution is ${s.distribution}; set extip_distribution: all, or extip_bgp_speaker: none`);
  }
  const reflectors = Array.isArray(s.reflectors) && s.reflectors.length > 0;
  if ((!Array.isArray(s.peers) || s.peers.length === 0) && !reflectors) {
    errors.push('extip_bgp_speaker is extip but extip_bgp_peers is empty; name the routers the nodes peer with, such as [{address: 10.210.1.1, asn: 64512}]');
  }
  if (!s.externalCidrs.some((c) => typeof c === 'string' && !c.includes(':'))) {
    errors.push('extip_bgp_speaker is extip, which announces only addresses inside extip_external_cidrs, and they hold no IPv4 range; declare where external IPs come from, such as [192.0.2.0/24]');
  }
  if (String(s.mask) !== '32') {
    errors.push(`extip_bgp_speaker is extip, which announces each address as a /32, but extip_mask is ${s.mask}, so the addresses come up as /${s.mask} (on lo a whole subnet would be local); set extip_mask: 32`);
  }
  if (['etcd-v2-filter', 'bgpconfiguration'].includes(s.calicoExport)) {
    errors.push(`extip_calico_export is ${s.calicoExport} but extip_bgp_speaker is extip, whose speaker takes Calico's place; set extip_calico_export: none (or auto), or extip_bgp_speaker: calico`);
  }
  return errors;
}

/** The peer a speaker's BGPSessionDown/Up Event (on its Node) is about: the address its message starts with. */
export function sessionEventPeer(message: string): string | undefined {
  return /^BGP session with (\S+) /.exec(message)?.[1];
}
