/**
 * Leader election on a coordination.k8s.io/v1 Lease, the way Kubernetes'
 * own components do it (client-go's leaderelection): a candidate takes the
 * Lease when it is free or when its holder has not renewed it for the lease
 * duration, measured on this process's clock from when it last saw the Lease
 * change; the leader renews every retry period and, when it could not renew
 * for the renew deadline, stops leading and stands again as a candidate.
 * Every write is conditional on the Lease's resourceVersion, so two
 * candidates never both win. Kubernetes' components exit instead; a process
 * that stays is a standby as soon as its API server answers again, where a
 * restarted one would first wait out the kubelet's back-off (10 s, doubling).
 * A process that cannot do the leader's work (`eligible` says no) gives the
 * Lease up at once and does not stand until it says yes again, so that a
 * standby tries instead of a leader that keeps failing.
 */
import {randomUUID} from 'node:crypto';
import {hostname} from 'node:os';
import {type ApiClient, type Json} from './api.js';
import type {Logger} from './log.js';
import {type Clock, systemClock} from './world.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Unique per process, as client-go's: the pod name (or host name) and a UUID. */
  identity?: string;
  /** Whether this process may lead now (default: always). */
  eligible?: () => boolean;
  /** Whose time the lease durations are measured on (default: the system's). */
  clock?: Clock;
  /** Labels the Lease carries (set when it is created or taken), so that whoever removes extip finds it. */
  labels?: Record<string, string>;
}

function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  readonly identity: string;
  leading = false;
  private observed?: {key: string; at: number};
  private lastRenew = 0;
  /** Cancels the next try. */
  private timer?: () => void;
  private stopped = false;
  private readonly clock: Clock;

  constructor(
    private readonly api: ApiClient,
    private readonly options: LeaderOptions,
    private readonly log: Logger,
    private readonly onLead: () => void,
    private readonly onLost: (why: string) => void,
  ) {
    this.identity = options.identity ?? `${process.env.POD_NAME || hostname()}_${randomUUID()}`;
    this.clock = options.clock ?? systemClock;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.options.namespace)}/leases/${encodeURIComponent(this.options.name)}`;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      if (this.options.eligible && !this.options.eligible()) {
        if (this.leading) {
          this.leading = false;
          this.onLost(`this process cannot do the leader's work; lease ${this.options.namespace}/${this.options.name} given up for a standby`);
          await this.release();
        }
        if (!this.stopped) this.timer = this.clock.after(this.options.retryPeriodMs, () => void tick());
        return;
      }
      await this.tryAcquireOrRenew().catch((err: Error) => this.log.info(2, `lease ${this.options.namespace}/${this.options.name}: ${err.message}`));
      if (this.leading && this.clock.now() - this.lastRenew > this.options.renewDeadlineMs) {
        this.leading = false;
        this.onLost(`could not renew lease ${this.options.namespace}/${this.options.name} within ${this.options.renewDeadlineMs} ms`);
      }
      if (!this.stopped) this.timer = this.clock.after(this.options.retryPeriodMs, () => void tick());
    };
    void tick();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = this.clock.now();
    const seconds = Math.max(1, Math.round(this.options.leaseDurationMs / 1000));
    const timeoutMs = Math.max(500, this.options.retryPeriodMs);
    const got = await this.api.request('GET', this.path, undefined, {timeoutMs});
    if (got.status === 404) {
      const created = await this.api.request('POST', this.path.replace(/\/[^/]+$/, ''), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {name: this.options.name, namespace: this.options.namespace, ...(this.options.labels ? {labels: this.options.labels} : {})},
        spec: {holderIdentity: this.identity, leaseDurationSeconds: seconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0},
      }, {timeoutMs});
      if (created.status === 201) this.won(now);
      return;
    }
    if (got.status !== 200) throw new Error(`reading the lease: ${got.status} ${got.body?.message ?? ''}`);
    const lease = got.body;
    const spec: Json = lease.spec ?? {};
    const key = `${spec.holderIdentity}|${spec.renewTime}|${lease.metadata.resourceVersion}`;
    if (!this.observed || this.observed.key !== key) this.observed = {key, at: now};
    const holder: string = spec.holderIdentity ?? '';
    const heldMs = (spec.leaseDurationSeconds ?? seconds) * 1000;
    if (holder && holder !== this.identity && this.observed.at + heldMs > now) {
      if (this.leading) {
        this.leading = false;
        this.onLost(`lease ${this.options.namespace}/${this.options.name} is held by ${holder}`);
      }
      return;
    }
    const mine = holder === this.identity;
    const labels = this.options.labels ?? {};
    const unlabelled = Object.entries(labels).some(([k, v]) => lease.metadata.labels?.[k] !== v);
    const updated = await this.api.request('PUT', this.path, {
      ...lease,
      ...(unlabelled ? {metadata: {...lease.metadata, labels: {...(lease.metadata.labels ?? {}), ...labels}}} : {}),
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: seconds,
        acquireTime: mine ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: mine ? spec.leaseTransitions ?? 0 : (spec.leaseTransitions ?? 0) + 1,
      },
    }, {timeoutMs});
    if (updated.status === 200) {
      if (!mine) this.log.info(0, holder ? `took over lease ${this.options.namespace}/${this.options.name} from ${holder}, silent for ${now - this.observed.at} ms` : `acquired lease ${this.options.namespace}/${this.options.name}`);
      this.won(now);
    }
  }

  private won(now: number): void {
    this.lastRenew = now;
    if (!this.leading) {
      this.leading = true;
      this.onLead();
    }
  }

  /** Stops; a leader gives the Lease up so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.();
    if (!this.leading) return;
    this.leading = false;
    await this.release();
  }

  /** Gives the Lease up if this process still holds it: a standby takes it at its next try. */
  private async release(): Promise<void> {
    const got = await this.api.request('GET', this.path, undefined, {timeoutMs: 2000}).catch(() => undefined);
    if (got?.status !== 200 || got.body.spec?.holderIdentity !== this.identity) return;
    const now = microTime(this.clock.now());
    await this.api
      .request('PUT', this.path, {...got.body, spec: {...got.body.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now}}, {timeoutMs: 2000})
      .catch(() => undefined);
  }
}
