/**
 * The BGP speaker beside ipmanager (extip_bgp_speaker: extip): BIRD 2 in its
 * own container of the controller pod, started with a configuration that
 * peers with nobody. ipmanager writes the real one (lib/bgp.ts) into the
 * directory they share and has BIRD load it: the peers from the spec the role
 * rendered, and exactly the addresses ipmanager brought up. Before an
 * address comes down, its route is withdrawn and the routers get
 * --bgp-withdraw-wait to stop sending to it. Every second ipmanager reads
 * BIRD's state for /metrics and `extip status`; a BIRD that restarted (back
 * on its idle configuration) gets the speaker's again.
 */
import {readFile, rename, writeFile} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {EXPORTS_PROTOCOL, REFLECTOR_CLIENTS, type RouteReflector, type SpeakerSpec, peerName, peersOf, reflectorPeerName, speakerConfig, speakerSpecErrors} from '../lib/bgp.js';
import {readAddresses} from './addresses.js';
import {BirdError, birdCommand, parseBfdSessions, parseProtocols} from './bird.js';
import {releasedFile} from './birdrun.js';
import type {ApiClient} from './api.js';
import type {Logger} from './log.js';

/**
 * Where the speaker reports its sessions going down and coming back: a
 * Warning Event BGPSessionDown on its Node, a Normal BGPSessionUp after one
 * (extip status and doctor read the newest of each node and peer).
 */
export interface SessionEvents {
  api: ApiClient;
  component: string;
}

export interface SpeakerHealth {
  /** BIRD answers on its socket and runs the speaker's configuration. */
  up: boolean;
  peers: Array<{address: string; state: string; established: boolean; bfd?: 'up' | 'down'; exported: number}>;
  /** While this node holds its rack's route reflector: the address, the clients' sessions up, and the reflector's routers. */
  reflector?: {address: string; clients: number; peers: Array<{address: string; established: boolean; exported: number}>};
  /** Routes in the speaker's configuration now. */
  exported: number;
}

export class SpeakerError extends Error {}

/** Reads and checks the spec the role rendered: --bgp-speaker's JSON itself, or a file holding it. */
export async function loadSpeakerSpec(arg: string): Promise<SpeakerSpec> {
  const inline = arg.trimStart().startsWith('{');
  const where = inline ? '--bgp-speaker' : `--bgp-speaker=${arg}`;
  let value: unknown;
  try {
    value = JSON.parse(inline ? arg : await readFile(arg, 'utf8'));
  } catch (err) {
    throw new SpeakerError(`cannot read the BGP speaker spec ${where}: ${(err as Error).message}`);
  }
  const errors = speakerSpecErrors(value);
  if (errors.length) throw new SpeakerError(`the BGP speaker spec ${where} is not valid: ${errors.join('; ')}`);
  return value as SpeakerSpec;
}

export class Speaker {
  /** What BIRD exports now (its last configuration that loaded); undefined until one did. */
  private exported?: string[];
  private want: string[] = [];
  /** Routes announced with GRACEFUL_SHUTDOWN, on their way out. */
  private readonly shuttingDown = new Set<string>();
  /** The routes that carried it in the configuration BIRD runs. */
  private shutdownSent = '';
  /** The route reflector this node holds now, and the subnet its clients connect from. */
  private reflecting?: {reflector: RouteReflector; subnet: string};
  /** What the configuration BIRD runs was written for, beside the exports. */
  private reflected?: string;
  /** Everything BIRD was given to export since it was last withdrawn: what a router may still send here. */
  private readonly announced = new Set<string>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();
  private lastProblem = '';
  health: SpeakerHealth = {up: false, peers: [], exported: 0};
  /** Times BIRD came back (restarted, on its idle configuration) and was given the speaker's again. */
  reloads = 0;
  /** BIRD was found gone or without the speaker's configuration since it last took it. */
  private lost = false;
  errors = 0;

  constructor(
    private readonly spec: SpeakerSpec,
    private readonly opts: {node: string; routerId: string; socket: string; withdrawWaitMs: number},
    private readonly log: Logger,
  ) {}

  private get configFile(): string {
    return join(dirname(this.opts.socket), 'bird.conf');
  }

  /** The rack's route reflector this node stands for (extip_bgp_route_reflectors), if any. */
  holder?: {start(): void; stop(): Promise<void>};
  /** Where session changes go as Events on the Node; none without it. */
  events?: SessionEvents;
  /** Per peer: established at the last read; and the peers a BGPSessionDown was written for. */
  private sessionState = new Map<string, boolean>();
  private reportedDown = new Set<string>();

  /** Starts watching BIRD: every second its state, and the configuration again if it lost it. */
  start(): void {
    const peers = peersOf(this.spec, this.opts.node);
    if (!peers.length) this.log.warn(`extip_bgp_peers names no peer for node ${this.opts.node}: nothing is exported from it`);
    this.log.info(0, `BGP speaker: AS ${this.spec.asn}, router ID ${this.opts.routerId}, peers ${peers.map((p) => `${p.address} (AS ${p.asn}${p.bfd === false ? '' : ', BFD'})`).join(', ') || 'none'}, BIRD at ${this.opts.socket}`);
    // A check that fails in a way of its own (ip, the file system) is reported and tried again.
    const checked = () => this.serial(() => this.check()).catch((err: Error) => this.problem(`reading the BGP speaker's state failed: ${err.message}`));
    const tick = () => {
      if (!this.stopped) this.timer = setTimeout(() => void checked().finally(tick), 1000);
    };
    void checked().finally(tick);
    this.holder?.start();
  }

  /**
   * Gives the route reflector up, if this node holds it, so that another node
   * of the rack takes it at once; then tells BIRD's container (ipmanager
   * bgp-speaker) that BIRD may stop: nothing more goes to the routers.
   */
  async leave(): Promise<void> {
    await this.holder?.stop();
    await writeFile(releasedFile(this.opts.socket), `${new Date().toISOString()}\n`).catch((err: Error) => this.log.warn(`cannot tell BIRD's container it may stop (${err.message}): it stops after its grace`));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Exports exactly `cidrs` (IPv4 /32s; others are not announced). */
  set(cidrs: readonly string[]): Promise<void> {
    this.want = [...new Set(cidrs)].sort();
    return this.serial(() => this.push());
  }

  /**
   * Withdraws `cidrs` before they come down. First BIRD announces them with
   * GRACEFUL_SHUTDOWN, and the routers get --bgp-withdraw-wait to move to
   * other paths while these still work (every hop at once: a core as well as
   * the ToR); then BIRD withdraws them, and routers that ignore the
   * community get --bgp-withdraw-wait again to stop sending.
   */
  async withdraw(cidrs: readonly string[]): Promise<void> {
    const gone = new Set(cidrs);
    // Announced before: wait, whether BIRD took the change or is gone (its sessions, and with
    // them the routes, end with it); either way a router may still send for a moment.
    const withdrawn = [...gone].filter((c) => this.announced.has(c));
    const wait = () => new Promise((resolve) => setTimeout(resolve, this.opts.withdrawWaitMs));
    if (withdrawn.length && this.exported) {
      for (const c of withdrawn) this.shuttingDown.add(c);
      await this.serial(() => this.push());
      this.log.info(1, `announced ${withdrawn.join(' ')} with GRACEFUL_SHUTDOWN; ${this.opts.withdrawWaitMs} ms before withdrawing`);
      await wait();
    }
    this.want = this.want.filter((c) => !gone.has(c));
    for (const c of gone) this.shuttingDown.delete(c);
    await this.serial(() => this.push());
    if (withdrawn.length) {
      this.log.info(1, `withdrew ${withdrawn.join(' ')} from the BGP peers; ${this.opts.withdrawWaitMs} ms before the address comes down`);
      await wait();
    }
    for (const c of withdrawn) this.announced.delete(c);
  }

  /** Takes its rack's route reflector (its address is up here now), or gives it up (undefined). */
  reflect(reflecting: {reflector: RouteReflector; subnet: string} | undefined): Promise<void> {
    this.reflecting = reflecting;
    return this.serial(() => this.push());
  }

  private serial(work: () => Promise<void>): Promise<void> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private problem(message: string): void {
    this.errors++;
    if (message !== this.lastProblem) this.log.warn(message);
    this.lastProblem = message;
  }

  /** Writes the configuration for `want` and has BIRD load it. */
  private async push(): Promise<void> {
    const reflecting = this.reflecting ? `${this.reflecting.reflector.address} ${this.reflecting.subnet}` : '';
    const shutting = [...this.shuttingDown].sort().join(' ');
    if (this.exported && this.exported.join(' ') === this.want.join(' ') && this.reflected === reflecting && this.shutdownSent === shutting) return;
    const want = this.want;
    // The node's subnets (not the reflector's /32 on them).
    const subnets = (await readAddresses()).filter((a) => a.ip.includes('.') && a.iface !== 'lo' && a.prefix < 32).map((a) => `${a.ip}/${a.prefix}`);
    const config = speakerConfig(this.spec, {node: this.opts.node, routerId: this.opts.routerId, subnets}, want, this.reflecting, this.shuttingDown);
    const tmp = `${this.configFile}.tmp`;
    try {
      await writeFile(tmp, config);
      await rename(tmp, this.configFile);
      await birdCommand(this.opts.socket, `configure "${this.configFile}"`);
    } catch (err) {
      this.exported = undefined;
      this.problem(`the BGP speaker did not take its configuration: ${(err as Error).message}; trying again within a second`);
      return;
    }
    if (this.lost) {
      this.reloads++;
      this.log.info(0, `the BGP speaker is back: it runs its configuration again, announcing ${want.length} address${want.length === 1 ? '' : 'es'}`);
    }
    this.lost = false;
    this.lastProblem = '';
    this.exported = want;
    this.reflected = reflecting;
    this.shutdownSent = shutting;
    this.health.exported = want.length;
    for (const c of want) this.announced.add(c);
  }

  /** Reads BIRD's state; a BIRD without the speaker's configuration (it restarted) gets it again. */
  private async check(): Promise<void> {
    let protocols;
    try {
      protocols = parseProtocols((await birdCommand(this.opts.socket, 'show protocols')).lines);
    } catch (err) {
      if (!(err instanceof BirdError)) throw err;
      this.health = {up: false, peers: [], exported: 0};
      this.exported = undefined;
      this.lost = true;
      this.problem(`the BGP speaker is not answering (${err.message}); its routes are gone from the routers until it is back`);
      return;
    }
    if (!protocols.some((p) => p.name === EXPORTS_PROTOCOL)) {
      // Started, or restarted on its idle configuration: the first time is no loss.
      if (this.exported) this.lost = true;
      this.exported = undefined;
      await this.push();
      return;
    }
    if (!this.exported) await this.push();
    const bfd = parseBfdSessions((await birdCommand(this.opts.socket, 'show bfd sessions').catch(() => ({lines: [] as string[]}))).lines);
    const exportedTo = async (name: string) => {
      const all = await birdCommand(this.opts.socket, `show protocols all ${name}`).catch(() => ({lines: [] as string[]}));
      return Number(/Routes:\s+\d+ imported, (\d+) exported/.exec(all.lines.join('\n'))?.[1] ?? 0);
    };
    const peers = [];
    for (const peer of peersOf(this.spec, this.opts.node, Boolean(this.reflecting))) {
      const p = protocols.find((x) => x.name === peerName(peer));
      const established = p?.info.startsWith('Established') ?? false;
      const exported = established ? await exportedTo(peerName(peer)) : 0;
      peers.push({
        address: peer.address,
        state: p ? p.info.split(/\s+/)[0] || p.state : 'missing',
        established,
        ...(peer.bfd === false ? {} : {bfd: bfd.up.includes(peer.address) ? ('up' as const) : ('down' as const)}),
        exported,
      });
    }
    let reflector: SpeakerHealth['reflector'];
    if (this.reflecting) {
      const rr = this.reflecting.reflector;
      // The dynamic protocol spawns one session a client, named after it.
      const clients = protocols.filter((x) => x.name.startsWith('client_') && x.info.startsWith('Established')).length;
      const rrPeers = [];
      for (const peer of rr.peers) {
        const p = protocols.find((x) => x.name === reflectorPeerName(peer));
        const established = p?.info.startsWith('Established') ?? false;
        rrPeers.push({address: peer.address, established, exported: established ? await exportedTo(reflectorPeerName(peer)) : 0});
      }
      reflector = {address: rr.address, clients, peers: rrPeers};
      if (!protocols.some((x) => x.name === REFLECTOR_CLIENTS)) this.problem(`the route reflector ${rr.address} is not in BIRD's configuration`);
    }
    this.health = {up: true, peers, exported: this.exported?.length ?? 0, ...(reflector ? {reflector} : {})};
    for (const p of peers) this.sessionChanged(p.address, p.established, p.state);
  }

  /** A session that was established and is no longer: a Warning Event; back up after one: a Normal one. */
  private sessionChanged(peer: string, established: boolean, state: string): void {
    const was = this.sessionState.get(peer);
    this.sessionState.set(peer, established);
    if (was === true && !established) {
      this.reportedDown.add(peer);
      this.log.warn(`BGP session with ${peer} is down (${state}): ${this.opts.node}'s addresses are not announced to it`);
      void this.writeEvent('Warning', 'BGPSessionDown', `BGP session with ${peer} is down (${state}): ${this.opts.node}'s addresses are not announced to it`);
    } else if (established && this.reportedDown.delete(peer)) {
      this.log.info(0, `BGP session with ${peer} is established again`);
      void this.writeEvent('Normal', 'BGPSessionUp', `BGP session with ${peer} is established again`);
    }
  }

  private async writeEvent(type: string, reason: string, message: string): Promise<void> {
    const e = this.events;
    if (!e) return;
    const at = new Date().toISOString();
    const node = this.opts.node;
    const r = await e.api.request('POST', '/api/v1/namespaces/default/events', {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {name: `${node}.extip-bgp.${Date.now().toString(16)}${Math.floor(Math.random() * 4096).toString(16)}`, namespace: 'default'},
      involvedObject: {apiVersion: 'v1', kind: 'Node', name: node},
      reason,
      message,
      type,
      source: {component: e.component, host: node},
      reportingComponent: e.component,
      reportingInstance: node,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    }, {timeoutMs: 5000}).catch((err: Error) => ({status: 0, body: {message: err.message}}));
    if (r.status !== 201) this.problem(`cannot write the ${reason} Event (${r.status} ${r.body?.message ?? ''}); sessions are in this log and /metrics`);
  }

  /** Prometheus lines for /metrics. */
  metrics(): string {
    const h = this.health;
    const out = [
      '# HELP extip_bgp_speaker_up 1 when BIRD answers and runs the speaker\'s configuration.',
      '# TYPE extip_bgp_speaker_up gauge',
      `extip_bgp_speaker_up ${h.up ? 1 : 0}`,
      '# HELP extip_bgp_routes_announced Routes the speaker is configured to export.',
      '# TYPE extip_bgp_routes_announced gauge',
      `extip_bgp_routes_announced ${h.exported}`,
      '# HELP extip_bgp_session_established 1 when the BGP session with the peer is established.',
      '# TYPE extip_bgp_session_established gauge',
      ...h.peers.map((p) => `extip_bgp_session_established{peer="${p.address}"} ${p.established ? 1 : 0}`),
      '# HELP extip_bgp_bfd_up 1 when the BFD session with the peer is up (peers with BFD only).',
      '# TYPE extip_bgp_bfd_up gauge',
      ...h.peers.filter((p) => p.bfd).map((p) => `extip_bgp_bfd_up{peer="${p.address}"} ${p.bfd === 'up' ? 1 : 0}`),
      '# HELP extip_bgp_routes_exported Routes exported to the peer.',
      '# TYPE extip_bgp_routes_exported gauge',
      ...h.peers.map((p) => `extip_bgp_routes_exported{peer="${p.address}"} ${p.exported}`),
      '# HELP extip_bgp_reflector_holding 1 while this node holds its rack\'s route reflector.',
      '# TYPE extip_bgp_reflector_holding gauge',
      `extip_bgp_reflector_holding ${h.reflector ? 1 : 0}`,
      ...(h.reflector
        ? [
            '# HELP extip_bgp_reflector_clients The rack\'s speakers whose sessions with the reflector are established.',
            '# TYPE extip_bgp_reflector_clients gauge',
            `extip_bgp_reflector_clients{reflector="${h.reflector.address}"} ${h.reflector.clients}`,
            '# HELP extip_bgp_reflector_routes_exported Paths the reflector passes to its router (ADD-PATH: one a node and address).',
            '# TYPE extip_bgp_reflector_routes_exported gauge',
            ...h.reflector.peers.map((p) => `extip_bgp_reflector_routes_exported{reflector="${h.reflector!.address}",peer="${p.address}"} ${p.exported}`),
          ]
        : []),
      '# HELP extip_bgp_speaker_reloads_total Times BIRD came back (restarted) and was given the speaker\'s configuration again.',
      '# TYPE extip_bgp_speaker_reloads_total counter',
      `extip_bgp_speaker_reloads_total ${this.reloads}`,
      '# HELP extip_bgp_speaker_errors_total Failed attempts to configure or read the speaker.',
      '# TYPE extip_bgp_speaker_errors_total counter',
      `extip_bgp_speaker_errors_total ${this.errors}`,
    ];
    return `${out.join('\n')}\n`;
  }
}
