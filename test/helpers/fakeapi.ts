/**
 * An in-memory API server for what the agent's claims mode reads and writes:
 * its custom resources (IpNodes, IpClaims, IpClaimPools: cluster-scoped,
 * without subresources), Services (namespaced, with a status subresource),
 * Nodes, Leases and Events, served over HTTP on loopback, so that the
 * agent's own ApiClient and ListWatch talk to it unchanged and a test needs
 * neither root nor a control plane. What it answers is what the real API
 * server answers: test/e2e/controlplane.test.ts runs one script of requests
 * against both and compares the answers (statuses, reasons, objects, list
 * pages, watch events, resource versions).
 *
 * It does: create (201, 409 AlreadyExists, a name from generateName), get
 * (404 NotFound), JSON merge patch (RFC 7386; a patch that changes nothing
 * keeps the resource version; a `metadata.resourceVersion` in the patch is a
 * precondition, 409 Conflict when the object moved on), update (PUT, the
 * same precondition), a status subresource where the resource has one (the
 * main resource's writes leave `status` alone, the subresource's touch
 * nothing else), delete (a Status, as for custom resources), lists in key
 * order (namespace, name) across namespaces or in one, with label selectors
 * (`k=v`, `k!=v`, `k`, comma-joined) and pages (limit, continue), and
 * watches from a resource version, where an object whose labels stop (or
 * start) matching the selector arrives as DELETED (or ADDED), and one from
 * a version older than its history is 410 Expired. It validates nothing
 * else (a Service gets no cluster IP) and takes any namespace. `away()`
 * closes the port (connections are refused) until `back()`.
 */
import {randomUUID} from 'node:crypto';
import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http';
import type {AddressInfo, Socket} from 'node:net';
import {ApiClient, type Json} from '../../agent/api.js';

export interface Resource {
  kind: string;
  namespaced: boolean;
  /** Whether it has a status subresource. */
  status: boolean;
}

/** The resources served, by their collection path across namespaces. */
export const RESOURCES: Record<string, Resource> = {
  '/apis/ipcontroller.ext/v1/ipnodes': {kind: 'IpNode', namespaced: false, status: false},
  '/apis/ipcontroller.ext/v1/ipclaims': {kind: 'IpClaim', namespaced: false, status: false},
  '/apis/ipcontroller.ext/v1/ipclaimpools': {kind: 'IpClaimPool', namespaced: false, status: false},
  '/api/v1/services': {kind: 'Service', namespaced: true, status: true},
  '/api/v1/nodes': {kind: 'Node', namespaced: false, status: true},
  '/api/v1/events': {kind: 'Event', namespaced: true, status: false},
  '/apis/coordination.k8s.io/v1/leases': {kind: 'Lease', namespaced: true, status: false},
};

/** What a request's path names. */
interface Target {
  /** The collection path across namespaces (a key of RESOURCES). */
  base: string;
  resource: Resource;
  namespace?: string;
  name?: string;
  /** `status`, for the status subresource. */
  sub?: string;
}

/** `/api/v1/[namespaces/NS/]PLURAL[/NAME[/status]]` and `/apis/GROUP/VERSION/...` the same way. */
export function parseTarget(pathname: string, resources: Record<string, Resource> = RESOURCES): Target | undefined {
  const m = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/(.+)$/.exec(pathname);
  if (!m) return undefined;
  let parts = m[2].split('/').map(decodeURIComponent);
  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    namespace = parts[1];
    parts = parts.slice(2);
  }
  const [plural, name, sub, ...more] = parts;
  const base = `${m[1]}/${plural}`;
  const resource = resources[base];
  if (!resource || more.length) return undefined;
  if (namespace !== undefined && !resource.namespaced) return undefined;
  if (name && resource.namespaced && namespace === undefined) return undefined;
  if (sub !== undefined && (sub !== 'status' || !resource.status)) return undefined;
  return {base, resource, namespace, name: name || undefined, sub};
}

/** `v1`, or `group/version`. */
function apiVersionOf(base: string): string {
  return base.startsWith('/api/') ? 'v1' : base.split('/').slice(2, 4).join('/');
}

/** The group, '' for the core group. */
function groupOf(base: string): string {
  return base.startsWith('/api/') ? '' : base.split('/')[2];
}

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
  /** By collection path (across namespaces), then by key (namespace/name, or name). */
  private readonly store = new Map<string, Map<string, Json>>();
  private readonly history: Event[] = [];
  private readonly watchers = new Set<(e: Event) => void>();
  private readonly sockets = new Set<Socket>();
  private rv = 1;
  /** The newest version the history no longer holds: a watch from before it is told 410 Expired. */
  private compacted = 0;
  private server?: Server;
  private port = 0;

  private constructor() {
    for (const base of Object.keys(RESOURCES)) this.store.set(base, new Map());
  }

  static async start(): Promise<FakeApi> {
    const api = new FakeApi();
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

  /** The objects of a resource now (every namespace), in key order. */
  objects(base: string): Json[] {
    return [...(this.store.get(base)?.entries() ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => structuredClone(o));
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
      const send = (code: number, body: Json) => {
        res.writeHead(code, {'Content-Type': 'application/json'});
        res.end(JSON.stringify(body));
      };
      const t = parseTarget(url.pathname);
      if (!t) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
      const {base, resource, namespace, name, sub} = t;
      const objects = this.store.get(base)!;
      const plural = base.split('/').pop()!;
      const group = groupOf(base);
      // How the API server names a resource in its messages: `services`, `ipclaims.ipcontroller.ext`.
      const qualified = group ? `${plural}.${group}` : plural;
      const details = (n: string | undefined): Json => ({name: n, ...(group ? {group} : {}), kind: plural});
      const key = namespace !== undefined && name ? `${namespace}/${name}` : name;
      const notFound = () => send(404, status(404, 'NotFound', `${qualified} "${name}" not found`, details(name)));
      const conflict = () => send(409, status(409, 'Conflict', `Operation cannot be fulfilled on ${qualified} "${name}": the object has been modified; please apply your changes to the latest version and try again`, details(name)));
      let body: Json | undefined;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        return send(400, status(400, 'BadRequest', 'the body is not JSON'));
      }
      const method = req.method ?? 'GET';
      if (method === 'GET' && !name && url.searchParams.get('watch') === '1') return this.watch(t, url.searchParams, res);
      if (method === 'GET' && !name) return send(200, this.list(t, url.searchParams));
      if (method === 'GET') {
        const o = objects.get(key!);
        return o ? send(200, o) : notFound();
      }
      if (method === 'POST' && !name) {
        if (resource.namespaced && namespace === undefined) return send(405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
        if (resource.namespaced && body?.metadata?.namespace && body.metadata.namespace !== namespace) {
          return send(400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'));
        }
        const n: string | undefined = body?.metadata?.name || (body?.metadata?.generateName ? `${body.metadata.generateName}${randomUUID().replace(/-/g, '').slice(0, 5)}` : undefined);
        if (!n) return send(422, status(422, 'Invalid', `${resource.kind}${group ? `.${group}` : ''} "" is invalid: metadata.name: Required value: name or generateName is required`));
        const k = resource.namespaced ? `${namespace}/${n}` : n;
        if (objects.has(k)) return send(409, status(409, 'AlreadyExists', `${qualified} "${n}" already exists`, details(n)));
        const o: Json = {...body, apiVersion: apiVersionOf(base), kind: resource.kind,
          metadata: {...body!.metadata, name: n, ...(resource.namespaced ? {namespace} : {}), uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z')}};
        delete o.metadata.resourceVersion;
        delete o.metadata.generation;
        // The API server counts a custom resource's generations.
        if (group === 'ipcontroller.ext') o.metadata.generation = 1;
        objects.set(k, o);
        return send(201, this.record({type: 'ADDED', base, object: o}));
      }
      if ((method === 'PATCH' || method === 'PUT') && name) {
        const o = objects.get(key!);
        if (!o) return notFound();
        if (method === 'PATCH' && !String(req.headers['content-type'] ?? '').startsWith('application/merge-patch+json')) return send(415, status(415, 'UnsupportedMediaType', 'the fake API server takes merge patches only'));
        // A resourceVersion in what is sent is a precondition: the object as the writer last saw it.
        const expected = body?.metadata?.resourceVersion;
        if (expected !== undefined && expected !== null && expected !== '' && String(expected) !== o.metadata.resourceVersion) return conflict();
        let next = (method === 'PATCH' ? mergePatch(o, body) : {...body, apiVersion: o.apiVersion, kind: o.kind}) as Json;
        // A status subresource: writes to the object leave the status, writes to the status touch nothing else.
        if (resource.status) next = sub === 'status' ? {...o, status: next.status} : {...next, status: o.status};
        if (next.status === undefined) delete next.status;
        // Who the object is cannot be changed.
        next.metadata = {...next.metadata, name, ...(resource.namespaced ? {namespace} : {}), uid: o.metadata.uid, creationTimestamp: o.metadata.creationTimestamp, resourceVersion: o.metadata.resourceVersion};
        if (o.metadata.generation !== undefined) next.metadata.generation = o.metadata.generation;
        if (JSON.stringify(next) === JSON.stringify(o)) return send(200, o);
        objects.set(key!, next);
        return send(200, this.record({type: 'MODIFIED', base, object: next, old: o}));
      }
      if (method === 'DELETE' && name) {
        const o = objects.get(key!);
        if (!o) return notFound();
        objects.delete(key!);
        this.record({type: 'DELETED', base, object: structuredClone(o), old: o});
        // For a custom resource the API server answers a delete with a Status, not the object.
        return send(200, {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: {name, group, kind: plural, uid: o.metadata.uid}});
      }
      return send(405, status(405, 'MethodNotAllowed', `${method} is not supported here`));
    });
  }

  /** The objects a list or watch of this target sees, in key order. */
  private inScope(t: Target, selector: string | null): Array<[string, Json]> {
    return [...this.store.get(t.base)!.entries()]
      .filter(([, o]) => (t.namespace === undefined || o.metadata.namespace === t.namespace) && matches(o.metadata.labels, selector))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  private list(t: Target, q: URLSearchParams): Json {
    const all = this.inScope(t, q.get('labelSelector'));
    const token = q.get('continue');
    let from = 0;
    let rv = String(this.rv);
    if (token) {
      const c = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as {after: string; rv: string};
      from = all.findIndex(([k]) => k > c.after);
      if (from < 0) from = all.length;
      rv = c.rv;
    }
    const limit = Number(q.get('limit') ?? 0);
    const page = limit > 0 ? all.slice(from, from + limit) : all.slice(from);
    const more = limit > 0 && from + limit < all.length;
    const metadata: Json = {resourceVersion: rv};
    if (more) {
      metadata.continue = Buffer.from(JSON.stringify({after: page[page.length - 1][0], rv})).toString('base64');
      metadata.remainingItemCount = all.length - from - limit;
    }
    return {apiVersion: apiVersionOf(t.base), kind: `${t.resource.kind}List`, metadata, items: page.map(([, o]) => o)};
  }

  private watch(t: Target, q: URLSearchParams, res: ServerResponse): void {
    const selector = q.get('labelSelector');
    const since = Number(q.get('resourceVersion') || 0);
    const inScope = (o: Json | undefined) => Boolean(o) && (t.namespace === undefined || o!.metadata.namespace === t.namespace) && matches(o!.metadata.labels, selector);
    res.writeHead(200, {'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked'});
    // The API server answers a watch at once, before any event.
    res.flushHeaders();
    const emit = (e: Event) => {
      if (e.base !== t.base) return;
      const now = inScope(e.object);
      const was = inScope(e.old);
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
    if (since === 0) for (const [, o] of this.inScope(t, selector)) res.write(`${JSON.stringify({type: 'ADDED', object: o})}\n`);
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
