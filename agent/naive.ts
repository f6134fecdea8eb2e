/**
 * Naive mode: every Service external IP up on the interface, as IP/mask; an
 * address no Service uses any more comes down. Service events are coalesced,
 * so a burst of them costs one reconcile. Nothing on the interface is touched
 * before the first successful list of the Services, and an API outage keeps
 * the addresses as they are.
 */
import type * as k8s from '@kubernetes/client-node';
import {hostname} from 'node:os';
import {type HostAddress, Ownership, interfaceSubnets, promoteSecondaries, readAddresses} from './addresses.js';
import {canonicalIp} from '../lib/ipnet.js';
import type {ApiClient} from './api.js';
import type {AgentFlags} from '../lib/agent-flags.js';
import {type Logger, describe} from './log.js';
import {Metrics} from './metrics.js';
import {Component} from './component.js';
import {AddressPolicy, type Refused} from '../lib/policy.js';
import {NodeAddressWatch, RefusalReporter} from './refusals.js';
import {ListWatch} from './listwatch.js';
import {FAILING_PASSES} from './serial.js';
import type {Speaker} from './speaker.js';

/** No ranges declared: any address but those never allowed. */
const OPEN = new AddressPolicy();

export interface Desired {
  /** "ip/prefix" (the address in canonical form) -> the Services that want it. */
  wanted: Map<string, string[]>;
  /** Entries that are refused, with their Service, the rule and why. */
  invalid: Refused[];
}

/**
 * The addresses the Services want, each as IP/prefix with the Services that
 * want it; what is not an address, or what the policy refuses, goes to
 * `invalid` instead.
 */
export function desiredFrom(services: readonly k8s.V1Service[], mask: number, mask6 = 128, policy: AddressPolicy = OPEN): Desired {
  const wanted = new Map<string, string[]>();
  const invalid: Desired['invalid'] = [];
  for (const s of services) {
    const name = `${s.metadata?.namespace}/${s.metadata?.name}`;
    const uid = s.metadata?.uid;
    for (const entry of s.spec?.externalIPs ?? []) {
      const c = canonicalIp(String(entry));
      if ('refused' in c) {
        invalid.push({service: name, uid, value: String(entry), rule: 'not-an-ip', reason: `"${String(entry)}" is ${c.refused}`});
        continue;
      }
      const prefix = c.family === 4 ? mask : mask6;
      const no = policy.check(c.ip, s.metadata?.namespace, prefix);
      if (no) {
        invalid.push({service: name, uid, value: String(entry), ...no});
        continue;
      }
      const cidr = `${c.ip}/${prefix}`;
      const users = wanted.get(cidr);
      if (users) users.push(name);
      else wanted.set(cidr, [name]);
    }
  }
  return {wanted, invalid};
}

export interface Plan {
  add: string[];
  remove: string[];
  /** Wanted addresses already on the interface, made by an extip agent, that this owner takes into its record. */
  adopt: string[];
  /** Addresses this owner no longer wants that stay up (another owner wants them, or they are gone): out of its record. */
  release: string[];
  /** Wanted addresses already present on another interface. */
  conflicts: Array<{cidr: string; iface: string; services: string[]}>;
}

export interface OwnedView {
  iface: string;
  label?: string;
  owns(cidr: string): boolean;
  addresses: readonly string[];
}

export function plan(desired: Desired, host: readonly HostAddress[], owned: OwnedView, othersWant: ReadonlySet<string> = new Set()): Plan {
  const onIface = new Map(host.filter((a) => a.iface === owned.iface).map((a) => [`${a.ip}/${a.prefix}`, a]));
  const elsewhere = new Map(host.filter((a) => a.iface !== owned.iface).map((a) => [a.ip, a.iface]));
  const p: Plan = {add: [], remove: [], adopt: [], release: [], conflicts: []};
  for (const [cidr, services] of desired.wanted) {
    const present = onIface.get(cidr);
    if (present) {
      // Someone else's extip address that this owner wants too: share it. An address
      // without extip's label that no owner recorded is the operator's, never taken.
      if (!owned.owns(cidr) && ((owned.label && present.label === owned.label) || othersWant.has(cidr))) p.adopt.push(cidr);
      continue;
    }
    const other = elsewhere.get(cidr.split('/')[0]);
    if (other) p.conflicts.push({cidr, iface: other, services});
    else p.add.push(cidr);
  }
  for (const cidr of owned.addresses) {
    if (desired.wanted.has(cidr)) continue;
    if (othersWant.has(cidr) || !onIface.has(cidr)) p.release.push(cidr);
    else p.remove.push(cidr);
  }
  p.add.sort();
  p.remove.sort();
  return p;
}

export class NaiveController extends Component {
  private watcher?: ListWatch;
  private loop?: Promise<void>;
  private scheduled?: NodeJS.Timeout;
  private stopped = false;
  private resync?: NodeJS.Timeout;
  private readonly refusals: RefusalReporter;
  private readonly nodes: NodeAddressWatch;
  private nodesLoop?: Promise<void>;
  /** A pass has run: the addresses are up (or in this owner's record). */
  private served = false;

  constructor(api: ApiClient, flags: AgentFlags, private readonly owned: Ownership, log: Logger, metrics: Metrics, private readonly speaker?: Speaker) {
    super(api, flags, log, metrics, 'reconcile');
    this.refusals = new RefusalReporter(api, log, metrics, 'extip-naivecontroller', flags.hostname || hostname());
    this.nodes = new NodeAddressWatch(api, this.policy, log, () => this.schedule());
  }

  /** Ready once the Services were listed, while their watch is open and its passes do not keep failing. */
  get ready(): boolean {
    return Boolean(this.served && this.watcher?.synced && this.watcher.connected && this.passes.failures < FAILING_PASSES);
  }

  async start(): Promise<void> {
    await this.owned.load();
    const why = await promoteSecondaries(this.flags.iface);
    if (why) this.log.warn(`cannot turn on promote_secondaries for ${this.flags.iface} (${why}); addresses that a removal takes along are put back instead`);
    const server = this.api.server;
    let failing = false;
    this.watcher = new ListWatch(this.api, '/api/v1/services', 'Services', {
      onChange: () => this.schedule(),
      onSynced: (count) => {
        if (failing) this.log.info(0, `${server} answers again; ${count} Services listed`);
        failing = false;
      },
      onExpired: (rv) => this.log.info(1, `the Services watch from resourceVersion ${rv} expired (410 Gone); listing again`),
      onError: (what, err, retryMs) => {
        failing = true;
        this.metrics.apiErrors++;
        const state = this.watcher?.synced ? 'keeping the current addresses' : 'no address is touched until the Services are listed';
        this.log.warn(`${what} failed (${describe(err)}); waiting for ${server}: ${state}; next try in ${(retryMs / 1000).toFixed(1)} s`);
      },
    });
    this.loop = this.watcher.run();
    this.nodesLoop = this.nodes.watch.run();
    this.speaker?.start();
    if (this.policy.open) this.log.warn('no --allowed-cidrs: any address a Service names is brought up, but for the ranges never allowed; declare where external IPs may come from (extip_external_cidrs)');
    // Rewrites the ownership record too, the sign of life other owners look for.
    this.resync = setInterval(() => this.schedule(), Math.min(Math.max(this.flags.resyncMs, 100), 10000));
  }

  /** Coalesces bursts of events into one reconcile. */
  schedule(): void {
    if (this.stopped) return;
    if (this.passes.busy()) return;
    if (this.scheduled) return;
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.reconcileNow();
    }, 2);
  }

  async reconcileNow(): Promise<void> {
    // After stop() nothing may add addresses again (stop withdraws them), and
    // before the first list there is nothing to reconcile against.
    // Nor before the nodes' addresses are known: one of them must never be brought up here.
    const watcher = this.watcher;
    if (this.stopped || !watcher?.synced || !this.nodes.settled) return;
    if (this.passes.busy()) return;
    await this.passes.run(async () => {
      const [host, others] = await Promise.all([readAddresses(), this.owned.othersWant()]);
      // The interface's own subnets: their network and broadcast addresses are never a Service's.
      this.policy.setSubnets('interface', interfaceSubnets(host, this.flags.iface));
      const desired = desiredFrom(watcher.list() as k8s.V1Service[], this.flags.mask, this.flags.mask6, this.policy);
      this.refusals.report(desired.invalid);
      const p = plan(desired, host, this.owned, others);
      for (const c of p.conflicts) this.warnOnce(`skip ${c.cidr} of Service ${c.services.join(', ')}: the address is already on ${c.iface}`);
      await this.owned.adopt(p.adopt, p.release);
      // The routers stop sending to an address before it comes down.
      if (this.speaker && p.remove.length) await this.speaker.withdraw(p.remove);
      const result = await this.owned.apply(p.add, p.remove, host);
      // ...and hear of one once it is up (a failed addition is out of the record, so not exported).
      if (this.speaker) {
        const up = new Set(host.filter((a) => a.iface === this.owned.iface).map((a) => `${a.ip}/${a.prefix}`));
        for (const cidr of p.add) if (this.owned.owns(cidr)) up.add(cidr);
        for (const cidr of p.remove) up.delete(cidr);
        await this.speaker.set([...desired.wanted.keys()].filter((cidr) => up.has(cidr)));
      }
      if (!p.add.length && !p.remove.length && !p.adopt.length && !p.release.length) await this.owned.save();
      for (const line of result.failed) this.log.warn(`ip: ${line}`);
      if (result.restored.length) this.log.warn(`put back ${result.restored.join(' ')}: removing another address of their subnet took them down`);
      if (result.failed.length) this.metrics.errors++;
      if (p.add.length || p.remove.length) this.log.info(1, `added ${p.add.join(' ') || 'nothing'}; removed ${p.remove.join(' ') || 'nothing'}`);
      if (p.release.length) this.log.info(2, `left up for other owners: ${p.release.join(' ')}`);
      this.metrics.desired = desired.wanted.size;
      this.metrics.applied = desired.wanted.size - p.conflicts.length;
      this.metrics.skipped = desired.invalid.length + p.conflicts.length;
      this.served = true;
    });
  }

  /**
   * Stops watching; unless told to keep them, takes down every address it
   * added that no other live owner wants (those stay, out of its record).
   */
  async stop(withdraw: boolean): Promise<void> {
    this.stopped = true;
    if (this.scheduled) clearTimeout(this.scheduled);
    if (this.resync) clearInterval(this.resync);
    this.watcher?.stop();
    this.nodes.watch.stop();
    // Withdraw first: the watch may take a while to close, and a drain must not wait for it.
    await this.passes.idle(5);
    if (withdraw) {
      // Routes first, then addresses: a drain loses no connection the routers send meanwhile.
      await this.speaker?.withdraw(this.owned.addresses);
      const {removed, shared, failed} = await this.owned.withdraw();
      for (const line of failed) this.log.warn(`ip: ${line}`);
      if (removed.length) this.log.info(0, `withdrew ${removed.join(' ')}`);
      if (shared.length) this.log.info(0, `left up, other owners want them: ${shared.join(' ')}`);
      await this.owned.drop();
    }
    // The rack's route reflector, if held here, goes to another node of the rack.
    await this.speaker?.leave();
    this.speaker?.stop();
    await Promise.race([Promise.all([this.loop, this.nodesLoop]), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }
}
