/**
 * extip_image_archive on the lab: the role copies npm run image's archive to each
 * node and imports it with ctr where the node lacks the image, and uninstall
 * removes it where extip imported it. There is no containerd here; the lab's ctr
 * (test/lab/ctr.py) keeps each node's image list and checks archives as
 * containerd does, and is tested on its own first.
 */
import {describe, expect, test} from '@jest/globals';
import {existsSync} from 'node:fs';
import {copyFile, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot, tempDir} from '../helpers/ansible.js';
import {explain, runRole} from '../helpers/role.js';
import {useLab} from '../helpers/lab.js';

const version = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')).version as string;
const ref = `ghcr.io/extip/ipmanager:${version}`;
const archive = join(repoRoot, `dist/image/ipmanager-${version}.oci.tar`);
const built = JSON.parse(await readFile(join(repoRoot, `dist/image/ipmanager-${version}.json`), 'utf8')) as {digest: string};
const ecmp = {extip_iface: 'lo', extip_mask: 32, extip_distribution: 'all', extip_ctrl_app_kind: 'DaemonSet', extip_external_cidrs: ['10.0.0.0/24']};

const lab = useLab({nodes: 2});

const ctr = (node: string, args: string[]) => execa(join(lab.dir, 'ctr', node), ['-n', 'k8s.io', ...args], {reject: false});
async function images(node: string): Promise<Record<string, {digest: string}>> {
  const text = await readFile(join(lab.containerdRoot(lab.host(node)), 'images.json'), 'utf8').catch(() => '{}');
  return JSON.parse(text)['k8s.io'] ?? {};
}
async function calls(node: string): Promise<Array<{argv: string[]; sha256?: string}>> {
  const text = await readFile(join(lab.containerdRoot(lab.host(node)), 'calls.jsonl'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const imports = async (node: string) => (await calls(node)).filter((c) => c.argv.includes('import'));

describe('the lab\'s ctr', () => {
  test('imports an OCI archive under its containerd name, lists and removes it; refuses what is not a sound OCI layout', async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir.path, 'junk.tar'), 'not a tar');
      expect((await ctr('node2', ['images', 'import', join(dir.path, 'junk.tar')])).stderr).toContain('not a tar archive');
      await execa('tar', ['-cf', join(dir.path, 'plain.tar'), '-C', repoRoot, 'package.json']);
      expect((await ctr('node2', ['images', 'import', join(dir.path, 'plain.tar')])).stderr).toContain('not an OCI image layout');
      // One blob changed: the digest check catches it.
      const work = join(dir.path, 'tampered');
      await execa('mkdir', [work]);
      await execa('tar', ['-xf', archive, '-C', work]);
      const index = JSON.parse(await readFile(join(work, 'index.json'), 'utf8'));
      const manifest = join(work, 'blobs/sha256', index.manifests[0].digest.slice(7));
      await writeFile(manifest, (await readFile(manifest, 'utf8')).replace('"schemaVersion":2', '"schemaVersion": 2'));
      await execa('tar', ['-cf', join(dir.path, 'tampered.tar'), '-C', work, '.']);
      const tampered = await ctr('node2', ['images', 'import', join(dir.path, 'tampered.tar')]);
      expect([tampered.exitCode, tampered.stderr]).toEqual([1, expect.stringContaining('does not match its digest')]);

      const ok = await ctr('node2', ['images', 'import', archive]);
      expect([ok.exitCode, ok.stdout]).toEqual([0, `unpacking ${ref} (${built.digest})...done`]);
      expect((await ctr('node2', ['images', 'ls', '-q'])).stdout).toBe(ref);
      expect((await ctr('node2', ['images', 'ls', `name==${ref}`])).stdout).toContain(built.digest);
      expect((await ctr('node2', ['images', 'rm', ref])).exitCode).toBe(0);
      const again = await ctr('node2', ['images', 'rm', ref]);
      expect([again.exitCode, again.stderr]).toEqual([1, `ctr: image "${ref}": not found\n`.trimEnd()]);
    } finally {
      await dir.cleanup();
    }
  });
});

describe('extip_image_archive', () => {
  test('install imports the image where a node lacks it, a re-run imports nothing, uninstall removes it where extip imported it', async () => {
    // node2 has the image already (its operator loaded it): extip leaves it alone.
    expect((await ctr('node2', ['images', 'import', archive])).exitCode).toBe(0);
    const before2 = (await imports('node2')).length;

    const vars = {...ecmp, extip_image_archive: archive};
    const install = await runRole(lab, {vars});
    if (install.exitCode !== 0) console.log(explain(install));
    expect(install.exitCode).toBe(0);
    expect(Object.keys(await images('node1'))).toEqual([ref]);
    expect((await images('node1'))[ref].digest).toBe(built.digest);
    const node1 = await imports('node1');
    expect(node1).toHaveLength(1);
    expect(node1[0].sha256).toBe((await execa('sha256sum', [archive])).stdout.split(' ')[0]);
    expect((await imports('node2')).length).toBe(before2);
    expect(existsSync('/var/tmp/extip-image-node1.oci.tar')).toBe(false);
    const pods = JSON.parse((await lab.kubectl(['get', 'pods', '-n', 'default', '-l', 'app=externalipcontroller', '-o', 'json'])).stdout).items;
    expect(pods.map((p: {spec: {containers: Array<{image: string}>}}) => p.spec.containers[0].image)).toEqual([ref, ref]);

    const again = await runRole(lab, {vars});
    expect([again.exitCode, again.changedTasks]).toEqual([0, []]);
    expect(await imports('node1')).toHaveLength(1);

    const removal = await runRole(lab, {vars, playbook: 'externalip-uninstall.yml'});
    expect(removal.exitCode).toBe(0);
    expect(await images('node1')).toEqual({});
    expect(Object.keys(await images('node2'))).toEqual([ref]);
    expect((await ctr('node2', ['images', 'rm', ref])).exitCode).toBe(0);
  });

  test('an archive without the image the workloads run stops the install before anything changes', async () => {
    const dir = await tempDir();
    try {
      const other = join(dir.path, 'other.oci.tar');
      await copyFile(archive, other);
      const r = await runRole(lab, {vars: {...ecmp, extip_image_archive: other, extip_image_tag: '9.9.9'}});
      expect(r.exitCode).not.toBe(0);
      expect(r.failures.map((f) => f.msg).join(' ')).toContain(`holds ${ref}, not ghcr.io/extip/ipmanager:9.9.9 (extip_image_repo:extip_image_tag)`);
      expect(r.changedTasks).toEqual([]);
      expect(await images('node1')).toEqual({});
    } finally {
      await dir.cleanup();
    }
  });
});
