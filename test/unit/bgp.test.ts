/**
 * The speaker's BIRD configuration (BIRD itself parses it in
 * test/e2e/bgp-config.test.ts), and the rules on the BGP variables.
 */
import {describe, expect, test} from '@jest/globals';
import {readFileSync} from 'node:fs';
import {type BgpSetup, bgpPeerErrors, bgpSetupErrors, peerName, speakerConfig, speakerSpecErrors} from '../../lib/bgp.js';
import {spec, node1} from '../fixtures/bgp-spec.js';


describe('speakerConfig', () => {
  test('each node peers with the peers that name it or name none; direct inside its subnets, multihop beyond', () => {
    const one = speakerConfig(spec, node1, []);
    expect(one).toContain(`protocol bgp ${peerName({address: '10.210.1.1'})} {`);
    expect(one).not.toContain('10.211.2.1');
    expect(one).toMatch(/neighbor 10\.210\.1\.1 as 64512;\n {2}direct;/);
    const three = speakerConfig(spec, {node: 'node3', routerId: '10.211.2.2', subnets: ['10.211.2.0/24']}, []);
    expect(three).toMatch(/neighbor 10\.211\.2\.1 port 1179 as 64513;\n {2}direct;/);
    expect(three).toMatch(/neighbor 10\.210\.1\.1 as 64512;\n {2}multihop;/);
    expect(three).toMatch(/peer_10_211_2_1[^}]*bfd off;/);
    expect(three).toMatch(/peer_10_210_1_1[^}]*bfd on;/);
  });

  test('exports only IPv4 /32s it is given, never the node address; the filter allows the declared IPv4 ranges only', () => {
    const config = speakerConfig(spec, node1, ['10.0.0.7/32', '10.210.1.11/32', '10.0.0.0/24', '2001:db8::7/128']);
    expect(config.match(/route \S+ blackhole;/g)).toEqual(['route 10.0.0.7/32 blackhole;']);
    expect(config).toContain('if net ~ [ 10.0.0.0/24+, 192.0.2.0/28+ ] then accept;');
    expect(config).toContain('if net = 10.210.1.11/32 then reject;');
    expect(config).toContain('if proto != "extip_exports" then reject;');
  });

  test('no declared IPv4 range: the filter accepts nothing', () => {
    const config = speakerConfig({...spec, ranges: ['2001:db8::/64']}, node1, ['10.0.0.7/32']);
    expect(config).not.toMatch(/then accept/);
  });
});

const cases = JSON.parse(readFileSync(new URL('../fixtures/bgp-cases.json', import.meta.url), 'utf8')) as {
  setups: Array<BgpSetup & {errors: string[]}>;
  peers: Array<{value: unknown; errors: string[]}>;
};

describe('the case table the role runs too (test/fixtures/bgp-cases.json)', () => {
  test.each(cases.setups.map((c) => ({...c, name: `speaker ${c.speaker}, distribution ${c.distribution}`})))('setup: $name', (c) => {
    expect(bgpSetupErrors(c)).toEqual(c.errors);
  });
  test.each(cases.peers.map((c) => ({...c, name: JSON.stringify(c.value)})))('peers $name', (c) => {
    expect(bgpPeerErrors(c.value)).toEqual(c.errors);
  });
});

describe('bgpPeerErrors', () => {
  test('good peers pass', () => {
    expect(bgpPeerErrors(spec.peers)).toEqual([]);
    expect(bgpPeerErrors([])).toEqual([]);
  });

  test.each([
    ['x', 'not a list'],
    [[{address: '10.0.0.1'}], 'peer 1: asn null is not an AS number from 1 to 4294967295'],
    [[{address: '2001:db8::1', asn: 1}], 'peer 1: address "2001:db8::1" is not an IPv4 address'],
    [[{address: '10.0.0.1', asn: 1}, {address: '10.0.0.1', asn: 2}], 'peer 2: address 10.0.0.1 is listed twice'],
    [[{address: '10.0.0.1', asn: 0}], 'peer 1: asn 0 is not an AS number from 1 to 4294967295'],
    [[{address: '10.0.0.1', asn: 1, nodes: []}], 'peer 1: nodes is not a non-empty list of node names'],
    [[{address: '10.0.0.1', asn: 1, nodes: ['Node_1']}], 'peer 1: nodes is not a non-empty list of node names'],
    [[{address: '10.0.0.1', asn: 1, bfd: 'yes'}], 'peer 1: bfd is not true or false'],
    [[{address: '10.0.0.1', asn: 1, port: 0}], 'peer 1: port 0 is not a port from 1 to 65535'],
    [[{address: '10.0.0.1', asn: 1, password: 'x'}], 'peer 1 has unknown keys password (allowed: address, asn, nodes, bfd, port)'],
    [['10.0.0.1'], 'peer 1 is not a mapping'],
  ])('%j: %s', (value, error) => {
    expect(bgpPeerErrors(value)).toContain(error);
  });

  test('a spec file with a bad field says which', () => {
    expect(speakerSpecErrors(spec)).toEqual([]);
    expect(speakerSpecErrors({...spec, holdTime: 1})).toEqual(['holdTime is not a whole number of seconds from 3 to 65535']);
    expect(speakerSpecErrors([])).toEqual(['not a JSON object']);
  });
});
