/**
 * The four ways to change an object: JSON merge patch (RFC 7386), strategic
 * merge patch, JSON patch (RFC 6902) and server-side apply with field ownership.
 */
import {ApiError, type Json, type JsonObject, clone, deepEqual, isObject} from './types.js';

/**
 * Lists that are maps keyed by some fields (Kubernetes' patchMergeKey /
 * listMapKeys), by the field name that holds them. Every other list is atomic.
 */
const LIST_KEYS: Record<string, string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  imagePullSecrets: ['name'],
  ports: ['port', 'containerPort', 'protocol'],
  conditions: ['type'],
  ownerReferences: ['uid'],
  versions: ['name'],
  hostAliases: ['ip'],
  topologySpreadConstraints: ['topologyKey', 'whenUnsatisfiable'],
};

/** Lists of scalars that are sets (merged, not replaced). */
const SET_LISTS = new Set(['finalizers']);

function keyFieldsFor(field: string, items: Json[]): string[] | undefined {
  const keys = LIST_KEYS[field];
  if (!keys) return undefined;
  // A ports list: container ports are keyed by containerPort+protocol, Service ports by port+protocol.
  if (field === 'ports') {
    const first = items.find(isObject);
    if (first && 'containerPort' in first) return ['containerPort', 'protocol'];
    return ['port', 'protocol'];
  }
  return keys;
}

function itemKey(item: Json, keys: string[]): string {
  if (!isObject(item)) return JSON.stringify(item);
  const key: JsonObject = {};
  for (const k of keys) {
    if (k === 'protocol') key[k] = (item[k] as string | undefined) ?? 'TCP';
    else if (k in item) key[k] = item[k];
  }
  return JSON.stringify(key);
}

// --- JSON merge patch --------------------------------------------------------

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = mergePatch(result[k] ?? null, v);
  }
  return result;
}

// --- strategic merge patch -----------------------------------------------------

export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  if (patch.$patch === 'replace') {
    const copy = clone(patch);
    delete copy.$patch;
    return copy;
  }
  if (patch.$patch === 'delete') return null;
  const retain = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$retainKeys' || k === '$patch') continue;
    if (k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const name = k.slice('$deleteFromPrimitiveList/'.length);
      const current = result[name];
      if (Array.isArray(current) && Array.isArray(v)) result[name] = current.filter((x) => !v.some((y) => deepEqual(x, y)));
      continue;
    }
    if (v === null) {
      delete result[k];
      continue;
    }
    if (Array.isArray(v)) {
      result[k] = mergeList(k, result[k], v);
      continue;
    }
    result[k] = strategicMergePatch(result[k] ?? null, v);
  }
  if (Array.isArray(retain)) {
    for (const k of Object.keys(result)) if (!retain.includes(k)) delete result[k];
  }
  return result;
}

function mergeList(field: string, current: Json | undefined, patch: Json[]): Json[] {
  const existing = Array.isArray(current) ? current : [];
  if (SET_LISTS.has(field)) {
    const out = [...existing];
    for (const item of patch) if (!out.some((x) => deepEqual(x, item))) out.push(item);
    return out;
  }
  const keys = keyFieldsFor(field, [...patch, ...existing]);
  if (!keys || patch.some((p) => !isObject(p))) {
    return clone(patch).filter((p) => !(isObject(p) && p.$patch === 'delete'));
  }
  const out = clone(existing);
  for (const item of patch as JsonObject[]) {
    const key = itemKey(item, keys);
    const index = out.findIndex((x) => itemKey(x, keys) === key);
    if (item.$patch === 'delete') {
      if (index >= 0) out.splice(index, 1);
    } else if (index >= 0) {
      out[index] = strategicMergePatch(out[index], item);
    } else {
      const copy = clone(item);
      delete copy.$patch;
      out.push(copy);
    }
  }
  return out;
}

// --- JSON patch ------------------------------------------------------------------

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new ApiError(422, 'Invalid', `invalid JSON pointer ${path}`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: Json, parts: string[]): Json | undefined {
  let cur: Json | undefined = doc;
  for (const p of parts) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isObject(cur)) cur = cur[p];
    else return undefined;
  }
  return cur;
}

export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new ApiError(400, 'BadRequest', 'a JSON patch must be a list of operations');
  let result = clone(doc);
  for (const raw of ops) {
    if (!isObject(raw)) throw new ApiError(400, 'BadRequest', 'invalid JSON patch operation');
    const op = raw.op as string;
    const path = pointer(String(raw.path ?? ''));
    const parentPath = path.slice(0, -1);
    const last = path[path.length - 1];
    const parent = getAt(result, parentPath);
    const fail = (why: string) => new ApiError(422, 'Invalid', `JSON patch ${op} ${raw.path}: ${why}`);
    const put = (value: Json) => {
      if (path.length === 0) {
        result = value;
        return;
      }
      if (Array.isArray(parent)) {
        const index = last === '-' ? parent.length : Number(last);
        if (!(index >= 0 && index <= parent.length)) throw fail('index out of range');
        parent.splice(index, 0, value);
      } else if (isObject(parent)) parent[last] = value;
      else throw fail('the parent does not exist');
    };
    const remove = (): Json => {
      if (Array.isArray(parent)) {
        const index = Number(last);
        if (!(index >= 0 && index < parent.length)) throw fail('index out of range');
        return parent.splice(index, 1)[0];
      }
      if (isObject(parent) && last in parent) {
        const value = parent[last];
        delete parent[last];
        return value;
      }
      throw fail('the path does not exist');
    };
    switch (op) {
      case 'add':
        put(clone(raw.value ?? null));
        break;
      case 'remove':
        remove();
        break;
      case 'replace':
        remove();
        put(clone(raw.value ?? null));
        break;
      case 'test':
        if (!deepEqual(getAt(result, path), raw.value)) throw fail('test failed');
        break;
      case 'move':
      case 'copy': {
        const from = pointer(String(raw.from ?? ''));
        const value = getAt(result, from);
        if (value === undefined) throw fail('from does not exist');
        if (op === 'move') result = jsonPatch(result, [{op: 'remove', path: String(raw.from)}]);
        result = jsonPatch(result, [{op: 'add', path: String(raw.path), value: clone(value)}]);
        break;
      }
      default:
        throw new ApiError(400, 'BadRequest', `unknown JSON patch operation ${op}`);
    }
  }
  return result;
}

// --- server-side apply ----------------------------------------------------------

/** A field path: segments `f:name` or `k:{"name":"x"}`; a leaf owns its whole value. */
export type FieldSet = Set<string>;

const IGNORED_TOP = new Set(['apiVersion', 'kind']);
const IGNORED_META = new Set(['managedFields', 'resourceVersion', 'uid', 'creationTimestamp', 'generation', 'selfLink', 'deletionTimestamp']);

/** The set of leaf paths `config` sets, with the intermediate nodes marked by a trailing ".". */
export function fieldsOf(config: JsonObject): FieldSet {
  const out: FieldSet = new Set();
  const walk = (value: Json, path: string[], field: string) => {
    if (isObject(value) && Object.keys(value).length > 0) {
      if (path.length) out.add(JSON.stringify([...path, '.']));
      for (const [k, v] of Object.entries(value)) {
        if (path.length === 0 && IGNORED_TOP.has(k)) continue;
        if (path.length === 1 && path[0] === 'f:metadata' && IGNORED_META.has(k)) continue;
        if (path.length === 0 && k === 'status') continue;
        walk(v, [...path, `f:${k}`], k);
      }
      return;
    }
    if (Array.isArray(value) && value.length > 0) {
      const keys = keyFieldsFor(field, value);
      if (keys && value.every(isObject)) {
        out.add(JSON.stringify([...path, '.']));
        for (const item of value) walk(item, [...path, `k:${itemKey(item, keys)}`], '');
        return;
      }
      if (SET_LISTS.has(field)) {
        out.add(JSON.stringify([...path, '.']));
        for (const item of value) out.add(JSON.stringify([...path, `v:${JSON.stringify(item)}`]));
        return;
      }
    }
    out.add(JSON.stringify(path));
  };
  walk(config, [], '');
  return out;
}

/** Converts a field set to the managedFields `fieldsV1` form. */
export function toFieldsV1(fields: FieldSet): JsonObject {
  const root: JsonObject = {};
  for (const encoded of [...fields].sort()) {
    const path = JSON.parse(encoded) as string[];
    let node = root;
    for (const seg of path) {
      node[seg] ??= {};
      node = node[seg] as JsonObject;
    }
  }
  return root;
}

/** Walks an object along a field path; undefined when it is not there. */
function valueAt(obj: Json, path: string[]): Json | undefined {
  let cur: Json | undefined = obj;
  let field = '';
  for (const seg of path) {
    if (seg === '.') return cur;
    if (seg.startsWith('f:')) {
      field = seg.slice(2);
      cur = isObject(cur) ? cur[field] : undefined;
    } else if (seg.startsWith('k:')) {
      if (!Array.isArray(cur)) return undefined;
      const list: Json[] = cur;
      const keys = keyFieldsFor(field, list) ?? [];
      cur = list.find((item) => itemKey(item, keys) === seg.slice(2));
    } else if (seg.startsWith('v:')) {
      const list: Json[] = Array.isArray(cur) ? cur : [];
      cur = list.find((item) => JSON.stringify(item) === seg.slice(2));
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Removes the value at a field path from `obj` (in place). */
function removeAt(obj: JsonObject, path: string[]): void {
  const parentPath = path.slice(0, -1);
  const last = path[path.length - 1];
  const parent = valueAt(obj, parentPath.length ? parentPath : []) ?? (parentPath.length ? undefined : obj);
  const field = [...parentPath].reverse().find((s) => s.startsWith('f:'))?.slice(2) ?? '';
  if (last.startsWith('f:') && isObject(parent)) delete parent[last.slice(2)];
  else if (last.startsWith('k:') && Array.isArray(parent)) {
    const keys = keyFieldsFor(field, parent) ?? [];
    const index = parent.findIndex((item) => itemKey(item, keys) === last.slice(2));
    if (index >= 0) parent.splice(index, 1);
  } else if (last.startsWith('v:') && Array.isArray(parent)) {
    const index = parent.findIndex((item) => JSON.stringify(item) === last.slice(2));
    if (index >= 0) parent.splice(index, 1);
  }
}

export interface Manager {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fields: FieldSet;
  subresource?: string;
}

export interface ApplyResult {
  object: JsonObject;
  managers: Manager[];
}

/**
 * Server-side apply of `config` by `manager` onto `live` (undefined to create).
 * Conflicts with other managers' differing values are errors unless `force`.
 */
export function serverSideApply(
  live: JsonObject | undefined,
  managers: Manager[],
  config: JsonObject,
  manager: string,
  force: boolean,
  now: string,
): ApplyResult {
  const newFields = fieldsOf(config);
  const leaves = [...newFields].filter((f) => (JSON.parse(f) as string[]).at(-1) !== '.');
  const object: JsonObject = live ? clone(live) : {};
  const others = managers.filter((m) => !(m.manager === manager && m.operation === 'Apply'));
  const previous = managers.find((m) => m.manager === manager && m.operation === 'Apply');

  // Conflicts: a field another manager owns, set here to a different value.
  if (live && !force) {
    const conflicts: string[] = [];
    for (const leaf of leaves) {
      const path = JSON.parse(leaf) as string[];
      const mine = valueAt(config, path);
      const theirs = valueAt(live, path);
      if (theirs === undefined || deepEqual(mine, theirs)) continue;
      for (const m of others) if (m.fields.has(leaf)) conflicts.push(`conflict with "${m.manager}": ${path.map((s) => s.replace(/^f:/, '')).join('.')}`);
    }
    if (conflicts.length) {
      throw new ApiError(409, 'Conflict', `Apply failed with ${conflicts.length} conflict${conflicts.length > 1 ? 's' : ''}: ${conflicts.join('\n')}`, {
        causes: conflicts.map((c) => ({reason: 'FieldManagerConflict', message: c})),
      });
    }
  }

  // Fields this manager applied before and no longer applies, that nobody else owns, go.
  if (previous) {
    const dropped = [...previous.fields]
      .filter((f) => !newFields.has(f) && !others.some((m) => m.fields.has(f)))
      .map((f) => JSON.parse(f) as string[])
      .sort((a, b) => b.length - a.length);
    for (const path of dropped) {
      if (path[path.length - 1] === '.') {
        const container = valueAt(object, path);
        const empty = container === undefined || (isObject(container) && !Object.keys(container).length) || (Array.isArray(container) && !container.length);
        if (empty && path.length > 1) removeAt(object, path.slice(0, -1));
      } else removeAt(object, path);
    }
  }

  const merged = applyMerge(object, config) as JsonObject;
  const updatedOthers = others
    .map((m) => (force ? {...m, fields: new Set([...m.fields].filter((f) => !newFields.has(f) || !leaves.includes(f)))} : m))
    .filter((m) => m.fields.size > 0);
  return {object: merged, managers: [...updatedOthers, {manager, operation: 'Apply', apiVersion: String(config.apiVersion ?? ''), time: now, fields: newFields}]};
}

/** Merges an applied configuration into an object: maps deep, keyed lists by key, the rest replaced. */
function applyMerge(target: Json, config: Json, field = ''): Json {
  if (isObject(config)) {
    const out: JsonObject = isObject(target) ? clone(target) : {};
    for (const [k, v] of Object.entries(config)) out[k] = applyMerge(out[k], v, k);
    return out;
  }
  if (Array.isArray(config)) {
    const keys = keyFieldsFor(field, config);
    if (keys && config.every(isObject) && Array.isArray(target)) {
      const out = clone(target);
      for (const item of config) {
        const index = out.findIndex((x) => itemKey(x, keys) === itemKey(item, keys));
        if (index >= 0) out[index] = applyMerge(out[index], item);
        else out.push(clone(item));
      }
      return out;
    }
    if (SET_LISTS.has(field) && Array.isArray(target)) {
      const out = clone(target);
      for (const item of config) if (!out.some((x) => deepEqual(x, item))) out.push(clone(item));
      return out;
    }
  }
  return clone(config);
}

/** Fields that differ between two objects (for Update operations' ownership). */
export function changedFields(before: JsonObject | undefined, after: JsonObject): FieldSet {
  const all = fieldsOf(after);
  if (!before) return all;
  return new Set([...all].filter((f) => {
    const path = JSON.parse(f) as string[];
    return !deepEqual(valueAt(before, path), valueAt(after, path));
  }));
}
