/**
 * `extip doctor`: checks before an install, changing nothing. Each check says
 * pass or fail and, on fail, what to do.
 */
import {wantedAddresses} from './services.js';
import {nodeNames} from './nodes.js';
import {groupHosts, groupNames} from './role.js';
import type {KubeConfig} from '@kubernetes/client-node';
import {ANSIBLE_INSTALL_HINT, type AnsibleEvent, checkAnsible, runPlaybook} from './ansible.js';
import type {Value} from '../lib/catalogue.js';
import {checkCalicoFilters} from './bird.js';
import {ExtipError} from '../lib/errors.js';
import {type Cidr, isCidr, parseCidr, parseIp} from '../lib/ipnet.js';
import {type ClusterState, readCluster} from './kube.js';
import {type ResolvedVariables} from './loader.js';
import {run} from '../lib/run.js';
import {findProblems, isJinja} from './validate.js';
import {rangeErrors} from '../lib/ranges.js';
import {nodeAddresses} from '../lib/policy.js';
import {toBool} from '../lib/rules.js';
import {assess} from './status.js';
import {controllerCount, failoverErrors} from '../lib/failover.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

interface Inventory {
  groups: Record<string, string[]>;
  hostvars: Record<string, Record<string, Value>>;
}

async function readInventory(path: string): Promise<Inventory> {
  const r = await run('ansible-inventory', ['-i', path, '--list'], {installHint: 'it comes with ansible-core'});
  if (r.exitCode !== 0) throw new Error(r.stderr.trim().split('\n').slice(-3).join(' '));
  const data = JSON.parse(r.stdout) as Record<string, {hosts?: string[]; children?: string[]; hostvars?: Record<string, Record<string, Value>>}> & {_meta?: {hostvars?: Record<string, Record<string, Value>>}};
  const groups: Record<string, string[]> = {};
  const hostsOf = (g: string, seen = new Set<string>()): string[] => {
    if (seen.has(g)) return [];
    seen.add(g);
    const entry = data[g] ?? {};
    return [...(entry.hosts ?? []), ...(entry.children ?? []).flatMap((c) => hostsOf(c, seen))];
  };
  for (const g of Object.keys(data)) if (g !== '_meta') groups[g] = [...new Set(hostsOf(g))];
  return {groups, hostvars: data._meta?.hostvars ?? {}};
}

/** Resolves the `{{ name | default('x') }}` defaults extip uses, against a host's variables. */
function resolveDefault(value: Value, hostvars: Record<string, Value>): Value {
  if (!isJinja(value)) return value;
  const m = /^\{\{\s*(\w+)\s*\|\s*default\('([^']*)'\)\s*\}\}$/.exec(String(value));
  if (!m) return value;
  return hostvars[m[1]] ?? m[2];
}

export interface DoctorOptions {
  inventory: string;
  vars: ResolvedVariables;
  kubeconfig: () => KubeConfig;
  ansiblePlaybook?: string;
}

export async function doctor(options: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const {vars} = options;

  try {
    const version = await checkAnsible(options.ansiblePlaybook);
    add({name: 'ansible-playbook', ok: true, detail: `ansible-core ${version}`});
  } catch (err) {
    add({name: 'ansible-playbook', ok: false, detail: (err as Error).message, fix: ANSIBLE_INSTALL_HINT});
  }

  let inventory: Inventory | undefined;
  try {
    inventory = await readInventory(options.inventory);
    add({name: 'inventory', ok: true, detail: `${options.inventory} parses (${Object.keys(inventory.hostvars).length} hosts)`});
  } catch (err) {
    add({name: 'inventory', ok: false, detail: `ansible-inventory cannot read ${options.inventory}: ${(err as Error).message}`, fix: 'fix the inventory so that ansible-inventory --list reads it'});
  }
  const nodesGroup = inventory ? groupHosts(inventory.groups, 'node') : [];
  const cpGroup = inventory ? groupHosts(inventory.groups, 'control_plane') : [];
  const [nodeNamesText, cpNamesText] = [groupNames.node.join('/'), groupNames.control_plane.join('/')];
  if (inventory) {
    const ok = nodesGroup.length > 0 && cpGroup.length > 0;
    add({
      name: 'groups',
      ok,
      detail: ok ? `${nodeNamesText}: ${nodesGroup.join(', ')}; control plane: ${cpGroup[0]}` : `${nodeNamesText} has ${nodesGroup.length} hosts, ${cpNamesText} ${cpGroup.length}`,
      fix: ok ? undefined : `add the hosts that run the controller to ${groupNames.node.join(' (Kargo: ')}) and the control-plane hosts to ${groupNames.control_plane.join(' (Kargo: ')})`,
    });
  }

  const problems = findProblems(vars.given, vars.explicit, vars.templated);
  add({
    name: 'variables',
    ok: problems.length === 0,
    detail: problems.length ? problems.map((p) => `${p.name}=${JSON.stringify(p.value)}: ${p.rule}`).join('; ') : `${vars.explicit.size} set, all valid`,
    fix: problems.length ? problems.map((p) => `set ${p.name} like ${p.example}`).join('; ') : undefined,
  });

  // Where external IPs may come from: without a declaration, any address a Service names comes up.
  const declared = Array.isArray(vars.values.extip_external_cidrs) ? (vars.values.extip_external_cidrs as string[]) : [];
  const claimsMode = ['balance', 'single'].includes(String(vars.values.extip_distribution));
  const poolCidrs = claimsMode && Array.isArray(vars.values.extip_ip_pools) ? (vars.values.extip_ip_pools as Array<{cidr?: string}>).map((p) => p.cidr).filter(Boolean) : [];
  const allowed = [...declared, ...poolCidrs];
  add({
    name: 'policy',
    ok: allowed.length > 0,
    detail: allowed.length ? `external IPs only from ${allowed.join(', ')}` : `extip_external_cidrs is empty${claimsMode ? ' and there are no extip_ip_pools' : ''}: the controller brings up any address a Service names (CVE-2020-8554)`,
    fix: allowed.length ? undefined : 'set extip_external_cidrs to the ranges your Services\' external IPs come from',
  });

  // The upstream image knows only naive mode's first flags.
  const image = `${String(vars.values.extip_image_repo)}:${String(vars.values.extip_image_tag)}`;
  const upstream = /(^|\/)k8s-externalipcontroller$/.test(String(vars.values.extip_image_repo));
  add({
    name: 'image',
    ok: !(upstream && claimsMode),
    detail: !upstream
      ? image
      : claimsMode
        ? `${image} is the upstream image, which cannot run claims mode (extip_distribution ${String(vars.values.extip_distribution)}) on current Kubernetes`
        : `${image} is the upstream image: naive mode runs, without the address policy, the address records uninstall reads, or health probes`,
    fix: upstream && claimsMode ? 'unset extip_image_repo and extip_image_tag (extip\'s own image), or set extip_distribution to all' : undefined,
  });

  const filters = await checkCalicoFilters(vars.values, vars.explicit);
  if (filters.problems.length || filters.notes.length) {
    add({
      name: 'calico filter',
      ok: filters.problems.length === 0,
      detail: filters.problems.length ? filters.problems.map((p) => `${p.name}: ${p.hint}`).join('; ') : filters.notes.join('; '),
      fix: filters.problems.length ? 'fix the filter text so that BIRD parses it (it goes into calico/node\'s function custom_filters())' : undefined,
    });
  }

  let cluster: ClusterState | undefined;
  try {
    cluster = await readCluster(options.kubeconfig());
    add({name: 'API', ok: true, detail: `${cluster.server} answers (${cluster.nodes.length} nodes)`});
  } catch (err) {
    add({name: 'API', ok: false, detail: (err as Error).message, fix: 'pass --kubeconfig with a kubeconfig for the cluster, or set KUBECONFIG'});
  }

  // An install already there: what extip status finds wrong with it (a scheduler or controllers whose passes keep failing, refused addresses, a missing CRD).
  if (cluster) {
    const report = assess(cluster);
    if (report.installed) {
      add({
        name: 'installed',
        ok: report.problems.length === 0,
        detail: report.problems.length ? report.problems.join('; ') : `extip runs (${report.mode}), and extip status finds nothing wrong`,
        fix: report.problems.length ? 'see extip status; an install with these variables may mend what it deploys' : undefined,
      });
    }
  }

  const hostvarsOf = (h: string) => inventory?.hostvars[h] ?? {};
  // Each target host's node name, as the role works it out.
  const mapped = cluster && inventory && nodesGroup.length
    ? nodeNames(nodesGroup, Object.fromEntries(nodesGroup.map((h) => [h, hostvarsOf(h)])), cluster.nodes, String(vars.values.extip_node_name_lookup))
    : undefined;
  if (cluster && mapped) {
    const names = new Set(cluster.nodes.map((n) => n.metadata?.name ?? ''));
    const unknown = nodesGroup.filter((h) => !mapped[h] || !names.has(mapped[h]));
    add({
      name: 'nodes',
      ok: unknown.length === 0,
      detail: unknown.length ? `not Kubernetes nodes: ${unknown.join(', ')}` : `all ${nodesGroup.length} target hosts are nodes`,
      fix: unknown.length ? 'set kube_override_hostname for them, switch extip_node_name_lookup, or leave them out with --limit' : undefined,
    });
  }

  // Claims mode needs a second controller to move a lost node's addresses to (the role's preflight refuses the same).
  if (cluster && mapped) {
    const key = String(vars.values.extip_node_label);
    const value = String(vars.values.extip_node_label_value);
    const targets = new Set(Object.values(mapped));
    const labelled = cluster.nodes.filter((n) => targets.has(n.metadata?.name ?? '') || n.metadata?.labels?.[key] === value).length;
    const setup = {
      kind: vars.values.extip_ctrl_app_kind === 'Deployment' ? 'Deployment' as const : 'DaemonSet' as const,
      replicas: Number(vars.values.extip_ctrl_replicas),
      labelled,
      claims: claimsMode,
      allowNoFailover: toBool(vars.values.extip_allow_no_failover) === true,
    };
    const errors = failoverErrors(setup);
    const count = controllerCount(setup);
    add({
      name: 'failover',
      ok: errors.length === 0,
      detail: errors.length ? errors.join(' ') : `${count} controller${count === 1 ? '' : 's'} over ${labelled} labelled node${labelled === 1 ? '' : 's'}${claimsMode && count < 2 ? ' (no failover, as extip_allow_no_failover accepts)' : ''}`,
      fix: errors.length ? 'run the controller as a DaemonSet over two or more labelled nodes, or set extip_ctrl_replicas to 2 or more' : undefined,
    });
  }

  if (inventory && nodesGroup.length) {
    const iface = String(vars.values.extip_iface);
    const result = await runPlaybook({playbook: 'externalip-doctor.yml', inventory: options.inventory, extraVars: {}, dataVars: vars.fromFlags, withStdout: true, binary: options.ansiblePlaybook}).catch((err: ExtipError) => err);
    if (result instanceof Error) {
      add({name: 'interface', ok: false, detail: result.message, fix: 'make the hosts reachable for Ansible'});
    } else {
      const seen = new Map<string, string[]>();
      for (const e of result.events) {
        if (e.event !== 'ok') continue;
        const ok = e as Extract<AnsibleEvent, {event: 'ok' | 'skipped'}>;
        if (ok.stdout !== undefined) seen.set(ok.host, ok.stdout.split('\n').filter(Boolean));
      }
      const missing = nodesGroup.filter((h) => !(seen.get(h) ?? []).includes(iface));
      const unreachable = result.failures.map((f) => f.host);
      add({
        name: 'interface',
        ok: missing.length === 0,
        detail: missing.length ? `${iface} is missing on ${missing.join(', ')}${unreachable.length ? ` (could not ask ${unreachable.join(', ')})` : ''}` : `${iface} exists on every target host`,
        fix: missing.length ? 'set extip_iface to an interface every target host has (lo for ECMP)' : undefined,
      });
    }
  }

  // Address conflicts: the declared ranges in the words of the role's preflight (lib/ranges.ts),
  // and the Services' external IPs against the nodes and the cluster's own CIDRs.
  const firstHost = nodesGroup[0] ?? '';
  const serviceCidr = resolveDefault(vars.values.extip_service_cidr, hostvarsOf(firstHost));
  const podCidr = resolveDefault(vars.values.extip_pod_cidr, hostvarsOf(firstHost));
  const cidrs: Array<{what: string; cidr: Cidr}> = [];
  for (const [value, label] of [[serviceCidr, 'the Service CIDR'], [podCidr, 'the pod CIDR']] as const) {
    const c = typeof value === 'string' ? parseCidr(value) : undefined;
    if (c && isCidr(c)) cidrs.push({what: `${label} ${value}`, cidr: c});
  }
  const pools = claimsMode && Array.isArray(vars.values.extip_ip_pools) ? vars.values.extip_ip_pools : [];
  // The nodes' addresses, and the inventory's for hosts the cluster does not list (yet).
  const nodeAddrs = new Map<string, string>();
  for (const [name, addresses] of nodeAddresses(cluster?.nodes ?? [])) for (const a of addresses) nodeAddrs.set(a, name);
  for (const h of nodesGroup) for (const k of ['ip', 'access_ip', 'ansible_host']) {
    const v = hostvarsOf(h)[k];
    if (typeof v === 'string' && parseIp(v) && !nodeAddrs.has(v)) nodeAddrs.set(v, h);
  }
  const byNode = new Map<string, string[]>();
  for (const [ip, node] of nodeAddrs) byNode.set(node, [...(byNode.get(node) ?? []), ip]);
  const conflicts = rangeErrors(declared, pools, serviceCidr, podCidr, [...byNode].map(([name, addresses]) => ({name, addresses})));
  const externals = new Map([...wantedAddresses(cluster?.services ?? [])].filter(([ip]) => parseIp(ip)));
  const inCidr = (v: bigint, fam: number, c: Cidr) => fam === c.family && v >= c.network && v <= c.last;
  for (const [ip, services] of externals) {
    const v = parseIp(ip)!;
    if (nodeAddrs.has(ip)) conflicts.push(`external IP ${ip} of ${services.join(', ')} is the address of node ${nodeAddrs.get(ip)}`);
    for (const c of cidrs) if (inCidr(v.value, v.family, c.cidr)) conflicts.push(`external IP ${ip} of ${services.join(', ')} is inside ${c.what}`);
  }
  add({
    name: 'addresses',
    ok: conflicts.length === 0,
    detail: conflicts.length ? conflicts.join('; ') : `${externals.size} external IPs, extip_external_cidrs and ${pools.length} pool${pools.length === 1 ? '' : 's'} clash with no node address and neither the Service nor the pod CIDR`,
    fix: conflicts.length ? 'choose external IPs and pools outside the nodes\' addresses and the cluster\'s service and pod CIDRs (extip_service_cidr, extip_pod_cidr)' : undefined,
  });
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.ok ? 'pass' : 'FAIL'}  ${c.name.padEnd(10)} ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`      ${''.padEnd(10)} fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  lines.push('', failed ? `${failed} check${failed > 1 ? 's' : ''} failed.` : 'All checks passed.');
  return lines.join('\n');
}
