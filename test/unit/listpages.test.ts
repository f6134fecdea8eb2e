/**
 * `extip status` reads its lists in pages (cli/kube.ts's allPages), through
 * the client library, from an API server that pages as the real one does
 * (test/helpers/fakeapi.ts, held to the real one by a contract test): every
 * item comes back, in as many requests as the pages need.
 */
import {afterAll, beforeAll, expect, test} from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import {CLAIMS} from '../../agent/claims.js';
import {allPages} from '../../cli/kube.js';
import {FakeApi} from '../helpers/fakeapi.js';

let api: FakeApi;

beforeAll(async () => {
  api = await FakeApi.start();
  for (let i = 0; i < 7; i++) {
    await api.client().request('POST', CLAIMS, {apiVersion: 'ipcontroller.ext/v1', kind: 'IpClaim', metadata: {name: `c${i}`}, spec: {cidr: `10.0.0.${i}/32`, nodeName: 'n1'}});
  }
});

afterAll(async () => {
  await api.stop();
});

test('a list of 7 in pages of 3: three requests, every item once, in order', async () => {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({clusters: [{name: 'c', server: api.url, skipTLSVerify: true}], users: [{name: 'u'}], contexts: [{name: 'x', cluster: 'c', user: 'u'}], currentContext: 'x'});
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const asked: Array<{limit: number; _continue?: string}> = [];
  const items = await allPages((p) => {
    asked.push(p);
    return custom.listClusterCustomObject({group: 'ipcontroller.ext', version: 'v1', plural: 'ipclaims', ...p}) as Promise<{items: Array<{metadata: {name: string}}>; metadata?: {continue?: string}}>;
  }, 3);
  expect(items.map((c) => c.metadata.name)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
  expect(asked).toHaveLength(3);
  expect(asked[0]).toEqual({limit: 3});
  expect(asked[1]._continue).toEqual(expect.any(String));
});

test('the typed lists name the token _continue: followed the same way', async () => {
  const pages = [{items: [1, 2], metadata: {_continue: 'a'}}, {items: [3], metadata: {_continue: ''}}];
  const asked: Array<string | undefined> = [];
  expect(await allPages(async (p) => (asked.push(p._continue), pages[asked.length - 1]), 2)).toEqual([1, 2, 3]);
  expect(asked).toEqual([undefined, 'a']);
});
