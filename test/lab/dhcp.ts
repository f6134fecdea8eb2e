/**
 * A DHCP server on a segment, as a small office's router has one: Debian's
 * dnsmasq with DNS off, leasing a range of the segment from a router's
 * namespace, its lease table in a file the tests read. The lab's `--dhcp`
 * (Lab.addDhcpServer) and the DHCP lease tests (test/e2e/dhcp.test.ts) run it.
 */
import {mkdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {waitFor} from './bgp.js';
import {type Daemon, startDaemon} from './procs.js';

/** One row of dnsmasq's lease table: `expiry mac ip hostname client-id`. */
export interface DhcpLeaseRow {
  mac: string;
  ip: string;
  hostname: string;
  clientId: string;
  /** When it ends (s since the epoch). */
  expiry: number;
}

export interface DhcpServer {
  /** The server's address (its identifier in the leases). */
  server: string;
  range: {first: string; last: string};
  /** The lease table now. */
  leases(): Promise<DhcpLeaseRow[]>;
  /** What dnsmasq logged (each DHCP message with --log-dhcp). */
  log(): string;
  /** Stops the server; start() brings it back with its lease table. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Starts dnsmasq in namespace `ns` on `iface` (which has `server`),
 * leasing `first`..`last` for `leaseSeconds` (dnsmasq's shortest is 120).
 */
export async function startDhcpServer(options: {ns: string; iface: string; server: string; first: string; last: string; prefix: number; leaseSeconds?: number; dir: string}): Promise<DhcpServer> {
  await mkdir(options.dir, {recursive: true});
  const leaseFile = join(options.dir, 'dnsmasq.leases');
  const mask = ((0xffffffff << (32 - options.prefix)) >>> 0).toString(16).padStart(8, '0').match(/../g)!.map((h) => parseInt(h, 16)).join('.');
  let daemon: Daemon | undefined;
  const start = async () => {
    daemon = startDaemon('ip', ['netns', 'exec', options.ns, 'dnsmasq', '--keep-in-foreground', '--no-daemon', '--port=0', '--no-resolv', '--no-hosts',
      `--interface=${options.iface}`, '--bind-interfaces', `--dhcp-range=${options.first},${options.last},${mask},${options.leaseSeconds ?? 120}`,
      `--dhcp-leasefile=${leaseFile}`, `--pid-file=${join(options.dir, 'dnsmasq.pid')}`, '--log-dhcp', '--dhcp-authoritative']);
    const d = daemon;
    await waitFor('dnsmasq to listen on port 67', async () => {
      if (d.child.exitCode !== null) throw new Error(`dnsmasq exited: ${d.output().trim()}`);
      return (await execa('ip', ['netns', 'exec', options.ns, 'ss', '-Hulpn', 'sport = :67'])).stdout.includes('dnsmasq');
    }, 10000);
  };
  await start();
  return {
    server: options.server,
    range: {first: options.first, last: options.last},
    leases: async () => (await readFile(leaseFile, 'utf8').catch(() => '')).split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 5)
      .map(([expiry, mac, ip, hostname, clientId]) => ({mac, ip, hostname, clientId, expiry: Number(expiry)})),
    log: () => daemon?.output() ?? '',
    stop: async () => {
      await daemon?.stop();
    },
    start,
  };
}
