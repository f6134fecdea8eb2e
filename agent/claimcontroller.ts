/**
 * `ipmanager claimcontroller`: claims mode's agent on a node. It heartbeats
 * its IpNode (named `--hostname`) every `--hb` by writing a new `Revision`,
 * and brings up on `--iface` exactly the IpClaims assigned to that node (label
 * ipnode=<hostname>), each with its own prefix; an address whose claim went
 * elsewhere comes down. A claim the scheduler asks it to let go of (a
 * handoff between live nodes) comes down too, and once it is off the
 * interface the controller confirms on the claim; only then does the claim
 * move.
 *
 * Self-fencing: when no heartbeat has succeeded for `fenceAfterMs(--hb,
 * --monitor)` (counted from when the last good one was sent), it takes its
 * claims' addresses down before the scheduler may give them to another node,
 * and brings nothing up again until a heartbeat succeeds and the claims were
 * listed afresh after it. SIGTERM (a drain, a rolling update) withdraws the
 * addresses and then deletes the IpNode: the scheduler moves the claims at
 * once instead of waiting out the heartbeat timeout. A crash (kill -9) leaves
 * the addresses up; the restarted controller takes them into its record
 * without taking them down.
 *
 * The link of `--iface`: when it goes down (a cable, a switch port, a bond
 * without members) while the API is still reached another way, the node
 * cannot serve its addresses but its heartbeats would say it is fine. So the
 * controller fences itself as above, stops heartbeating and deletes its
 * IpNode: the scheduler moves the claims at once. When the link is back it
 * heartbeats again and serves what the scheduler gives it.
 *
 * With `--peer-port` the controllers also watch each other without the API
 * server (agent/peers.ts, SWIM over UDP). Then a controller whose heartbeats
 * fail fences only when it hears none of its peers either: the API server
 * away for every node takes no address down. And a claim whose holder the
 * group finds dead is brought up by the first of its standbys (STANDBYS,
 * written by the scheduler ahead of time) that the group holds live, after
 * the usual ARP probe, with no round trip to the API; that standby keeps it
 * until the scheduler assigns the claim anew, and says so on the claim
 * (TAKEN_BY) as soon as the API answers.
 */
import type {ApiClient, Json} from './api.js';
import {isIPv4} from 'node:net';
import {type HostAddress, Ownership, interfaceSubnets, operstate} from './addresses.js';
import {canonicalIp} from '../lib/ipnet.js';
import {CLAIMS, HEARS, HELD_BY, NODES, NODE_LABEL, RELEASED_BY, RELEASE_TO, TAKEN_BY, UPNP_PORTS, claimName, fenceAfterMs} from './claims.js';
import {type UpnpWant, UpnpKeeper, parsePorts} from './upnpkeeper.js';
import {type FenceEffect, type FenceEvent, type FenceState, type HolderSeen, CONFLICT_RETRY_MS, TAKEOVER_HEARD_MS, beating, duty, fenceStep, seeMoves, serves, startFence, takeovers, wouldTakeOver} from './holding.js';
import {PEER_ANNOTATION} from './peers.js';
import {type ClaimWorld, type Clock, type Host, type LeaseTaker, type PeerGroup, realWorld} from './world.js';
import type {Lease} from './dhcp.js';
import {dhcpService, isDhcpKey} from '../lib/pools.js';
import type {AgentFlags} from '../lib/agent-flags.js';
import {ListWatch} from './listwatch.js';
import {type Logger, describe} from './log.js';
import type {Metrics} from './metrics.js';
import {Component} from './component.js';
import {type Desired, plan} from './naive.js';
import {RULES} from '../lib/policy.js';
import {FAILING_PASSES} from './serial.js';

/**
 * Whether an interface's link is down, from its operstate: `down`,
 * `lowerlayerdown` (a veth whose peer, a VLAN whose parent, a bond without
 * members) or gone. `unknown` counts as up: loopback, dummy and some
 * drivers never report more.
 */
export async function linkDown(iface: string, sys = '/sys/class/net'): Promise<string | undefined> {
  return downState(await operstate(iface, sys));
}

/** An operstate that means the link is down, or undefined. */
export function downState(state: string): string | undefined {
  return ['down', 'lowerlayerdown', 'notpresent', 'gone'].includes(state) ? state : undefined;
}

/** How long a restarted controller keeps an address whose claim went elsewhere, waiting for the claim to come back. */
const HOLD_MS = 5000;

/** A claim's address and prefix, canonical as the host lists them; undefined when it is not one. */
function claimCidr(c: Json): string | undefined {
  const [ip, prefix] = String(c.spec?.cidr ?? '').split('/');
  const canon = canonicalIp(ip ?? '');
  const bits = Number(prefix);
  if ('refused' in canon || !Number.isInteger(bits) || bits < 1 || bits > (canon.family === 4 ? 32 : 128)) return undefined;
  return `${canon.ip}/${bits}`;
}

/** How often the IpNodes are read for the members' addresses (and until the first read succeeds). */
const LEARN_PEERS_MS = 30_000;
const LEARN_PEERS_RETRY_MS = 2000;
/** IpNodes a page when they are read. */
const LEARN_PEERS_PAGE = 500;

/**
 * How long a probe made while a holder was suspect stands in for the probe
 * before a takeover. Within it only the suspect could bring the address up
 * again, and it does so only after it refuted the suspicion (then nothing is
 * taken over) or after its fence ended (a heartbeat and a list, later than
 * this). A suspicion lasts 200 to 350 ms; the probe takes --dad-wait.
 */
const PREPROBE_FRESH_MS = 500;

/** When to look again after adding IPv6 addresses: the kernel's duplicate address detection takes about a second. */
const DAD6_CHECK_MS = 1500;

export class ClaimController extends Component {
  private claims!: ListWatch;
  private readonly node: string;
  private readonly fenceMs: number;
  /** The fence's state machine (agent/holding.ts): whether the addresses may be up, and since when. */
  private fence: FenceState;
  /** Why the last heartbeat failed, for the log. */
  private beatError = '';
  private revision = 0;
  /**
   * A pass brought the claims up (or took them into this owner's record)
   * since the fence last ended: only then is the controller ready, so that a
   * rollout that waits on it, and then stops another workload's agent on the
   * node, never leaves an address without an owner.
   */
  private served = false;
  /** Cancels the heartbeat, watchdog and resync timers. */
  private timers: Array<() => void> = [];
  private stopped = false;
  /** Addresses another host on the link answers for: by whom, and when that was last seen. */
  private readonly conflicts = new Map<string, {by: string; at: number}>();
  private recheck?: () => void;
  /** Claims given to another node while their address is still up here (this controller crashed): since when, by claim. */
  private readonly holding = new Map<string, number>();
  private checkingLink = false;
  /** The controllers' membership (`--peer-port`), and the timer that reads the IpNodes (where each listens) again. */
  private peers?: PeerGroup;
  private learning?: () => void;
  /** Claims this node took over as their first live standby: the holder they were taken from, by claim. */
  private taken = new Map<string, string>();
  /** Each claim's holder as last seen, and when it moved there (agent/holding.ts's seeMoves). */
  private holders: HolderSeen = new Map();
  /** Claims whose takeover is being recorded on the API (TAKEN_BY), so that one write is in flight at a time. */
  private readonly recording = new Set<string>();
  /** Probes made while a holder was suspect, of the addresses this node would take over: when each ended, whether nobody answered, and of whom. */
  private readonly preProbes = new Map<string, {at: number; free: boolean; suspect: string}>();

  private readonly clock: Clock;
  private readonly host: Host;
  /** The UPnP mappings of the claims held here that ask for them; made at the first such claim. */
  private upnp?: UpnpKeeper;
  /** The DHCP leases taken here, by claim key (`dhcp:namespace/name`): the claim, and whether its lease was refused. */
  private readonly leases = new Map<string, {claim: string; taker: LeaseTaker; refused?: string}>();

  /**
   * hostname: the node this controller serves (its IpNode's name). world:
   * the host, the membership and the clock (agent/world.ts); the owner
   * `owned` must act on the same host.
   */
  constructor(api: ApiClient, flags: AgentFlags, private readonly owned: Ownership, log: Logger, metrics: Metrics, hostname: string, private readonly world: ClaimWorld = realWorld) {
    super(api, flags, log, metrics, 'reconcile', world.clock);
    this.node = hostname;
    this.fenceMs = fenceAfterMs(flags.hbMs, flags.monitorMs);
    this.clock = world.clock;
    this.host = world.host;
    this.fence = startFence(this.clock.now());
  }

  get ready(): boolean {
    return Boolean(serves(this.fence) && this.served && this.passes.failures < FAILING_PASSES && this.claims?.synced && this.claims.connected && beating(this.fence, {now: this.clock.now(), fenceMs: this.fenceMs}));
  }

  async start(): Promise<void> {
    await this.owned.load();
    const why = await this.host.promoteSecondaries(this.flags.iface);
    if (why) this.log.warn(`cannot turn on promote_secondaries for ${this.flags.iface} (${why}); addresses that a removal takes along are put back instead`);
    if (this.onLink) {
      const notify = await this.host.ndiscNotify(this.flags.iface);
      if (notify) this.log.warn(`cannot turn on ndisc_notify for ${this.flags.iface} (${notify}); IPv6 addresses come up without an unsolicited neighbour advertisement`);
    }
    // Until the first heartbeat succeeds the controller counts as fenced: it brings nothing up.
    this.fence = startFence(this.clock.now());
    if (this.flags.peerPort && this.flags.peerAddress) {
      const peers = this.world.peers({
        name: this.node,
        ip: this.flags.peerAddress,
        port: this.flags.peerPort,
        keysFile: this.flags.peerKeys,
        log: this.log,
        onChange: (name, state) => {
          this.log.info(1, `peer ${name} is ${state}`);
          if (state === 'suspect') void this.preProbe(name);
          this.schedule();
        },
      });
      await peers.start().catch((err: Error) => {
        throw new Error(`cannot start the controllers' membership on ${peers.address} (${describe(err)}); check --peer-port, --peer-address and --peer-keys`);
      });
      this.peers = peers;
      void this.learnPeers();
      this.log.info(0, `membership on ${peers.address} (UDP)`);
    }
    // With a membership the controller watches every claim: it is a standby of others'.
    this.claims = new ListWatch(this.api, CLAIMS, 'IpClaims', {
      onChange: () => this.schedule(),
      onSynced: () => this.dispatch({type: 'claims-listed'}),
      onError: (what, err, retryMs) => {
        this.metrics.apiErrors++;
        this.log.warn(`${what} failed (${describe(err)}); waiting for ${this.api.server}: keeping the current addresses while heartbeats succeed; next try in ${(retryMs / 1000).toFixed(1)} s`);
      },
    }, this.peers ? undefined : `${NODE_LABEL}=${this.node}`);
    void this.claims.run();
    // A restart that finds addresses still up whose claims went elsewhere asks for them back before
    // its first heartbeat, so that the scheduler sees the request when it sees this node live again.
    await this.stillHeld(await this.host.addresses(), new Map(), []).catch((err: Error) => this.log.warn(`checking for addresses still up here failed (${describe(err)})`));
    void this.heartbeat();
    this.timers = [
      this.clock.every(this.flags.hbMs, () => void this.heartbeat()),
      this.clock.every(Math.max(20, Math.min(100, Math.floor(this.flags.hbMs / 4))), () => {
        void this.followLink();
        this.dispatch({type: 'tick'});
      }),
      this.clock.every(Math.min(Math.max(this.flags.resyncMs, 100), 10000), () => this.schedule()),
    ];
  }

  /**
   * The members, from the IpNodes that say where they listen: read (in
   * pages) every LEARN_PEERS_MS, not watched, since a watch would bring every node's every
   * heartbeat to every node. A node that joins meanwhile is taken in at its
   * first message (the membership takes in any keyed sender).
   */
  private async learnPeers(): Promise<void> {
    if (!this.peers || this.stopped) return;
    // In pages, as the watches list: a cluster of thousands of nodes is not one response.
    let items: Json[] | undefined = [];
    let token = '';
    do {
      const r = await this.api.request('GET', `${NODES}?limit=${LEARN_PEERS_PAGE}${token ? `&continue=${encodeURIComponent(token)}` : ''}`, undefined, {timeoutMs: 5000}).catch(() => undefined);
      if (r?.status !== 200) {
        items = undefined;
        break;
      }
      items.push(...((r.body.items ?? []) as Json[]));
      token = r.body.metadata?.continue ?? '';
    } while (token && !this.stopped);
    if (this.stopped) return;
    let found = 0;
    if (items) {
      const members = items
        .map((n) => ({name: String(n.metadata.name), address: String(n.metadata.annotations?.[PEER_ANNOTATION] ?? '')}))
        .filter((m) => m.address && m.name !== this.node);
      this.peers.setMembers(members);
      found = members.length;
    }
    // Soon again while nothing was found (the API away, or the others not registered yet).
    this.learning = this.clock.after(found ? LEARN_PEERS_MS : LEARN_PEERS_RETRY_MS, () => void this.learnPeers());
  }

  private async heartbeat(): Promise<void> {
    // A node whose link is down must look gone to the scheduler: a heartbeat would re-create its IpNode.
    if (this.stopped || this.linkLost) return;
    const sent = this.clock.now();
    this.revision = Math.max(this.revision + 1, sent);
    // A heartbeat that cannot finish before the fence deadline is no use: it counts as failed.
    const timeoutMs = Math.max(100, Math.min(this.flags.hbMs * 2, this.fenceMs));
    try {
      // Where this node's membership listens, and whom it hears: the scheduler keeps a node its peers hear live.
      const hears = this.peers?.view().filter((m) => m.name !== this.node && m.state === 'alive').map((m) => m.name).sort().join(',');
      const metadata = this.peers ? {annotations: {[PEER_ANNOTATION]: this.peers.address, [HEARS]: hears || null}} : undefined;
      let r = await this.api.request('PATCH', `${NODES}/${encodeURIComponent(this.node)}`, {metadata, Revision: this.revision}, {timeoutMs, contentType: 'application/merge-patch+json'});
      // The link went down meanwhile and the IpNode was deleted for it: not to be re-created.
      if (this.linkLost) return;
      if (r.status === 404) {
        r = await this.api.request('POST', NODES, {apiVersion: 'ipcontroller.ext/v1', kind: 'IpNode', metadata: {name: this.node, annotations: this.peers ? {[PEER_ANNOTATION]: this.peers.address, ...(hears ? {[HEARS]: hears} : {})} : undefined}, Revision: this.revision}, {timeoutMs});
        if (r.status === 201) this.log.info(0, `registered IpNode ${this.node}`);
      }
      if (r.status !== 200 && r.status !== 201) throw new Error(`${r.status} ${r.body?.message ?? ''}`);
      this.dispatch({type: 'beat-ok', sentAt: sent});
    } catch (err) {
      this.metrics.apiErrors++;
      this.beatError = describe(err as Error);
      this.dispatch({type: 'beat-failed'});
    }
  }

  /** Hands an event to the fence's state machine and carries out what it says. */
  private dispatch(event: FenceEvent): void {
    const before = this.fence;
    const now = this.clock.now();
    const step = fenceStep(before, event, {
      now,
      fenceMs: this.fenceMs,
      peersHeard: this.peers && !this.peers.isolated(this.fenceMs),
      listedAt: this.claims?.synced ? this.claims.listedAt : undefined,
    });
    this.fence = step.state;
    if (step.effects.length) void this.carryOut(step.effects, before, event).catch((err: Error) => this.log.warn(`${event.type}: ${describe(err)}`));
  }

  private async carryOut(effects: readonly FenceEffect[], before: FenceState, event: FenceEvent): Promise<void> {
    let removed: string[] = [];
    let undeleted: string | undefined;
    for (const e of effects) {
      switch (e.do) {
        case 'fence':
          removed = await this.fenceNow();
          break;
        case 'pause-peers':
          this.peers?.pause();
          break;
        case 'resume-peers':
          this.peers?.resume();
          break;
        case 'delete-ipnode':
          undeleted = await this.deleteIpNode();
          break;
        case 'heartbeat':
          void this.heartbeat();
          break;
        case 'list-claims':
          this.claims.hurry();
          break;
        case 'serve':
          this.schedule();
          break;
        case 'note':
          this.note(e.what, before, event, removed, undeleted);
          break;
      }
    }
  }

  /** Says in the log what the fence did. */
  private note(what: Extract<FenceEffect, {do: 'note'}>['what'], before: FenceState, event: FenceEvent, removed: readonly string[], undeleted: string | undefined): void {
    const silent = this.clock.now() - before.lastBeat;
    const downed = removed.join(' ') || 'nothing';
    switch (what) {
      case 'beat-failing':
        return this.log.warn(`heartbeat of IpNode ${this.node} failed (${this.beatError}); the addresses come down if none succeeds within ${this.fenceMs} ms of the last good one`);
      case 'beat-back':
        return this.log.info(0, `heartbeat of IpNode ${this.node} succeeds again`);
      case 'kept-without-api':
        return this.log.warn(`no heartbeat succeeded for ${silent} ms, but peers answer: the API server is away, and the addresses stay up; they come down if the peers go silent too`);
      case 'self-fenced':
        return this.log.warn(`self-fenced: no heartbeat succeeded for ${silent} ms (limit ${this.fenceMs} ms, before the scheduler's --monitor=${this.flags.monitorMs}ms): took down ${downed}`);
      case 'serving':
        return this.log.info(0, `serving the claims of ${this.node} (heartbeat and claims current)`);
      case 'link-lost': {
        const moved = undeleted === undefined ? 'IpNode deleted: its claims move now' : `could not delete the IpNode (${undeleted}): its claims move after the heartbeat timeout`;
        const state = event.type === 'link-down' ? event.state : 'down';
        return this.log.warn(`the link of ${this.flags.iface} is ${state}: took down ${downed}; ${moved}; no heartbeat until it is back`);
      }
      case 'link-back':
        return this.log.info(0, `the link of ${this.flags.iface} is up again: heartbeating, and serving the claims assigned to ${this.node} once they are listed afresh`);
    }
  }

  /**
   * Follows the interface's link: lost, the node fences itself and deletes
   * its IpNode (the scheduler moves its claims at once); back, it heartbeats
   * again and, once the claims are listed afresh, serves what is assigned.
   */
  private async followLink(): Promise<void> {
    if (this.stopped || !this.onLink || this.checkingLink) return;
    this.checkingLink = true;
    try {
      const down = downState(await this.host.linkState(this.flags.iface));
      this.dispatch(down ? {type: 'link-down', state: down} : {type: 'link-up'});
    } finally {
      this.checkingLink = false;
    }
  }

  /**
   * Carries out a fence the state machine began: serves nothing until it
   * ends, reads the claims anew, and takes down this owner's addresses;
   * returns what came down.
   */
  private async fenceNow(): Promise<string[]> {
    this.served = false;
    this.taken.clear();
    this.claims.relist();
    await this.passes.idle(2);
    return this.withdraw();
  }

  schedule(): void {
    if (this.stopped) return;
    if (this.passes.busy()) return;
    void this.reconcile();
  }

  /**
   * The claims' addresses to have up, and the claims the scheduler asked this
   * node to let go of (their addresses come down, then it confirms).
   */
  private desired(): Desired & {releasing: Array<{name: string; cidr: string; done: boolean}>; leases: Map<string, string>} {
    const wanted = new Map<string, string[]>();
    const leases = new Map<string, string>();
    const invalid: Desired['invalid'] = [];
    const releasing: Array<{name: string; cidr: string; done: boolean}> = [];
    const takes = this.takeovers();
    for (const c of this.claims.list()) {
      const annotations = c.metadata.annotations ?? {};
      const what = duty({name: c.metadata.name, holder: String(c.spec?.nodeName ?? ''), deleting: Boolean(c.metadata.deletionTimestamp), takenBy: annotations[TAKEN_BY], releaseTo: annotations[RELEASE_TO]}, this.node, takes);
      if (what === 'none') continue;
      // A DHCP claim: its lease is taken here (keepLeases), on a link of its own, not an address of the interface.
      const key = String(c.spec?.cidr ?? '');
      if (isDhcpKey(key)) {
        if (what === 'release') releasing.push({name: c.metadata.name, cidr: key, done: annotations[RELEASED_BY] === this.node});
        else leases.set(key, c.metadata.name);
        continue;
      }
      const cidr = claimCidr(c);
      if (!cidr) {
        invalid.push({service: `IpClaim ${c.metadata.name}`, value: String(c.spec?.cidr), rule: 'not-an-ip', reason: 'not an address with a prefix length'});
        continue;
      }
      // The scheduler places only what the policy allows; a claim written by hand is checked here too.
      const [ip, prefix] = cidr.split('/');
      const no = this.policy.check(ip, undefined, Number(prefix));
      if (no) {
        invalid.push({service: `IpClaim ${c.metadata.name}`, value: String(c.spec?.cidr), ...no});
        continue;
      }
      if (what === 'release') releasing.push({name: c.metadata.name, cidr, done: annotations[RELEASED_BY] === this.node});
      else wanted.set(cidr, [`IpClaim ${c.metadata.name}`]);
    }
    return {wanted, invalid, releasing, leases};
  }

  /** The claims this node serves in place of a holder the group found dead (agent/holding.ts's takeovers). */
  private takeovers(): Set<string> {
    if (!this.peers) return new Set();
    const peers = this.peers;
    const listed = this.claims.list().map((c) => ({name: String(c.metadata.name), holder: String(c.spec?.nodeName ?? ''), cidr: claimCidr(c) ?? (isDhcpKey(String(c.spec?.cidr ?? '')) ? String(c.spec.cidr) : undefined)}));
    this.holders = seeMoves(this.holders, listed, this.clock.now());
    const claims = listed.map((c) => ({...c, movedAt: this.holders.get(c.name)?.at}));
    const t = takeovers(this.taken, claims, {
      self: this.node,
      members: peers.view().map((m) => m.name),
      state: (n) => peers.state(n),
      hearing: !peers.isolated(TAKEOVER_HEARD_MS) || beating(this.fence, {now: this.clock.now(), fenceMs: this.fenceMs}),
      upHere: (cidr) => this.owned.owns(cidr) || this.leases.has(cidr),
      deadSince: (n) => peers.since(n),
    });
    this.taken = t.taken;
    for (const c of t.began) this.log.info(0, `taking over IpClaim ${c.name} (${c.cidr}): ${c.holder} stopped answering its peers, and ${this.node} is its first live standby`);
    return t.serve;
  }

  /**
   * Of this owner's addresses up on the interface that no claim of this node
   * wants, those to keep up: their claim went to another node that has not
   * brought the address up (its probe found it answered here), because this
   * controller crashed, or was late, while its node was fine. Each is kept,
   * and its claim marked HELD_BY this node so that the scheduler gives it
   * back, for at most HOLD_MS; then it comes down as usual. Only where
   * addresses are probed before they come up, which keeps the other node off.
   * This controller watches only its own claims: the others are listed once.
   */
  private async stillHeld(host: readonly HostAddress[], wanted: ReadonlyMap<string, unknown>, releasing: ReadonlyArray<{cidr: string}>): Promise<Map<string, string>> {
    const keep = new Map<string, string>();
    if (!this.onLink || this.flags.dadWaitMs === 0) return keep;
    const letGo = new Set(releasing.map((r) => r.cidr));
    const candidates = host
      .filter((a) => a.iface === this.flags.iface && !a.tentative)
      .map((a) => `${a.ip}/${a.prefix}`)
      .filter((cidr) => this.owned.owns(cidr) && !wanted.has(cidr) && !letGo.has(cidr));
    if (!candidates.length) return keep;
    // One list of every claim, not a read per address: a restart may find hundreds still up.
    const listed = await this.api.request('GET', CLAIMS, undefined, {timeoutMs: 5000}).catch(() => undefined);
    // The API server does not answer: nothing is known, and the addresses stay as the plan has them.
    if (listed?.status !== 200) return keep;
    const byName = new Map<string, Json>(((listed.body.items ?? []) as Json[]).map((c) => [c.metadata.name, c]));
    const now = this.clock.now();
    const seen = new Set<string>();
    for (const cidr of candidates) {
      const name = claimName(cidr);
      const c = byName.get(name);
      const to = c?.spec?.nodeName;
      if (!c || !to || c.metadata.deletionTimestamp || claimCidr(c) !== cidr) continue;
      // Given back (or assigned) here already, and this node's watch has not caught up: it stays.
      if (to === this.node) {
        if (!c.metadata.annotations?.[RELEASE_TO]) keep.set(cidr, name);
        continue;
      }
      if (c.status?.upOn === to) continue;
      seen.add(name);
      const since = this.holding.get(name);
      if (since === undefined) {
        this.holding.set(name, now);
        this.log.info(0, `${cidr} is still up here while IpClaim ${name} went to ${to}, which has not brought it up: keeping it, and asking for the claim back`);
        this.clock.after(HOLD_MS + 50, () => this.schedule());
      } else if (now - since > HOLD_MS) {
        if (c.metadata.annotations?.[HELD_BY] === this.node) {
          this.log.warn(`${cidr}: IpClaim ${name} was not given back within ${HOLD_MS} ms; letting ${to} have it`);
          await this.api.request('PATCH', `${CLAIMS}/${name}`, {metadata: {annotations: {[HELD_BY]: null}}}, {contentType: 'application/merge-patch+json'}).catch(() => undefined);
        }
        continue;
      }
      keep.set(cidr, name);
      if (c.metadata.annotations?.[HELD_BY] !== this.node) {
        const r = await this.api.request('PATCH', `${CLAIMS}/${name}`, {metadata: {annotations: {[HELD_BY]: this.node}}}, {contentType: 'application/merge-patch+json'})
          .catch((err: Error) => ({status: 0, body: {message: err.message} as Json}));
        if (r.status !== 200 && r.status !== 404) this.warnOnce(`cannot mark IpClaim ${name} as held here (${r.status} ${r.body?.message ?? ''})`);
      }
    }
    for (const name of [...this.holding.keys()]) if (!seen.has(name)) this.holding.delete(name);
    return keep;
  }

  /**
   * Confirms each asked-for release whose address is no longer on the
   * interface. One still there (it failed to come down, or it is another
   * owner's) is not confirmed: the claim then stays here.
   */
  private async confirmReleases(releasing: ReadonlyArray<{name: string; cidr: string; done: boolean}>): Promise<void> {
    const todo = releasing.filter((r) => !r.done);
    if (!todo.length) return;
    const host = await this.host.addresses();
    const up = new Set(host.filter((a) => a.iface === this.flags.iface).map((a) => `${a.ip}/${a.prefix}`));
    for (const r of todo) {
      if (up.has(r.cidr)) {
        this.warnOnce(`cannot let go of ${r.cidr} (IpClaim ${r.name}): it is still on ${this.flags.iface}; the claim stays on ${this.node}`);
        continue;
      }
      const res = await this.api.request('PATCH', `${CLAIMS}/${r.name}`, {metadata: {annotations: {[RELEASED_BY]: this.node}}}, {contentType: 'application/merge-patch+json'});
      if (res.status === 200) this.log.info(0, `let go of ${r.cidr} (IpClaim ${r.name}) for the node the scheduler chose`);
      else if (res.status !== 404) this.log.warn(`confirming the release of IpClaim ${r.name}: ${res.status} ${res.body?.message ?? ''}`);
    }
  }

  private async reconcile(): Promise<void> {
    if (this.stopped || !serves(this.fence) || !this.claims.synced) return;
    await this.passes.run(async () => {
      const [read, others] = await Promise.all([this.host.addresses(), this.owned.othersWant()]);
      // The interface's own subnets: their network and broadcast addresses are never a claim's.
      this.policy.setSubnets('interface', interfaceSubnets(read, this.flags.iface));
      const desired = this.desired();
      for (const bad of desired.invalid) this.warnOnce(`skip ${bad.value} of ${bad.service}: ${bad.reason}`);
      this.metrics.refused = Object.fromEntries(RULES.map((rule) => [rule, desired.invalid.filter((b) => b.rule === rule).length]));
      // IPv6 addresses the kernel's duplicate address detection refused: conflicts, taken down.
      const refused = read.filter((a) => a.iface === this.flags.iface && a.dadfailed && this.owned.owns(`${a.ip}/${a.prefix}`)).map((a) => `${a.ip}/${a.prefix}`);
      for (const cidr of refused) this.conflict(cidr, 'another host (IPv6 duplicate address detection)');
      const host = read.filter((a) => !(a.dadfailed && refused.includes(`${a.ip}/${a.prefix}`)));
      for (const cidr of [...this.conflicts.keys()]) {
        const settled = host.some((a) => a.iface === this.flags.iface && `${a.ip}/${a.prefix}` === cidr && !a.tentative);
        if (settled) this.log.info(0, `${cidr}: no other host answers for it now; it is up`);
        if (settled || !desired.wanted.has(cidr)) this.conflicts.delete(cidr);
      }
      for (const [cidr, name] of await this.stillHeld(host, desired.wanted, desired.releasing)) desired.wanted.set(cidr, [`IpClaim ${name}`]);
      // Re-check after the awaits: a fence that began meanwhile wins.
      if (!serves(this.fence) || this.stopped) return;
      const p = plan(desired, host, this.owned, others);
      for (const c of p.conflicts) this.warnOnce(`skip ${c.cidr} of ${c.services.join(', ')}: the address is already on ${c.iface}`);
      const add = await this.checkLink(p.add, (cidr) => {
        const name = desired.wanted.get(cidr)?.[0]?.replace(/^IpClaim /, '');
        return name ? this.taken.get(name) : undefined;
      });
      if (!serves(this.fence) || this.stopped) return;
      await this.owned.adopt(p.adopt, p.release);
      const remove = [...p.remove, ...refused];
      // The mappings of an address no claim wants any more go first, from the address while it is up.
      if (this.upnp && remove.length) await this.upnp.letGo(remove, (cidr) => this.claims.list().some((c) => claimCidr(c) === cidr && !c.metadata.deletionTimestamp));
      const result = await this.owned.apply(add, remove, read);
      if (!add.length && !remove.length && !p.adopt.length && !p.release.length) await this.owned.save();
      for (const line of result.failed) this.log.warn(`ip: ${line}`);
      if (result.failed.length) this.metrics.errors++;
      if (add.length || remove.length) this.log.info(0, `added ${add.join(' ') || 'nothing'}; removed ${remove.join(' ') || 'nothing'}`);
      const up = add.filter((cidr) => this.owned.owns(cidr));
      this.announce(up);
      await this.markUp(up, desired.wanted);
      this.keepMappings(read, desired.wanted);
      if (up.some((cidr) => !isIPv4(cidr.split('/')[0])) && this.onLink) this.clock.after(DAD6_CHECK_MS, () => this.schedule());
      this.metrics.desired = desired.wanted.size;
      this.metrics.applied = desired.wanted.size - p.conflicts.length - (p.add.length - up.length);
      this.metrics.conflicts = this.conflicts.size;
      if (serves(this.fence) && !this.stopped) await this.keepLeases(desired.leases);
      if (serves(this.fence) && !this.stopped) await this.confirmReleases(desired.releasing);
      this.metrics.desired = desired.wanted.size;
      this.metrics.applied = desired.wanted.size - p.conflicts.length;
      if (serves(this.fence)) this.served = true;
    });
  }

  /**
   * Takes here the DHCP leases of the claims this node serves, and lets go
   * of the others: a lease whose claim is gone (the Service went, or stopped
   * asking) is released to the server; one whose claim went to another node
   * is left for it, which takes it over with the same MAC. A new holder
   * brings the claim's last address up at once and asks for it again.
   */
  private async keepLeases(wanted: ReadonlyMap<string, string>): Promise<void> {
    for (const [key, held] of [...this.leases]) {
      if (wanted.get(key) === held.claim) continue;
      this.leases.delete(key);
      const claim = this.claims.get(held.claim);
      // A release waits on the server (up to a few seconds): it runs beside the passes, since nobody waits for it.
      if (!claim || claim.metadata.deletionTimestamp) {
        this.log.info(0, `IpClaim ${held.claim} ${claim ? 'is being deleted' : 'is gone'}: releasing the DHCP lease of ${dhcpService(key)}`);
        void held.taker.release().catch((err: Error) => this.log.warn(`releasing the lease on ${held.taker.link}: ${describe(err)}`));
      } else {
        this.log.info(0, `IpClaim ${held.claim} went to ${claim.metadata.annotations?.[TAKEN_BY] ?? claim.spec?.nodeName}: leaving the DHCP lease of ${dhcpService(key)} to it`);
        await held.taker.stop();
      }
    }
    for (const [key, name] of wanted) {
      if (this.leases.has(key)) continue;
      const claim = this.claims.get(name);
      const last = claim?.status?.lease?.ip as string | undefined;
      const service = dhcpService(key);
      const requested = last && !this.leaseRefusal(last, service) ? last : undefined;
      const taker = this.world.dhcp({
        service, lower: this.flags.iface, requested, log: this.log, clock: this.clock,
        onChange: (lease, error) => void this.leaseChanged(key, name, lease, error),
      });
      this.leases.set(key, {claim: name, taker});
      try {
        await taker.start();
      } catch (err) {
        // Tried again at the next pass (the interface may be back by then).
        this.leases.delete(key);
        await taker.stop().catch(() => undefined);
        void this.recordLease(name, {leaseError: `cannot take the lease on ${this.node}: ${describe(err)}`});
        continue;
      }
      this.log.info(0, `taking the DHCP lease of ${service} (IpClaim ${name}) on ${taker.link}, MAC ${taker.mac}${requested ? `; ${requested} up meanwhile` : ''}`);
      if (requested) await this.markUp([key], new Map([[key, [`IpClaim ${name}`]]]));
    }
  }

  /** Why the address policy refuses a leased address for the Service, or undefined. */
  private leaseRefusal(ip: string, service: string): string | undefined {
    return this.policy.check(ip, service.split('/')[0], 32)?.reason;
  }

  /** What the lease taker says: a lease recorded on the claim (the scheduler gives it to the Service), or why none. */
  private async leaseChanged(key: string, name: string, lease: Lease | undefined, error?: string): Promise<void> {
    const held = this.leases.get(key);
    if (!held || held.claim !== name || held.refused) return;
    if (!lease) {
      if (error) await this.recordLease(name, {leaseError: error});
      return;
    }
    const no = this.leaseRefusal(lease.ip, dhcpService(key));
    if (no) {
      // The server gave what the policy does not allow here (an address of the cluster's, a node's): given back.
      held.refused = `the DHCP server leased ${lease.ip}, which the address policy refuses: ${no}; the lease is released and not asked for again until the claim moves or this controller restarts`;
      this.log.warn(`DHCP for ${dhcpService(key)}: ${held.refused}`);
      await held.taker.release();
      await this.recordLease(name, {lease: null, leaseError: held.refused});
      return;
    }
    await this.recordLease(name, {lease: {ip: lease.ip, server: lease.server ?? null, seconds: lease.seconds, at: new Date(lease.at).toISOString(), mac: held.taker.mac, link: held.taker.link}, leaseError: null});
    await this.markUp([key], new Map([[key, [`IpClaim ${name}`]]]));
  }

  private async recordLease(name: string, status: Json): Promise<void> {
    const r = await this.api.request('PATCH', `${CLAIMS}/${name}`, {status}, {contentType: 'application/merge-patch+json'}).catch((err: Error) => ({status: 0, body: {message: err.message} as Json}));
    if (r.status !== 200 && r.status !== 404) this.warnOnce(`cannot record the DHCP lease on IpClaim ${name} (${r.status} ${r.body?.message ?? ''})`);
  }

  /** Releases every lease taken here (each takes its link down after). */
  private async releaseLeases(): Promise<void> {
    const all = [...this.leases.values()];
    this.leases.clear();
    await Promise.all(all.map((l) => l.taker.release().catch((err: Error) => this.log.warn(`releasing the lease on ${l.taker.link}: ${describe(err)}`))));
  }

  /** Stops every lease taken here without releasing it; the links stay with `keepLinks`. */
  private async stopLeases(keepLinks: boolean): Promise<void> {
    const all = [...this.leases.values()];
    this.leases.clear();
    await Promise.all(all.map((l) => l.taker.stop({keepLink: keepLinks}).catch((err: Error) => this.log.warn(`stopping the lease on ${l.taker.link}: ${describe(err)}`))));
  }

  /**
   * Hands the UPnP keeper the mappings wanted of the addresses up here: each
   * claim held here whose Services asked for them (UPNP_PORTS). Its status
   * (`status.upnp`) records what the gateway gave, or its error, which the
   * scheduler turns into an Event on the Services.
   */
  private keepMappings(read: readonly HostAddress[], wanted: ReadonlyMap<string, string[]>): void {
    const up = new Set(read.filter((a) => a.iface === this.flags.iface && !a.tentative && !a.dadfailed).map((a) => `${a.ip}/${a.prefix}`));
    const wants: UpnpWant[] = [];
    for (const [cidr, by] of wanted) {
      const name = by[0]?.replace(/^IpClaim /, '');
      const c = name ? this.claims.get(name) : undefined;
      const ports = parsePorts(c?.metadata.annotations?.[UPNP_PORTS]);
      if (!c || !up.has(cidr) || !this.owned.owns(cidr)) continue;
      if (ports.length || this.upnp) wants.push({claim: name!, cidr, ports, description: `extip ${(c.status?.services ?? []).join(' ') || name}`});
    }
    if (!this.upnp && !wants.some((w) => w.ports.length)) return;
    const own = read.find((a) => a.iface === this.flags.iface && isIPv4(a.ip) && !this.owned.owns(`${a.ip}/${a.prefix}`));
    if (!own) return;
    this.upnp ??= new UpnpKeeper({
      node: this.node, nodeAddress: own.ip, log: this.log, clock: this.clock, client: this.world.upnp,
      // What the report leaves out is cleared: a merge patch would keep an error the gateway no longer gives.
      report: (claim, report) => void this.api.request('PATCH', `${CLAIMS}/${claim}`, {status: {upnp: {gateway: null, external: null, error: null, ...report}}}, {contentType: 'application/merge-patch+json'})
        .then((r) => r.status !== 200 && r.status !== 404 && this.warnOnce(`cannot record UPnP mappings on IpClaim ${claim} (${r.status} ${r.body?.message ?? ''})`))
        .catch(() => undefined),
    });
    this.upnp.keep(wants.filter((w) => isIPv4(w.cidr.split('/')[0])), new Set([...up].filter((cidr) => this.owned.owns(cidr))));
  }

  /** The interface's link is down (its operstate): no heartbeat, nothing served, the IpNode deleted. */
  private get linkLost(): boolean {
    return this.fence.mode === 'link-lost';
  }

  /** Whether the interface is on a shared link (anything but loopback): probes and announcements make sense there. */
  private get onLink(): boolean {
    return this.flags.iface !== 'lo';
  }

  /**
   * Probes, while `suspect` is suspect, the addresses of its claims that this
   * node would take over if it were found dead: the takeover then needs no
   * probe of its own (PREPROBE_FRESH_MS says how long a result stands).
   */
  private async preProbe(suspect: string): Promise<void> {
    const peers = this.peers;
    if (!peers || !this.onLink || this.flags.dadWaitMs === 0 || !serves(this.fence) || !this.claims?.synced) return;
    for (const [cidr, pre] of this.preProbes) if (this.clock.now() - pre.at > PREPROBE_FRESH_MS) this.preProbes.delete(cidr);
    const members = peers.view().map((m) => m.name);
    const mine = this.claims.list()
      .filter((c) => c.spec?.nodeName === suspect && wouldTakeOver(this.node, suspect, c.metadata.name, members, (n) => peers.state(n)))
      .map((c) => claimCidr(c))
      .filter((cidr): cidr is string => Boolean(cidr) && isIPv4(cidr!.split('/')[0]));
    await Promise.all(mine.map(async (cidr) => {
      const probe = await this.host.probeIPv4(this.flags.iface, cidr.split('/')[0], this.flags.dadWaitMs);
      this.preProbes.set(cidr, {at: this.clock.now(), free: 'taken' in probe && !probe.taken, suspect});
    }));
  }

  /**
   * Of the addresses about to come up, those no other host answers for: each
   * IPv4 one is probed (ARP, sender 0.0.0.0) for `--dad-wait`, all at once.
   * One that is answered is a conflict and stays down; it is probed again
   * after CONFLICT_RETRY_MS. Where no probe can run, the addresses come up
   * unchecked and the log says why, once.
   */
  private async checkLink(add: readonly string[], takenFrom: (cidr: string) => string | undefined): Promise<string[]> {
    const now = this.clock.now();
    const ok = await Promise.all(add.map(async (cidr) => {
      const last = this.conflicts.get(cidr);
      if (last && now - last.at < CONFLICT_RETRY_MS) return false;
      const ip = cidr.split('/')[0];
      if (!isIPv4(ip) || !this.onLink || this.flags.dadWaitMs === 0) return true;
      // A takeover whose address was found free while its holder was suspect, moments ago: no second wait.
      const pre = this.preProbes.get(cidr);
      this.preProbes.delete(cidr);
      if (pre?.free && now - pre.at < PREPROBE_FRESH_MS && takenFrom(cidr) === pre.suspect) {
        this.log.info(1, `${cidr}: nobody answered for it ${now - pre.at} ms ago, probed while ${pre.suspect} was suspect`);
        return true;
      }
      const probe = await this.host.probeIPv4(this.flags.iface, ip, this.flags.dadWaitMs);
      if ('unknown' in probe) {
        this.warnOnce(`cannot probe ${this.flags.iface} for other holders of an address (${probe.unknown}); bringing addresses up unchecked`);
        return true;
      }
      if (probe.taken) {
        this.conflict(cidr, `the host with MAC ${probe.by}`);
        return false;
      }
      return true;
    }));
    return add.filter((_, i) => ok[i]);
  }

  /** Records a conflict, says so once, and makes sure the address is looked at again. */
  private conflict(cidr: string, by: string): void {
    const first = !this.conflicts.has(cidr);
    this.conflicts.set(cidr, {by, at: this.clock.now()});
    if (first) this.log.warn(`conflict: ${by} answers for ${cidr} on ${this.flags.iface}; it stays down on ${this.node}, checked again every ${CONFLICT_RETRY_MS / 1000} s`);
    if (!this.recheck) {
      this.recheck = this.clock.after(CONFLICT_RETRY_MS, () => {
        this.recheck = undefined;
        this.schedule();
      });
    }
  }

  /**
   * Records on each claim when its address came up here (`status.upAt`,
   * `upOn`), once per assignment: with the scheduler's `previousLastSeen`
   * that is how long the address had no holder. A failed write is logged.
   */
  private async markUp(up: readonly string[], wanted: ReadonlyMap<string, string[]>): Promise<void> {
    const at = new Date().toISOString();
    for (const cidr of up) {
      const name = wanted.get(cidr)?.[0]?.replace(/^IpClaim /, '');
      const claim = name ? this.claims.get(name) : undefined;
      if (name && claim && this.taken.has(name)) {
        void this.recordTakeover(name, at);
        continue;
      }
      if (!name || !claim || claim.status?.upOn === this.node) continue;
      const r = await this.api.request('PATCH', `${CLAIMS}/${name}`, {status: {upAt: at, upOn: this.node}}, {contentType: 'application/merge-patch+json'})
        .catch((err: Error) => ({status: 0, body: {message: err.message} as Json}));
      if (r.status !== 200 && r.status !== 404) this.warnOnce(`cannot record on IpClaim ${name} when its address came up (${r.status} ${r.body?.message ?? ''})`);
    }
  }

  /**
   * Says on a claim taken over that its address is up here (TAKEN_BY, and
   * `status.upAt`/`upOn`), so that the scheduler assigns it here. The API
   * server may be away (that may be why the holder looked lost): the write
   * is tried again every second until it lands or the claim moves, and no
   * pass waits for it.
   */
  private async recordTakeover(name: string, at: string): Promise<void> {
    if (this.recording.has(name)) return;
    this.recording.add(name);
    try {
      while (!this.stopped && this.taken.has(name)) {
        const r = await this.api.request('PATCH', `${CLAIMS}/${name}`, {metadata: {annotations: {[TAKEN_BY]: this.node}}, status: {upAt: at, upOn: this.node}}, {timeoutMs: 2000, contentType: 'application/merge-patch+json'})
          .catch((err: Error) => ({status: 0, body: {message: err.message} as Json}));
        if (r.status === 200 || r.status === 404) return;
        await new Promise<void>((resolve) => this.clock.after(1000, resolve));
      }
    } finally {
      this.recording.delete(name);
    }
  }

  /** Gratuitous ARP for each IPv4 address just brought up, in the background. */
  private announce(up: readonly string[]): void {
    if (!this.onLink || this.flags.announce === 0) return;
    for (const cidr of up) {
      const ip = cidr.split('/')[0];
      if (!isIPv4(ip)) continue;
      void this.host.announceIPv4(this.flags.iface, ip, this.flags.announce).then((why) => {
        if (why) this.warnOnce(`cannot announce addresses on ${this.flags.iface} with gratuitous ARP (${why}); neighbours learn the new holder only when their entries go stale`);
      });
    }
  }

  /** Takes down this owner's addresses (those no other live owner wants) and empties its record; returns what came down. */
  private async withdraw(): Promise<string[]> {
    // The leases are not released: the node that takes their claims takes them over, with the same MAC.
    await this.stopLeases(false);
    const {removed, failed} = await this.owned.withdraw();
    for (const line of failed) this.log.warn(`ip: ${line}`);
    await this.owned.adopt([], this.owned.addresses);
    return removed;
  }

  /**
   * Stops. Withdrawing (SIGTERM without --keep-on-exit) takes the addresses
   * down first, then deletes the IpNode so that the scheduler moves the
   * claims at once.
   */
  async stop(withdraw: boolean): Promise<void> {
    this.stopped = true;
    this.dispatch({type: 'stop'});
    for (const cancel of [...this.timers, this.learning, this.recheck]) cancel?.();
    this.timers = [];
    this.claims?.stop();
    await this.passes.idle(5);
    if (!withdraw) {
      // The addresses stay up: so do the leases' links, with their addresses, until a controller takes them again.
      await this.stopLeases(true);
      this.peers?.stop();
      return;
    }
    // The gateway's mappings first, from the addresses while they are up; a node that takes the claims maps them again.
    await this.upnp?.removeAll();
    // The DHCP leases are given back, as the mappings are: the node that takes a claim asks its server for the
    // same address with the same MAC. (A fence does not: its node may be cut off, and the next holder takes the
    // lease over as it is.)
    await this.releaseLeases();
    const removed = await this.withdraw();
    if (removed.length) this.log.info(0, `withdrew ${removed.join(' ')}`);
    // The addresses are down: the standbys may take them now.
    this.peers?.stop();
    await this.owned.drop();
    // Another workload's agent serves this node (a renamed install taking over): the node stays, and so do its claims.
    const others = await this.owned.otherOwners();
    if (others.length) {
      this.log.info(0, `IpNode ${this.node} kept: ${others.join(', ')} serve${others.length === 1 ? 's' : ''} this node too`);
      return;
    }
    const failed = await this.deleteIpNode();
    if (failed === undefined) this.log.info(0, `IpNode ${this.node} deleted: its claims move now`);
    else this.log.warn(`could not delete IpNode ${this.node} (${failed}); its claims move after the heartbeat timeout`);
  }

  /** Deletes this node's IpNode, so that the scheduler moves its claims at once; undefined when done (or gone already), else why not. */
  private async deleteIpNode(): Promise<string | undefined> {
    const r = await this.api.request('DELETE', `${NODES}/${encodeURIComponent(this.node)}`, undefined, {timeoutMs: 3000}).catch((err: Error) => ({status: 0, body: {message: err.message} as Json}));
    return r.status === 200 || r.status === 202 || r.status === 404 ? undefined : `${r.status} ${r.body?.message ?? ''}`;
  }
}
