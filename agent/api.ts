/**
 * A small JSON client for the API server, for what claims mode needs and the
 * generated clients make awkward: a deadline on every request (a heartbeat
 * that cannot finish in time must count as failed, not hang), merge patches
 * on custom resources, and watch streams that can be aborted. Credentials
 * (in-cluster token, client certificates) come from kubeconfig.ts.
 */
import {request as httpRequest, type RequestOptions} from 'node:http';
import {request as httpsRequest} from 'node:https';
import type {ApiAccess} from './kubeconfig.js';

export type Json = Record<string, any>;

export interface ApiResponse {
  status: number;
  body: Json;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
    what: string,
  ) {
    super(`${what}: ${status} ${body?.message ?? body?.reason ?? ''}`.trim());
  }
}

/** A watch that sent nothing for its idle limit: a quiet resource or a half-open connection. */
export class WatchSilent extends Error {
  constructor(readonly idleMs: number) {
    super(`the watch sent nothing for ${idleMs / 1000} s`);
  }
}

export class ApiClient {
  readonly server: string;
  /** The last request failed without an answer (refused, reset, timed out). */
  private unreachable = false;
  private readonly recovered = new Set<() => void>();

  constructor(private readonly access: ApiAccess) {
    this.server = access.server;
  }

  /**
   * Calls `listener` each time the API server answers again after requests
   * that got no answer: any request of this client (a heartbeat, a Lease
   * renewal) tells, so retries waiting on a back-off grown while the node
   * was cut off start at once. Returns the unsubscribe function.
   */
  onRecovered(listener: () => void): () => void {
    this.recovered.add(listener);
    return () => this.recovered.delete(listener);
  }

  private answered(): void {
    if (!this.unreachable) return;
    this.unreachable = false;
    for (const l of [...this.recovered]) l();
  }

  private noAnswer(): void {
    this.unreachable = true;
  }

  private async options(method: string, headers: Record<string, string>): Promise<RequestOptions> {
    const token = this.access.token();
    const {ca, cert, key, insecure} = this.access;
    return {
      method,
      headers: {Accept: 'application/json', ...(token ? {Authorization: `Bearer ${token}`} : {}), ...headers},
      ca,
      cert,
      key,
      rejectUnauthorized: !insecure,
    } as RequestOptions;
  }

  /** One request with a deadline; the answer whatever its status (network failures reject). */
  async request(method: string, path: string, body?: unknown, options: {timeoutMs?: number; contentType?: string} = {}): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = payload ? {'Content-Type': options.contentType ?? 'application/json', 'Content-Length': String(payload.length)} : {};
    const opts = await this.options(method, headers);
    const url = new URL(this.server + path);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Json = {};
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = {message: text.slice(0, 200)};
          }
          this.answered();
          resolve({status: res.statusCode ?? 0, body: parsed});
        });
      });
      req.setTimeout(options.timeoutMs ?? 15000, () => req.destroy(new Error(`${method} ${path}: no answer within ${options.timeoutMs ?? 15000} ms`)));
      req.on('error', (err) => {
        this.noAnswer();
        reject(err);
      });
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** Like request, but a status outside 2xx rejects with ApiError. */
  async call(method: string, path: string, body?: unknown, options: {timeoutMs?: number; contentType?: string} = {}): Promise<Json> {
    const r = await this.request(method, path, body, options);
    if (r.status < 200 || r.status >= 300) throw new ApiError(r.status, r.body, `${method} ${path}`);
    return r.body;
  }

  /**
   * Streams a watch: calls onEvent per event until the server ends the stream,
   * the connection fails or the signal aborts; resolves with the HTTP status
   * (0 when no answer came) and the error, if any. `onOpen` runs once the
   * server has answered 200 (before any event: a watch of nothing sends none).
   *
   * Two client-side limits. The whole watch ends by `deadlineMs` (the server
   * should have ended it at its timeoutSeconds), as client-go's does. And a
   * stream silent for `idleMs` ends with a WatchSilent error: over HTTP/1.1
   * a half-open connection cannot be told from a quiet one (client-go pings
   * over HTTP/2 for that; the API server sends no bookmark on a resource
   * nothing changed in), so the caller opens a new watch from where it was.
   */
  async watch(
    path: string,
    onEvent: (type: string, object: Json) => void,
    signal: AbortSignal,
    onOpen?: () => void,
    limits: {deadlineMs?: number; idleMs?: number} = {},
  ): Promise<{status: number; err?: Error}> {
    const opts = await this.options('GET', {});
    const url = new URL(this.server + path);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      let status = 0;
      const timers: NodeJS.Timeout[] = [];
      let idle: NodeJS.Timeout | undefined;
      let over = false;
      let failure: Error | undefined;
      const done = (r: {status: number; err?: Error}) => {
        if (over) return;
        over = true;
        for (const t of timers) clearTimeout(t);
        if (idle) clearTimeout(idle);
        resolve(r);
      };
      const kill = (err: Error) => {
        failure = err;
        req.destroy(err);
      };
      const {deadlineMs, idleMs} = limits;
      let open = false;
      const rearm = () => {
        if (!idleMs) return;
        if (idle) clearTimeout(idle);
        idle = setTimeout(() => kill(open ? new WatchSilent(idleMs) : new Error(`no answer to the watch within ${idleMs / 1000} s`)), idleMs);
      };
      const req = send(url, {...opts, signal}, (res) => {
        status = res.statusCode ?? 0;
        if (status !== 200) {
          res.resume();
          res.on('end', () => done({status}));
          return;
        }
        open = true;
        this.answered();
        onOpen?.();
        rearm();
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          rearm();
          buf += d;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            const line = buf.slice(0, i).trim();
            buf = buf.slice(i + 1);
            if (!line) continue;
            let event: Json;
            try {
              event = JSON.parse(line);
            } catch {
              continue; // a torn line: the next list repairs what it carried
            }
            onEvent(event.type, event.object);
          }
        });
        res.on('end', () => done({status}));
        res.on('error', (err) => done({status, err}));
        // Destroyed under way (a deadline, the signal): the reason is the request's error.
        res.on('close', () => done({status, err: req.destroyed && !res.complete ? (failure ?? new Error('the watch connection closed')) : undefined}));
      });
      if (deadlineMs) timers.push(setTimeout(() => kill(new Error(`the watch outlived its deadline of ${deadlineMs / 1000} s`)), deadlineMs));
      // Until the server answers, the idle limit counts too, as a failure: a request into a dead connection gets no answer.
      rearm();
      req.on('error', (err) => {
        // No answer at all (a refused or reset connection, or none within idleMs; not the caller's abort).
        if (!status && !signal.aborted) this.noAnswer();
        done({status, err: failure ?? err});
      });
      req.end();
    });
  }
}
