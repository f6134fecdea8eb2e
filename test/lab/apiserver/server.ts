/**
 * A stand-in for the Kubernetes API server, faithful for what kubectl,
 * @kubernetes/client-node and extip use (see REFERENCE.md section 5): discovery,
 * OpenAPI v3 stubs, CRUD with resourceVersions, selectors, the four patch
 * types, server-side apply, status subresources, watches, dry runs, Status
 * errors. What it does not implement answers an error, never a silent success.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http';
import {createServer, type Server} from 'node:https';
import {rm} from 'node:fs/promises';
import type {AddressInfo} from 'node:net';
import YAML from 'yaml';
import {startControllers} from './controllers.js';
import {parseFieldSelector, parseLabelSelector} from './selectors.js';
import {Store, typeKey} from './store.js';
import {ApiError, type Json, type JsonObject, type KubeObject, type ResourceType, groupVersion, isObject} from './types.js';

export const KUBE_VERSION = {major: '1', minor: '31', gitVersion: 'v1.31.0', gitCommit: 'lab', gitTreeState: 'clean', buildDate: '2024-08-13T00:00:00Z', goVersion: 'go1.22.5', compiler: 'gc', platform: 'linux/amd64'};

export interface ApiServerOptions {
  cert: string;
  key: string;
  token: string;
  /** Also listen on this unix socket (reached from the hosts' namespaces through socat). */
  socketPath?: string;
}

export interface RequestRecord {
  method: string;
  path: string;
  userAgent: string;
}

export class FakeApiServer {
  readonly store = new Store();
  readonly requests: RequestRecord[] = [];
  private servers: Server[] = [];
  private openStreams = new Set<ServerResponse>();
  private stopControllers: () => void = () => {};
  port = 0;

  constructor(private readonly options: ApiServerOptions) {}

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.stopControllers = startControllers(this.store);
    // What every cluster has.
    const namespaces = this.store.resolve('', 'v1', 'namespaces');
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (!this.store.tryGet(namespaces, undefined, name)) this.store.create(namespaces, undefined, {apiVersion: 'v1', kind: 'Namespace', metadata: {name}}, {});
    }
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const tcp = createServer({cert: this.options.cert, key: this.options.key}, handler);
    // A restart keeps the port, so that kubeconfigs written at the first start stay right.
    await new Promise<void>((resolve, reject) => tcp.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.port = (tcp.address() as AddressInfo).port;
    this.servers.push(tcp);
    if (this.options.socketPath) {
      await rm(this.options.socketPath, {force: true});
      const unix = createServer({cert: this.options.cert, key: this.options.key}, handler);
      await new Promise<void>((resolve, reject) => unix.once('error', reject).listen(this.options.socketPath, resolve));
      this.servers.push(unix);
    }
  }

  /** Ends every open watch, as an API server restart or a load balancer would. */
  dropWatches(): void {
    for (const res of this.openStreams) res.end();
    this.openStreams.clear();
  }

  async stop(): Promise<void> {
    this.stopControllers();
    for (const res of this.openStreams) res.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    })));
    this.servers = [];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://lab');
    this.requests.push({method: req.method ?? 'GET', path: url.pathname + url.search, userAgent: String(req.headers['user-agent'] ?? '')});
    try {
      if (req.headers.authorization !== `Bearer ${this.options.token}`) {
        throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      }
      const body = await readBody(req);
      await this.route(req, res, url, body);
    } catch (err) {
      if (res.headersSent) {
        res.end();
        return;
      }
      const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `internal error: ${(err as Error).stack ?? String(err)}`);
      sendJson(res, e.code, statusObject(e));
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, body: string): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (method === 'GET') {
      if (path === '/version') return sendJson(res, 200, KUBE_VERSION);
      if (path === '/healthz' || path === '/readyz' || path === '/livez') return sendText(res, 200, 'ok');
      if (path === '/api') return sendJson(res, 200, {kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443'}]});
      if (path === '/apis') return sendJson(res, 200, this.groupList());
      if (path === '/openapi/v3') return sendJson(res, 200, this.openapiIndex());
      if (path.startsWith('/openapi/v3/')) return sendJson(res, 200, this.openapiDocument(path.slice('/openapi/v3/'.length)));
      if (path === '/openapi/v2' || path === '/swagger.json') throw new ApiError(404, 'NotFound', 'the lab API server serves OpenAPI v3 only (/openapi/v3)');
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/(.*))?$/.exec(path);
    if (!m) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${method} ${path})`);
    const group = m[2] ?? '';
    const version = m[1] ?? m[3];
    const rest = m[4] ? m[4].split('/').map(decodeURIComponent) : [];
    if (rest.length === 0) {
      if (method !== 'GET') throw new ApiError(405, 'MethodNotAllowed', `${method} is not allowed on ${path}`);
      return sendJson(res, 200, this.resourceList(group, version));
    }
    let namespace: string | undefined;
    let segs = rest;
    if (segs[0] === 'namespaces' && segs.length >= 3 && !['status', 'finalize'].includes(segs[2])) {
      namespace = segs[1];
      segs = segs.slice(2);
    }
    const [plural, name, subresource, ...extra] = segs;
    const t = this.store.resolve(group, version, plural);
    if (extra.length || (subresource && !t.subresources.includes(subresource))) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path}): the lab API server does not implement ${subresource}`);
    }
    if (namespace !== undefined && !t.namespaced) throw new ApiError(404, 'NotFound', `${t.kind} is not namespaced`);
    const q = url.searchParams;
    const dryRun = q.get('dryRun') === 'All';
    const opts = {dryRun, fieldManager: q.get('fieldManager') ?? undefined, subresource};
    const contentType = String(req.headers['content-type'] ?? 'application/json');

    switch (method) {
      case 'GET': {
        if (name) return this.sendObject(req, res, 200, this.store.get(t, namespace, name), t, q);
        const labels = parseLabelSelector(q.get('labelSelector'));
        const fields = parseFieldSelector(q.get('fieldSelector'));
        if (q.get('watch') === 'true' || q.get('watch') === '1') return this.watch(res, t, namespace, labels, fields, q);
        const items = this.store.list(t, namespace, labels, fields);
        return this.sendList(req, res, t, items, q);
      }
      case 'POST': {
        if (name) throw new ApiError(405, 'MethodNotAllowed', `POST is not allowed on a named ${t.kind}`);
        const created = this.store.create(t, namespace, parseBody(body, contentType), opts);
        return sendJson(res, 201, created);
      }
      case 'PUT': {
        if (!name) throw new ApiError(405, 'MethodNotAllowed', 'PUT needs a name');
        const existed = this.store.tryGet(t, namespace, name) !== undefined;
        const updated = this.store.update(t, namespace, name, parseBody(body, contentType), opts);
        return sendJson(res, existed ? 200 : 201, updated);
      }
      case 'PATCH': {
        if (!name) throw new ApiError(405, 'MethodNotAllowed', 'PATCH needs a name');
        const existed = this.store.tryGet(t, namespace, name) !== undefined;
        const patched = this.store.patch(t, namespace, name, contentType, parseBody(body, contentType), {...opts, force: q.get('force') === 'true'});
        return sendJson(res, existed ? 200 : 201, patched);
      }
      case 'DELETE': {
        if (!name) {
          // deletecollection
          const labels = parseLabelSelector(q.get('labelSelector'));
          const fields = parseFieldSelector(q.get('fieldSelector'));
          const items = this.store.list(t, namespace, labels, fields).map((o) => this.store.delete(t, o.metadata.namespace, String(o.metadata.name), opts));
          return sendJson(res, 200, {kind: `${t.kind}List`, apiVersion: groupVersion(t), metadata: {resourceVersion: String(this.store.resourceVersion)}, items});
        }
        return sendJson(res, 200, this.store.delete(t, namespace, name, opts));
      }
      default:
        throw new ApiError(405, 'MethodNotAllowed', `${method} is not supported`);
    }
  }

  private sendObject(req: IncomingMessage, res: ServerResponse, code: number, o: KubeObject, t: ResourceType, q: URLSearchParams): void {
    if (wantsTable(req)) return sendJson(res, code, this.table(t, [o], q));
    sendJson(res, code, o);
  }

  private sendList(req: IncomingMessage, res: ServerResponse, t: ResourceType, items: KubeObject[], q: URLSearchParams): void {
    if (wantsTable(req)) return sendJson(res, 200, this.table(t, items, q));
    sendJson(res, 200, {kind: `${t.kind}List`, apiVersion: groupVersion(t), metadata: {resourceVersion: String(this.store.resourceVersion)}, items});
  }

  private table(t: ResourceType, items: KubeObject[], q: URLSearchParams): JsonObject {
    const includeObject = q.get('includeObject') ?? 'Metadata';
    const columns = tableColumns(t);
    return {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: {resourceVersion: String(this.store.resourceVersion)},
      columnDefinitions: columns.map((c) => ({name: c.name, type: c.type ?? 'string', format: c.name === 'Name' ? 'name' : '', description: c.name, priority: 0})),
      rows: items.map((o) => ({
        cells: columns.map((c) => c.value(o)),
        object:
          includeObject === 'Object'
            ? o
            : includeObject === 'None'
              ? null
              : {kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata},
      })),
    };
  }

  private watch(res: ServerResponse, t: ResourceType, namespace: string | undefined, labels: ReturnType<typeof parseLabelSelector>, fields: ReturnType<typeof parseFieldSelector>, q: URLSearchParams): void {
    res.writeHead(200, {'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache'});
    res.flushHeaders();
    this.openStreams.add(res);
    const send = (type: string, object: Json) => {
      if (!res.writableEnded) res.write(JSON.stringify({type, object}) + '\n');
    };
    let stop = () => {};
    try {
      stop = this.store.watch({typeKey: typeKey(t), namespace, labels, fields, send}, q.get('resourceVersion') ?? undefined, t);
    } catch (err) {
      if (err instanceof ApiError) {
        // As the real server: 200, then one ERROR event with the Status, then the end.
        send('ERROR', statusObject(err));
        res.end();
        this.openStreams.delete(res);
        return;
      }
      throw err;
    }
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on('close', () => {
      stop();
      if (timer) clearTimeout(timer);
      this.openStreams.delete(res);
    });
  }

  // --- discovery -------------------------------------------------------------------

  private groupVersions(): Map<string, ResourceType[]> {
    const out = new Map<string, ResourceType[]>();
    for (const t of this.store.types.values()) {
      const gv = groupVersion(t);
      out.set(gv, [...(out.get(gv) ?? []), t]);
    }
    return out;
  }

  private groupList(): JsonObject {
    const groups = new Map<string, string[]>();
    for (const t of this.store.types.values()) {
      if (!t.group) continue;
      const versions = groups.get(t.group) ?? [];
      if (!versions.includes(t.version)) versions.push(t.version);
      groups.set(t.group, versions);
    }
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [...groups].sort().map(([name, versions]) => ({
        name,
        versions: versions.map((v) => ({groupVersion: `${name}/${v}`, version: v})),
        preferredVersion: {groupVersion: `${name}/${versions[0]}`, version: versions[0]},
      })),
    };
  }

  private resourceList(group: string, version: string): JsonObject {
    const types = [...this.store.types.values()].filter((t) => t.group === group && t.version === version);
    if (!types.length) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${group}/${version})`);
    const resources: JsonObject[] = [];
    for (const t of types) {
      resources.push({name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs, ...(t.shortNames ? {shortNames: t.shortNames} : {})});
      for (const sub of t.subresources) resources.push({name: `${t.plural}/${sub}`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update']});
    }
    return {kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources};
  }

  private openapiIndex(): JsonObject {
    const paths: JsonObject = {};
    for (const gv of this.groupVersions().keys()) {
      const key = gv.includes('/') ? `apis/${gv}` : `api/${gv}`;
      paths[key] = {serverRelativeURL: `/openapi/v3/${key}?hash=${this.store.types.size}`};
    }
    return {paths};
  }

  /** An OpenAPI v3 stub: permissive schemas tagged with their kinds, and paths that take fieldValidation. */
  private openapiDocument(key: string): JsonObject {
    const gv = key.replace(/^apis?\//, '');
    const types = this.groupVersions().get(gv);
    if (!types) throw new ApiError(404, 'NotFound', `no OpenAPI document for ${key}`);
    const schemas: JsonObject = {};
    const paths: JsonObject = {};
    const param = (n: string) => ({name: n, in: 'query', schema: {type: 'string', uniqueItems: true}});
    for (const t of types) {
      const gvk = {group: t.group, version: t.version, kind: t.kind};
      schemas[`lab.${t.group || 'core'}.${t.version}.${t.kind}`] = {
        type: 'object',
        'x-kubernetes-group-version-kind': [gvk],
        'x-kubernetes-preserve-unknown-fields': true,
        properties: {apiVersion: {type: 'string'}, kind: {type: 'string'}, metadata: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}},
      };
      const base = `/${t.group ? `apis/${t.group}` : 'api'}/${t.version}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}`;
      const op = (action: string) => ({
        'x-kubernetes-group-version-kind': gvk,
        'x-kubernetes-action': action,
        parameters: [param('dryRun'), param('fieldManager'), param('fieldValidation')],
        responses: {'200': {description: 'OK'}},
      });
      paths[base] = {post: op('post'), get: {...op('list'), parameters: [param('labelSelector')]}};
      paths[`${base}/{name}`] = {put: op('put'), patch: op('patch'), get: op('get'), delete: op('delete')};
    }
    return {openapi: '3.0.0', info: {title: 'Kubernetes (extip lab)', version: KUBE_VERSION.gitVersion}, paths, components: {schemas}};
  }
}

interface Column {
  name: string;
  type?: string;
  value: (o: KubeObject) => Json;
}

function age(o: KubeObject): string {
  const created = Date.parse(String(o.metadata.creationTimestamp ?? ''));
  if (!Number.isFinite(created)) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - created) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
}

function at(o: Json, path: string): Json {
  let cur: Json | undefined = o;
  for (const p of path.split('.')) cur = isObject(cur) ? cur[p] : undefined;
  return cur ?? null;
}

function tableColumns(t: ResourceType): Column[] {
  const name: Column = {name: 'Name', value: (o) => String(o.metadata.name)};
  const ageCol: Column = {name: 'Age', value: age};
  const num = (n: string, path: string): Column => ({name: n, type: 'integer', value: (o) => Number(at(o, path) ?? 0)});
  switch (t.kind) {
    case 'Node':
      return [name, {name: 'Status', value: (o) => ((at(o, 'status.conditions') as JsonObject[] | null) ?? []).some((c) => c.type === 'Ready' && c.status === 'True') ? 'Ready' : 'NotReady'}, ageCol];
    case 'DaemonSet':
      return [name, num('Desired', 'status.desiredNumberScheduled'), num('Current', 'status.currentNumberScheduled'), num('Ready', 'status.numberReady'), num('Up-to-date', 'status.updatedNumberScheduled'), num('Available', 'status.numberAvailable'), ageCol];
    case 'Deployment':
      return [name, {name: 'Ready', value: (o) => `${at(o, 'status.readyReplicas') ?? 0}/${at(o, 'spec.replicas') ?? 0}`}, num('Up-to-date', 'status.updatedReplicas'), num('Available', 'status.availableReplicas'), ageCol];
    case 'Service':
      return [name, {name: 'Type', value: (o) => at(o, 'spec.type')}, {name: 'Cluster-IP', value: (o) => at(o, 'spec.clusterIP')}, {name: 'External-IP', value: (o) => ((at(o, 'spec.externalIPs') as string[] | null) ?? []).join(',') || '<none>'}, ageCol];
    case 'Pod':
      return [name, {name: 'Status', value: (o) => at(o, 'status.phase') ?? 'Pending'}, {name: 'Node', value: (o) => at(o, 'spec.nodeName') ?? '<none>'}, ageCol];
    case 'Namespace':
      return [name, {name: 'Status', value: (o) => at(o, 'status.phase')}, ageCol];
    default:
      return [name, ageCol];
  }
}

function wantsTable(req: IncomingMessage): boolean {
  const accept = String(req.headers.accept ?? '');
  return /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(body: string, contentType: string): Json {
  if (!body.trim()) throw new ApiError(400, 'BadRequest', 'the request has no body');
  try {
    if (contentType.includes('yaml')) return YAML.parse(body) as Json;
    return JSON.parse(body) as Json;
  } catch (err) {
    throw new ApiError(400, 'BadRequest', `the body is not valid ${contentType.includes('yaml') ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

function statusObject(e: ApiError): JsonObject {
  return {kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason, ...(e.details ? {details: e.details} : {}), code: e.code};
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text)});
  res.end(text);
}

function sendText(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, {'Content-Type': 'text/plain'});
  res.end(text);
}
