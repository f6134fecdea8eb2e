/**
 * A lab's state, for comparing before and after: every API object (minus the
 * fields that change on their own), each host's addresses, routes and
 * macvlans, the files under the hosts' directories, etcd's keys, and what
 * else a test reads (a DHCP server's leases).
 */
import {createHash} from 'node:crypto';
import {readFile, readdir} from 'node:fs/promises';
import {join, relative} from 'node:path';
type Json = null | boolean | number | string | Json[] | {[key: string]: Json};
type JsonObject = {[key: string]: Json};
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
import type {Lab} from './lab.js';

export interface Snapshot {
  /** "<group>/<plural> <namespace>/<name>" -> object without volatile fields. */
  objects: Record<string, Json>;
  /** "<host>" -> sorted "dev address/prefix" strings. */
  addresses: Record<string, string[]>;
  /** "<host>" -> sorted route strings. */
  routes: Record<string, string[]>;
  /** "<host>" -> its macvlans' names, sorted (a DHCP lease's link is one). */
  macvlans: Record<string, string[]>;
  /** What the test's `extra` read: name -> sorted lines. */
  extra: Record<string, string[]>;
  /** "<host>/<path>" -> sha256 of the content. */
  files: Record<string, string>;
  /** etcd key -> value. */
  etcd: Record<string, string>;
}

/** Kinds whose objects come and go on their own (not part of what extip changes). */

function stripVolatile(o: JsonObject): Json {
  const copy = structuredClone(o);
  const meta = copy.metadata as JsonObject;
  for (const k of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields', 'selfLink']) delete meta[k];
  // Status is written by controllers; keep the nodes' (addresses), drop the rest.
  if (copy.kind !== 'Node') delete copy.status;
  // Cluster IPs are allocated anew on every create.
  if (copy.kind === 'Service' && isObject(copy.spec)) {
    delete copy.spec.clusterIP;
    delete copy.spec.clusterIPs;
  }
  return copy;
}

export interface SnapshotOptions {
  /** Reads etcd's keys with this function (the lab's etcd), if given. */
  etcdKeys?: () => Promise<Record<string, string>>;
  /** More state to compare, read by the test: name -> lines (a DHCP server's lease table). */
  extra?: () => Promise<Record<string, string[]>>;
}

export async function takeSnapshot(lab: Lab, options: SnapshotOptions = {}): Promise<Snapshot> {
  const objects = await realObjects(lab);
  const addresses: Record<string, string[]> = {};
  const routes: Record<string, string[]> = {};
  const macvlans: Record<string, string[]> = {};
  for (const host of [...lab.routers.map((r) => r.name), ...lab.hosts.map((h) => h.name)]) {
    const a = JSON.parse((await lab.exec(host, 'ip', ['-j', 'address', 'show'])).stdout) as Array<{ifname: string; addr_info: Array<{local: string; prefixlen: number; label?: string}>}>;
    addresses[host] = a.flatMap((l) => l.addr_info.map((i) => `${l.ifname} ${i.local}/${i.prefixlen}${i.label && i.label !== l.ifname ? ` label ${i.label}` : ''}`)).sort();
    const r = JSON.parse((await lab.exec(host, 'ip', ['-j', 'route', 'show', 'table', 'all'])).stdout) as Array<Record<string, Json>>;
    routes[host] = r
      .filter((x) => x.table !== 'local' || !String(x.dst).startsWith('fe80'))
      .map((x) => [x.type ?? 'unicast', x.dst, x.gateway ? `via ${x.gateway}` : '', x.dev ? `dev ${x.dev}` : '', x.table ? `table ${x.table}` : '', Array.isArray(x.nexthops) ? `nexthops ${(x.nexthops as JsonObject[]).map((n) => n.gateway).join(',')}` : '', x.protocol ? `proto ${x.protocol}` : ''].filter(Boolean).join(' '))
      .sort();
    macvlans[host] = (JSON.parse((await lab.exec(host, 'ip', ['-j', 'link', 'show', 'type', 'macvlan'])).stdout || '[]') as Array<{ifname: string}>).map((l) => l.ifname).sort();
  }
  const files: Record<string, string> = {};
  for (const h of lab.hosts) {
    for (const path of await walk(h.root)) {
      let content = await readFile(path);
      // An agent's ownership record is rewritten every few seconds with a new time (its sign of
      // life); what it records is the owner, the interface and the addresses.
      if (/\/run\/extip\/owners\/[^/]+\/[^/]+\.json$/.test(path)) {
        try {
          const {updated: _, ...record} = JSON.parse(content.toString('utf8'));
          content = Buffer.from(JSON.stringify(record));
        } catch {
          // Not JSON: compared as it is.
        }
      }
      files[`${h.name}/${relative(h.root, path)}`] = createHash('sha256').update(content).digest('hex').slice(0, 16);
    }
  }
  const etcd = options.etcdKeys ? await options.etcdKeys() : {};
  const extra = Object.fromEntries(Object.entries(options.extra ? await options.extra() : {}).map(([k, v]) => [k, [...v].sort()]));
  return {objects, addresses, routes, macvlans, files, etcd, extra};
}

/**
 * Every object of the real API server, as kubectl lists them, less what a live
 * cluster changes on its own: events, leases, and objects owned by another
 * (pods, ReplicaSets, ControllerRevisions, EndpointSlices: they follow their owner).
 */
async function realObjects(lab: Lab): Promise<Record<string, Json>> {
  const kinds = (await lab.kubectl(['api-resources', '--verbs=list', '-o', 'name'])).stdout.split('\n').filter(Boolean);
  const wanted = kinds.filter((k) => !['events', 'events.events.k8s.io', 'leases.coordination.k8s.io', 'endpoints'].includes(k));
  const r = await lab.kubectl(['get', wanted.join(','), '--all-namespaces', '-o', 'json']);
  if (r.exitCode !== 0) throw new Error(`snapshot: kubectl get failed: ${r.stderr}`);
  const objects: Record<string, Json> = {};
  for (const item of JSON.parse(r.stdout).items as JsonObject[]) {
    const meta = item.metadata as JsonObject;
    if (Array.isArray(meta.ownerReferences) && meta.ownerReferences.length) continue;
    const api = String(item.apiVersion);
    const group = api.includes('/') ? api.split('/')[0] : '';
    const copy = stripVolatile(item) as JsonObject;
    // A node's status is its kubelet's heartbeat; its addresses are what matters here.
    if (item.kind === 'Node') copy.status = {addresses: (item.status as JsonObject).addresses};
    objects[`${group}/${String(item.kind).toLowerCase()} ${meta.namespace ?? ''}/${meta.name}`] = copy;
  }
  return objects;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, {withFileTypes: true}).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else out.push(path);
  }
  return out;
}

/** Differences between two snapshots as readable lines; empty when equal. */
export function diffSnapshots(before: Snapshot, after: Snapshot): string[] {
  const lines: string[] = [];
  const compareMaps = (what: string, a: Record<string, Json>, b: Record<string, Json>, detail: (x: Json, y: Json) => string[]) => {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (!(key in a)) lines.push(`+ ${what} ${key}`);
      else if (!(key in b)) lines.push(`- ${what} ${key}`);
      else {
        const d = detail(a[key], b[key]);
        if (d.length) lines.push(`~ ${what} ${key}`, ...d.map((l) => `    ${l}`));
      }
    }
  };
  compareMaps('object', before.objects, after.objects, (x, y) => jsonDiff(x, y, ''));
  const listDiff = (x: Json, y: Json) => {
    const xs = x as string[];
    const ys = y as string[];
    return [...ys.filter((v) => !xs.includes(v)).map((v) => `+ ${v}`), ...xs.filter((v) => !ys.includes(v)).map((v) => `- ${v}`)];
  };
  compareMaps('addresses of', before.addresses, after.addresses, listDiff);
  compareMaps('routes of', before.routes, after.routes, listDiff);
  compareMaps('macvlans of', before.macvlans, after.macvlans, listDiff);
  compareMaps('', before.extra, after.extra, listDiff);
  compareMaps('file', before.files, after.files, (x, y) => (x === y ? [] : ['content changed']));
  compareMaps('etcd key', before.etcd, after.etcd, (x, y) => (x === y ? [] : [`${JSON.stringify(x)} -> ${JSON.stringify(y)}`]));
  return lines;
}

function jsonDiff(a: Json, b: Json, path: string): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (isObject(a) && isObject(b)) {
    const out: string[] = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (!(k in a)) out.push(`${path}.${k}: added ${JSON.stringify(b[k])}`);
      else if (!(k in b)) out.push(`${path}.${k}: removed (was ${JSON.stringify(a[k])})`);
      else out.push(...jsonDiff(a[k], b[k], `${path}.${k}`));
    }
    return out;
  }
  return [`${path || '.'}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`];
}
