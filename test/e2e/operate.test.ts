/** `extip install` and `extip uninstall`, built, run as a user types them, on the lab. */
import {expect, test} from '@jest/globals';
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa} from 'execa';
import {diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {repoRoot} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';
import {useLab} from '../helpers/lab.js';

const ecmp = join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml');
const lab = useLab({nodes: 3});

test('install --dry-run changes nothing; install shows progress and a summary; --json matches what happened; uninstall restores', async () => {
  const before = await takeSnapshot(lab);
  const dry = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--dry-run']);
  expect(dry.exitCode).toBe(0);
  expect(dry.stderr).toContain('dry run: nothing was changed');
  expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);

  const install = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`]);
  expect(install.exitCode).toBe(0);
  expect(install.stdout).toBe('');
  expect(install.stderr).toMatch(/\[\s*[\d.]+s\] PLAY External IP controller/);
  expect(install.stderr).toMatch(/TASK Externalip \| Label the target nodes/);
  expect(install.stderr).toMatch(/changed: node1: Externalip \| Label the target nodes/);
  expect(install.stderr).toMatch(/^node1\s+ok=\d+\s+changed=\d+\s+failed=0\s+unreachable=0/m);
  expect(install.stderr).toMatch(/Install finished in [\d.]+s: \d+ changes\./);
  expect((await lab.kubectl(['get', 'ds', 'claimcontroller', '-n', 'default'])).exitCode).toBe(0);

  const again = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--json']);
  expect(again.exitCode).toBe(0);
  const result = JSON.parse(again.stdout);
  expect(result).toMatchObject({action: 'install', ok: true, exitCode: 0, dryRun: false, changedTasks: [], failures: []});
  expect(Object.keys(result.hosts).sort()).toEqual(['localhost', 'node1', 'node2', 'node3']);
  expect(Object.values(result.hosts).every((h: any) => h.changed === 0 && h.failed === 0)).toBe(true);

  const noTty = await extip(['uninstall', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`]);
  expect(noTty.exitCode).toBe(2);
  expect(noTty.stderr).toContain('pass --yes');

  const removal = await extip(['uninstall', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--yes', '--json']);
  expect(removal.exitCode).toBe(0);
  const removed = JSON.parse(removal.stdout);
  expect(removed.changedTasks.length).toBeGreaterThan(0);
  expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
});

test('a bad variable exits 2 and runs nothing', async () => {
  const r = await extip(['install', '-i', lab.kubesprayInventory, '--set', 'extip_mask=64']);
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('extip_mask: got 64 (from --set extip_mask=64)');
  expect(r.stderr).not.toContain('PLAY');
});

test('a missing ansible-playbook exits 3 and says how to install one', async () => {
  const r = await extip(['install', '-i', lab.kubesprayInventory], {env: {PATH: '/nonexistent'}});
  expect(r.exitCode).toBe(3);
  expect(r.stderr).toContain('ansible-playbook is not installed or not on PATH');
  expect(r.stderr).toContain('install ansible-core 2.18 or newer');
});

test('a failing task exits 4 and names the host, the task and the message', async () => {
  const r = await extip(['install', '-i', lab.kubesprayInventory, '--set', 'extip_iface=eth7']);
  expect(r.exitCode).toBe(4);
  expect(r.stderr).toContain('Failed: host node1, task "Externalip | Check that extip_iface exists on each host"');
  expect(r.stderr).toContain('Interface eth7 does not exist on node1');
});

test('an unreachable host exits 5', async () => {
  const inventory = join(lab.dir, 'unreachable.yml');
  await writeFile(inventory, `all:\n  children:\n    kube_control_plane: {hosts: {ghost: null}}\n    kube_node: {hosts: {ghost: {ansible_host: 127.0.0.1, ansible_port: 1, ansible_connection: ssh, ansible_user: nobody}}}\n`);
  const r = await extip(['install', '-i', inventory]);
  expect(r.exitCode).toBe(5);
  expect(r.stderr).toMatch(/Unreachable: host ghost/);
});

test('Ctrl-C stops Ansible cleanly, exits 130 and says how to finish', async () => {
  const before = await takeSnapshot(lab);
  const child = execa(join(repoRoot, 'bin/run.js'), ['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`], {reject: false, env: {NO_COLOR: '1'}});
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const deadline = Date.now() + 60000;
  while (!err.includes('TASK Externalip | Label the target nodes') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  const r = await child;
  expect(r.exitCode).toBe(130);
  expect(err).toContain('was interrupted');
  expect(err).toContain('Run the same command again to finish it');
  // Uninstall after the half-finished install gives back the state before it.
  expect((await extip(['uninstall', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--yes'])).exitCode).toBe(0);
  expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
});

test('SIGHUP (a dropped SSH session) stops Ansible too, and no vars file is left at any point after the playbook started', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'extip-hup-'));
  try {
    const child = execa(join(repoRoot, 'bin/run.js'), ['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '-e', 'site_secret=hunter2'], {reject: false, env: {NO_COLOR: '1', TMPDIR: tmp}});
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const deadline = Date.now() + 60000;
    while (!err.includes('TASK Externalip | Label the target nodes') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // Ansible runs; the file with the -e values is already gone.
    const during = await readdir(tmp, {recursive: true});
    expect(during.filter((f) => String(f).endsWith('extip-vars.yml'))).toEqual([]);
    child.kill('SIGHUP');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(err).toContain('was interrupted');
    // ansible-playbook ended with extip, not orphaned.
    const ps = await execa('ps', ['-eo', 'args'], {reject: false});
    expect(ps.stdout.split('\n').filter((l) => l.includes('ansible-playbook') && l.includes(tmp))).toEqual([]);
    // extip's run directory (vars and events files) is gone; what Ansible itself leaves there is its own.
    expect((await readdir(tmp)).filter((f) => f.startsWith('extip-'))).toEqual([]);
  } finally {
    await rm(tmp, {recursive: true, force: true});
    expect((await extip(['uninstall', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--yes'])).exitCode).toBe(0);
  }
});
