/** Runs the real ansible-playbook for tests. */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import YAML from 'yaml';

import {repoRoot} from './root.js';

export {repoRoot};

export interface PlaybookRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function ansibleEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ANSIBLE_ROLES_PATH: join(repoRoot, 'roles'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_RETRY_FILES_ENABLED: '0',
    ANSIBLE_HOST_KEY_CHECKING: '0',
    ANSIBLE_LOCALHOST_WARNING: '0',
    ANSIBLE_INVENTORY_UNPARSED_WARNING: '0',
    ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
    ...extra,
  };
}

export async function runPlaybook(args: string[], env: Record<string, string> = {}): Promise<PlaybookRun> {
  const result = await execa('ansible-playbook', args, {env: ansibleEnv(env), reject: false, cwd: repoRoot});
  return {exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr};
}

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(prefix = 'extip-test-'): Promise<{path: string; cleanup: () => Promise<void>}> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {path, cleanup: () => rm(path, {recursive: true, force: true})};
}

export async function writeYaml(path: string, data: unknown): Promise<void> {
  await writeFile(path, YAML.stringify(data));
}
