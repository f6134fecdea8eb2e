/**
 * `ipmanager scheduler`: claims mode's brain. It turns each Service external
 * IP into an IpClaim named after the address (10-0-0-7-32), assigns each
 * claim to a live IpNode (`--nodefilter=fair` spreads, `first-alive` packs),
 * moves the claims of a node whose heartbeat was not seen for `--monitor` or
 * whose IpNode was deleted (its controller left: a drain), and deletes the
 * claims no Service wants. A claim leaves a live node (fair rebalancing,
 * first-alive packing) in two steps: the holder is asked to let go, and the
 * claim is assigned anew once it confirmed. With `--leader-elect` only the holder of a Lease
 * acts; the others wait as standbys.
 *
 * Each claim records in `status` its node, since when, the node before and
 * why it moved. Nothing is decided before Services, claims and nodes have all
 * been listed; after an interruption of the nodes' watch every node gets a
 * full `--monitor` again, so that a scheduler that could not see heartbeats
 * never takes that for nodes being dead.
 */
import {readFileSync} from 'node:fs';
import type * as k8s from '@kubernetes/client-node';
import type {ApiClient} from './api.js';
import {CLAIMS, type ClaimView, allocationValue, HELD_BY, Liveness, type Move, NODES, NODE_LABEL, POOLS, RELEASED_BY, RELEASE_TO, HEARS, STANDBYS, TAKEN_BY, UPNP_ANNOTATION, UPNP_PORTS, decide, givenBack, handoffs, parseNodeList, standbysFor, takenOver, vouched} from './claims.js';
import {type Allocation, type PoolView, type ServiceView, isDhcpKey, planPools, poolFrom} from '../lib/pools.js';
import {admit, claimHolders} from '../lib/tenancy.js';
import type {AgentFlags} from '../lib/agent-flags.js';
import {LeaderElector} from './leader.js';
import {Limiter} from './limiter.js';
import {FAILING_PASSES} from './serial.js';
import {ListWatch} from './listwatch.js';
import {type Logger, describe} from './log.js';
import type {Metrics} from './metrics.js';
import {Component} from './component.js';
import {NodeAddressWatch, RefusalReporter} from './refusals.js';
import {type Clock, systemClock} from './world.js';

const SA_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
/** Requests in flight at once when creating claims. */
const CREATE_CONCURRENCY = 16;


/** The pod's namespace: POD_NAMESPACE, else the ServiceAccount's, else kube-system. */
export function podNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(SA_NAMESPACE, 'utf8').trim();
  } catch {
    return 'kube-system';
  }
}

export class Scheduler extends Component {
  private services!: ListWatch;
  private claims!: ListWatch;
  private nodes!: ListWatch;
  private pools!: ListWatch;
  /** Addresses this process allocated, when and to which Service: kept from release until their Service update is seen (10 s at most). */
  private readonly recent = new Map<string, {at: number; service: string}>();
  /** Each claim's UPnP report last told its Services (an Event when it changes). */
  private readonly upnpSaid = new Map<string, string>();
  /** Each DHCP claim's lease (address, holder, error) last told its Service. */
  private readonly leaseSaid = new Map<string, string>();
  /** The last allocation failure said for each Service (an Event is written when it changes). */
  private readonly failing = new Map<string, string>();
  private elector?: LeaderElector;
  private readonly liveness: Liveness;
  /** Cancels the periodic pass. */
  private tick?: () => void;
  /** Cancels the pass at the first node's expiry. */
  private expiry?: () => void;
  private stopped = false;
  private nodesWereConnected = false;
  /** Handoffs asked for, by claim: since when (this process's clock). */
  private readonly asking = new Map<string, number>();
  private readonly refusals: RefusalReporter;
  /** The Nodes' own addresses, which are never given to a Service. */
  private readonly nodeAddresses: NodeAddressWatch;
  /** Called when leadership is lost; the process goes on as a standby. */
  lost?: (why: string) => void;

  /** The clock is a parameter so that a test can run the scheduler on time of its own (agent/world.ts). */
  constructor(api: ApiClient, flags: AgentFlags, log: Logger, metrics: Metrics, private readonly clock: Clock = systemClock) {
    super(api, flags, log, metrics, 'scheduling', clock);
    this.liveness = new Liveness(flags.monitorMs);
    this.refusals = new RefusalReporter(this.api, log, metrics, 'extip-scheduler', 'scheduler');
    this.nodeAddresses = new NodeAddressWatch(this.api, this.policy, log, () => this.schedule());
  }

  get leading(): boolean {
    return this.elector ? this.elector.leading : true;
  }

  /** Ready once everything was listed and while its passes do not keep failing; a standby is ready too (it serves as one). */
  get ready(): boolean {
    return this.synced && this.healthy;
  }

  /** Services, claims, nodes and pools have all been listed. */
  private get synced(): boolean {
    return Boolean(this.services?.synced && this.claims?.synced && this.nodes?.synced && this.pools?.synced);
  }

  /** False after FAILING_PASSES failed passes in a row, until three lease durations pass without another: a standby may do better. */
  get healthy(): boolean {
    return this.passes.failures < FAILING_PASSES || this.clock.now() - this.passes.lastFailureAt > 3 * this.flags.leaseDurationMs;
  }

  private serviceList(): k8s.V1Service[] {
    return this.services.list() as k8s.V1Service[];
  }

  async start(): Promise<void> {
    const server = this.api.server;
    const onError = (what: string, err: unknown, retryMs: number) => {
      this.metrics.apiErrors++;
      this.log.warn(`${what} failed (${describe(err)}); waiting for ${server}; next try in ${(retryMs / 1000).toFixed(1)} s`);
    };
    this.services = new ListWatch(this.api, '/api/v1/services', 'Services', {onChange: () => this.schedule(), onError});
    this.claims = new ListWatch(this.api, CLAIMS, 'IpClaims', {onChange: () => this.schedule(), onError});
    this.nodes = new ListWatch(this.api, NODES, 'IpNodes', {
      onChange: () => {
        this.observeNodes();
        this.schedule();
      },
      onError,
      onSynced: () => {
        // A new list after the watch was away: heartbeats were not seen, not missing.
        this.liveness.reset(this.clock.now());
      },
    });
    this.pools = new ListWatch(this.api, POOLS, 'IpClaimPools', {onChange: () => this.schedule(), onError});
    void this.services.run();
    void this.claims.run();
    void this.nodes.run();
    void this.pools.run();
    void this.nodeAddresses.watch.run();
    if (this.policy.open) this.log.warn('no --allowed-cidrs: any address a Service names gets a claim, but for the ranges never allowed; declare where external IPs may come from (extip_external_cidrs, or IpClaimPools)');
    if (this.flags.leaderElect) {
      const namespace = this.flags.leaseNamespace ?? podNamespace();
      this.elector = new LeaderElector(this.api, {
        namespace,
        name: this.flags.leaseName,
        leaseDurationMs: this.flags.leaseDurationMs,
        renewDeadlineMs: this.flags.renewDeadlineMs,
        retryPeriodMs: this.flags.retryPeriodMs,
        clock: this.clock,
        eligible: () => this.healthy,
        // extip's labels: prune and uninstall find the Lease of a scheduler of any name.
        labels: {'app.kubernetes.io/managed-by': 'extip', 'app.kubernetes.io/part-of': 'externalip', 'app.kubernetes.io/component': 'scheduler'},
      }, this.log, () => {
        this.log.info(0, `leading (lease ${namespace}/${this.flags.leaseName}, identity ${this.elector!.identity})`);
        // It has watched the heartbeats as a standby: a node silent for --monitor is moved at once
        // (after recheckSilent reads its IpNode, in case the watch missed a heartbeat).
        this.schedule();
      }, (why) => {
        // Handoffs asked for as leader are asked anew if this process leads again.
        this.asking.clear();
        this.lost?.(why);
      });
      this.elector.start();
    }
    const period = Math.max(50, Math.min(1000, Math.floor(this.flags.monitorMs / 4)));
    this.tick = this.clock.every(period, () => {
      // A nodes' watch that dropped: once it is back, everybody gets a full timeout.
      if (!this.nodes.connected && this.nodesWereConnected) this.nodesWereConnected = false;
      else if (this.nodes.connected && !this.nodesWereConnected) {
        this.nodesWereConnected = true;
        this.liveness.reset(this.clock.now());
      }
      this.schedule();
    });
  }

  /**
   * Reads afresh each IpNode that holds claims and seems silent, before its
   * claims move: under load the watch can bring heartbeats seconds late (and
   * a new leader's standby watch may have gone quiet), and a read that finds
   * a newer heartbeat than the watch brought means the node is live (its
   * controller has not fenced), not lost.
   */
  private async recheckSilent(claims: readonly ClaimView[], known: ReadonlySet<string>, now: number): Promise<void> {
    const live = new Set(this.liveness.live(now));
    const silent = [...new Set(claims.map((c) => c.node))].filter((n) => n && known.has(n) && !live.has(n));
    await Promise.all(silent.map(async (name) => {
      const r = await this.api.request('GET', `${NODES}/${encodeURIComponent(name)}`, undefined, {timeoutMs: 1000}).catch(() => undefined);
      if (r?.status !== 200) return;
      if (this.liveness.observe(name, r.body.Revision, this.clock.now())) this.log.info(1, `IpNode ${name}: a heartbeat the watch had not brought yet; the node is live`);
    }));
  }

  private observeNodes(): void {
    const now = this.clock.now();
    const names: string[] = [];
    for (const n of this.nodes.list()) {
      if (n.metadata.deletionTimestamp) continue;
      names.push(n.metadata.name);
      this.liveness.observe(n.metadata.name, n.Revision, now);
    }
    this.liveness.forget(names);
  }

  schedule(): void {
    if (this.stopped) return;
    if (this.passes.busy()) return;
    void this.reconcile();
  }

  private async reconcile(): Promise<void> {
    if (!this.leading || !this.synced || !this.nodes.connected || !this.nodeAddresses.settled) return;
    await this.passes.run(async () => {
      this.observeNodes();
      const now = this.clock.now();
      const pools = this.pools.list().map(poolFrom);
      // A pool's network and broadcast addresses are never a Service's.
      this.policy.setSubnets('pools', pools.map((p) => p.cidr));
      // Who holds each address, as its claim records: another tenant's Service cannot take it.
      const holders = claimHolders(this.claims.list());
      const admitted = admit(this.serviceList(), {
        policy: this.policy,
        pools,
        holders,
        recent: new Map([...this.recent].map(([ip, r]) => [ip, r.service])),
        lbClass: this.flags.lbClass,
        dhcp: this.flags.lbDhcp,
        mask: this.flags.mask,
        mask6: this.flags.mask6,
      });
      // A LoadBalancer leased from DHCP has no pool address: its claim's holder writes what the server gave.
      await this.allocate(now, admitted.views.filter((v) => !v.dhcp), pools, holders);
      const desired = {wanted: admitted.wanted};
      this.refusals.report(admitted.invalid);
      const claims: ClaimView[] = this.claims.list().map((c) => ({
        name: c.metadata.name,
        cidr: String(c.spec?.cidr ?? ''),
        node: String(c.spec?.nodeName ?? ''),
        releaseTo: c.metadata.annotations?.[RELEASE_TO],
        releasedBy: c.metadata.annotations?.[RELEASED_BY],
        heldBy: c.metadata.annotations?.[HELD_BY],
        upOn: c.status?.upOn ?? undefined,
        standbys: parseNodeList(c.metadata.annotations?.[STANDBYS]),
        takenBy: c.metadata.annotations?.[TAKEN_BY],
      }));
      const known = new Set(this.nodes.list().map((n) => n.metadata.name));
      await this.recheckSilent(claims, known, now);
      // A node whose heartbeats do not arrive while its peers hear it has lost only the API: live.
      const hears = new Map(this.nodes.list().map((n) => [String(n.metadata.name), parseNodeList(n.metadata.annotations?.[HEARS])]));
      const live = vouched(this.liveness.live(now), hears, known);
      const at = new Date(now).toISOString();
      // First the claims whose address is already up on another node: a standby took it over while
      // the holder was lost, or a restarted controller held on to it.
      for (const m of [...takenOver(claims, live), ...givenBack(claims, live)]) {
        if (claims.find((c) => c.name === m.name)?.node === m.to) continue;
        if (!desired.wanted.has(m.cidr)) continue;
        await this.assign(m, at, desired.wanted.get(m.cidr) ?? [], now);
        Object.assign(claims.find((c) => c.name === m.name)!, {node: m.to, heldBy: undefined, takenBy: undefined, upOn: m.to});
      }
      // A takeover recorded by a node that is not live any more: forgotten, so that the claim's node
      // (which leaves a claim another node says it took) serves it again.
      for (const c of claims.filter((x) => x.takenBy && x.takenBy !== x.node && !live.includes(x.takenBy))) {
        const r = await this.api.request('PATCH', `${CLAIMS}/${c.name}`, {metadata: {annotations: {[TAKEN_BY]: null}}}, {contentType: 'application/merge-patch+json'});
        if (r.status === 200) this.log.info(1, `claim ${c.name}: ${c.takenBy} said it took it over but is not live; it stays on ${c.node || '(none)'}`);
        c.takenBy = undefined;
      }
      const dead = (node: string) => {
        if (!known.has(node)) return `node ${node} left (its IpNode is gone)`;
        const silent = this.liveness.silentFor(node, now);
        return `no heartbeat from ${node} for ${silent === undefined ? 'ever' : `${silent} ms`} (--monitor=${this.flags.monitorMs}ms)`;
      };
      // Claims go only to nodes heard from since the last reset: after the API server (or the nodes'
      // watch) was away, a node lost meanwhile is live on credit until --monitor, but given nothing.
      const d = decide(new Set(desired.wanted.keys()), claims, live, this.flags.nodefilter, dead, new Set(this.liveness.heard(now)));
      for (const cidr of d.waiting) this.warnOnce(`${cidr} waits: no live node to give it to`);
      // Claims are created many at a time: a cold start with 1,000 Services would otherwise wait on 2,000 round trips in a row.
      const creating = new Limiter(CREATE_CONCURRENCY);
      await Promise.all(d.create.map((c) => creating.run(async () => {
        const r = await this.api.request('POST', CLAIMS, {
          apiVersion: 'ipcontroller.ext/v1',
          kind: 'IpClaim',
          metadata: {name: c.name, labels: {[NODE_LABEL]: c.node}, annotations: {[STANDBYS]: standbysFor(c.name, c.node, live).join(',')}},
          spec: {cidr: c.cidr, nodeName: c.node, link: this.flags.iface},
          status: {node: c.node, since: at, services: desired.wanted.get(c.cidr) ?? []},
        });
        if (r.status === 201) {
          this.log.info(1, `claim ${c.name}: ${c.cidr} on ${c.node}`);
          const what = isDhcpKey(c.cidr) ? `a lease from the segment's DHCP server, taken by ${c.node}` : `${c.cidr} on ${c.node}`;
          for (const service of desired.wanted.get(c.cidr) ?? []) await this.event(service, 'AddressAssigned', what, at);
        }
        else if (r.status !== 409) this.log.warn(`creating claim ${c.name} for ${c.cidr}: ${r.status} ${r.body?.message ?? ''}`);
      })));
      const asked = new Set<string>();
      for (const step of handoffs(d, claims, live)) {
        if (step.kind === 'assign') await this.assign(step.move, at, desired.wanted.get(step.move.cidr) ?? [], now);
        else if (step.kind === 'ask') await this.ask(step.move);
        else if (step.kind === 'cancel') await this.cancel(step.name, step.node);
        if (step.kind === 'ask' || step.kind === 'wait') {
          asked.add(step.move.name);
          this.overdue(step.move, now);
        }
      }
      for (const name of this.asking.keys()) if (!asked.has(name)) this.asking.delete(name);
      await this.recordHolders(claims, d.remove, desired.wanted);
      await this.recordStandbys(live, d.remove);
      // The Services by key, read once for both.
      const byKey = new Map(this.serviceList().map((s) => [`${s.metadata?.namespace}/${s.metadata?.name}`, s]));
      await this.recordUpnp(desired.wanted, d.remove, at, byKey);
      await this.recordLeases(desired.wanted, d.remove, at, byKey);
      for (const name of d.remove) {
        const r = await this.api.request('DELETE', `${CLAIMS}/${name}`);
        if (r.status === 200 || r.status === 202) this.log.info(1, `claim ${name}: no Service wants it; deleted`);
        else if (r.status !== 404) this.log.warn(`deleting claim ${name}: ${r.status} ${r.body?.message ?? ''}`);
      }
      this.metrics.desired = desired.wanted.size;
      this.wakeAtExpiry();
    });
  }

  /**
   * Runs again the moment the first live node would time out, rather than at
   * the next tick: a lost node's claims move --monitor after its last
   * heartbeat, not up to a tick later.
   */
  private wakeAtExpiry(): void {
    const now = this.clock.now();
    const at = this.liveness.nextExpiry(now);
    this.expiry?.();
    this.expiry = undefined;
    if (at === undefined || this.stopped) return;
    this.expiry = this.clock.after(at - now, () => {
      this.expiry = undefined;
      this.schedule();
    });
  }

  /**
   * Assigns a claim to its new node, ending any handoff. The status records
   * when the previous node was last heard from (its last heartbeat seen, or
   * now when it let go or left), which with the new holder's `upAt` gives
   * how long the address was without a holder; each Service using the
   * address gets an Event.
   */
  private async assign(m: Move, at: string, services: readonly string[], now: number): Promise<void> {
    const current = this.claims.get(m.name);
    const silent = m.from ? this.liveness.silentFor(m.from, now) : undefined;
    // A standby that took the claim over recorded when its address came up there: the gap is from
    // the holder's last heartbeat seen to then.
    const taken = current?.metadata.annotations?.[TAKEN_BY] === m.to && current?.status?.upOn === m.to ? String(current.status.upAt ?? '') : '';
    const lastSeen = m.from && (!m.alreadyUp || taken) ? new Date(now - (silent !== undefined && (silent > this.flags.monitorMs || taken) ? silent : 0)).toISOString() : null;
    const r = await this.api.request('PATCH', `${CLAIMS}/${m.name}`, {
      metadata: {resourceVersion: current?.metadata.resourceVersion, labels: {[NODE_LABEL]: m.to}, annotations: {[RELEASE_TO]: null, [RELEASED_BY]: null, [HELD_BY]: null, [TAKEN_BY]: null}},
      spec: {nodeName: m.to},
      status: {node: m.to, since: at, previousNode: m.from || null, previousLastSeen: lastSeen, reason: m.reason, movedAt: at, upAt: taken || (m.alreadyUp ? at : null), upOn: m.alreadyUp ? m.to : null},
    }, {contentType: 'application/merge-patch+json'});
    if (r.status === 200) {
      this.log.info(0, `claim ${m.name}: ${m.cidr} moved ${m.from || '(none)'} -> ${m.to}: ${m.reason}`);
      for (const service of services) await this.event(service, m.from ? 'AddressMoved' : 'AddressAssigned', `${m.cidr} moved ${m.from || '(none)'} -> ${m.to}: ${m.reason}`, at);
    } else if (r.status !== 409 && r.status !== 404) this.log.warn(`moving claim ${m.name}: ${r.status} ${r.body?.message ?? ''}`);
  }

  /**
   * Gives addresses from the IpClaimPools to the Services that ask for one
   * and releases those no Service uses. The pool records an address before
   * the Service gets it, with the pool's resourceVersion, so two schedulers
   * (a leader change) never give one address twice; a conflict ends this
   * round, and the next one starts from fresh lists.
   */
  private async allocate(now: number, views: readonly ServiceView[], pools: readonly PoolView[], holders: ReadonlyMap<string, readonly string[]>): Promise<void> {
    // An address given moments ago is kept until a Service is seen using it (then that keeps it), or 10 s.
    const seen = new Set(views.flatMap((v) => [...v.externalIPs, ...(v.lb ? v.ingress : [])]));
    for (const [ip, r] of this.recent) if (seen.has(ip) || now - r.at > 10000) this.recent.delete(ip);
    const p = planPools(views, pools, new Map([...this.recent].map(([ip, r]) => [ip, r.service])), holders);
    const at = new Date(now).toISOString();
    const stillFailing = new Set<string>();
    // Each pool's resourceVersion as this round last wrote it, so that its allocations build on each other.
    const versions = new Map<string, string | undefined>();
    // What fails for each Service, said once (an Event when it changes): a LoadBalancer may fail for two addresses.
    const failures = new Map<string, string[]>();
    for (const a of p.allocate) if (a.kind === 'failed') failures.set(a.service.key, [...(failures.get(a.service.key) ?? []), a.reason]);
    for (const [key, reasons] of failures) {
      stillFailing.add(key);
      const reason = reasons.join('; ');
      if (this.failing.get(key) === reason) continue;
      this.failing.set(key, reason);
      this.log.warn(`no address for Service ${key}: ${reason}`);
      await this.event(key, 'AllocationFailed', `no address from the IpClaimPools: ${reason}`, at, 'Warning');
    }
    for (const a of p.allocate) {
      if (a.kind === 'failed') continue;
      // A shared address is the pool's already: the Service's status says it below.
      if (a.kind === 'share') continue;
      if (!(await this.record(a, versions))) return;
      this.recent.set(a.ip, {at: now, service: a.service.key});
      if (a.kind !== 'external-ip') continue;
      const svc = this.serviceList().find((s) => `${s.metadata?.namespace}/${s.metadata?.name}` === a.service.key);
      const path = `/api/v1/namespaces/${encodeURIComponent(a.service.namespace)}/services/${encodeURIComponent(a.service.name)}`;
      const r = await this.api.request('PATCH', path, {metadata: {resourceVersion: svc?.metadata?.resourceVersion}, spec: {externalIPs: [...a.service.externalIPs, a.ip]}}, {contentType: 'application/merge-patch+json'});
      if (r.status === 200) {
        if (!stillFailing.has(a.service.key)) this.failing.delete(a.service.key);
        this.log.info(0, `Service ${a.service.key}: ${a.ip} from IpClaimPool ${a.pool} (spec.externalIPs)`);
        await this.event(a.service.key, 'AddressAllocated', `${a.ip} from IpClaimPool ${a.pool}`, at);
      } else if (r.status !== 409 && r.status !== 404) this.log.warn(`giving ${a.ip} to Service ${a.service.key}: ${r.status} ${r.body?.message ?? ''}`);
    }
    // Each LoadBalancer's addresses in one write of its status, in the order of its families.
    for (const {service, ips} of p.ingress) {
      const path = `/api/v1/namespaces/${encodeURIComponent(service.namespace)}/services/${encodeURIComponent(service.name)}/status`;
      const r = await this.api.request('PATCH', path, {status: {loadBalancer: {ingress: ips.map((ip) => ({ip, ipMode: 'VIP'}))}}}, {contentType: 'application/merge-patch+json'});
      if (r.status !== 200) {
        if (r.status !== 404) this.log.warn(`giving ${ips.join(' ')} to Service ${service.key}: ${r.status} ${r.body?.message ?? ''}`);
        continue;
      }
      if (!stillFailing.has(service.key)) this.failing.delete(service.key);
      this.log.info(0, `Service ${service.key}: ${ips.join(' ')} (status.loadBalancer.ingress)`);
      for (const a of p.allocate) {
        if (a.service.key !== service.key) continue;
        if (a.kind === 'ingress') await this.event(service.key, 'AddressAllocated', `${a.ip} from IpClaimPool ${a.pool}`, at);
        else if (a.kind === 'share') await this.event(service.key, 'AddressShared', `${a.ip} (IpClaimPool ${a.pool}) shared with Service ${a.with}`, at);
      }
    }
    for (const key of [...this.failing.keys()]) if (!stillFailing.has(key)) this.failing.delete(key);
    for (const s of p.clearIngress) {
      const r = await this.api.request('PATCH', `/api/v1/namespaces/${encodeURIComponent(s.namespace)}/services/${encodeURIComponent(s.name)}/status`, {status: {loadBalancer: {ingress: null}}}, {contentType: 'application/merge-patch+json'});
      if (r.status === 200) this.log.info(0, `Service ${s.key} is no longer a LoadBalancer extip serves: its ingress ${s.ingress.join(' ')} cleared`);
    }
    for (const [pool, ips] of p.release) {
      const r = await this.api.request('PATCH', `${POOLS}/${encodeURIComponent(pool)}`, {
        metadata: {resourceVersion: versions.has(pool) ? versions.get(pool) : this.pools.get(pool)?.metadata.resourceVersion},
        spec: {allocated: Object.fromEntries(ips.map((ip) => [ip, null]))},
      }, {contentType: 'application/merge-patch+json'});
      if (r.status === 200) this.log.info(0, `IpClaimPool ${pool}: released ${ips.join(' ')} (no Service uses them)`);
      else if (r.status !== 409 && r.status !== 404) this.log.warn(`releasing ${ips.join(' ')} in IpClaimPool ${pool}: ${r.status} ${r.body?.message ?? ''}`);
    }
  }

  /**
   * Records on each claim that stays the Services that hold its address
   * (`status.services`, the holder first), when that changed: the record by
   * which another namespace's Service is refused the address.
   */
  private async recordHolders(claims: readonly ClaimView[], removed: readonly string[], wanted: ReadonlyMap<string, string[]>): Promise<void> {
    const gone = new Set(removed);
    for (const c of claims) {
      const users = wanted.get(c.cidr);
      if (!users || gone.has(c.name)) continue;
      const recorded = this.claims.get(c.name)?.status?.services;
      if (Array.isArray(recorded) && recorded.join('\n') === users.join('\n')) continue;
      const r = await this.api.request('PATCH', `${CLAIMS}/${c.name}`, {status: {services: users}}, {contentType: 'application/merge-patch+json'});
      if (r.status !== 200 && r.status !== 404) this.warnOnce(`cannot record on IpClaim ${c.name} which Services hold it (${r.status} ${r.body?.message ?? ''})`);
    }
  }

  /**
   * Writes each claim's standbys (STANDBYS) where they changed: the live
   * nodes other than its holder, in the claim's own order. The controllers
   * read them when the holder is lost, so they are written ahead of time,
   * while the API server answers.
   */
  private async recordStandbys(live: readonly string[], removed: readonly string[]): Promise<void> {
    const gone = new Set(removed);
    const writing = new Limiter(CREATE_CONCURRENCY);
    await Promise.all(this.claims.list().map((c) => writing.run(async () => {
      const node = String(c.spec?.nodeName ?? '');
      if (!node || gone.has(c.metadata.name) || c.metadata.deletionTimestamp) return;
      const want = standbysFor(c.metadata.name, node, live).join(',');
      if ((c.metadata.annotations?.[STANDBYS] ?? '') === want) return;
      const r = await this.api.request('PATCH', `${CLAIMS}/${c.metadata.name}`, {metadata: {annotations: {[STANDBYS]: want || null}}}, {contentType: 'application/merge-patch+json'});
      if (r.status !== 200 && r.status !== 404) this.warnOnce(`cannot record the standbys of IpClaim ${c.metadata.name} (${r.status} ${r.body?.message ?? ''})`);
    })));
  }

  /**
   * Writes on each claim the ports its holder maps on the UPnP gateway
   * (UPNP_PORTS): the TCP and UDP ports of the Services using its address
   * that ask for it, with `--upnp`; none without. And tells those Services,
   * by an Event, what their holder's last report (`status.upnp`) says, when
   * it changes: the mappings made, or the gateway's error.
   */
  private async recordUpnp(wanted: ReadonlyMap<string, string[]>, removed: readonly string[], at: string, services: ReadonlyMap<string, k8s.V1Service>): Promise<void> {
    const gone = new Set(removed);
    for (const c of this.claims.list()) {
      const name = String(c.metadata.name);
      if (gone.has(name) || c.metadata.deletionTimestamp) continue;
      const users = wanted.get(String(c.spec?.cidr ?? '')) ?? [];
      const ports = new Set<string>();
      if (this.flags.upnp) {
        for (const key of users) {
          const svc = services.get(key);
          if (svc?.metadata?.annotations?.[UPNP_ANNOTATION] !== 'true') continue;
          for (const p of svc.spec?.ports ?? []) if ((p.protocol ?? 'TCP') !== 'SCTP') ports.add(`${p.protocol ?? 'TCP'}/${p.port}`);
        }
      }
      const want = [...ports].sort().join(',');
      if ((c.metadata.annotations?.[UPNP_PORTS] ?? '') !== want) {
        const r = await this.api.request('PATCH', `${CLAIMS}/${name}`, {metadata: {annotations: {[UPNP_PORTS]: want || null}}}, {contentType: 'application/merge-patch+json'});
        if (r.status !== 200 && r.status !== 404) this.warnOnce(`cannot record the UPnP ports of IpClaim ${name} (${r.status} ${r.body?.message ?? ''})`);
      }
      const report = c.status?.upnp;
      if (!report || !want) continue;
      const said = JSON.stringify([report.node, report.external, report.mapped, report.error]);
      if (this.upnpSaid.get(name) === said) continue;
      this.upnpSaid.set(name, said);
      const ip = String(c.spec?.cidr ?? '').split('/')[0];
      for (const key of users) {
        if (report.error) await this.event(key, 'UPnPMappingFailed', `the UPnP gateway${report.gateway ? ` ${report.gateway}` : ''} refused or did not answer ${report.node}: ${report.error}`, at, 'Warning');
        else if (report.mapped?.length) await this.event(key, 'UPnPMapped', `${(report.mapped as string[]).map((m) => `${report.external ?? '?'}:${m.split('/')[1]} ${m.split('/')[0]}`).join(', ')} -> ${ip} (by ${report.node})`, at);
      }
    }
    for (const name of [...this.upnpSaid.keys()]) if (!this.claims.get(name)) this.upnpSaid.delete(name);
  }

  /**
   * Gives each DHCP-leased LoadBalancer the address its claim's holder
   * leased (`status.lease`, written by the holder) as its ingress, and
   * tells the Service by an Event when the lease is got or moves, and when
   * the holder finds no server or the lease is refused (`status.leaseError`).
   */
  private async recordLeases(wanted: ReadonlyMap<string, string[]>, removed: readonly string[], at: string, services: ReadonlyMap<string, k8s.V1Service>): Promise<void> {
    const gone = new Set(removed);
    const seen = new Set<string>();
    for (const c of this.claims.list()) {
      const name = String(c.metadata.name);
      const key = String(c.spec?.cidr ?? '');
      if (!isDhcpKey(key) || gone.has(name) || c.metadata.deletionTimestamp) continue;
      seen.add(name);
      const lease = c.status?.lease as {ip?: string; server?: string; mac?: string} | undefined;
      const error = c.status?.leaseError as string | undefined;
      for (const service of wanted.get(key) ?? []) {
        const svc = services.get(service);
        if (!svc) continue;
        const ingress = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter(Boolean);
        if (lease?.ip && (ingress.length !== 1 || ingress[0] !== lease.ip)) {
          const path = `/api/v1/namespaces/${encodeURIComponent(svc.metadata!.namespace!)}/services/${encodeURIComponent(svc.metadata!.name!)}/status`;
          const r = await this.api.request('PATCH', path, {status: {loadBalancer: {ingress: [{ip: lease.ip, ipMode: 'VIP'}]}}}, {contentType: 'application/merge-patch+json'});
          if (r.status === 200) this.log.info(0, `Service ${service}: ${lease.ip} leased from ${lease.server ?? 'the DHCP server'} (status.loadBalancer.ingress)`);
          else if (r.status !== 404) this.log.warn(`giving ${lease.ip} to Service ${service}: ${r.status} ${r.body?.message ?? ''}`);
        }
      }
      const said = JSON.stringify([lease?.ip, c.status?.upOn, error]);
      if (this.leaseSaid.get(name) === said) continue;
      this.leaseSaid.set(name, said);
      for (const service of wanted.get(key) ?? []) {
        if (error) await this.event(service, 'LeaseFailed', `${c.status?.upOn ?? c.spec?.nodeName}: ${error}`, at, 'Warning');
        else if (lease?.ip) await this.event(service, 'AddressLeased', `${lease.ip} leased from ${lease.server ?? 'the DHCP server'} by ${c.status?.upOn ?? c.spec?.nodeName} (MAC ${lease.mac ?? '?'})`, at);
      }
    }
    for (const name of [...this.leaseSaid.keys()]) if (!seen.has(name)) this.leaseSaid.delete(name);
  }

  /** Records an allocation in its pool; false when the pool changed meanwhile (the round ends). */
  private async record(a: Exclude<Allocation, {kind: 'failed'}>, versions: Map<string, string | undefined>): Promise<boolean> {
    const resourceVersion = versions.has(a.pool) ? versions.get(a.pool) : this.pools.get(a.pool)?.metadata.resourceVersion;
    const r = await this.api.request('PATCH', `${POOLS}/${encodeURIComponent(a.pool)}`, {
      metadata: {resourceVersion},
      spec: {allocated: {[a.ip]: allocationValue(a.ip, this.flags.mask, this.flags.mask6)}},
    }, {contentType: 'application/merge-patch+json'});
    if (r.status === 200) {
      versions.set(a.pool, r.body?.metadata?.resourceVersion);
      return true;
    }
    if (r.status !== 409) this.log.warn(`recording ${a.ip} in IpClaimPool ${a.pool}: ${r.status} ${r.body?.message ?? ''}`);
    return false;
  }

  /** An Event on a Service ("namespace/name"); failing to write one is logged, never fatal. */
  private async event(service: string, reason: string, message: string, at: string, type: 'Normal' | 'Warning' = 'Normal'): Promise<void> {
    const [namespace, name] = service.split('/');
    const r = await this.api.request('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {generateName: `${name}.`, namespace},
      involvedObject: {apiVersion: 'v1', kind: 'Service', namespace, name},
      reason,
      message,
      type,
      source: {component: 'extip-scheduler'},
      reportingComponent: 'extip-scheduler',
      reportingInstance: this.elector?.identity ?? 'scheduler',
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    }).catch((err: Error) => ({status: 0, body: {message: err.message}}));
    if (r.status !== 201) this.warnOnce(`cannot write Events on Services (${r.status} ${r.body?.message ?? ''}); moves are still in each IpClaim's status`);
  }

  /** Asks the live holder of a claim to take its address down before the claim moves. */
  private async ask(m: Move): Promise<void> {
    const current = this.claims.get(m.name);
    const r = await this.api.request('PATCH', `${CLAIMS}/${m.name}`, {
      metadata: {resourceVersion: current?.metadata.resourceVersion, annotations: {[RELEASE_TO]: m.to, [RELEASED_BY]: null}},
    }, {contentType: 'application/merge-patch+json'});
    if (r.status === 200) this.log.info(1, `claim ${m.name}: asked ${m.from} to let go of ${m.cidr} for ${m.to} (${m.reason})`);
    else if (r.status !== 409 && r.status !== 404) this.log.warn(`asking ${m.from} to let go of claim ${m.name}: ${r.status} ${r.body?.message ?? ''}`);
  }

  /** Ends a handoff the decision no longer wants: the holder brings the address back up. */
  private async cancel(name: string, node: string): Promise<void> {
    const current = this.claims.get(name);
    const r = await this.api.request('PATCH', `${CLAIMS}/${name}`, {
      metadata: {resourceVersion: current?.metadata.resourceVersion, annotations: {[RELEASE_TO]: null, [RELEASED_BY]: null}},
    }, {contentType: 'application/merge-patch+json'});
    if (r.status === 200) this.log.info(1, `claim ${name}: handoff cancelled; it stays on ${node}`);
    else if (r.status !== 409 && r.status !== 404) this.log.warn(`cancelling the handoff of claim ${name}: ${r.status} ${r.body?.message ?? ''}`);
  }

  /**
   * Says once when a live holder has not let go for a while: its controller
   * may be one that takes no part in handoffs. The claim then stays where it
   * is, which is safe; only the balance waits.
   */
  private overdue(m: Move, now: number): void {
    const since = this.asking.get(m.name) ?? now;
    this.asking.set(m.name, since);
    const limit = Math.max(10000, 5 * this.flags.monitorMs);
    if (now - since >= limit) this.warnOnce(`claim ${m.name}: ${m.from} has not let go of ${m.cidr} for ${m.to} within ${limit / 1000} s; it stays on ${m.from} (a claimcontroller that predates handoffs never lets go; its claims move only when it stops)`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.tick?.();
    this.expiry?.();
    await this.passes.idle(5);
    await this.elector?.stop();
    this.services?.stop();
    this.claims?.stop();
    this.nodes?.stop();
    this.pools?.stop();
    this.nodeAddresses.watch.stop();
  }
}

