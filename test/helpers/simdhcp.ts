/**
 * A DHCP server on the simulated segment, and the lease takers the claim
 * controllers get in its place (ClaimWorld.dhcp), for tests of claims mode's
 * DHCP wiring without root. The server keeps dnsmasq's rules that the
 * wiring relies on: a MAC gets the address it had, else the one it asks
 * for when free, else the first free one of the range; a release frees it.
 * Who has each address up is the takers' record (the requested address at
 * start, the leased one after). The real taker, udhcpc on a macvlan against
 * dnsmasq, is test/e2e/dhcp.test.ts's.
 */
import {type Lease, leaseLink, leaseMac} from '../../agent/dhcp.js';
import type {DhcpLeaseOptions} from '../../agent/dhcp.js';
import type {LeaseTaker} from '../../agent/world.js';

export class SimDhcpServer {
  /** Whether it answers. */
  up = true;
  /** MAC -> address, as its lease table has them. */
  readonly table = new Map<string, string>();
  /** Address -> the node that has it up. */
  readonly upOn = new Map<string, string>();
  /** What the takers did, in order: `node1 lease 10.1.0.60 02:..`, `node2 release ...`. */
  readonly said: string[] = [];

  constructor(readonly server = '10.1.0.254', private readonly range = {prefix: '10.1.0.', first: 60, last: 79}) {}

  /** The address for `mac`: the one it had, the one it asks for when free, else the first free. */
  offer(mac: string, requested?: string): string | undefined {
    const had = this.table.get(mac);
    if (had) return had;
    const taken = new Set(this.table.values());
    const inRange = (ip: string) => ip.startsWith(this.range.prefix) && Number(ip.slice(this.range.prefix.length)) >= this.range.first && Number(ip.slice(this.range.prefix.length)) <= this.range.last;
    const ip = requested && inRange(requested) && !taken.has(requested) ? requested
      : Array.from({length: this.range.last - this.range.first + 1}, (_, i) => `${this.range.prefix}${this.range.first + i}`).find((a) => !taken.has(a));
    if (ip) this.table.set(mac, ip);
    return ip;
  }

  /** The lease taker of node `node` (ClaimWorld.dhcp). */
  taker(node: string): (options: DhcpLeaseOptions) => LeaseTaker {
    return (options) => new SimLeaseTaker(this, node, options);
  }
}

class SimLeaseTaker implements LeaseTaker {
  readonly mac: string;
  readonly link: string;
  private stopped = false;
  private ip?: string;
  private timer?: NodeJS.Timeout;

  constructor(private readonly server: SimDhcpServer, private readonly node: string, private readonly options: DhcpLeaseOptions) {
    this.mac = leaseMac(options.service);
    this.link = leaseLink(options.service);
  }

  async start(): Promise<void> {
    if (this.options.requested) this.hold(this.options.requested);
    this.try(1000);
  }

  private hold(ip: string | undefined): void {
    if (this.ip && this.server.upOn.get(this.ip) === this.node) this.server.upOn.delete(this.ip);
    this.ip = ip;
    if (ip) this.server.upOn.set(ip, this.node);
  }

  /** A try a few milliseconds on (a DISCOVER's round trip); when the server does not answer, again after `waitMs`, doubling. */
  private try(waitMs: number): void {
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      if (!this.server.up) {
        this.options.onChange(undefined, `no DHCP server answered 3 DISCOVERs from ${this.link} (MAC ${this.mac}) on ${this.options.lower}; trying again in ${waitMs / 1000} s`);
        this.timer = setTimeout(() => this.try(waitMs * 2), waitMs);
        return;
      }
      const ip = this.server.offer(this.mac, this.ip ?? this.options.requested);
      if (!ip) return;
      this.hold(ip);
      this.server.said.push(`${this.node} lease ${ip} ${this.mac}`);
      const lease: Lease = {ip, prefix: 24, server: this.server.server, seconds: 120, at: Date.now()};
      this.options.onChange(lease);
    }, 10);
  }

  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.server.table.get(this.mac) === this.ip) this.server.table.delete(this.mac);
    this.server.said.push(`${this.node} release ${this.ip} ${this.mac}`);
    this.hold(undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.server.said.push(`${this.node} stop ${this.mac}`);
    this.hold(undefined);
  }
}
