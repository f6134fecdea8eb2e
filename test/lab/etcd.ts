/**
 * etcd as Calico v2's datastore: Debian's etcd-server with the v2 API, TLS and
 * client certificates, on the first etcd host (node1), with the certificates
 * where Kargo puts them (under that host's /etc/ssl/etcd/ssl).
 */
import {copyFile, mkdir} from 'node:fs/promises';
import {join} from 'node:path';
import type {Daemon} from './procs.js';
import type {Lab, LabHost} from './lab.js';

export interface LabEtcd {
  host: LabHost;
  endpoint: string;
  daemon: Daemon;
  /** etcdctl's argv up to the command (v2 API, endpoint, TLS with `on`'s client certificate). */
  etcdctlArgv(on?: string): string[];
  /** Runs etcdctl (v2 API, TLS) on a host; the client certificate is that host's. */
  etcdctl(args: string[], host?: string, input?: string): Promise<{exitCode: number; stdout: string; stderr: string}>;
  /** Every key and value, and every directory (for snapshots). */
  keys(): Promise<Record<string, string>>;
}

export function certDir(h: LabHost): string {
  return join(h.root, 'etc/ssl/etcd/ssl');
}

export async function startEtcd(lab: Lab): Promise<LabEtcd> {
  const host = lab.hosts[0];
  const dir = certDir(host);
  await mkdir(dir, {recursive: true});
  const server = await lab.api.pki.issue('etcd-member', {ips: ['127.0.0.1', host.ip], dns: ['localhost', host.name]});
  // Kargo issues admin-<host> certificates on the etcd hosts and node-<host> ones on the nodes.
  for (const h of lab.hosts) {
    const d = certDir(h);
    await mkdir(d, {recursive: true});
    await copyFile(lab.api.pki.caFile, join(d, 'ca.pem'));
    const admin = await lab.api.pki.issue(`admin-${h.name}`, {client: true});
    await copyFile(admin.certFile, join(d, `admin-${h.name}.pem`));
    await copyFile(admin.keyFile, join(d, `admin-${h.name}-key.pem`));
  }
  await copyFile(server.certFile, join(dir, `member-${host.name}.pem`));
  await copyFile(server.keyFile, join(dir, `member-${host.name}-key.pem`));
  const endpoint = `https://${host.ip}:2379`;
  const daemon = lab.startIn(host.name, 'etcd', [
    '--name', host.name,
    '--data-dir', join(lab.dir, 'etcd-data'),
    '--listen-client-urls', `https://127.0.0.1:2379,${endpoint}`,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', 'http://127.0.0.1:2380',
    '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
    '--initial-cluster', `${host.name}=http://127.0.0.1:2380`,
    '--enable-v2=true',
    '--cert-file', join(dir, `member-${host.name}.pem`),
    '--key-file', join(dir, `member-${host.name}-key.pem`),
    '--trusted-ca-file', join(dir, 'ca.pem'),
    '--client-cert-auth',
    '--log-level', 'warn',
  ]);

  const etcdctlArgv = (on = host.name) => {
    const d = certDir(lab.host(on));
    return ['ETCDCTL_API=2', 'etcdctl', '--endpoints', endpoint, '--ca-file', join(d, 'ca.pem'), '--cert-file', join(d, `admin-${on}.pem`), '--key-file', join(d, `admin-${on}-key.pem`)];
  };
  const etcdctl = async (args: string[], on = host.name, input?: string) => {
    const r = await lab.exec(on, 'env', [...etcdctlArgv(on), ...args], input);
    return {exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr};
  };

  const deadline = Date.now() + 15000;
  for (;;) {
    const r = await etcdctl(['ls', '/']);
    if (r.exitCode === 0) break;
    if (Date.now() > deadline || daemon.child.exitCode !== null) throw new Error(`etcd did not start: ${r.stderr}\n${daemon.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    host,
    endpoint,
    daemon,
    etcdctlArgv,
    etcdctl,
    async keys() {
      const list = await etcdctl(['ls', '--recursive', '-p', '/']);
      const out: Record<string, string> = {};
      for (const key of list.stdout.split('\n').filter(Boolean)) {
        // Directories count too: an empty one left behind is something left behind.
        out[key] = key.endsWith('/') ? '(directory)' : (await etcdctl(['get', key])).stdout;
      }
      return out;
    },
  };
}
