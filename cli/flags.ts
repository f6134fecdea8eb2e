/** Flags shared by the commands that read extip_* variables. */
import {Flags} from '@oclif/core';
import type {VariableInputs} from './loader.js';

export const variableFlags = {
  inventory: Flags.string({
    char: 'i',
    summary: 'Inventory file or directory; its group_vars are read (all, k8s_cluster/k8s-cluster, kube_node/kube-node).',
    helpGroup: 'VARIABLES',
  }),
  'extra-vars': Flags.string({
    char: 'e',
    summary: 'Variables as Ansible takes them: @file.yml, name=value, or a {...} mapping. Repeatable; later wins.',
    multiple: true,
    helpGroup: 'VARIABLES',
  }),
  'vars-file': Flags.string({
    summary: 'A YAML file of variables (same as -e @file). Repeatable.',
    multiple: true,
    helpGroup: 'VARIABLES',
  }),
  set: Flags.string({
    summary: 'Set one variable: name=value, the value read as YAML (--set extip_mask=32). Repeatable; wins over everything.',
    multiple: true,
    helpGroup: 'VARIABLES',
  }),
};

export function variableInputs(flags: {
  inventory?: string;
  'extra-vars'?: string[];
  'vars-file'?: string[];
  set?: string[];
}): VariableInputs {
  return {
    inventory: flags.inventory,
    extraVars: flags['extra-vars'] ?? [],
    varsFiles: flags['vars-file'] ?? [],
    sets: flags.set ?? [],
  };
}
