/** Runs the built CLI as a user types it. */
import {execa} from 'execa';
import {join} from 'node:path';
import {repoRoot} from './ansible.js';

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function extip(args: string[], options: {cwd?: string; env?: Record<string, string>} = {}): Promise<CliRun> {
  // Node is named explicitly, so that tests may run the CLI with a PATH that lacks programs.
  const result = await execa(process.execPath, [join(repoRoot, 'bin', 'run.js'), ...args], {
    reject: false,
    cwd: options.cwd ?? repoRoot,
    env: {NO_COLOR: '1', ...options.env},
  });
  return {exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr};
}
