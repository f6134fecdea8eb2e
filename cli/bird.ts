/**
 * Checks Calico's custom export filters with BIRD before anything is written.
 *
 * calico/node v2 pasted each filter text verbatim into the body of a BIRD
 * function custom_filters(); a text BIRD cannot parse breaks BGP on every node
 * at its next reload. So extip puts the text where calico/node would, in a
 * minimal configuration, and asks `bird -p` (parse only) about it, reporting
 * BIRD's own message with the line and column inside the text.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import type {Value} from '../lib/catalogue.js';
import {MissingToolError, type VariableProblem} from '../lib/errors.js';
import {run} from '../lib/run.js';
import {isJinja} from './validate.js';

export interface Bird {
  binary: string;
  /** "1.6.8", "2.0.12"... */
  version: string;
}

export interface FilterCheckResult {
  problems: VariableProblem[];
  /** Which BIRD checked which variable, or why none did. */
  notes: string[];
}

const HEAD = 'router id 192.0.2.1;\nprotocol device { }\nfunction custom_filters ()\n{\n';
const HEAD_LINES = HEAD.split('\n').length - 1;

/** The configuration calico/node would make of one filter text. */
export function filterConfig(text: string): string {
  return `${HEAD}${text.endsWith('\n') ? text : `${text}\n`}}\nfilter extip_check { custom_filters(); reject; }\n`;
}

async function findBird(binary: string): Promise<Bird | undefined> {
  try {
    const r = await run(binary, ['--version']);
    const m = /BIRD version (\S+)/.exec(`${r.stdout}\n${r.stderr}`);
    return m ? {binary, version: m[1]} : undefined;
  } catch (err) {
    if (err instanceof MissingToolError) return undefined;
    throw err;
  }
}

/** BIRD's message, with the line and column moved into the filter text. */
export function explainBirdError(output: string, file: string): string {
  const lines = output.trim().split('\n').filter(Boolean);
  const last = lines[lines.length - 1] ?? 'BIRD rejected it';
  const m = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(\\d+):(\\d+)\\s+(.*)$`).exec(last);
  if (!m) return last.replace(/^bird6?:\s*/, '');
  const line = Number(m[1]) - HEAD_LINES;
  return line >= 1 ? `line ${line}, column ${m[2]}: ${m[3]}` : m[3];
}

/**
 * Checks extip_calico_filter_v4 (and _v6 when enabled) with the `bird` (and,
 * for BIRD 1.x, `bird6`) on PATH. Returns a problem per filter BIRD rejects;
 * without a BIRD binary it checks nothing and says so in the notes.
 */
export async function checkCalicoFilters(values: Readonly<Record<string, Value>>, origins?: ReadonlyMap<string, string>): Promise<FilterCheckResult> {
  const result: FilterCheckResult = {problems: [], notes: []};
  if (!['auto', 'etcd-v2-filter'].includes(String(values.extip_calico_export))) return result;
  const wanted: Array<{name: string; family: 4 | 6}> = [{name: 'extip_calico_filter_v4', family: 4}];
  if (values.extip_calico_filter_v6_enabled === true) wanted.push({name: 'extip_calico_filter_v6', family: 6});

  const bird = await findBird('bird');
  const bird6 = bird && bird.version.startsWith('1.') ? await findBird('bird6') : bird;
  const dir = await mkdtemp(join(tmpdir(), 'extip-bird-'));
  try {
    for (const {name, family} of wanted) {
      const text = values[name];
      if (typeof text !== 'string' || isJinja(text)) continue;
      const checker = family === 4 ? bird : bird6;
      if (!checker) {
        result.notes.push(`${name} was not checked: no ${family === 4 ? 'bird' : 'bird6 (or BIRD 2)'} on PATH`);
        continue;
      }
      const file = join(dir, `${name}.conf`);
      await writeFile(file, filterConfig(text));
      const r = await run(checker.binary, ['-p', '-c', file]);
      if (r.exitCode === 0) {
        result.notes.push(`${name} parses in BIRD ${checker.version}`);
        continue;
      }
      result.problems.push({
        name,
        value: text,
        rule: `BIRD ${checker.version} must parse it as the body of calico/node's function custom_filters()`,
        hint: `BIRD says: ${explainBirdError(`${r.stderr}\n${r.stdout}`, file)}`,
        example: JSON.stringify(name.endsWith('v6') ? 'if ( ifname = "lo" ) then { if net != ::1/128 then accept; }' : 'if ( ifname = "lo" ) then { if net != 127.0.0.0/8 then accept; }'),
        origin: origins?.get(name),
      });
    }
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
  return result;
}
