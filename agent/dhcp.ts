/**
 * A LoadBalancer address leased from the segment's DHCP server (kube-vip's
 * convention: `loadBalancerIP: 0.0.0.0`). The node that holds the Service's
 * claim makes a macvlan on its interface whose MAC is derived from the
 * Service's namespace and name, so that the server, which keys its leases on
 * the MAC and on the client identifier made from it, hands out the same
 * address again after a failover, an agent's restart or a reboot of the
 * server. The lease is taken on that link by busybox's udhcpc (Debian's
 * `udhcpc` package), which renews it at T1, rebinds at T2 and releases it
 * when told to.
 *
 * Why udhcpc and not a client of extip's own: before it has an address a
 * client sends from 0.0.0.0 and out of one link (here the macvlan, with its
 * MAC), which takes raw packet sockets, and Node has none. udhcpc is one
 * small process per lease, already in Debian, and runs RFC 2131's client
 * states as they are. Debian's busybox has no udhcpc6, so an IPv6 lease
 * (`::`) is not offered: the claim says why.
 *
 * The address is held on the macvlan as a /32 while the lease lasts: udhcpc
 * renews and releases by unicast from it. udhcpc tells its events (bound,
 * renew, deconfig, leasefail, nak) by running a program; extip's,
 * `extip-dhcp-event` (eventProgramText), prints each as one line that this
 * module reads from udhcpc's output.
 */
import {createHash} from 'node:crypto';
import {existsSync} from 'node:fs';
import {chmod, readFile, rename, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {type Spawned, run, spawnProgram} from '../lib/run.js';
import {announceIPv4} from './announce.js';
import type {Logger} from './log.js';
import {describe} from './log.js';
import type {Clock} from './world.js';

/** Where the agent's image has the event program. */
export const DHCP_EVENT_PROGRAM = '/usr/local/bin/extip-dhcp-event';
/** What starts each line the event program prints. */
const EVENT_PREFIX = 'extip-dhcp ';
/** One try: this many DISCOVERs, this many seconds apart; then udhcpc gives up (-n) and the next try waits. */
export const DISCOVER_TRIES = 3;
export const DISCOVER_GAP_S = 2;
/** A try no server answered is followed by another after this, doubling each time up to RETRY_MAX_MS. */
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 300_000;
/** How long a release (udhcpc's DHCPRELEASE, then its deconfig) may take before the link goes anyway. */
const RELEASE_MS = 3000;

/**
 * The event program, for an interpreter at `node`: udhcpc runs it with the
 * event as its argument and the lease in its environment.
 */
export function eventProgramText(node: string): string {
  return `#!${node}
// extip-dhcp-event: udhcpc runs it at each DHCP event; it prints the event for ipmanager (agent/dhcp.ts).
const e = process.env;
process.stdout.write(${JSON.stringify(EVENT_PREFIX)} + JSON.stringify({event: process.argv[2], ip: e.ip, mask: e.mask, router: e.router, lease: e.lease, serverid: e.serverid, message: e.message}) + '\\n');
`;
}

/**
 * The event program to give udhcpc: the image's, else (an agent run from a
 * checkout) one written beside the system's temporary files for this Node.
 */
export function eventProgram(): Promise<string> {
  // Found (or written) once: every lease's udhcpc, and each of its retries, runs the same one.
  eventProgramPath ??= findEventProgram().catch((err: Error) => {
    eventProgramPath = undefined;
    throw err;
  });
  return eventProgramPath;
}

let eventProgramPath: Promise<string> | undefined;

async function findEventProgram(): Promise<string> {
  if (existsSync(DHCP_EVENT_PROGRAM)) return DHCP_EVENT_PROGRAM;
  const text = eventProgramText(process.execPath);
  const path = join(tmpdir(), `extip-dhcp-event-${createHash('sha256').update(text).digest('hex').slice(0, 12)}`);
  if ((await readFile(path, 'utf8').catch(() => '')) === text) return path;
  const part = `${path}.${process.pid}`;
  await writeFile(part, text, {mode: 0o755});
  await chmod(part, 0o755);
  await rename(part, path);
  return path;
}

const digest = (service: string) => createHash('sha256').update(`extip-dhcp ${service}`).digest();

/** The MAC a Service's lease is taken with: locally administered, unicast, from `namespace/name`. */
export function leaseMac(service: string): string {
  const h = digest(service);
  h[0] = (h[0] & 0xfc) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The macvlan's name: `exd` and 12 hex digits of the same digest (an interface name has at most 15 characters). */
export function leaseLink(service: string): string {
  return `exd${digest(service).subarray(6, 12).toString('hex')}`;
}

/** The host name the lease is asked under (the server's table shows it): `namespace-name`, as a DNS label. */
export function leaseHostname(service: string): string {
  return service.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '') || 'extip';
}

export interface Lease {
  ip: string;
  /** The segment's prefix length, as the server says it. */
  prefix: number;
  router?: string;
  /** The server that leased it. */
  server?: string;
  /** The lease's length. */
  seconds: number;
  /** When it was got or last renewed (ms). */
  at: number;
}

export interface DhcpEvent {
  event: string;
  ip?: string;
  mask?: string;
  router?: string;
  lease?: string;
  serverid?: string;
  message?: string;
}

/** One line of udhcpc's output: the event program's, or undefined. */
export function parseEventLine(line: string): DhcpEvent | undefined {
  if (!line.startsWith(EVENT_PREFIX)) return undefined;
  try {
    const e = JSON.parse(line.slice(EVENT_PREFIX.length)) as DhcpEvent;
    return typeof e.event === 'string' ? e : undefined;
  } catch {
    return undefined;
  }
}

/** A lease from a bound or renew event; undefined when the event has no usable address. */
export function leaseOf(e: DhcpEvent, now: number): Lease | undefined {
  if (!e.ip || !/^\d{1,3}(\.\d{1,3}){3}$/.test(e.ip)) return undefined;
  const prefix = Number(e.mask);
  const seconds = Number(e.lease);
  return {ip: e.ip, prefix: Number.isInteger(prefix) && prefix >= 0 && prefix <= 32 ? prefix : 32, ...(e.router ? {router: e.router.split(' ')[0]} : {}),
    ...(e.serverid ? {server: e.serverid} : {}), seconds: Number.isFinite(seconds) && seconds > 0 ? seconds : 0, at: now};
}

export interface DhcpLeaseOptions {
  /** The Service, `namespace/name`: the MAC, the link's name and the host name come from it. */
  service: string;
  /** The interface the macvlan is made on (`--iface`). */
  lower: string;
  /** The address the Service had (its claim's): up at once, and asked for again. */
  requested?: string;
  log: Logger;
  clock: Clock;
  /** The lease got, renewed, changed or lost (undefined); `error` when a try found no server. */
  onChange: (lease: Lease | undefined, error?: string) => void;
  /** udhcpc (default: `udhcpc` on PATH). */
  program?: string;
}

/** One Service's lease on this node, from start() to release() or stop(). */
export class DhcpLease {
  readonly mac: string;
  readonly link: string;
  private child?: Spawned;
  private lease?: Lease;
  /** An address up on the link that no bound event of this udhcpc has confirmed yet (the requested one). */
  private provisional?: string;
  private stopped = false;
  private waitMs = RETRY_FIRST_MS / 2;
  private cancelRetry?: () => void;
  private buffered = '';
  private stderr: string[] = [];
  private deconfigured?: () => void;

  constructor(private readonly options: DhcpLeaseOptions) {
    this.mac = leaseMac(options.service);
    this.link = leaseLink(options.service);
  }

  /** The lease held now. */
  get current(): Lease | undefined {
    return this.lease;
  }

  /** Makes the link (the requested address up on it at once) and starts taking the lease. */
  async start(): Promise<void> {
    await this.ensureLink();
    const requested = this.options.requested;
    if (requested) {
      await this.ip(['address', 'replace', `${requested}/32`, 'dev', this.link]);
      this.provisional = requested;
      this.announce(requested);
    }
    await this.spawn();
  }

  private async ip(args: string[]): Promise<void> {
    const r = await run('ip', args, {installHint: 'install iproute2'});
    if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  }

  /**
   * Gratuitous ARP from the link: the neighbours' entries for the address
   * name the link's MAC, which follows the Service from node to node (the
   * node's own interface may have answered for it too, and a former
   * holder's did).
   */
  private announce(ip: string): void {
    void announceIPv4(this.link, ip, 3).then((why) => why && this.options.log.warn(`DHCP for ${this.options.service}: cannot announce ${ip} on ${this.link}: ${why}`));
  }

  private async ensureLink(): Promise<void> {
    const made = await run('ip', ['link', 'add', 'link', this.options.lower, 'name', this.link, 'address', this.mac, 'type', 'macvlan', 'mode', 'bridge'], {installHint: 'install iproute2'});
    if (made.exitCode !== 0 && !/exists/i.test(made.stderr)) throw new Error(`cannot make the macvlan ${this.link} on ${this.options.lower}: ${made.stderr.trim()}`);
    // One that was left (an agent's restart) is taken as it is, with its MAC set again in case it was changed.
    if (made.exitCode !== 0) await this.ip(['link', 'set', this.link, 'address', this.mac]);
    await this.ip(['link', 'set', this.link, 'up']);
  }

  private async spawn(): Promise<void> {
    if (this.stopped) return;
    const asked = this.lease?.ip ?? this.provisional;
    const args = ['-f', '-i', this.link, '-s', await eventProgram(), '-B', '-n', '-t', String(DISCOVER_TRIES), '-T', String(DISCOVER_GAP_S),
      '-x', `hostname:${leaseHostname(this.options.service)}`, ...(asked ? ['-r', asked] : [])];
    this.stderr = [];
    this.buffered = '';
    const child = spawnProgram(this.options.program ?? 'udhcpc', args, {
      installHint: 'install udhcpc (busybox)',
      onOutput: (chunk) => this.output(chunk),
      onStderr: (chunk) => this.said(chunk),
    });
    this.child = child;
    child.done.then(({exitCode, signal}) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopped) return;
      const why = exitCode === 1 && !this.lease
        ? `no DHCP server answered ${DISCOVER_TRIES} DISCOVERs from ${this.link} (MAC ${this.mac}) on ${this.options.lower}`
        : `udhcpc on ${this.link} ended (${signal ?? `exit ${exitCode}`}): ${this.stderr.at(-1) ?? ''}`;
      this.retry(why);
    }, (err: Error) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (!this.stopped) this.retry(describe(err));
    });
  }

  /**
   * udhcpc's own lines: kept for the message when it ends, shown with -v=1,
   * and a failure of a socket call (`bind(UDP): Permission denied`: a
   * renewal or a release that could not be sent) as a warning.
   */
  private said(chunk: string): void {
    const lines = chunk.split('\n').map((l) => l.trim()).filter(Boolean);
    this.stderr = [...this.stderr, ...lines].slice(-5);
    for (const line of lines) {
      if (/\w+\([A-Za-z]*\): /.test(line) || /denied|not permitted|cannot|can't/i.test(line)) this.options.log.warn(`DHCP for ${this.options.service}: ${line}`);
      else this.options.log.info(1, `DHCP for ${this.options.service}: ${line}`);
    }
  }

  /** The next try waits twice as long as the last (from RETRY_FIRST_MS, at most RETRY_MAX_MS). */
  private retry(why: string): void {
    this.waitMs = Math.min(RETRY_MAX_MS, this.waitMs * 2);
    const message = `${why}; trying again in ${Math.round(this.waitMs / 1000)} s`;
    this.options.log.warn(`DHCP for ${this.options.service}: ${message}`);
    this.options.onChange(this.lease, message);
    this.cancelRetry = this.options.clock.after(this.waitMs, () => {
      this.cancelRetry = undefined;
      void this.spawn().catch((err: Error) => this.retry(describe(err)));
    });
  }

  private output(chunk: string): void {
    this.buffered += chunk;
    const lines = this.buffered.split('\n');
    this.buffered = lines.pop() ?? '';
    for (const line of lines) {
      const e = parseEventLine(line);
      if (e) void this.event(e).catch((err: Error) => this.options.log.warn(`DHCP for ${this.options.service}: ${describe(err)}`));
    }
  }

  private async event(e: DhcpEvent): Promise<void> {
    if (e.event === 'bound' || e.event === 'renew') {
      const lease = leaseOf(e, this.options.clock.now());
      if (!lease) return;
      const before = this.lease?.ip ?? this.provisional;
      await this.ip(['address', 'replace', `${lease.ip}/32`, 'dev', this.link]);
      if (before && before !== lease.ip) await this.ip(['address', 'del', `${before}/32`, 'dev', this.link]).catch(() => undefined);
      const changed = this.lease?.ip !== lease.ip;
      if (changed && lease.ip !== before) this.announce(lease.ip);
      this.lease = lease;
      this.provisional = undefined;
      this.waitMs = RETRY_FIRST_MS / 2;
      if (changed) this.options.log.info(0, `DHCP: ${lease.ip} leased for ${this.options.service} from ${lease.server ?? 'the server'} (${lease.seconds} s, MAC ${this.mac} on ${this.link})`);
      this.options.onChange(lease);
    } else if (e.event === 'deconfig') {
      // udhcpc says deconfig as it starts (nothing to do: a requested address stays up until the server answers),
      // and when a lease is lost or released: the address goes.
      const lost = this.lease;
      this.deconfigured?.();
      if (!lost) return;
      this.lease = undefined;
      await this.ip(['address', 'del', `${lost.ip}/32`, 'dev', this.link]).catch(() => undefined);
      if (!this.stopped) this.options.onChange(undefined, `the lease of ${lost.ip} ended`);
    } else if (e.event === 'nak') {
      this.options.log.warn(`DHCP for ${this.options.service}: the server refused ${this.lease?.ip ?? this.provisional ?? 'the address'}${e.message ? ` (${e.message})` : ''}`);
    }
  }

  /** Gives the lease back to the server (the Service went, or stopped asking), then stop(). */
  async release(): Promise<void> {
    const child = this.child;
    if (child && this.lease) {
      const deconfig = new Promise<void>((resolve) => {
        this.deconfigured = resolve;
        this.options.clock.after(RELEASE_MS, resolve);
      });
      this.stopped = true;
      child.child.kill('SIGUSR2');
      await deconfig;
      this.options.log.info(0, `DHCP: ${this.options.service}'s lease released`);
    }
    await this.stop();
  }

  /**
   * Stops taking the lease, without releasing it (the next holder takes it
   * over), and takes the link down with its address, unless `keepLink`
   * (the agent exits leaving its addresses up).
   */
  async stop(options: {keepLink?: boolean} = {}): Promise<void> {
    this.stopped = true;
    this.cancelRetry?.();
    const child = this.child;
    this.child = undefined;
    if (child) {
      child.child.kill('SIGTERM');
      let timer: (() => void) | undefined;
      await Promise.race([child.done.catch(() => undefined), new Promise<void>((resolve) => (timer = this.options.clock.after(2000, () => {
        child.child.kill('SIGKILL');
        resolve();
      })))]);
      timer?.();
    }
    if (!options.keepLink) {
      const r = await run('ip', ['link', 'del', this.link], {installHint: 'install iproute2'});
      if (r.exitCode !== 0 && !/cannot find|does not exist/i.test(r.stderr)) this.options.log.warn(`cannot remove the macvlan ${this.link}: ${r.stderr.trim()}`);
    }
  }
}
