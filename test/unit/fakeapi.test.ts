/**
 * The in-memory API server (test/helpers/fakeapi.ts) with the agent's own
 * client: the contract script's answers spelled out (the same script against
 * the lab's real API server, compared with these, is in
 * test/e2e/controlplane.test.ts), and the agent's ListWatch on it: a claim
 * relabelled away leaves the cache, and the API going away and coming back
 * is a relist, not a lost change.
 */
import {afterEach, expect, test} from '@jest/globals';
import {CLAIMS} from '../../agent/claims.js';
import {ListWatch} from '../../agent/listwatch.js';
import {claimsContract, schedulerContract} from '../helpers/apicontract.js';
import {FakeApi, matches, mergePatch} from '../helpers/fakeapi.js';

const started: FakeApi[] = [];
const watches: ListWatch[] = [];
afterEach(async () => {
  for (const w of watches.splice(0)) w.stop();
  for (const f of started.splice(0)) await f.stop();
});

async function fake(): Promise<FakeApi> {
  const f = await FakeApi.start();
  started.push(f);
  return f;
}

test('merge patch and selectors, as RFC 7386 and the API server have them', () => {
  expect(mergePatch({a: 1, b: {c: 2, d: 3}, e: [1]}, {b: {c: null, x: 4}, e: [2], f: 'g'})).toEqual({a: 1, b: {d: 3, x: 4}, e: [2], f: 'g'});
  expect(matches({ipnode: 'n1', app: 'x'}, 'ipnode=n1,app')).toBe(true);
  expect(matches({ipnode: 'n1'}, 'ipnode!=n1')).toBe(false);
  expect(matches({}, 'ipnode!=n1')).toBe(true);
  expect(matches({ipnode: 'n1'}, '!ipnode')).toBe(false);
});

test('the contract script\'s answers', async () => {
  const seen = Object.fromEntries(await claimsContract((await fake()).client()));
  expect(seen).toEqual({
    'create': [201, 'IpNode', 'ipcontroller.ext/v1', 'contract-n1', 1, {a: 'x'}, true, true],
    'create again': [409, 'Status', 'AlreadyExists', 'ipnodes', 'contract-n1'],
    'merge patch: null removes, objects merge, the rest replaces': [200, {b: 'y'}, 2],
    'a patch that changes nothing keeps the version': [200, true],
    'patch of nothing': [404, 'NotFound', 'contract-nope'],
    'get': [200, 2, {b: 'y'}],
    'get of nothing': [404, 'Status', 'NotFound'],
    'a patch with a version the object left is refused': [409, 'Conflict', 'contract-n1', 'ipnodes'],
    'a patch with the object\'s version is taken': [200, 3, true],
    'list with a selector': [200, 'IpClaimList', ['contract-c1', 'contract-c2', 'contract-c3']],
    'list with a != selector': ['contract-c4', 'contract-c5'],
    'pages of two': [[200, true, ['contract-c1', 'contract-c2']], [200, true, ['contract-c3', 'contract-c4']], [200, false, ['contract-c5']]],
    'watch with a selector': ['MODIFIED contract-c1', 'DELETED contract-c2', 'DELETED contract-c3', 'ADDED contract-c5'],
    'delete': [200, 'Status', 'Success', 'contract-n1', 'ipnodes'],
    'delete again': [404, 'NotFound'],
    'nothing left': 0,
  });
});

test('the scheduler\'s script\'s answers', async () => {
  const seen = Object.fromEntries(await schedulerContract((await fake()).client()));
  expect(seen).toEqual({
    'create a Service': [201, 'Service', 'v1', 'default', 'extip-contract-a'],
    'create one in another namespace': [201, 'kube-system'],
    'create with a namespace other than the path\'s': [400, 'BadRequest'],
    'list across namespaces': [200, 'ServiceList', ['default/extip-contract-a', 'kube-system/extip-contract-b']],
    'list in one namespace': ['kube-system/extip-contract-b'],
    'a page of one across namespaces': [['extip-contract-a'], true],
    'get of nothing': [404, 'NotFound', 'extip-contract-nope', 'services', ''],
    'a patch of the object changes its spec, not its status': [200, ['10.9.1.1'], null],
    'a patch on the version before is refused': [409, 'Conflict', 'extip-contract-a', 'services'],
    'a patch of the status changes its status, not its spec': [200, ['10.9.1.1'], [{ip: '10.9.1.5', ipMode: 'VIP'}]],
    'the status cleared': [200, null],
    'get': [200, ['10.9.1.1'], null],
    'no Lease yet': [404, 'NotFound', 'coordination.k8s.io', 'leases'],
    'Lease created': [201, 'Lease', 'one'],
    'a second candidate\'s create': [409, 'AlreadyExists'],
    'an update on its version': [200, 'two', 1, true],
    'an update on the version before is refused': [409, 'Conflict'],
    'the Lease': [200, 'two', 'yes'],
    'an Event': [201, 'Event', true, 'AddressMoved'],
    'nothing left': 0,
  });
});

test('the agent\'s ListWatch on it: a claim relabelled away leaves the cache; the API away and back loses no change', async () => {
  const f = await fake();
  const api = f.client();
  for (const [name, node] of [['c1', 'n1'], ['c2', 'n1'], ['c3', 'n2']]) {
    await api.call('POST', CLAIMS, {apiVersion: 'ipcontroller.ext/v1', kind: 'IpClaim', metadata: {name, labels: {ipnode: node}}, spec: {nodeName: node}});
  }
  const errors: string[] = [];
  const w = new ListWatch(api, CLAIMS, 'IpClaims', {onChange: () => {}, onError: (what) => errors.push(what)}, 'ipnode=n1');
  w.idleMs = 300;
  watches.push(w);
  void w.run();
  const names = () => w.list().map((c) => c.metadata.name).sort();
  const until = async (want: string[]) => {
    for (let i = 0; i < 200 && JSON.stringify(names()) !== JSON.stringify(want); i++) await new Promise((r) => setTimeout(r, 25));
    expect(names()).toEqual(want);
  };
  await until(['c1', 'c2']);
  await api.call('PATCH', `${CLAIMS}/c2`, {metadata: {labels: {ipnode: 'n2'}}}, {contentType: 'application/merge-patch+json'});
  await until(['c1']);
  await f.away();
  // Changed while the agent cannot see: it must find out once the API is back.
  const direct = f.objects(CLAIMS).length;
  expect(direct).toBe(3);
  await f.back();
  // A kept-alive connection the outage cut may fail this first write, as against a restarted API server: again.
  for (let i = 0; ; i++) {
    const r = await api.request('PATCH', `${CLAIMS}/c3`, {metadata: {labels: {ipnode: 'n1'}}}, {contentType: 'application/merge-patch+json'}).catch(() => undefined);
    if (r?.status === 200) break;
    if (i > 20) throw new Error('the fake API server did not come back');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await until(['c1', 'c3']);
  // The outage was seen as such, not passed over in silence.
  expect(errors.length).toBeGreaterThan(0);
});
