/** The CLI's pure decisions, without Ansible or a cluster: exit codes of a run, BIRD's errors, the ranges Calico advertises. */
import {describe, expect, test} from '@jest/globals';
import type {PlaybookResult} from '../../cli/ansible.js';
import {explainBirdError} from '../../cli/bird.js';
import type {ResolvedVariables} from '../../cli/loader.js';
import {classify} from '../../cli/operate.js';
import {wantedAddresses} from '../../cli/services.js';
import {calicoAdvertiseCidrs} from '../../cli/workspace.js';
import {ExitCode} from '../../lib/errors.js';

const counts = {ok: 5, changed: 1, failed: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0};

function result(over: Partial<PlaybookResult> = {}): PlaybookResult {
  return {exitCode: 0, interrupted: false, hosts: {node1: counts}, changedTasks: [], failures: [], warnings: [], durationSeconds: 1, outputTail: '', events: [], ...over};
}

describe('classify: the exit code of an install or uninstall run', () => {
  test.each([
    ['a run that did its work', result(), ExitCode.ok],
    ['Ctrl-C, whatever else happened', result({interrupted: true, exitCode: 4}), ExitCode.interrupted],
    ['a host that could not be reached', result({hosts: {node1: {...counts, unreachable: 1}}, exitCode: 4}), ExitCode.unreachable],
    ['a failed task', result({exitCode: 2, failures: [{host: 'node1', task: 't', message: 'm', stderr: '', unreachable: false}]}), ExitCode.commandFailed],
    ['ansible-playbook exiting non-zero with no failure event', result({exitCode: 1}), ExitCode.commandFailed],
    ['exit 0 having run on no inventory host (only the localhost check)', result({hosts: {localhost: counts}}), ExitCode.commandFailed],
  ])('%s', (_label, r, code) => {
    expect(classify(r)).toBe(code);
  });
});

describe('explainBirdError: where in the operator\'s filter BIRD found the error', () => {
  test('a line of the filter, counted from its first line', () => {
    // The checked file has four lines of set-up before the filter body.
    expect(explainBirdError('bird: /tmp/x/filter.conf:6:3 syntax error, unexpected END', '/tmp/x/filter.conf')).toBe('line 2, column 3: syntax error, unexpected END');
  });
  test('an error in the set-up lines gives the message alone', () => {
    expect(explainBirdError('/tmp/x/filter.conf:2:1 oops', '/tmp/x/filter.conf')).toBe('oops');
  });
  test('output that names no place is given as BIRD said it, last line first', () => {
    expect(explainBirdError('starting\nbird: Cannot open configuration', '/tmp/x/filter.conf')).toBe('Cannot open configuration');
  });
});

function vars(values: Record<string, unknown>): ResolvedVariables {
  return {values: {extip_calico_export: 'auto', extip_distribution: 'all', extip_calico_service_cidrs: [], extip_external_cidrs: [], extip_ip_pools: [], ...values}} as unknown as ResolvedVariables;
}

describe('calicoAdvertiseCidrs: the ranges calico_advertise_service_external_ips must hold', () => {
  test('the service CIDRs and external CIDRs, once each', () => {
    expect(calicoAdvertiseCidrs(vars({extip_calico_service_cidrs: ['10.0.0.0/24'], extip_external_cidrs: ['10.0.0.0/24', '192.0.2.0/24']}))).toEqual(['10.0.0.0/24', '192.0.2.0/24']);
  });
  test('the pools only in claims mode', () => {
    const pools = [{name: 'a', cidr: '198.51.100.0/24'}];
    expect(calicoAdvertiseCidrs(vars({extip_ip_pools: pools}))).toEqual([]);
    expect(calicoAdvertiseCidrs(vars({extip_distribution: 'balance', extip_ip_pools: pools}))).toEqual(['198.51.100.0/24']);
  });
  test('nothing when extip leaves Calico alone or writes Calico v2 filters', () => {
    for (const mode of ['none', 'etcd-v2-filter']) expect(calicoAdvertiseCidrs(vars({extip_calico_export: mode, extip_external_cidrs: ['192.0.2.0/24']}))).toEqual([]);
  });
});

describe('wantedAddresses: the addresses Services ask for (status and doctor)', () => {
  test('external IPs and LoadBalancer ingress, with every Service that names each', () => {
    const services = [
      {metadata: {namespace: 'a', name: 'web'}, spec: {externalIPs: ['192.0.2.1']}},
      {metadata: {namespace: 'b', name: 'lb'}, spec: {}, status: {loadBalancer: {ingress: [{ip: '192.0.2.1'}, {ip: '192.0.2.9'}, {}]}}},
    ];
    expect([...wantedAddresses(services)]).toEqual([
      ['192.0.2.1', ['a/web', 'b/lb']],
      ['192.0.2.9', ['b/lb']],
    ]);
  });
});
