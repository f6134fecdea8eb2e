/**
 * The Services, kept current by list and watch, with the guarantees the agent
 * needs and client-node's informer does not give: `synced` turns true only
 * after a list succeeded (so nothing is reconciled from an empty cache), a
 * failed list or watch is reported and retried with a growing backoff (reset
 * only after a watch stayed up for `stableMs`), and a watch that the server
 * ends with 410 Gone leads to a fresh list. The retry timers keep the process
 * alive: the loop runs until `stop()`, whatever the API server does.
 */
import * as k8s from '@kubernetes/client-node';
import {Backoff, RetryWait} from './backoff.js';

export interface ServiceWatcherEvents {
  /** The cache changed (or was listed anew). */
  onChange(): void;
  /** The API could not be reached; the cache is kept as it was. */
  onError(what: string, err: unknown, retryMs: number): void;
  /** A list succeeded after start or after errors. */
  onSynced(count: number): void;
  /** The server ended a watch with 410 Gone: the version it resumed from is too old; a fresh list follows. */
  onExpired?(resourceVersion: string): void;
}

export class ServiceWatcher {
  private cache = new Map<string, k8s.V1Service>();
  private stopped = false;
  private abort?: AbortController;
  private readonly wait = new RetryWait();
  /** True once a list succeeded; stays true (the cache is the last known state). */
  synced = false;
  /** True while a watch is open after a successful list. */
  connected = false;
  readonly backoff: Backoff;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly events: ServiceWatcherEvents,
    private readonly stableMs = 10000,
    backoff = new Backoff(),
  ) {
    this.backoff = backoff;
  }

  list(): k8s.V1Service[] {
    return [...this.cache.values()];
  }

  /** Runs list and watch until stop(); returns when stopped. */
  async run(): Promise<void> {
    const core = this.kc.makeApiClient(k8s.CoreV1Api);
    while (!this.stopped) {
      let rv: string;
      try {
        const list = await core.listServiceForAllNamespaces();
        if (this.stopped) return;
        this.cache = new Map(list.items.map((s) => [key(s), s]));
        rv = list.metadata?.resourceVersion ?? '';
        this.synced = true;
        this.events.onSynced(this.cache.size);
        this.events.onChange();
      } catch (err) {
        this.connected = false;
        await this.retry('listing Services', err);
        continue;
      }
      // Watch from the list's version until the server says it is too old.
      for (;;) {
        if (this.stopped) return;
        const started = Date.now();
        const outcome = await this.watchOnce(rv, (next) => (rv = next));
        this.connected = false;
        if (this.stopped) return;
        const lasted = Date.now() - started;
        if (lasted >= this.stableMs) this.backoff.reset();
        if (outcome.gone) {
          this.events.onExpired?.(rv);
          break;
        }
        if (outcome.err !== undefined || lasted < 1000) {
          await this.retry('watching Services', outcome.err ?? new Error('the watch closed at once'));
        }
      }
    }
  }

  private watchOnce(rv: string, advance: (rv: string) => void): Promise<{gone: boolean; err?: unknown}> {
    return new Promise((resolve) => {
      let gone = false;
      let ended = false;
      const watch = new k8s.Watch(this.kc);
      watch
        .watch(
          '/api/v1/services',
          // The server ends the watch after this long; a fresh one follows at once.
          {resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 240 + Math.floor(Math.random() * 120)},
          (type: string, obj: k8s.V1Service & {code?: number}) => {
            this.connected = true;
            if (type === 'ERROR') {
              if (obj.code === 410) gone = true;
              return;
            }
            const next = obj.metadata?.resourceVersion;
            if (next) advance(next);
            if (type === 'BOOKMARK') return;
            if (type === 'DELETED') this.cache.delete(key(obj));
            else this.cache.set(key(obj), obj);
            this.events.onChange();
          },
          (err: unknown) => {
            ended = true;
            resolve({gone: gone || (err as {statusCode?: number} | null)?.statusCode === 410, err: err ?? undefined});
          },
        )
        .then(
          (controller) => {
            this.abort = controller;
            // watch() resolves once the server answered 200 and the stream is open.
            if (!ended) this.connected = true;
            if (this.stopped) controller.abort();
          },
          (err: unknown) => resolve({gone: false, err}),
        );
    });
  }

  private async retry(what: string, err: unknown): Promise<void> {
    const ms = this.backoff.next();
    this.events.onError(what, err, ms);
    await this.wait.sleep(ms);
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.wait.wake();
  }
}

function key(s: k8s.V1Service): string {
  return `${s.metadata?.namespace}/${s.metadata?.name}`;
}
