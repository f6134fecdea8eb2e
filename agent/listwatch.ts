/**
 * A cache of one kind of object kept current by list and watch, with the
 * guarantees claims mode needs: `synced` only after a list succeeded, errors
 * reported and retried with a growing backoff, 410 Gone answered with a fresh
 * list, and `relist()` to drop a watch and read everything anew (after a
 * self-fence, nothing may be brought up from what was known before it).
 *
 * As client-go's reflector: lists come in pages (`pageSize` objects, then
 * the server's continue token), so 10,000 Services are not one response; a
 * token that expired mid-list starts the list over. Every watch has a
 * client-side deadline a little after the timeoutSeconds it asks for. One
 * silent for `idleMs` is replaced by a new one from the last version seen,
 * quietly: the API server sends no bookmark on a resource nothing changed in,
 * and a half-open connection looks the same; either way the cache is never
 * older than `idleMs` without the agent knowing (the new watch fails if the
 * API is gone).
 */
import {ApiError, type ApiClient, type Json, WatchSilent} from './api.js';
import {Backoff, RetryWait} from './backoff.js';

export interface ListWatchEvents {
  /** The cache changed (or was listed anew). */
  onChange(): void;
  /** The API could not be reached; the cache is kept as it was. */
  onError(what: string, err: unknown, retryMs: number): void;
  /** A list succeeded after start or after errors. */
  onSynced?(count: number): void;
  /** The server ended a watch with 410 Gone: the version it resumed from is too old; a fresh list follows. */
  onExpired?(resourceVersion: string): void;
}

/** The cache key of an object: namespace/name, or the name of a cluster-scoped one. */
function key(o: Json): string {
  return o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata?.name;
}

export class ListWatch {
  private cache = new Map<string, Json>();
  private stopped = false;
  private abort = new AbortController();
  private readonly wait = new RetryWait();
  /** True once a list succeeded. */
  synced = false;
  /** True while a watch is open after a list. */
  connected = false;
  /** When the last successful list was read (ms since the epoch, local clock). */
  listedAt = 0;
  /** The retries' back-off (the defaults: from 0.5 s, doubling, up to 30 s). */
  backoff = new Backoff();
  private relistAt = 0;
  /** Objects per list request. */
  pageSize = 500;
  /** A watch that sends nothing (no event, no bookmark) for this long is replaced by a new one. */
  idleMs = 60_000;
  /** The timeoutSeconds each watch asks for; by default 4 to 6 minutes, drawn for each watch so that agents do not relist in step. */
  watchSeconds = (): number => 240 + Math.floor(Math.random() * 120);

  constructor(
    private readonly api: ApiClient,
    /** A collection path, such as /apis/ipcontroller.ext/v1/ipclaims. */
    private readonly path: string,
    private readonly what: string,
    private readonly events: ListWatchEvents,
    private readonly labelSelector?: string,
    /** Keeps only what the caller reads of each object (a Node is tens of kilobytes; its addresses are not). */
    private readonly keep: (o: Json) => Json = (o) => o,
  ) {}

  /** Unsubscribes from the client's recovery: set while running. */
  private unsubscribe?: () => void;

  list(): Json[] {
    return [...this.cache.values()];
  }

  /** An object by name (namespace/name for a namespaced kind). */
  get(name: string): Json | undefined {
    return this.cache.get(name);
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.labelSelector) q.set('labelSelector', this.labelSelector);
    return `${this.path}?${q}`;
  }

  async run(): Promise<void> {
    // The API answers again (a heartbeat, a Lease renewal got through): a back-off grown while the
    // node was cut off would keep this cache away for up to 30 s more, and a standby that is not
    // synced cannot take over as leader. Start over from the first step, now.
    this.unsubscribe = this.api.onRecovered(() => {
      this.backoff.reset();
      this.wait.wake();
    });
    while (!this.stopped) {
      let rv: string;
      const began = Date.now();
      try {
        const listed = await this.listAll();
        if (this.stopped) return;
        if (began <= this.relistAt) continue; // asked for before this list began: read again
        this.cache = listed.items;
        rv = listed.resourceVersion;
        this.synced = true;
        this.listedAt = Date.now();
        this.events.onSynced?.(this.cache.size);
        this.events.onChange();
      } catch (err) {
        this.connected = false;
        await this.retry(`listing ${this.what}`, err);
        continue;
      }
      for (;;) {
        if (this.stopped) return;
        const started = Date.now();
        let gone = false;
        const signal = this.abort.signal;
        const timeout = this.watchSeconds();
        const limits = {deadlineMs: Math.round(timeout * 1100) + 1000, idleMs: this.idleMs};
        const outcome = await this.api.watch(this.query({watch: '1', resourceVersion: rv, allowWatchBookmarks: 'true', timeoutSeconds: String(timeout)}), (type, obj) => {
          if (type === 'ERROR') {
            if (obj?.code === 410) gone = true;
            return;
          }
          if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (type === 'BOOKMARK') return;
          if (type === 'DELETED') this.cache.delete(key(obj));
          else this.cache.set(key(obj), this.keep(obj));
          this.events.onChange();
        }, signal, () => {
          this.connected = true;
        }, limits);
        if (this.stopped) return;
        if (Date.now() - started >= 10000) this.backoff.reset();
        // A quiet watch is opened again at once, from rv; it stays `connected` unless that fails
        // (readiness and the scheduler's liveness read it, and nothing was missed).
        if (outcome.err instanceof WatchSilent && !signal.aborted) continue;
        this.connected = false;
        if (signal.aborted) {
          this.abort = new AbortController();
          break; // relist() asked for a fresh list
        }
        if (gone || outcome.status === 410) {
          this.events.onExpired?.(rv);
          break;
        }
        if (outcome.err || outcome.status !== 200 || Date.now() - started < 1000) {
          await this.retry(`watching ${this.what}`, outcome.err ?? new Error(outcome.status ? `HTTP ${outcome.status}` : 'the watch closed at once'));
        }
      }
    }
  }

  /**
   * Every object, a page at a time; the version to watch from is the list's
   * (the same on every page: they are one snapshot). A continue token the
   * server no longer knows (410: it compacted past it) starts the list over,
   * once; a second in a row is an error, retried with the backoff.
   */
  private async listAll(): Promise<{items: Map<string, Json>; resourceVersion: string}> {
    for (let attempt = 1; ; attempt++) {
      const items = new Map<string, Json>();
      let token = '';
      try {
        for (;;) {
          const page = await this.api.call('GET', this.query({limit: String(this.pageSize), ...(token ? {continue: token} : {})}), undefined, {timeoutMs: 30000});
          for (const o of page.items ?? []) items.set(key(o), this.keep(o));
          token = page.metadata?.continue ?? '';
          if (!token || this.stopped) return {items, resourceVersion: page.metadata?.resourceVersion ?? ''};
        }
      } catch (err) {
        if (!(token && err instanceof ApiError && err.status === 410 && attempt === 1)) throw err;
      }
    }
  }

  /** Drops the open watch; the next list replaces the cache. */
  relist(): void {
    this.synced = false;
    this.relistAt = Date.now();
    this.abort.abort();
    this.wait.wake();
  }

  /** Cuts a retry wait short (the API is known to answer again). */
  hurry(): void {
    this.wait.wake();
  }

  private async retry(what: string, err: unknown): Promise<void> {
    const ms = this.backoff.next();
    this.events.onError(what, err, ms);
    await this.wait.sleep(ms);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.abort.abort();
    this.wait.wake();
  }
}
