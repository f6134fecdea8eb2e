/**
 * `extip render --manifests`: the Kubernetes manifests install would apply,
 * rendered by the role's own templates (through Ansible, so they cannot drift)
 * into a directory, for review or GitOps.
 */
import {randomBytes} from 'node:crypto';
import {mkdir, readFile, readdir, rename, rm, stat} from 'node:fs/promises';
import {basename, dirname, join, resolve} from 'node:path';
import {checkAnsible, runPlaybook} from './ansible.js';
import {CommandError, UserError, tail} from '../lib/errors.js';
import type {ResolvedVariables} from './loader.js';
import YAML from 'yaml';

export async function renderManifests(out: string, vars: ResolvedVariables, inventory: string | undefined, ansiblePlaybook?: string): Promise<string[]> {
  const existing = await stat(out).catch(() => undefined);
  if (existing && (!existing.isDirectory() || (await readdir(out)).length)) {
    throw new UserError(`--out ${out} exists and is not an empty directory`, 'choose a new or empty directory for the manifests');
  }
  await checkAnsible(ansiblePlaybook);
  const target = resolve(out);
  const staging = join(dirname(target), `.${basename(target)}.tmp-${randomBytes(4).toString('hex')}`);
  try {
    const result = await runPlaybook({
      playbook: 'externalip-manifests.yml',
      inventory: inventory ?? 'localhost,',
      extraVars: {...vars.passthrough, extip__render_dir: staging},
      dataVars: vars.fromFlags,
      binary: ansiblePlaybook,
    });
    if (result.exitCode !== 0 || result.failures.length) {
      const f = result.failures[0];
      throw new CommandError('ansible-playbook', ['externalip-manifests.yml'], result.exitCode, f ? `${f.task}: ${f.message}` : tail(result.outputTail), 'rendering the manifests failed');
    }
    const files = (await readdir(staging)).sort();
    // What we write must be Kubernetes objects, one per document.
    for (const file of files) {
      const docs = YAML.parseAllDocuments(await readFile(join(staging, file), 'utf8'));
      for (const doc of Array.isArray(docs) ? docs : [docs]) {
        const obj = doc.toJS() as {apiVersion?: string; kind?: string; metadata?: {name?: string}} | null;
        if (obj === null) continue;
        if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) throw new Error(`internal: ${file} holds a document that is not a Kubernetes object`);
      }
    }
    if (existing) await rm(target, {recursive: true, force: true});
    await mkdir(dirname(target), {recursive: true});
    await rename(staging, target);
    return files;
  } finally {
    await rm(staging, {recursive: true, force: true});
  }
}
