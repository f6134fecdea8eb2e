/**
 * A rack's route reflector (extip_bgp_route_reflectors), held by the speaker
 * of one of the rack's nodes. The rack's controllers stand for a Lease; the
 * one that holds it brings the reflector's address up on the interface of
 * the rack's subnet (announced with gratuitous ARP, so the ToR's neighbour
 * entry follows it), and its BIRD takes the rack's speakers as clients and
 * passes every path to the ToR. When that controller goes (drain, SIGTERM,
 * its node lost and the Lease expired), another node of the rack takes the
 * Lease and the address: the ToR keeps peering with the same address, its
 * configuration unchanged.
 *
 * A holder that cannot renew the Lease for the renew deadline gives the
 * reflector up (its address down) before another can take it: the address
 * is never on two nodes at once.
 */
import {type RouteReflector} from '../lib/bgp.js';
import {formatIp, isCidr, parseCidr, parseIp} from '../lib/ipnet.js';
import {run} from '../lib/run.js';
import {readAddresses} from './addresses.js';
import {announceIPv4} from './announce.js';
import type {ApiClient} from './api.js';
import {LeaderElector} from './leader.js';
import {describe, type Logger} from './log.js';
import type {Speaker} from './speaker.js';

/** The Lease a reflector's holder keeps: the role's RBAC names it, uninstall deletes it. */
export function reflectorLeaseName(address: string): string {
  return `extip-reflector-${address.replace(/\./g, '-')}`;
}

export const REFLECTOR_LEASE = {durationMs: 6000, renewDeadlineMs: 4000, retryPeriodMs: 1000};

/** The interface and subnet on this node that hold `address`'s network (the rack's segment). */
export async function reflectorPlace(address: string): Promise<{iface: string; subnet: string} | undefined> {
  const ip = parseIp(address);
  if (!ip) return undefined;
  for (const a of await readAddresses()) {
    if (a.iface === 'lo' || !a.ip.includes('.') || a.prefix >= 32) continue;
    const c = parseCidr(`${a.ip}/${a.prefix}`, false);
    if (isCidr(c) && ip.family === c.family && ip.value >= c.network && ip.value <= c.last) {
      return {iface: a.iface, subnet: `${formatIp(c.network, c.family)}/${a.prefix}`};
    }
  }
  return undefined;
}

/** How long a node that could not take the reflector (no interface in its subnet, ip refused) stands aside. */
export const STAND_ASIDE_MS = 10000;

export class ReflectorHolder {
  private elector?: LeaderElector;
  private held?: {iface: string};
  private chain: Promise<void> = Promise.resolve();
  /** Until then this node does not stand for the Lease: it could not take the reflector. */
  private asideUntil = 0;

  constructor(
    private readonly api: ApiClient,
    private readonly reflector: RouteReflector,
    private readonly opts: {node: string; namespace: string; speaker: Speaker; announce: number},
    private readonly log: Logger,
  ) {}

  get holding(): boolean {
    return Boolean(this.held);
  }

  start(): void {
    this.elector = new LeaderElector(
      this.api,
      {
        namespace: this.opts.namespace,
        name: reflectorLeaseName(this.reflector.address),
        leaseDurationMs: REFLECTOR_LEASE.durationMs,
        renewDeadlineMs: REFLECTOR_LEASE.renewDeadlineMs,
        retryPeriodMs: REFLECTOR_LEASE.retryPeriodMs,
        identity: `${this.opts.node}_${process.pid}`,
        // A node that could not take the reflector gives the Lease up for another to try.
        eligible: () => Date.now() >= this.asideUntil,
        labels: {'app.kubernetes.io/managed-by': 'extip', 'app.kubernetes.io/part-of': 'externalip', 'app.kubernetes.io/component': 'route-reflector'},
      },
      this.log,
      () => void this.serial(() => this.take()),
      (why) => void this.serial(() => this.give(`the Lease is lost (${why})`)),
    );
    this.elector.start();
  }

  /** Gives the reflector up (its routes to the ToR, then its address) and the Lease with it. */
  async stop(): Promise<void> {
    await this.serial(() => this.give('the controller stops'));
    await this.elector?.stop();
  }

  private serial(work: () => Promise<void>): Promise<void> {
    const next = this.chain.then(work, work);
    this.chain = next.catch((err) => this.log.warn(`route reflector ${this.reflector.address}: ${describe(err)}`));
    return next;
  }

  private async take(): Promise<void> {
    if (this.held) return;
    const place = await reflectorPlace(this.reflector.address);
    if (!place) {
      this.asideUntil = Date.now() + STAND_ASIDE_MS;
      this.log.warn(`route reflector ${this.reflector.address}: no interface of ${this.opts.node} is in its subnet; giving the Lease up for ${STAND_ASIDE_MS / 1000} s`);
      return;
    }
    const added = await run('ip', ['address', 'replace', `${this.reflector.address}/32`, 'dev', place.iface]);
    if (added.exitCode !== 0) {
      this.asideUntil = Date.now() + STAND_ASIDE_MS;
      this.log.warn(`route reflector ${this.reflector.address}: cannot bring its address up on ${place.iface} (${added.stderr.trim()}); giving the Lease up for ${STAND_ASIDE_MS / 1000} s`);
      return;
    }
    this.held = {iface: place.iface};
    this.log.info(0, `route reflector ${this.reflector.address} taken: its address is up on ${place.iface}, reflecting ${this.reflector.nodes.join(', ')} to ${this.reflector.peers.map((p) => p.address).join(', ')}`);
    // The ToR's neighbour entry follows the address at the first gratuitous ARP; BIRD need not
    // wait for the rest of the burst.
    void announceIPv4(place.iface, this.reflector.address, Math.max(1, this.opts.announce)).then((failed) => {
      if (failed) this.log.warn(`route reflector ${this.reflector.address}: gratuitous ARP failed (${failed}); the ToR learns the new place when its entry expires`);
    });
    await this.opts.speaker.reflect({reflector: this.reflector, subnet: place.subnet});
  }

  private async give(why: string): Promise<void> {
    if (!this.held) return;
    const {iface} = this.held;
    await this.opts.speaker.reflect(undefined);
    const removed = await run('ip', ['address', 'del', `${this.reflector.address}/32`, 'dev', iface]);
    if (removed.exitCode !== 0 && !/Cannot assign|not found/i.test(removed.stderr)) this.log.warn(`route reflector ${this.reflector.address}: cannot take its address down: ${removed.stderr.trim()}`);
    this.held = undefined;
    this.log.info(0, `route reflector ${this.reflector.address} given up: ${why}`);
  }
}
