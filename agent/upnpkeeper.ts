/**
 * The UPnP port mappings of the addresses a claim controller holds: for each
 * claim whose Services asked for them (UPNP_PORTS, written by the scheduler),
 * the gateway forwards each port from its external address to the Service's
 * address, with a lease of LEASE_SECONDS renewed at half of it. The holder
 * does it; a node that takes a claim over renews the same mappings (they
 * name the address, not the node). Ports no longer asked for are removed;
 * so are the mappings of an address that goes from here when no claim wants
 * it any more (a Service deleted), before it goes, since a gateway in secure
 * mode takes a removal only from the mapped address itself.
 *
 * The work runs beside the controller's passes, one round at a time, so that
 * a gateway that does not answer never holds up an address; a port the
 * gateway refuses, or a search no gateway answers, is tried again after a
 * second, then twice as long each time, up to five minutes. What each claim
 * got (the gateway's external address and ports, or the gateway's error) is
 * reported for the claim's status.
 */
import {type Gateway, UpnpError, addMapping, deleteMapping, describeGateway, discover, externalAddress} from './upnp.js';
import type {Logger} from './log.js';
import {describe} from './log.js';
import type {Clock} from './world.js';

export const LEASE_SECONDS = 3600;
/** A refused port, or a gateway not found, is asked again after this, doubling each time up to RETRY_MAX_MS. */
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 300_000;
/** How long a removal before an address goes may take. */
const LET_GO_MS = 2000;

export interface UpnpPort {
  protocol: 'TCP' | 'UDP';
  port: number;
}

/** `TCP/80,UDP/53` -> ports; what is not a port is left out. */
export function parsePorts(text: string | undefined): UpnpPort[] {
  return (text ?? '').split(',').map((t) => /^(TCP|UDP)\/(\d{1,5})$/.exec(t.trim())).filter((m): m is RegExpExecArray => Boolean(m) && Number(m![2]) > 0 && Number(m![2]) < 65536)
    .map((m) => ({protocol: m[1] as 'TCP' | 'UDP', port: Number(m[2])}));
}

export interface UpnpWant {
  claim: string;
  cidr: string;
  ports: UpnpPort[];
  /** What the gateway's table says the mapping is for. */
  description: string;
}

/** What a claim's mappings are now: for its status (`status.upnp`). */
export interface UpnpReport {
  node: string;
  gateway?: string;
  external?: string;
  /** `TCP/80`, mapped from the gateway's external address to the Service's. */
  mapped: string[];
  error?: string;
  at: string;
}

/** The gateway's side, as a parameter so that a test can stand in for it (agent/upnp.ts's functions are the real one). */
export interface UpnpGatewayClient {
  discover(from: string): Promise<string | undefined>;
  describe(location: string, from: string): Promise<Gateway>;
  external(gateway: Gateway, from: string): Promise<string>;
  add(gateway: Gateway, client: string, port: UpnpPort, description: string, leaseSeconds: number): Promise<void>;
  remove(gateway: Gateway, from: string, port: UpnpPort): Promise<void>;
}

export const realGatewayClient: UpnpGatewayClient = {
  discover: (from) => discover(from),
  describe: describeGateway,
  external: externalAddress,
  add: (gateway, client, port, description, leaseSeconds) => addMapping(gateway, {...port, client, description, leaseSeconds}),
  remove: (gateway, from, port) => deleteMapping(gateway, from, port.protocol, port.port),
};

const key = (p: UpnpPort) => `${p.protocol}/${p.port}`;

export class UpnpKeeper {
  private gateway?: Gateway;
  /** By cidr: the ports mapped from here, and when each was last renewed. */
  private readonly mapped = new Map<string, Map<string, number>>();
  private wants: UpnpWant[] = [];
  private running = false;
  private again = false;
  private readonly reported = new Map<string, string>();
  /** Ports the gateway refused (`cidr TCP/80`), and the gateway search when none answered: when to ask again, and the wait after that. */
  private readonly retry = new Map<string, {at: number; waitMs: number}>();

  constructor(private readonly options: {
    node: string;
    /** The node's address on the interface: where gateways are searched from. */
    nodeAddress: string;
    log: Logger;
    clock: Clock;
    client?: UpnpGatewayClient;
    /** A claim's mappings changed (or failed): for its status. */
    report: (claim: string, report: UpnpReport) => void;
  }) {}

  private get client(): UpnpGatewayClient {
    return this.options.client ?? realGatewayClient;
  }

  /**
   * The mappings wanted now, of the addresses up here (`up`, by default
   * those the wants name); a round runs after this (one at a time).
   */
  keep(wants: UpnpWant[], up: ReadonlySet<string> = new Set(wants.map((w) => w.cidr))): void {
    this.wants = wants;
    // An address no longer up here went another way (a fence, a lost link): what was mapped from it is
    // forgotten, so that it is mapped anew, and reported anew, if it comes back. One still up that no
    // want names (its claim deleted while a pass ran) keeps its record: letGo removes its mappings
    // when the address goes.
    for (const cidr of [...this.mapped.keys()]) if (!up.has(cidr)) this.mapped.delete(cidr);
    const claims = new Set(wants.map((w) => w.claim));
    for (const claim of [...this.reported.keys()]) if (!claims.has(claim)) this.reported.delete(claim);
    if (this.running) {
      this.again = true;
      return;
    }
    void this.round();
  }

  /** How often a mapping is renewed: at half its lease. */
  get renewEveryMs(): number {
    return (LEASE_SECONDS * 1000) / 2;
  }

  private async round(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        await this.once();
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  /** The next try of `what` waits twice as long as the last (from RETRY_FIRST_MS, at most RETRY_MAX_MS). */
  private backOff(what: string, now: number): void {
    const waitMs = Math.min(RETRY_MAX_MS, (this.retry.get(what)?.waitMs ?? RETRY_FIRST_MS / 2) * 2);
    this.retry.set(what, {at: now + waitMs, waitMs});
  }

  private async findGateway(): Promise<Gateway> {
    if (this.gateway) return this.gateway;
    const now = this.options.clock.now();
    const search = this.retry.get('search');
    if (search && now < search.at) throw new UpnpError(`no UPnP Internet gateway answered an SSDP search from ${this.options.nodeAddress} (searching again in ${Math.ceil((search.at - now) / 1000)} s)`);
    const location = await this.client.discover(this.options.nodeAddress);
    if (!location) {
      this.backOff('search', now);
      throw new UpnpError(`no UPnP Internet gateway answered an SSDP search from ${this.options.nodeAddress}`);
    }
    this.retry.delete('search');
    this.gateway = await this.client.describe(location, this.options.nodeAddress);
    this.options.log.info(0, `UPnP gateway ${this.gateway.location} (${this.gateway.serviceType.split(':').slice(-2).join(':')})`);
    return this.gateway;
  }

  private async once(): Promise<void> {
    const now = this.options.clock.now();
    for (const want of this.wants) {
      const ip = want.cidr.split('/')[0];
      const have = this.mapped.get(want.cidr) ?? new Map<string, number>();
      const wanted = new Set(want.ports.map(key));
      const due = want.ports.filter((p) => {
        const at = have.get(key(p));
        const refused = this.retry.get(`${want.cidr} ${key(p)}`);
        if (refused && now < refused.at) return false;
        return at === undefined || now - at >= this.renewEveryMs;
      });
      const gone = [...have.keys()].filter((k) => !wanted.has(k));
      if (!due.length && !gone.length) continue;
      const errors: string[] = [];
      let gateway: Gateway | undefined;
      let external = '';
      try {
        gateway = await this.findGateway();
        external = await this.client.external(gateway, ip).catch(() => '');
        for (const p of due) {
          try {
            await this.client.add(gateway, ip, p, want.description, LEASE_SECONDS);
            if (!have.has(key(p))) this.options.log.info(0, `UPnP: ${external || 'the gateway'}:${p.port} ${p.protocol} -> ${ip}:${p.port} (IpClaim ${want.claim})`);
            have.set(key(p), now);
            this.retry.delete(`${want.cidr} ${key(p)}`);
          } catch (err) {
            errors.push(`${key(p)}: ${describe(err)}`);
            this.backOff(`${want.cidr} ${key(p)}`, now);
          }
        }
        for (const k of gone) {
          const [protocol, port] = k.split('/');
          await this.client.remove(gateway, ip, {protocol: protocol as 'TCP' | 'UDP', port: Number(port)}).catch((err: Error) => errors.push(`removing ${k}: ${describe(err)}`));
          have.delete(k);
          this.options.log.info(0, `UPnP: ${k} of ${ip} no longer asked for; mapping removed`);
        }
      } catch (err) {
        // No gateway (or its description failed): searched for again next time.
        this.gateway = undefined;
        errors.push(describe(err));
      }
      this.mapped.set(want.cidr, have);
      this.say(want.claim, {node: this.options.node, ...(gateway ? {gateway: gateway.location} : {}), ...(external ? {external} : {}),
        mapped: [...have.keys()].sort(), ...(errors.length ? {error: errors.join('; ')} : {}), at: new Date(now).toISOString()});
    }
  }

  /** Reports a claim's mappings when they changed (not every renewal). */
  private say(claim: string, report: UpnpReport): void {
    const sig = JSON.stringify({...report, at: undefined});
    if (this.reported.get(claim) === sig) return;
    this.reported.set(claim, sig);
    if (report.error) this.options.log.warn(`UPnP for IpClaim ${claim}: ${report.error}`);
    this.options.report(claim, report);
  }

  /** Before the controller takes every address down (it stops): every mapping made from here is removed. */
  async removeAll(): Promise<void> {
    await this.letGo([...this.mapped.keys()], () => false);
  }

  /**
   * Before these addresses go from here: the mappings of those no claim
   * wants any more are removed (from the address, while it is still up);
   * the others are left to the node that holds the claim next.
   */
  async letGo(cidrs: readonly string[], stillClaimed: (cidr: string) => boolean): Promise<void> {
    const gateway = this.gateway;
    await Promise.all(cidrs.map(async (cidr) => {
      const have = this.mapped.get(cidr);
      this.mapped.delete(cidr);
      if (!have?.size || !gateway || stillClaimed(cidr)) return;
      const ip = cidr.split('/')[0];
      const removing = Promise.all([...have.keys()].map((k) => {
        const [protocol, port] = k.split('/');
        return this.client.remove(gateway, ip, {protocol: protocol as 'TCP' | 'UDP', port: Number(port)});
      }));
      const timeout = new Promise<'timeout'>((resolve) => this.options.clock.after(LET_GO_MS, () => resolve('timeout')));
      const r = await Promise.race([removing.then(() => 'done' as const), timeout]).catch((err: Error) => err);
      if (r === 'done') this.options.log.info(0, `UPnP: the mappings of ${ip} removed (no Service wants it)`);
      else this.options.log.warn(`UPnP: cannot remove the mappings of ${ip} (${r === 'timeout' ? `no answer within ${LET_GO_MS} ms` : describe(r)}); the gateway drops them when their lease ends`);
    }));
  }
}
