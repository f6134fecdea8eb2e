/** YAML as Ansible reads and writes it: YAML 1.1 (yes/no are booleans), plain data. */
import {readFile} from 'node:fs/promises';
import YAML from 'yaml';
import type {Value} from './catalogue.js';
import {UserError} from './errors.js';

const parseOptions = {version: '1.1', merge: true, uniqueKeys: false} as const;

/** Parses YAML 1.1; `origin` names the file or flag in error messages. */
export function parseYaml(text: string, origin: string): unknown {
  const docs = YAML.parseAllDocuments(text, parseOptions);
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    if (doc.errors.length) {
      const err = doc.errors[0];
      throw new UserError(`${origin}: not valid YAML: ${err.message.split('\n')[0]}`, 'fix the YAML syntax and run again');
    }
  }
  if (list.length > 1) throw new UserError(`${origin}: holds ${list.length} YAML documents; a variables file holds one mapping`);
  return list.length ? list[0].toJS() : null;
}

/** Reads a variables file: one mapping (or nothing). */
export async function readVarsFile(path: string, origin = path): Promise<Record<string, Value>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UserError(`${origin}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 'check the path');
  }
  return asMapping(parseYaml(text, origin), origin);
}

export function asMapping(data: unknown, origin: string): Record<string, Value> {
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new UserError(`${origin}: must be a mapping of variable names to values, not ${Array.isArray(data) ? 'a list' : typeof data}`);
  }
  return data as Record<string, Value>;
}

/** One value on one line (flow style), for messages. */
export function stringifyInline(value: Value): string {
  return YAML.stringify(value, {version: '1.1', collectionStyle: 'flow', lineWidth: 0}).trimEnd();
}

/** `name: value` as block YAML, multi-line strings as literal blocks. */
export function stringifyEntry(name: string, value: Value): string {
  return YAML.stringify({[name]: value}, {version: '1.1', lineWidth: 0, blockQuote: 'literal'}).trimEnd();
}

/** A YAML document; long strings are folded at `lineWidth` (0: never). */
export function stringifyDocument(value: unknown, lineWidth = 0): string {
  return YAML.stringify(value, {version: '1.1', lineWidth, minContentWidth: 40, blockQuote: 'literal'});
}
