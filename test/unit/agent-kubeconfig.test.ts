/** Where ipmanager finds the API server and its credentials (agent/kubeconfig.ts). */
import {afterEach, beforeEach, expect, test} from '@jest/globals';
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import YAML from 'yaml';
import {KubeconfigError, loadAccess} from '../../agent/kubeconfig.js';

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
