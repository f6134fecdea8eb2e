/**
 * What a claim controller needs of the world besides the API server, as
 * parameters: the host (its addresses, `ip`, its interfaces' links, ARP
 * probes and announcements), the membership of its peers, a clock, the
 * segment's UPnP gateway and its DHCP server. The
 * agent runs on `realWorld`; the tests give it a simulated segment of hosts
 * (test/helpers/simhost.ts) and an in-memory API server
 * (test/helpers/fakeapi.ts), so that the controller itself runs without root
 * and without a booted control plane.
 */
import {type HostAddress, ipBatch, operstate, promoteSecondaries, readAddresses} from './addresses.js';
import {type Probe, announceIPv4, ndiscNotify, probeIPv4} from './announce.js';
import type {RunResult} from '../lib/run.js';
import type {MemberState} from '../lib/membership.js';
import {Peers, type PeersOptions} from './peers.js';
import {type UpnpGatewayClient, realGatewayClient} from './upnpkeeper.js';
import {DhcpLease, type DhcpLeaseOptions} from './dhcp.js';

/** Time, and timers that a test can run faster or slower. A cancel function is returned for each timer. */
export interface Clock {
  now(): number;
  /** Once, after `ms`; does not keep the process alive. */
  after(ms: number, fn: () => void): () => void;
  /** Every `ms` until cancelled. */
  every(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
};

/** The host's side of the addresses. */
export interface Host {
  /** Every address on the host (`ip -j address show`). */
  addresses(): Promise<HostAddress[]>;
  /** Runs `ip -force -batch -` with these lines (`address add|del CIDR dev IFACE [label L]`). */
  ipBatch(lines: readonly string[]): Promise<RunResult>;
  /** The interface's operstate (`up`, `down`, `lowerlayerdown`, `unknown`...), `gone` when there is no such interface. */
  linkState(iface: string): Promise<string>;
  /** Whether another host on the segment answers for `ip` (an ARP probe from 0.0.0.0), waiting up to `waitMs`. */
  probeIPv4(iface: string, ip: string, waitMs: number): Promise<Probe>;
  /** Gratuitous ARP for `ip`, `count` times; why it could not, if it could not. */
  announceIPv4(iface: string, ip: string, count: number): Promise<string | undefined>;
  /** Turns on promote_secondaries; why it could not. */
  promoteSecondaries(iface: string): Promise<string | undefined>;
  /** Turns on ndisc_notify; why it could not. */
  ndiscNotify(iface: string): Promise<string | undefined>;
}

export const realHost: Host = {
  addresses: readAddresses,
  ipBatch,
  linkState: (iface) => operstate(iface),
  probeIPv4: (iface, ip, waitMs) => probeIPv4(iface, ip, waitMs),
  announceIPv4,
  promoteSecondaries,
  ndiscNotify,
};

/** The controllers' membership as the claim controller uses it (agent/peers.ts's Peers). */
export interface PeerGroup {
  readonly address: string;
  start(): Promise<void>;
  setMembers(members: ReadonlyArray<{name: string; address: string}>): void;
  state(name: string): MemberState | undefined;
  since(name: string): number | undefined;
  isolated(windowMs: number): boolean;
  view(): Array<{name: string; state: MemberState}>;
  pause(): void;
  resume(): void;
  stop(): void;
}

export interface ClaimWorld {
  clock: Clock;
  host: Host;
  /** Makes the membership the controller joins (`--peer-port`). */
  peers(options: PeersOptions): PeerGroup;
  /** The segment's UPnP Internet gateway, as the holders of claims with UPnP ports speak to it. */
  upnp: UpnpGatewayClient;
  /** Takes a Service's DHCP lease on this node (agent/dhcp.ts's DhcpLease). */
  dhcp(options: DhcpLeaseOptions): LeaseTaker;
}

/** One Service's DHCP lease on this node, as the claim controller drives it (agent/dhcp.ts's DhcpLease). */
export interface LeaseTaker {
  readonly mac: string;
  readonly link: string;
  start(): Promise<void>;
  release(): Promise<void>;
  stop(options?: {keepLink?: boolean}): Promise<void>;
}

export const realWorld: ClaimWorld = {
  clock: systemClock,
  host: realHost,
  peers: (options) => new Peers(options),
  upnp: realGatewayClient,
  dhcp: (options) => new DhcpLease(options),
};
