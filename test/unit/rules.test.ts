import {describe, expect, test} from '@jest/globals';
import {type Value, catalogue} from '../../lib/catalogue.js';
import {ValidationError} from '../../lib/errors.js';
import {patterns} from '../../lib/rules.js';
import {assertValid, findProblems} from '../../cli/validate.js';
import {ruleCases} from '../fixtures/rule-cases.js';

describe('every rejection rule has a bad value and a good neighbour', () => {
  for (const c of ruleCases) {
    const context = c.with ? ` (with ${JSON.stringify(c.with)})` : '';
    test.each(c.bad.map((v) => [JSON.stringify(v), v]))(`${c.name}${context} rejects %s`, (_label, value) => {
      const problems = findProblems({...c.with, [c.name]: value});
      expect(problems.map((p) => p.name)).toEqual([c.name]);
      expect(problems[0].rule.length).toBeGreaterThan(0);
      expect(problems[0].example.length).toBeGreaterThan(0);
    });
    test.each(c.good.map((v) => [JSON.stringify(v), v]))(`${c.name}${context} accepts %s`, (_label, value) => {
      expect(findProblems({...c.with, [c.name]: value})).toEqual([]);
    });
  }
});

test('every variable with a rule beyond its type is covered by the table', () => {
  const covered = new Set(ruleCases.map((c) => c.name));
  const uncovered = catalogue
    .filter((v) => !v.deprecated && !['extip_calico_filter_v6', 'extip_calico_filter_v6_enabled', 'extip_etcd_host', 'extip_pod_cidr', 'extip_sched_verbose', 'extip_sched_label', 'extip_sched_app', 'extip_kubectl', 'extip_etcdctl', 'extip_etcd_ca_file', 'extip_etcd_cert_file', 'extip_etcd_key_file'].includes(v.name))
    .map((v) => v.name)
    .filter((n) => !covered.has(n));
  expect(uncovered).toEqual([]);
});

test('unknown extip_ names are rejected with a suggestion', () => {
  const [problem] = findProblems({extip_ifcae: "lo"});
  expect(problem.hint).toBe('did you mean extip_iface?');
  expect(findProblems({extip_totally_new_thing: 1})[0].rule).toBe('not a variable extip knows');
});

test('a bad choice suggests the closest allowed value', () => {
  expect(findProblems({extip_distribution: 'balanse'})[0].hint).toBe('did you mean "balance"?');
});

test('Jinja expressions are left to Ansible', () => {
  expect(findProblems({extip_mask: '{{ my_mask }}', extip_iface: '{{ ansible_default_ipv4.interface }}'})).toEqual([]);
});

test('the old k8s_namespace name is accepted', () => {
  expect(findProblems({k8s_namespace: 'kube-system'})).toEqual([]);
});

test('all problems are reported at once, with name, value, rule and example', () => {
  let error: unknown;
  try {
    assertValid({extip_mask: 40, extip_iface: 'eth0;rm -rf /', extip_ctrl_hb: '5'});
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ValidationError);
  const message = (error as ValidationError).message;
  expect(message).toMatch(/^3 invalid variables/);
  expect(message).toContain('extip_mask: got 40');
  expect(message).toContain('example: extip_mask: 32');
  expect(message).toContain('extip_iface: got "eth0;rm -rf /"');
  expect(message).toContain('rule: a Go duration such as 500ms');
  expect((error as ValidationError).exitCode).toBe(2);
});

test('every default in the catalogue passes its own rule', () => {
  const defaults = Object.fromEntries(catalogue.map((v) => [v.name, v.default]));
  expect(findProblems(defaults)).toEqual([]);
});

// What an example needs of the other variables to hold (the rules that relate several).
const companions: Record<string, Record<string, Value>> = {
  extip_bgp_speaker: {extip_distribution: 'all', extip_mask: 32, extip_bgp_peers: [{address: '10.210.1.1', asn: 64512}], extip_external_cidrs: ['10.0.0.0/24']},
};

test('every example in the catalogue passes its own rule', () => {
  for (const v of catalogue) {
    expect([v.name, findProblems({...companions[v.name], [v.name]: v.example})]).toEqual([v.name, []]);
  }
});

test('no pattern holds a backslash (Ansible would re-escape it inside the role)', () => {
  expect(Object.entries(patterns).filter(([, p]) => p.includes('\\'))).toEqual([]);
});

test('no rule\'s words hold an apostrophe: the role pastes them into single-quoted Jinja strings of its error messages', () => {
  const quoted = catalogue.filter((v) => v.rule && v.rule.describe.includes("'")).map((v) => v.name);
  expect(quoted).toEqual([]);
});
