/** ansible-lint (production profile) and yamllint on the role and playbooks. */
import {expect, test} from '@jest/globals';
import {execa} from 'execa';
import {repoRoot} from '../helpers/ansible.js';

test('yamllint passes on roles/ and playbooks/', async () => {
  const r = await execa('yamllint', ['-s', '-f', 'parsable', 'roles', 'playbooks'], {cwd: repoRoot, reject: false});
  expect([r.exitCode, r.stdout]).toEqual([0, '']);
});

test('ansible-lint (production profile) passes on roles/ and playbooks/', async () => {
  const r = await execa('ansible-lint', ['-q', '--nocolor', 'roles/externalip', 'playbooks'], {cwd: repoRoot, reject: false, env: {ANSIBLE_ROLES_PATH: `${repoRoot}/roles`}});
  expect([r.exitCode, r.stdout.trim()]).toEqual([0, '']);
}, 600_000);
