import {createInterface} from 'node:readline/promises';
import {Flags} from '@oclif/core';
import {BaseCommand} from '../base.js';
import {UserError} from '../../lib/errors.js';
import {operateFlags, operateOptions} from '../operate-flags.js';
import {type OperateResult, operate} from '../operate.js';

export default class Uninstall extends BaseCommand {
  static override summary = 'Remove everything extip installed: workloads, RBAC, CRDs, pools, node labels, Calico export, and the external IPs on the nodes.';

  static override description = `Runs the shipped playbook externalip-uninstall.yml. Before deleting the controller it collects every address the controller may have brought up (Services' external IPs, LoadBalancer ingress IPs, IpClaims) and then removes exactly those from extip_iface on every node; other addresses are never touched. Labels an operator set before install stay. Safe to run twice, or after a half-finished install.

Asks for confirmation on a terminal unless --yes; without a terminal it needs --yes.`;

  static override examples = [
    {description: 'Remove the ECMP setup', command: '<%= config.bin %> <%= command.id %> -i inventory/mycluster/inventory.ini -e @extip_ecmp.yaml --yes'},
    {description: 'See what would be removed', command: '<%= config.bin %> <%= command.id %> -i inventory/mycluster --dry-run'},
  ];

  static override strict = false;
  static override enableJsonFlag = true;
  static override flags = {
    ...operateFlags,
    yes: Flags.boolean({char: 'y', summary: 'Do not ask for confirmation.'}),
  };

  async run(): Promise<OperateResult> {
    const {flags, argv} = await this.parse(Uninstall);
    if (!flags.yes && !flags['dry-run']) {
      if (!process.stdin.isTTY || !process.stderr.isTTY) {
        throw new UserError('uninstall removes the controller and its addresses from every node; without a terminal to confirm, pass --yes');
      }
      const rl = createInterface({input: process.stdin, output: process.stderr});
      const answer = await rl.question(`Remove the External IP Controller and its addresses from the hosts of ${flags.inventory}? [y/N] `);
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) {
        this.note('Nothing was changed.');
        return {action: 'uninstall', dryRun: false, ok: false, exitCode: 0, durationSeconds: 0, ansibleVersion: '', hosts: {}, changedTasks: [], failures: [], warnings: [], interrupted: false};
      }
    }
    const result = await operate(operateOptions('uninstall', flags, argv, this.jsonEnabled(), (line) => this.note(line)));
    process.exitCode = result.exitCode;
    return result;
  }
}
