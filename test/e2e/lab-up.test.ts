/**
 * `npm run lab`: comes up with the nodes asked for, writes --info, answers
 * kubectl, and on SIGTERM removes every namespace, process and directory.
 */
import {expect, test} from '@jest/globals';
import {spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from '../helpers/root.js';
import {tempDir} from '../helpers/ansible.js';

test('the lab comes up with --nodes and --info, and goes without a trace on SIGTERM', async () => {
  const dir = await tempDir();
  try {
    const infoFile = join(dir.path, 'lab.json');
    const child = spawn(process.execPath, [join(repoRoot, 'dist/test/lab/up.js'), '--nodes', '2', '--info', infoFile], {stdio: ['ignore', 'pipe', 'pipe']});
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 120_000;
    while (!out.includes('The lab is up') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    expect(out).toContain('The lab is up');
    const info = JSON.parse(await readFile(infoFile, 'utf8'));
    expect(info.nodes.map((n: {name: string}) => n.name)).toEqual(['node1', 'node2']);
    expect(Object.keys(info.inventories).sort()).toEqual(['kargo', 'kubespray']);
    expect(info.router.ip).toBe('10.210.1.1');
    expect(info.etcd.endpoint).toBe('https://10.210.1.11:2379');
    const nodes = await execa(info.kubectl, ['--kubeconfig', info.kubeconfig, 'get', 'nodes', '-o', 'name'], {reject: false});
    expect(nodes.stdout.split('\n').sort()).toEqual(['node/node1', 'node/node2']);
    const labDir = join(info.kubeconfig, '..', '..');
    expect(existsSync(labDir)).toBe(true);

    child.kill('SIGTERM');
    await exited;
    const namespaces = (await execa('ip', ['netns', 'list'])).stdout;
    for (const n of info.nodes) expect(namespaces).not.toContain(n.namespace);
    expect(namespaces).not.toContain(info.router.namespace);
    expect(existsSync(labDir)).toBe(false);
    const left = await execa('pgrep', ['-f', labDir], {reject: false});
    expect(left.stdout).toBe('');
  } finally {
    await dir.cleanup();
  }
}, 180_000);

test('npm run lab refuses a bad --nodes, saying what it takes', async () => {
  const r = await execa(process.execPath, [join(repoRoot, 'dist/test/lab/up.js'), '--nodes', 'many'], {reject: false});
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('--nodes takes a whole number from 1 to 200, not many');
});
