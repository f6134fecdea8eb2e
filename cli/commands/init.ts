import {Flags} from '@oclif/core';
import {BaseCommand} from '../base.js';
import {ERAS, PRESETS, initInventory} from '../init.js';

export default class Init extends BaseCommand {
  static override summary = 'Write a starter inventory and extip group_vars to edit.';

  static override description =
    'Copies a Kargo-era (inventory.cfg, kube-master/kube-node) or kubespray-era (inventory.ini, kube_control_plane/kube_node, as in kubespray\'s sample) inventory, with group_vars for the chosen setup. Existing files are never overwritten.';

  static override examples = [
    {description: 'kubespray inventory with the ECMP setup', command: '<%= config.bin %> <%= command.id %> --out inventory/mycluster'},
    {description: 'Kargo inventory, claims mode with an IP pool', command: '<%= config.bin %> <%= command.id %> --out inv --era kargo --preset balance'},
  ];

  static override enableJsonFlag = true;

  static override flags = {
    out: Flags.directory({summary: 'Directory to write the inventory into.', default: '.'}),
    era: Flags.option({summary: 'Inventory group names: kubespray (kube_node) or kargo (kube-node).', options: ERAS, default: 'kubespray'})(),
    preset: Flags.option({summary: 'Setup: ecmp (/32 on lo, every node) or balance (claims mode, IP pool).', options: PRESETS, default: 'ecmp'})(),
  };

  async run(): Promise<{directory: string; files: string[]}> {
    const {flags} = await this.parse(Init);
    const files = await initInventory(flags.out, flags.era, flags.preset);
    this.note(`Wrote ${files.join(', ')} in ${flags.out}. Edit the hosts and variables, then: extip render --out ws -i ${flags.out}`);
    return {directory: flags.out, files};
  }
}
