#!/usr/bin/env node
// extip's entry point. `extip --version` is answered without loading the CLI
// framework, so scripts that probe the version pay only for Node's start.
import {readFileSync} from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  const {version} = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`extip/${version} ${process.platform}-${process.arch} node-${process.version}\n`);
} else {
  const {execute} = await import('@oclif/core');
  await execute({dir: import.meta.url});
}
