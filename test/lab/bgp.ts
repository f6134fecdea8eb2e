/** BGP configurations for the lab: nodes export their lo /32s, the router merges equal paths (ECMP). */
import type {Lab, LabHost} from './lab.js';

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
}

/** BIRD 2 config of the top-of-rack router: learns from every node, installs ECMP routes. */
export function routerBird2Config(lab: Lab, nodes: LabHost[] = lab.hosts, options: RouterOptions = {}): string {
  return `router id ${lab.router.ip};
protocol device { scan time 1; }
protocol kernel { merge paths on; ipv4 { import none; export all; }; }
${options.bfd ? 'protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }\n' : ''}${nodes
  .map(
    (h) => `protocol bgp ${h.name} {
  local ${lab.router.ip} as ${LAB_AS};
  neighbor ${h.ip} as ${LAB_AS};
  rr client;
  direct;
  connect delay time 1; connect retry time 1; error wait time 1, 2;${options.bfd ? '\n  bfd on;' : ''}
  ipv4 { import all; export none; gateway direct; };
}`,
  )
  .join('\n')}
`;
}

/** The prefixes the router learnt over BGP, from any node. */
export async function routerBgpPrefixes(lab: Lab): Promise<string[]> {
  const r = await lab.exec('tor', 'ip', ['-j', 'route', 'show', 'proto', 'bird']);
  return (JSON.parse(r.stdout || '[]') as Array<{dst: string}>).map((x) => x.dst).sort();
}

/** The router's kernel route for `prefix`: its nexthops (empty when there is none). */
export async function routerNexthops(lab: Lab, prefix: string): Promise<string[]> {
  const r = await lab.exec('tor', 'ip', ['-j', 'route', 'show', prefix]);
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
