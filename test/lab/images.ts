/**
 * The lab's image store: the images `npm run image` wrote (OCI layouts under
 * dist/image), each unpacked once into a root filesystem that the lab kubelet
 * hands to runc. A pod naming any other image cannot start (ErrImagePull),
 * except lab/none: no image, the command runs on the node's own filesystem.
 */
import {existsSync} from 'node:fs';
import {mkdir, readFile, readdir, rename, rm} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from './tools.js';

export interface LabImage {
  reference: string;
  digest: string;
  rootfs: string;
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
}

/** The image name that means "no image": the command runs on the node's own filesystem. */
export const NO_IMAGE = 'lab/none';

const store = join(repoRoot, 'node_modules/.cache/extip-lab/images');

/** Reads every OCI layout in `dir` (default dist/image) and unpacks what is not unpacked yet. */
export async function loadImages(dir = join(repoRoot, 'dist/image')): Promise<Map<string, LabImage>> {
  const images = new Map<string, LabImage>();
  if (!existsSync(dir)) return images;
  for (const entry of (await readdir(dir)).filter((e) => e.endsWith('-oci')).sort()) {
    const layout = join(dir, entry);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    for (const m of index.manifests ?? []) {
      const reference = m.annotations?.['io.containerd.image.name'];
      if (!reference) continue;
      const blob = (digest: string) => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
      const manifest = JSON.parse(await readFile(blob(m.digest), 'utf8'));
      const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8'));
      const rootfs = join(store, m.digest.slice('sha256:'.length), 'rootfs');
      if (!existsSync(rootfs)) {
        // Unpacked beside and renamed into place: labs starting at once share the store.
        const tmp = `${rootfs}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
        await mkdir(tmp, {recursive: true});
        for (const layer of manifest.layers) await execa('tar', ['-xzf', blob(layer.digest), '-C', tmp, '--same-owner', '--numeric-owner']);
        await rename(tmp, rootfs).catch(async (err) => {
          await rm(tmp, {recursive: true, force: true});
          if (!existsSync(rootfs)) throw err;
        });
      }
      images.set(reference, {
        reference,
        digest: m.digest,
        rootfs,
        entrypoint: config.config?.Entrypoint ?? [],
        cmd: config.config?.Cmd ?? [],
        env: config.config?.Env ?? [],
        workingDir: config.config?.WorkingDir || '/',
      });
    }
  }
  return images;
}
