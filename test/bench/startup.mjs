#!/usr/bin/env node
// Startup benchmark: `extip --version` (and `extip --help`) against `node -e 0`,
// measured alternately in the same run so machine noise hits both alike.
// Usage: node test/bench/startup.mjs [runs]   (default 30)
import {spawnSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';

const runs = Number(process.argv[2] ?? 30);
const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const subjects = {
  'node -e 0': [process.execPath, ['-e', '0']],
  'extip --version': [process.execPath, [bin, '--version']],
  'extip --help': [process.execPath, [bin, '--help']],
};

const times = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
for (let i = 0; i < runs + 2; i++) {
  for (const [name, [cmd, args]] of Object.entries(subjects)) {
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, args, {stdio: ['ignore', 'ignore', 'inherit']});
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}`);
    if (i >= 2) times[name].push(ms); // the first two rounds warm the file cache
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const base = median(times['node -e 0']);
console.log(`startup, ${runs} runs each, interleaved`);
for (const [name, xs] of Object.entries(times)) {
  console.log(`${name.padEnd(16)} median ${median(xs).toFixed(1).padStart(7)} ms   p90 ${p90(xs).toFixed(1).padStart(7)} ms   ratio ${(median(xs) / base).toFixed(2)}x`);
}
