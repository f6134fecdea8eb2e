/**
 * The demo: a 3-node lab, `extip install` with the seed's ECMP variables, a
 * Service with external IPs, and what a user would want to see. Tears the lab
 * down at the end, or with --keep leaves it up until Ctrl-C.
 * Run it with `npm run demo` (or `npm run demo -- --keep`).
 */
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from '../helpers/root.js';
import {routerNexthops, waitFor} from './bgp.js';
import {CUSTOM_FILTERS} from './calico.js';
import {startEnvironment} from './environment.js';

const keep = process.argv.includes('--keep');
const say = (text: string) => process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);

say('Bringing up a lab (npm run lab): 3 nodes and a router in network namespaces, a Kubernetes control plane, a kubelet per node, etcd, calico/node v2 (BIRD 1.6)');
const {lab, etcd} = await startEnvironment(3, (line) => console.log(`  ${line}`));
let failed = false;
try {
  console.log(`  ${(await lab.kubectl(['version'])).stdout.split('\n').filter((l) => l.startsWith('Server')).join('')}`);
  for (const h of lab.hosts) console.log(`  ${h.name}  eth0 ${h.ip}  (namespace ${h.ns}), calico/node's BIRD peering with the router`);
  console.log(`  etcd (v2 API, TLS) on node1 at ${etcd.endpoint}; the router ${lab.router.ip} merges equal paths (ECMP)`);
  const filterKey = `${CUSTOM_FILTERS}/v4/lo_iface`;
  const showFilter = async () => {
    const r = await etcd.etcdctl(['get', filterKey]);
    console.log(r.exitCode === 0 ? `  ${filterKey}:\n${r.stdout.trimEnd().replace(/^/gm, '    ')}` : `  ${filterKey}: (none)`);
  };
  const ecmp = join(repoRoot, 'inventory-examples/ecmp/extip_ecmp.yaml');
  say(`extip install -i <lab inventory> -e @inventory-examples/ecmp/extip_ecmp.yaml`);
  const install = await execa(process.execPath, [join(repoRoot, 'bin/run.js'), 'install', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`], {reject: false, stdio: 'inherit'});
  if (install.exitCode !== 0) throw new Error(`extip install exited ${install.exitCode}`);

  say("Calico's BGP export filter in etcd (extip_calico_export auto found Calico v2 and wrote it)");
  await showFilter();

  say('A Service with external IPs 10.0.0.7 and 10.0.0.8');
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'nginx', namespace: 'default'}, spec: {selector: {app: 'nginx'}, ports: [{port: 80}], externalIPs: ['10.0.0.7', '10.0.0.8']}};
  console.log((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).stdout);
  console.log((await lab.kubectl(['get', 'service', 'nginx', '-n', 'default'])).stdout);

  say('Labelled nodes (kubectl get nodes -l externalip=true)');
  console.log((await lab.kubectl(['get', 'nodes', '-l', 'externalip=true', '-L', 'externalip'])).stdout);
  say('The controller DaemonSet and its arguments');
  console.log((await lab.kubectl(['get', 'daemonset', '-n', 'default', '-l', 'app.kubernetes.io/managed-by=extip'])).stdout);
  const ds = JSON.parse((await lab.kubectl(['get', 'daemonset', 'claimcontroller', '-n', 'default', '-o', 'json'])).stdout);
  console.log(`  command: ${[...ds.spec.template.spec.containers[0].command, ...ds.spec.template.spec.containers[0].args].join(' ')}`);
  console.log(`  nodeSelector: ${JSON.stringify(ds.spec.template.spec.nodeSelector)}  hostNetwork: ${ds.spec.template.spec.hostNetwork}`);
  say('Addresses on lo of each node (brought up by ipmanager, run by the lab kubelet with its own ServiceAccount token)');
  await waitFor('10.0.0.7 routed to every node', async () => (await routerNexthops(lab, '10.0.0.7')).length === lab.hosts.length, 30000).catch(() => {});
  for (const h of lab.hosts) {
    const a = JSON.parse((await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'lo'])).stdout);
    console.log(`  ${h.name}: ${a[0].addr_info.map((i: {local: string; prefixlen: number}) => `${i.local}/${i.prefixlen}`).join(', ')}`);
  }
  say("The router's routes to the external IPs (ECMP)");
  for (const ip of ['10.0.0.7', '10.0.0.8']) console.log((await lab.exec('tor', 'ip', ['route', 'show', ip])).stdout);

  say('A Service asking for 8.8.8.8, outside extip_external_cidrs (10.0.0.0/24): refused, with an Event');
  const rogue = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'rogue', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['8.8.8.8']}};
  await lab.kubectl(['apply', '-f', '-'], JSON.stringify(rogue));
  const refused = () => lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=rogue,reason=ExternalIPRefused', '-o', 'custom-columns=REASON:.reason,MESSAGE:.message']);
  await waitFor('the ExternalIPRefused Event', async () => (await refused()).stdout.includes('8.8.8.8'), 15000).catch(() => {});
  console.log((await refused()).stdout);
  await lab.kubectl(['delete', 'service', 'rogue', '-n', 'default']);

  if (keep) {
    say('The lab stays up until Ctrl-C');
    console.log(`  kubectl:   ${lab.kubectlPath} --kubeconfig ${lab.api.kubeconfig} get all -A`);
    console.log(`  a node:    ip netns exec ${lab.host('node1').ns} ip address`);
    console.log(`  inventory: ${lab.kubesprayInventory}`);
    console.log(`  uninstall: ${join(repoRoot, 'bin/run.js')} uninstall -i ${lab.kubesprayInventory} -e @${ecmp} --yes`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  } else {
    say('extip uninstall --yes');
    const removal = await execa(process.execPath, [join(repoRoot, 'bin/run.js'), 'uninstall', '-i', lab.kubesprayInventory, '-e', `@${ecmp}`, '--yes'], {reject: false, stdio: 'inherit'});
    if (removal.exitCode !== 0) throw new Error(`extip uninstall exited ${removal.exitCode}`);
    console.log((await lab.kubectl(['get', 'nodes', '--show-labels'])).stdout);
    await showFilter();
    await waitFor('no route for 10.0.0.7', async () => (await routerNexthops(lab, '10.0.0.7')).length === 0, 30000).catch(() => {});
    console.log(`  the router's route to 10.0.0.7: ${(await lab.exec('tor', 'ip', ['route', 'show', '10.0.0.7'])).stdout.trim() || '(none)'}`);
  }
} catch (err) {
  failed = true;
  console.error(`demo failed: ${(err as Error).message}`);
} finally {
  say('Tearing the lab down');
  await lab.stop();
}
process.exitCode = failed ? 1 : 0;
