/**
 * Naive mode: every Service external IP up on the interface, as IP/mask; an
 * address no Service uses any more comes down. Service events are coalesced,
 * so a burst of them costs one reconcile.
 */
import {isIP} from 'node:net';
import * as k8s from '@kubernetes/client-node';
import {type HostAddress, Ownership, readAddresses} from './addresses.js';
import type {AgentFlags} from './flags.js';
import type {Logger} from './log.js';
import {Metrics} from './metrics.js';

export interface Desired {
  /** "ip/mask" -> the Services that want it. */
  wanted: Map<string, string[]>;
  /** Entries that are not IP addresses, with their Service. */
  invalid: Array<{service: string; value: string}>;
}

export function desiredFrom(services: readonly k8s.V1Service[], mask: number): Desired {
  const wanted = new Map<string, string[]>();
  const invalid: Desired['invalid'] = [];
  for (const s of services) {
    const name = `${s.metadata?.namespace}/${s.metadata?.name}`;
    for (const ip of s.spec?.externalIPs ?? []) {
      const family = isIP(ip);
      if (!family || (family === 4 && mask > 32)) {
        invalid.push({service: name, value: ip});
        continue;
      }
      const cidr = `${ip}/${mask}`;
      wanted.set(cidr, [...(wanted.get(cidr) ?? []), name]);
    }
  }
  return {wanted, invalid};
}

export interface Plan {
  add: string[];
  remove: string[];
  /** Wanted addresses already present on another interface. */
  conflicts: Array<{cidr: string; iface: string; services: string[]}>;
}

export function plan(desired: Desired, host: HostAddress[], owned: Ownership): Plan {
  const onIface = new Set(host.filter((a) => a.iface === owned.iface).map((a) => `${a.ip}/${a.prefix}`));
  const mine = new Set(host.filter((a) => owned.owns(a)).map((a) => `${a.ip}/${a.prefix}`));
  const elsewhere = new Map(host.filter((a) => a.iface !== owned.iface).map((a) => [a.ip, a.iface]));
  const add: string[] = [];
  const conflicts: Plan['conflicts'] = [];
  for (const [cidr, services] of desired.wanted) {
    if (onIface.has(cidr)) continue;
    const other = elsewhere.get(cidr.split('/')[0]);
    if (other) conflicts.push({cidr, iface: other, services});
    else add.push(cidr);
  }
  const remove = [...mine].filter((cidr) => !desired.wanted.has(cidr));
  return {add: add.sort(), remove: remove.sort(), conflicts};
}

export class NaiveController {
  private informer?: k8s.Informer<k8s.V1Service> & k8s.ObjectCache<k8s.V1Service>;
  private scheduled?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;
  private resync?: NodeJS.Timeout;
  private backoffMs = 500;
  private warned = new Set<string>();
  ready = false;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly flags: AgentFlags,
    private readonly owned: Ownership,
    private readonly log: Logger,
    readonly metrics: Metrics,
  ) {}

  async start(): Promise<void> {
    await this.owned.load();
    const core = this.kc.makeApiClient(k8s.CoreV1Api);
    this.informer = k8s.makeInformer(this.kc, '/api/v1/services', () => core.listServiceForAllNamespaces());
    for (const event of ['add', 'update', 'delete'] as const) this.informer.on(event, () => this.schedule());
    this.informer.on('connect', () => {
      this.backoffMs = 500;
      this.schedule();
    });
    this.informer.on('error', (err: unknown) => {
      // The API is away: keep the addresses as they are, and try again with backoff.
      this.metrics.apiErrors++;
      this.log.warn(`watching Services failed (${describe(err)}); keeping the current addresses, retrying in ${this.backoffMs} ms`);
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, 30000);
      setTimeout(() => {
        if (!this.stopped) this.informer?.start().catch(() => {});
      }, delay).unref();
    });
    await this.startInformer();
    this.resync = setInterval(() => this.schedule(), Math.max(this.flags.resyncMs, 100));
    this.resync.unref();
  }

  private async startInformer(): Promise<void> {
    for (;;) {
      try {
        await this.informer!.start();
        if (this.stopped) return;
        await this.reconcileNow();
        this.ready = true;
        return;
      } catch (err) {
        if (this.stopped) return;
        this.metrics.apiErrors++;
        this.log.warn(`listing Services failed (${describe(err)}); retrying in ${this.backoffMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, this.backoffMs));
        this.backoffMs = Math.min(this.backoffMs * 2, 30000);
      }
    }
  }

  /** Coalesces bursts of events into one reconcile. */
  schedule(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.reconcileNow();
    }, 2);
  }

  async reconcileNow(): Promise<void> {
    // After stop() nothing may add addresses again (stop withdraws them).
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    const started = process.hrtime.bigint();
    try {
      const desired = desiredFrom(this.informer?.list() ?? [], this.flags.mask);
      for (const bad of desired.invalid) this.warnOnce(`skip ${bad.value} of Service ${bad.service}: not an IP address (or not one for --mask=${this.flags.mask})`);
      const host = await readAddresses();
      const p = plan(desired, host, this.owned);
      for (const c of p.conflicts) this.warnOnce(`skip ${c.cidr} of Service ${c.services.join(', ')}: the address is already on ${c.iface}`);
      const failed = await this.owned.apply(p.add, p.remove);
      for (const line of failed) this.log.warn(`ip: ${line}`);
      if (failed.length) this.metrics.errors++;
      if (p.add.length || p.remove.length) this.log.info(1, `added ${p.add.join(' ') || 'nothing'}; removed ${p.remove.join(' ') || 'nothing'}`);
      this.metrics.desired = desired.wanted.size;
      this.metrics.applied = desired.wanted.size - p.conflicts.length;
      this.metrics.skipped = desired.invalid.length + p.conflicts.length;
    } catch (err) {
      this.metrics.errors++;
      this.log.warn(`reconcile failed: ${describe(err)}`);
    } finally {
      this.metrics.observe(Number(process.hrtime.bigint() - started) / 1e9);
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.log.warn(message);
  }

  /** Stops watching; unless told to keep them, takes down every address it added. */
  async stop(withdraw: boolean): Promise<void> {
    this.stopped = true;
    if (this.scheduled) clearTimeout(this.scheduled);
    if (this.resync) clearInterval(this.resync);
    // Withdraw first: stopping the watch may take a while, and a drain must not wait for it.
    while (this.running) await new Promise((resolve) => setTimeout(resolve, 5));
    if (withdraw) {
      const host = await readAddresses();
      const mine = host.filter((a) => this.owned.owns(a)).map((a) => `${a.ip}/${a.prefix}`);
      this.log.info(2, `withdrawing: own ${mine.join(' ') || 'nothing'} of ${host.filter((a) => a.iface === this.owned.iface).map((a) => `${a.ip}/${a.prefix}`).join(' ')}`);
      const failed = await this.owned.apply([], mine);
      for (const line of failed) this.log.warn(`ip: ${line}`);
      if (mine.length) this.log.info(0, `withdrew ${mine.join(' ')}`);
    }
    await Promise.race([this.informer?.stop().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }
}

function describe(err: unknown): string {
  const e = err as {message?: string; cause?: {code?: string}; code?: string | number};
  return String(e.cause?.code ?? e.message ?? err).split('\n')[0];
}
