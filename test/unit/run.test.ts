/** lib/run.ts's long-running programs, run from a child Node as the agent runs its DHCP clients. */
import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from '../helpers/root.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('programs started with spawnProgram stop when the process exits, a dozen of them without a listener warning', async () => {
  const script = `import(${JSON.stringify(join(repoRoot, 'dist/lib/run.js'))}).then((m) => {
    const pids = [];
    for (let i = 0; i < 12; i++) pids.push(m.spawnProgram('sleep', ['30'], {}).child.pid);
    console.log(JSON.stringify(pids));
    setTimeout(() => process.exit(0), 300);
  })`;
  const r = await execa(process.execPath, ['-e', script]);
  const pids = JSON.parse(r.stdout) as number[];
  expect(pids).toHaveLength(12);
  expect(r.stderr).not.toContain('MaxListenersExceededWarning');
  const end = Date.now() + 5000;
  while (pids.some(alive) && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
  expect(pids.filter(alive)).toEqual([]);
});
