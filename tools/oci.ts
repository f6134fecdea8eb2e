/**
 * Writes tar archives and OCI image layouts byte for byte the same for the same
 * input: entries in a fixed order, one timestamp, owner root, no user or host
 * names, gzip without a name or time. What `npm run image` builds with.
 */
import {createHash} from 'node:crypto';
import {gzipSync} from 'node:zlib';

export type TarEntry =
  | {path: string; type: 'dir'; mode: number}
  | {path: string; type: 'file'; mode: number; data: Buffer}
  | {path: string; type: 'symlink'; target: string};

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, prefix: string, e: {mode: number; size: number; type: string; linkname: string}, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii');
  h.write(octal(0, 8), 116, 8, 'ascii');
  h.write(octal(e.size, 12), 124, 12, 'ascii');
  h.write(octal(mtime, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(e.type, 156, 1, 'ascii');
  h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** name and prefix fields for a path, or undefined when only a PAX record can hold it. */
function split(path: string): [string, string] | undefined {
  if (Buffer.byteLength(path) <= 100) return [path, ''];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name) return [name, prefix];
  }
  return undefined;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function pad(data: Buffer): Buffer[] {
  const rest = data.length % BLOCK;
  return rest ? [data, Buffer.alloc(BLOCK - rest, 0)] : [data];
}

/** A POSIX (ustar, PAX for long names) tar of `entries`, sorted by path; every entry gets `mtime`. */
export function tar(entries: TarEntry[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const e of sorted) {
    const path = e.type === 'dir' ? `${e.path.replace(/\/$/, '')}/` : e.path;
    const linkname = e.type === 'symlink' ? e.target : '';
    const size = e.type === 'file' ? e.data.length : 0;
    const fields = split(path);
    const pax = (fields ? '' : paxRecord('path', path)) + (Buffer.byteLength(linkname) > 100 ? paxRecord('linkpath', linkname) : '');
    if (pax) {
      const data = Buffer.from(pax, 'utf8');
      parts.push(header('PaxHeader', '', {mode: 0o644, size: data.length, type: 'x', linkname: ''}, mtime), ...pad(data));
    }
    const [name, prefix] = fields ?? [path.slice(-100), ''];
    const type = e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0';
    const mode = e.type === 'symlink' ? 0o777 : e.mode;
    parts.push(header(name, prefix, {mode, size, type, linkname: linkname.slice(0, 100)}, mtime));
    if (e.type === 'file') parts.push(...pad(e.data));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}

/** gzip with no file name and time 0 in its header (zlib's default), level 9. */
export function gzip(data: Buffer): Buffer {
  return gzipSync(data, {level: 9});
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface Blob {
  digest: string;
  size: number;
  data: Buffer;
}

export function blob(data: Buffer | string): Blob {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  return {digest: `sha256:${sha256(buf)}`, size: buf.length, data: buf};
}

/** JSON with keys in a fixed order (sorted), so the same object always gives the same digest. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));
}

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface ImageInput {
  /** The image's name with its tag, as a pod names it: registry/repo:tag. */
  reference: string;
  arch: 'amd64' | 'arm64';
  /** The root filesystem, one layer. */
  layer: TarEntry[];
  entrypoint: string[];
  env: string[];
  workingDir: string;
  labels: Record<string, string>;
  /** Seconds since the epoch: every file's time and the image's creation time. */
  epoch: number;
}

export interface BuiltImage {
  /** The manifest's digest: what a registry and `ctr images ls` show. */
  digest: string;
  reference: string;
  /** path -> content of the OCI layout (oci-layout, index.json, blobs/sha256/...) plus Docker's manifest.json. */
  files: Map<string, Buffer>;
  /** The layer, uncompressed: to unpack without a tool. */
  layerTar: Buffer;
  layerSize: number;
}

/**
 * An OCI image layout holding one image, with Docker's manifest.json beside it
 * (as `docker save` writes since Docker 25), so one archive is read by
 * skopeo (oci-archive:), `ctr images import` and `docker load`.
 */
export function imageLayout(input: ImageInput): BuiltImage {
  const created = new Date(input.epoch * 1000).toISOString().replace('.000Z', 'Z');
  const layerTar = tar(input.layer, input.epoch);
  const layer = blob(gzip(layerTar));
  const config = blob(canonicalJson({
    architecture: input.arch,
    os: 'linux',
    created,
    config: {Entrypoint: input.entrypoint, Env: input.env, WorkingDir: input.workingDir, Labels: input.labels},
    rootfs: {type: 'layers', diff_ids: [`sha256:${sha256(layerTar)}`]},
    history: [{created, created_by: 'npm run image (extip)'}],
  }));
  const manifest = blob(canonicalJson({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: {mediaType: MEDIA.config, digest: config.digest, size: config.size},
    layers: [{mediaType: MEDIA.layer, digest: layer.digest, size: layer.size}],
    annotations: {'org.opencontainers.image.created': created},
  }));
  const tag = input.reference.slice(input.reference.lastIndexOf(':') + 1);
  const index = canonicalJson({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [{
      mediaType: MEDIA.manifest,
      digest: manifest.digest,
      size: manifest.size,
      platform: {architecture: input.arch, os: 'linux'},
      annotations: {'org.opencontainers.image.ref.name': tag, 'io.containerd.image.name': input.reference},
    }],
  });
  const path = (b: Blob) => `blobs/sha256/${b.digest.slice('sha256:'.length)}`;
  const files = new Map<string, Buffer>([
    ['oci-layout', Buffer.from(canonicalJson({imageLayoutVersion: '1.0.0'}))],
    ['index.json', Buffer.from(index)],
    [path(config), config.data],
    [path(layer), layer.data],
    [path(manifest), manifest.data],
    ['manifest.json', Buffer.from(JSON.stringify([{Config: path(config), RepoTags: [input.reference], Layers: [path(layer)]}]))],
  ]);
  return {digest: manifest.digest, reference: input.reference, files, layerTar, layerSize: layer.size};
}

/** The layout as one tar: the archive to copy to nodes and import. */
export function layoutArchive(image: BuiltImage, epoch: number): Buffer {
  const entries: TarEntry[] = [{path: 'blobs', type: 'dir', mode: 0o755}, {path: 'blobs/sha256', type: 'dir', mode: 0o755}];
  for (const [path, data] of image.files) entries.push({path, type: 'file', mode: 0o644, data});
  return tar(entries, epoch);
}
