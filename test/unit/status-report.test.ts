/** `extip status`'s assessment and table for claims mode, on a cluster state built here (no API). */
import {expect, test} from '@jest/globals';
import type {ClusterState} from '../../cli/kube.js';
import {age, assess, formatStatus} from '../../cli/status.js';

const labels = {'app.kubernetes.io/managed-by': 'extip', 'app.kubernetes.io/name': 'externalipcontroller'};
const ready = {type: 'Ready', status: 'True'};

function cluster(claimStatus: Record<string, unknown>): ClusterState {
  const pod = (node: string) => ({metadata: {name: `c-${node}`, namespace: 'extip', labels: {app: 'claimcontroller'}}, spec: {nodeName: node, containers: []}, status: {phase: 'Running', conditions: [ready]}});
  return {
    server: 'https://api.example:6443',
    nodes: ['node1', 'node2'].map((name) => ({metadata: {name, labels: {externalip: 'true'}}, status: {conditions: [ready]}})),
    workloads: [
      {kind: 'DaemonSet', metadata: {name: 'claimcontroller', namespace: 'extip', labels: {...labels, 'app.kubernetes.io/component': 'controller'}},
        spec: {selector: {matchLabels: {app: 'claimcontroller'}}, template: {spec: {nodeSelector: {externalip: 'true'}, containers: [{name: 'c', image: 'extip/ipmanager:1', args: ['claimcontroller', '--iface=eth0', '--mask=32']}]}}}},
      {kind: 'Deployment', metadata: {name: 'claimscheduler', namespace: 'extip', labels: {...labels, 'app.kubernetes.io/component': 'scheduler'}},
        spec: {selector: {matchLabels: {app: 'claimscheduler'}}, template: {spec: {containers: [{name: 's', image: 'extip/ipmanager:1', args: ['scheduler', '--nodefilter=fair', '--allowed-cidrs=10.0.0.0/24', '--service-cidr=10.96.0.0/12']}]}}}},
    ],
    pods: [pod('node1'), pod('node2'), {metadata: {name: 'sched', namespace: 'extip', labels: {app: 'claimscheduler'}}, spec: {containers: []}, status: {phase: 'Running', conditions: [ready]}}],
    services: [{metadata: {name: 'web', namespace: 'default'}, spec: {externalIPs: ['10.0.0.7']}}],
    claims: [{metadata: {name: '10-0-0-7-32'}, spec: {cidr: '10.0.0.7/32', nodeName: 'node1'}, status: claimStatus}],
    pools: [],
    leases: [],
  } as unknown as ClusterState;
}

const now = Date.parse('2026-11-23T12:00:00Z');

test('a moved address shows where it is, for how long, and its last move with the time it had no holder', () => {
  const r = assess(cluster({
    node: 'node1', since: '2026-11-23T11:56:00Z', previousNode: 'node2', previousLastSeen: '2026-11-23T11:55:58.100Z',
    reason: 'no heartbeat from node2 for 2100 ms (--monitor=2000ms)', movedAt: '2026-11-23T11:56:00Z', upAt: '2026-11-23T11:56:00.350Z', upOn: 'node1',
  }));
  expect(r.problems).toEqual([]);
  expect(r.ips).toEqual([{
    ip: '10.0.0.7', services: ['default/web'], heldBy: ['node1'], since: '2026-11-23T11:56:00Z',
    lastMove: {from: 'node2', to: 'node1', at: '2026-11-23T11:56:00Z', reason: 'no heartbeat from node2 for 2100 ms (--monitor=2000ms)', withoutHolderMs: 2250},
  }]);
  const text = formatStatus(r, now);
  expect(text).toMatch(/EXTERNAL IP\s+SERVICES\s+HELD BY\s+FOR\s+LAST MOVE/);
  expect(text).toMatch(/10\.0\.0\.7\s+default\/web\s+node1\s+4m\s+node2 -> node1 4m ago, 2\.3 s without a holder: no heartbeat from node2 for 2100 ms/);
});

test('no time without a holder is claimed until the new holder said its address is up', () => {
  const r = assess(cluster({node: 'node1', since: '2026-11-23T11:56:00Z', previousNode: 'node2', previousLastSeen: '2026-11-23T11:55:58Z', reason: 'r', movedAt: '2026-11-23T11:56:00Z', upAt: null, upOn: null}));
  expect(r.ips[0].lastMove).toEqual({from: 'node2', to: 'node1', at: '2026-11-23T11:56:00Z', reason: 'r'});
  // Nor from an earlier holder's report.
  const stale = assess(cluster({node: 'node1', previousNode: 'node2', previousLastSeen: '2026-11-23T11:55:58Z', reason: 'r', movedAt: '2026-11-23T11:56:00Z', upAt: '2026-11-23T11:50:00Z', upOn: 'node2'}));
  expect(stale.ips[0].lastMove?.withoutHolderMs).toBeUndefined();
});

test('a claim never moved shows its age and no move; --json carries the same fields', () => {
  const r = assess(cluster({node: 'node1', since: '2026-11-21T12:00:00Z'}));
  expect(r.ips[0]).toEqual({ip: '10.0.0.7', services: ['default/web'], heldBy: ['node1'], since: '2026-11-21T12:00:00Z'});
  expect(formatStatus(r, now)).toMatch(/10\.0\.0\.7\s+default\/web\s+node1\s+2d\s+-/);
  expect(JSON.parse(JSON.stringify(r)).ips[0].since).toBe('2026-11-21T12:00:00Z');
});

test('ages read as kubectl prints them', () => {
  expect([age('2026-11-23T11:59:01Z', now), age('2026-11-23T11:00:00Z', now), age('2026-11-23T09:00:00Z', now), age('2026-11-20T12:00:00Z', now)]).toEqual(['59s', '60m', '3h', '3d']);
});

test('an address the deployed policy refuses is a problem that says why, not "held by nobody"', () => {
  const state = cluster({node: 'node1'});
  state.services.push({metadata: {name: 'bad', namespace: 'default'}, spec: {externalIPs: ['8.8.8.8', '10.96.0.10']}} as never);
  const r = assess(state);
  expect(r.problems).toEqual([
    'external IP 8.8.8.8 (default/bad) is refused: 8.8.8.8 is outside the ranges external IPs may come from (10.0.0.0/24); the cluster\'s operator declares them (extip_external_cidrs, or an IpClaimPool)',
    'external IP 10.96.0.10 (default/bad) is refused: 10.96.0.10 is inside the Service CIDR 10.96.0.0/12',
  ]);
  expect(r.ips.find((i) => i.ip === '8.8.8.8')).toMatchObject({heldBy: [], refused: expect.stringContaining('outside the ranges')});
  expect(formatStatus(r, now)).toMatch(/8\.8\.8\.8\s+default\/bad\s+\(refused\)/);
});

test('a controller that takes any address is a problem, naming the variable to set', () => {
  const state = cluster({node: 'node1'});
  const sched = state.workloads[1].spec!.template.spec!.containers[0];
  sched.args = ['scheduler', '--nodefilter=fair'];
  expect(assess(state).problems).toEqual(['the controller brings up any address a Service names (no --allowed-cidrs), so anyone who may create a Service can take an address of your network (CVE-2020-8554): set extip_external_cidrs and install again']);
});

test('what stops claims mode is named: a missing CRD, a scheduler with no ready replica', () => {
  const state = cluster({node: 'node1'});
  state.missingCrds = ['ipclaims.ipcontroller.ext'];
  state.pods = state.pods.filter((p) => p.metadata?.name !== 'sched');
  expect(assess(state).problems).toEqual([
    'the CustomResourceDefinition ipclaims.ipcontroller.ext is missing: claims mode cannot place any address without it; run extip install again to create it',
    'the scheduler extip/claimscheduler has no ready replica: no address is placed or moved (its readiness fails while its passes keep failing; see its log)',
  ]);
});

test('another tenant\'s address, and a LoadBalancer left without one, are problems with the scheduler\'s reasons', () => {
  const state = cluster({node: 'node1', services: ['default/web']});
  state.pools.push({metadata: {name: 'a'}, spec: {cidr: '10.0.0.0/25', ranges: [['10.0.0.100', '10.0.0.110']], namespaces: ['team-a']}});
  state.services.push(
    {metadata: {name: 'steal', namespace: 'team-b'}, spec: {externalIPs: ['10.0.0.7', '10.0.0.100']}} as never,
    {metadata: {name: 'lb', namespace: 'team-b'}, spec: {type: 'LoadBalancer'}} as never,
  );
  state.events = [
    {metadata: {name: 'e1'}, reason: 'AllocationFailed', message: 'no address from the IpClaimPools: old', involvedObject: {kind: 'Service', namespace: 'team-b', name: 'lb'}, lastTimestamp: new Date('2026-11-23T11:00:00Z')},
    {metadata: {name: 'e2'}, reason: 'AllocationFailed', message: 'no address from the IpClaimPools: no IpClaimPool serves namespace team-b', involvedObject: {kind: 'Service', namespace: 'team-b', name: 'lb'}, lastTimestamp: new Date('2026-11-23T11:59:00Z')},
  ];
  const r = assess(state);
  expect(r.problems).toEqual([
    'external IP 10.0.0.7 of team-b/steal is refused: 10.0.0.7 is held by Service default/web, of another namespace',
    'external IP 10.0.0.100 (team-b/steal) is refused: 10.0.0.100 is an address of IpClaimPool a, which serves only namespace team-a',
    'LoadBalancer team-b/lb has no address: no address from the IpClaimPools: no IpClaimPool serves namespace team-b',
  ]);
  expect(r.ips.find((i) => i.ip === '10.0.0.7')).toMatchObject({services: ['default/web'], heldBy: ['node1']});
});

test('extip\'s BGP speaker: its peers from the controller\'s spec, and a pod whose BIRD does not run is a problem', () => {
  const state = cluster({node: 'node1'});
  const ds = state.workloads[0] as any;
  ds.spec.template.spec.containers = [
    {name: 'controller', image: 'extip/ipmanager:1', args: ['naivecontroller', '--iface=lo', '--mask=32', '--bgp-speaker={"asn":64512,"peers":[{"address":"10.210.1.1","asn":64512},{"address":"10.211.2.1","asn":64513,"bfd":false,"nodes":["node2"]}],"ranges":["10.0.0.0/24"],"holdTime":9,"bfd":{"intervalMs":100,"multiplier":3},"restartTime":0}']},
    {name: 'bgp-speaker', image: 'extip/ipmanager:1', command: ['bird']},
  ];
  state.workloads.splice(1, 1);
  const running = {name: 'bgp-speaker', restartCount: 0, state: {running: {}}};
  const waiting = {name: 'bgp-speaker', restartCount: 4, state: {waiting: {reason: 'CrashLoopBackOff'}}};
  (state.pods[0] as any).status.containerStatuses = [running];
  (state.pods[1] as any).status.containerStatuses = [waiting];
  state.pods.splice(2, 1);
  const r = assess(state);
  expect(r.bgpSpeaker).toEqual({asn: 64512, peers: [{address: '10.210.1.1', asn: 64512, bfd: true}, {address: '10.211.2.1', asn: 64513, bfd: false, nodes: ['node2']}], running: 1, of: 2, sessionsDown: []});
  expect(r.problems).toContain('the BGP speaker on node2 is not running (CrashLoopBackOff, 4 restarts): that node\'s addresses are not announced');
  expect(formatStatus(r, now)).toContain("BGP export: extip's speaker, AS 64512, peers 10.210.1.1 (AS 64512, BFD), 10.211.2.1 (AS 64513, nodes node2); BIRD runs on 1 of 2 controllers");
});

test('extip\'s BGP speaker: a session whose newest Event says down is a problem, unless it came back or its controller restarted since; a reflector nobody holds too', () => {
  const state = cluster({node: 'node1'});
  const ds = state.workloads[0] as any;
  ds.spec.template.spec.containers = [
    {name: 'controller', image: 'extip/ipmanager:1', args: ['naivecontroller', '--iface=lo', '--mask=32', '--bgp-speaker={"asn":64512,"peers":[{"address":"10.210.1.1","asn":64512}],"reflectors":[{"address":"10.210.1.100","nodes":["node1","node2"],"peers":[{"address":"10.210.1.1","asn":64512}]},{"address":"10.210.2.100","nodes":["node3"],"peers":[{"address":"10.210.2.1","asn":64512}]}],"ranges":["10.0.0.0/24"],"holdTime":9,"bfd":{"intervalMs":100,"multiplier":3},"restartTime":0}']},
    {name: 'bgp-speaker', image: 'extip/ipmanager:1', command: ['bird']},
  ];
  state.workloads.splice(1, 1);
  for (const p of state.pods as any[]) {
    p.status.containerStatuses = [{name: 'controller', restartCount: 0, state: {running: {startedAt: '2026-11-23T10:00:00Z'}}}, {name: 'bgp-speaker', restartCount: 0, state: {running: {}}}];
  }
  (state.pods[2] as any).status.containerStatuses[0].state.running.startedAt = '2026-11-23T11:30:00Z';
  const event = (name: string, node: string, reason: string, message: string, at: string) =>
    ({metadata: {name}, reason, message, involvedObject: {kind: 'Node', name: node}, lastTimestamp: new Date(at)}) as never;
  state.events = [
    // node1: down, still down.
    event('a', 'node1', 'BGPSessionDown', 'BGP session with 10.210.1.1 is down (Active): node1\'s addresses are not announced to it', '2026-11-23T11:50:00Z'),
    // node2: down, then up again.
    event('b', 'node2', 'BGPSessionDown', 'BGP session with 10.210.1.1 is down (Connect): node2\'s addresses are not announced to it', '2026-11-23T11:40:00Z'),
    event('c', 'node2', 'BGPSessionUp', 'BGP session with 10.210.1.1 is established again', '2026-11-23T11:41:00Z'),
    // node3: down before its controller restarted: says nothing about the one running now.
    event('d', 'node3', 'BGPSessionDown', 'BGP session with 10.210.1.1 is down (Active): node3\'s addresses are not announced to it', '2026-11-23T11:00:00Z'),
  ];
  state.leases.push({metadata: {name: 'extip-reflector-10-210-1-100', namespace: ds.metadata.namespace}, spec: {holderIdentity: 'node2_4242'}} as never);
  const r = assess(state);
  expect(r.bgpSpeaker?.sessionsDown).toEqual([{node: 'node1', peer: '10.210.1.1', since: '2026-11-23T11:50:00.000Z', message: "BGP session with 10.210.1.1 is down (Active): node1's addresses are not announced to it"}]);
  expect(r.bgpSpeaker?.reflectors).toEqual([{address: '10.210.1.100', nodes: ['node1', 'node2'], heldBy: 'node2'}, {address: '10.210.2.100', nodes: ['node3']}]);
  expect(r.problems).toEqual([
    "node1: BGP session with 10.210.1.1 is down (Active): node1's addresses are not announced to it (since 2026-11-23T11:50:00.000Z)",
    'no node holds the route reflector 10.210.2.100 (node3): their ToR learns nothing from that rack',
  ]);
  const text = formatStatus(r, now);
  expect(text).toContain('1 session down (below)');
  expect(text).toContain('Route reflector: 10.210.1.100 for node1, node2, held by node2');
  expect(text).toContain('Route reflector: 10.210.2.100 for node3, held by (nobody)');
});

test('a DHCP-leased LoadBalancer: held by its claim\'s node, with its server, MAC and renewal; one without a lease says the holder\'s reason', () => {
  const state = cluster({node: 'node1'});
  const sched = state.workloads.find((w) => w.kind === 'Deployment')!;
  sched.spec!.template.spec!.containers[0].args!.push('--lb-dhcp');
  state.services.push(
    {metadata: {name: 'shop', namespace: 'default'}, spec: {type: 'LoadBalancer', loadBalancerIP: '0.0.0.0'}, status: {loadBalancer: {ingress: [{ip: '10.0.0.65'}]}}} as never,
    {metadata: {name: 'db', namespace: 'default'}, spec: {type: 'LoadBalancer', loadBalancerIP: '0.0.0.0'}} as never,
  );
  state.claims.push(
    {metadata: {name: 'dhcp-1a2b3c4d-default-shop'}, spec: {cidr: 'dhcp:default/shop', nodeName: 'node2'},
      status: {node: 'node2', lease: {ip: '10.0.0.65', server: '10.0.0.1', seconds: 120, at: '2026-11-23T11:59:30Z', mac: '02:aa:bb:cc:dd:ee', link: 'exd0123456789ab'}}},
    {metadata: {name: 'dhcp-5e6f7a8b-default-db'}, spec: {cidr: 'dhcp:default/db', nodeName: 'node1'}, status: {node: 'node1', leaseError: 'no DHCP server answered'}},
  );
  state.events = [{metadata: {name: 'e1'}, reason: 'LeaseFailed', message: 'node1: no DHCP server answered 3 DISCOVERs', involvedObject: {kind: 'Service', namespace: 'default', name: 'db'}, lastTimestamp: new Date('2026-11-23T11:59:00Z')}];
  const r = assess(state);
  expect(r.problems).toEqual(['LoadBalancer default/db has no address: node1: no DHCP server answered 3 DISCOVERs']);
  expect(r.ips.find((i) => i.ip === '10.0.0.65')).toMatchObject({services: ['default/shop'], heldBy: ['node2'], lease: {server: '10.0.0.1', mac: '02:aa:bb:cc:dd:ee', renewed: '2026-11-23T11:59:30Z'}});
  expect(formatStatus(r, now)).toMatch(/EXTERNAL IP\s+DHCP SERVER\s+MAC\s+RENEWED\n10\.0\.0\.65\s+10\.0\.0\.1\s+02:aa:bb:cc:dd:ee\s+30s ago/);
});
