/** Flags of `extip install` and `extip uninstall`, in Ansible's own words where it has them. */
import {Flags, type Interfaces} from '@oclif/core';
import {ansibleFlags, pickAnsibleOptions} from './ansible-flags.js';
import {variableFlags, variableInputs} from './flags.js';
import type {OperateOptions} from './operate.js';

export const operateFlags = {
  ...variableFlags,
  inventory: Flags.string({
    char: 'i',
    summary: 'Inventory file or directory, as for ansible-playbook; its group_vars are read and validated too.',
    required: true,
    helpGroup: 'VARIABLES',
  }),
  kubeconfig: Flags.string({summary: 'Kubeconfig on the first control-plane host (sets extip_kubeconfig).', helpGroup: 'ANSIBLE'}),
  ...ansibleFlags,
  'dry-run': Flags.boolean({summary: "Show what would change and change nothing (Ansible's --check --diff; kubectl dry runs).", helpGroup: 'ANSIBLE'}),
  'break-lock': Flags.boolean({
    summary: 'Take the run lock even if another run holds it (sets extip_break_lock).',
    description: 'Only when that run is known to be gone, on another machine: a lock whose run died on this machine, or that was not renewed for 15 minutes, is taken over without it.',
    helpGroup: 'ANSIBLE',
  }),
  verbose: Flags.boolean({char: 'v', summary: "Also stream Ansible's own output to stderr."}),
  'ansible-playbook': Flags.string({summary: 'The ansible-playbook program to run.', default: 'ansible-playbook', hidden: true}),
};

type OperateFlagValues = Interfaces.InferredFlags<typeof operateFlags>;

/** Maps the parsed flags of install/uninstall to what operate() takes. */
export function operateOptions(action: OperateOptions['action'], flags: OperateFlagValues, argv: unknown[], json: boolean, log: (line: string) => void): OperateOptions {
  return {
    action,
    inputs: variableInputs(flags),
    kubeconfig: flags.kubeconfig,
    ansible: pickAnsibleOptions(flags),
    dryRun: flags['dry-run'],
    breakLock: flags['break-lock'],
    passthrough: argv.map(String),
    progress: !json,
    verbose: flags.verbose,
    ansiblePlaybook: flags['ansible-playbook'],
    log,
  };
}
