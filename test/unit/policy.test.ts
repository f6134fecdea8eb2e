/**
 * The address policy on its own: the hostile entries a Service can carry,
 * each refused by the rule that names its danger, and the one Event a
 * Service's refusals make.
 */
import {describe, expect, test} from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import {FlagError, parseAgentFlags} from '../../lib/agent-flags.js';
import {desiredFrom} from '../../agent/naive.js';
import {AddressPolicy, nodeAddresses, policyFrom} from '../../lib/policy.js';
import {refusalEvent} from '../../agent/refusals.js';

const policy = () => {
  const p = new AddressPolicy({
    allowed: ['10.0.0.0/24', '2001:db8:1::/64'],
    serviceCidrs: ['10.96.0.0/12', 'fd00:96::/112'],
    clusterCidrs: ['10.244.0.0/16'],
    apiservers: ['10.0.0.250'],
  });
  p.setNodeAddresses(nodeAddresses([
    {metadata: {name: 'node1'}, status: {addresses: [{type: 'InternalIP', address: '10.0.0.11'}, {type: 'Hostname', address: 'node1'}, {type: 'InternalIP', address: '2001:db8:1::11'}]}},
  ]));
  return p;
};

describe('each hostile entry is refused by the rule that names its danger', () => {
  const cases: Array<[string, string | undefined]> = [
    ['10.0.0.7', undefined],
    ['2001:db8:1::7', undefined],
    ['8.8.8.8', 'not-allowed'],
    ['2001:db8:2::1', 'not-allowed'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'broadcast'],
    // Inside the allowed range, and still a node's, or the API server's.
    ['10.0.0.11', 'node-address'],
    ['2001:db8:1::11', 'node-address'],
    ['10.0.0.250', 'apiserver'],
    ['10.96.0.10', 'service-cidr'],
    ['fd00:96::a', 'service-cidr'],
    ['10.244.3.4', 'cluster-cidr'],
  ];
  test.each(cases)('%s: %s', (ip, rule) => {
    expect(policy().check(ip)?.rule).toBe(rule);
  });
});

test('the reason says what to change: the ranges and where the operator declares them', () => {
  expect(policy().check('8.8.8.8')?.reason).toBe('8.8.8.8 is outside the ranges external IPs may come from (10.0.0.0/24, 2001:db8:1::/64); the cluster\'s operator declares them (extip_external_cidrs, or an IpClaimPool)');
  expect(policy().check('10.0.0.11')?.reason).toBe('10.0.0.11 is an address of node node1');
  expect(policy().check('10.96.0.10')?.reason).toBe('10.96.0.10 is inside the Service CIDR 10.96.0.0/12');
});

test('with no ranges declared any address goes, but never those that break a node or the cluster', () => {
  const open = new AddressPolicy({serviceCidrs: ['10.96.0.0/12']});
  expect(open.open).toBe(true);
  expect(open.check('8.8.8.8')).toBeUndefined();
  expect(open.check('127.0.0.1')?.rule).toBe('loopback');
  expect(open.check('10.96.0.1')?.rule).toBe('service-cidr');
});

test('namespaces: only those allowed; the node rules still come first', () => {
  const p = new AddressPolicy({allowed: ['10.0.0.0/24'], namespaces: ['team-a']});
  expect(p.check('10.0.0.7', 'team-a')).toBeUndefined();
  expect(p.check('10.0.0.7', 'team-b')).toEqual({rule: 'namespace', reason: 'Services of namespace team-b may not have external IPs (allowed: team-a)'});
  expect(p.check('127.0.0.1', 'team-b')?.rule).toBe('loopback');
});

test('node addresses follow the Nodes: a node that goes frees its address', () => {
  const p = policy();
  p.setNodeAddresses(new Map());
  expect(p.check('10.0.0.11')).toBeUndefined();
});

test('the API server named by address in the kubeconfig is protected; a name is not an address', () => {
  const flags = {serviceCidrs: [], clusterCidrs: [], allowedNamespaces: []};
  expect(policyFrom(flags, 'https://10.1.2.3:6443').check('10.1.2.3')?.rule).toBe('apiserver');
  expect(policyFrom(flags, 'https://[fd00::5]:6443').check('fd00::5')?.rule).toBe('apiserver');
  expect(policyFrom(flags, 'https://api.example.com:6443').check('10.1.2.3')).toBeUndefined();
});

const svc = (name: string, ips: string[], uid = `uid-${name}`) => ({metadata: {name, namespace: 'default', uid}, spec: {externalIPs: ips}}) as k8s.V1Service;

test('10,000 addresses in one Service: the allowed one comes up, the rest are refused, and they make one Event of bounded size', () => {
  const many = Array.from({length: 10000}, (_, i) => `10.1.${Math.floor(i / 256)}.${i % 256}`);
  const d = desiredFrom([svc('flood', [...many, '10.0.0.7']), svc('same', ['10.0.0.7'])], 32, 128, policy());
  expect([...d.wanted]).toEqual([['10.0.0.7/32', ['default/flood', 'default/same']]]);
  expect(d.invalid).toHaveLength(10000);
  const e = refusalEvent('default/flood', 'uid-flood', d.invalid);
  expect(e.message.length).toBeLessThanOrEqual(1000);
  expect(e.message).toMatch(/^10000 external IPs not brought up: 10\.1\.0\.0: 10\.1\.0\.0 is outside the ranges .*; and 9995 more$/);
  expect(e.name).toMatch(/^flood\.extip-refused\.[0-9a-f]{16}$/);
});

test('the Event\'s name follows what is refused: the same refusals give the same name, a change another', () => {
  const p = policy();
  const one = desiredFrom([svc('web', ['8.8.8.8', '10.0.0.7'])], 32, 128, p).invalid;
  const again = desiredFrom([svc('web', ['10.0.0.7', '8.8.8.8'])], 32, 128, p).invalid;
  const more = desiredFrom([svc('web', ['8.8.8.8', '8.8.4.4'])], 32, 128, p).invalid;
  const other = desiredFrom([svc('web', ['8.8.8.8'], 'another-uid')], 32, 128, p).invalid;
  const name = (list: typeof one) => refusalEvent('default/web', list[0].uid, list).name;
  expect(name(again)).toBe(name(one));
  expect(name(more)).not.toBe(name(one));
  expect(name(other)).not.toBe(name(one));
});

test('the flags: CIDR lists checked before anything runs; an empty --allowed-cidrs is an error, not "any"', () => {
  const f = parseAgentFlags(['--allowed-cidrs=10.0.0.0/24,2001:db8::/64', '--service-cidr=10.96.0.0/12', '--cluster-cidr=10.244.0.0/16', '--allowed-namespaces=a,b']);
  expect(f).toMatchObject({allowedCidrs: ['10.0.0.0/24', '2001:db8::/64'], serviceCidrs: ['10.96.0.0/12'], clusterCidrs: ['10.244.0.0/16'], allowedNamespaces: ['a', 'b']});
  expect(parseAgentFlags([]).allowedCidrs).toBeUndefined();
  expect(() => parseAgentFlags(['--allowed-cidrs=10.0.0.0/33'])).toThrow(new FlagError('--allowed-cidrs: "10.0.0.0/33" prefix length 33 is more than 32 (a comma-separated list of CIDRs such as 192.0.2.0/24,2001:db8::/64)'));
  expect(() => parseAgentFlags(['--allowed-cidrs='])).toThrow(/--allowed-cidrs is empty/);
  expect(() => parseAgentFlags(['--allowed-namespaces=Bad_NS'])).toThrow(/invalid --allowed-namespaces entry "Bad_NS"/);
});

test('the network and broadcast address of the subnet an address comes up in, or of a known subnet, are never brought up', () => {
  const p = new AddressPolicy({allowed: ['10.210.1.0/24', '2001:db8:5::/64']});
  // The prefix it comes up with makes the subnet: .0 and .255 of a /24.
  expect(p.check('10.210.1.255', 'x', 24)).toEqual({rule: 'broadcast', reason: '10.210.1.255 is the broadcast address of its own /24, the prefix it would come up with'});
  expect(p.check('10.210.1.0', 'x', 24)?.rule).toBe('broadcast');
  expect(p.check('10.210.1.255', 'x', 32)).toBeUndefined();
  expect(p.check('2001:db8:5::', 'x', 64)?.rule).toBe('broadcast');
  expect(p.check('2001:db8:5::', 'x', 128)).toBeUndefined();
  // A pool's CIDR or the interface's subnet: its edges whatever the prefix.
  p.setSubnets('pools', ['10.210.1.128/25']);
  expect(p.check('10.210.1.128', 'x', 32)).toEqual({rule: 'broadcast', reason: '10.210.1.128 is the network address of the subnet 10.210.1.128/25'});
  expect(p.check('10.210.1.129', 'x', 32)).toBeUndefined();
  p.setSubnets('interface', ['10.210.1.11/24']);
  expect(p.check('10.210.1.0', 'x', 32)?.reason).toBe('10.210.1.0 is the network address of the subnet 10.210.1.11/24');
  // Each source keeps its own list: the pools' going does not forget the interface's.
  p.setSubnets('pools', []);
  expect(p.check('10.210.1.128', 'x', 32)).toBeUndefined();
  expect(p.check('10.210.1.0', 'x', 32)?.rule).toBe('broadcast');
});
