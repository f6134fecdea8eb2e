/**
 * Hosts on one simulated layer-2 segment, each a `Host` (agent/world.ts) for
 * a claim controller: its interfaces' IPv4 addresses as `ip` keeps them,
 * changed by the lines `ip -force -batch -` takes (`address add|del CIDR dev
 * IFACE [label L]`, with its messages and exit status for the lines it
 * refuses), its links' operstate, and ARP probes that another host answers
 * when it has the address up on its interface and both links are up.
 * test/e2e/simhost.test.ts holds what it answers to the real `ip`, sysfs and
 * arping in network namespaces.
 *
 * Not modelled: IPv6 (duplicate address detection, link-local addresses),
 * routes, and arping's own timing (a probe here waits its full time when
 * nobody answers, and answers at once otherwise).
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

  /** The hosts that answer ARP for `ip` on the segment: the address on their segment interface, its link up. */
  answering(ip: string, except?: string): SimHost[] {
    return [...this.hosts.values()].filter((h) => h.name !== except && h.linkUp && h.has(h.iface, ip));
  }
}

export class SimHost implements Host {
  /** The segment interface's link (`ip link set IFACE down` on the host, or a cable). */
  linkUp = true;
  /** Addresses by interface, in the order `ip` lists them. */
  private readonly addrs = new Map<string, Array<{ip: string; prefix: number; label: string}>>();
  readonly mac: string;

  constructor(private readonly segment: SimSegment, readonly name: string, readonly iface: string, own: string) {
    this.addrs.set('lo', [{ip: '127.0.0.1', prefix: 8, label: 'lo'}]);
    this.addrs.set(iface, [{ip: own, prefix: 24, label: iface}]);
    this.mac = `02:00:00:00:00:${(segment.hosts.size + 1).toString(16).padStart(2, '0')}`;
  }

  has(iface: string, ip: string): boolean {
    return Boolean(this.addrs.get(iface)?.some((a) => a.ip === ip));
  }

  /** The addresses on the segment interface besides the host's own, as `ip/prefix`. */
  held(): string[] {
    return (this.addrs.get(this.iface) ?? []).slice(1).map((a) => `${a.ip}/${a.prefix}`);
  }

  async addresses(): Promise<HostAddress[]> {
    return [...this.addrs].flatMap(([iface, list]) => list.map((a) => ({iface, ip: a.ip, prefix: a.prefix, label: a.label})));
  }

  async ipBatch(lines: readonly string[]): Promise<RunResult> {
    const errors: string[] = [];
    lines.forEach((line, i) => {
      const m = /^address (add|del) (\d+\.\d+\.\d+\.\d+)\/(\d+) dev (\S+)(?: label (\S+))?$/.exec(line.trim());
      const list = m ? this.addrs.get(m[4]) : undefined;
      if (!m || !list) {
        errors.push(m ? `Cannot find device "${m[4]}"` : `Error: cannot read "${line}"`, `Command failed -:${i + 1}`);
        return;
      }
      const [, op, ip, prefix, iface, label] = m;
      const at = list.findIndex((a) => a.ip === ip && a.prefix === Number(prefix));
      if (op === 'add') {
        if (at >= 0) errors.push('Error: ipv4: Address already assigned.', `Command failed -:${i + 1}`);
        else list.push({ip, prefix: Number(prefix), label: label ?? iface});
      } else if (at < 0) {
        errors.push('Error: ipv4: Address not found.', `Command failed -:${i + 1}`);
      } else {
        list.splice(at, 1);
      }
    });
    return {exitCode: errors.length ? 1 : 0, stdout: '', stderr: errors.map((e) => `${e}\n`).join(''), timedOut: false};
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
