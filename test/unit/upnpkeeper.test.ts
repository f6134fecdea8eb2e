/**
 * The UPnP keeper's rules (agent/upnpkeeper.ts) with the gateway stood in
 * for: what it maps and from where, when it renews, what it removes and
 * what it leaves to the next holder, and what it reports. The real gateway
 * (miniupnpd) is test/e2e/upnp-lab.test.ts's.
 */
import {expect, test} from '@jest/globals';
import type {Gateway} from '../../agent/upnp.js';
import {LEASE_SECONDS, RETRY_FIRST_MS, RETRY_MAX_MS, type UpnpGatewayClient, UpnpKeeper, type UpnpReport, parsePorts} from '../../agent/upnpkeeper.js';
import type {Logger} from '../../agent/log.js';
import {SimClock} from '../helpers/simnet.js';

const quiet: Logger = {info: () => undefined, warn: () => undefined, error: () => undefined};

function world(refuse: Set<number> = new Set()) {
  const calls: string[] = [];
  const gateway: Gateway = {location: 'http://10.0.0.1:5000/rootDesc.xml', controlUrl: 'http://10.0.0.1:5000/ctl/IPConn', serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2'};
  const client: UpnpGatewayClient = {
    discover: async (from) => (calls.push(`discover from ${from}`), gateway.location),
    describe: async () => gateway,
    external: async () => '1.2.3.1',
    add: async (_g, ip, p, description, lease) => {
      calls.push(`add ${p.protocol}/${p.port} -> ${ip} for ${lease} s (${description})`);
      if (refuse.has(p.port)) throw Object.assign(new Error('AddPortMapping: UPnP error 718 (ConflictInMappingEntry)'), {code: 718});
    },
    remove: async (_g, from, p) => void calls.push(`remove ${p.protocol}/${p.port} from ${from}`),
  };
  const clock = new SimClock();
  clock.advance(1_700_000_000_000);
  const reports: Array<[string, UpnpReport]> = [];
  const keeper = new UpnpKeeper({node: 'node1', nodeAddress: '10.0.0.11', log: quiet, clock: clock.forAgent(), client, report: (c, r) => void reports.push([c, r])});
  return {calls, clock, reports, keeper};
}

const settle = () => new Promise((r) => setTimeout(r, 5));

test('ports as the scheduler writes them: TCP and UDP, 1 to 65535; anything else left out', () => {
  expect(parsePorts('TCP/80,UDP/53, TCP/443')).toEqual([{protocol: 'TCP', port: 80}, {protocol: 'UDP', port: 53}, {protocol: 'TCP', port: 443}]);
  expect(parsePorts('SCTP/9,TCP/0,TCP/65536,tcp/80,TCP/x')).toEqual([]);
  expect(parsePorts(undefined)).toEqual([]);
});

test('maps each port from the Service\'s address, renews at half the lease, and reports once what it got', async () => {
  const w = world();
  const want = {claim: '10-0-0-7-32', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP' as const, port: 80}, {protocol: 'UDP' as const, port: 53}], description: 'extip default/web'};
  w.keeper.keep([want]);
  await settle();
  expect(w.calls).toEqual(['discover from 10.0.0.11', `add TCP/80 -> 10.0.0.7 for ${LEASE_SECONDS} s (extip default/web)`, `add UDP/53 -> 10.0.0.7 for ${LEASE_SECONDS} s (extip default/web)`]);
  expect(w.reports).toEqual([['10-0-0-7-32', {node: 'node1', gateway: 'http://10.0.0.1:5000/rootDesc.xml', external: '1.2.3.1', mapped: ['TCP/80', 'UDP/53'], at: expect.any(String)}]]);
  // Passes come often: nothing is asked of the gateway until half the lease has gone.
  w.calls.length = 0;
  w.clock.advance((LEASE_SECONDS * 1000) / 2 - 1000);
  w.keeper.keep([want]);
  await settle();
  expect(w.calls).toEqual([]);
  w.clock.advance(1000);
  w.keeper.keep([want]);
  await settle();
  expect(w.calls).toEqual([`add TCP/80 -> 10.0.0.7 for ${LEASE_SECONDS} s (extip default/web)`, `add UDP/53 -> 10.0.0.7 for ${LEASE_SECONDS} s (extip default/web)`]);
  // A renewal that changes nothing is not reported again.
  expect(w.reports).toHaveLength(1);
});

test('a port no longer asked for is removed; one the gateway refuses is reported with its error, the others mapped', async () => {
  const w = world(new Set([22]));
  w.keeper.keep([{claim: 'c', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP', port: 80}, {protocol: 'TCP', port: 22}], description: 'd'}]);
  await settle();
  expect(w.reports.at(-1)![1]).toMatchObject({mapped: ['TCP/80'], error: 'TCP/22: AddPortMapping: UPnP error 718 (ConflictInMappingEntry)'});
  w.calls.length = 0;
  w.keeper.keep([{claim: 'c', cidr: '10.0.0.7/32', ports: [], description: 'd'}]);
  await settle();
  expect(w.calls).toEqual(['remove TCP/80 from 10.0.0.7']);
  expect(w.reports.at(-1)![1]).toMatchObject({mapped: []});
  expect(w.reports.at(-1)![1].error).toBeUndefined();
});

test('an address going from here: its mappings removed when no claim wants it, left to the next holder when one does; all removed when the controller stops', async () => {
  const w = world();
  const port = [{protocol: 'TCP' as const, port: 80}];
  w.keeper.keep([{claim: 'a', cidr: '10.0.0.7/32', ports: port, description: 'd'}, {claim: 'b', cidr: '10.0.0.8/32', ports: port, description: 'd'}, {claim: 'c', cidr: '10.0.0.9/32', ports: port, description: 'd'}]);
  await settle();
  w.calls.length = 0;
  await w.keeper.letGo(['10.0.0.7/32', '10.0.0.8/32'], (cidr) => cidr === '10.0.0.8/32');
  expect(w.calls).toEqual(['remove TCP/80 from 10.0.0.7']);
  w.calls.length = 0;
  await w.keeper.removeAll();
  expect(w.calls).toEqual(['remove TCP/80 from 10.0.0.9']);
});

test('a claim gone from the wants while its address is still up keeps its record: the mappings are removed when the address goes', async () => {
  const w = world();
  const want = {claim: 'c', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP' as const, port: 80}], description: 'd'};
  w.keeper.keep([want]);
  await settle();
  // A pass that read the claims before the Service was deleted, and the wants after: no want, the address still up.
  w.keeper.keep([], new Set(['10.0.0.7/32']));
  await settle();
  w.calls.length = 0;
  await w.keeper.letGo(['10.0.0.7/32'], () => false);
  expect(w.calls).toEqual(['remove TCP/80 from 10.0.0.7']);
});

test('no gateway answers: reported, and searched for again a second later', async () => {
  const w = world();
  let answers = false;
  const client = (w.keeper as unknown as {options: {client: UpnpGatewayClient}}).options.client;
  const found = client.discover;
  client.discover = async (from) => (answers ? found(from) : undefined);
  w.keeper.keep([{claim: 'c', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP', port: 80}], description: 'd'}]);
  await settle();
  expect(w.reports.at(-1)![1]).toMatchObject({mapped: [], error: 'no UPnP Internet gateway answered an SSDP search from 10.0.0.11'});
  answers = true;
  // Not searched again until a second has gone.
  w.keeper.keep([{claim: 'c', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP', port: 80}], description: 'd'}]);
  await settle();
  expect(w.reports.at(-1)![1]).toMatchObject({mapped: []});
  w.clock.advance(RETRY_FIRST_MS);
  w.keeper.keep([{claim: 'c', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP', port: 80}], description: 'd'}]);
  await settle();
  expect(w.reports.at(-1)![1]).toMatchObject({mapped: ['TCP/80']});
});

test('an address that went another way (a fence, a lost link) and came back is mapped and reported anew', async () => {
  const w = world();
  const want = {claim: 'c', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP' as const, port: 80}], description: 'd'};
  w.keeper.keep([want]);
  await settle();
  w.keeper.keep([]);
  await settle();
  w.calls.length = 0;
  w.keeper.keep([want]);
  await settle();
  expect(w.calls).toEqual(['add TCP/80 -> 10.0.0.7 for 3600 s (d)']);
  expect(w.reports).toHaveLength(2);
});

test('a refused port is asked again after a second, then after twice as long each time, up to five minutes', async () => {
  const w = world(new Set([22]));
  const want = {claim: 'c', cidr: '10.0.0.7/32', ports: [{protocol: 'TCP' as const, port: 22}], description: 'd'};
  const tries: number[] = [];
  const start = w.clock.now();
  const turns = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  // A pass every 500 ms for 20 simulated minutes.
  for (let t = 0; t < 20 * 60_000; t += 500) {
    const before = w.calls.length;
    w.keeper.keep([want]);
    await turns();
    if (w.calls.length > before) tries.push(w.clock.now() - start);
    w.clock.advance(500);
  }
  const gaps = tries.slice(1).map((t, i) => t - tries[i]);
  expect(gaps.slice(0, 5)).toEqual([RETRY_FIRST_MS, 2 * RETRY_FIRST_MS, 4 * RETRY_FIRST_MS, 8 * RETRY_FIRST_MS, 16 * RETRY_FIRST_MS]);
  expect(Math.max(...gaps)).toBe(RETRY_MAX_MS);
});
