/**
 * What the lab tests of extip's BGP speaker share: the ECMP variables with
 * the speaker on (the peers or reflectors each test gives), and a node's
 * controller /metrics (its health port, on the node's loopback).
 */
import type {Lab} from '../lab/lab.js';
import type {Answer} from '../lab/prober.js';

export const SPEAKER_NS = 'extip';

/** ECMP with extip's speaker in SPEAKER_NS, announcing 10.0.0.0/24; `bgp` adds the peers or reflectors, `extra` anything else. */
export function speakerVars(bgp: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    extip_distribution: 'all',
    extip_iface: 'lo',
    extip_mask: 32,
    extip_namespace: SPEAKER_NS,
    extip_bgp_speaker: 'extip',
    extip_external_cidrs: ['10.0.0.0/24'],
    ...bgp,
    ...extra,
  };
}

/** The controller's /metrics on a node. */
export async function controllerMetrics(lab: Lab, node: string): Promise<string> {
  const port = JSON.parse((await lab.kubectl(['get', 'daemonset', '-n', SPEAKER_NS, 'claimcontroller', '-o', 'json'])).stdout)
    .spec.template.spec.containers[0].args.find((a: string) => a.startsWith('--health-port='))
    .split('=')[1];
  return (await lab.exec(node, 'curl', ['-s', `http://127.0.0.1:${port}/metrics`])).stdout;
}

/**
 * The failed connections of a drain that the routers' switch does not
 * explain. When a router moves its flows off a node (at GRACEFUL_SHUTDOWN),
 * a connection whose packets straddle that moment has its first ones at the
 * node and the rest at another, which resets it: ECMP rehashes, whatever the
 * speaker does. One failed connection opened just before the switch was
 * seen (up to `pollMs` before: a poll's time) is that; anything else is not.
 */
export function unexplainedDrainFailures(answers: readonly Answer[], switchSeenAt: number, pollMs = 250): Answer[] {
  const failed = answers.filter((a) => a.from === '-');
  const straddling = failed.filter((a) => a.start >= switchSeenAt - pollMs && a.start <= switchSeenAt);
  return straddling.length <= 1 ? failed.filter((a) => !straddling.includes(a)) : failed;
}
