/**
 * Two scripts of the requests claims mode makes: the claim controllers' (on
 * its custom resources: create, get, merge patch with and without a
 * version, delete, lists with selectors and pages, a watch with a selector)
 * and the scheduler's besides (Services across namespaces and their status
 * subresource, Leases updated on a version, Events), with what came back
 * reduced to what the agent relies on. Run against the lab's
 * real API server and against test/helpers/fakeapi.ts, the two must give the
 * same: that is what makes the fake a stand-in (test/e2e/controlplane.test.ts).
 */
import type {ApiClient, Json} from '../../agent/api.js';
import {CLAIMS, NODES} from '../../agent/claims.js';

/** The CRDs as the role makes them (roles/externalip/templates/extip_crds.yml.j2), less their printer columns. */
export function claimsCrds(): Json[] {
  return [['IpNode', 'ipnodes', 'ipnode'], ['IpClaim', 'ipclaims', 'ipclaim'], ['IpClaimPool', 'ipclaimpools', 'ipclaimpool']].map(([kind, plural, singular]) => ({
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
  r = await api.request('PATCH', node, {metadata: {resourceVersion: '1'}, Revision: 3}, MERGE);
  say('a patch with a version the object left is refused', [r.status, r.body.reason, r.body.details?.name, r.body.details?.kind]);
  r = await api.request('PATCH', node, {metadata: {resourceVersion: rv}, Revision: 3}, MERGE);
  say('a patch with the object\'s version is taken', [r.status, r.body.Revision, r.body.metadata?.resourceVersion !== rv]);

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

/** A Service of the script's: a LoadBalancer with one port. */
function service(name: string, namespace: string): Json {
  return {apiVersion: 'v1', kind: 'Service', metadata: {name, namespace, labels: {[LABEL]: 'yes'}},
    spec: {type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ports: [{name: 'http', port: 80, protocol: 'TCP'}]}};
}

/**
 * The scheduler's requests besides its custom resources: Services listed
 * across namespaces, written through the object (spec) and through the status
 * subresource (status), each on a version; the leader's Lease created,
 * updated on its version and refused on an old one; an Event. Uses the
 * namespaces every cluster has (default, kube-system). Leaves nothing behind.
 */
export async function schedulerContract(api: ApiClient): Promise<Array<[string, unknown]>> {
  const out: Array<[string, unknown]> = [];
  const say = (what: string, seen: unknown) => out.push([what, seen]);
  const a = '/api/v1/namespaces/default/services/extip-contract-a';
  const sel = `labelSelector=${encodeURIComponent(`${LABEL}=yes`)}`;

  let r = await api.request('POST', '/api/v1/namespaces/default/services', service('extip-contract-a', 'default'));
  say('create a Service', [r.status, r.body.kind, r.body.apiVersion, r.body.metadata?.namespace, r.body.metadata?.name]);
  r = await api.request('POST', '/api/v1/namespaces/kube-system/services', service('extip-contract-b', 'kube-system'));
  say('create one in another namespace', [r.status, r.body.metadata?.namespace]);
  r = await api.request('POST', '/api/v1/namespaces/default/services', service('extip-contract-c', 'kube-system'));
  say('create with a namespace other than the path\'s', [r.status, r.body.reason]);
  r = await api.request('GET', `/api/v1/services?${sel}`);
  say('list across namespaces', [r.status, r.body.kind, (r.body.items as Json[]).map((s) => `${s.metadata.namespace}/${s.metadata.name}`)]);
  r = await api.request('GET', `/api/v1/namespaces/kube-system/services?${sel}`);
  say('list in one namespace', (r.body.items as Json[]).map((s) => `${s.metadata.namespace}/${s.metadata.name}`));
  r = await api.request('GET', `/api/v1/services?${sel}&limit=1`);
  say('a page of one across namespaces', [(r.body.items as Json[]).map((s) => s.metadata.name), Boolean(r.body.metadata?.continue)]);
  r = await api.request('GET', '/api/v1/namespaces/default/services/extip-contract-nope');
  say('get of nothing', [r.status, r.body.reason, r.body.details?.name, r.body.details?.kind, r.body.details?.group ?? '']);

  r = await api.request('GET', a);
  const v1 = r.body.metadata?.resourceVersion as string;
  r = await api.request('PATCH', a, {metadata: {resourceVersion: v1}, spec: {externalIPs: ['10.9.1.1']}, status: {loadBalancer: {ingress: [{ip: '10.9.1.2'}]}}}, MERGE);
  say('a patch of the object changes its spec, not its status', [r.status, r.body.spec?.externalIPs, r.body.status?.loadBalancer?.ingress ?? null]);
  r = await api.request('PATCH', a, {metadata: {resourceVersion: v1}, spec: {externalIPs: ['10.9.1.3']}}, MERGE);
  say('a patch on the version before is refused', [r.status, r.body.reason, r.body.details?.name, r.body.details?.kind]);
  r = await api.request('PATCH', `${a}/status`, {spec: {externalIPs: ['10.9.1.4']}, status: {loadBalancer: {ingress: [{ip: '10.9.1.5', ipMode: 'VIP'}]}}}, MERGE);
  say('a patch of the status changes its status, not its spec', [r.status, r.body.spec?.externalIPs, r.body.status?.loadBalancer?.ingress]);
  r = await api.request('PATCH', `${a}/status`, {status: {loadBalancer: {ingress: null}}}, MERGE);
  say('the status cleared', [r.status, r.body.status?.loadBalancer?.ingress ?? null]);
  r = await api.request('GET', a);
  say('get', [r.status, r.body.spec?.externalIPs, r.body.status?.loadBalancer?.ingress ?? null]);

  const leases = '/apis/coordination.k8s.io/v1/namespaces/default/leases';
  const lease = `${leases}/extip-contract`;
  r = await api.request('GET', lease);
  say('no Lease yet', [r.status, r.body.reason, r.body.details?.group, r.body.details?.kind]);
  const t = '2026-01-01T00:00:00.000000Z';
  r = await api.request('POST', leases, {apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: {name: 'extip-contract', namespace: 'default', labels: {[LABEL]: 'yes'}},
    spec: {holderIdentity: 'one', leaseDurationSeconds: 2, acquireTime: t, renewTime: t, leaseTransitions: 0}});
  say('Lease created', [r.status, r.body.kind, r.body.spec?.holderIdentity]);
  r = await api.request('POST', leases, {apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: {name: 'extip-contract'}, spec: {holderIdentity: 'two'}});
  say('a second candidate\'s create', [r.status, r.body.reason]);
  const got = (await api.request('GET', lease)).body;
  r = await api.request('PUT', lease, {...got, spec: {...got.spec, holderIdentity: 'two', leaseTransitions: 1}});
  say('an update on its version', [r.status, r.body.spec?.holderIdentity, r.body.spec?.leaseTransitions, r.body.metadata?.resourceVersion !== got.metadata.resourceVersion]);
  r = await api.request('PUT', lease, {...got, spec: {...got.spec, holderIdentity: 'three'}});
  say('an update on the version before is refused', [r.status, r.body.reason]);
  r = await api.request('GET', lease);
  say('the Lease', [r.status, r.body.spec?.holderIdentity, r.body.metadata?.labels?.[LABEL]]);

  r = await api.request('POST', '/api/v1/namespaces/default/events', {apiVersion: 'v1', kind: 'Event', metadata: {generateName: 'extip-contract-a.', namespace: 'default'},
    involvedObject: {apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'extip-contract-a'}, reason: 'AddressMoved', message: 'contract', type: 'Normal',
    source: {component: 'extip-scheduler'}, firstTimestamp: '2026-01-01T00:00:00Z', lastTimestamp: '2026-01-01T00:00:00Z', count: 1});
  const event = r.body.metadata?.name as string | undefined;
  say('an Event', [r.status, r.body.kind, /^extip-contract-a\.[a-z0-9]{5}$/.test(event ?? ''), r.body.reason]);

  if (event) await api.request('DELETE', `/api/v1/namespaces/default/events/${event}`);
  await api.request('DELETE', lease);
  await api.request('DELETE', a);
  await api.request('DELETE', '/api/v1/namespaces/kube-system/services/extip-contract-b');
  r = await api.request('GET', `/api/v1/services?${sel}`);
  say('nothing left', (r.body.items as Json[]).length);
  return out;
}
