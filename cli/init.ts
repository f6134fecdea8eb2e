/** Starter inventories for `extip init`, copied from inventory-examples/. */
import {copyFile, mkdir, stat} from 'node:fs/promises';
import {dirname, join, relative} from 'node:path';
import {UserError} from './errors.js';
import {listFiles} from './files.js';
import {inventoryExamplesDir} from './paths.js';

export const ERAS = ['kubespray', 'kargo'] as const;
export const PRESETS = ['ecmp', 'balance'] as const;
export type Era = (typeof ERAS)[number];
export type Preset = (typeof PRESETS)[number];

const presetFile: Record<Preset, string> = {ecmp: 'ecmp/extip_ecmp.yaml', balance: 'balance/extip_balance.yaml'};

/** Copies the era's inventory and the preset's variables into `out`; refuses to overwrite. */
export async function initInventory(out: string, era: Era, preset: Preset): Promise<string[]> {
  const plan: Array<{from: string; to: string}> = [];
  const eraDir = join(inventoryExamplesDir, era);
  for (const file of await listFiles(eraDir)) {
    // The example's own variables are replaced by the preset's.
    if (file.startsWith('group_vars')) continue;
    plan.push({from: join(eraDir, file), to: join(out, file)});
  }
  // Kargo kept all.yml as a file; kubespray uses a directory. Either way the preset is the extip file.
  const varsTarget = era === 'kargo' ? 'group_vars/all.yml' : 'group_vars/all/extip.yml';
  plan.push({from: join(inventoryExamplesDir, presetFile[preset]), to: join(out, varsTarget)});

  const existing: string[] = [];
  for (const {to} of plan) if (await stat(to).catch(() => undefined)) existing.push(relative(process.cwd(), to));
  if (existing.length) {
    throw new UserError(`init would overwrite ${existing.join(', ')}`, 'choose an empty --out directory');
  }
  for (const {from, to} of plan) {
    await mkdir(dirname(to), {recursive: true});
    await copyFile(from, to);
  }
  return plan.map((p) => relative(out, p.to)).sort();
}
