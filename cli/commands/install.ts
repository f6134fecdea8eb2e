import {BaseCommand} from '../base.js';
import {operateFlags, operateOptions} from '../operate-flags.js';
import {type OperateResult, operate} from '../operate.js';

export default class Install extends BaseCommand {
  static override summary = 'Label the nodes and deploy the External IP Controller with the externalip role.';

  static override description = `Validates the extip_* variables (exit 2 and nothing run on a bad value), then runs the shipped playbook externalip.yml with ansible-playbook against your inventory, showing progress. Variables given with -e, --vars-file and --set reach Ansible through a temporary file; the inventory's group_vars are read by Ansible as usual. Arguments after -- go to ansible-playbook unchanged.

Running it again applies changed variables and reports changed=0 when nothing differs. Exit codes: 0 done, 2 bad variables or flags, 3 ansible-playbook missing or too old, 4 a task failed, 5 a host was unreachable, 130 interrupted.`;

  static override examples = [
    {description: 'ECMP setup of the original docs on a kubespray inventory', command: '<%= config.bin %> <%= command.id %> -i inventory/mycluster/inventory.ini -e @extip_ecmp.yaml'},
    {description: 'See what would change', command: '<%= config.bin %> <%= command.id %> -i inventory/mycluster --dry-run --set extip_ctrl_verbose=2'},
    {description: 'Pass options to ansible-playbook', command: '<%= config.bin %> <%= command.id %> -i inventory.cfg -u vagrant -b -- --forks 20 --ask-become-pass'},
  ];

  static override strict = false;
  static override enableJsonFlag = true;
  static override flags = operateFlags;

  async run(): Promise<OperateResult> {
    const {flags, argv} = await this.parse(Install);
    const result = await operate(operateOptions('install', flags, argv, this.jsonEnabled(), (line) => this.note(line)));
    process.exitCode = result.exitCode;
    return result;
  }
}
