/**
 * The lab's real control plane: the built version answers, RBAC applies to the
 * agent's own ServiceAccount token, Pod Security rejects a hostNetwork pod in a
 * namespace that does not allow it, and the lab kubelet runs pods as their spec
 * says (env with fieldRefs, hostPath under the node's root, the projected
 * token, exit codes and CrashLoopBackOff, SIGTERM on deletion, a clear status
 * for what it cannot run; probes from the node to a named port, secret volumes
 * kept up to date), and the API server reaches a webhook on the pod network.
 * The agent's list and watch against it: pages with continue tokens, and a
 * quiet watch replaced from the version it had. And the in-memory API server
 * the unit tests use (test/helpers/fakeapi.ts) held to it: two scripts of
 * claims mode's requests (the claim controllers' and the scheduler's), the
 * same answers from both.
 */
import {expect, test} from '@jest/globals';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {extip} from '../helpers/cli.js';
import {tempDir} from '../helpers/ansible.js';
import {useLab} from '../helpers/lab.js';
import {ApiClient, type Json} from '../../agent/api.js';
import {loadAccess} from '../../agent/kubeconfig.js';
import {ListWatch} from '../../agent/listwatch.js';
import {claimsContract, claimsCrds, schedulerContract} from '../helpers/apicontract.js';
import {FakeApi} from '../helpers/fakeapi.js';

const lab = useLab({nodes: 2, privilegedNamespaces: []});

const expectedVersion = (process.env.EXTIP_KUBE_VERSION ?? '').replace(/^v?/, 'v') || (await readFile(new URL('../controlplane/VERSION', import.meta.url), 'utf8')).trim();

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function pod(namespace: string, name: string) {
  const r = await lab.kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json']);
  return r.exitCode === 0 ? JSON.parse(r.stdout) : undefined;
}

test('kubectl version reports the server built from the pinned module', async () => {
  const r = await lab.kubectl(['version', '-o', 'json']);
  expect(r.exitCode).toBe(0);
  const v = JSON.parse(r.stdout);
  expect(v.serverVersion.gitVersion.startsWith(expectedVersion)).toBe(true);
  expect(v.clientVersion.gitVersion).toBe(v.serverVersion.gitVersion);
  // The nodes registered themselves, Ready, with their InternalIP.
  const nodes = JSON.parse((await lab.kubectl(['get', 'nodes', '-o', 'json'])).stdout).items;
  expect(nodes.map((n: {metadata: {name: string}}) => n.metadata.name).sort()).toEqual(['node1', 'node2']);
  for (const n of nodes) {
    expect(n.status.conditions.find((c: {type: string}) => c.type === 'Ready').status).toBe('True');
    expect(n.status.addresses).toContainEqual({type: 'InternalIP', address: lab.host(n.metadata.name).ip});
  }
});

test('the agent\'s own ServiceAccount token: its ClusterRole lets it list Services, not read Secrets', async () => {
  const dir = await tempDir();
  try {
    const out = join(dir.path, 'out');
    const r = await extip(['render', '--manifests', '--out', out, '--set', 'extip_namespace=extip-rbac', '--set', 'extip_distribution=all']);
    expect(r.exitCode).toBe(0);
    expect((await lab.kubectl(['create', 'namespace', 'extip-rbac'])).exitCode).toBe(0);
    const applied = await lab.kubectl(['apply', '-f', join(out, 'extip_rbac.yml')]);
    expect(applied.stderr).toBe('');
    const token = await lab.kubectl(['-n', 'extip-rbac', 'create', 'token', 'claimcontroller']);
    expect(token.exitCode).toBe(0);
    // kubectl with the token alone (no kubeconfig, so no admin certificate).
    const cfg = lab.api.kubeconfig;
    const asAgent = async (args: string[]) => {
      const {execa} = await import('execa');
      const server = /server: (\S+)/.exec(await readFile(cfg, 'utf8'))![1];
      return execa(lab.kubectlPath, ['--server', server, '--certificate-authority', lab.api.pki.caFile, '--token', token.stdout.trim(), ...args], {reject: false, env: {KUBECONFIG: '/dev/null'}});
    };
    const allowed = await asAgent(['get', 'services', '--all-namespaces']);
    expect(allowed.exitCode).toBe(0);
    const denied = await asAgent(['-n', 'kube-system', 'get', 'secrets']);
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toContain('Forbidden');
    expect(denied.stderr).toContain('system:serviceaccount:extip-rbac:claimcontroller');
  } finally {
    await lab.kubectl(['delete', 'namespace', 'extip-rbac', '--wait=false']);
    await dir.cleanup();
  }
});

const hostPod = (namespace: string, name: string, command: string[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {name, namespace},
    spec: {
      hostNetwork: true,
      nodeName: 'node2',
      terminationGracePeriodSeconds: 5,
      containers: [{name: 'main', image: 'lab/none', command, securityContext: {capabilities: {add: ['NET_ADMIN']}}, ...extra}],
    },
  });

test('the agent lists in pages through the API server\'s continue tokens, watches from the list\'s version, and replaces a quiet watch without losing a change', async () => {
  const ns = 'paging';
  expect((await lab.kubectl(['create', 'namespace', ns])).exitCode).toBe(0);
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    expect((await lab.kubectl(['-n', ns, 'create', 'service', 'clusterip', name, '--tcp=80:80'])).exitCode).toBe(0);
  }
  const calls: string[] = [];
  const pages: Json[] = [];
  const watches: string[] = [];
  class Recording extends ApiClient {
    override async call(method: string, path: string, body?: unknown, options?: {timeoutMs?: number}): Promise<Json> {
      calls.push(path);
      const r = await super.call(method, path, body, options);
      pages.push(r.metadata ?? {});
      return r;
    }
    override watch(...args: Parameters<ApiClient['watch']>): ReturnType<ApiClient['watch']> {
      watches.push(new URL(args[0], 'https://x').searchParams.get('resourceVersion') ?? '');
      return super.watch(...args);
    }
  }
  const errors: string[] = [];
  const w = new ListWatch(new Recording(loadAccess(lab.api.kubeconfig)), `/api/v1/namespaces/${ns}/services`, 'Services', {onChange: () => {}, onError: (what, err) => errors.push(`${what}: ${(err as Error).message}`)});
  w.pageSize = 2;
  w.idleMs = 1500;
  void w.run();
  try {
    await until('listed', async () => (w.synced ? true : undefined), 10000);
    expect(calls.map((c) => new URL(c, 'https://x').searchParams.get('limit'))).toEqual(['2', '2', '2']);
    expect(pages.map((p) => Boolean(p.continue))).toEqual([true, true, false]);
    expect(new Set(pages.map((p) => p.resourceVersion)).size).toBe(1);
    expect(w.list().map((o) => o.metadata.name).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    // Nothing changes in the namespace: the server sends nothing, and the
    // agent opens its watch again every 1.5 s from the list's version; the server takes it.
    await until('three quiet watches', async () => (watches.length >= 3 ? true : undefined), 15000);
    expect(new Set(watches)).toEqual(new Set([pages[0].resourceVersion]));
    expect((await lab.kubectl(['-n', ns, 'create', 'service', 'clusterip', 'f', '--tcp=80:80'])).exitCode).toBe(0);
    await until('f from the watch', async () => (w.get(`${ns}/f`) ? true : undefined), 10000);
    expect(errors).toEqual([]);
    expect(calls.length).toBe(3); // no relist
  } finally {
    w.stop();
  }
  await lab.kubectl(['delete', 'namespace', ns, '--wait=false']);
});

test('Pod Security rejects a hostNetwork pod with NET_ADMIN unless its namespace allows it', async () => {
  expect((await lab.kubectl(['create', 'namespace', 'plain'])).exitCode).toBe(0);
  const rejected = await lab.kubectl(['apply', '-f', '-'], hostPod('plain', 'needs-host', ['sleep', '300']));
  expect(rejected.exitCode).not.toBe(0);
  expect(rejected.stderr).toContain('violates PodSecurity "baseline:latest"');
  expect(rejected.stderr).toContain('host namespaces (hostNetwork=true)');
  expect(rejected.stderr).toContain('must not include "NET_ADMIN"');
  expect((await lab.kubectl(['label', 'namespace', 'plain', 'pod-security.kubernetes.io/enforce=privileged'])).exitCode).toBe(0);
  const accepted = await lab.kubectl(['apply', '-f', '-'], hostPod('plain', 'needs-host', ['sleep', '300']));
  expect(accepted.exitCode).toBe(0);
  const running = await until('the pod runs', async () => ((await pod('plain', 'needs-host'))?.status?.phase === 'Running' ? true : undefined));
  expect(running).toBe(true);
  await lab.kubectl(['delete', 'namespace', 'plain', '--wait=false']);
});

test('the lab kubelet runs the spec: env and fieldRefs, hostPath, the projected token, exit codes, back-off, SIGTERM', async () => {
  expect((await lab.kubectl(['create', 'namespace', 'runs'])).exitCode).toBe(0);
  await lab.kubectl(['label', 'namespace', 'runs', 'pod-security.kubernetes.io/enforce=privileged']);
  const script = 'echo "$NODE $POD $GREETING" > /out/env; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace > /out/ns; ' +
    'test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token > /out/token; ' +
    'trap "echo term > /out/term; exit 0" TERM; while :; do sleep 0.1; done';
  await until('the default ServiceAccount of runs', async () => ((await lab.kubectl(['-n', 'runs', 'get', 'sa', 'default'])).exitCode === 0 ? true : undefined));
  const manifest = JSON.parse(hostPod('runs', 'spec', ['sh', '-c', script], {
    env: [
      {name: 'NODE', valueFrom: {fieldRef: {fieldPath: 'spec.nodeName'}}},
      {name: 'POD', valueFrom: {fieldRef: {fieldPath: 'metadata.name'}}},
      {name: 'GREETING', value: 'hello'},
    ],
    volumeMounts: [{name: 'out', mountPath: '/out'}],
  }));
  manifest.spec.volumes = [{name: 'out', hostPath: {path: '/var/lib/spec-out', type: 'DirectoryOrCreate'}}];
  const created = await lab.kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
  expect(created.exitCode).toBe(0);
  const out = join(lab.host('node2').root, 'var/lib/spec-out');
  const env = await until('the container wrote its env', async () => readFile(join(out, 'env'), 'utf8').catch(() => undefined));
  expect(env.trim()).toBe('node2 spec hello');
  expect((await readFile(join(out, 'ns'), 'utf8')).trim()).toBe('runs');
  expect((await readFile(join(out, 'token'), 'utf8')).trim()).toBe('token');
  const deleted = await lab.kubectl(['-n', 'runs', 'delete', 'pod', 'spec', '--wait=true', '--timeout=30s']);
  if (deleted.exitCode !== 0) console.log(deleted.stderr, lab.nodeKubelets.map((k) => k.events));
  expect(deleted.exitCode).toBe(0);
  expect((await readFile(join(out, 'term'), 'utf8')).trim()).toBe('term');

  // A container that exits 3 is restarted with back-off; its exit code is in the status.
  await lab.kubectl(['apply', '-f', '-'], hostPod('runs', 'crash', ['sh', '-c', 'exit 3']));
  const crashed = await until('CrashLoopBackOff', async () => {
    const s = (await pod('runs', 'crash'))?.status?.containerStatuses?.[0];
    return s?.state?.waiting?.reason === 'CrashLoopBackOff' ? s : undefined;
  });
  expect(crashed.lastState.terminated.exitCode).toBe(3);
  expect(crashed.restartCount).toBeGreaterThanOrEqual(1);

  // A pod on the pod network: its own namespace and address, the API at the kubernetes Service's address.
  const podnet = JSON.parse(hostPod('runs', 'podnet', ['sh', '-c', 'ip -o -4 address show dev eth0 > /out/podnet-addr; socat -u OPEN:/dev/null TCP:$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT && echo api > /out/podnet-api; sleep 300'], {
    volumeMounts: [{name: 'out', mountPath: '/out'}],
  }));
  delete podnet.spec.hostNetwork;
  podnet.spec.volumes = [{name: 'out', hostPath: {path: '/var/lib/spec-out', type: 'DirectoryOrCreate'}}];
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(podnet))).exitCode).toBe(0);
  expect(await until('the pod reached the API', async () => readFile(join(out, 'podnet-api'), 'utf8').catch(() => undefined))).toBe('api\n');
  const podIP = (await pod('runs', 'podnet')).status.podIP as string;
  expect(podIP).toMatch(/^10\.244\.2\.\d+$/);
  expect(await readFile(join(out, 'podnet-addr'), 'utf8')).toContain(`inet ${podIP}/32`);

  // An image the lab does not have cannot start, and its status says so, as a kubelet's does.
  await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Pod', metadata: {name: 'image', namespace: 'runs'}, spec: {nodeName: 'node1', containers: [{name: 'c', image: 'nginx'}]}}));
  const pulling = await until('ErrImagePull', async () => {
    const p = await pod('runs', 'image');
    return p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImagePull' ? p : undefined;
  });
  expect(pulling.status.containerStatuses[0].state.waiting.message).toContain('Failed to pull image "nginx": the lab has no such image; it has ghcr.io/extip/ipmanager:');
  expect(pulling.status.phase).toBe('Pending');
  await lab.kubectl(['delete', 'namespace', 'runs', '--wait=false']);
}, 120_000);

test('the API server calls a webhook on the pod network; the kubelet probes a named port from the node; a secret volume follows its Secret', async () => {
  expect((await lab.kubectl(['create', 'namespace', 'hooks'])).exitCode).toBe(0);
  await lab.kubectl(['label', 'namespace', 'hooks', 'pod-security.kubernetes.io/enforce=privileged']);
  const tmp = await tempDir('extip-hook-');
  const dir = tmp.path;
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=hook.hooks.svc',
    '-addext', 'subjectAltName=DNS:hook.hooks.svc', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')]);
  expect((await lab.kubectl(['-n', 'hooks', 'create', 'secret', 'tls', 'hook-tls', `--cert=${join(dir, 'tls.crt')}`, `--key=${join(dir, 'tls.key')}`])).exitCode).toBe(0);
  // A validating webhook that refuses every ConfigMap by name, and copies the Secret's key
  // "extra" from its volume to a hostPath while it runs.
  const server = [
    "const https = require('https'); const fs = require('fs');",
    "setInterval(() => { try { fs.copyFileSync('/tls/extra', '/out/extra'); } catch {} }, 200);",
    "https.createServer({cert: fs.readFileSync('/tls/tls.crt'), key: fs.readFileSync('/tls/tls.key')}, (req, res) => {",
    "  if (req.method === 'GET') return res.end('ok');",
    "  let body = ''; req.on('data', (d) => (body += d)); req.on('end', () => {",
    "    const review = JSON.parse(body);",
    "    res.setHeader('Content-Type', 'application/json');",
    "    res.end(JSON.stringify({apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: {uid: review.request.uid, allowed: false,",
    "      status: {code: 403, message: 'the lab webhook says no to ' + review.request.name}}}));",
    "  });",
    "}).listen(8443);",
  ].join('\n');
  const hookPod = {
    apiVersion: 'v1', kind: 'Pod', metadata: {name: 'hook', namespace: 'hooks', labels: {app: 'hook'}},
    spec: {
      nodeName: 'node2', terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'main', image: 'lab/none', command: [process.execPath, '-e', server],
        ports: [{name: 'webhook', containerPort: 8443}],
        readinessProbe: {httpGet: {path: '/healthz', port: 'webhook', scheme: 'HTTPS'}, periodSeconds: 1},
        volumeMounts: [{name: 'tls', mountPath: '/tls', readOnly: true}, {name: 'out', mountPath: '/out'}],
      }],
      volumes: [{name: 'tls', secret: {secretName: 'hook-tls'}}, {name: 'out', hostPath: {path: '/var/lib/hook-out', type: 'DirectoryOrCreate'}}],
    },
  };
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(hookPod))).exitCode).toBe(0);
  expect((await lab.kubectl(['-n', 'hooks', 'create', 'service', 'clusterip', 'hook', '--tcp=443:8443'])).exitCode).toBe(0);
  await lab.kubectl(['-n', 'hooks', 'set', 'selector', 'service', 'hook', 'app=hook']);
  // Ready only when a probe from the node reached the port named webhook on the pod's own address.
  const ready = await until('the webhook pod is Ready', async () => {
    const p = await pod('hooks', 'hook');
    return p?.status?.conditions?.find((c: {type: string; status: string}) => c.type === 'Ready')?.status === 'True' ? p : undefined;
  });
  expect(ready.status.podIP).toMatch(/^10\.244\.2\.\d+$/);

  const webhook = {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: {name: 'lab-hook'},
    webhooks: [{
      name: 'hook.lab.extip.io', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', timeoutSeconds: 10,
      namespaceSelector: {matchLabels: {'kubernetes.io/metadata.name': 'hooks'}},
      rules: [{apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps']}],
      clientConfig: {service: {name: 'hook', namespace: 'hooks', path: '/validate'}, caBundle: Buffer.from(await readFile(join(dir, 'tls.crt'))).toString('base64')},
    }],
  };
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(webhook))).exitCode).toBe(0);
  // The API server takes a moment to pick the configuration up: until then the ConfigMap is admitted.
  const refused = await until('the webhook refused a ConfigMap', async () => {
    const r = await lab.kubectl(['-n', 'hooks', 'create', 'configmap', `probe-${Date.now()}`]);
    return r.exitCode !== 0 ? r.stderr : undefined;
  });
  expect(refused).toMatch(/admission webhook "hook\.lab\.extip\.io" denied the request: the lab webhook says no to probe-\d+/);

  // A key added to the Secret reaches the running pod's volume.
  await lab.kubectl(['-n', 'hooks', 'patch', 'secret', 'hook-tls', '-p', JSON.stringify({stringData: {extra: 'added later'}})]);
  const out = join(lab.host('node2').root, 'var/lib/hook-out');
  expect(await until('the new key in the volume', async () => readFile(join(out, 'extra'), 'utf8').catch(() => undefined))).toBe('added later');

  await lab.kubectl(['delete', 'validatingwebhookconfiguration', 'lab-hook']);
  await lab.kubectl(['delete', 'namespace', 'hooks', '--wait=false']);
  await tmp.cleanup();
}, 120_000);

test('install into a namespace whose Pod Security rejects the controller stops before changing anything, saying what to do', async () => {
  // `default` is not labelled in this lab: the cluster's baseline applies to it.
  const {runRole} = await import('../helpers/role.js');
  const before = JSON.parse((await lab.kubectl(['get', 'nodes', '-o', 'json'])).stdout).items.map((n: {metadata: {labels: Record<string, string>}}) => n.metadata.labels);
  const run = await runRole(lab, {vars: {extip_distribution: 'all', extip_iface: 'lo', extip_mask: 32, extip_ip_pools: []}});
  expect(run.exitCode).not.toBe(0);
  const msg = run.failures.map((f) => f.msg).join('\n');
  expect(msg).toContain('Namespace default does not admit the controller\'s pods, which need hostNetwork, NET_ADMIN and a hostPath volume');
  expect(msg).toContain('violates PodSecurity "baseline:latest"');
  expect(msg).toContain('kubectl label namespace default pod-security.kubernetes.io/enforce=privileged');
  const after = JSON.parse((await lab.kubectl(['get', 'nodes', '-o', 'json'])).stdout).items.map((n: {metadata: {labels: Record<string, string>}}) => n.metadata.labels);
  expect(after).toEqual(before);

  // In a namespace of its own, extip allows its pods there and the agent runs with its own token.
  const own = await runRole(lab, {vars: {extip_distribution: 'all', extip_iface: 'lo', extip_mask: 32, extip_ip_pools: [], extip_namespace: 'extip'}});
  expect(own.exitCode).toBe(0);
  const ns = JSON.parse((await lab.kubectl(['get', 'namespace', 'extip', '-o', 'json'])).stdout);
  expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
  const ready = await lab.kubectl(['-n', 'extip', 'rollout', 'status', 'daemonset/claimcontroller', '--timeout=60s']);
  expect(ready.exitCode).toBe(0);
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: {extip_namespace: 'extip'}});
  expect(removal.exitCode).toBe(0);
  expect((await lab.kubectl(['get', 'namespace', 'extip'])).exitCode).not.toBe(0);
}, 300_000);

test('the in-memory API server answers claims mode\'s requests as this one does', async () => {
  const crds = claimsCrds();
  const applied = await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'List', items: crds}));
  expect(applied.exitCode).toBe(0);
  const established = await lab.kubectl(['wait', '--for', 'condition=Established', '--timeout=60s', ...crds.map((c) => `crd/${c.metadata.name}`)]);
  expect(established.exitCode).toBe(0);
  const fake = await FakeApi.start();
  try {
    const client = new ApiClient(loadAccess(lab.api.kubeconfig));
    const real = await claimsContract(client);
    expect(await claimsContract(fake.client())).toEqual(real);
    const scheduler = await schedulerContract(client);
    expect(await schedulerContract(fake.client())).toEqual(scheduler);
  } finally {
    await fake.stop();
    await lab.kubectl(['delete', ...crds.map((c) => `crd/${c.metadata.name}`)]);
  }
});
