/**
 * The fake API server's own suite: real kubectl and @kubernetes/client-node
 * exercise every operation extip relies on (REFERENCE.md section 5).
 */
import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import {writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {execa} from 'execa';
import YAML from 'yaml';
import {startApi, type LabApi} from './lab/kube.js';
import {kubectlPath} from './lab/tools.js';
import {tempDir} from './helpers/ansible.js';

let api: LabApi;
let dir: {path: string; cleanup: () => Promise<void>};

async function kubectl(args: string[], input?: string) {
  const r = await execa(kubectlPath, ['--kubeconfig', api.kubeconfig, ...args], {
    reject: false,
    input,
    env: {KUBECACHEDIR: join(dir.path, 'cache'), HOME: dir.path},
  });
  return {code: r.exitCode ?? -1, out: r.stdout, err: r.stderr};
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.err}`);
  return r.out;
}

async function getJson(args: string[]): Promise<Record<string, any>> {
  return JSON.parse(await ok([...args, '-o', 'json']));
}

function client(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(api.kubeconfig);
  return kc;
}

beforeAll(async () => {
  dir = await tempDir('extip-api-');
  api = await startApi(dir.path);
  for (const n of ['node1', 'node2', 'node3']) {
    api.server.store.create(api.server.store.resolve('', 'v1', 'nodes'), undefined, {
      apiVersion: 'v1', kind: 'Node', metadata: {name: n, labels: {'kubernetes.io/hostname': n}},
      status: {addresses: [{type: 'InternalIP', address: `10.210.1.1${n.slice(-1)}`}], conditions: [{type: 'Ready', status: 'True'}]},
    }, {});
  }
});

afterAll(async () => {
  await api?.stop();
  await dir?.cleanup();
});

const deployment = (image: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'apps/v1', kind: 'Deployment',
  metadata: {name: 'web', namespace: 'default', labels: {app: 'web'}},
  spec: {replicas: 2, selector: {matchLabels: {app: 'web'}}, template: {metadata: {labels: {app: 'web'}}, spec: {containers: [{name: 'web', image, ...extra}]}}},
});

describe('discovery and reading', () => {
  test('version, api-resources and get', async () => {
    expect(await ok(['version', '-o', 'json'])).toContain('"gitVersion": "v1.31.0"');
    const resources = await ok(['api-resources', '--no-headers']);
    expect(resources).toMatch(/daemonsets\s+ds\s+apps\/v1\s+true\s+DaemonSet/);
    expect(await ok(['get', 'nodes'])).toMatch(/node1\s+Ready/);
    expect((await getJson(['get', 'namespaces'])).items.map((n: any) => n.metadata.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });

  test('label and field selectors', async () => {
    await ok(['label', 'nodes', 'node1', 'node3', 'extip=yes']);
    expect((await getJson(['get', 'nodes', '-l', 'extip=yes'])).items.map((n: any) => n.metadata.name)).toEqual(['node1', 'node3']);
    expect((await getJson(['get', 'nodes', '-l', 'extip notin (yes)'])).items.map((n: any) => n.metadata.name)).toEqual(['node2']);
    expect((await getJson(['get', 'nodes', '--field-selector', 'metadata.name=node2'])).items).toHaveLength(1);
    await ok(['label', 'nodes', '-l', 'extip=yes', 'extip-']);
  });

  test('errors are Status objects with the right reason', async () => {
    const missing = await kubectl(['get', 'configmap', 'nope', '-n', 'default']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('configmaps "nope" not found');
    const noNs = await kubectl(['create', 'configmap', 'x', '-n', 'nonexistent']);
    expect(noNs.err).toContain('namespaces "nonexistent" not found');
    await ok(['create', 'configmap', 'dup', '-n', 'default']);
    expect((await kubectl(['create', 'configmap', 'dup', '-n', 'default'])).err).toContain('already exists');
  });
});

describe('writing', () => {
  test('label: a change bumps the resourceVersion, a no-op does not', async () => {
    await ok(['label', 'nodes', 'node2', 'role=edge']);
    const rv1 = (await getJson(['get', 'node', 'node2'])).metadata.resourceVersion;
    const again = await ok(['label', 'nodes', 'node2', 'role=edge', '--overwrite']);
    expect(again).toContain('not labeled');
    expect((await getJson(['get', 'node', 'node2'])).metadata.resourceVersion).toBe(rv1);
    await ok(['label', 'nodes', 'node2', 'role-']);
    expect((await getJson(['get', 'node', 'node2'])).metadata.labels.role).toBeUndefined();
  });

  test('client-side apply creates, updates and reports unchanged', async () => {
    const file = join(dir.path, 'web.yaml');
    await writeFile(file, YAML.stringify(deployment('nginx:1.25', {env: [{name: 'A', value: '1'}]})));
    expect(await ok(['apply', '-f', file])).toContain('deployment.apps/web created');
    expect(await ok(['apply', '-f', file])).toContain('deployment.apps/web unchanged');
    await writeFile(file, YAML.stringify(deployment('nginx:1.26', {env: [{name: 'B', value: '2'}]})));
    expect(await ok(['apply', '-f', file])).toContain('deployment.apps/web configured');
    const d = await getJson(['get', 'deployment', 'web', '-n', 'default']);
    expect(d.spec.template.spec.containers[0].image).toBe('nginx:1.26');
    expect(d.spec.template.spec.containers[0].env).toEqual([{name: 'B', value: '2'}]);
    expect(d.metadata.generation).toBe(2);
    expect(d.spec.strategy.type).toBe('RollingUpdate');
    await ok(['delete', '-f', file]);
  });

  test('server-side apply: ownership, dropped fields removed, conflicts, diff', async () => {
    const file = join(dir.path, 'ssa.yaml');
    const cm = (data: Record<string, string>, labels: Record<string, string> = {}) =>
      YAML.stringify({apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'ssa', namespace: 'default', labels}, data});
    await writeFile(file, cm({a: '1', b: '2'}, {keep: 'kx', drop: 'dy'}));
    expect(await ok(['apply', '--server-side', '--field-manager=extip', '-f', file])).toContain('serverside-applied');
    const first = await getJson(['get', 'cm', 'ssa', '-n', 'default', '--show-managed-fields']);
    expect(first.metadata.managedFields[0]).toMatchObject({manager: 'extip', operation: 'Apply'});

    // Unchanged: no new resourceVersion; kubectl diff exits 0.
    await ok(['apply', '--server-side', '--field-manager=extip', '-f', file]);
    expect((await getJson(['get', 'cm', 'ssa', '-n', 'default'])).metadata.resourceVersion).toBe(first.metadata.resourceVersion);
    expect((await kubectl(['diff', '--server-side', '--field-manager=extip', '-f', file])).code).toBe(0);

    // A field set by someone else stays when extip's apply drops its own.
    await ok(['label', 'cm', 'ssa', '-n', 'default', 'other=oz']);
    await writeFile(file, cm({a: '1'}, {keep: 'kx'}));
    const diff = await kubectl(['diff', '--server-side', '--field-manager=extip', '-f', file]);
    expect(diff.code).toBe(1);
    expect(diff.out).toContain('-  b: "2"');
    await ok(['apply', '--server-side', '--field-manager=extip', '-f', file]);
    const after = await getJson(['get', 'cm', 'ssa', '-n', 'default']);
    expect(after.data).toEqual({a: '1'});
    expect(after.metadata.labels).toEqual({keep: 'kx', other: 'oz'});

    // Another manager setting extip's field differently conflicts, unless forced.
    await writeFile(join(dir.path, 'other.yaml'), cm({a: 'changed'}));
    const conflict = await kubectl(['apply', '--server-side', '--field-manager=other', '-f', join(dir.path, 'other.yaml')]);
    expect(conflict.code).not.toBe(0);
    expect(conflict.err).toContain('conflict with "extip"');
    await ok(['apply', '--server-side', '--field-manager=other', '--force-conflicts', '-f', join(dir.path, 'other.yaml')]);
    expect((await getJson(['get', 'cm', 'ssa', '-n', 'default'])).data.a).toBe('changed');

    // Dry runs change nothing.
    await writeFile(file, cm({a: 'dry'}));
    await ok(['apply', '--server-side', '--field-manager=extip', '--force-conflicts', '--dry-run=server', '-f', file]);
    expect((await getJson(['get', 'cm', 'ssa', '-n', 'default'])).data.a).toBe('changed');
  });

  test('JSON and merge patches, and the status subresource', async () => {
    await ok(['create', 'configmap', 'p', '-n', 'default', '--from-literal=x=1']);
    await ok(['patch', 'configmap', 'p', '-n', 'default', '--type=json', '-p', '[{"op":"add","path":"/data/y","value":"2"},{"op":"remove","path":"/data/x"}]']);
    await ok(['patch', 'configmap', 'p', '-n', 'default', '--type=merge', '-p', '{"data":{"z":"3"}}']);
    expect((await getJson(['get', 'cm', 'p', '-n', 'default'])).data).toEqual({y: '2', z: '3'});
    const bad = await kubectl(['patch', 'configmap', 'p', '-n', 'default', '--type=json', '-p', '[{"op":"remove","path":"/data/nope"}]']);
    expect(bad.code).not.toBe(0);
    await ok(['patch', 'node', 'node3', '--subresource=status', '--type=merge', '-p', '{"status":{"capacity":{"cpu":"2"}}}']);
    expect((await getJson(['get', 'node', 'node3'])).status.capacity).toEqual({cpu: '2'});
  });
});

describe('workloads, CRDs and waiting', () => {
  test('rollout status of a DaemonSet on the labelled nodes, then delete waits until gone', async () => {
    await ok(['label', 'nodes', 'node1', 'node2', 'extip=true']);
    const ds = {
      apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: {name: 'ctrl', namespace: 'kube-system'},
      spec: {selector: {matchLabels: {app: 'ctrl'}}, template: {metadata: {labels: {app: 'ctrl'}}, spec: {nodeSelector: {extip: 'true'}, containers: [{name: 'c', image: 'x:1'}]}}},
    };
    await ok(['apply', '-f', '-'], JSON.stringify(ds));
    expect(await ok(['rollout', 'status', 'daemonset/ctrl', '-n', 'kube-system', '--timeout=20s'])).toContain('successfully rolled out');
    const status = (await getJson(['get', 'ds', 'ctrl', '-n', 'kube-system'])).status;
    expect(status).toMatchObject({desiredNumberScheduled: 2, numberAvailable: 2, updatedNumberScheduled: 2});
    await ok(['delete', 'daemonset', 'ctrl', '-n', 'kube-system', '--wait=true']);
    expect((await kubectl(['get', 'ds', 'ctrl', '-n', 'kube-system'])).code).toBe(1);
  });

  test('a CRD becomes Established and its resources appear in discovery, and vanish on delete', async () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: {name: 'ipclaims.ipcontroller.ext'},
      spec: {group: 'ipcontroller.ext', scope: 'Cluster', names: {kind: 'IpClaim', plural: 'ipclaims', singular: 'ipclaim', listKind: 'IpClaimList'},
        versions: [{name: 'v1', served: true, storage: true, schema: {openAPIV3Schema: {type: 'object', 'x-kubernetes-preserve-unknown-fields': true}}}]},
    };
    await ok(['apply', '--server-side', '--field-manager=extip', '-f', '-'], JSON.stringify(crd));
    await ok(['wait', '--for=condition=Established', 'crd/ipclaims.ipcontroller.ext', '--timeout=20s']);
    await ok(['apply', '--server-side', '--field-manager=extip', '-f', '-'], JSON.stringify({apiVersion: 'ipcontroller.ext/v1', kind: 'IpClaim', metadata: {name: '10-0-0-7-32'}, spec: {cidr: '10.0.0.7/32'}}));
    await ok(['patch', 'ipclaim', '10-0-0-7-32', '--type=merge', '-p', '{"spec":{"nodeName":"node1"}}']);
    expect((await getJson(['get', 'ipclaims'])).items[0].spec).toEqual({cidr: '10.0.0.7/32', nodeName: 'node1'});
    await ok(['delete', 'crd', 'ipclaims.ipcontroller.ext']);
    const gone = await kubectl(['get', 'ipclaims']);
    expect(gone.code).not.toBe(0);
    // kubectl's discovery cache may still list the type; either way the server no longer serves it.
    expect(gone.err).toMatch(/doesn't have a resource type "ipclaims"|could not find the requested resource/);
  });

  test('deleting a namespace deletes what is in it', async () => {
    await ok(['create', 'namespace', 'doomed']);
    await ok(['create', 'configmap', 'c', '-n', 'doomed']);
    await ok(['delete', 'namespace', 'doomed', '--wait=true', '--timeout=20s']);
    expect((await kubectl(['get', 'ns', 'doomed'])).code).toBe(1);
    expect((await getJson(['get', 'configmaps', '-A'])).items.some((c: any) => c.metadata.namespace === 'doomed')).toBe(false);
  });

  test('wait --for=delete and a Deployment rollout', async () => {
    await ok(['apply', '-f', '-'], JSON.stringify(deployment('nginx:1')));
    expect(await ok(['rollout', 'status', 'deployment/web', '-n', 'default', '--timeout=20s'])).toContain('successfully rolled out');
    const waiter = kubectl(['wait', '--for=delete', 'deployment/web', '-n', 'default', '--timeout=20s']);
    await ok(['delete', 'deployment', 'web', '-n', 'default', '--wait=false']);
    expect((await waiter).code).toBe(0);
  });

  test('unimplemented things answer an error, not a silent success', async () => {
    const r = await kubectl(['get', '--raw', '/api/v1/namespaces/default/pods/x/log']);
    expect(r.code).not.toBe(0);
    const v2 = await kubectl(['get', '--raw', '/openapi/v2']);
    expect(v2.code).not.toBe(0);
  });
});

describe('@kubernetes/client-node', () => {
  test('list, create, patch status and custom objects', async () => {
    const kc = client();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const nodes = await core.listNode();
    expect(nodes.items.map((n) => n.metadata?.name)).toEqual(['node1', 'node2', 'node3']);
    await core.createNamespacedService({namespace: 'default', body: {metadata: {name: 'svc1'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7']}}});
    await core.patchNamespacedServiceStatus(
      {name: 'svc1', namespace: 'default', body: {status: {loadBalancer: {ingress: [{ip: '10.0.0.9'}]}}}},
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const svc = await core.readNamespacedService({name: 'svc1', namespace: 'default'});
    expect(svc.status?.loadBalancer?.ingress?.[0].ip).toBe('10.0.0.9');
    expect(svc.spec?.clusterIP).toMatch(/^10\.233\./);

    const crdApi = kc.makeApiClient(k8s.ApiextensionsV1Api);
    await crdApi.createCustomResourceDefinition({body: {
      metadata: {name: 'ipnodes.ipcontroller.ext'},
      spec: {group: 'ipcontroller.ext', scope: 'Cluster', names: {kind: 'IpNode', plural: 'ipnodes', singular: 'ipnode'},
        versions: [{name: 'v1', served: true, storage: true, schema: {openAPIV3Schema: {type: 'object', x_kubernetes_preserve_unknown_fields: true}}}]},
    }});
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await custom.createClusterCustomObject({group: 'ipcontroller.ext', version: 'v1', plural: 'ipnodes', body: {apiVersion: 'ipcontroller.ext/v1', kind: 'IpNode', metadata: {name: 'node1'}, Revision: 1}});
    await custom.patchClusterCustomObject({group: 'ipcontroller.ext', version: 'v1', plural: 'ipnodes', name: 'node1', body: {Revision: 2}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    const got = (await custom.getClusterCustomObject({group: 'ipcontroller.ext', version: 'v1', plural: 'ipnodes', name: 'node1'})) as {Revision: number};
    expect(got.Revision).toBe(2);
    await core.deleteNamespacedService({name: 'svc1', namespace: 'default'});
  });

  test('an informer sees add, modify and delete in order, also after a forced 410', async () => {
    const kc = client();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const seen: string[] = [];
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/services', () => core.listNamespacedService({namespace: 'default'}));
    informer.on('add', (s) => seen.push(`add ${s.metadata?.name}`));
    informer.on('update', (s) => seen.push(`update ${s.metadata?.name} ${(s.spec?.externalIPs ?? []).join(',')}`));
    informer.on('delete', (s) => seen.push(`delete ${s.metadata?.name}`));
    const errors: unknown[] = [];
    informer.on('error', (e) => errors.push(e));
    await informer.start();
    const until = async (what: string) => {
      const deadline = Date.now() + 10000;
      while (!seen.includes(what)) {
        if (Date.now() > deadline) throw new Error(`informer never saw "${what}"; saw ${JSON.stringify(seen)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await core.createNamespacedService({namespace: 'default', body: {metadata: {name: 'inf'}, spec: {ports: [{port: 80}]}}});
    await until('add inf');
    await core.patchNamespacedService({name: 'inf', namespace: 'default', body: {spec: {externalIPs: ['10.0.0.8']}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await until('update inf 10.0.0.8');
    await core.deleteNamespacedService({name: 'inf', namespace: 'default'});
    await until('delete inf');
    expect(seen.filter((s) => s.endsWith(' inf') || s.includes('inf '))).toEqual(['add inf', 'update inf 10.0.0.8', 'delete inf']);

    // Cut every watch, and while the informer is away create a Service and drop the
    // history: its resumed watch gets 410 Gone, so it must list again to see the Service.
    const lists = () => api.server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/api/v1/namespaces/default/services') && !r.path.includes('watch=')).length;
    const listsBefore = lists();
    api.server.dropWatches();
    const services = api.server.store.resolve('', 'v1', 'services');
    api.server.store.create(services, 'default', {apiVersion: 'v1', kind: 'Service', metadata: {name: 'after'}, spec: {ports: [{port: 80}]}}, {});
    api.server.store.compact();
    await until('add after');
    await core.patchNamespacedService({name: 'after', namespace: 'default', body: {spec: {externalIPs: ['10.0.0.9']}}}, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await until('update after 10.0.0.9');
    expect(errors).toEqual([]);
    // The resumed watch got 410 Gone and the informer listed again.
    expect(lists()).toBeGreaterThan(listsBefore);
    await informer.stop();
  });
});
