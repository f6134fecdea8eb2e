/**
 * An in-memory API server for claims mode's resources (IpNodes, IpClaims,
 * IpClaimPools: cluster-scoped custom resources without subresources),
 * served over HTTP on loopback, so that the agent's own ApiClient and
 * ListWatch talk to it unchanged and a test needs neither root nor a control
 * plane. What it answers is what the real API server answers:
 * test/e2e/controlplane.test.ts runs one script of requests against both
 * and compares the answers (statuses, reasons, objects, list pages, watch
 * events, resource versions).
 *
 * It does: create (201, 409 AlreadyExists), get (404 NotFound), JSON merge
 * patch (RFC 7386; a patch that changes nothing keeps the resource
 * version), delete (a Status, as for custom resources), lists in name order with label selectors
 * (`k=v`, `k!=v`, `k`, comma-joined) and pages (limit, continue), and
 * watches from a resource version, where an object whose labels stop (or
 * start) matching the selector arrives as DELETED (or ADDED), and one from
 * a version older than its history is 410 Expired. `away()`
 * closes the port (connections are refused) until `back()`.
 */
import {randomUUID} from 'node:crypto';
import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http';
import type {AddressInfo, Socket} from 'node:net';
import {ApiClient, type Json} from '../../agent/api.js';

/** The resources served: path prefix to kind. */
export const CLAIMS_RESOURCES: Record<string, string> = {
  '/apis/ipcontroller.ext/v1/ipnodes': 'IpNode',
  '/apis/ipcontroller.ext/v1/ipclaims': 'IpClaim',
  '/apis/ipcontroller.ext/v1/ipclaimpools': 'IpClaimPool',
};

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  base: string;
  object: Json;
  /** The object before the change (MODIFIED, DELETED): a selector's watch needs both. */
  old?: Json;
}

/** RFC 7386: null removes a member, objects merge, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Json = target !== null && typeof target === 'object' && !Array.isArray(target) ? {...(target as Json)} : {};
  for (const [k, v] of Object.entries(patch as Json)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Whether labels match a selector of `k=v`, `k==v`, `k!=v`, `k` and `!k` terms. */
export function matches(labels: Record<string, string> | undefined, selector: string | null): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  return selector.split(',').map((t) => t.trim()).filter(Boolean).every((term) => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term);
    if (ne) return l[ne[1]] !== ne[2];
    const eq = /^([^!=]+)==?(.*)$/.exec(term);
    if (eq) return l[eq[1]] === eq[2];
    if (term.startsWith('!')) return !(term.slice(1) in l);
    return term in l;
  });
}

function status(code: number, reason: string, message: string, details?: Json): Json {
  return {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? {details} : {}), code};
}

export class FakeApi {
  private readonly store = new Map<string, Map<string, Json>>();
  private readonly history: Event[] = [];
  private readonly watchers = new Set<(e: Event) => void>();
  private readonly sockets = new Set<Socket>();
  private rv = 1;
  /** The newest version the history no longer holds: a watch from before it is told 410 Expired. */
  private compacted = 0;
  private server?: Server;
  private port = 0;

  private constructor(private readonly resources: Record<string, string>) {
    for (const base of Object.keys(resources)) this.store.set(base, new Map());
  }

  static async start(resources: Record<string, string> = CLAIMS_RESOURCES): Promise<FakeApi> {
    const api = new FakeApi(resources);
    await api.back();
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** An ApiClient of the agent's, pointed here. */
  client(): ApiClient {
    return new ApiClient({server: this.url, insecure: true, token: () => undefined});
  }

  /** The objects of a resource now, by name. */
  objects(base: string): Json[] {
    return [...(this.store.get(base)?.values() ?? [])].map((o) => structuredClone(o));
  }

  /** The API server goes away: the port is closed and every connection cut, until back(). */
  async away(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise((r) => s.close(r));
  }

  /** Serves again, on the same port. */
  async back(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (sock) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    await this.away();
  }

  private record(e: Omit<Event, 'rv'>): Json {
    const rv = ++this.rv;
    e.object.metadata.resourceVersion = String(rv);
    const event = {...e, rv};
    this.history.push(event);
    if (this.history.length > 1000) this.compacted = this.history.shift()!.rv;
    for (const w of this.watchers) w(event);
    return e.object;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const base = Object.keys(this.resources).find((b) => url.pathname === b || url.pathname.startsWith(`${b}/`));
      const send = (code: number, body: Json) => {
        res.writeHead(code, {'Content-Type': 'application/json'});
        res.end(JSON.stringify(body));
      };
      if (!base) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
      const name = url.pathname.slice(base.length + 1) || undefined;
      const objects = this.store.get(base)!;
      const plural = base.split('/').pop()!;
      const group = base.split('/')[2];
      const notFound = () => send(404, status(404, 'NotFound', `${plural}.${group} "${name}" not found`, {name, group, kind: plural}));
      let body: Json | undefined;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        return send(400, status(400, 'BadRequest', 'the body is not JSON'));
      }
      const method = req.method ?? 'GET';
      if (method === 'GET' && !name && url.searchParams.get('watch') === '1') return this.watch(base, url.searchParams, res);
      if (method === 'GET' && !name) return send(200, this.list(base, url.searchParams));
      if (method === 'GET') {
        const o = objects.get(name!);
        return o ? send(200, o) : notFound();
      }
      if (method === 'POST' && !name) {
        const n = body?.metadata?.name;
        if (!n) return send(422, status(422, 'Invalid', `${this.resources[base]}.${group} "" is invalid: metadata.name: Required value: name or generateName is required`));
        if (objects.has(n)) return send(409, status(409, 'AlreadyExists', `${plural}.${group} "${n}" already exists`, {name: n, group, kind: plural}));
        const o: Json = {...body, apiVersion: base.split('/').slice(2, 4).join('/'), kind: this.resources[base],
          metadata: {...body!.metadata, uid: randomUUID(), generation: 1, creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z')}};
        objects.set(n, o);
        return send(201, this.record({type: 'ADDED', base, object: o}));
      }
      if (method === 'PATCH' && name) {
        const o = objects.get(name);
        if (!o) return notFound();
        if (!String(req.headers['content-type'] ?? '').startsWith('application/merge-patch+json')) return send(415, status(415, 'UnsupportedMediaType', 'the fake API server takes merge patches only'));
        const next = mergePatch(o, body) as Json;
        // Who the object is cannot be patched away.
        next.metadata = {...next.metadata, name, uid: o.metadata.uid, creationTimestamp: o.metadata.creationTimestamp, resourceVersion: o.metadata.resourceVersion};
        if (JSON.stringify(next) === JSON.stringify(o)) return send(200, o);
        objects.set(name, next);
        return send(200, this.record({type: 'MODIFIED', base, object: next, old: o}));
      }
      if (method === 'DELETE' && name) {
        const o = objects.get(name);
        if (!o) return notFound();
        objects.delete(name);
        this.record({type: 'DELETED', base, object: structuredClone(o), old: o});
        // For a custom resource the API server answers a delete with a Status, not the object.
        return send(200, {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: {name, group, kind: plural, uid: o.metadata.uid}});
      }
      return send(405, status(405, 'MethodNotAllowed', `${method} is not supported here`));
    });
  }

  private list(base: string, q: URLSearchParams): Json {
    const selector = q.get('labelSelector');
    const all = [...this.store.get(base)!.values()].filter((o) => matches(o.metadata.labels, selector)).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const token = q.get('continue');
    let from = 0;
    let rv = String(this.rv);
    if (token) {
      const t = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as {after: string; rv: string};
      from = all.findIndex((o) => o.metadata.name > t.after);
      if (from < 0) from = all.length;
      rv = t.rv;
    }
    const limit = Number(q.get('limit') ?? 0);
    const items = limit > 0 ? all.slice(from, from + limit) : all.slice(from);
    const more = limit > 0 && from + limit < all.length;
    const metadata: Json = {resourceVersion: rv};
    if (more) {
      metadata.continue = Buffer.from(JSON.stringify({after: items[items.length - 1].metadata.name, rv})).toString('base64');
      metadata.remainingItemCount = all.length - from - limit;
    }
    return {apiVersion: base.split('/').slice(2, 4).join('/'), kind: `${this.resources[base]}List`, metadata, items};
  }

  private watch(base: string, q: URLSearchParams, res: ServerResponse): void {
    const selector = q.get('labelSelector');
    const since = Number(q.get('resourceVersion') || 0);
    res.writeHead(200, {'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked'});
    // The API server answers a watch at once, before any event.
    res.flushHeaders();
    const emit = (e: Event) => {
      if (e.base !== base) return;
      const now = matches(e.object.metadata.labels, selector);
      const was = e.old ? matches(e.old.metadata.labels, selector) : false;
      let type: string | undefined;
      if (e.type === 'ADDED') type = now ? 'ADDED' : undefined;
      else if (e.type === 'DELETED') type = was ? 'DELETED' : undefined;
      else if (now && was) type = 'MODIFIED';
      else if (now) type = 'ADDED';
      else if (was) type = 'DELETED';
      // An object that stopped matching leaves as it was last seen, at the new version.
      const object = type === 'DELETED' && e.type === 'MODIFIED' ? {...e.object} : e.object;
      if (type) res.write(`${JSON.stringify({type, object})}\n`);
    };
    if (since > 0 && since < this.compacted) {
      res.end(`${JSON.stringify({type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${since} (${this.compacted})`)})}\n`);
      return;
    }
    // From a version: what changed since. From none: every object as ADDED first, as the API server does.
    if (since > 0) for (const e of this.history) if (e.rv > since) emit(e);
    if (since === 0) for (const o of [...this.store.get(base)!.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) if (matches(o.metadata.labels, selector)) res.write(`${JSON.stringify({type: 'ADDED', object: o})}\n`);
    this.watchers.add(emit);
    const end = () => {
      this.watchers.delete(emit);
      clearTimeout(timer);
      res.end();
    };
    const timer = setTimeout(end, Number(q.get('timeoutSeconds') ?? 1800) * 1000);
    res.on('close', end);
  }
}
