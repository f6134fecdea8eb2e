/**
 * What each of the agent's controllers (naive, claimcontroller, scheduler) is
 * built from: the API client, its flags, log and metrics, the address policy
 * its flags declare, one reconcile pass at a time, and warnings said once.
 */
import type {AgentFlags} from '../lib/agent-flags.js';
import {type AddressPolicy, policyFrom} from '../lib/policy.js';
import type {ApiClient} from './api.js';
import {type Logger, onceEach} from './log.js';
import type {Metrics} from './metrics.js';
import {SerialPasses} from './serial.js';
import {type Clock, systemClock} from './world.js';

export abstract class Component {
  protected readonly passes: SerialPasses;
  protected readonly warnOnce: (message: string) => void;
  protected readonly policy: AddressPolicy;

  constructor(
    protected readonly api: ApiClient,
    protected readonly flags: AgentFlags,
    protected readonly log: Logger,
    readonly metrics: Metrics,
    /** What a pass does, for the log line of a failed one. */
    what: string,
    /** The clock a failed pass's time is read from. */
    clock: Pick<Clock, 'now'> = systemClock,
  ) {
    this.passes = new SerialPasses({what, metrics, log, next: () => this.schedule(), now: () => clock.now()});
    this.warnOnce = onceEach(log);
    this.policy = policyFrom(flags, api.server);
  }

  /** Asks for a pass (coalesced with one already asked for or running). */
  abstract schedule(): void;
}
