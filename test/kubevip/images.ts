/**
 * kube-vip as a lab image, named as its own manifest names it
 * (ghcr.io/kube-vip/kube-vip:<version>): the program test/kubevip/build.sh
 * built, alone in a layer with /tmp, as kube-vip's own image holds little
 * more. For the lab kubelet (test/lab/images.ts) to run.
 */
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {writeLayoutDir} from '../../tools/image.js';
import {imageLayout} from '../../tools/oci.js';
import {repoRoot} from '../lab/tools.js';

export const KUBE_VIP_IMAGE = 'ghcr.io/kube-vip/kube-vip';

/** Builds kube-vip if the cache lacks it and writes its image's OCI layout into `out`; returns the program's path and the image reference. */
export async function kubeVipImage(out: string): Promise<{bin: string; reference: string}> {
  const build = await execa('bash', [join(repoRoot, 'test/kubevip/build.sh')], {reject: false, stderr: 'inherit'});
  if (build.exitCode !== 0) throw new Error(`test/kubevip/build.sh failed (exit ${build.exitCode})`);
  const bin = build.stdout.trim().split('\n').pop()!;
  const gomod = await readFile(join(repoRoot, 'test/kubevip/go.mod'), 'utf8');
  const version = /^require github\.com\/kube-vip\/kube-vip (\S+)/m.exec(gomod)?.[1] ?? 'unknown';
  const reference = `${KUBE_VIP_IMAGE}:${version}`;
  const image = imageLayout({
    reference,
    arch: 'amd64',
    layer: [
      {path: 'kube-vip', type: 'file', mode: 0o755, data: await readFile(bin)},
      {path: 'tmp', type: 'dir', mode: 0o1777},
    ],
    entrypoint: ['/kube-vip'],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    workingDir: '/',
    labels: {'org.opencontainers.image.source': 'https://github.com/kube-vip/kube-vip', 'org.opencontainers.image.version': version},
    epoch: 0,
  });
  await writeLayoutDir(image, join(out, 'kube-vip-oci'));
  return {bin, reference};
}
