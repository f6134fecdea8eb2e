/** Starter inventories for `extip init`, copied from inventory-examples/. */
import {copyFile, mkdir, readFile, stat, writeFile} from 'node:fs/promises';
import {dirname, join, relative} from 'node:path';
import {UserError} from '../lib/errors.js';
import {listFiles} from './files.js';
import {inventoryExamplesDir} from './paths.js';
import {resolve} from './loader.js';
import {CALICO_ADVERTISE, calicoAdvertiseCidrs} from './workspace.js';
import {readVarsFile, stringifyEntry} from './yamlio.js';

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
  if (era === 'kubespray') {
    // kubespray's Calico role replaces serviceExternalIPs with its own list on every run.
    const presetPath = join(inventoryExamplesDir, presetFile[preset]);
    const cidrs = calicoAdvertiseCidrs(resolve([{origin: presetPath, values: await readVarsFile(presetPath)}]));
    if (cidrs.length) {
      const target = join(out, varsTarget);
      const text = await readFile(target, 'utf8');
      await writeFile(target, `${text.replace(/\n*$/, '\n')}\n# kubespray's Calico role sets the default BGPConfiguration's serviceExternalIPs to this\n# list on every cluster.yml and upgrade_cluster.yml run: keep every range extip advertises in it.\n${stringifyEntry(CALICO_ADVERTISE, cidrs)}\n`);
    }
  }
  return plan.map((p) => relative(out, p.to)).sort();
}
