/**
 * Claims mode's timings, written once for the CLI, the role's generator and
 * the agent: Go's duration grammar, and the rule that relates the heartbeat,
 * the heartbeat timeout and the scheduler's lease. The role's filter
 * extip_timing_errors says the same, message for message: both run
 * test/fixtures/duration-cases.json and test/fixtures/timing-cases.json.
 */

const UNITS: Record<string, number> = {ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000};

/** Go's time.ParseDuration, unsigned, in milliseconds ("2.s" is 2 s, as Go reads it); undefined when it is not one. */
export function durationMs(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  if (text === '0') return 0;
  const re = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNITS[m[2]];
    consumed = re.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}

/** The names the timings go by: the role's variables, or the agent's flags. */
export interface TimingNames {
  hb: string;
  monitor: string;
  lease: string;
}

export const TIMING_VARIABLES: TimingNames = {hb: 'extip_ctrl_hb', monitor: 'extip_sched_monitor', lease: 'extip_sched_lease_duration'};

/**
 * What is wrong with claims mode's timings, as messages that say what to
 * change: the heartbeat must be above zero and shorter than the timeout after
 * which a node is given up, and the Lease records whole seconds. Values that
 * are not durations are left to each variable's own rule.
 */
export function timingErrors(hb: string, monitor: string, lease: string, names: TimingNames = TIMING_VARIABLES): string[] {
  if ([hb, monitor, lease].some((d) => durationMs(d) === undefined)) return [];
  return [...heartbeatErrors(hb, monitor, names), ...leaseErrors(lease, names)];
}

/** The heartbeat against the timeout (a claim controller's concern). */
export function heartbeatErrors(hb: string, monitor: string, names: TimingNames = TIMING_VARIABLES): string[] {
  const [hbMs, monitorMs] = [durationMs(hb), durationMs(monitor)];
  if (hbMs === undefined || monitorMs === undefined || (hbMs > 0 && monitorMs > hbMs)) return [];
  return [`${names.monitor} (${monitor}) must be longer than ${names.hb} (${hb}), and should allow at least three heartbeats: a node is given up when no heartbeat came for ${names.monitor}`];
}

/** The lease (the scheduler's concern). */
export function leaseErrors(lease: string, names: TimingNames = TIMING_VARIABLES): string[] {
  const leaseMs = durationMs(lease);
  if (leaseMs === undefined || leaseMs >= 1000) return [];
  return [`${names.lease} (${lease}) must be at least 1s: the Lease records whole seconds`];
}
