/**
 * The segment's view of an address, for claims mode, where one node at a
 * time holds it on a shared link. Before bringing an IPv4 address up the
 * controller asks whether any other host answers for it (an ARP probe with
 * sender 0.0.0.0, as RFC 5227 does), and after bringing it up it announces it
 * (gratuitous ARP) so that neighbours holding the previous holder's MAC
 * switch at once instead of after their neighbour entry goes stale. Both use
 * iputils' arping.
 *
 * IPv6 needs no program: the kernel runs duplicate address detection on
 * every address added without `nodad` (a duplicate ends up `dadfailed`), and
 * with `ndisc_notify` on it sends an unsolicited neighbour advertisement once
 * detection has passed.
 */
import {MissingToolError} from '../lib/errors.js';
import {switchOn} from './addresses.js';
import {Limiter} from './limiter.js';
import {type RunResult, run} from '../lib/run.js';

/**
 * At most this many arping processes of each kind at once. Starting a process
 * holds up the agent's event loop for a moment: hundreds at once (a node given
 * hundreds of addresses in one go) held it long enough to delay heartbeats
 * past the fence. Probes and announcements queue apart, so that probes never
 * wait behind announcements, which last seconds.
 */
export const ARPING_CONCURRENCY = 32;

const probes = new Limiter(ARPING_CONCURRENCY);
const announcements = new Limiter(ARPING_CONCURRENCY);

export type Probe =
  | {taken: false}
  | {taken: true; by: string}
  /** The probe could not run (no arping, no permission): the caller decides. */
  | {unknown: string};

/** Runs arping for a probe; a parameter so that the probe's reading of arping can be tested without a segment. */
export type ProbeRunner = (args: readonly string[], timeoutMs: number) => Promise<RunResult>;

const arping: ProbeRunner = (args, timeoutMs) => probes.run(() => run('arping', args, {timeoutMs, installHint: 'install iputils-arping'}));

/** How many times a probe that arping had not yet sent when its wait ran out is tried again, each with twice the wait. */
export const PROBE_RETRIES = 2;

/**
 * Asks the segment on `iface` whether a host answers for `ip`, waiting up to
 * `waitMs` for a reply. A host on the same link answers an ARP request in
 * well under a millisecond, so a short wait is enough; a reply ends the wait.
 *
 * arping waits whole seconds, so it is stopped at `waitMs` (counted from its
 * start) and then says how many requests it sent. Silence counts as "free"
 * only when it did send one: on a loaded host a probe stopped before it went
 * out proves nothing, and is tried again with a longer wait; one never sent
 * is `unknown`, for the caller to decide.
 */
export async function probeIPv4(iface: string, ip: string, waitMs: number, runner: ProbeRunner = arping): Promise<Probe> {
  const args = ['-D', '-c', '1', '-w', String(Math.max(1, Math.ceil(waitMs / 1000))), '-I', iface, ip];
  let wait = Math.max(1, waitMs);
  try {
    for (let attempt = 0; ; attempt++) {
      const r = await runner(args, wait);
      if (!r.timedOut) {
        if (r.exitCode === 0) return {taken: false};
        const mac = /\[([0-9A-Fa-f:]{17})\]/.exec(r.stdout)?.[1];
        if (r.exitCode === 1 && mac) return {taken: true, by: mac.toLowerCase()};
        return {unknown: (r.stderr || r.stdout).trim().split('\n').pop() || `arping exited ${r.exitCode}`};
      }
      // Stopped at the wait: it prints what it sent (and any reply) as it goes.
      const mac = /\[([0-9A-Fa-f:]{17})\]/.exec(r.stdout)?.[1];
      if (mac) return {taken: true, by: mac.toLowerCase()};
      if (Number(/Sent (\d+) probe/.exec(r.stdout)?.[1] ?? 0) > 0) return {taken: false};
      if (attempt >= PROBE_RETRIES) return {unknown: `arping sent no request within ${wait} ms of starting (${PROBE_RETRIES + 1} tries): the host is too busy to probe`};
      wait *= 2;
    }
  } catch (err) {
    return {unknown: err instanceof MissingToolError ? err.message : String(err)};
  }
}

/**
 * Announces `ip` on `iface`: `count` gratuitous ARP requests a second apart
 * (the burst keepalived and MetalLB send), so that neighbours update the MAC
 * they hold for it. Returns why it could not, when it could not start.
 */
export async function announceIPv4(iface: string, ip: string, count = 3): Promise<string | undefined> {
  try {
    const r = await announcements.run(() => run('arping', ['-U', '-c', String(count), '-I', iface, '-s', ip, ip], {installHint: 'install iputils-arping'}));
    return r.exitCode === 0 ? undefined : (r.stderr.trim() || `arping exited ${r.exitCode}`);
  } catch (err) {
    return err instanceof MissingToolError ? err.message : String(err);
  }
}

/**
 * Turns on `ndisc_notify` for the interface, so that the kernel announces
 * each IPv6 address (unsolicited neighbour advertisement) once duplicate
 * address detection passed. Returns why it could not (a read-only /proc/sys).
 */
export async function ndiscNotify(iface: string): Promise<string | undefined> {
  return switchOn(`/proc/sys/net/ipv6/conf/${iface}/ndisc_notify`);
}
