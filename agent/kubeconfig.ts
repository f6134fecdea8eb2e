/**
 * Where the agent finds the API server and its credentials, found the way
 * client-go looks: --kubeconfig; else the files of $KUBECONFIG merged
 * (lib/kubeconfig.ts); else ~/.kube/config; else in-cluster (the Service's
 * KUBERNETES_SERVICE_HOST/PORT, the pod's service-account token and CA). A
 * kubeconfig may give the CA, client certificate and key inline or as files,
 * a bearer token or a token file. Exec and auth-provider plugins are not
 * supported: the agent runs in a pod, where the token is what it needs.
 *
 * Loading @kubernetes/client-node for this cost the agent about 0.5 s of CPU
 * at every start (it loads its whole generated API); on a node that starts
 * many pods at once, that is time taken from them.
 */
import {existsSync, readFileSync} from 'node:fs';
import {join} from 'node:path';
import {currentOf, defaultKubeconfigFiles, KubeconfigError, mergeKubeconfigs, readKubeconfig, type KubeconfigDoc} from '../lib/kubeconfig.js';

export {KubeconfigError};

export interface ApiAccess {
  /** https://host:port, no trailing slash. */
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Skip verifying the server's certificate (insecure-skip-tls-verify). */
  insecure: boolean;
  /** The bearer token for the next request, if any (a token file is read again after a minute: projected tokens rotate). */
  token(): string | undefined;
}

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The access --kubeconfig (or, without it, the default lookup) gives. */
export function loadAccess(path?: string): ApiAccess {
  if (path) return fromDoc(readKubeconfig(path));
  const files = defaultKubeconfigFiles();
  if (files.length) return fromDoc(mergeKubeconfigs(files));
  return inCluster();
}

function inCluster(): ApiAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeconfigError('no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not in a pod (KUBERNETES_SERVICE_HOST is not set)');
  }
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const caFile = join(SERVICE_ACCOUNT, 'ca.crt');
  return {server, ca: existsSync(caFile) ? readFileSync(caFile) : undefined, insecure: false, token: tokenFile(join(SERVICE_ACCOUNT, 'token'))};
}

function tokenFile(path: string): () => string | undefined {
  let cached: {token: string; at: number} | undefined;
  return () => {
    if (!cached || Date.now() - cached.at > 60_000) cached = {token: readFileSync(path, 'utf8').trim(), at: Date.now()};
    return cached.token;
  };
}

function fromDoc(doc: KubeconfigDoc): ApiAccess {
  const where = doc.sources.join(':');
  const {cluster, user} = currentOf(doc);
  if (user.exec || user['auth-provider']) {
    throw new KubeconfigError(`the kubeconfig ${where} authenticates with an exec or auth-provider plugin, which ipmanager does not run; give it a token or a client certificate`);
  }
  // Paths are absolute already (lib/kubeconfig.ts resolves them against their file).
  const data = (inline: unknown, file: unknown): Buffer | undefined => {
    if (typeof inline === 'string' && inline) return Buffer.from(inline, 'base64');
    if (typeof file === 'string' && file) return readFileSync(file);
    return undefined;
  };
  if (typeof cluster.server !== 'string' || !cluster.server) throw new KubeconfigError(`the kubeconfig ${where} names no server for its cluster`);
  const token = typeof user.token === 'string' && user.token ? () => user.token as string : typeof user.tokenFile === 'string' ? tokenFile(user.tokenFile) : () => undefined;
  return {
    server: cluster.server.replace(/\/$/, ''),
    ca: data(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: data(user['client-certificate-data'], user['client-certificate']),
    key: data(user['client-key-data'], user['client-key']),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    token,
  };
}
