/** YAML as Ansible reads and writes it: YAML 1.1 (yes/no are booleans), plain data. */
import {readFile} from 'node:fs/promises';
import YAML from 'yaml';
import type {Value} from '../lib/catalogue.js';
import {UserError} from '../lib/errors.js';

// Duplicate keys are an error: Ansible keeps the last one silently, which hides typos.
const parseOptions = {version: '1.1', merge: true, uniqueKeys: true} as const;
/** Aliases a document may expand; more is an alias bomb (a few lines that expand to gigabytes). */
const MAX_ALIASES = 100;

function at(err: {linePos?: Array<{line: number; col: number}>}): string {
  const pos = err.linePos?.[0];
  return pos ? `:${pos.line}:${pos.col}` : '';
}

/** Parses YAML 1.1; `origin` names the file or flag in error messages. */
export function parseYaml(text: string, origin: string): unknown {
  const docs = YAML.parseAllDocuments(text, parseOptions);
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    if (doc.errors.length) {
      const err = doc.errors[0];
      const hint = err.code === 'DUPLICATE_KEY' ? 'keep one of the keys: Ansible would silently use the last one' : 'fix the YAML syntax and run again';
      throw new UserError(`${origin}${at(err)}: not valid YAML: ${err.message.split('\n')[0]}`, hint);
    }
  }
  if (list.length > 1) throw new UserError(`${origin}: holds ${list.length} YAML documents; a variables file holds one mapping`);
  if (!list.length) return null;
  try {
    return list[0].toJS({maxAliasCount: MAX_ALIASES});
  } catch (err) {
    throw new UserError(`${origin}: not accepted: ${(err as Error).message} (more than ${MAX_ALIASES} alias expansions)`, 'write the values out instead of nesting aliases');
  }
}

/** Reads a variables file: one mapping (or nothing). */
export async function readVarsFile(path: string, origin = path): Promise<Record<string, Value>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new UserError(`${origin}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 'check the path');
  }
  const text = decodeUtf8(bytes, origin);
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
  const plain = YAML.stringify({[name]: value}, {version: '1.1', lineWidth: 0, blockQuote: 'literal'}).trimEnd();
  if (typeof value !== 'string' || plain.length <= ENTRY_WIDTH || value.includes('\n')) return plain;
  // A long one-line string (a Jinja expression): a folded scalar, broken at single spaces,
  // reads back as the same string and keeps within the linters' line length.
  const lines: string[] = [];
  let line = '';
  for (const word of value.split(' ')) {
    if (line && word && line.length + 1 + word.length > FOLD_WIDTH) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' && !lines.length ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  const folded = `${name}: >-\n${lines.map((l) => `  ${l}`).join('\n')}`;
  const back = YAML.parse(folded, {version: '1.1'}) as Record<string, unknown>;
  return back[name] === value ? folded : plain;
}

/** Lines of generated YAML stay within this many characters where they can (yamllint allows 160). */
const ENTRY_WIDTH = 150;
/** Where a folded entry breaks its lines. */
const FOLD_WIDTH = 100;

/** A YAML document; long strings are folded at `lineWidth` (0: never). */
export function stringifyDocument(value: unknown, lineWidth = 0): string {
  return YAML.stringify(value, {version: '1.1', lineWidth, minContentWidth: 40, blockQuote: 'literal'});
}

/** UTF-8 text, or a UserError naming the line of the first byte that is not UTF-8 (never a silent U+FFFD). */
export function decodeUtf8(bytes: Buffer, origin: string): string {
  try {
    return new TextDecoder('utf-8', {fatal: true}).decode(bytes);
  } catch {
    const loose = new TextDecoder('utf-8').decode(bytes);
    const bad = loose.indexOf('\uFFFD');
    const line = loose.slice(0, bad).split('\n').length;
    throw new UserError(`${origin}:${line}: not UTF-8 text`, 'save the file as UTF-8 (Ansible would read the bad bytes as U+FFFD)');
  }
}
