/**
 * Claims mode's agents on a simulated cluster, without root and without a
 * control plane: the in-memory API server (test/helpers/fakeapi.ts, held to
 * the real one by a contract test), hosts on a simulated segment
 * (test/helpers/simhost.ts, held to `ip` and arping the same way), the
 * controllers' real membership over UDP on loopback (one shared key), and the
 * system clock. A test adds claim controllers, one a node, and schedulers,
 * each with an API client it can cut as a crash would; it reads who holds
 * each address and samples that every 20 ms, as the lab's tests do.
 */
import {randomBytes} from 'node:crypto';
import {createSocket} from 'node:dgram';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {Ownership} from '../../agent/addresses.js';
import {ApiClient, type ApiResponse, type Json} from '../../agent/api.js';
import {ClaimController} from '../../agent/claimcontroller.js';
import type {Logger} from '../../agent/log.js';
import {Metrics} from '../../agent/metrics.js';
import {Scheduler} from '../../agent/scheduler.js';
import {type ClaimWorld, realWorld, systemClock} from '../../agent/world.js';
import {parseAgentFlags} from '../../lib/agent-flags.js';
import {FakeApi} from './fakeapi.js';
import {type SimHost, SimSegment} from './simhost.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A free UDP port on loopback. */
export async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A Logger that keeps its lines, each with the seconds and milliseconds it was said at. */
export function logger(lines: string[]): Logger {
  const at = () => new Date().toISOString().slice(17, 23);
  return {info: (_l, m) => void lines.push(`${at()} I ${m}`), warn: (m) => void lines.push(`${at()} W ${m}`), error: (m) => void lines.push(`${at()} E ${m}`)};
}

/**
 * An API client whose process can be made to vanish: once cut, every request
 * fails as against a closed port, open watches end and nothing more is
 * delivered. A scheduler stopped after its client was cut cannot give its
 * Lease up: it is gone as a killed process or a lost node is.
 */
export class CuttableClient extends ApiClient {
  private cut = false;
  private readonly open = new Set<AbortController>();

  override async request(method: string, path: string, body?: unknown, options: {timeoutMs?: number; contentType?: string} = {}): Promise<ApiResponse> {
    if (this.cut) throw new Error(`${method} ${path}: connect ECONNREFUSED (this process is gone)`);
    return super.request(method, path, body, options);
  }

  override async watch(path: string, onEvent: (type: string, object: Json) => void, signal: AbortSignal, onOpen?: () => void, limits: {deadlineMs?: number; idleMs?: number} = {}): Promise<{status: number; err?: Error}> {
    if (this.cut) return {status: 0, err: new Error('connect ECONNREFUSED (this process is gone)')};
    const own = new AbortController();
    signal.addEventListener('abort', () => own.abort(), {once: true});
    this.open.add(own);
    try {
      return await super.watch(path, (type, object) => {
        if (!this.cut) onEvent(type, object);
      }, own.signal, onOpen, limits);
    } finally {
      this.open.delete(own);
    }
  }

  /** From now on this client reaches nothing. */
  sever(): void {
    this.cut = true;
    for (const c of this.open) c.abort();
  }
}

export interface SimNode {
  name: string;
  host: SimHost;
  /** What of its world the test stood in for, besides the host and the clock. */
  world: Partial<ClaimWorld>;
  controller: ClaimController;
  flags: string[];
  lines: string[];
}

export interface SimScheduler {
  name: string;
  scheduler: Scheduler;
  client: CuttableClient;
  lines: string[];
}

export class SimCluster {
  readonly segment = new SimSegment();
  readonly nodes = new Map<string, SimNode>();
  readonly schedulers = new Map<string, SimScheduler>();
  private readonly sampling = new Set<() => void>();

  private constructor(readonly api: FakeApi, readonly dir: string, private readonly keysFile: string) {}

  static async start(): Promise<SimCluster> {
    const api = await FakeApi.start();
    const dir = await mkdtemp(join(tmpdir(), 'extip-simcluster-'));
    const keysFile = join(dir, 'keys.json');
    await writeFile(keysFile, JSON.stringify([{key: randomBytes(32).toString('base64'), from: '2020-01-01T00:00:00Z'}]));
    return new SimCluster(api, dir, keysFile);
  }

  /**
   * A host on the segment with a claim controller: heartbeat 500 ms,
   * --monitor 1.5 s, its membership on a free port; `world` stands in for
   * more of its world (the UPnP gateway).
   */
  async addNode(name: string, address: string, world: Partial<ClaimWorld> = {}): Promise<SimNode> {
    const host = this.segment.add(name, 'eth0', address);
    const flags = [`--hostname=${name}`, '--iface=eth0', '--hb=500ms', '--monitor=1500ms', '--dad-wait=100ms', `--state-dir=${join(this.dir, name)}`,
      `--peer-port=${await freePort()}`, '--peer-address=127.0.0.1', `--peer-keys=${this.keysFile}`];
    const lines: string[] = [];
    const node: SimNode = {name, host, flags, lines, world, controller: await this.controller(name, host, flags, lines, world)};
    this.nodes.set(name, node);
    return node;
  }

  /** The node's controller anew, as its DaemonSet restarts it (the same state directory). */
  async restart(node: SimNode): Promise<void> {
    node.controller = await this.controller(node.name, node.host, node.flags, node.lines, node.world);
  }

  private async controller(name: string, host: SimHost, flags: string[], lines: string[], world: Partial<ClaimWorld>): Promise<ClaimController> {
    const f = parseAgentFlags(flags);
    const c = new ClaimController(this.api.client(), f, new Ownership(f.stateDir, f.iface, f.owner, host), logger(lines), new Metrics(), name, {...realWorld, clock: systemClock, host, ...world});
    await c.start();
    return c;
  }

  /** A scheduler with leader election on the Lease default/ipmanager-scheduler; `flags` add to (or override) --monitor=1.5s and a 2 s lease. */
  async addScheduler(name: string, flags: string[] = []): Promise<SimScheduler> {
    const f = parseAgentFlags(['--iface=eth0', '--monitor=1500ms', '--leader-elect', '--leader-elect-lease-duration=2s', '--leader-elect-resource-namespace=default', ...flags]);
    const client = new CuttableClient({server: this.api.url, insecure: true, token: () => undefined});
    const lines: string[] = [];
    const scheduler = new Scheduler(client, f, logger(lines), new Metrics());
    await scheduler.start();
    const s = {name, scheduler, client, lines};
    this.schedulers.set(name, s);
    return s;
  }

  /** The scheduler vanishes as a killed process does: it gives nothing up. */
  async crash(s: SimScheduler): Promise<void> {
    s.client.sever();
    await s.scheduler.stop();
    this.schedulers.delete(s.name);
  }

  /** Waits until `ok`, at most `ms`; on failure says what every agent said last. */
  async until(what: string, ok: () => boolean, ms = 8000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) {
        const logs = [...[...this.nodes.values()].map((n) => [n.name, n.lines] as const), ...[...this.schedulers.values()].map((s) => [s.name, s.lines] as const)];
        throw new Error(`not within ${ms} ms: ${what}\n${logs.map(([name, lines]) => `${name}:\n  ${lines.slice(-15).join('\n  ')}`).join('\n')}`);
      }
      await sleep(20);
    }
  }

  /** Who holds each of these addresses now (hosts whose link is up, and those whose link is down, alike). */
  holders(addresses: readonly string[]): Map<string, string[]> {
    const out = new Map<string, string[]>(addresses.map((a) => [a, []]));
    for (const n of this.nodes.values()) for (const cidr of n.host.held()) out.get(cidr.split('/')[0])?.push(n.name);
    return out;
  }

  /** Samples every 20 ms until stopped: two holders on the segment at once, and how long each address had none that answers. */
  sampler(addresses: readonly string[]): {stop: () => Promise<{doubles: string[]; longestGap: Map<string, number>}>} {
    const doubles: string[] = [];
    const longestGap = new Map<string, number>();
    const since = new Map<string, number>();
    let running = true;
    const halt = () => void (running = false);
    this.sampling.add(halt);
    const loop = (async () => {
      while (running) {
        const now = Date.now();
        for (const [ip, who] of this.holders(addresses)) {
          const answering = who.filter((n) => this.nodes.get(n)!.host.linkUp);
          if (answering.length > 1) doubles.push(`${ip} on ${answering.join(', ')}`);
          if (answering.length) {
            const from = since.get(ip);
            if (from !== undefined) longestGap.set(ip, Math.max(longestGap.get(ip) ?? 0, now - from));
            since.delete(ip);
          } else if (!since.has(ip)) {
            since.set(ip, now);
          }
        }
        await sleep(20);
      }
    })();
    return {
      stop: async () => {
        running = false;
        this.sampling.delete(halt);
        await loop;
        // Still without a holder at the end: no gap that ended.
        for (const ip of since.keys()) longestGap.set(ip, Infinity);
        return {doubles, longestGap};
      },
    };
  }

  /** Stops every sampler, scheduler and controller (leaving their addresses), then the API server; removes the state. */
  async stop(): Promise<void> {
    for (const halt of this.sampling) halt();
    this.sampling.clear();
    for (const s of this.schedulers.values()) await s.scheduler.stop();
    this.schedulers.clear();
    for (const n of this.nodes.values()) await n.controller.stop(false);
    this.nodes.clear();
    await this.api.stop();
    await rm(this.dir, {recursive: true, force: true});
  }
}
