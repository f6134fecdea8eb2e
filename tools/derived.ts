/**
 * Files derived from the catalogue: the role's defaults, argument specs and
 * validation tasks, and the README's variable table. `npm run generate` writes
 * them; test/unit/generated.test.ts fails when a committed copy differs.
 */
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {type Section, type Value, type Variable, catalogue, sectionTitles} from '../lib/catalogue.js';
import {exitCodeTable} from '../lib/errors.js';
import {packageRoot} from '../cli/paths.js';
import type {Rule} from '../lib/rules.js';
import {renderTemplate} from '../cli/templating.js';

/** The generator's own handlebars templates (build time only, not shipped). */
const toolTemplates = join(packageRoot, 'tools', 'templates');
import {isJinja} from '../cli/validate.js';
import {parseYaml, stringifyDocument, stringifyInline} from '../cli/yamlio.js';

function sections(): Array<{title: string; variables: Variable[]}> {
  return (Object.keys(sectionTitles) as Section[]).map((s) => ({
    title: sectionTitles[s],
    variables: catalogue.filter((v) => v.section === s),
  }));
}

function sinceText(v: Variable): string {
  return v.since === 'kargo' ? 'the original Kargo role' : `extip ${v.since}`;
}

/** The text that explains one variable, shared by the defaults file and argument_specs. */
function explanation(v: Variable): string[] {
  const lines = [v.summary, v.description, `Allowed: ${v.rule.describe}.`];
  if (v.aliases?.length) lines.push(`Also read from the old name ${v.aliases.join(', ')}.`);
  if (v.deprecated) lines.push(`Deprecated: ${v.deprecated}.`);
  lines.push(`Since ${sinceText(v)}.`);
  return lines;
}

export async function roleDefaults(): Promise<string> {
  return renderTemplate(toolTemplates, 'role-defaults.yml.hbs', {
    sections: sections().map((s) => ({
      title: s.title,
      variables: s.variables.map((v) => ({name: v.name, text: explanation(v).join('\n'), default: v.default})),
    })),
  });
}

function specOption(v: Variable): Record<string, Value> {
  const option: Record<string, Value> = {type: v.rule.specType, description: explanation(v)};
  if (v.rule.elements) option.elements = v.rule.elements;
  if (v.rule.choices) option.choices = [...v.rule.choices];
  if (!isJinja(v.default) && v.rule.specType !== 'bool') option.default = v.default;
  return option;
}

export async function argumentSpecs(): Promise<string> {
  // Deprecated variables are accepted but not used, so they are not checked (the
  // old extip_ctrl_hostname default needs facts that the role does not gather).
  const options = Object.fromEntries(catalogue.filter((v) => !v.deprecated).map((v) => [v.name, specOption(v)]));
  return renderTemplate(toolTemplates, 'argument-specs.yml.hbs', {
    options: stringifyDocument(options, 110).trimEnd(),
  });
}

/** When the role checks a variable; some only matter, and only resolve, in some setups. */
export function validationWhen(v: Variable): string | undefined {
  if (v.deprecated) return 'false';
  if (v.name.startsWith('extip_etcd')) return "extip_calico_export in ['auto', 'etcd-v2-filter'] and 'etcd' in groups";
  return undefined;
}

function conditions(rule: Rule, name: string): string[] {
  return rule.jinja.map((c) => c.replaceAll('VAR', name));
}

/**
 * One assert for all variables: every bad value is reported at once, and a
 * 30-node run pays for one task, not one per variable.
 */
export async function validateTasks(): Promise<string> {
  const checks = catalogue
    .filter((v) => validationWhen(v) !== 'false')
    .map((v) => {
      const ok = conditions(v.rule, v.name).map((c) => `(${c})`).join(' and ');
      const guard = validationWhen(v);
      const problems = v.rule.jinja.some((c) => c.includes('extip_pool_errors'))
        ? ` ~ ' Problems: ' ~ (${v.name} | extip_pool_errors | join('; '))`
        : v.rule.jinja.some((c) => c.includes('extip_bgp_peer_errors'))
        ? ` ~ ' Problems: ' ~ (${v.name} | extip_bgp_peer_errors | join('; '))`
        : v.rule.jinja.some((c) => c.includes('extip_bird_body_errors'))
          ? ` ~ ' Problems: ' ~ (${v.name} | extip_bird_body_errors | join('; '))`
          : v.rule.jinja.some((c) => c.includes('extip_cidr_errors'))
          ? ` ~ ' Problems: ' ~ (${v.rule.specType === 'str' ? `[${v.name}]` : v.name} | extip_cidr_errors | join('; '))`
          : '';
      const message =
        `${pyLiteral(`${v.name} = `)} ~ (${v.name} | to_json) ~ ` +
        pyLiteral(` is not valid. Allowed: ${v.rule.describe}. Example: ${v.name}: ${stringifyInline(v.example).replace(/\n/g, ' ')}.`) +
        problems;
      // What the rule reads besides the variable itself: it is checked again where any of them differs.
      const reads = catalogue.map((w) => w.name).filter((n) => n === v.name || new RegExp(`\\b${n}\\b`).test(`${ok} ${guard ?? ''}`));
      return {
        name: v.name,
        reads,
        expression: `(${message}) if not (${guard ? `not (${guard}) or ` : ''}${ok}) else ''`,
      };
    });
  // Each variable a rule reads -> the variables whose rules read it.
  const affects = new Map<string, string[]>();
  for (const c of checks) for (const n of c.reads) affects.set(n, [...(affects.get(n) ?? []), c.name]);
  const names = [...affects.keys()];
  return renderTemplate(toolTemplates, 'validate-tasks.yml.hbs', {
    checks,
    names: `[${names.join(', ')}]`,
    affects: names.map((n) => ({name: n, checks: `[${affects.get(n)!.join(', ')}]`})),
  });
}

/** A Jinja (Python) string literal. */
function pyLiteral(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export const README_BEGIN = '<!-- BEGIN VARIABLES (generated from lib/catalogue.ts by `npm run generate`) -->';
export const README_END = '<!-- END VARIABLES -->';

function tableCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, '<br>');
}

export async function readmeVariables(readme: string): Promise<string> {
  const table = await renderTemplate(toolTemplates, 'readme-variables.md.hbs', {
    sections: sections().map((s) => ({
      title: s.title,
      variables: s.variables.map((v) => ({
        name: v.name + (v.aliases?.length ? ` (old: ${v.aliases.join(', ')})` : ''),
        default:
          typeof v.default === 'string' && v.default.includes('\n')
            ? '*multi-line, see `roles/externalip/defaults/main.yml`*'
            : '`' + tableCell(stringifyInline(v.default)) + '`',
        allowed: tableCell(v.rule.describe),
        summary: tableCell(v.summary + (v.deprecated ? ` *Deprecated: ${v.deprecated}.*` : '')),
        since: v.since,
      })),
    })),
  });
  return replaceBetween(readme, README_BEGIN, README_END, table);
}

export const EXIT_BEGIN = '<!-- BEGIN EXIT CODES (generated from lib/errors.ts by `npm run generate`) -->';
export const EXIT_END = '<!-- END EXIT CODES -->';

function replaceBetween(text: string, begin: string, end: string, body: string): string {
  const start = text.indexOf(begin);
  const stop = text.indexOf(end);
  if (start < 0 || stop < start) throw new Error(`README.md lacks the ${begin} ... ${end} markers`);
  return text.slice(0, start + begin.length) + '\n' + body.trimEnd() + '\n' + text.slice(stop);
}

export function readmeExitCodes(readme: string): string {
  const rows = exitCodeTable.map((r) => `| ${r.code} | ${r.meaning} |`);
  return replaceBetween(readme, EXIT_BEGIN, EXIT_END, ['| Code | Meaning |', '|---|---|', ...rows].join('\n'));
}

export interface GeneratedFile {
  path: string;
  content: string;
}

/** Every generated file (paths relative to the package root), checked to parse. */
export async function generatedFiles(): Promise<GeneratedFile[]> {
  const files = [
    {path: 'roles/externalip/defaults/main.yml', content: await roleDefaults()},
    {path: 'roles/externalip/meta/argument_specs.yml', content: await argumentSpecs()},
    {path: 'roles/externalip/tasks/validate.yml', content: await validateTasks()},
    {path: 'README.md', content: readmeExitCodes(await readmeVariables(await readFile(join(packageRoot, 'README.md'), 'utf8')))},
  ];
  for (const f of files) if (f.path.endsWith('.yml')) parseYaml(f.content, f.path);
  return files;
}
