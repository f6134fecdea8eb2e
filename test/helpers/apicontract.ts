/**
 * One script of the requests claims mode makes (create, get, merge patch,
 * delete, lists with selectors and pages, a watch with a selector), with
 * what came back reduced to what the agent relies on. Run against the lab's
 * real API server and against test/helpers/fakeapi.ts, the two must give the
 * same: that is what makes the fake a stand-in (test/e2e/controlplane.test.ts).
 */
import type {ApiClient, Json} from '../../agent/api.js';
import {CLAIMS, NODES} from '../../agent/claims.js';

/** The CRDs as the role makes them (roles/externalip/templates/extip_crds.yml.j2), less their printer columns. */
export function claimsCrds(): Json[] {
  return [['IpNode', 'ipnodes', 'ipnode'], ['IpClaim', 'ipclaims', 'ipclaim']].map(([kind, plural, singular]) => ({
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: {name: `${plural}.ipcontroller.ext`},
    spec: {group: 'ipcontroller.ext', scope: 'Cluster', names: {kind, listKind: `${kind}List`, plural, singular},
      versions: [{name: 'v1', served: true, storage: true, schema: {openAPIV3Schema: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}}}]},
  }));
}

const MERGE = {contentType: 'application/merge-patch+json'};
const LABEL = 'extip.io/contract';

/** Runs the script; returns each step's name and what it saw. Leaves nothing behind. */
export async function claimsContract(api: ApiClient): Promise<Array<[string, unknown]>> {
  const out: Array<[string, unknown]> = [];
  const say = (what: string, seen: unknown) => out.push([what, seen]);
  const node = `${NODES}/contract-n1`;

  let r = await api.request('POST', NODES, {apiVersion: 'ipcontroller.ext/v1', kind: 'IpNode', metadata: {name: 'contract-n1', annotations: {a: 'x'}}, Revision: 1});
  say('create', [r.status, r.body.kind, r.body.apiVersion, r.body.metadata?.name, r.body.Revision, r.body.metadata?.annotations, /^\d+$/.test(r.body.metadata?.resourceVersion ?? ''), Boolean(r.body.metadata?.uid)]);
  r = await api.request('POST', NODES, {apiVersion: 'ipcontroller.ext/v1', kind: 'IpNode', metadata: {name: 'contract-n1'}, Revision: 1});
  say('create again', [r.status, r.body.kind, r.body.reason, r.body.details?.kind, r.body.details?.name]);
  r = await api.request('PATCH', node, {metadata: {annotations: {a: null, b: 'y'}}, Revision: 2}, MERGE);
  const rv = r.body.metadata?.resourceVersion;
  say('merge patch: null removes, objects merge, the rest replaces', [r.status, r.body.metadata?.annotations, r.body.Revision]);
  r = await api.request('PATCH', node, {metadata: {annotations: {b: 'y'}}, Revision: 2}, MERGE);
  say('a patch that changes nothing keeps the version', [r.status, r.body.metadata?.resourceVersion === rv]);
  r = await api.request('PATCH', `${NODES}/contract-nope`, {Revision: 3}, MERGE);
  say('patch of nothing', [r.status, r.body.reason, r.body.details?.name]);
  r = await api.request('GET', node);
  say('get', [r.status, r.body.Revision, r.body.metadata?.annotations]);
  r = await api.request('GET', `${NODES}/contract-nope`);
  say('get of nothing', [r.status, r.body.kind, r.body.reason]);

  const claims = ['contract-c1', 'contract-c2', 'contract-c3', 'contract-c4', 'contract-c5'];
  for (const [i, name] of claims.entries()) {
    r = await api.request('POST', CLAIMS, {apiVersion: 'ipcontroller.ext/v1', kind: 'IpClaim', metadata: {name, labels: {[LABEL]: 'yes', ipnode: i < 3 ? 'contract-n1' : 'contract-n2'}}, spec: {cidr: `10.9.0.${i + 1}/32`, nodeName: i < 3 ? 'contract-n1' : 'contract-n2'}});
    if (r.status !== 201) say(`create ${name}`, r.status);
  }
  const sel = `${LABEL}=yes,ipnode=contract-n1`;
  r = await api.request('GET', `${CLAIMS}?labelSelector=${encodeURIComponent(sel)}`);
  say('list with a selector', [r.status, r.body.kind, (r.body.items as Json[]).map((c) => c.metadata.name)]);
  const listedAt = r.body.metadata.resourceVersion as string;
  r = await api.request('GET', `${CLAIMS}?labelSelector=${encodeURIComponent(`${LABEL}=yes,ipnode!=contract-n1`)}`);
  say('list with a != selector', (r.body.items as Json[]).map((c) => c.metadata.name));

  const pages: Array<[number, boolean, string[]]> = [];
  let token = '';
  do {
    r = await api.request('GET', `${CLAIMS}?labelSelector=${encodeURIComponent(`${LABEL}=yes`)}&limit=2${token ? `&continue=${encodeURIComponent(token)}` : ''}`);
    token = r.body.metadata?.continue ?? '';
    pages.push([r.status, Boolean(token), (r.body.items as Json[]).map((c) => c.metadata.name)]);
  } while (token && pages.length < 10);
  say('pages of two', pages);

  // A watch of n1's claims from the list: a status change, an unrelated claim, a delete, a claim
  // relabelled away and one relabelled in.
  const events: string[] = [];
  const abort = new AbortController();
  let opened!: () => void;
  const open = new Promise<void>((resolve) => (opened = resolve));
  const watching = api.watch(`${CLAIMS}?watch=1&resourceVersion=${listedAt}&labelSelector=${encodeURIComponent(sel)}`, (type, o) => events.push(`${type} ${o.metadata?.name}`), abort.signal, () => opened());
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([open, new Promise((resolve) => (giveUp = setTimeout(resolve, 5000)))]);
  clearTimeout(giveUp);
  await api.request('PATCH', `${CLAIMS}/contract-c1`, {status: {upOn: 'contract-n1'}}, MERGE);
  await api.request('PATCH', `${CLAIMS}/contract-c4`, {metadata: {annotations: {x: '1'}}}, MERGE);
  await api.request('DELETE', `${CLAIMS}/contract-c2`);
  await api.request('PATCH', `${CLAIMS}/contract-c3`, {metadata: {labels: {ipnode: 'contract-n2'}}}, MERGE);
  await api.request('PATCH', `${CLAIMS}/contract-c5`, {metadata: {labels: {ipnode: 'contract-n1'}}}, MERGE);
  for (let waited = 0; events.length < 4 && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  // Anything else would have come by now.
  await new Promise((resolve) => setTimeout(resolve, 300));
  abort.abort();
  await watching;
  say('watch with a selector', events);

  r = await api.request('DELETE', node);
  say('delete', [r.status, r.body.kind, r.body.status, r.body.details?.name, r.body.details?.kind]);
  r = await api.request('DELETE', node);
  say('delete again', [r.status, r.body.reason]);
  for (const name of claims) await api.request('DELETE', `${CLAIMS}/${name}`);
  r = await api.request('GET', `${CLAIMS}?labelSelector=${encodeURIComponent(`${LABEL}=yes`)}`);
  say('nothing left', (r.body.items as Json[]).length);
  return out;
}
