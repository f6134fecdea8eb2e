/**
 * The addresses the agent owns on its interface, and the one `ip -batch` that
 * changes them. IPv4 addresses it adds carry a label (`<iface>:extip`); IPv6
 * addresses cannot carry labels (and iproute2 here has no address protocol),
 * so the ones it adds are recorded in a state file. It never removes an
 * address it did not add.
 */
import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {isIPv4, isIPv6} from 'node:net';
import {run} from '../run.js';

export interface HostAddress {
  iface: string;
  ip: string;
  prefix: number;
  label?: string;
}

/** The label marking the agent's IPv4 addresses: `<iface>:extip`, shortened to fit 15 characters. */
export function ownLabel(iface: string): string | undefined {
  const room = 15 - iface.length - 1;
  return room >= 1 ? `${iface}:${'extip'.slice(0, room)}` : undefined;
}

/** Every address on the host, from `ip -j address show`. */
export async function readAddresses(): Promise<HostAddress[]> {
  const r = await run('ip', ['-j', 'address', 'show'], {installHint: 'install iproute2'});
  if (r.exitCode !== 0) throw new Error(`ip address show failed: ${r.stderr.trim()}`);
  const links = JSON.parse(r.stdout || '[]') as Array<{ifname: string; addr_info?: Array<{local: string; prefixlen: number; label?: string}>}>;
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => ({iface: l.ifname, ip: a.local, prefix: a.prefixlen, label: a.label})));
}

export class Ownership {
  private recorded = new Set<string>();
  private readonly file: string;

  constructor(
    private readonly stateDir: string,
    readonly iface: string,
  ) {
    this.file = join(stateDir, `owned-${iface}.json`);
  }

  async load(): Promise<void> {
    try {
      this.recorded = new Set(JSON.parse(await readFile(this.file, 'utf8')) as string[]);
    } catch {
      this.recorded = new Set();
    }
  }

  private async save(): Promise<void> {
    // Nothing recorded, nothing left behind.
    if (!this.recorded.size) {
      await rm(this.file, {force: true});
      return;
    }
    await mkdir(this.stateDir, {recursive: true});
    const temp = `${this.file}.tmp`;
    await writeFile(temp, JSON.stringify([...this.recorded].sort()));
    await rename(temp, this.file);
  }

  /** Whether an address on the interface is one the agent added. */
  owns(a: HostAddress): boolean {
    if (a.iface !== this.iface) return false;
    if (isIPv4(a.ip)) {
      const label = ownLabel(this.iface);
      return label !== undefined ? a.label === label : this.recorded.has(`${a.ip}/${a.prefix}`);
    }
    return this.recorded.has(`${a.ip}/${a.prefix}`);
  }

  /** Applies the changes with one `ip -batch`, records the unlabelled ones, and returns the lines that failed. */
  async apply(add: string[], remove: string[]): Promise<string[]> {
    if (!add.length && !remove.length) return [];
    const label = ownLabel(this.iface);
    const lines = [
      ...remove.map((cidr) => `address del ${cidr} dev ${this.iface}`),
      ...add.map((cidr) => `address add ${cidr} dev ${this.iface}${label && isIPv4(cidr.split('/')[0]) ? ` label ${label}` : ''}`),
    ];
    for (const cidr of add) if (isIPv6(cidr.split('/')[0]) || !label) this.recorded.add(cidr);
    await this.save();
    const r = await run('ip', ['-force', '-batch', '-'], {input: lines.join('\n') + '\n'});
    for (const cidr of remove) this.recorded.delete(cidr);
    await this.save();
    if (r.exitCode === 0) return [];
    return r.stderr.split('\n').filter((l) => l.trim());
  }
}
