/**
 * The original install guide's ECMP scenario end to end, driven through the CLI: the controller on
 * node1 and node3 only, a Service with two external IPs, BIRD on the nodes
 * exporting their /32s on lo to a router with ECMP, TCP from a client behind
 * the router reaching both nodes, a drained node withdrawing, and uninstall
 * giving back the state before install.
 */
import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {startBird} from '../lab/bird.js';
import {nodeBird2Config, routerBird2Config, routerNexthops, waitFor} from '../lab/bgp.js';
import {diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {repoRoot} from '../helpers/ansible.js';
import {extip} from '../helpers/cli.js';
import {type PolicyRule, auditUses, rbacReport} from '../helpers/rbac-audit.js';
import {useLab} from '../helpers/lab.js';

const ecmp = join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml');
const lab = useLab({nodes: 3});

async function lo(node: string): Promise<string[]> {
  const a = JSON.parse((await lab.exec(node, 'ip', ['-j', 'address', 'show', 'dev', 'lo'])).stdout);
  return a[0].addr_info.map((i: {local: string; prefixlen: number}) => `${i.local}/${i.prefixlen}`);
}

test('ECMP over node1 and node3, TCP to both, drain, delete, uninstall', async () => {
  // The router and the nodes' BGP speakers, and a client behind the router.
  await startBird(lab, 'tor', routerBird2Config(lab));
  for (const h of lab.hosts) await startBird(lab, h.name, nodeBird2Config(lab, h));
  const client = await lab.addClient();
  // Stand-ins for kube-proxy: a TCP server on 10.0.0.7:80 in node1 and node3 that answers with its name.
  for (const node of ['node1', 'node3']) lab.serveName(node);
  const before = await takeSnapshot(lab);

  // 1. install with the example's variables (extip_ecmp.yaml), the controller on node1 and node3 only.
  const install = await extip(['install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--limit', 'node1,node3']);
  expect(install.exitCode).toBe(0);
  // This lab runs plain BIRD, no Calico: auto says so instead of failing or staying silent.
  expect(install.stderr).toMatch(/Warning: extip_calico_export is auto and extip_iface is lo, but Calico could not be detected/);
  const labelled = JSON.parse((await lab.kubectl(['get', 'nodes', '-l', 'externalip=true', '-o', 'json'])).stdout);
  expect(labelled.items.map((n: {metadata: {name: string}}) => n.metadata.name)).toEqual(['node1', 'node3']);

  // 2. a Service with two external IPs inside extip_external_cidrs (10.0.0.0/24) and one outside:
  // the two on lo of node1 and node3 only, two nexthops each on the router; 8.8.8.8 nowhere, and
  // an Event on the Service says why.
  await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'nginx', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7', '10.0.0.8', '8.8.8.8']}}));
  for (const ip of ['10.0.0.7', '10.0.0.8']) {
    await waitFor(`${ip} with two nexthops`, async () => (await routerNexthops(lab, ip)).length === 2, 30000);
    expect(await routerNexthops(lab, ip)).toEqual(['10.210.1.11', '10.210.1.13']);
  }
  expect(await lo('node1')).toEqual(expect.arrayContaining(['10.0.0.7/32', '10.0.0.8/32']));
  expect(await lo('node3')).toEqual(expect.arrayContaining(['10.0.0.7/32', '10.0.0.8/32']));
  expect((await lo('node2')).filter((a) => a.startsWith('10.0.0.'))).toEqual([]);
  for (const node of ['node1', 'node2', 'node3']) expect(await lo(node)).not.toContain('8.8.8.8/32');
  expect(await routerNexthops(lab, '8.8.8.8')).toEqual([]);
  const refused = async () => JSON.parse((await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=nginx,reason=ExternalIPRefused', '-o', 'json'])).stdout).items as Array<{message: string}>;
  await waitFor('an ExternalIPRefused Event on nginx', async () => (await refused()).length > 0, 15000);
  // Both controllers refused it; they wrote one Event between them.
  expect((await refused()).map((e) => e.message)).toEqual(['external IP not brought up: 8.8.8.8: 8.8.8.8 is outside the ranges external IPs may come from (10.0.0.0/24); the cluster\'s operator declares them (extip_external_cidrs, or an IpClaimPool)']);
  const status = await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig]);
  expect(status.exitCode).toBe(6);
  expect(JSON.parse(status.stdout).problems).toContainEqual(expect.stringMatching(/^external IP 8\.8\.8\.8 \(default\/nginx\) is refused: 8\.8\.8\.8 is outside/));

  // 3. TCP from the client reaches both nodes over many connections.
  const answers = await client.connectMany('10.0.0.7', 80, 60);
  expect(answers.failures).toBe(0);
  expect(Object.keys(answers.byAnswer).sort()).toEqual(['node1', 'node3']);

  // 4. node1 taken out (its label removed): the DaemonSet's pod there is deleted, the kubelet
  // sends SIGTERM, node1 withdraws, one nexthop left.
  expect((await lab.kubectl(['label', 'node', 'node1', 'externalip-'])).exitCode).toBe(0);
  await waitFor('one nexthop for 10.0.0.7', async () => (await routerNexthops(lab, '10.0.0.7')).length === 1);
  expect(await routerNexthops(lab, '10.0.0.7')).toEqual(['10.210.1.13']);
  expect((await lo('node1')).filter((a) => a.startsWith('10.0.0.'))).toEqual([]);

  // 5. deleting the Service takes the addresses and routes away.
  await lab.kubectl(['delete', 'service', 'nginx', '-n', 'default']);
  await waitFor('no route for 10.0.0.7', async () => (await routerNexthops(lab, '10.0.0.7')).length === 0);
  expect((await lo('node3')).filter((a) => a.startsWith('10.0.0.'))).toEqual([]);

  // The controller's RBAC is what it used: no request refused, no rule unused.
  const rules = JSON.parse((await lab.kubectl(['get', 'clusterrole', 'extip:claimcontroller', '-o', 'json'])).stdout).rules as PolicyRule[];
  const uses = await auditUses(lab.k8s.auditLog, 'system:serviceaccount:default:');
  expect(rbacReport(uses, 'system:serviceaccount:default:claimcontroller', rules)).toEqual({unused: [], forbidden: []});

  // 6. uninstall: the state equals the one before install.
  const removal = await extip(['uninstall', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--limit', 'node1,node3', '--yes']);
  expect(removal.exitCode).toBe(0);
  await waitFor('the state before install', async () => diffSnapshots(before, await takeSnapshot(lab)).length === 0, 20000).catch(async () => {
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
  });
});
