/** Starts the fake API server over TLS and writes real kubeconfigs for it. */
import {randomBytes} from 'node:crypto';
import {writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import YAML from 'yaml';
import {FakeApiServer} from './apiserver/server.js';
import {createPki, type Pki} from './pki.js';

export interface LabApi {
  server: FakeApiServer;
  pki: Pki;
  /** kubeconfig for this machine's root namespace (https://127.0.0.1:<port>). */
  kubeconfig: string;
  /** kubeconfig for the hosts' namespaces (https://127.0.0.1:6443, forwarded to the socket). */
  hostKubeconfig: string;
  socketPath: string;
  token: string;
  stop(): Promise<void>;
}

export function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{name: 'lab', cluster: {server, 'certificate-authority': caFile}}],
    users: [{name: 'lab-admin', user: {token}}],
    contexts: [{name: 'lab', context: {cluster: 'lab', user: 'lab-admin'}}],
    'current-context': 'lab',
  });
}

export async function startApi(dir: string): Promise<LabApi> {
  const pki = await createPki(dir);
  const serving = await pki.issue('apiserver', {ips: ['127.0.0.1'], dns: ['localhost', 'kubernetes']});
  const token = randomBytes(16).toString('hex');
  const socketPath = join(dir, 'api.sock');
  const server = new FakeApiServer({cert: serving.cert, key: serving.key, token, socketPath});
  await server.start();
  const kubeconfig = join(dir, 'kubeconfig');
  const hostKubeconfig = join(dir, 'kubeconfig-hosts');
  await writeFile(kubeconfig, kubeconfigYaml(server.url, pki.caFile, token), {mode: 0o600});
  await writeFile(hostKubeconfig, kubeconfigYaml('https://127.0.0.1:6443', pki.caFile, token), {mode: 0o600});
  return {server, pki, kubeconfig, hostKubeconfig, socketPath, token, stop: () => server.stop()};
}
