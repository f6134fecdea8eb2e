/** The files derived from the catalogue must be what it generates now. */
import {expect, test} from '@jest/globals';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {catalogue} from '../../lib/catalogue.js';
import {generatedFiles} from '../../tools/derived.js';
import {parseYaml} from '../../cli/yamlio.js';
import {repoRoot} from '../helpers/ansible.js';

test.each(['roles/externalip/defaults/main.yml', 'roles/externalip/meta/argument_specs.yml', 'roles/externalip/tasks/validate.yml', 'README.md'])(
  '%s matches the catalogue (run `npm run generate` after editing lib/catalogue.ts)',
  async (path) => {
    const file = (await generatedFiles()).find((f) => f.path === path);
    expect(file).toBeDefined();
    expect(await readFile(join(repoRoot, path), 'utf8')).toBe(file!.content);
  },
);

test('defaults/main.yml holds every variable with its default, read as Ansible reads it', async () => {
  const defaults = parseYaml(await readFile(join(repoRoot, 'roles/externalip/defaults/main.yml'), 'utf8'), 'defaults') as Record<string, unknown>;
  expect(Object.keys(defaults).sort()).toEqual(catalogue.map((v) => v.name).sort());
  for (const v of catalogue) expect([v.name, defaults[v.name]]).toEqual([v.name, v.default]);
});

test('the original Kargo role variables keep their names and defaults', async () => {
  const original = {
    extip_node_label: 'externalip', extip_image_repo: 'mirantis/k8s-externalipcontroller', extip_image_tag: 'release-0.2.1',
    extip_distribution: 'balance', extip_mask: 24, extip_iface: 'eth0', extip_ctrl_app: 'claimcontroller',
    extip_ctrl_app_kind: 'Deployment', extip_ctrl_replicas: 1, extip_ctrl_label: 'externalipcontroller',
    extip_ctrl_image_pull_policy: 'IfNotPresent', extip_ctrl_verbose: 5, extip_ctrl_hb: '500ms',
    extip_ctrl_hostname: '{{ ansible_hostname }}', extip_sched_app: 'claimscheduler', extip_sched_label: 'claimscheduler',
    extip_sched_image_pull_policy: 'IfNotPresent', extip_sched_replicas: 2, extip_sched_verbose: 5,
    extip_sched_leader_elect: 'true', extip_sched_monitor: '2s',
  };
  // Defaults changed on purpose, each saying so in its description: 2s of heartbeat timeout made failover 1.9 to 2.3 s.
  // The image: extip's own, built by npm run image, tagged with its version.
  const version = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')).version;
  // The controller: a DaemonSet, so that claims mode has a node to fail over to and ECMP announces from every labelled node.
  const changed: Record<string, unknown> = {extip_ctrl_app_kind: 'DaemonSet', extip_sched_monitor: '1500ms', extip_image_repo: 'ghcr.io/extip/ipmanager', extip_image_tag: version};
  for (const [name, value] of Object.entries(original)) {
    const v = catalogue.find((c) => c.name === name);
    expect([name, v?.default, v?.since]).toEqual([name, changed[name] ?? value, 'kargo']);
    if (name in changed) expect(v?.description).toContain(`The original role had ${String(value)}.`);
  }
  expect(catalogue.find((c) => c.name === 'extip_namespace')?.aliases).toEqual(['k8s_namespace']);
});

test('argument_specs lists every variable that is in use, with its type', async () => {
  const specs = parseYaml(await readFile(join(repoRoot, 'roles/externalip/meta/argument_specs.yml'), 'utf8'), 'specs') as {
    argument_specs: {main: {options: Record<string, {type: string; choices?: string[]}>}};
  };
  const options = specs.argument_specs.main.options;
  for (const v of catalogue.filter((c) => !c.deprecated)) {
    expect([v.name, options[v.name]?.type]).toEqual([v.name, v.rule.specType]);
    if (v.rule.choices) expect(options[v.name].choices).toEqual(v.rule.choices);
  }
});
