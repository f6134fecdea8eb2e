/**
 * Hosts on one simulated layer-2 segment, each a `Host` (agent/world.ts) for
 * a claim controller: its interfaces' addresses as `ip` keeps them, changed
 * by the lines `ip -force -batch -` takes (`address add|del CIDR dev IFACE
 * [label L]`, with its messages and exit status for the lines it refuses),
 * its links' operstate, ARP probes that another host answers when it has
 * the address up on its interface and both links are up, and IPv6 duplicate
 * address detection: an IPv6 address is tentative for a second after it is
 * added (the kernel's one probe and its wait), then up, or `dadfailed` when
 * another host on the segment had it up. test/e2e/simhost.test.ts holds what
 * it answers to the real `ip`, sysfs and arping in network namespaces.
 *
 * Not modelled: link-local addresses, routes, the kernel's random delay
 * before its DAD probe, and arping's own timing (a probe here waits its full
 * time when nobody answers, and answers at once otherwise).
 */
import type {HostAddress} from '../../agent/addresses.js';
import type {Probe} from '../../agent/announce.js';
import type {Host} from '../../agent/world.js';
import type {RunResult} from '../../lib/run.js';

export class SimSegment {
  readonly hosts = new Map<string, SimHost>();
  /** Every gratuitous ARP sent: by whom, for which address, when. */
  readonly announcements: Array<{by: string; ip: string; at: number}> = [];
  probes = 0;

  /** A host with `iface` (its own address `own`, a /24) and `lo` (127.0.0.1/8). */
  add(name: string, iface: string, own: string): SimHost {
    const h = new SimHost(this, name, iface, own);
    this.hosts.set(name, h);
    return h;
  }

  /** The hosts that answer ARP (or neighbour solicitation) for `ip` on the segment: the address up on their segment interface, its link up. */
  answering(ip: string, except?: string): SimHost[] {
    return [...this.hosts.values()].filter((h) => h.name !== except && h.linkUp && h.has(h.iface, ip));
  }
}

/** How long an IPv6 address stays tentative: the kernel's one DAD probe and its one-second wait. */
export const SIM_DAD_MS = 1000;

interface SimAddress {
  ip: string;
  prefix: number;
  label?: string;
  tentative?: boolean;
  dadfailed?: boolean;
}

export class SimHost implements Host {
  /** The segment interface's link (`ip link set IFACE down` on the host, or a cable). */
  linkUp = true;
  /** Addresses by interface, in the order `ip` lists them: IPv4 as added, then IPv6 newest first. */
  private readonly addrs = new Map<string, SimAddress[]>();
  readonly mac: string;

  constructor(private readonly segment: SimSegment, readonly name: string, readonly iface: string, own: string) {
    this.addrs.set('lo', [{ip: '127.0.0.1', prefix: 8, label: 'lo'}]);
    this.addrs.set(iface, [{ip: own, prefix: 24, label: iface}]);
    this.mac = `02:00:00:00:00:${(segment.hosts.size + 1).toString(16).padStart(2, '0')}`;
  }

  /** Whether `ip` is up on `iface`: present, and for IPv6 past its duplicate address detection. */
  has(iface: string, ip: string): boolean {
    return Boolean(this.addrs.get(iface)?.some((a) => a.ip === ip && !a.tentative && !a.dadfailed));
  }

  /** The addresses up on the segment interface besides the host's own, as `ip/prefix` (not an IPv6 one in DAD or failed in it). */
  held(): string[] {
    return (this.addrs.get(this.iface) ?? []).slice(1).filter((a) => !a.tentative && !a.dadfailed).map((a) => `${a.ip}/${a.prefix}`);
  }

  async addresses(): Promise<HostAddress[]> {
    return [...this.addrs].flatMap(([iface, list]) => list.map((a) => ({iface, ip: a.ip, prefix: a.prefix, label: a.label,
      ...(a.dadfailed ? {dadfailed: true} : {}), ...(a.tentative ? {tentative: true} : {})})));
  }

  async ipBatch(lines: readonly string[]): Promise<RunResult> {
    const errors: string[] = [];
    lines.forEach((line, i) => {
      const m = /^address (add|del) ([0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)\/(\d+) dev (\S+)(?: label (\S+))?$/.exec(line.trim());
      const list = m ? this.addrs.get(m[4]) : undefined;
      if (!m || !list) {
        errors.push(m ? `Cannot find device "${m[4]}"` : `Error: cannot read "${line}"`, `Command failed -:${i + 1}`);
        return;
      }
      const [, op, ip, prefix, iface, label] = m;
      const v6 = ip.includes(':');
      const at = list.findIndex((a) => a.ip === ip && a.prefix === Number(prefix));
      if (op === 'add') {
        if (at >= 0) errors.push(v6 ? 'Error: ipv6: address already assigned.' : 'Error: ipv4: Address already assigned.', `Command failed -:${i + 1}`);
        else if (v6) this.addV6(iface, list, {ip, prefix: Number(prefix), tentative: true});
        else {
          const firstV6 = list.findIndex((a) => a.ip.includes(':'));
          list.splice(firstV6 < 0 ? list.length : firstV6, 0, {ip, prefix: Number(prefix), label: label ?? iface});
        }
      } else if (at < 0) {
        errors.push(v6 ? 'Error: ipv6: address not found.' : 'Error: ipv4: Address not found.', `Command failed -:${i + 1}`);
      } else {
        list.splice(at, 1);
      }
    });
    return {exitCode: errors.length ? 1 : 0, stdout: '', stderr: errors.map((e) => `${e}\n`).join(''), timedOut: false};
  }

  /** An IPv6 address, newest first after the IPv4 ones; its duplicate address detection ends SIM_DAD_MS later. */
  private addV6(iface: string, list: SimAddress[], a: SimAddress): void {
    const first = list.findIndex((x) => x.ip.includes(':'));
    list.splice(first < 0 ? list.length : first, 0, a);
    setTimeout(() => {
      if (!list.includes(a)) return;
      a.tentative = undefined;
      if (iface === this.iface && this.segment.answering(a.ip, this.name).length) {
        a.tentative = true;
        a.dadfailed = true;
      }
    }, SIM_DAD_MS).unref();
  }

  async linkState(iface: string): Promise<string> {
    if (iface === 'lo') return 'unknown';
    if (iface !== this.iface) return 'gone';
    // A veth whose peer went down says `down` (test/e2e/simhost.test.ts).
    return this.linkUp ? 'up' : 'down';
  }

  async probeIPv4(iface: string, ip: string, waitMs: number): Promise<Probe> {
    this.segment.probes++;
    if (iface !== this.iface) return {unknown: `arping: unknown iface ${iface}`};
    const by = this.linkUp ? this.segment.answering(ip, this.name)[0] : undefined;
    if (by) return {taken: true, by: by.mac};
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    return {taken: false};
  }

  async announceIPv4(iface: string, ip: string): Promise<string | undefined> {
    if (iface !== this.iface) return `arping: unknown iface ${iface}`;
    if (this.linkUp) this.segment.announcements.push({by: this.name, ip, at: Date.now()});
    return undefined;
  }

  async promoteSecondaries(): Promise<string | undefined> {
    return undefined;
  }

  async ndiscNotify(): Promise<string | undefined> {
    return undefined;
  }
}
