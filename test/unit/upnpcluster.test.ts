/**
 * UPnP's wiring on the simulated cluster (test/helpers/simcluster.ts): the
 * scheduler with --upnp writes the ports on the claim, the holder's keeper
 * maps them on a stand-in gateway from the Service's address, the claim's
 * status and the Service's Events say what happened, and an error the
 * gateway stops giving leaves the status. miniupnpd itself is
 * test/e2e/upnp-lab.test.ts's.
 */
import {afterEach, beforeEach, expect, test} from '@jest/globals';
import {CLAIMS} from '../../agent/claims.js';
import type {UpnpGatewayClient} from '../../agent/upnpkeeper.js';
import {SimCluster} from '../helpers/simcluster.js';

let cluster: SimCluster;
/** What the stand-in gateway was asked, and the ports it refuses. */
let asked: string[];
let refuse: Set<number>;

const gateway: UpnpGatewayClient = {
  discover: async () => 'http://10.1.0.254:5000/rootDesc.xml',
  describe: async (location) => ({location, controlUrl: 'http://10.1.0.254:5000/ctl/IPConn', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1'}),
  external: async () => '1.2.3.1',
  add: async (_g, client, p) => {
    asked.push(`add ${p.protocol}/${p.port} -> ${client}`);
    if (refuse.has(p.port)) throw new Error('AddPortMapping: UPnP error 606 (Action not authorized)');
  },
  remove: async (_g, from, p) => void asked.push(`remove ${p.protocol}/${p.port} from ${from}`),
};

beforeEach(async () => {
  asked = [];
  refuse = new Set([22]);
  cluster = await SimCluster.start();
  for (const [i, name] of ['node1', 'node2'].entries()) await cluster.addNode(name, `10.1.0.${i + 1}`, {upnp: gateway});
  await cluster.api.client().call('POST', '/apis/ipcontroller.ext/v1/ipclaimpools', {apiVersion: 'ipcontroller.ext/v1', kind: 'IpClaimPool', metadata: {name: 'lb'}, spec: {cidr: '10.1.0.128/28'}});
  await cluster.addScheduler('scheduler', ['--upnp']);
});

afterEach(async () => {
  await cluster.stop();
});

const events = () => cluster.api.objects('/api/v1/events').map((e) => `${e.reason}: ${e.message}`);
const claim = () => cluster.api.objects(CLAIMS)[0];

test('the holder maps the ports of a Service that asks, from its address; a refusal is an Event and leaves the status once the gateway takes the port', async () => {
  const api = cluster.api.client();
  await api.call('POST', '/api/v1/namespaces/default/services', {apiVersion: 'v1', kind: 'Service', metadata: {name: 'web', namespace: 'default', annotations: {'extip.io/upnp': 'true'}},
    spec: {type: 'LoadBalancer', ports: [{port: 80}, {port: 22}, {port: 53, protocol: 'UDP'}]}});
  await cluster.until('the claim has its ports and the holder its report', () => claim()?.metadata.annotations?.['extip.io/upnp-ports'] === 'TCP/22,TCP/80,UDP/53' && claim()?.status?.upnp !== undefined);
  const holder = claim()!.spec.nodeName;
  expect([...new Set(asked)].sort()).toEqual(['add TCP/22 -> 10.1.0.129', 'add TCP/80 -> 10.1.0.129', 'add UDP/53 -> 10.1.0.129']);
  expect(claim()!.status.upnp).toMatchObject({node: holder, external: '1.2.3.1', mapped: ['TCP/80', 'UDP/53'], error: 'TCP/22: AddPortMapping: UPnP error 606 (Action not authorized)'});
  await cluster.until('a UPnPMappingFailed Event', () => events().some((e) => e.startsWith(`UPnPMappingFailed: the UPnP gateway http://10.1.0.254:5000/rootDesc.xml refused or did not answer ${holder}: TCP/22`)));
  // The gateway takes port 22 at its next try (a second after the refusal, then two...): the error goes from the status, and the Service is told.
  refuse.clear();
  await cluster.until('every port mapped, no error left', () => {
    const u = claim()?.status?.upnp;
    return u?.mapped?.join() === 'TCP/22,TCP/80,UDP/53' && u.error === undefined;
  }, 15000);
  await cluster.until('a UPnPMapped Event', () => events().includes(`UPnPMapped: 1.2.3.1:22 TCP, 1.2.3.1:80 TCP, 1.2.3.1:53 UDP -> 10.1.0.129 (by ${holder})`));
  // The Service goes: each mapping removed, from its address, before the address goes.
  asked.length = 0;
  await api.request('DELETE', '/api/v1/namespaces/default/services/web');
  await cluster.until('the mappings removed', () => asked.length === 3);
  expect(asked.sort()).toEqual(['remove TCP/22 from 10.1.0.129', 'remove TCP/80 from 10.1.0.129', 'remove UDP/53 from 10.1.0.129']);
});

test('without --upnp, or without the annotation, no port is mapped', async () => {
  const api = cluster.api.client();
  await api.call('POST', '/api/v1/namespaces/default/services', {apiVersion: 'v1', kind: 'Service', metadata: {name: 'plain', namespace: 'default'}, spec: {type: 'LoadBalancer', ports: [{port: 80}]}});
  await cluster.until('its address up', () => claim()?.status?.upOn !== undefined);
  await new Promise((r) => setTimeout(r, 1000));
  expect(claim()!.metadata.annotations?.['extip.io/upnp-ports']).toBeUndefined();
  expect(asked).toEqual([]);
});
