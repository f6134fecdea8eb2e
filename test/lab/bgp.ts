/**
 * BGP configurations for the lab: nodes export their lo /32s, each rack's
 * ToR merges equal paths (ECMP) and, with several racks, passes what it
 * learnt to the core over eBGP, where the racks' paths merge again. The ToRs
 * and the core honour RFC 8326's GRACEFUL_SHUTDOWN community, as data-centre
 * routers can be told to.
 */
import {startBird} from './bird.js';
import {CORE_AS, type Lab, type LabHost} from './lab.js';

export const LAB_AS = 64512;

/** BIRD 2 config of a node that exports what `exportFilter` accepts from lo to the router. */
export function nodeBird2Config(lab: Lab, h: LabHost, exportFilter = 'if net != 127.0.0.0/8 then accept; reject;'): string {
  return `router id ${h.ip};
protocol device { scan time 1; }
protocol direct { ipv4; interface "lo"; }
protocol bgp tor {
  local ${h.ip} as ${LAB_AS};
  neighbor ${lab.router.ip} as ${LAB_AS};
  direct;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 { import none; export filter { ${exportFilter} }; };
}
`;
}

export interface RouterOptions {
  /** BFD on every session, as a data-centre router offers it (the nodes' speaker asks for it). */
  bfd?: boolean;
  /** The rack whose ToR this is (default 1). */
  rack?: number;
}

/** Routers that honour RFC 8326: a route with GRACEFUL_SHUTDOWN gets the lowest preference. */
const HONOUR_GSHUT = 'import filter { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; };';

const BFD_PROTOCOL = 'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }\n';
const FAST_RETRY = 'connect delay time 1; connect retry time 1; error wait time 1, 2;';

/**
 * BIRD 2 config of a top-of-rack router: learns from its peers (by default
 * the rack's nodes; a route reflector of extip's, with ADD-PATH, so that
 * every node's path comes through) as their route reflector, installs ECMP routes and, when
 * the lab has a core, announces what it learnt to the core over eBGP.
 */
export function routerBird2Config(lab: Lab, peers: Array<{name: string; ip: string; addPaths?: boolean}> = lab.rackHosts(1), options: RouterOptions = {}): string {
  const tor = lab.tor(options.rack ?? 1);
  const bfd = options.bfd ? '\n  bfd on;' : '';
  const core = lab.core && tor.uplink
    ? `protocol bgp core {
  local ${tor.uplink.ip} as ${LAB_AS};
  neighbor ${tor.uplink.coreIp} as ${CORE_AS};
  direct;
  ${FAST_RETRY}${bfd}
  ipv4 { import none; export where source = RTS_BGP; };
}
`
    : '';
  return `router id ${tor.ip};
protocol device { scan time 1; }
protocol kernel { merge paths on; ipv4 { import none; export all; }; }
${options.bfd ? BFD_PROTOCOL : ''}${peers
  .map(
    (h) => `protocol bgp ${h.name} {
  local ${tor.ip} as ${LAB_AS};
  neighbor ${h.ip} as ${LAB_AS};
  rr client;
  direct;
  ${FAST_RETRY}${bfd}
  ipv4 { ${HONOUR_GSHUT} export none; gateway direct;${h.addPaths ? ' add paths rx;' : ''} };
}`,
  )
  .join('\n')}
${core}`;
}

/** BIRD 2 config of the core router: eBGP with every ToR, the racks' equal paths merged (ECMP). */
export function coreBird2Config(lab: Lab, options: Pick<RouterOptions, 'bfd'> = {}): string {
  const core = lab.core;
  if (!core) throw new Error('the lab has one rack: no core router');
  const bfd = options.bfd ? '\n  bfd on;' : '';
  return `router id ${core.ip};
protocol device { scan time 1; }
protocol kernel { merge paths on; ipv4 { import none; export all; }; }
${options.bfd ? BFD_PROTOCOL : ''}${lab.routers
  .filter((r) => r.role === 'tor')
  .map(
    (tor) => `protocol bgp ${tor.name} {
  local ${tor.uplink!.coreIp} as ${CORE_AS};
  neighbor ${tor.uplink!.ip} as ${LAB_AS};
  direct;
  ${FAST_RETRY}${bfd}
  ipv4 { ${HONOUR_GSHUT} export none; };
}`,
  )
  .join('\n')}
`;
}

/** Starts every router's BGP: each ToR peering with its rack's nodes, and the core when there is one. */
export async function startRouters(lab: Lab, options: Pick<RouterOptions, 'bfd'> = {}): Promise<void> {
  for (const tor of lab.routers.filter((r) => r.role === 'tor')) await startBird(lab, tor.name, routerBird2Config(lab, lab.rackHosts(tor.rack!), {...options, rack: tor.rack}));
  if (lab.core) await startBird(lab, 'core', coreBird2Config(lab, options));
}

/** The prefixes a router (default the first ToR) learnt over BGP. */
export async function routerBgpPrefixes(lab: Lab, router = 'tor'): Promise<string[]> {
  const r = await lab.exec(router, 'ip', ['-j', 'route', 'show', 'proto', 'bird']);
  return (JSON.parse(r.stdout || '[]') as Array<{dst: string}>).map((x) => x.dst).sort();
}

/** A router's (default the first ToR's) kernel route for `prefix`: its nexthops (empty when there is none). */
export async function routerNexthops(lab: Lab, prefix: string, router = 'tor'): Promise<string[]> {
  const r = await lab.exec(router, 'ip', ['-j', 'route', 'show', prefix]);
  const routes = JSON.parse(r.stdout || '[]') as Array<{gateway?: string; nexthops?: Array<{gateway: string}>}>;
  if (!routes.length) return [];
  const route = routes[0];
  return (route.nexthops ? route.nexthops.map((n) => n.gateway) : route.gateway ? [route.gateway] : []).sort();
}

/** Polls until `check` returns true or the deadline passes; returns the time it took in ms. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
