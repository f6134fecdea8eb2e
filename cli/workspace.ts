/**
 * Writes what `extip render` produces: a self-contained Ansible workspace, or
 * the role added to an existing Kargo/kubespray checkout.
 */
import {randomBytes} from 'node:crypto';
import {cp, mkdir, readFile, readdir, rename, rm, stat, writeFile} from 'node:fs/promises';
import {basename, dirname, join, relative} from 'node:path';
import {type Value, catalogue} from './catalogue.js';
import {sectionTitles} from './generate.js';
import {UserError} from './errors.js';
import {playbooksDir, roleDir} from './paths.js';
import {listFiles} from './files.js';
import {commentBlock, renderTemplate} from './templating.js';
import type {ResolvedVariables} from './loader.js';
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
  const text = await renderTemplate('group-vars.yml.hbs', {sections});
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
  inventory: string;
  varsFile: string;
  /** File path (relative to root) -> new content; only files that change. */
  changes: Map<string, {before: string | undefined; after: string}>;
}

export const CLUSTER_PLAY = `
# External IP controller (added by extip render --kargo): run it alone with
#   ansible-playbook -i <inventory> cluster.yml -t externalip
- name: External IP controller
  hosts: "{{ 'kube_node' if 'kube_node' in groups else 'kube-node' }}"
  gather_facts: false
  any_errors_fatal: true
  roles:
    - { role: externalip, tags: externalip }
`;

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
  const varsFile = await varsFileFor(inventory);
  const changes = new Map<string, {before: string | undefined; after: string}>();

  // The role, file by file.
  for (const file of await listFiles(roleDir)) {
    if (file.includes('__pycache__')) continue;
    const target = join('roles', 'externalip', file);
    const after = await readFile(join(roleDir, file), 'utf8');
    const before = await readFile(join(root, target), 'utf8').catch(() => undefined);
    if (before !== after) changes.set(target, {before, after});
  }
  // The variables.
  const varsRel = relative(root, varsFile);
  const varsAfter = await groupVarsFile(vars);
  const varsBefore = await readFile(varsFile, 'utf8').catch(() => undefined);
  if (varsBefore !== varsAfter) changes.set(varsRel, {before: varsBefore, after: varsAfter});
  // cluster.yml: add a play with the role, tagged externalip, unless one is there.
  const cluster = await readFile(clusterYml, 'utf8');
  if (!hasExternalipRole(parseYaml(cluster, 'cluster.yml'))) {
    changes.set('cluster.yml', {before: cluster, after: cluster.replace(/\n*$/, '\n') + CLUSTER_PLAY});
  }
  return {root, inventory, varsFile, changes};
}

function hasExternalipRole(playbook: unknown): boolean {
  if (!Array.isArray(playbook)) return false;
  return playbook.some((play) => {
    const roles = (play as {roles?: unknown})?.roles;
    return Array.isArray(roles) && roles.some((r) => r === 'externalip' || (r as {role?: string})?.role === 'externalip');
  });
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
