import {Flags} from '@oclif/core';
import {BaseCommand} from '../base.js';
import {type Check, doctor, formatChecks} from '../doctor.js';
import {ExitCode} from '../../lib/errors.js';
import {variableFlags, variableInputs} from '../flags.js';
import {loadKubeConfig} from '../kube.js';
import {loadVariables} from '../loader.js';

export default class Doctor extends BaseCommand {
  static override summary = 'Check, before an install and changing nothing, that everything extip needs is in place.';

  static override description = `Checks: ansible-playbook present and recent enough; the inventory parses (ansible-inventory) and has the groups; the extip_* variables are valid; the API answers (--kubeconfig, KUBECONFIG or ~/.kube/config); every target host is a known node; extip_iface exists on each host; and no external IP or pool range clashes with a node address, the service or pod CIDR, or each other. Exits 6 when a check fails.`;

  static override examples = [
    {description: 'Before installing the ECMP setup', command: '<%= config.bin %> <%= command.id %> -i inventory/mycluster/inventory.ini -e @extip_ecmp.yaml'},
  ];

  static override enableJsonFlag = true;
  static override flags = {
    ...variableFlags,
    inventory: Flags.string({char: 'i', summary: 'Inventory file or directory.', required: true, helpGroup: 'VARIABLES'}),
    kubeconfig: Flags.string({summary: 'Kubeconfig for reaching the API from here (default: KUBECONFIG, then ~/.kube/config).'}),
  };

  async run(): Promise<{ok: boolean; checks: Check[]}> {
    const {flags} = await this.parse(Doctor);
    const vars = await loadVariables(variableInputs(flags));
    const checks = await doctor({inventory: flags.inventory, vars, kubeconfig: () => loadKubeConfig(flags.kubeconfig)});
    if (!this.jsonEnabled()) this.log(formatChecks(checks));
    const ok = checks.every((c) => c.ok);
    process.exitCode = ok ? ExitCode.ok : ExitCode.problemsFound;
    return {ok, checks};
  }
}
