/**
 * The claim controllers' own view of who is alive, without the API server:
 * lib/membership.ts (SWIM) over UDP on the node network, its messages signed
 * with the keys of a Secret the role creates (mounted as a file).
 *
 * The keys file is JSON, a list of `{"key": <base64, 32 bytes or more>,
 * "from": <RFC 3339 time>}`: every key is taken, and the newest whose `from`
 * has passed signs. A re-install that rotates adds a key whose `from` lies
 * past the time the kubelet takes to bring every node's copy of the Secret up
 * to date, and keeps the old one: every member takes the new key before any
 * signs with it, so a rotation never makes a member deaf to another. The
 * file is read again every KEYS_REREAD_MS.
 *
 * Members are found through the IpNodes: each controller writes where it
 * listens on its own (PEER_ANNOTATION), and joins every other it sees. What
 * it learnt stays when the API server goes away.
 */
import {createSocket, type Socket} from 'node:dgram';
import {readFile} from 'node:fs/promises';
import {isIPv6} from 'node:net';
import {type Clock, type MemberState, Membership} from '../lib/membership.js';
import type {Logger} from './log.js';

/** On an IpNode: where its controller's membership listens (host:port, IPv6 in brackets). */
export const PEER_ANNOTATION = 'extip.io/peer';
/** How often the keys file is read again (a mounted Secret changes in place). */
export const KEYS_REREAD_MS = 10_000;

export interface PeerKeys {
  /** The key to sign with first, then every other. */
  keys: Buffer[];
  /** When a key not yet signing starts to (undefined: none waiting). */
  nextAt?: number;
}

/** Reads a keys file's text; a string says what is wrong with it. */
export function parsePeerKeys(text: string, now: number): PeerKeys | string {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!Array.isArray(list) || !list.length) return 'not a list of keys';
  const keys: Array<{key: Buffer; from: number}> = [];
  for (const [i, item] of list.entries()) {
    const key = typeof item?.key === 'string' ? Buffer.from(item.key, 'base64') : undefined;
    const from = typeof item?.from === 'string' ? Date.parse(item.from) : Number.NaN;
    if (!key || key.length < 32) return `key ${i + 1} is not base64 of 32 bytes or more`;
    if (Number.isNaN(from)) return `key ${i + 1} has no "from" time (RFC 3339)`;
    keys.push({key, from});
  }
  keys.sort((a, b) => b.from - a.from);
  const signing = keys.find((k) => k.from <= now) ?? keys[keys.length - 1];
  const waiting = keys.filter((k) => k.from > now).map((k) => k.from);
  return {keys: [signing.key, ...keys.filter((k) => k !== signing).map((k) => k.key)], nextAt: waiting.length ? Math.min(...waiting) : undefined};
}

/** host:port, with IPv6 hosts in brackets. */
export function peerAddress(ip: string, port: number): string {
  return isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function splitAddress(address: string): {host: string; port: number} | undefined {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  return m ? {host: m[1], port: Number(m[2])} : undefined;
}

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface PeersOptions {
  name: string;
  /** The node's address the members reach it on. */
  ip: string;
  port: number;
  keysFile: string;
  log: Logger;
  /** A member's state changed. */
  onChange: (name: string, state: MemberState) => void;
}

export class Peers {
  private socket?: Socket;
  private membership?: Membership;
  private reread?: NodeJS.Timeout;
  private keysText = '';
  readonly address: string;

  constructor(private readonly o: PeersOptions) {
    this.address = peerAddress(o.ip, o.port);
  }

  /** Reads the keys and listens; throws (saying what to change) when it cannot. */
  async start(): Promise<void> {
    const keys = await this.readKeys();
    if (typeof keys === 'string') throw new Error(`the peer keys in ${this.o.keysFile}: ${keys}`);
    this.membership = new Membership({
      self: {name: this.o.name, address: this.address},
      keys: keys.keys,
      clock: realClock,
      // Above any incarnation of an earlier run of this controller.
      incarnation: Math.floor(Date.now() / 1000),
      transport: {send: (address, data) => this.send(address, data)},
      onChange: (name, state) => this.o.onChange(name, state),
    });
    const socket = createSocket({type: isIPv6(this.o.ip) ? 'udp6' : 'udp4'});
    socket.on('message', (data) => this.membership?.receive(data));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.o.port, this.o.ip, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // A send to an unreachable member fails here, asynchronously: the probe's timeout says the rest.
    socket.on('error', () => undefined);
    this.socket = socket;
    this.membership.start();
    this.reread = setInterval(() => void this.refreshKeys(), KEYS_REREAD_MS);
    this.reread.unref();
  }

  private async readKeys(): Promise<PeerKeys | string> {
    const text = await readFile(this.o.keysFile, 'utf8').catch((err: NodeJS.ErrnoException) => `unreadable (${err.code ?? err.message})`);
    this.keysText = text;
    return text.startsWith('unreadable') ? text : parsePeerKeys(text, Date.now());
  }

  /** Takes a rotated Secret in, and starts signing with a new key once its time has come. */
  private async refreshKeys(): Promise<void> {
    const before = this.keysText;
    const keys = await this.readKeys();
    if (typeof keys === 'string') {
      if (this.keysText !== before) this.o.log.warn(`the peer keys in ${this.o.keysFile}: ${keys}; keeping the keys read before`);
      return;
    }
    this.membership?.setKeys(keys.keys);
  }

  private send(address: string, data: Buffer): void {
    const to = splitAddress(address);
    if (to && this.socket) this.socket.send(data, to.port, to.host);
  }

  /** The members to know, from the IpNodes: new ones join; those whose IpNode is gone are forgotten. */
  setMembers(members: ReadonlyArray<{name: string; address: string}>): void {
    const m = this.membership;
    if (!m) return;
    const names = new Set(members.map((p) => p.name));
    for (const v of m.view()) if (v.name !== this.o.name && !names.has(v.name)) m.forget(v.name);
    m.join(members);
  }

  state(name: string): MemberState | undefined {
    return this.membership?.state(name);
  }

  /** When the membership last saw `name` change state (Date.now's clock). */
  since(name: string): number | undefined {
    return this.membership?.since(name);
  }

  /** Whether other members are known and none has been heard for `windowMs`: this node is cut off from the group. */
  isolated(windowMs: number): boolean {
    const m = this.membership;
    if (!m) return true;
    if (m.view().length < 2) return true;
    const heard = m.lastHeard();
    return heard === undefined || Date.now() - heard > windowMs;
  }

  view(): Array<{name: string; state: MemberState}> {
    return this.membership?.view() ?? [];
  }

  /** Stops answering (the link is down, or the controller stops): the others find this member dead. */
  pause(): void {
    this.membership?.stop();
  }

  resume(): void {
    this.membership?.rejoin();
  }

  stop(): void {
    if (this.reread) clearInterval(this.reread);
    this.membership?.stop();
    this.socket?.close();
    this.socket = undefined;
  }
}
