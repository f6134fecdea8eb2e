/** Where ipmanager and the CLI find the API server and its credentials (agent/kubeconfig.ts, lib/kubeconfig.ts, cli/kube.ts). */
import {afterEach, beforeEach, describe, expect, test} from '@jest/globals';
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import YAML from 'yaml';
import {KubeconfigError, loadAccess} from '../../agent/kubeconfig.js';
import {loadKubeConfig} from '../../cli/kube.js';
import {defaultKubeconfigFiles, mergeKubeconfigs} from '../../lib/kubeconfig.js';

let dir: string;
const saved = {KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT};
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'extip-kubeconfig-'));
  process.env.HOME = dir;
  delete process.env.KUBECONFIG;
  delete process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_PORT;
});
afterEach(async () => {
  for (const [k, v] of Object.entries({KUBECONFIG: saved.KUBECONFIG, HOME: saved.HOME, KUBERNETES_SERVICE_HOST: saved.host, KUBERNETES_SERVICE_PORT: saved.port})) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(dir, {recursive: true, force: true});
});

function config(cluster: object, user: object, current = 'c'): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': current,
    contexts: [{name: 'other', context: {cluster: 'x', user: 'x'}}, {name: 'c', context: {cluster: 'k', user: 'u'}}],
    clusters: [{name: 'x', cluster: {server: 'https://wrong:1'}}, {name: 'k', cluster}],
    users: [{name: 'x', user: {token: 'wrong'}}, {name: 'u', user}],
  });
}

test('the current context picks the cluster and user; inline data is base64', async () => {
  const path = join(dir, 'admin.conf');
  await writeFile(path, config({server: 'https://10.0.0.1:6443/', 'certificate-authority-data': Buffer.from('CA').toString('base64')}, {'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key-data': Buffer.from('KEY').toString('base64')}));
  const a = loadAccess(path);
  expect([a.server, a.ca?.toString(), a.cert?.toString(), a.key?.toString(), a.token(), a.insecure]).toEqual(['https://10.0.0.1:6443', 'CA', 'CERT', 'KEY', undefined, false]);
});

test('files are read relative to the kubeconfig; a token is sent as it is', async () => {
  await mkdir(join(dir, 'pki'));
  await writeFile(join(dir, 'pki', 'ca.crt'), 'FILE-CA');
  await writeFile(join(dir, 'kc'), config({server: 'https://h:1', 'certificate-authority': 'pki/ca.crt', 'insecure-skip-tls-verify': true}, {token: 'T0K'}));
  process.env.KUBECONFIG = `${join(dir, 'missing')}:${join(dir, 'kc')}`;
  const a = loadAccess();
  expect([a.ca?.toString(), a.token(), a.insecure]).toEqual(['FILE-CA', 'T0K', true]);
});

test('~/.kube/config when nothing else is given', async () => {
  await mkdir(join(dir, '.kube'));
  await writeFile(join(dir, '.kube', 'config'), config({server: 'https://home:6443'}, {}));
  expect(loadAccess().server).toBe('https://home:6443');
});

test('in a pod: the Service environment, IPv6 hosts in brackets', () => {
  process.env.KUBERNETES_SERVICE_HOST = 'fd00::1';
  process.env.KUBERNETES_SERVICE_PORT = '443';
  expect(loadAccess().server).toBe('https://[fd00::1]:443');
});

test('what cannot work is said: no config at all, a plugin, a missing context', async () => {
  expect(() => loadAccess()).toThrow(KubeconfigError);
  const path = join(dir, 'exec.conf');
  await writeFile(path, config({server: 'https://h:1'}, {exec: {command: 'aws'}}));
  expect(() => loadAccess(path)).toThrow(/exec or auth-provider plugin/);
  await writeFile(path, config({server: 'https://h:1'}, {}, 'nope'));
  expect(() => loadAccess(path)).toThrow(/no context named nope/);
});

describe('KUBECONFIG as a list, merged as client-go merges it', () => {
  // a: current-context a, cluster "shared" at https://a, user "u" with a CA file relative to a's directory.
  // b: current-context b, clusters "shared" (https://b, ignored: a named it first) and "only-b", user "u" (ignored) and "ub".
  async function twoFiles(): Promise<{a: string; b: string}> {
    await mkdir(join(dir, 'one', 'pki'), {recursive: true});
    await mkdir(join(dir, 'two'));
    await writeFile(join(dir, 'one', 'pki', 'ca.crt'), 'CA-OF-ONE');
    const a = join(dir, 'one', 'config');
    const b = join(dir, 'two', 'config');
    await writeFile(a, YAML.stringify({
      'current-context': 'a',
      contexts: [{name: 'a', context: {cluster: 'shared', user: 'u'}}],
      clusters: [{name: 'shared', cluster: {server: 'https://a:6443', 'certificate-authority': 'pki/ca.crt'}}],
      users: [{name: 'u', user: {token: 'from-a'}}],
    }));
    await writeFile(b, YAML.stringify({
      'current-context': 'b',
      contexts: [{name: 'a', context: {cluster: 'only-b', user: 'ub'}}, {name: 'b', context: {cluster: 'only-b', user: 'ub'}}],
      clusters: [{name: 'shared', cluster: {server: 'https://b:6443'}}, {name: 'only-b', cluster: {server: 'https://only-b:6443'}}],
      users: [{name: 'u', user: {token: 'from-b'}}, {name: 'ub', user: {token: 'ub'}}],
    }));
    return {a, b};
  }

  test('the first file to name a context, cluster or user, or to set current-context, wins it; paths are relative to their own file', async () => {
    const {a, b} = await twoFiles();
    process.env.KUBECONFIG = [join(dir, 'missing'), a, '', b].join(':');
    const merged = mergeKubeconfigs(defaultKubeconfigFiles());
    expect(merged.sources).toEqual([a, b]);
    expect(merged['current-context']).toBe('a');
    expect(merged.clusters.map((c) => [c.name, (c.cluster as any).server])).toEqual([['shared', 'https://a:6443'], ['only-b', 'https://only-b:6443']]);
    const access = loadAccess();
    expect([access.server, access.token(), access.ca?.toString()]).toEqual(['https://a:6443', 'from-a', 'CA-OF-ONE']);
    // The other order: b's current context, its own cluster and user.
    process.env.KUBECONFIG = `${b}:${a}`;
    const other = loadAccess();
    expect([other.server, other.token()]).toEqual(['https://only-b:6443', 'ub']);
  });

  test('the CLI reads the same cluster as the agent (client-node alone would throw on the names both files use)', async () => {
    const {a, b} = await twoFiles();
    process.env.KUBECONFIG = `${a}:${b}`;
    const kc = loadKubeConfig();
    expect([kc.getCurrentCluster()?.server, kc.getCurrentUser()?.token, kc.getCurrentCluster()?.caFile]).toEqual(['https://a:6443', 'from-a', join(dir, 'one', 'pki', 'ca.crt')]);
  });

  test('KUBECONFIG set: ~/.kube/config is not read, even when none of its files exists', async () => {
    await mkdir(join(dir, '.kube'));
    await writeFile(join(dir, '.kube', 'config'), config({server: 'https://home:6443'}, {}));
    process.env.KUBECONFIG = join(dir, 'missing');
    expect(defaultKubeconfigFiles()).toEqual([]);
    expect(() => loadAccess()).toThrow(/not in a pod/);
    expect(() => loadKubeConfig()).toThrow(/none of the files in KUBECONFIG exists/);
  });
});
