/** Checks resolved variables against the catalogue; every problem is reported at once. */
import {type Value, type Variable, catalogue} from '../lib/catalogue.js';
import {ValidationError, type VariableProblem} from '../lib/errors.js';
import {type RuleContext, nearest} from '../lib/rules.js';
import {stringifyInline} from './yamlio.js';
import {TIMING_VARIABLES, heartbeatErrors, leaseErrors} from '../lib/timings.js';
import {bgpSetupErrors} from '../lib/bgp.js';

export const variablesByName: ReadonlyMap<string, Variable> = new Map(catalogue.map((v) => [v.name, v]));

/** Old names that still work, mapped to the variable they set. */
export const aliases: ReadonlyMap<string, string> = new Map(
  catalogue.flatMap((v) => (v.aliases ?? []).map((alias) => [alias, v.name] as const)),
);

/** A value Ansible will template at run time; the role's own checks see it resolved. */
export function isJinja(value: unknown): boolean {
  return typeof value === 'string' && (value.includes('{{') || value.includes('{%'));
}

/** Whether a name belongs to extip: an `extip_*` variable or one of the old aliases. */
export function isExtipName(name: string): boolean {
  return name.startsWith('extip_') || aliases.has(name);
}

/** Returns the problems with `values` (names are extip variables or aliases). */
/**
 * Every problem with the given values. A value with Jinja is left to the role
 * (which checks it after Ansible templated it) only when Ansible will template
 * it: when `templated` names it (values from the inventory), or when no
 * `templated` set is given. Values given to the CLI itself are data, checked
 * as they are.
 */
export function findProblems(values: Readonly<Record<string, Value>>, origins?: ReadonlyMap<string, string>, templated?: ReadonlySet<string>): VariableProblem[] {
  const problems: VariableProblem[] = [];
  const names = [...variablesByName.keys()];
  const family = values.extip_ip_family;
  const ctx: RuleContext = {ipFamily: family === 'ipv6' ? 'ipv6' : 'ipv4'};
  for (const [name, value] of Object.entries(values)) {
    if (aliases.has(name)) continue;
    const variable = variablesByName.get(name);
    if (!variable) {
      const guess = nearest(name, names);
      problems.push({
        name,
        value,
        rule: 'not a variable extip knows',
        hint: guess ? `did you mean ${guess}?` : 'see the variable table in the README, or `extip render --help`',
        example: guess ? stringifyInline(variablesByName.get(guess)!.example) : '(remove it)',
        origin: origins?.get(name),
      });
      continue;
    }
    const jinja = isJinja(value);
    if (jinja && (!templated || templated.has(name))) continue;
    const failure = variable.rule.check(value, ctx);
    if (failure) {
      const hint = jinja
        ? 'values given with -e, --vars-file or --set are data: Jinja in them is not evaluated; put the expression in the inventory\'s group_vars instead'
        : failure.hint;
      problems.push({name, value, rule: failure.rule, hint, example: stringifyInline(variable.example), origin: origins?.get(name)});
    }
  }
  if (!problems.length) problems.push(...relatedProblems(values, origins, templated));
  return problems;
}

/**
 * The rules that relate several variables (lib/timings.ts, lib/bgp.ts), once
 * each variable passes its own: claims mode's heartbeat against its timeout,
 * the scheduler's lease, and what extip's BGP speaker needs. Checked by the role's preflight too, and by the
 * agent on its flags, with the same verdicts.
 */
function relatedProblems(values: Readonly<Record<string, Value>>, origins?: ReadonlyMap<string, string>, templated?: ReadonlySet<string>): VariableProblem[] {
  const value = (name: string) => (name in values ? values[name] : variablesByName.get(name)!.default);
  const problem = (name: string, rule: string): VariableProblem => ({name, value: value(name), rule, example: stringifyInline(variablesByName.get(name)!.example), origin: origins?.get(name)});
  const bgpNames = ['extip_bgp_speaker', 'extip_bgp_peers', 'extip_bgp_route_reflectors', 'extip_distribution', 'extip_external_cidrs', 'extip_calico_export', 'extip_mask'];
  const bgp = bgpNames.some((n) => isJinja(value(n)) && (!templated || templated.has(n)))
    ? []
    : bgpSetupErrors({
        speaker: String(value('extip_bgp_speaker')),
        peers: value('extip_bgp_peers'),
        reflectors: value('extip_bgp_route_reflectors'),
        distribution: String(value('extip_distribution')),
        externalCidrs: (value('extip_external_cidrs') as unknown[]) ?? [],
        calicoExport: String(value('extip_calico_export')),
        mask: value('extip_mask'),
      }).map((rule) => problem('extip_bgp_speaker', rule));
  if (!['balance', 'single'].includes(String(value('extip_distribution')))) return bgp;
  const names = [TIMING_VARIABLES.hb, TIMING_VARIABLES.monitor, TIMING_VARIABLES.lease];
  // Left to the role when Ansible templates one of them.
  if (names.some((n) => isJinja(value(n)) && (!templated || templated.has(n)))) return [];
  const [hb, monitor, lease] = names.map((n) => String(value(n)));
  return [
    ...bgp,
    ...heartbeatErrors(hb, monitor).map((rule) => problem(TIMING_VARIABLES.monitor, rule)),
    ...leaseErrors(lease).map((rule) => problem(TIMING_VARIABLES.lease, rule)),
  ];
}

/** Throws a ValidationError listing every problem. */
export function assertValid(values: Readonly<Record<string, Value>>, origins?: ReadonlyMap<string, string>, templated?: ReadonlySet<string>): void {
  const problems = findProblems(values, origins, templated);
  if (problems.length) throw new ValidationError(problems);
}
