/**
 * BIRD 2 itself (`bird -p`, Debian's, as the image carries it) accepts every
 * configuration the speaker writes, and the image's idle one.
 */
import {afterAll, expect, test} from '@jest/globals';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {IDLE_CONFIG, speakerConfig} from '../../lib/bgp.js';
import {spec, node1} from '../fixtures/bgp-spec.js';

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


const withReflector = {...spec, reflectors: [{address: '10.210.1.100', nodes: ['node1', 'node2'], peers: [{address: '10.210.1.1', asn: 64512}]}]};

test('BIRD 2 accepts the speaker\'s configuration with routes, without, multihop with graceful restart, with no IPv4 range, shutting routes down, as a route reflector and its client, and the idle one', async () => {
  for (const config of [
    speakerConfig(spec, node1, ['10.0.0.7/32', '10.0.0.8/32']),
    speakerConfig(spec, node1, []),
    speakerConfig({...spec, restartTime: 120}, {node: 'node3', routerId: '10.211.2.2', subnets: []}, ['10.0.0.7/32']),
    speakerConfig({...spec, ranges: ['2001:db8::/64']}, node1, ['10.0.0.7/32']),
    // On the way out (GRACEFUL_SHUTDOWN); a route reflector's holder, and a node of its rack.
    speakerConfig(spec, node1, ['10.0.0.7/32', '10.0.0.8/32'], undefined, new Set(['10.0.0.8/32'])),
    speakerConfig(withReflector, node1, ['10.0.0.7/32'], {reflector: withReflector.reflectors![0], subnet: '10.210.1.0/24'}, new Set(['10.0.0.7/32'])),
    speakerConfig(withReflector, {node: 'node2', routerId: '10.210.1.12', subnets: ['10.210.1.0/24']}, ['10.0.0.7/32']),
    IDLE_CONFIG,
  ]) {
    expect(await birdParses(config)).toEqual({exitCode: 0, output: ''});
  }
});
