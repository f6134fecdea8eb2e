/**
 * The speaker's BIRD configuration (BIRD itself parses it in
 * test/e2e/bgp-config.test.ts), and the rules on the BGP variables.
 */
import {describe, expect, test} from '@jest/globals';
import {readFileSync} from 'node:fs';
import {type BgpSetup, bgpPeerErrors, bgpReflectorErrors, bgpSetupErrors, peerName, peersOf, speakerConfig, speakerSpecErrors} from '../../lib/bgp.js';
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
    expect(config).toContain('if net ~ [ 10.0.0.0/24+, 192.0.2.0/28+ ] then return true;');
    expect(config).toContain('if net = 10.210.1.11/32 then return false;');
    expect(config).toContain('if proto != "extip_exports" then reject;\n  if extip_exportable() then accept;\n  reject;');
  });

  test('no declared IPv4 range: the filter accepts nothing', () => {
    const config = speakerConfig({...spec, ranges: ['2001:db8::/64']}, node1, ['10.0.0.7/32']);
    expect(config).not.toMatch(/then return true/);
  });

  test('a route on its way out carries GRACEFUL_SHUTDOWN; the others do not', () => {
    const config = speakerConfig(spec, node1, ['10.0.0.7/32', '10.0.0.8/32'], undefined, new Set(['10.0.0.8/32']));
    expect(config).toContain('  route 10.0.0.7/32 blackhole;\n');
    expect(config).toContain('  route 10.0.0.8/32 blackhole { bgp_community.add((65535, 0)); };\n');
  });

  test('every session listens on its own local address only (strict bind)', () => {
    const config = speakerConfig(spec, node1, []);
    expect(config.match(/protocol bgp/g)).toHaveLength(1);
    expect(config).toMatch(/local 10\.210\.1\.11 as 64512;[^}]*strict bind on;/);
  });
});

describe('speakerConfig with route reflectors', () => {
  const rr = {address: '10.210.1.100', nodes: ['node1', 'node2'], peers: [{address: '10.210.1.1', asn: 64512}]};
  const withRr = {...spec, peers: [spec.peers[1]], reflectors: [rr]};

  test("a rack's node peers with its reflector over multihop (the reflector may be on this node); a node of no rack does not", () => {
    expect(peersOf(withRr, 'node1').map((p) => p.address)).toEqual(['10.210.1.100']);
    const config = speakerConfig(withRr, node1, ['10.0.0.7/32']);
    expect(config).toMatch(/neighbor 10\.210\.1\.100 as 64512;\n {2}multihop;\n {2}strict bind on;/);
    expect(config).not.toContain('reflector_clients');
    expect(peersOf(withRr, 'node3').map((p) => p.address)).toEqual(['10.211.2.1']);
    expect(speakerConfig(withRr, {node: 'node3', routerId: '10.211.2.2', subnets: ['10.211.2.0/24']}, [])).not.toContain('10.210.1.100');
  });

  test('the holder takes the rack as clients from its subnet and passes every path to the ToR with ADD-PATH, its own with its own nexthop', () => {
    const config = speakerConfig(withRr, node1, ['10.0.0.7/32'], {reflector: rr, subnet: '10.210.1.0/24'});
    // No session with itself.
    expect(config).not.toContain('neighbor 10.210.1.100');
    expect(config).toMatch(/protocol bgp reflector_clients \{[^}]*local 10\.210\.1\.100 as 64512;\n {2}neighbor range 10\.210\.1\.0\/24 as 64512;[^}]*rr client;/);
    expect(config).toMatch(/reflector_clients[^}]*import filter extip_reflect; export none;/);
    expect(config).toMatch(/protocol bgp reflector_10_210_1_1 \{[^]*local 10\.210\.1\.100 as 64512;\n {2}neighbor 10\.210\.1\.1 as 64512;\n {2}direct;/);
    expect(config).toContain('add paths tx;');
    expect(config).toContain('if proto = "extip_exports" then { if !extip_exportable() then reject; bgp_next_hop = 10.210.1.11; accept; }');
    expect(config).toContain('filter extip_reflect {\n  if net.type != NET_IP4 || net.len != 32 then reject;\n  if net ~ [ 10.0.0.0/24+, 192.0.2.0/28+ ] then accept;\n  reject;\n}');
  });
});

const cases = JSON.parse(readFileSync(new URL('../fixtures/bgp-cases.json', import.meta.url), 'utf8')) as {
  setups: Array<BgpSetup & {errors: string[]}>;
  peers: Array<{value: unknown; errors: string[]}>;
  reflectors: Array<{value: unknown; errors: string[]}>;
};

describe('the case table the role runs too (test/fixtures/bgp-cases.json)', () => {
  test.each(cases.setups.map((c) => ({...c, name: `speaker ${c.speaker}, distribution ${c.distribution}`})))('setup: $name', (c) => {
    expect(bgpSetupErrors(c)).toEqual(c.errors);
  });
  test.each(cases.peers.map((c) => ({...c, name: JSON.stringify(c.value)})))('peers $name', (c) => {
    expect(bgpPeerErrors(c.value)).toEqual(c.errors);
  });
  test.each(cases.reflectors.map((c) => ({...c, name: JSON.stringify(c.value)})))('reflectors $name', (c) => {
    expect(bgpReflectorErrors(c.value)).toEqual(c.errors);
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
