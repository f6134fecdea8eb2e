/**
 * `npm run image`: the ipmanager image, built without a container engine from
 * what image/inputs.json pins: Node's official binary from its npm package,
 * the few files the agent needs from Debian's packages (the C and C++
 * runtimes, iproute2's ip, iputils' arping, BIRD 2's daemon, busybox as
 * udhcpc and their libraries), and the
 * built agent with the npm packages it imports. The same inputs give the same
 * bytes, so the same digest. Writes, under --out (default dist/image):
 *   ipmanager-<version>-oci/      the OCI image layout
 *   ipmanager-<version>.oci.tar   the same as one archive (skopeo oci-archive:,
 *                                 ctr images import, docker load)
 *   ipmanager-<version>.spdx.json what is in it: packages and versions (SPDX 2.3)
 *   ipmanager-<version>.json      digest, reference, sizes
 *
 *   npm run image [-- --out DIR] [--update-inputs] [--json]
 */
import {createHash} from 'node:crypto';
import {existsSync} from 'node:fs';
import {lstat, mkdir, readFile, readdir, readlink, realpath, rename, rm, writeFile} from 'node:fs/promises';
import {dirname, join, posix, relative, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {execa} from 'execa';
import {type BuiltImage, type TarEntry, imageLayout, layoutArchive} from './oci.js';
import {IDLE_CONFIG} from '../lib/bgp.js';
import {DHCP_EVENT_PROGRAM, eventProgramText} from '../agent/dhcp.js';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const inputsFile = join(root, 'image/inputs.json');
const cacheDir = join(root, 'node_modules/.cache/extip-image');
const LIBDIR = 'lib/x86_64-linux-gnu';

interface Inputs {
  comment: string;
  epoch: number;
  node: {package: string; version: string; integrity: string};
  debian: {suite: string; arch: string; packages: Record<string, {version: string; sha256: string}>};
}

/** The image repository extip deploys by default (extip_image_repo); the tag is the package version. */
export const IMAGE_REPO = 'ghcr.io/extip/ipmanager';

function log(message: string): void {
  process.stderr.write(`image: ${message}\n`);
}

class BuildError extends Error {}

async function sha(path: string, algorithm: 'sha256' | 'sha512', encoding: 'hex' | 'base64'): Promise<string> {
  return createHash(algorithm).update(await readFile(path)).digest(encoding);
}

/** Node's binary: the npm package's tarball, checked against the pinned integrity. */
async function fetchNode(inputs: Inputs): Promise<string> {
  const dir = join(cacheDir, 'npm');
  await mkdir(dir, {recursive: true});
  const file = join(dir, `${inputs.node.package}-${inputs.node.version}.tgz`);
  if (!existsSync(file)) {
    log(`fetching ${inputs.node.package}@${inputs.node.version} from npm`);
    await execa('npm', ['pack', `${inputs.node.package}@${inputs.node.version}`, '--pack-destination', dir, '--silent'], {cwd: dir});
  }
  const integrity = `sha512-${await sha(file, 'sha512', 'base64')}`;
  if (integrity !== inputs.node.integrity) {
    throw new BuildError(`${file} has integrity ${integrity}, image/inputs.json pins ${inputs.node.integrity}; delete the file, or run npm run image -- --update-inputs`);
  }
  return file;
}

let listsUpdated = false;

/** Debian's .deb files, by `apt-get download`, checked against the pinned SHA-256. */
async function fetchDebs(inputs: Inputs): Promise<Map<string, string>> {
  const dir = join(cacheDir, 'debs');
  await mkdir(dir, {recursive: true});
  const files = new Map<string, string>();
  for (const [name, pin] of Object.entries(inputs.debian.packages)) {
    const file = join(dir, `${name}_${pin.version.replace(/^\d+:/, '')}_${inputs.debian.arch}.deb`);
    if (!existsSync(file)) {
      log(`fetching ${name} ${pin.version} from Debian`);
      // Into a directory of its own: apt-get names the file itself (an epoch's colon as %3a).
      const tmp = join(dir, `.download-${name}`);
      await rm(tmp, {recursive: true, force: true});
      await mkdir(tmp);
      const download = () => execa('apt-get', ['download', '-q', `${name}:${inputs.debian.arch}=${pin.version}`], {cwd: tmp, reject: false});
      let r = await download();
      // A fresh machine may not have read the archive's package lists yet.
      if (r.exitCode !== 0 && !listsUpdated) {
        listsUpdated = true;
        await execa('apt-get', ['update', '-qq'], {reject: false});
        r = await download();
      }
      if (r.exitCode !== 0) {
        throw new BuildError(`apt-get download ${name}=${pin.version} failed: ${r.stderr.trim().split('\n').pop()}; if Debian has a newer version, run npm run image -- --update-inputs`);
      }
      const [written] = (await readdir(tmp)).filter((f) => f.endsWith('.deb'));
      await rename(join(tmp, written), file);
      await rm(tmp, {recursive: true, force: true});
    }
    const digest = await sha(file, 'sha256', 'hex');
    if (digest !== pin.sha256) throw new BuildError(`${file} has SHA-256 ${digest}, image/inputs.json pins ${pin.sha256}; delete it, or run npm run image -- --update-inputs`);
    files.set(name, file);
  }
  return files;
}

/** Sets every pinned version to what apt and npm offer now, with its checksum. */
async function updateInputs(inputs: Inputs): Promise<void> {
  for (const name of Object.keys(inputs.debian.packages)) {
    const policy = await execa('apt-cache', ['policy', `${name}:${inputs.debian.arch}`]);
    const version = /Candidate: (\S+)/.exec(policy.stdout)?.[1];
    if (!version || version === '(none)') throw new BuildError(`apt knows no ${name}:${inputs.debian.arch}; run apt-get update`);
    const show = await execa('apt-cache', ['show', `${name}:${inputs.debian.arch}=${version}`]);
    const sha256 = /^SHA256: (\S+)/m.exec(show.stdout)?.[1];
    if (!sha256) throw new BuildError(`apt-cache show ${name}=${version} gives no SHA256`);
    inputs.debian.packages[name] = {version, sha256};
  }
  const view = await execa('npm', ['view', `${inputs.node.package}@${inputs.node.version}`, 'dist.integrity']);
  inputs.node.integrity = view.stdout.trim();
  await writeFile(inputsFile, `${JSON.stringify(inputs, null, 2)}\n`);
  log(`wrote ${relative(root, inputsFile)}`);
}

/** Unpacks a .deb or the npm tarball into a fresh directory. */
async function unpack(file: string, into: string): Promise<string> {
  await rm(into, {recursive: true, force: true});
  await mkdir(into, {recursive: true});
  if (file.endsWith('.deb')) await execa('dpkg-deb', ['-x', file, into]);
  else await execa('tar', ['-xzf', file, '-C', into]);
  return into;
}

/** The shared libraries an ELF file asks for (DT_NEEDED). */
async function needed(file: string): Promise<string[]> {
  const r = await execa('readelf', ['-d', '-W', file]);
  return [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

class Rootfs {
  readonly entries = new Map<string, TarEntry>();

  dir(path: string, mode = 0o755): void {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!this.entries.has(p)) this.entries.set(p, {path: p, type: 'dir', mode: i === parts.length ? mode : 0o755});
    }
  }

  file(path: string, data: Buffer, mode: number): void {
    this.dir(posix.dirname(path));
    this.entries.set(path, {path, type: 'file', mode, data});
  }

  symlink(path: string, target: string): void {
    this.dir(posix.dirname(path));
    this.entries.set(path, {path, type: 'symlink', target});
  }

  size(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.type === 'file') n += e.data.length;
    return n;
  }
}

/** Adds an ELF program and, recursively, every library it needs, found in the unpacked packages. */
async function addElf(fs: Rootfs, source: string, target: string, libraryDirs: string[], owner: Map<string, string>, used: Set<string>): Promise<void> {
  fs.file(target, await readFile(source), 0o755);
  const queue = await needed(source);
  while (queue.length) {
    const soname = queue.shift()!;
    const path = `${LIBDIR}/${soname}`;
    if (fs.entries.has(path)) continue;
    const found = libraryDirs.map((d) => join(d, soname)).find((p) => existsSync(p));
    if (!found) throw new BuildError(`${soname} (needed by ${target}) is in none of the pinned Debian packages; add its package to image/inputs.json`);
    const real = await realpath(found);
    fs.file(path, await readFile(real), 0o755);
    for (const [dir, name] of owner) if (found.startsWith(`${dir}/`)) used.add(name);
    queue.push(...(await needed(real)));
  }
}

/** The agent's own modules: bin/ipmanager.js and every dist module it imports, transitively. */
async function agentModules(): Promise<string[]> {
  const seen = new Set<string>();
  const queue = [join(root, 'dist/agent/main.js')];
  while (queue.length) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) queue.push(resolve(dirname(file), m[1]));
  }
  return [...seen].sort();
}

/** The npm packages the agent imports, with theirs, from the lockfile's node_modules. */
async function agentPackages(): Promise<Array<{name: string; version: string; dir: string}>> {
  const found = new Map<string, {name: string; version: string; dir: string}>();
  const locate = (name: string, from: string): string | undefined => {
    for (let d = from; ; d = dirname(d)) {
      const p = join(d, 'node_modules', name);
      if (existsSync(join(p, 'package.json'))) return p;
      if (dirname(d) === d || d === root) return undefined;
    }
  };
  const walk = async (dir: string) => {
    if (found.has(dir)) return;
    const pj = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
    found.set(dir, {name: pj.name, version: pj.version, dir});
    for (const name of Object.keys({...pj.dependencies, ...pj.optionalDependencies})) {
      const p = locate(name, dir);
      if (p) await walk(p);
      else if (!pj.optionalDependencies?.[name]) throw new BuildError(`${name}, needed by ${pj.name}, is not installed: run npm ci`);
    }
  };
  // What the agent's modules import from npm.
  const imports = new Set<string>();
  for (const file of await agentModules()) {
    for (const m of (await readFile(file, 'utf8')).matchAll(/(?:from|import)\s*\(?\s*'([^.'][^']*)'/g)) {
      if (m[1].startsWith('node:')) continue;
      imports.add(m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0]);
    }
  }
  for (const name of [...imports].sort()) {
    const p = locate(name, root);
    if (!p) throw new BuildError(`${name} is not installed: run npm ci`);
    await walk(p);
  }
  return [...found.values()].sort((a, b) => (a.dir < b.dir ? -1 : 1));
}

/** Files of an npm package the agent runs: code and data, not type declarations, source maps or sources. */
function runtimeFile(path: string): boolean {
  return !/\.(d\.[cm]?ts|[cm]?ts|map|md|markdown)$/i.test(path) || /license/i.test(path);
}

async function addTree(fs: Rootfs, source: string, target: string, keep: (p: string) => boolean): Promise<void> {
  for (const entry of (await readdir(source, {withFileTypes: true})).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const from = join(source, entry.name);
    const to = `${target}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules' && target.split('/').length > 1 && source.includes('node_modules')) continue; // nested deps are walked on their own
      await addTree(fs, from, to, keep);
    } else if (entry.isSymbolicLink()) {
      fs.symlink(to, await readlink(from));
    } else if (keep(to)) {
      const st = await lstat(from);
      fs.file(to, await readFile(from), st.mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/** Writes an image's OCI layout into `layout` (a directory), replacing what was there. */
export async function writeLayoutDir(image: BuiltImage, layout: string): Promise<void> {
  await rm(layout, {recursive: true, force: true});
  for (const [path, data] of image.files) {
    await mkdir(dirname(join(layout, path)), {recursive: true});
    await writeFile(join(layout, path), data);
  }
}

export interface ImageResult {
  reference: string;
  digest: string;
  arch: string;
  layout: string;
  archive: string;
  sbom: string;
  /** Bytes: the root filesystem, the compressed layer, the archive. */
  sizes: {rootfs: number; layer: number; archive: number};
  seconds: number;
}

export async function buildImage(out: string): Promise<ImageResult> {
  const started = Date.now();
  const inputs = JSON.parse(await readFile(inputsFile, 'utf8')) as Inputs;
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {version: string};
  if (!existsSync(join(root, 'dist/agent/main.js'))) throw new BuildError('dist/agent/main.js is missing: run npm run build first');
  const reference = `${IMAGE_REPO}:${pkg.version}`;
  const work = join(cacheDir, 'work');

  const nodeTgz = await fetchNode(inputs);
  const debs = await fetchDebs(inputs);
  const unpacked = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const [name, file] of debs) {
    const dir = await unpack(file, join(work, 'debs', name));
    unpacked.set(name, dir);
    owner.set(dir, name);
  }
  const nodeDir = await unpack(nodeTgz, join(work, 'node'));
  const libraryDirs = [...unpacked.values()].flatMap((d) => [join(d, LIBDIR), join(d, 'usr', LIBDIR)]).filter((d) => existsSync(d));

  const fs = new Rootfs();
  for (const d of ['etc', 'proc', 'sys', 'dev', 'run', 'var', 'usr/bin', 'usr/local/bin', LIBDIR, 'lib64', 'opt/extip']) fs.dir(d);
  fs.dir('tmp', 0o1777);
  fs.file('etc/passwd', Buffer.from('root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n'), 0o644);
  fs.file('etc/group', Buffer.from('root:x:0:\nnonroot:x:65532:\n'), 0o644);
  const used = new Set<string>(['libc6']);
  // The dynamic loader, where the programs' PT_INTERP names it.
  fs.file(`${LIBDIR}/ld-linux-x86-64.so.2`, await readFile(await realpath(join(unpacked.get('libc6')!, LIBDIR, 'ld-linux-x86-64.so.2'))), 0o755);
  fs.symlink('lib64/ld-linux-x86-64.so.2', `/${LIBDIR}/ld-linux-x86-64.so.2`);
  await addElf(fs, join(nodeDir, 'package/bin/node'), 'usr/local/bin/node', libraryDirs, owner, used);
  await addElf(fs, join(unpacked.get('iproute2')!, 'bin/ip'), 'usr/bin/ip', libraryDirs, owner, used);
  used.add('iproute2');
  await addElf(fs, join(unpacked.get('iputils-arping')!, 'usr/bin/arping'), 'usr/bin/arping', libraryDirs, owner, used);
  used.add('iputils-arping');
  // BIRD 2, the BGP speaker the controller pod runs beside ipmanager (extip_bgp_speaker: extip).
  // Only the daemon: ipmanager speaks BIRD's control protocol itself, so birdc stays out.
  await addElf(fs, join(unpacked.get('bird2')!, 'usr/sbin/bird'), 'usr/bin/bird', libraryDirs, owner, used);
  used.add('bird2');
  fs.file('etc/extip/bird-idle.conf', Buffer.from(IDLE_CONFIG), 0o644);
  // busybox's DHCP client, for LoadBalancer addresses leased from the segment's DHCP server (agent/dhcp.ts),
  // under that one name: busybox runs the applet its name says, and no shell name is in the image. The
  // program udhcpc runs at each DHCP event is extip's own.
  await addElf(fs, join(unpacked.get('busybox')!, 'bin/busybox'), 'usr/bin/udhcpc', libraryDirs, owner, used);
  used.add('busybox');
  fs.file(DHCP_EVENT_PROGRAM.slice(1), Buffer.from(eventProgramText('/usr/local/bin/node')), 0o755);
  // iproute2 reads its tables (rt_tables and the like) from here.
  if (existsSync(join(unpacked.get('iproute2')!, 'usr/share/iproute2'))) await addTree(fs, join(unpacked.get('iproute2')!, 'usr/share/iproute2'), 'usr/share/iproute2', () => true);

  // The agent: its modules, the npm packages it imports, and the ipmanager command.
  fs.file('opt/extip/package.json', Buffer.from(`${JSON.stringify({name: 'extip-ipmanager', version: pkg.version, type: 'module', private: true}, null, 2)}\n`), 0o644);
  const modules = await agentModules();
  for (const file of modules) fs.file(`opt/extip/${relative(root, file)}`, await readFile(file), 0o644);
  const packages = await agentPackages();
  for (const p of packages) await addTree(fs, p.dir, `opt/extip/${relative(root, p.dir)}`, runtimeFile);
  // No shell in the image: the kernel runs the interpreter the first line names.
  fs.file('usr/local/bin/ipmanager', Buffer.from(
    "#!/usr/local/bin/node\n// ipmanager: extip's External IP Controller (a CommonJS file: it has no extension).\nimport('/opt/extip/dist/agent/main.js').then(async (m) => process.exit(await m.main(process.argv.slice(2))));\n",
  ), 0o755);

  const image = imageLayout({
    reference,
    arch: 'amd64',
    layer: [...fs.entries.values()],
    entrypoint: ['/usr/local/bin/ipmanager'],
    env: ['PATH=/usr/local/bin:/usr/bin', 'NODE_ENV=production'],
    workingDir: '/opt/extip',
    labels: {
      'org.opencontainers.image.title': 'ipmanager',
      'org.opencontainers.image.description': "extip's External IP Controller, a drop-in for the upstream ipmanager",
      'org.opencontainers.image.version': pkg.version,
      'org.opencontainers.image.licenses': 'Apache-2.0',
    },
    epoch: inputs.epoch,
  });

  const base = join(out, `ipmanager-${pkg.version}`);
  const layout = `${base}-oci`;
  await writeLayoutDir(image, layout);
  const archiveData = layoutArchive(image, inputs.epoch);
  await writeFile(`${base}.oci.tar`, archiveData);

  // The SBOM: every package something in the image comes from.
  const debPackages = [...used].filter(Boolean).sort().map((name) => {
    const pin = inputs.debian.packages[name];
    return {
      name, SPDXID: `SPDXRef-deb-${name.replace(/[^A-Za-z0-9.-]/g, '-')}`, versionInfo: pin.version, downloadLocation: 'NOASSERTION', filesAnalyzed: false,
      checksums: [{algorithm: 'SHA256', checksumValue: pin.sha256}],
      externalRefs: [{referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:deb/debian/${name}@${encodeURIComponent(pin.version)}?arch=${inputs.debian.arch}&distro=${inputs.debian.suite}`}],
    };
  });
  const npmPackages = [{name: inputs.node.package, version: inputs.node.version}, ...packages].map((p) => ({
    name: p.name, SPDXID: `SPDXRef-npm-${p.name.replace(/[^A-Za-z0-9.-]/g, '-')}-${p.version}`, versionInfo: p.version, downloadLocation: 'NOASSERTION', filesAnalyzed: false,
    externalRefs: [{referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:npm/${p.name.replace('@', '%40')}@${p.version}`}],
  }));
  const sbom = {
    spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name: reference,
    documentNamespace: `https://extip.invalid/spdx/${image.digest}`,
    creationInfo: {created: new Date(inputs.epoch * 1000).toISOString().replace('.000Z', 'Z'), creators: ['Tool: extip npm run image']},
    packages: [
      {name: 'ipmanager', SPDXID: 'SPDXRef-ipmanager', versionInfo: pkg.version, downloadLocation: 'NOASSERTION', filesAnalyzed: false, checksums: [{algorithm: 'SHA256', checksumValue: image.digest.slice(7)}]},
      ...debPackages, ...npmPackages,
    ],
  };
  await writeFile(`${base}.spdx.json`, `${JSON.stringify(sbom, null, 2)}\n`);
  const result: ImageResult = {
    reference, digest: image.digest, arch: 'amd64', layout, archive: `${base}.oci.tar`, sbom: `${base}.spdx.json`,
    sizes: {rootfs: fs.size(), layer: image.layerSize, archive: archiveData.length},
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await rm(work, {recursive: true, force: true});
  return result;
}

async function cli(): Promise<number> {
  const {values} = parseArgs({options: {out: {type: 'string', default: join(root, 'dist/image')}, 'update-inputs': {type: 'boolean'}, json: {type: 'boolean'}, help: {type: 'boolean', short: 'h'}}, strict: true});
  if (values.help) {
    process.stdout.write('Usage: npm run image [-- --out DIR] [--update-inputs] [--json]\n\nBuilds the ipmanager OCI image from image/inputs.json without a container engine.\n--update-inputs first pins the versions apt and npm offer now.\n');
    return 0;
  }
  try {
    const inputs = JSON.parse(await readFile(inputsFile, 'utf8')) as Inputs;
    if (values['update-inputs']) await updateInputs(inputs);
    const r = await buildImage(resolve(values.out!));
    if (values.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    else {
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
      process.stdout.write([
        `${r.reference} (linux/${r.arch})`,
        `  digest   ${r.digest}`,
        `  size     ${mb(r.sizes.layer)} compressed, ${mb(r.sizes.rootfs)} unpacked`,
        `  layout   ${relative(process.cwd(), r.layout)}`,
        `  archive  ${relative(process.cwd(), r.archive)}  (skopeo copy oci-archive:..., ctr -n k8s.io images import, docker load)`,
        `  sbom     ${relative(process.cwd(), r.sbom)}`,
        `  built in ${r.seconds} s`,
        '',
      ].join('\n'));
    }
    return 0;
  } catch (err) {
    if (err instanceof BuildError) {
      process.stderr.write(`image: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) process.exit(await cli());
