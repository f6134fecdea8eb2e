/**
 * The fake API server's state: resource types, objects, resourceVersions,
 * the watch history, and the writes every verb goes through.
 */
import {randomUUID} from 'node:crypto';
import {BUILTIN_TYPES, applyDefaults} from './builtins.js';
import {type FieldSet, type Manager, changedFields, fieldsOf, jsonPatch, mergePatch, serverSideApply, strategicMergePatch, toFieldsV1} from './patch.js';
import {type FieldSelector, type Selector} from './selectors.js';
import {ApiError, type Json, type JsonObject, type KubeObject, type ResourceType, clone, deepEqual, groupVersion, isObject} from './types.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  rv: number;
  typeKey: string;
  type: EventType;
  object: KubeObject;
}

interface Stored {
  object: KubeObject;
  managers: Manager[];
}

export interface Watcher {
  typeKey: string;
  namespace?: string;
  labels: Selector;
  fields: FieldSelector;
  send: (type: EventType, object: KubeObject) => void;
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  subresource?: string;
}

/** Keeps this many events for watches that resume from a resourceVersion. */
const HISTORY = 20000;

export function typeKey(t: {group: string; plural: string}): string {
  return `${t.group}/${t.plural}`;
}

export class Store {
  private rv = 100;
  readonly types = new Map<string, ResourceType>();
  private readonly objects = new Map<string, Map<string, Stored>>();
  private history: WatchEvent[] = [];
  /** The oldest resourceVersion a watch may resume from. */
  private compactedTo = 0;
  readonly watchers = new Set<Watcher>();
  /** Called after every committed change (the simulated controllers). */
  readonly hooks: Array<(event: WatchEvent) => void> = [];
  /** Called when resource types appear or vanish (discovery). */
  readonly typeHooks: Array<() => void> = [];
  private nextClusterIP = 10;

  constructor() {
    for (const t of BUILTIN_TYPES) this.registerType(t);
  }

  get resourceVersion(): number {
    return this.rv;
  }

  registerType(t: ResourceType): void {
    this.types.set(typeKey(t), t);
    if (!this.objects.has(typeKey(t))) this.objects.set(typeKey(t), new Map());
    for (const h of this.typeHooks) h();
  }

  unregisterType(key: string): void {
    this.types.delete(key);
    for (const h of this.typeHooks) h();
  }

  /** Finds a type by group, version and plural as a URL names it. */
  resolve(group: string, version: string, plural: string): ResourceType {
    const t = this.types.get(`${group}/${plural}`);
    if (!t || t.version !== version) {
      throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${group ? `${group}/` : ''}${version}, ${plural})`);
    }
    return t;
  }

  typeForKind(apiVersion: string, kind: string): ResourceType | undefined {
    for (const t of this.types.values()) if (groupVersion(t) === apiVersion && t.kind === kind) return t;
    return undefined;
  }

  /** Drops the watch history, so that any watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.compactedTo = this.rv;
  }

  private bucket(key: string): Map<string, Stored> {
    let b = this.objects.get(key);
    if (!b) {
      b = new Map();
      this.objects.set(key, b);
    }
    return b;
  }

  private static id(namespace: string | undefined, name: string): string {
    return `${namespace ?? ''}/${name}`;
  }

  private output(s: Stored): KubeObject {
    const o = clone(s.object);
    if (s.managers.length) {
      o.metadata.managedFields = s.managers.map((m) => ({
        manager: m.manager,
        operation: m.operation,
        apiVersion: m.apiVersion,
        time: m.time,
        fieldsType: 'FieldsV1',
        fieldsV1: toFieldsV1(m.fields),
        ...(m.subresource ? {subresource: m.subresource} : {}),
      }));
    }
    return o;
  }

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const s = this.bucket(typeKey(t)).get(Store.id(t.namespaced ? namespace : undefined, name));
    if (!s) throw notFound(t, name);
    return this.output(s);
  }

  tryGet(t: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const s = this.bucket(typeKey(t)).get(Store.id(t.namespaced ? namespace : undefined, name));
    return s ? this.output(s) : undefined;
  }

  list(t: ResourceType, namespace: string | undefined, labels: Selector, fields: FieldSelector): KubeObject[] {
    const out: KubeObject[] = [];
    for (const s of this.bucket(typeKey(t)).values()) {
      if (t.namespaced && namespace && s.object.metadata.namespace !== namespace) continue;
      if (!labels(s.object.metadata.labels ?? {}) || !fields(s.object)) continue;
      out.push(this.output(s));
    }
    return out.sort((a, b) => `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`));
  }

  /** Every object of every type (for snapshots and namespace deletion). */
  all(): Array<{type: ResourceType; object: KubeObject}> {
    const out: Array<{type: ResourceType; object: KubeObject}> = [];
    for (const [key, bucket] of this.objects) {
      const t = this.types.get(key);
      if (!t) continue;
      for (const s of bucket.values()) out.push({type: t, object: this.output(s)});
    }
    return out;
  }

  // --- writes -----------------------------------------------------------------

  private checkNamespace(t: ResourceType, namespace: string | undefined, name = ''): void {
    if (!t.namespaced) return;
    if (!namespace) throw new ApiError(400, 'BadRequest', `${t.kind} is namespaced: a namespace is required`);
    const ns = this.bucket('/namespaces').get(Store.id(undefined, namespace));
    if (!ns) throw new ApiError(404, 'NotFound', `namespaces "${namespace}" not found`, {name: namespace, kind: 'namespaces'});
    if (ns.object.metadata.deletionTimestamp) {
      throw new ApiError(403, 'Forbidden', `${t.plural} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  private checkBody(t: ResourceType, body: Json, namespace: string | undefined, name?: string): KubeObject {
    if (!isObject(body) || !isObject(body.metadata)) throw new ApiError(400, 'BadRequest', 'the body must be an object with metadata');
    const o = clone(body) as KubeObject;
    // Like the real decoder, a body without apiVersion/kind takes the URL's.
    o.apiVersion ??= groupVersion(t);
    o.kind ??= t.kind;
    if (o.apiVersion !== groupVersion(t) || o.kind !== t.kind) {
      throw new ApiError(400, 'BadRequest', `the body is ${o.apiVersion}/${o.kind}, not ${groupVersion(t)}/${t.kind} as the URL says`);
    }
    if (name !== undefined && o.metadata.name !== undefined && o.metadata.name !== name) {
      throw new ApiError(400, 'BadRequest', `the name of the object (${o.metadata.name}) does not match the name in the URL (${name})`);
    }
    if (t.namespaced) {
      if (o.metadata.namespace !== undefined && o.metadata.namespace !== namespace) {
        throw new ApiError(400, 'BadRequest', `the namespace of the object (${o.metadata.namespace}) does not match the namespace in the URL (${namespace})`);
      }
      o.metadata.namespace = namespace;
    } else delete o.metadata.namespace;
    return o;
  }

  create(t: ResourceType, namespace: string | undefined, body: Json, opts: WriteOptions): KubeObject {
    const o = this.checkBody(t, body, namespace);
    this.checkNamespace(t, namespace, String(o.metadata.name ?? ''));
    if (!o.metadata.name && typeof o.metadata.generateName === 'string') {
      o.metadata.name = o.metadata.generateName + randomUUID().slice(0, 5);
    }
    const name = o.metadata.name;
    if (!name) throw new ApiError(422, 'Invalid', `${t.kind} is invalid: metadata.name: Required value`);
    validateName(t, name);
    const id = Store.id(t.namespaced ? namespace : undefined, name);
    if (this.bucket(typeKey(t)).has(id)) {
      throw new ApiError(409, 'AlreadyExists', `${t.plural}${t.group ? `.${t.group}` : ''} "${name}" already exists`, {name, group: t.group, kind: t.plural});
    }
    const managers: Manager[] = [];
    if (opts.fieldManager) {
      managers.push({manager: opts.fieldManager, operation: 'Update', apiVersion: groupVersion(t), time: now(), fields: fieldsOf(o)});
    }
    return this.commitNew(t, o, managers, opts);
  }

  private commitNew(t: ResourceType, o: KubeObject, managers: Manager[], opts: WriteOptions): KubeObject {
    delete o.metadata.managedFields;
    // As the real server: status is not set on create, except for nodes (kubelet registers them with it).
    if (t.subresources.includes('status') && t.kind !== 'Node') delete o.status;
    o.metadata.uid = randomUUID();
    o.metadata.creationTimestamp = now();
    o.metadata.generation = 1;
    delete o.metadata.resourceVersion;
    delete o.metadata.deletionTimestamp;
    applyDefaults(o, {allocateClusterIP: () => this.allocateClusterIP()});
    const stored: Stored = {object: o, managers};
    if (opts.dryRun) return this.output(stored);
    o.metadata.resourceVersion = String(++this.rv);
    this.bucket(typeKey(t)).set(Store.id(o.metadata.namespace, String(o.metadata.name)), stored);
    this.emit(t, 'ADDED', stored);
    return this.output(stored);
  }

  private allocateClusterIP(): string {
    const n = this.nextClusterIP++;
    return `10.233.${Math.floor(n / 256)}.${n % 256}`;
  }

  /** Replaces an object (PUT), or its status. */
  update(t: ResourceType, namespace: string | undefined, name: string, body: Json, opts: WriteOptions): KubeObject {
    const o = this.checkBody(t, body, namespace, name);
    const current = this.bucket(typeKey(t)).get(Store.id(t.namespaced ? namespace : undefined, name));
    if (!current) {
      if (opts.subresource) throw notFound(t, name);
      // PUT creates when the object does not exist (AllowCreateOnUpdate for most built-ins).
      return this.create(t, namespace, body, opts);
    }
    const wantRv = o.metadata.resourceVersion;
    if (wantRv !== undefined && wantRv !== '' && wantRv !== current.object.metadata.resourceVersion) {
      throw conflict(t, name);
    }
    return this.write(t, current, o, opts, 'Update');
  }

  patch(t: ResourceType, namespace: string | undefined, name: string, contentType: string, body: Json, opts: WriteOptions & {force?: boolean}): KubeObject {
    const id = Store.id(t.namespaced ? namespace : undefined, name);
    const current = this.bucket(typeKey(t)).get(id);
    const type = contentType.split(';')[0].trim();
    if (type === 'application/apply-patch+yaml' || type === 'application/apply-patch+json') {
      if (!opts.fieldManager) throw new ApiError(400, 'BadRequest', 'PATCH with apply-patch requires the fieldManager parameter');
      if (!isObject(body)) throw new ApiError(400, 'BadRequest', 'the applied configuration must be an object');
      const config = this.checkBody(t, body, namespace, name);
      if (!current) {
        this.checkNamespace(t, namespace, name);
        validateName(t, name);
        config.metadata.name = name;
        const result = serverSideApply(undefined, [], config, opts.fieldManager, true, now());
        return this.commitNew(t, result.object as KubeObject, result.managers, opts);
      }
      const live = this.output(current);
      delete live.metadata.managedFields;
      const result = serverSideApply(live, current.managers, config, opts.fieldManager, opts.force ?? false, now());
      return this.write(t, current, result.object as KubeObject, opts, 'Apply', result.managers);
    }
    if (!current) throw notFound(t, name);
    const live = this.output(current) as Json;
    let patched: Json;
    if (type === 'application/merge-patch+json') patched = mergePatch(live, body);
    else if (type === 'application/strategic-merge-patch+json') {
      if (t.crd) throw new ApiError(415, 'UnsupportedMediaType', 'strategic merge patch is not supported for custom resources; use a merge patch');
      patched = strategicMergePatch(live, body);
    } else if (type === 'application/json-patch+json') patched = jsonPatch(live, body);
    else throw new ApiError(415, 'UnsupportedMediaType', `the patch content type ${type} is not supported`);
    const o = this.checkBody(t, patched, namespace, name);
    const wantRv = o.metadata.resourceVersion;
    if (wantRv !== undefined && wantRv !== current.object.metadata.resourceVersion) throw conflict(t, name);
    return this.write(t, current, o, opts, 'Update');
  }

  /** The one place an existing object changes. A change that changes nothing is not a write. */
  private write(t: ResourceType, current: Stored, next: KubeObject, opts: WriteOptions, operation: 'Apply' | 'Update', applyManagers?: Manager[]): KubeObject {
    const before = current.object;
    let o = clone(next);
    delete o.metadata.managedFields;
    // Fields the server owns.
    for (const k of ['uid', 'creationTimestamp', 'generation', 'resourceVersion', 'deletionTimestamp']) {
      if (before.metadata[k] !== undefined) o.metadata[k] = before.metadata[k];
      else delete o.metadata[k];
    }
    if (opts.subresource === 'status') {
      // Only the status changes through /status.
      const status = o.status;
      o = clone(before);
      if (status === undefined) delete o.status;
      else o.status = status;
    } else if (t.subresources.includes('status')) {
      if (before.status === undefined) delete o.status;
      else o.status = clone(before.status);
    }
    applyDefaults(o, {allocateClusterIP: () => this.allocateClusterIP()});

    let managers = applyManagers ?? current.managers;
    if (!applyManagers && opts.fieldManager) {
      const changed = changedFields(before, o);
      if (changed.size) managers = claim(managers, opts.fieldManager, operation, groupVersion(t), changed, opts.subresource);
    }

    const same = deepEqual(strip(before), strip(o)) && sameOwnership(current.managers, managers);
    if (same) return this.output(current);
    if (!deepEqual(specOf(before), specOf(o))) o.metadata.generation = Number(before.metadata.generation ?? 1) + 1;
    const stored: Stored = {object: o, managers};
    if (opts.dryRun) return this.output(stored);

    const finalizers = o.metadata.finalizers;
    if (o.metadata.deletionTimestamp && (!Array.isArray(finalizers) || finalizers.length === 0) && t.kind !== 'Namespace') {
      return this.remove(t, current);
    }
    o.metadata.resourceVersion = String(++this.rv);
    current.object = o;
    current.managers = managers;
    this.emit(t, 'MODIFIED', current);
    return this.output(current);
  }

  /** Writes the status as a controller would (no field manager). */
  setStatus(t: ResourceType, namespace: string | undefined, name: string, status: JsonObject): void {
    const current = this.bucket(typeKey(t)).get(Store.id(t.namespaced ? namespace : undefined, name));
    if (!current || deepEqual(current.object.status, status)) return;
    const o = clone(current.object);
    o.status = status;
    this.write(t, current, o, {subresource: 'status'}, 'Update');
  }

  delete(t: ResourceType, namespace: string | undefined, name: string, opts: WriteOptions): KubeObject {
    const current = this.bucket(typeKey(t)).get(Store.id(t.namespaced ? namespace : undefined, name));
    if (!current) throw notFound(t, name);
    if (opts.dryRun) return this.output(current);
    const finalizers = current.object.metadata.finalizers;
    const pending = t.kind === 'Namespace' || (Array.isArray(finalizers) && finalizers.length > 0);
    if (pending) {
      if (!current.object.metadata.deletionTimestamp) {
        const o = clone(current.object);
        o.metadata.deletionTimestamp = now();
        if (t.kind === 'Namespace') o.status = {...(isObject(o.status) ? o.status : {}), phase: 'Terminating'};
        o.metadata.resourceVersion = String(++this.rv);
        current.object = o;
        this.emit(t, 'MODIFIED', current);
      }
      return this.output(current);
    }
    return this.remove(t, current);
  }

  /** Removes an object for good. */
  remove(t: ResourceType, current: Stored): KubeObject {
    const id = Store.id(current.object.metadata.namespace, String(current.object.metadata.name));
    if (!this.bucket(typeKey(t)).delete(id)) return this.output(current);
    const o = clone(current.object);
    o.metadata.resourceVersion = String(++this.rv);
    current.object = o;
    this.emit(t, 'DELETED', current);
    return this.output(current);
  }

  removeObject(t: ResourceType, namespace: string | undefined, name: string): void {
    const current = this.bucket(typeKey(t)).get(Store.id(t.namespaced ? namespace : undefined, name));
    if (current) this.remove(t, current);
  }

  // --- watches -------------------------------------------------------------------

  private emit(t: ResourceType, type: EventType, stored: Stored): void {
    const object = this.output(stored);
    const event: WatchEvent = {rv: this.rv, typeKey: typeKey(t), type, object};
    this.history.push(event);
    if (this.history.length > HISTORY) {
      const dropped = this.history.splice(0, this.history.length - HISTORY);
      this.compactedTo = dropped[dropped.length - 1].rv;
    }
    for (const w of this.watchers) deliver(w, event);
    for (const hook of this.hooks) hook(event);
  }

  /**
   * Starts a watch. From a resourceVersion, replays what followed it; without
   * one, sends the current objects as ADDED first. Throws 410 when the history
   * no longer reaches back that far.
   */
  watch(w: Watcher, fromRv: string | undefined, t: ResourceType): () => void {
    if (fromRv && fromRv !== '0') {
      const rv = Number(fromRv);
      if (!Number.isFinite(rv)) throw new ApiError(400, 'BadRequest', `invalid resourceVersion ${fromRv}`);
      if (rv < this.compactedTo) throw new ApiError(410, 'Expired', `too old resource version: ${rv} (${this.compactedTo})`);
      for (const event of this.history) if (event.rv > rv) deliver(w, event);
    } else {
      for (const object of this.list(t, w.namespace, w.labels, w.fields)) w.send('ADDED', object);
    }
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }
}

function deliver(w: Watcher, event: WatchEvent): void {
  if (event.typeKey !== w.typeKey) return;
  if (w.namespace && event.object.metadata.namespace !== w.namespace) return;
  if (!w.labels(event.object.metadata.labels ?? {}) || !w.fields(event.object)) return;
  w.send(event.type, event.object);
}

function claim(managers: Manager[], name: string, operation: 'Apply' | 'Update', apiVersion: string, changed: FieldSet, subresource?: string): Manager[] {
  const out = managers.map((m) => ({...m, fields: new Set([...m.fields].filter((f) => !changed.has(f) || m.manager === name))})).filter((m) => m.fields.size > 0);
  const existing = out.find((m) => m.manager === name && m.operation === operation && m.subresource === subresource);
  if (existing) {
    existing.fields = new Set([...existing.fields, ...changed]);
    existing.time = now();
  } else out.push({manager: name, operation, apiVersion, time: now(), fields: changed, subresource});
  return out;
}

function sameOwnership(a: Manager[], b: Manager[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((m, i) => m.manager === b[i].manager && m.operation === b[i].operation && m.fields.size === b[i].fields.size && [...m.fields].every((f) => b[i].fields.has(f)));
}

function strip(o: KubeObject): JsonObject {
  const copy = clone(o) as JsonObject;
  const meta = copy.metadata as JsonObject;
  delete meta.managedFields;
  delete meta.resourceVersion;
  return copy;
}

function specOf(o: KubeObject): JsonObject {
  const copy = clone(o) as JsonObject;
  delete copy.metadata;
  delete copy.status;
  return copy;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function notFound(t: ResourceType, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${t.plural}${t.group ? `.${t.group}` : ''} "${name}" not found`, {name, group: t.group, kind: t.plural});
}

function conflict(t: ResourceType, name: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${t.plural}${t.group ? `.${t.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`, {name, group: t.group, kind: t.plural});
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function validateName(t: ResourceType, name: string): void {
  if (name.length > 253 || (!DNS_SUBDOMAIN.test(name) && !(t.kind.startsWith('ClusterRole') || t.kind.startsWith('Role')))) {
    throw new ApiError(422, 'Invalid', `${t.kind} "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`);
  }
}
