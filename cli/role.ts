/**
 * Names the role fixes, read from its vars/main.yml so that the CLI never
 * spells them a second time: the inventory groups, the ledger's name, and the
 * labels every object extip creates carries.
 */
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import YAML from 'yaml';
import {roleDir} from './paths.js';

interface RoleVars {
  extip__groups: {node: string[]; control_plane: string[]};
  extip__ledger_name: string;
  extip__ledger_namespace: string;
  extip__common_labels: Record<string, string>;
}

const vars = YAML.parse(readFileSync(join(roleDir, 'vars', 'main.yml'), 'utf8')) as RoleVars;

export const groupNames = vars.extip__groups;
export const ledger = {name: vars.extip__ledger_name, namespace: vars.extip__ledger_namespace};
export const commonLabels = vars.extip__common_labels;
/** A label selector for every object extip created. */
export const extipSelector = Object.entries(commonLabels)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');

/** The hosts of a group of the role, under either era's name (both, when an inventory has both). */
export function groupHosts(groups: Record<string, string[] | undefined>, which: keyof RoleVars['extip__groups']): string[] {
  return [...new Set(groupNames[which].flatMap((g) => groups[g] ?? []))];
}
