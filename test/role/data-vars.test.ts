/** Values given to the CLI are data: Jinja in them is never evaluated on the control machine. */
import {afterEach, beforeEach, expect, test} from '@jest/globals';
import {access, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {varsDocument} from '../../cli/ansible.js';
import {runPlaybook, tempDir} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';

let dir: {path: string; cleanup: () => Promise<void>};
beforeEach(async () => (dir = await tempDir()));
afterEach(async () => dir.cleanup());

const exists = (path: string) => access(path).then(() => true, () => false);

test('a Jinja lookup given with --set is refused (exit 2) and never runs', async () => {
  const mark = join(dir.path, 'ran');
  const r = await extip(['render', '--manifests', '--out', join(dir.path, 'out'), '--set', `extip_namespace="{{ lookup('pipe', 'touch ${mark}') }}"`]);
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('extip_namespace');
  expect(r.stderr).toContain('Jinja in them is not evaluated');
  expect(await exists(mark)).toBe(false);
});

test('the extra-vars file marks extip values !unsafe: real ansible-playbook prints them literally', async () => {
  const mark = join(dir.path, 'ran');
  const lookup = `{{ lookup('pipe', 'touch ${mark}') }}`;
  const vars = join(dir.path, 'vars.yml');
  await writeFile(vars, varsDocument({other: 'plain'}, {extip_calico_filter_v4: lookup, extip_ip_pools: [{name: 'a', cidr: lookup}]}));
  const play = join(dir.path, 'play.yml');
  await writeFile(play, '- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug:\n        msg: "{{ extip_calico_filter_v4 }} {{ extip_ip_pools[0].cidr }} {{ other }}"\n');
  const r = await runPlaybook(['-i', 'localhost,', '-c', 'local', '-e', `@${vars}`, play]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain(`"msg": "${lookup.replace(/'/g, "'")} ${lookup} plain"`);
  expect(await exists(mark)).toBe(false);
});
