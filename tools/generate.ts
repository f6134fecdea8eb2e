/**
 * `npm run generate`: rewrites the files derived from lib/catalogue.ts.
 * `npm run generate -- --check` only reports the ones that differ (exit 1).
 */
import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {generatedFiles} from './derived.js';
import {packageRoot} from '../cli/paths.js';

const check = process.argv.includes('--check');
let stale = 0;
for (const file of await generatedFiles()) {
  const path = join(packageRoot, file.path);
  const current = await readFile(path, 'utf8').catch(() => '');
  if (current === file.content) continue;
  stale++;
  if (check) console.error(`${file.path} is out of date`);
  else {
    await writeFile(path, file.content);
    console.error(`wrote ${file.path}`);
  }
}
if (check && stale) process.exitCode = 1;
