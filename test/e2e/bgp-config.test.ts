/**
 * BIRD 2 itself (`bird -p`, Debian's, as the image carries it) accepts every
 * configuration the speaker writes, and the image's idle one.
 */
import {afterAll, expect, test} from '@jest/globals';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {IDLE_CONFIG, type SpeakerSpec, speakerConfig} from '../../lib/bgp.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, {recursive: true, force: true});
});

async function birdParses(config: string): Promise<{exitCode: number; output: string}> {
  const dir = await mkdtemp(join(tmpdir(), 'extip-bgp-'));
  dirs.push(dir);
  await writeFile(join(dir, 'bird.conf'), config);
  const r = await execa('bird', ['-p', '-c', join(dir, 'bird.conf')], {reject: false});
  return {exitCode: r.exitCode ?? -1, output: `${r.stdout}${r.stderr}`};
}

const spec: SpeakerSpec = {
  asn: 64512,
  peers: [
    {address: '10.210.1.1', asn: 64512},
    {address: '10.211.2.1', asn: 64513, nodes: ['node3'], bfd: false, port: 1179},
  ],
  ranges: ['10.0.0.0/24', '192.0.2.0/28', '2001:db8::/64'],
  holdTime: 9,
  bfd: {intervalMs: 100, multiplier: 3},
  restartTime: 0,
};
const node1 = {node: 'node1', routerId: '10.210.1.11', subnets: ['10.210.1.0/24']};

test('BIRD 2 accepts the speaker\'s configuration with routes, without, multihop with graceful restart, with no IPv4 range, and the idle one', async () => {
  for (const config of [
    speakerConfig(spec, node1, ['10.0.0.7/32', '10.0.0.8/32']),
    speakerConfig(spec, node1, []),
    speakerConfig({...spec, restartTime: 120}, {node: 'node3', routerId: '10.211.2.2', subnets: []}, ['10.0.0.7/32']),
    speakerConfig({...spec, ranges: ['2001:db8::/64']}, node1, ['10.0.0.7/32']),
    IDLE_CONFIG,
  ]) {
    expect(await birdParses(config)).toEqual({exitCode: 0, output: ''});
  }
});
