/** ansible-doc shows every plugin of the role: its filters and its modules (the action plugins document themselves in library/). */
import {expect, test} from '@jest/globals';
import {readdirSync} from 'node:fs';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from '../helpers/ansible.js';

const role = join(repoRoot, 'roles/externalip');
const env = {ANSIBLE_FILTER_PLUGINS: join(role, 'filter_plugins'), ANSIBLE_LIBRARY: join(role, 'library'), ANSIBLE_NOCOLOR: '1'};

test('every filter of the role is documented, and ansible-doc shows each', async () => {
  const list = await execa('ansible-doc', ['-t', 'filter', '-l'], {env, reject: false});
  expect(list.exitCode).toBe(0);
  const ours = list.stdout.split('\n').filter((l) => /\bextip_/.test(l));
  // The role's filters, from the plugins themselves: each file's FilterModule.
  const files = readdirSync(join(role, 'filter_plugins')).filter((f) => f.endsWith('.py'));
  expect(files.length).toBeGreaterThan(0);
  expect(ours.length).toBeGreaterThanOrEqual(files.length);
  expect(ours.filter((l) => l.includes('UNDOCUMENTED'))).toEqual([]);
  const names = ours.map((l) => l.trim().split(/\s+/)[0].replace(/^ansible\.legacy\./, ''));
  const docs = await execa('ansible-doc', ['-t', 'filter', ...names], {env, reject: false});
  expect(docs.exitCode).toBe(0);
  for (const name of names) expect(docs.stdout).toContain(`> FILTER ${name} `);
});

test('every module and action plugin of the role is documented', async () => {
  const modules = [...new Set([...readdirSync(join(role, 'library')), ...readdirSync(join(role, 'action_plugins'))].filter((f) => f.endsWith('.py')).map((f) => f.replace(/\.py$/, '')))];
  const docs = await execa('ansible-doc', ['-t', 'module', ...modules], {env, reject: false});
  expect(docs.stderr).toBe('');
  expect(docs.exitCode).toBe(0);
  for (const name of modules) expect(docs.stdout).toContain(`> MODULE ${name} `);
});
