/**
 * The addresses the agent owns on its interface, and the one `ip -batch` that
 * changes them.
 *
 * Ownership is recorded per workload: each agent (`--owner`) keeps a record
 * `<state-dir>/owners/<iface>/<owner>.json` of the addresses it added, written
 * before it adds them and rewritten after with only those that came up. An
 * address leaves the interface only when its owner no longer wants it and no
 * other live owner's record lists it, so two agents on one node (a renamed
 * DaemonSet, two installs) never take down each other's addresses. IPv4
 * addresses it adds also carry the label `<iface>:extip`, so that people and
 * the role's uninstall can tell extip's addresses from the node's own.
 */
import {mkdir, readFile, readdir, rename, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {isIPv4} from 'node:net';
import {type RunResult, run} from '../lib/run.js';
import {canonicalIp} from '../lib/ipnet.js';

export interface HostAddress {
  iface: string;
  ip: string;
  prefix: number;
  label?: string;
  /** IPv6: the kernel's duplicate address detection found another holder. */
  dadfailed?: boolean;
  /** IPv6: duplicate address detection still running. */
  tentative?: boolean;
}

/** A record older than this belongs to an owner that is gone (records are rewritten every few seconds). */
export const OWNER_LIVE_MS = 60000;

/** The label marking the agent's IPv4 addresses: `<iface>:extip`, shortened to fit 15 characters. */
export function ownLabel(iface: string): string | undefined {
  const room = 15 - iface.length - 1;
  return room >= 1 ? `${iface}:${'extip'.slice(0, room)}` : undefined;
}

/** Every address on the host, from `ip -j address show`. */
export async function readAddresses(): Promise<HostAddress[]> {
  const r = await run('ip', ['-j', 'address', 'show'], {installHint: 'install iproute2'});
  if (r.exitCode !== 0) throw new Error(`ip address show failed: ${r.stderr.trim()}`);
  const links = JSON.parse(r.stdout || '[]') as Array<{ifname: string; addr_info?: Array<{local: string; prefixlen: number; label?: string; dadfailed?: boolean; tentative?: boolean}>}>;
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => ({iface: l.ifname, ip: a.local, prefix: a.prefixlen, label: a.label, ...(a.dadfailed ? {dadfailed: true} : {}), ...(a.tentative ? {tentative: true} : {})})));
}

/** An interface's operstate from sysfs; `gone` when there is no such interface. */
export function operstate(iface: string, sys = '/sys/class/net'): Promise<string> {
  return readFile(`${sys}/${iface}/operstate`, 'utf8').then((t) => t.trim(), () => 'gone');
}

/** `ip -force -batch -` with these lines. */
export function ipBatch(lines: readonly string[]): Promise<RunResult> {
  return run('ip', ['-force', '-batch', '-'], {input: lines.join('\n') + '\n', installHint: 'install iproute2'});
}

/** What an owner needs of the host: its addresses, and `ip -batch` (agent/world.ts's Host). */
export interface AddressHost {
  addresses(): Promise<HostAddress[]>;
  ipBatch(lines: readonly string[]): Promise<RunResult>;
}

const thisHost: AddressHost = {addresses: readAddresses, ipBatch};

/** The subnets of the interface's own addresses (IPv4 and IPv6, prefixes short enough to have edges), as CIDRs. */
export function interfaceSubnets(host: readonly HostAddress[], iface: string): string[] {
  return [...new Set(host.filter((a) => a.iface === iface && a.prefix <= (isIPv4(a.ip) ? 30 : 126)).map((a) => `${a.ip}/${a.prefix}`))];
}

/** `ip -batch` reports a failed line as "Command failed -:N"; the 1-based numbers of those lines. */
export function failedBatchLines(stderr: string): Set<number> {
  return new Set([...stderr.matchAll(/Command failed -:(\d+)/g)].map((m) => Number(m[1])));
}

interface OwnerRecord {
  owner: string;
  iface: string;
  /** When the owner last wrote it (ms since the epoch). */
  updated: number;
  addresses: string[];
}

export interface ApplyResult {
  /** The lines `ip` refused, with its message. */
  failed: string[];
  /** Addresses that another address's removal took down (no promote_secondaries) and that were put back. */
  restored: string[];
}

export class Ownership {
  private mine = new Set<string>();
  private readonly dir: string;
  private readonly file: string;
  readonly label: string | undefined;

  constructor(
    private readonly stateDir: string,
    readonly iface: string,
    readonly owner: string,
    private readonly host: AddressHost = thisHost,
  ) {
    this.dir = join(stateDir, 'owners', iface);
    this.file = join(this.dir, `${owner}.json`);
    this.label = ownLabel(iface);
  }

  /** Reads this owner's record (and the single-owner file of earlier versions, which it takes over). */
  async load(): Promise<void> {
    const record = await readRecord(this.file);
    this.mine = new Set(record?.addresses ?? []);
    const legacy = join(this.stateDir, `owned-${this.iface}.json`);
    try {
      for (const cidr of JSON.parse(await readFile(legacy, 'utf8')) as string[]) {
        const [ip, prefix] = cidr.split('/');
        const c = canonicalIp(ip);
        if ('ip' in c) this.mine.add(`${c.ip}/${prefix}`);
      }
      await this.save();
      await rm(legacy, {force: true});
    } catch {
      // No file of an earlier version.
    }
  }

  owns(cidr: string): boolean {
    return this.mine.has(cidr);
  }

  get addresses(): string[] {
    return [...this.mine].sort();
  }

  /** The addresses other live owners of this interface have recorded. */
  async othersWant(now = Date.now()): Promise<Set<string>> {
    return new Set((await this.liveOthers(now)).flatMap((r) => r.addresses));
  }

  /** The other owners of this interface whose records are live: other extip agents serving this node. */
  async otherOwners(now = Date.now()): Promise<string[]> {
    return (await this.liveOthers(now)).map((r) => r.owner).sort();
  }

  private async liveOthers(now: number): Promise<OwnerRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const live: OwnerRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json') || name === `${this.owner}.json`) continue;
      const record = await readRecord(join(this.dir, name));
      if (record && now - record.updated <= OWNER_LIVE_MS) live.push(record);
    }
    return live;
  }

  /** Rewrites the record (also as a sign of life: other owners ignore records older than OWNER_LIVE_MS). */
  async save(): Promise<void> {
    await mkdir(this.dir, {recursive: true});
    const record: OwnerRecord = {owner: this.owner, iface: this.iface, updated: Date.now(), addresses: this.addresses};
    const temp = `${this.file}.tmp`;
    await writeFile(temp, JSON.stringify(record));
    await rename(temp, this.file);
  }

  /** Forgets the record entirely (the owner is leaving and holds nothing). */
  async drop(): Promise<void> {
    this.mine.clear();
    await rm(this.file, {force: true});
  }

  /** Takes addresses into, or out of, the record without touching the interface. */
  async adopt(add: readonly string[], release: readonly string[]): Promise<void> {
    if (!add.length && !release.length) return;
    for (const cidr of add) this.mine.add(cidr);
    for (const cidr of release) this.mine.delete(cidr);
    await this.save();
  }

  /**
   * Takes down every address in the record that is on the interface and that
   * no other live owner wants. Those others want stay up, and stay in the
   * record until the caller drops or releases it.
   */
  async withdraw(): Promise<{removed: string[]; shared: string[]; failed: string[]}> {
    const [host, others] = await Promise.all([this.host.addresses(), this.othersWant()]);
    const onIface = new Set(host.filter((a) => a.iface === this.iface).map((a) => `${a.ip}/${a.prefix}`));
    const mine = this.addresses;
    const removed = mine.filter((cidr) => onIface.has(cidr) && !others.has(cidr));
    const shared = mine.filter((cidr) => others.has(cidr));
    const result = await this.apply([], removed, host);
    return {removed, shared, failed: result.failed};
  }

  /**
   * Applies the changes with one `ip -batch`. Additions are recorded before
   * they are made (a crash in between leaves nothing unrecorded) and dropped
   * from the record again when `ip` refused them. `before` is the interface as
   * read for the plan: an IPv4 removal that took other addresses of its subnet
   * with it (the kernel does that to secondaries of a removed primary unless
   * promote_secondaries is on) is repaired by adding them back.
   */
  async apply(add: string[], remove: string[], before: readonly HostAddress[]): Promise<ApplyResult> {
    if (!add.length && !remove.length) return {failed: [], restored: []};
    const lines = [
      ...remove.map((cidr) => `address del ${cidr} dev ${this.iface}`),
      ...add.map((cidr) => this.addLine(cidr)),
    ];
    for (const cidr of add) this.mine.add(cidr);
    await this.save();
    const r = await this.host.ipBatch(lines);
    const failedLines = r.exitCode === 0 ? new Set<number>() : failedBatchLines(r.stderr);
    // A removal that failed because the address is gone is as good as done.
    for (const cidr of remove) this.mine.delete(cidr);
    add.forEach((cidr, i) => {
      if (failedLines.has(remove.length + i + 1)) this.mine.delete(cidr);
    });
    await this.save();
    const failed = r.exitCode === 0 ? [] : r.stderr.split('\n').filter((l) => l.trim());
    const restored = this.cascadePossible(remove, before) ? await this.restoreCascade(remove, before) : [];
    return {failed, restored};
  }

  private addLine(cidr: string, label?: string): string {
    const own = label ?? (isIPv4(cidr.split('/')[0]) ? this.label : undefined);
    return `address add ${cidr} dev ${this.iface}${own ? ` label ${own}` : ''}`;
  }

  /** Whether removing these could have taken other IPv4 addresses of the same subnet along. */
  private cascadePossible(remove: readonly string[], before: readonly HostAddress[]): boolean {
    const v4 = before.filter((a) => a.iface === this.iface && isIPv4(a.ip));
    return remove.some((cidr) => {
      const [ip, prefix] = cidr.split('/');
      if (!isIPv4(ip) || Number(prefix) >= 32) return false;
      return v4.some((a) => a.ip !== ip && a.prefix === Number(prefix) && sameSubnet(a.ip, ip, a.prefix));
    });
  }

  private async restoreCascade(remove: readonly string[], before: readonly HostAddress[]): Promise<string[]> {
    const now = new Set((await this.host.addresses()).filter((a) => a.iface === this.iface).map((a) => `${a.ip}/${a.prefix}`));
    const gone = before.filter((a) => a.iface === this.iface && isIPv4(a.ip) && !remove.includes(`${a.ip}/${a.prefix}`) && !now.has(`${a.ip}/${a.prefix}`));
    if (!gone.length) return [];
    await this.host.ipBatch(gone.map((a) => this.addLine(`${a.ip}/${a.prefix}`, a.label && a.label !== this.iface ? a.label : undefined)));
    return gone.map((a) => `${a.ip}/${a.prefix}`);
  }
}

async function readRecord(file: string): Promise<OwnerRecord | undefined> {
  return parseOwnerRecord(await readFile(file, 'utf8').catch(() => ''));
}

/**
 * An owner record's text, read as the role's uninstall reads it too
 * (extip_nodes.py, both running test/fixtures/owner-cases.json): an object
 * with a list of addresses and when it was written; anything else is no record.
 */
export function parseOwnerRecord(text: string): OwnerRecord | undefined {
  let data: Partial<OwnerRecord>;
  try {
    data = JSON.parse(text) as Partial<OwnerRecord>;
  } catch {
    return undefined;
  }
  if (!data || typeof data !== 'object' || !Array.isArray(data.addresses) || typeof data.updated !== 'number') return undefined;
  return {owner: String(data.owner), iface: String(data.iface), updated: data.updated, addresses: data.addresses.map(String)};
}

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function sameSubnet(a: string, b: string, prefix: number): boolean {
  const size = 2 ** (32 - prefix);
  return Math.floor(ipv4Number(a) / size) === Math.floor(ipv4Number(b) / size);
}

/**
 * Turns on promote_secondaries for the interface, so that removing the
 * primary address of a subnet promotes the next one instead of deleting every
 * address of that subnet. Returns why it could not (a read-only /proc/sys).
 */
export async function promoteSecondaries(iface: string): Promise<string | undefined> {
  return switchOn(`/proc/sys/net/ipv4/conf/${iface}/promote_secondaries`);
}

/** Sets a /proc/sys switch to 1 unless it is already; returns why it could not (a read-only /proc/sys). */
export async function switchOn(file: string): Promise<string | undefined> {
  try {
    if ((await readFile(file, 'utf8')).trim() === '1') return undefined;
    await writeFile(file, '1');
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}
