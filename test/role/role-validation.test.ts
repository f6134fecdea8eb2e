/**
 * The role rejects what the CLI rejects: every case of the rule table runs
 * through the role's argument_specs and tasks/validate.yml with real
 * ansible-playbook (one run, one inventory host per case).
 */
import {afterAll, beforeAll, expect, test} from '@jest/globals';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {findProblems} from '../../cli/validate.js';
import {repoRoot, runPlaybook, tempDir, writeYaml} from '../helpers/ansible.js';
import {ruleCases} from '../fixtures/rule-cases.js';

interface Case {
  host: string;
  label: string;
  vars: Record<string, unknown>;
  expectBad: boolean;
}

const cases: Case[] = [];
for (const c of ruleCases) {
  for (const [kind, values] of [['bad', c.bad], ['good', c.good]] as const) {
    values.forEach((value) => {
      cases.push({
        host: `case${cases.length}`,
        label: `${c.name}=${JSON.stringify(value)}${c.with ? ` with ${JSON.stringify(c.with)}` : ''} (${kind})`,
        vars: {...c.with, [c.name]: value},
        expectBad: kind === 'bad',
      });
    });
  }
}

const failedHosts = new Map<string, string>();
const okHosts = new Set<string>();
let dir: {path: string; cleanup: () => Promise<void>};

beforeAll(async () => {
  dir = await tempDir();
  const hosts = Object.fromEntries(
    cases.map((c) => [c.host, {ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3', ...c.vars}]),
  );
  // An etcd group, so that the etcd variables are checked too.
  await writeYaml(join(dir.path, 'inventory.yml'), {all: {hosts, children: {etcd: {hosts: {case0: null}}}}});
  await writeYaml(join(dir.path, 'validate.yml'), [
    {
      name: 'Validate',
      hosts: 'all',
      gather_facts: false,
      tasks: [{name: 'Run the role validation', 'ansible.builtin.import_role': {name: 'externalip', tasks_from: 'validate'}}],
    },
  ]);
  const events = join(dir.path, 'events.jsonl');
  const run = await runPlaybook(['-i', join(dir.path, 'inventory.yml'), join(dir.path, 'validate.yml'), '--forks', '20'], {
    ANSIBLE_CALLBACK_PLUGINS: join(repoRoot, 'playbooks', 'callback_plugins'),
    ANSIBLE_CALLBACKS_ENABLED: 'extip_events',
    EXTIP_EVENTS_FILE: events,
  });
  const lines = (await readFile(events, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const stats = lines.find((e) => e.event === 'stats') as {hosts: Record<string, {failed: number}>} | undefined;
  if (!stats) throw new Error(`ansible-playbook gave no summary (exit ${run.exitCode}): ${run.stderr || run.stdout}`);
  for (const [host, s] of Object.entries(stats.hosts)) {
    if (s.failed > 0) failedHosts.set(host, String(lines.find((e) => e.event === 'failed' && e.host === host)?.msg ?? ''));
    else okHosts.add(host);
  }
}, 300_000);

afterAll(async () => dir?.cleanup());

test('the CLI and the role agree on every case of the rule table', () => {
  const disagreements: string[] = [];
  for (const c of cases) {
    const cliBad = findProblems(c.vars as never).length > 0;
    const roleBad = failedHosts.has(c.host);
    if (!failedHosts.has(c.host) && !okHosts.has(c.host)) disagreements.push(`${c.label}: ansible did not report the host`);
    else if (cliBad !== c.expectBad || roleBad !== c.expectBad) {
      disagreements.push(`${c.label}: CLI ${cliBad ? 'rejects' : 'accepts'}, role ${roleBad ? `rejects (${failedHosts.get(c.host)})` : 'accepts'}`);
    }
  }
  expect(disagreements).toEqual([]);
});

test('the role names the variable and an example in its failure message', () => {
  const maskCase = cases.find((c) => c.label.startsWith('extip_mask=33'));
  expect(failedHosts.get(maskCase!.host)).toMatch(/extip_mask/);
  const poolCase = cases.find((c) => c.label.startsWith('extip_ip_pools=[{"name":"a","cidr":"10.0.0.0/24","ranges":[["10.0.0.50"'));
  expect(failedHosts.get(poolCase!.host)).toContain('pool 1: range 10.0.0.50-10.0.0.10 ends before it starts');
});

/** Runs the role's tasks_from file over an inventory of local hosts with real ansible-playbook; returns the events. */
async function roleEvents(inventory: unknown, tasksFrom: string): Promise<Array<{event: string; host: string; task: string; msg: string}>> {
  const d = await tempDir();
  try {
    await writeYaml(join(d.path, 'inventory.yml'), inventory);
    await writeYaml(join(d.path, 'play.yml'), [
      {name: 'Run', hosts: 'all', gather_facts: false, tasks: [{name: 'Run the role', 'ansible.builtin.import_role': {name: 'externalip', tasks_from: tasksFrom}}]},
    ]);
    const events = join(d.path, 'events.jsonl');
    await runPlaybook(['-i', join(d.path, 'inventory.yml'), join(d.path, 'play.yml')], {
      ANSIBLE_CALLBACK_PLUGINS: join(repoRoot, 'playbooks', 'callback_plugins'),
      ANSIBLE_CALLBACKS_ENABLED: 'extip_events',
      EXTIP_EVENTS_FILE: events,
    });
    return (await readFile(events, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } finally {
    await d.cleanup();
  }
}

const local = {ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3'};

/** Runs the role's preflight on one local host with these variables; returns the failed task's name and message. */
async function preflight(vars: Record<string, unknown>): Promise<{task: string; msg: string} | undefined> {
  const host = {...local, extip_kubectl: '/nonexistent/kubectl', ...vars};
  const lines = await roleEvents({all: {children: {kube_node: {hosts: {n1: host}}, kube_control_plane: {hosts: {n1: null}}}}}, 'preflight');
  const failed = lines.find((e) => e.event === 'failed');
  return failed ? {task: String(failed.task), msg: String(failed.msg)} : undefined;
}

test('claims mode on kubespray\'s IPVS kube-proxy without strict ARP is refused, saying what to set', async () => {
  const claims = {extip_distribution: 'balance', kube_proxy_mode: 'ipvs'};
  const [refused, strict, ecmp] = await Promise.all([
    preflight({...claims, kube_proxy_strict_arp: false}),
    preflight({...claims, kube_proxy_strict_arp: true}),
    preflight({extip_distribution: 'all', kube_proxy_mode: 'ipvs', kube_proxy_strict_arp: false}),
  ]);
  expect(refused?.task).toContain('Check the mode against kube-proxy, its timings, the image and the BGP speaker');
  expect(refused?.msg).toContain('Set kube_proxy_strict_arp: true');
  // Allowed: those runs go on to the next checks (and stop where this host has no cluster to ask).
  for (const run of [strict, ecmp]) expect(run?.task).not.toContain('Check the mode against');
  expect(strict?.task).toContain('Check the Kubernetes API');
  expect(strict?.msg).toContain('Cannot list nodes with /nonexistent/kubectl');
}, 120_000);

test('claims-mode timings that cannot work are refused before anything changes, saying which to change', async () => {
  const claims = {extip_distribution: 'balance'};
  const [slowHb, subSecondLease, fine] = await Promise.all([
    preflight({...claims, extip_ctrl_hb: '2s', extip_sched_monitor: '1500ms'}),
    preflight({...claims, extip_sched_lease_duration: '500ms'}),
    preflight({...claims, extip_ctrl_hb: '500ms', extip_sched_monitor: '2s', extip_sched_lease_duration: '15s'}),
  ]);
  expect(slowHb?.task).toContain('Check the mode against kube-proxy, its timings, the image and the BGP speaker');
  expect(slowHb?.msg).toContain('extip_sched_monitor (1500ms) must be longer than extip_ctrl_hb (2s)');
  expect(subSecondLease?.msg).toContain('extip_sched_lease_duration (500ms) must be at least 1s');
  expect(fine?.task).not.toContain('Check the mode against');
  expect(fine?.task).toContain('Check the Kubernetes API');
}, 120_000);

test('extip\'s BGP speaker outside ECMP mode, without peers or ranges, or beside Calico\'s export is refused, saying what to change', async () => {
  const peers = [{address: '10.210.1.1', asn: 64512}];
  const [claims, bare, calico, fine] = await Promise.all([
    preflight({extip_bgp_speaker: 'extip', extip_distribution: 'balance', extip_bgp_peers: peers, extip_external_cidrs: ['10.0.0.0/24']}),
    preflight({extip_bgp_speaker: 'extip', extip_distribution: 'all', extip_mask: 32}),
    preflight({extip_bgp_speaker: 'extip', extip_distribution: 'all', extip_mask: 32, extip_bgp_peers: peers, extip_external_cidrs: ['10.0.0.0/24'], extip_calico_export: 'etcd-v2-filter'}),
    preflight({extip_bgp_speaker: 'extip', extip_distribution: 'all', extip_mask: 32, extip_bgp_peers: peers, extip_external_cidrs: ['10.0.0.0/24']}),
  ]);
  expect(claims?.task).toContain('Check the mode against kube-proxy, its timings, the image and the BGP speaker');
  expect(claims?.msg).toContain('but extip_distribution is balance; set extip_distribution: all');
  expect(bare?.msg).toContain('extip_bgp_peers is empty');
  expect(bare?.msg).toContain('they hold no IPv4 range');
  expect(calico?.msg).toContain('extip_calico_export is etcd-v2-filter but extip_bgp_speaker is extip');
  expect(fine?.task).toContain('Check the Kubernetes API');
}, 120_000);

test('hosts other than the first are checked where a value a rule reads differs from the first host\'s', async () => {
  const v6 = {extip_ip_family: 'ipv6', extip_mask: 64};
  const hosts = {
    n1: {...local, ...v6},
    // extip_mask is the first host's, but the rule for it also reads extip_ip_family (ipv4 here).
    n2: {...local, extip_mask: 64},
    n3: {...local, ...v6},
    n4: {...local, ...v6, extip_iface: 'no such/iface'},
  };
  const lines = await roleEvents({all: {hosts}}, 'validate');
  const failed = Object.fromEntries(lines.filter((e) => e.event === 'failed').map((e) => [e.host, e.msg]));
  expect(Object.keys(failed).sort()).toEqual(['n2', 'n4']);
  expect(failed.n2).toContain('extip_mask = 64 is not valid');
  expect(failed.n4).toContain('extip_iface = "no such/iface" is not valid');
  expect(failed.n4).not.toContain('extip_mask');
}, 120_000);
