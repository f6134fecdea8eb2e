/**
 * Writes what `extip render` produces: a self-contained Ansible workspace, or
 * the role added to an existing Kargo/kubespray checkout.
 */
import {randomBytes} from 'node:crypto';
import {cp, mkdir, readFile, readdir, rename, rm, stat, writeFile} from 'node:fs/promises';
import {basename, dirname, join, relative} from 'node:path';
import {type Value, catalogue, sectionTitles} from '../lib/catalogue.js';
import {UserError} from '../lib/errors.js';
import {playbooksDir, roleDir, templatesDir} from './paths.js';
import {listFiles} from './files.js';
import {commentBlock, renderTemplate} from './templating.js';
import type {ResolvedVariables} from './loader.js';
import YAML from 'yaml';
import {parseYaml, stringifyEntry} from './yamlio.js';
import {unifiedDiff} from './textdiff.js';

/** Marks a directory as written by `extip render --out`, so a later render may replace it. */
export const WORKSPACE_MARKER = '.extip-workspace';

/** group_vars/all/extip.yml: every variable documented; only the ones the user set are uncommented. */
export async function groupVarsFile(vars: ResolvedVariables): Promise<string> {
  const sections = (Object.keys(sectionTitles) as Array<keyof typeof sectionTitles>).map((s) => ({
    title: sectionTitles[s],
    variables: catalogue
      .filter((v) => v.section === s)
      .map((v) => {
        const set = vars.explicit.has(v.name);
        const entry = stringifyEntry(v.name, set ? vars.values[v.name] : v.default);
        return {
          commentText: commentBlock(v.summary) + (set ? `\n# (set in ${vars.explicit.get(v.name)})` : ''),
          entry: set ? entry : entry.replace(/^/gm, '# '),
        };
      }),
  }));
  const text = await renderTemplate(templatesDir, 'group-vars.yml.hbs', {sections});
  // What we write must read back as exactly the values the user set.
  const back = (parseYaml(text, 'generated group_vars') ?? {}) as Record<string, Value>;
  for (const name of vars.explicit.keys()) {
    if (name in back || !catalogue.some((v) => v.name === name)) continue;
    throw new Error(`internal: generated group_vars lost ${name}`);
  }
  return text;
}

export interface WrittenFile {
  path: string;
  status: 'created' | 'updated' | 'unchanged';
}

/** Renders a workspace into `out` (replacing an earlier render there) atomically. */
export async function renderWorkspace(out: string, vars: ResolvedVariables): Promise<string[]> {
  const existing = await stat(out).catch(() => undefined);
  if (existing) {
    if (!existing.isDirectory()) throw new UserError(`--out ${out} exists and is not a directory`, 'choose another --out');
    const entries = await readdir(out);
    if (entries.length && !entries.includes(WORKSPACE_MARKER)) {
      throw new UserError(
        `--out ${out} is not empty and was not written by extip render`,
        'choose a new or empty directory; extip only replaces a directory it rendered itself',
      );
    }
  }
  const groupVars = await groupVarsFile(vars);
  await mkdir(dirname(out), {recursive: true});
  const staging = join(dirname(out), `.${basename(out)}.tmp-${randomBytes(4).toString('hex')}`);
  try {
    await cp(roleDir, join(staging, 'roles', 'externalip'), {recursive: true, filter: (src) => !src.includes('__pycache__')});
    for (const entry of await readdir(playbooksDir)) {
      await cp(join(playbooksDir, entry), join(staging, entry), {recursive: true, filter: (src) => !src.includes('__pycache__')});
    }
    await mkdir(join(staging, 'group_vars', 'all'), {recursive: true});
    await writeFile(join(staging, 'group_vars', 'all', 'extip.yml'), groupVars);
    await writeFile(join(staging, WORKSPACE_MARKER), 'Written by extip render; extip render --out may replace this directory.\n');
    if (existing) {
      const old = `${staging}.old`;
      await rename(out, old);
      await rename(staging, out);
      await rm(old, {recursive: true, force: true});
    } else {
      await rename(staging, out);
    }
  } catch (err) {
    await rm(staging, {recursive: true, force: true});
    throw err;
  }
  return listFiles(out);
}


// --- Kargo / kubespray checkouts ------------------------------------------------

export interface KargoPlan {
  root: string;
  /** The inventory directory (its group_vars get the variables). */
  inventory: string;
  /** The inventory file to give ansible-playbook -i: a directory would skip .ini files. */
  inventoryFile: string;
  varsFile: string;
  /** The kubespray defaults role the plays load, or none (a Kargo checkout). */
  defaultsRole: string | undefined;
  /** The root playbooks that run extip (cluster.yml, and scale.yml and upgrade_cluster.yml where present). */
  playbooks: string[];
  /** File path (relative to root) -> new content; only files that change. */
  changes: Map<string, {before: string | undefined; after: string}>;
  /** What the operator should know: variables extip could not merge, plays it left alone. */
  notes: string[];
}

/** The playbooks extip joins: a full run, adding nodes, upgrading. */
export const KUBESPRAY_PLAYBOOKS = ['cluster.yml', 'scale.yml', 'upgrade_cluster.yml'];
const BEGIN = '# BEGIN extip: External IP controller (written by extip render --kargo; a new render replaces this block)';
const END = '# END extip';

/**
 * The plays extip appends to a kubespray root playbook. They run after the
 * playbook kubespray imports, so its dynamic_groups has mapped the old group
 * names; they load kubespray's defaults role (etcd_access_addresses,
 * kube_config_dir, bin_dir, kube_override_hostname...) and proxy environment,
 * as every kubespray play does. The first play fails a run whose inventory has
 * no nodes: without it, an inventory Ansible skipped (a directory of .ini files)
 * would exit 0 having done nothing.
 */
export function kubesprayPlays(defaultsRole: string | undefined, playbook: string): string {
  const hosts = defaultsRole ? 'kube_node' : "\"{{ 'kube_node' if 'kube_node' in groups else 'kube-node' }}\"";
  const roles = defaultsRole ? [`    - { role: ${defaultsRole} }`, '    - { role: externalip, tags: externalip }'] : ['    - { role: externalip, tags: externalip }'];
  return [
    BEGIN,
    `# Alone: ansible-playbook -i <inventory file> -b ${playbook} -t externalip`,
    '- name: External IP controller (inventory check)',
    '  hosts: localhost',
    '  gather_facts: false',
    '  tags: [externalip]',
    '  tasks:',
    '    - name: Externalip | Check the inventory',
    '      ansible.builtin.include_role:',
    '        name: externalip',
    '        tasks_from: inventory-check',
    '',
    '- name: External IP controller',
    `  hosts: ${hosts}`,
    '  gather_facts: false',
    '  any_errors_fatal: "{{ any_errors_fatal | default(true) }}"',
    '  environment: "{{ proxy_disable_env | default({}) }}"',
    '  roles:',
    ...roles,
    END,
    '',
  ].join('\n');
}

/** `text` with extip's block set to `block`: replaced where it is, else appended. */
function withBlock(text: string, block: string): string {
  const begin = text.indexOf(BEGIN);
  if (begin >= 0) {
    const end = text.indexOf(END, begin);
    if (end < 0) throw new UserError(`a playbook has "${BEGIN}" without "${END}"`, 'restore the END line or remove the partial block, then run again');
    const after = text.indexOf('\n', end);
    return text.slice(0, begin) + block + (after < 0 ? '' : text.slice(after + 1));
  }
  return `${text.replace(/\n*$/, '\n')}\n${block}`;
}

function hasExternalipRole(playbook: unknown): boolean {
  if (!Array.isArray(playbook)) return false;
  return playbook.some((play) => {
    const roles = (play as {roles?: unknown})?.roles;
    return Array.isArray(roles) && roles.some((r) => r === 'externalip' || (r as {role?: string})?.role === 'externalip');
  });
}

/** Works out what `--kargo` changes, without writing anything. */
export async function planKargo(root: string, vars: ResolvedVariables, inventoryOption?: string): Promise<KargoPlan> {
  const clusterYml = join(root, 'cluster.yml');
  const missing: string[] = [];
  if (!(await isFile(clusterYml))) missing.push('cluster.yml');
  if (!(await isDir(join(root, 'roles')))) missing.push('roles/');
  if (!(await isDir(join(root, 'inventory')))) missing.push('inventory/');
  if (missing.length) {
    throw new UserError(
      `${root} is not a Kargo/kubespray checkout: it has no ${missing.join(', ')}`,
      'pass the top directory of a kubespray (or Kargo) checkout, the one holding cluster.yml',
    );
  }
  const inventory = inventoryOption ? join(root, inventoryOption) : await findInventory(root);
  if (!(await isDir(inventory))) {
    throw new UserError(`${inventory} is not a directory`, 'give --kargo-inventory the inventory directory relative to the checkout, such as inventory/mycluster');
  }
  const inventoryFile = await findInventoryFile(inventory);
  const varsFile = await varsFileFor(inventory);
  const changes = new Map<string, {before: string | undefined; after: string}>();
  const notes: string[] = [];
  // kubespray since 2.23: kubespray_defaults; before: kubespray-defaults; Kargo: none.
  let defaultsRole: string | undefined;
  for (const name of ['kubespray_defaults', 'kubespray-defaults']) {
    if (await isDir(join(root, 'roles', name))) {
      defaultsRole = name;
      break;
    }
  }

  // The role, file by file.
  for (const file of await listFiles(roleDir)) {
    if (file.includes('__pycache__')) continue;
    const target = join('roles', 'externalip', file);
    const after = await readFile(join(roleDir, file), 'utf8');
    const before = await readFile(join(root, target), 'utf8').catch(() => undefined);
    if (before !== after) changes.set(target, {before, after});
  }

  // kubespray's own switch: its Calico role replaces serviceExternalIPs with this list.
  const advertise = calicoAdvertiseCidrs(vars);
  const existing = advertise.length ? await findGroupVar(inventory, CALICO_ADVERTISE) : undefined;
  let advertiseInOurFile: string[] = [];
  if (existing) {
    const edit = mergeListVar(existing, CALICO_ADVERTISE, advertise);
    if (edit.note) notes.push(edit.note);
    if (edit.after !== undefined) changes.set(relative(root, existing.path), {before: existing.text, after: edit.after});
  } else {
    advertiseInOurFile = advertise;
  }

  // The variables.
  const varsRel = relative(root, varsFile);
  const varsAfter = (await groupVarsFile(vars)) + kubesprayVarsSection(advertiseInOurFile);
  const varsBefore = await readFile(varsFile, 'utf8').catch(() => undefined);
  if (varsBefore !== varsAfter) changes.set(varsRel, {before: varsBefore, after: varsAfter});

  // The plays: appended to each root playbook kubespray runs, or updated in place.
  const playbooks: string[] = [];
  for (const name of KUBESPRAY_PLAYBOOKS) {
    const path = join(root, name);
    if (!(await isFile(path))) continue;
    playbooks.push(name);
    const before = await readFile(path, 'utf8');
    if (!before.includes(BEGIN) && hasExternalipRole(parseYaml(before, name))) {
      notes.push(`${name} already runs the externalip role outside extip's block; left as it is.`);
      continue;
    }
    const after = withBlock(before, kubesprayPlays(defaultsRole, name));
    if (after !== before) changes.set(name, {before, after});
  }
  return {root, inventory, inventoryFile, varsFile, defaultsRole, playbooks, changes, notes};
}

/** The command that installs extip through the checkout's cluster.yml. */
export function kargoCommand(plan: KargoPlan, playbook = 'cluster.yml', extra: string[] = []): string {
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
  // From the checkout's root: kubespray's ansible.cfg (roles_path and more) is read from there.
  return `cd ${quote(plan.root)} && ansible-playbook -i ${quote(relative(plan.root, plan.inventoryFile))} -b ${playbook} -t externalip${extra.map((e) => ` ${quote(e)}`).join('')}`;
}

export const CALICO_ADVERTISE = 'calico_advertise_service_external_ips';

/** What the role would add to serviceExternalIPs (extip__bgp_want), unless Calico is left alone. */
export function calicoAdvertiseCidrs(vars: ResolvedVariables): string[] {
  const v = vars.values;
  if (!['auto', 'bgpconfiguration'].includes(String(v.extip_calico_export))) return [];
  const claims = ['balance', 'single'].includes(String(v.extip_distribution));
  const pools = claims && Array.isArray(v.extip_ip_pools) ? (v.extip_ip_pools as Array<{cidr?: unknown}>).map((p) => p?.cidr) : [];
  const all: unknown[] = [v.extip_calico_service_cidrs, v.extip_external_cidrs].flatMap((x) => (Array.isArray(x) ? x : []));
  all.push(...pools);
  return [...new Set(all.filter((c): c is string => typeof c === 'string'))];
}

function kubesprayVarsSection(cidrs: string[]): string {
  if (!cidrs.length) return '';
  return [
    '',
    '# --- kubespray\'s own switches for what extip does (written by extip render --kargo)',
    '',
    '# kubespray\'s Calico role sets the default BGPConfiguration\'s serviceExternalIPs to this',
    '# list on every cluster.yml and upgrade_cluster.yml run: the ranges extip advertises.',
    stringifyEntry(CALICO_ADVERTISE, cidrs),
    '',
  ].join('\n');
}

interface GroupVarSite {
  path: string;
  text: string;
  value: unknown;
}

/** The group_vars file of the inventory that sets `name` (uncommented), if one does. */
async function findGroupVar(inventory: string, name: string): Promise<GroupVarSite | undefined> {
  const gv = join(inventory, 'group_vars');
  if (!(await isDir(gv))) return undefined;
  const files = (await listFiles(gv)).filter((f) => /\.ya?ml$/.test(f) && !f.endsWith('extip.yml')).sort();
  for (const file of files) {
    const path = join(gv, file);
    const text = await readFile(path, 'utf8');
    if (!new RegExp(`^${name}\\s*:`, 'm').test(text)) continue;
    const data = parseYaml(text, path) as Record<string, unknown> | null;
    if (data && typeof data === 'object' && name in data) return {path, text, value: data[name]};
  }
  return undefined;
}

/** Adds what `want` lacks to a list variable in its own file, keeping the file's comments. */
function mergeListVar(site: GroupVarSite, name: string, want: string[]): {after?: string; note?: string} {
  const where = site.path;
  if (!Array.isArray(site.value)) {
    return {note: `${where} sets ${name} to ${JSON.stringify(site.value)}, which extip cannot add to: make sure it holds ${want.join(', ')}, or the role stops before changing Calico.`};
  }
  const lacking = want.filter((c) => !(site.value as unknown[]).includes(c));
  if (!lacking.length) return {};
  const doc = YAML.parseDocument(site.text, {version: '1.1'});
  const list = doc.get(name, true);
  if (!YAML.isSeq(list)) return {note: `${where}: ${name} is not a plain list; add ${lacking.join(', ')} to it.`};
  for (const c of lacking) list.add(c);
  return {after: doc.toString()};
}
/** The inventory whose group_vars get the variables: inventory/ (Kargo) or the one inventory/<name>/ with group_vars. */
async function findInventory(root: string): Promise<string> {
  const base = join(root, 'inventory');
  if (await isDir(join(base, 'group_vars'))) return base;
  const candidates: string[] = [];
  for (const entry of await readdir(base, {withFileTypes: true})) {
    if (entry.isDirectory() && (await isDir(join(base, entry.name, 'group_vars')))) candidates.push(entry.name);
  }
  const chosen = candidates.filter((c) => c !== 'sample' && c !== 'local');
  if (chosen.length === 1) return join(base, chosen[0]);
  if (candidates.length === 1) return join(base, candidates[0]);
  throw new UserError(
    candidates.length
      ? `${root}/inventory holds several inventories (${candidates.join(', ')}); extip cannot tell which one to add its variables to`
      : `${root}/inventory has no group_vars directory`,
    'name one with --kargo-inventory inventory/<name>',
  );
}

/** The inventory file in an inventory directory: kubespray's inventory.ini, hosts.yaml, or Kargo's inventory.cfg. */
async function findInventoryFile(inventory: string): Promise<string> {
  const preferred = ['inventory.ini', 'hosts.yaml', 'hosts.yml', 'hosts.ini', 'inventory.cfg', 'inventory.yaml', 'inventory.yml', 'hosts'];
  for (const name of preferred) if (await isFile(join(inventory, name))) return join(inventory, name);
  const files = (await readdir(inventory, {withFileTypes: true})).filter((e) => e.isFile() && /\.(ini|cfg|ya?ml)$/.test(e.name)).map((e) => e.name);
  if (files.length === 1) return join(inventory, files[0]);
  throw new UserError(
    files.length ? `${inventory} holds several files that may be the inventory (${files.join(', ')})` : `${inventory} has no inventory file (inventory.ini, hosts.yaml or inventory.cfg)`,
    files.length ? 'name the hosts file inventory.ini, as kubespray\'s sample does' : 'copy kubespray\'s inventory/sample to it, or run extip init --out <dir>',
  );
}

/**
 * Ansible reads only the first of group_vars/<group>/ and group_vars/<group>.yml
 * that exists; a new all/ directory would hide an existing all.yml. So the file
 * goes where it will be read next to what is there.
 */
async function varsFileFor(inventory: string): Promise<string> {
  const gv = join(inventory, 'group_vars');
  for (const group of ['all', 'k8s_cluster', 'k8s-cluster']) {
    if (await isDir(join(gv, group))) return join(gv, group, 'extip.yml');
  }
  if (!(await isFile(join(gv, 'all.yml'))) && !(await isFile(join(gv, 'all.yaml')))) return join(gv, 'all', 'extip.yml');
  // Kargo era: all.yml and k8s-cluster.yml are files. kube-node is free in both eras' samples.
  for (const group of ['kube_node', 'kube-node']) {
    if (await isDir(join(gv, group))) return join(gv, group, 'extip.yml');
  }
  if (!(await isFile(join(gv, 'kube-node.yml'))) && !(await isFile(join(gv, 'kube-node.yaml')))) {
    return join(gv, 'kube-node', 'extip.yml');
  }
  throw new UserError(
    `${gv} has all.yml and kube-node.yml files, so a new group_vars directory would hide them`,
    `move ${gv}/all.yml to ${gv}/all/all.yml and run again`,
  );
}

/** Writes a plan; each file through a temporary file and a rename. */
export async function applyKargo(plan: KargoPlan): Promise<void> {
  for (const [file, change] of plan.changes) {
    const path = join(plan.root, file);
    await mkdir(dirname(path), {recursive: true});
    const temp = `${path}.extip-tmp`;
    await writeFile(temp, change.after);
    await rename(temp, path);
  }
}

export function planDiff(plan: KargoPlan): string {
  return [...plan.changes]
    .map(([file, c]) => unifiedDiff(c.before === undefined ? '/dev/null' : `a/${file}`, `b/${file}`, c.before ?? '', c.after))
    .join('');
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
