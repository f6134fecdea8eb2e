import {Flags} from '@oclif/core';
import {BaseCommand} from '../base.js';
import {UserError, ValidationError} from '../../lib/errors.js';
import {variableFlags, variableInputs} from '../flags.js';
import {loadVariables} from '../loader.js';
import {assertValid} from '../validate.js';
import {checkCalicoFilters} from '../bird.js';
import {renderManifests} from '../manifests.js';
import {applyKargo, kargoCommand, planDiff, planKargo, renderWorkspace} from '../workspace.js';

export interface RenderResult {
  mode: 'workspace' | 'kargo' | 'manifests';
  directory: string;
  /** Files written (workspace) or changed (kargo), relative to the directory. */
  files: string[];
  changed: boolean;
  /** With --kargo: the command that installs extip through the checkout, to run as printed. */
  command?: string;
  /** With --kargo: the root playbooks that run extip. */
  playbooks?: string[];
}

export default class Render extends BaseCommand {
  static override summary = 'Write the externalip role, playbooks and your variables as an Ansible workspace, or into a Kargo/kubespray checkout.';

  static override description = `Variables are read from the inventory's group_vars, -e and --set (in that order of precedence) and validated first: on any bad value, render exits 2 and writes nothing.

With --out DIR, DIR gets roles/externalip, the playbooks externalip.yml and externalip-uninstall.yml, and group_vars/all/extip.yml holding your values (every variable documented; only the ones you set are active). Run it with ansible-playbook -i <inventory> DIR/externalip.yml.

With --kargo DIR, the role is copied into DIR/roles and the variables into the inventory's group_vars (with kubespray's calico_advertise_service_external_ips set to the ranges extip advertises, so kubespray's Calico role keeps them). A play with kubespray's defaults role and the externalip role (tag externalip) is appended to DIR/cluster.yml, scale.yml and upgrade_cluster.yml, so nodes added or upgraded later get the controller too; the command printed at the end installs it alone. The diff is shown; a second run changes nothing.`;

  static override examples = [
    {description: 'A workspace with the ECMP setup of the original docs', command: '<%= config.bin %> <%= command.id %> --out ./extip-ws -e @inventory-examples/ecmp/extip_ecmp.yaml'},
    {description: 'Add the role to a kubespray checkout', command: '<%= config.bin %> <%= command.id %> --kargo ~/kubespray --kargo-inventory inventory/mycluster --set extip_iface=lo --set extip_mask=32'},
    {description: 'See what --kargo would change without writing', command: '<%= config.bin %> <%= command.id %> --kargo ~/kubespray --dry-run'},
    {description: 'Only the Kubernetes manifests, for GitOps', command: '<%= config.bin %> <%= command.id %> --manifests --out ./manifests -e @extip_ecmp.yaml'},
  ];

  static override enableJsonFlag = true;

  static override flags = {
    out: Flags.directory({summary: 'Write a self-contained Ansible workspace here.', exactlyOne: ['out', 'kargo']}),
    kargo: Flags.directory({summary: 'Install into this Kargo/kubespray checkout instead.', exactlyOne: ['out', 'kargo']}),
    'kargo-inventory': Flags.string({
      summary: 'With --kargo: the inventory (relative to the checkout) whose group_vars get the variables.',
      dependsOn: ['kargo'],
    }),
    'dry-run': Flags.boolean({summary: 'With --kargo: show the diff, write nothing.', dependsOn: ['kargo']}),
    manifests: Flags.boolean({
      summary: 'With --out: write only the Kubernetes manifests install would apply (rendered by the role\'s templates), for review or GitOps.',
      dependsOn: ['out'],
    }),
    ...variableFlags,
  };

  async run(): Promise<RenderResult> {
    const {flags} = await this.parse(Render);
    const vars = await loadVariables(variableInputs(flags));
    assertValid(vars.given, vars.explicit, vars.templated);
    const filters = await checkCalicoFilters(vars.values, vars.explicit);
    if (filters.problems.length) throw new ValidationError(filters.problems);
    for (const name of Object.keys(vars.passthrough)) {
      this.note(`Note: ${name} is not an extip variable; render does not write it (install passes it to Ansible).`);
    }

    if (flags.out && flags.manifests) {
      const files = await renderManifests(flags.out, vars, flags.inventory);
      this.note(`Wrote ${files.join(', ')} to ${flags.out}. Apply them with: kubectl apply --server-side --field-manager=extip -f ${flags.out}`);
      return {mode: 'manifests', directory: flags.out, files, changed: true};
    }

    if (flags.out) {
      const files = await renderWorkspace(flags.out, vars);
      this.note(`Wrote ${files.length} files to ${flags.out}. Run:\n  ansible-playbook -i <inventory> ${flags.out}/externalip.yml`);
      return {mode: 'workspace', directory: flags.out, files, changed: true};
    }

    const root = flags.kargo;
    if (!root) throw new UserError('give --out DIR or --kargo DIR');
    const plan = await planKargo(root, vars, flags['kargo-inventory']);
    const files = [...plan.changes.keys()];
    const command = kargoCommand(plan);
    const result = {mode: 'kargo' as const, directory: root, files, command, playbooks: plan.playbooks};
    for (const note of plan.notes) this.note(`Note: ${note}`);
    if (!files.length) {
      this.note(`${root} already has the externalip role, its plays and these variables: nothing to change. Install with:\n  ${command}`);
      return {...result, changed: false};
    }
    if (!this.jsonEnabled()) this.log(planDiff(plan).trimEnd());
    if (flags['dry-run']) {
      this.note(`Dry run: ${files.length} files would change; nothing was written.`);
      return {...result, changed: false};
    }
    await applyKargo(plan);
    this.note(`Changed ${files.length} files in ${root}; ${plan.playbooks.join(', ')} now run extip. Install it alone with:\n  ${command}`);
    return {...result, changed: true};
  }
}
