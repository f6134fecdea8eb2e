/**
 * One pass at a time of a reconcile loop. A pass asked for while one runs is
 * owed: the running one is followed by another at once, so a burst of events
 * costs at most two passes and none is missed. Each pass's failure is counted
 * and logged, and its duration observed, in the component's metrics.
 */
import {type Logger, describe} from './log.js';
import type {Metrics} from './metrics.js';

/**
 * Passes that fail in a row before a component counts as failing: it is then
 * not ready (its pod's readiness, `extip status`), and a scheduler gives its
 * Lease up to a standby.
 */
export const FAILING_PASSES = 3;

export class SerialPasses {
  private active = false;
  private owed = false;
  /** Passes that failed in a row (0 after one that succeeded), and when the last of them failed. */
  failures = 0;
  lastFailureAt = 0;

  private readonly what: string;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly next: () => void;
  private readonly now: () => number;

  /**
   * what: what a pass does, for the log line of a failed one ("reconcile");
   * next: starts the owed pass (the component's schedule()); now: the
   * clock a failure's time is read from (default: the system's).
   */
  constructor(options: {what: string; metrics: Metrics; log: Logger; next: () => void; now?: () => number}) {
    ({what: this.what, metrics: this.metrics, log: this.log, next: this.next} = options);
    this.now = options.now ?? Date.now;
  }

  get running(): boolean {
    return this.active;
  }

  /** Whether a pass runs now; if one does, another is owed when it ends. */
  busy(): boolean {
    if (this.active) this.owed = true;
    return this.active;
  }

  async run(pass: () => Promise<void>): Promise<void> {
    this.active = true;
    const started = process.hrtime.bigint();
    try {
      await pass();
      this.failures = 0;
    } catch (err) {
      this.metrics.errors++;
      this.failures++;
      this.lastFailureAt = this.now();
      this.log.warn(`${this.what} failed${this.failures > 1 ? ` (${this.failures} passes in a row)` : ''}: ${describe(err)}`);
    } finally {
      this.metrics.failingPasses = this.failures;
      this.metrics.observe(Number(process.hrtime.bigint() - started) / 1e9);
      this.active = false;
      if (this.owed) {
        this.owed = false;
        this.next();
      }
    }
  }

  /** Resolves once no pass runs. */
  async idle(pollMs = 5): Promise<void> {
    while (this.active) await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
