/**
 * What the agent does with the addresses its policy refuses: one Warning
 * Event per Service and change (reason ExternalIPRefused), a gauge per rule,
 * a log line once. The Event's name is derived from the Service and what is
 * refused, so the agents of every node (naive mode) and each scheduler
 * after a leader change write the same Event once between them, and a
 * Service with 10,000 bad addresses gets one Event, not 10,000.
 */
import {createHash} from 'node:crypto';
import type {ApiClient, Json} from './api.js';
import {ListWatch} from './listwatch.js';
import type {Logger} from './log.js';
import type {Metrics} from './metrics.js';
import {type AddressPolicy, RULES, type Refused, type Rule, nodeAddresses} from '../lib/policy.js';


/** Lines of an Event's message at most; the rest are counted. */
const SHOWN = 5;

/** The Event for one Service's refusals: its name, from what is refused, and its message. */
export function refusalEvent(service: string, uid: string | undefined, refused: readonly Refused[]): {name: string; message: string} {
  const name = service.split('/')[1];
  const sorted = [...refused].sort((a, b) => a.value.localeCompare(b.value) || a.rule.localeCompare(b.rule));
  const hash = createHash('sha256').update(`${uid ?? service}\n${sorted.map((r) => `${r.value} ${r.rule}`).join('\n')}`).digest('hex').slice(0, 16);
  const shown = sorted.slice(0, SHOWN).map((r) => `${r.value}: ${r.reason}`);
  const more = sorted.length > SHOWN ? `; and ${sorted.length - SHOWN} more` : '';
  const message = `${sorted.length === 1 ? 'external IP' : `${sorted.length} external IPs`} not brought up: ${shown.join('; ')}${more}`;
  return {name: `${name}.extip-refused.${hash}`, message: message.length > 1000 ? `${message.slice(0, 997)}...` : message};
}

export class RefusalReporter {
  /** Event names written, or found written, by this process: never written twice. */
  private written = new Set<string>();
  /** Events are written one after another, behind the reconciles. */
  private queue: Promise<void> = Promise.resolve();
  private warnedEvents = false;

  constructor(
    private readonly api: ApiClient,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly component: string,
    private readonly instance: string,
  ) {}

  /**
   * Takes every refusal of one reconcile: updates the gauges and writes the
   * Events not written yet, in the background (a reconcile never waits on
   * them).
   */
  report(refused: readonly Refused[]): void {
    const counts = Object.fromEntries(RULES.map((r) => [r, 0])) as Record<Rule, number>;
    for (const r of refused) counts[r.rule]++;
    this.metrics.refused = counts;
    const byService = new Map<string, Refused[]>();
    for (const r of refused) {
      const list = byService.get(r.service);
      if (list) list.push(r);
      else byService.set(r.service, [r]);
    }
    const current = new Set<string>();
    for (const [service, list] of byService) {
      const event = refusalEvent(service, list[0].uid, list);
      current.add(event.name);
      if (this.written.has(event.name)) continue;
      this.written.add(event.name);
      this.log.warn(`refused for Service ${service}: ${event.message}`);
      this.queue = this.queue.then(() => this.write(service, event));
    }
    // What no Service asks for any more is forgotten; asking again is a change: a new Event and log line.
    for (const name of this.written) if (!current.has(name)) this.written.delete(name);
  }

  private async write(service: string, event: {name: string; message: string}): Promise<void> {
    const [namespace, name] = service.split('/');
    const at = new Date().toISOString();
    const r = await this.api.request('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {name: event.name, namespace},
      involvedObject: {apiVersion: 'v1', kind: 'Service', namespace, name},
      reason: 'ExternalIPRefused',
      message: event.message,
      type: 'Warning',
      source: {component: this.component},
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    }, {timeoutMs: 5000}).catch((err: Error) => ({status: 0, body: {message: err.message}}));
    // 409: another agent (or this one before a restart) wrote it already.
    if (r.status === 201 || r.status === 409) return;
    if (!this.warnedEvents) this.log.warn(`cannot write ExternalIPRefused Events (${r.status} ${r.body?.message ?? ''}); refusals are in this log and the extip_refused_addresses metric`);
    this.warnedEvents = true;
  }
}

/**
 * The nodes' addresses, for the policy: a watch of the Nodes that keeps only
 * their addresses. Without the right to list Nodes the agent goes on, and
 * says once that node addresses are not protected.
 */
export class NodeAddressWatch {
  readonly watch: ListWatch;
  /** True once the Nodes were listed, or once listing them was refused (403): either way, nothing to wait for. */
  settled = false;
  private warned = false;

  constructor(api: ApiClient, policy: AddressPolicy, log: Logger, onChange: () => void) {
    this.watch = new ListWatch(api, '/api/v1/nodes', 'Nodes', {
      onChange: () => {
        policy.setNodeAddresses(nodeAddresses(this.watch.list()));
        this.settled = true;
        onChange();
      },
      onError: (what, err, retryMs) => {
        const status = (err as {status?: number}).status;
        if (status === 403 && !this.settled) {
          this.settled = true;
          onChange();
        }
        if (status === 403 && !this.warned) {
          this.warned = true;
          log.warn(`${what}: forbidden; external IPs that are a node's address are not refused until this agent may list and watch Nodes`);
        } else if (status !== 403) log.info(1, `${what} failed (${(err as Error).message}); next try in ${(retryMs / 1000).toFixed(1)} s`);
      },
    }, undefined, (o: Json) => ({metadata: {name: o.metadata?.name, resourceVersion: o.metadata?.resourceVersion}, status: {addresses: o.status?.addresses ?? []}}));
  }
}
