/**
 * Dual-stack LoadBalancers on a dual-stack lab (`npm run lab -- --dual-stack`:
 * IPv6 beside IPv4 on the segment and the client behind the router, and the
 * real API server with Service CIDRs of both families, so that it takes
 * `RequireDualStack` Services). The role installs claims mode with a pool of
 * each family; a LoadBalancer gets one address a family, in the order of its
 * `ipFamilies`, each up on a node's eth0 (the IPv6 one after duplicate
 * address detection) and reachable from the client; an exhausted IPv6 pool is
 * an Event.
 */
import {expect, test} from '@jest/globals';
import {waitFor} from '../lab/bgp.js';
import type {LabClient} from '../lab/lab.js';
import {explain, runRole} from '../helpers/role.js';
import {useLab} from '../helpers/lab.js';

const V4 = ['10.210.1.200', '10.210.1.201'];
const V6 = 'fd10:210:1::200';
const vars = {
  extip_distribution: 'balance',
  extip_namespace: 'extip',
  extip_iface: 'eth0',
  extip_mask: 32,
  extip_ip_pools: [
    {name: 'v4', cidr: '10.210.1.0/24', ranges: [[V4[0], V4[1]]]},
    // One address: the second dual-stack Service finds the pool exhausted.
    {name: 'v6', cidr: 'fd10:210:1::/64', ranges: [[V6, V6]]},
  ],
};

let client: LabClient;
const lab = useLab({nodes: 2, dualStack: true}, async (started) => {
  const run = await runRole(started, {vars});
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
  client = await started.addClient();
  for (const h of started.hosts) started.serveName(h.name, 80);
});

const loadBalancer = (name: string, ipFamilies: string[]) =>
  ({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default'}, spec: {type: 'LoadBalancer', ipFamilyPolicy: 'RequireDualStack', ipFamilies, ports: [{port: 80}]}});

async function ingress(name: string): Promise<string[]> {
  const r = await lab.kubectl(['get', 'service', name, '-n', 'default', '-o', 'json']);
  return (JSON.parse(r.stdout).status?.loadBalancer?.ingress ?? []).map((i: {ip: string}) => i.ip);
}

/** The nodes whose eth0 has the address up (an IPv6 one past duplicate address detection). */
async function upOn(ip: string): Promise<string[]> {
  return (await Promise.all(lab.hosts.map(async (h) => {
    const r = await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    const up = (JSON.parse(r.stdout)[0].addr_info as Array<{local: string; tentative?: boolean; dadfailed?: boolean}>).some((a) => a.local === ip && !a.tentative && !a.dadfailed);
    return up ? [h.name] : [];
  }))).flat();
}

async function allocationFailures(name: string): Promise<string> {
  const r = await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${name},reason=AllocationFailed`, '-o', 'jsonpath={.items[*].message}']);
  return r.stdout;
}

test('the API server gives a RequireDualStack Service both families; extip gives it an address of each, in its order, up on a node and reachable from the client over both', async () => {
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(loadBalancer('both', ['IPv6', 'IPv4'])))).exitCode).toBe(0);
  const spec = JSON.parse((await lab.kubectl(['get', 'service', 'both', '-n', 'default', '-o', 'json'])).stdout).spec;
  expect(spec.ipFamilies).toEqual(['IPv6', 'IPv4']);
  expect(spec.clusterIPs).toHaveLength(2);
  await waitFor('both addresses given', async () => (await ingress('both')).length === 2, 30000);
  expect(await ingress('both')).toEqual([V6, V4[0]]);
  await waitFor('each up on exactly one node', async () => (await upOn(V6)).length === 1 && (await upOn(V4[0])).length === 1, 30000);
  for (const ip of [V4[0], V6]) {
    const [holder] = await upOn(ip);
    const r = await client.connectMany(ip, 80, 3);
    expect([ip, r]).toEqual([ip, {byAnswer: {[holder]: 3}, failures: 0}]);
  }
});

test('the IPv6 pool exhausted: the next one gets its IPv4 address and an Event naming the pool; the IPv6 address, once free, is its', async () => {
  try {
    expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(loadBalancer('more', ['IPv4', 'IPv6'])))).exitCode).toBe(0);
    await waitFor('an AllocationFailed Event on more', async () => (await allocationFailures('more')).includes('every IpClaimPool of IPv6 addresses is exhausted (v6)'), 30000);
    await waitFor('more has its IPv4 address', async () => (await ingress('more')).length === 1, 30000);
    expect(await ingress('more')).toEqual([V4[1]]);
    // both goes: its IPv6 address comes down, goes back to the pool, and more gets it, second as its families say.
    expect((await lab.kubectl(['delete', 'service', 'both', '-n', 'default'])).exitCode).toBe(0);
    await waitFor('more has both', async () => (await ingress('more')).join() === [V4[1], V6].join(), 30000);
    await waitFor('its IPv6 address up on one node', async () => (await upOn(V6)).length === 1, 30000);
    expect((await lab.kubectl(['delete', 'service', 'more', '-n', 'default'])).exitCode).toBe(0);
    await waitFor('every address down', async () => (await Promise.all([...V4, V6].map(upOn))).every((n) => n.length === 0), 30000);
  } finally {
    await lab.kubectl(['delete', 'service', '-n', 'default', '--ignore-not-found', 'both', 'more']);
  }
});
