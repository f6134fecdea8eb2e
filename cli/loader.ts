/**
 * Loads `extip_*` variables from where Ansible users keep them.
 *
 * Precedence, lowest first, as Ansible applies it for these sources:
 *   1. the role defaults (the catalogue);
 *   2. inventory group_vars: `all`, then `k8s_cluster`/`k8s-cluster`, then
 *      `kube_node`/`kube-node` (deeper groups win). For each group Ansible reads
 *      only the first of `<group>/` (every file in it, in name order),
 *      `<group>.yml`, `<group>.yaml`, `<group>.json` that exists;
 *   3. `-e`/`--extra-vars` and `--vars-file`, in the order given (later wins);
 *   4. `--set name=value`, in the order given.
 * Ansible reads the inventory's group_vars from the directory of the inventory
 * file, or the inventory directory itself.
 */
import {readdir, stat} from 'node:fs/promises';
import {dirname, extname, join, relative} from 'node:path';
import {type Value, catalogue} from '../lib/catalogue.js';
import {UserError} from '../lib/errors.js';
import {aliases, isExtipName} from './validate.js';
import {asMapping, parseYaml, readVarsFile} from './yamlio.js';

export interface VariableInputs {
  /** Inventory file or directory (-i). */
  inventory?: string;
  /** -e values as typed: `@file`, `k=v [k2=v2 ...]` or an inline YAML/JSON mapping. */
  extraVars?: readonly string[];
  /** --vars-file paths. */
  varsFiles?: readonly string[];
  /** --set values: `name=value`, the value read as YAML. */
  sets?: readonly string[];
}

export interface Layer {
  /** Where the values came from, for messages: a file path or a flag. */
  origin: string;
  values: Record<string, Value>;
  /** From the inventory's group_vars (which Ansible reads itself), not from flags. */
  inventory?: boolean;
}

export interface ResolvedVariables {
  /** Every catalogue variable, with defaults filled in. */
  values: Record<string, Value>;
  /** The extip variables the user set, with the origin of the winning value. */
  explicit: Map<string, string>;
  /** What the user set for extip, before defaults, aliases folded in; this is what gets validated. */
  given: Record<string, Value>;
  /** Variables that are not extip's (from -e / --set), handed to Ansible unchanged. */
  passthrough: Record<string, Value>;
  /** The extip variables given by flags (-e, --vars-file, --set), as given: what goes to Ansible as extra vars. */
  fromFlags: Record<string, Value>;
  /** The extip variables whose value comes from the inventory's group_vars: Ansible templates those; values from flags are data. */
  templated: Set<string>;
  layers: Layer[];
}

/** The group_vars group names extip reads, lowest precedence first. */
export const GROUP_ORDER: readonly (readonly string[])[] = [['all'], ['k8s-cluster', 'k8s_cluster'], ['kube-node', 'kube_node']];

export async function loadVariables(inputs: VariableInputs): Promise<ResolvedVariables> {
  const layers: Layer[] = [];
  if (inputs.inventory) layers.push(...(await groupVarsLayers(inputs.inventory)));
  for (const file of inputs.varsFiles ?? []) layers.push({origin: file, values: await readVarsFile(file)});
  for (const raw of inputs.extraVars ?? []) layers.push(await extraVarsLayer(raw));
  for (const raw of inputs.sets ?? []) layers.push(setLayer(raw));
  return resolve(layers);
}

/** Folds layers over the catalogue defaults. */
export function resolve(layers: Layer[]): ResolvedVariables {
  const given: Record<string, Value> = {};
  const explicit = new Map<string, string>();
  const passthrough: Record<string, Value> = {};
  const fromFlags: Record<string, Value> = {};
  const templated = new Set<string>();
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer.values)) {
      if (isExtipName(name)) {
        given[name] = value;
        explicit.set(name, layer.origin);
        if (layer.inventory) templated.add(name);
        else templated.delete(name);
        if (!layer.inventory) fromFlags[name] = value;
      } else if (!layer.inventory) {
        passthrough[name] = value;
      }
    }
  }
  const values: Record<string, Value> = Object.fromEntries(catalogue.map((v) => [v.name, v.default]));
  for (const [alias, target] of aliases) {
    if (alias in given && !(target in given)) {
      given[target] = given[alias];
      explicit.set(target, `${explicit.get(alias)} (as ${alias})`);
      if (templated.has(alias)) templated.add(target);
    }
  }
  for (const [name, value] of Object.entries(given)) if (!aliases.has(name)) values[name] = value;
  return {values, explicit, given, passthrough, fromFlags, templated, layers};
}

async function extraVarsLayer(raw: string): Promise<Layer> {
  const origin = `-e ${raw}`;
  if (raw.startsWith('@')) return {origin: raw.slice(1), values: await readVarsFile(raw.slice(1))};
  const trimmed = raw.trim();
  if (trimmed.startsWith('{')) return {origin, values: asMapping(parseYaml(trimmed, origin), origin)};
  // Ansible's key=value form: values stay strings.
  const values: Record<string, Value> = {};
  for (const pair of splitKeyValues(trimmed, origin)) {
    const eq = pair.indexOf('=');
    values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return {origin, values};
}

function splitKeyValues(text: string, origin: string): string[] {
  const pairs: string[] = [];
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)=("([^"\\]|\\.)*"|'[^']*'|\S*)/y;
  let rest = text;
  while (rest.trim()) {
    re.lastIndex = 0;
    const m = re.exec(rest);
    if (!m) throw new UserError(`${origin}: expected name=value pairs, @file or a {...} mapping`, 'e.g. -e extip_mask=32 or -e @extip_ecmp.yaml');
    let value = m[2];
    if (/^(["']).*\1$/s.test(value)) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    pairs.push(`${m[1]}=${value}`);
    rest = rest.slice(m[0].length);
  }
  return pairs;
}

function setLayer(raw: string): Layer {
  const origin = `--set ${raw}`;
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new UserError(`${origin}: expected name=value`, 'e.g. --set extip_iface=lo');
  const name = raw.slice(0, eq).trim();
  const text = raw.slice(eq + 1);
  // The value is read as YAML, so --set extip_mask=32 is a number and lists work.
  const value = text === '' ? '' : (parseYaml(text, origin) as Value);
  return {origin, values: {[name]: value ?? ''}};
}

/** The group_vars layers of an inventory, lowest precedence first. */
export async function groupVarsLayers(inventory: string): Promise<Layer[]> {
  let info;
  try {
    info = await stat(inventory);
  } catch {
    throw new UserError(`inventory ${inventory} does not exist`, 'pass an inventory file or directory with -i');
  }
  const base = join(info.isDirectory() ? inventory : dirname(inventory), 'group_vars');
  const layers: Layer[] = [];
  for (const names of GROUP_ORDER) {
    for (const name of names) {
      for (const file of await varsFilesFor(base, name)) {
        layers.push({origin: relative(process.cwd(), file) || file, values: await readVarsFile(file), inventory: true});
      }
    }
  }
  return layers;
}

const VARS_EXTENSIONS = ['', '.yml', '.yaml', '.json'];

/** The files Ansible's host_group_vars plugin reads for one group, in its order. */
async function varsFilesFor(base: string, group: string): Promise<string[]> {
  const files: string[] = [];
  for (const ext of VARS_EXTENSIONS) {
    const path = join(base, group + ext);
    const info = await stat(path).catch(() => undefined);
    if (!info) continue;
    // Like Ansible, the first of `group`, `group.yml`, ... that exists is the only one read.
    if (info.isDirectory()) files.push(...(await walk(path)));
    else files.push(path);
    break;
  }
  return files;
}

async function walk(dir: string): Promise<string[]> {
  const entries = (await readdir(dir, {withFileTypes: true})).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(path)));
    else if (VARS_EXTENSIONS.includes(extname(entry.name))) files.push(path);
  }
  return files;
}
