/**
 * MetalLB's controller and speaker as lab images, named as kubespray's MetalLB
 * add-on names them (quay.io/metallb/<program>:<version>): the programs
 * test/metallb/build.sh built, alone in a layer with /tmp, as MetalLB's own
 * images hold little more. For the lab kubelet (test/lab/images.ts) to run.
 */
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {writeLayoutDir} from '../../tools/image.js';
import {imageLayout} from '../../tools/oci.js';
import {repoRoot} from '../lab/tools.js';

export const METALLB_PROGRAMS = ['controller', 'speaker'] as const;

/** Builds MetalLB if the cache lacks it and writes its images' OCI layouts into `out`; returns its version. */
export async function metallbImages(out: string): Promise<string> {
  const build = await execa('bash', [join(repoRoot, 'test/metallb/build.sh')], {reject: false, stderr: 'inherit'});
  if (build.exitCode !== 0) throw new Error(`test/metallb/build.sh failed (exit ${build.exitCode})`);
  const bin = build.stdout.trim().split('\n').pop()!;
  const version = (await readFile(join(repoRoot, 'test/metallb/VERSION'), 'utf8')).trim();
  for (const program of METALLB_PROGRAMS) {
    const image = imageLayout({
      reference: `quay.io/metallb/${program}:${version}`,
      arch: 'amd64',
      layer: [
        {path: program, type: 'file', mode: 0o755, data: await readFile(join(bin, program))},
        {path: 'tmp', type: 'dir', mode: 0o1777},
      ],
      entrypoint: [`/${program}`],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      workingDir: '/',
      labels: {'org.opencontainers.image.source': 'https://github.com/metallb/metallb', 'org.opencontainers.image.version': version},
      epoch: 0,
    });
    await writeLayoutDir(image, join(out, `metallb-${program}-oci`));
  }
  return version;
}
