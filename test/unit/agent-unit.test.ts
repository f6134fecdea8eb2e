/**
 * The naive agent's decisions on their own: entries a current API server
 * refuses (not an IP, IPv4-mapped IPv6) can still come from older clusters
 * or stored data, and are skipped with a reason.
 */
import {expect, test} from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import {canonicalIp} from '../../lib/ipnet.js';
import {Limiter} from '../../agent/limiter.js';
import {desiredFrom, plan} from '../../agent/naive.js';
import {linkDown} from '../../agent/claimcontroller.js';
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

const svc = (name: string, ips: string[]) => ({metadata: {name, namespace: 'default'}, spec: {externalIPs: ips}}) as k8s.V1Service;

test('entries that are not IPs, and IPv4-mapped IPv6 ones, are skipped with a reason; IPv6 is canonical', () => {
  const d = desiredFrom([svc('web', ['10.0.0.7', 'not-an-ip', '::ffff:10.1.1.1', 'FD00:0:0::0007']), svc('other', ['10.0.0.7'])], 32, 128);
  expect([...d.wanted]).toEqual([['10.0.0.7/32', ['default/web', 'default/other']], ['fd00::7/128', ['default/web']]]);
  expect(d.invalid).toEqual([
    {service: 'default/web', uid: undefined, value: 'not-an-ip', rule: 'not-an-ip', reason: '"not-an-ip" is not an IP address'},
    {service: 'default/web', uid: undefined, value: '::ffff:10.1.1.1', rule: 'not-an-ip', reason: '"::ffff:10.1.1.1" is an IPv4-mapped IPv6 address; write the IPv4 address instead'},
  ]);
  expect(canonicalIp('FD00::0:7')).toEqual({ip: 'fd00::7', family: 6});
});

test('an address already on another interface is a conflict, and the operator\'s own address is never taken', () => {
  const d = desiredFrom([svc('web', ['10.210.1.11', '10.0.0.50', '10.0.0.7'])], 32);
  const host = [{iface: 'eth0', ip: '10.210.1.11', prefix: 24}, {iface: 'lo', ip: '10.0.0.50', prefix: 32}];
  const p = plan(d, host, {iface: 'lo', label: 'lo:extip', owns: () => false, addresses: []});
  expect(p.add).toEqual(['10.0.0.7/32']);
  expect(p.adopt).toEqual([]);
  expect(p.conflicts).toEqual([{cidr: '10.210.1.11/32', iface: 'eth0', services: ['default/web']}]);
});

test('the arping queue runs at most its limit at once, in order, and goes on after a task fails', async () => {
  const limiter = new Limiter(3);
  let active = 0;
  let most = 0;
  const started: number[] = [];
  const task = (i: number) => limiter.run(async () => {
    started.push(i);
    active++;
    most = Math.max(most, active);
    await new Promise((r) => setTimeout(r, 5));
    active--;
    if (i === 4) throw new Error('arping failed');
    return i;
  });
  const results = await Promise.allSettled(Array.from({length: 10}, (_, i) => task(i)));
  expect(most).toBe(3);
  expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(9);
});

test('the label on the agent\'s addresses and its owner records read as the role\'s uninstall reads them (shared table)', async () => {
  const {ownLabel, parseOwnerRecord} = await import('../../agent/addresses.js');
  const {readFileSync} = await import('node:fs');
  const {join} = await import('node:path');
  const {repoRoot} = await import('../helpers/ansible.js');
  const cases = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/owner-cases.json'), 'utf8')) as {labels: Array<{iface: string; label: string | null}>; records: Array<{text: string; addresses: string[] | null}>};
  for (const c of cases.labels) expect([c.iface, ownLabel(c.iface) ?? null]).toEqual([c.iface, c.label]);
  for (const c of cases.records) expect([c.text, parseOwnerRecord(c.text)?.addresses ?? null]).toEqual([c.text, c.addresses]);
});

test('a claim controller reads its interface\'s link as down from operstate down, lowerlayerdown or a missing interface; unknown is up', async () => {
  const sys = await mkdtemp(join(tmpdir(), 'extip-sys-'));
  try {
    const states: Record<string, string> = {eth0: 'up\n', lo: 'unknown\n', eth1: 'down\n', 'bond0.10': 'lowerlayerdown\n'};
    for (const [iface, state] of Object.entries(states)) {
      await mkdir(join(sys, iface));
      await writeFile(join(sys, iface, 'operstate'), state);
    }
    const seen = await Promise.all(['eth0', 'lo', 'eth1', 'bond0.10', 'gone0'].map((i) => linkDown(i, sys)));
    expect(seen).toEqual([undefined, undefined, 'down', 'lowerlayerdown', 'gone']);
  } finally {
    await rm(sys, {recursive: true, force: true});
  }
});
