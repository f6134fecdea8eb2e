/** Handlebars with the settings extip needs: no HTML escaping, missing values are errors. */
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import Handlebars from 'handlebars';
import type {Value} from '../lib/catalogue.js';
import {stringifyEntry, stringifyInline} from './yamlio.js';

const hb = Handlebars.create();

/** Wraps prose into `# ` comment lines of at most `width` characters. */
export function commentBlock(text: string, prefix = '# ', width = 88): string {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      if (line && prefix.length + line.length + 1 + word.length > width) {
        lines.push(prefix + line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    }
    lines.push((prefix + line).trimEnd());
  }
  return lines.join('\n');
}

hb.registerHelper('comment', (text: string, options: Handlebars.HelperOptions) =>
  commentBlock(text, (options.hash.prefix as string | undefined) ?? '# '),
);
hb.registerHelper('yamlEntry', (name: string, value: Value) => stringifyEntry(name, value));
hb.registerHelper('yamlInline', (value: Value) => stringifyInline(value));
hb.registerHelper('json', (value: unknown) => JSON.stringify(value));
hb.registerHelper('indent', (text: string, spaces: number) =>
  text
    .split('\n')
    .map((l) => (l ? ' '.repeat(spaces) + l : l))
    .join('\n'),
);
hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);

const cache = new Map<string, Handlebars.TemplateDelegate>();

/** Renders the handlebars template <dir>/<name> with `context` (compiled once per path). */
export async function renderTemplate(dir: string, name: string, context: object): Promise<string> {
  const path = join(dir, name);
  let template = cache.get(path);
  if (!template) {
    const source = await readFile(path, 'utf8');
    template = hb.compile(source, {noEscape: true, strict: true});
    cache.set(path, template);
  }
  return template(context);
}
