/**
 * Capped exponential backoff with jitter, for retries against the API server.
 * Each failure doubles the ceiling (from `baseMs` up to `capMs`); the wait is
 * drawn between half the ceiling and the ceiling, so that the agents of a
 * whole cluster do not retry in step after an outage. Only `reset()`, called
 * once a connection has proved itself, brings it back to the start.
 */
export class Backoff {
  private failures = 0;

  constructor(
    readonly baseMs = 500,
    readonly capMs = 30000,
    private readonly random: () => number = Math.random,
  ) {}

  /** The wait before the next try, and counts one more failure. */
  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

/** The wait between two tries, which stop() or hurry() can cut short. */
export class RetryWait {
  private sleeping?: {timer: NodeJS.Timeout; resolve: () => void};

  /** Waits ms. The timer is referenced: it keeps the agent running while it waits for the API. */
  async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.sleeping = {timer: setTimeout(resolve, ms), resolve};
    });
    this.sleeping = undefined;
  }

  /** Ends the current wait at once (none: nothing happens). */
  wake(): void {
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
    }
  }
}
