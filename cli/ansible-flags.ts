/**
 * The options of ansible-playbook that install and uninstall pass through,
 * declared once: the oclif flags, the type the modules take (derived from the
 * flags) and the ansible-playbook arguments they become.
 */
import {Flags, type Interfaces} from '@oclif/core';

export const ansibleFlags = {
  limit: Flags.string({char: 'l', summary: 'Limit the run to these hosts (ansible-playbook --limit).', helpGroup: 'ANSIBLE'}),
  tags: Flags.string({char: 't', summary: 'Only run tasks with these tags (ansible-playbook --tags).', helpGroup: 'ANSIBLE'}),
  user: Flags.string({char: 'u', summary: 'Connect as this user (ansible-playbook --user).', helpGroup: 'ANSIBLE'}),
  become: Flags.boolean({char: 'b', summary: 'Run operations with become (ansible-playbook --become).', helpGroup: 'ANSIBLE'}),
};

export type AnsibleOptions = Partial<Interfaces.InferredFlags<typeof ansibleFlags>>;

const optionOf: Record<keyof typeof ansibleFlags, string> = {limit: '--limit', tags: '--tags', user: '--user', become: '--become'};

/** The ansible-playbook arguments for these options, in a fixed order. */
export function ansibleArgs(options: AnsibleOptions): string[] {
  const args: string[] = [];
  for (const name of Object.keys(optionOf) as Array<keyof typeof ansibleFlags>) {
    const value = options[name];
    if (value === true) args.push(optionOf[name]);
    else if (typeof value === 'string' && value) args.push(optionOf[name], value);
  }
  return args;
}

/** Only the Ansible options of a larger set of flags. */
export function pickAnsibleOptions(flags: AnsibleOptions): AnsibleOptions {
  return {limit: flags.limit, tags: flags.tags, user: flags.user, become: flags.become};
}
