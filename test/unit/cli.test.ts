/** The built CLI's help and version, as a user sees them. */
import {expect, test} from '@jest/globals';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {repoRoot} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';

test('--version prints name, version, platform and Node', async () => {
  const {version} = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));
  const run = await extip(['--version']);
  expect(run.exitCode).toBe(0);
  expect(run.stdout).toBe(`extip/${version} ${process.platform}-${process.arch} node-${process.version}`);
});

test('--help lists the commands with their summaries', async () => {
  const run = await extip(['--help']);
  expect(run.exitCode).toBe(0);
  expect(run.stdout).toMatch(/render\s+Write the externalip role/);
  expect(run.stdout).toMatch(/init\s+Write a starter inventory/);
});

test.each(['render', 'init'])('%s --help has a summary, flags and examples', async (command) => {
  const run = await extip([command, '--help']);
  expect(run.exitCode).toBe(0);
  expect(run.stdout).toContain('USAGE');
  expect(run.stdout).toContain('EXAMPLES');
  expect(run.stdout).toContain(`extip ${command}`);
});

test('an unknown command is a usage error', async () => {
  const run = await extip(['frobnicate']);
  expect(run.exitCode).toBe(2);
  expect(run.stderr).toContain('frobnicate');
});
