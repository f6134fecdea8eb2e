/** A throwaway CA and certificates made with openssl, for the lab's TLS. */
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';

export interface Cert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface Pki {
  caFile: string;
  caKeyFile: string;
  ca: string;
  /** A certificate signed by the CA; `subject` is an openssl -subj (default /CN=<name>). */
  issue(name: string, opts: {ips?: string[]; dns?: string[]; client?: boolean; subject?: string}): Promise<Cert>;
}

export async function createPki(dir: string): Promise<Pki> {
  const caKey = join(dir, 'ca-key.pem');
  const caFile = join(dir, 'ca.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=extip-lab-ca', '-keyout', caKey, '-out', caFile]);
  const ca = await readFile(caFile, 'utf8');
  return {
    caFile,
    caKeyFile: caKey,
    ca,
    async issue(name, {ips = [], dns = [], client = false, subject}) {
      const keyFile = join(dir, `${name}-key.pem`);
      const certFile = join(dir, `${name}.pem`);
      const csr = join(dir, `${name}.csr`);
      const ext = join(dir, `${name}.ext`);
      const san = [...ips.map((ip) => `IP:${ip}`), ...dns.map((d) => `DNS:${d}`)].join(',');
      await execa('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subject ?? `/CN=${name}`, '-keyout', keyFile, '-out', csr]);
      const {writeFile} = await import('node:fs/promises');
      await writeFile(ext, `${san ? `subjectAltName=${san}\n` : ''}extendedKeyUsage=${client ? 'clientAuth' : 'serverAuth,clientAuth'}\n`);
      await execa('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', certFile]);
      return {cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8'), certFile, keyFile};
    },
  };
}
