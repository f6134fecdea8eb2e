/**
 * `npm run lab`: a bare-metal cluster on this machine to try extip on, up
 * until Ctrl-C or SIGTERM, then gone with every namespace, process and
 * directory it made.
 *   npm run lab -- --nodes 3 --info lab.json
 *   npm run lab -- --racks 2 --calico none
 */
import {writeFile} from 'node:fs/promises';
import {parseArgs} from 'node:util';
import {type LabInfo, startEnvironment} from './environment.js';

const usage = `Usage: npm run lab -- [--nodes N] [--racks R] [--calico v2|none] [--dual-stack] [--upnp] [--dhcp] [--info FILE]

Brings up a lab cluster in network namespaces: a real Kubernetes control plane
(built from its Go module by the setup), a kubelet per node that runs pods as
processes, Calico v2's etcd and calico/node, a top-of-rack router per rack
that peers with its nodes over BGP and merges equal paths (ECMP), and a client
host to send traffic from. It stays up until Ctrl-C or SIGTERM, then removes
everything.

Options:
  --nodes N    number of nodes, 1 to 200 (default 3)
  --racks R    racks the nodes spread over in order, 1 to the number of nodes
               (default 1): each rack its own segment 10.210.R.0/24 behind
               its ToR (AS 64512); with 2 or more, a core router (AS 64600)
               peers with every ToR over eBGP, merges the racks' paths, and
               the client sits behind it. With 3 nodes and 2 racks: node1
               and node2 in rack 1, node3 in rack 2
  --calico v2|none
               v2 (default): calico/node v2 (BIRD 1.6) on every node, peering
               with the router; none: no calico/node, the router (BFD on,
               AS 64512) peers with extip's own speaker
               (extip_bgp_speaker: extip)
  --dual-stack IPv6 beside IPv4 (one rack): the segment fd10:210:1::/64 (the
               ToR ::1, node i ::(11+i), hexadecimal), the client fd10:99::2,
               and an API server with the Service CIDRs 10.96.0.0/12 and
               fd00:10:96::/112, which takes dual-stack Services
  --upnp       a UPnP Internet gateway on the (first) ToR: miniupnpd in secure
               mode, its external side 1.2.3.1 with a host 1.2.3.2 behind it
               (for extip_upnp)
  --dhcp       a DHCP server on the (first) ToR: dnsmasq leasing 10.210.1.60 to
               10.210.1.79 of the segment (for extip_lb_dhcp)
  --info FILE  also write what it prints as JSON: kubeconfig, inventories
               (kubespray, kargo), nodes (name, namespace, ip, rack), routers
               (name, namespace, ip, role tor|core, rack), router (the first
               ToR: namespace, ip), etcd (endpoint), client (namespace, ip,
               behind); with --dual-stack, ip6 of each and dualStack
               (segment, serviceCidr); with --upnp, upnp (gateway, external,
               internet: namespace, ip); with --dhcp, dhcp (server,
               range: "first-last")
  -h, --help   show this help
Needs root (network namespaces).`;

function fail(message: string): never {
  process.stderr.write(`lab: ${message}\n\n${usage}\n`);
  process.exit(2);
}

let options;
try {
  options = parseArgs({options: {nodes: {type: 'string', default: '3'}, racks: {type: 'string', default: '1'}, calico: {type: 'string', default: 'v2'}, 'dual-stack': {type: 'boolean'}, upnp: {type: 'boolean'}, dhcp: {type: 'boolean'}, info: {type: 'string'}, help: {type: 'boolean', short: 'h'}}, strict: true}).values;
} catch (err) {
  fail((err as Error).message);
}
if (options.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const nodes = Number(options.nodes);
if (!/^\d+$/.test(String(options.nodes)) || nodes < 1 || nodes > 200) fail(`--nodes takes a whole number from 1 to 200, not ${options.nodes}`);
const racks = Number(options.racks);
if (!/^\d+$/.test(String(options.racks)) || racks < 1 || racks > Math.min(nodes, 60)) fail(`--racks takes a whole number from 1 to ${Math.min(nodes, 60)} (the number of nodes, at most 60), not ${options.racks}`);
const calico = options.calico as string;
if (calico !== 'v2' && calico !== 'none') fail(`--calico takes v2 or none, not ${calico}`);
const dualStack = Boolean(options['dual-stack']);
if (dualStack && racks > 1) fail('--dual-stack takes one rack: leave --racks out');
if (process.getuid?.() !== 0) fail('the lab needs root: network namespaces and addresses on their interfaces');

function describe(info: LabInfo, seconds: number): string {
  const width = 11;
  return [
    `The lab is up (${seconds.toFixed(1)} s).`,
    '',
    `  kubectl      ${info.kubectl} --kubeconfig ${info.kubeconfig} get nodes`,
    `  inventories  ${info.inventories.kubespray}  (kubespray groups)`,
    `               ${info.inventories.kargo}  (Kargo groups)`,
    ...info.nodes.map((n) => `  ${n.name.padEnd(width)}  ${n.ip}${n.ip6 ? `  ${n.ip6}` : ''}  rack ${n.rack}  (ip netns exec ${n.namespace} ...)`),
    ...info.routers.map((r) => `  ${r.name.padEnd(width)}  ${r.ip}  ${r.role === 'core' ? 'core, AS 64600' : `ToR of rack ${r.rack}, AS 64512`}  (ip netns exec ${r.namespace} ip route)`),
    ...(info.client ? [`  client       ${info.client.ip}${info.client.ip6 ? `  ${info.client.ip6}` : ''}  behind ${info.client.behind}  (ip netns exec ${info.client.namespace} curl http://10.0.0.7/)`] : []),
    `  etcd         ${info.etcd.endpoint}  (Calico v2's datastore, TLS)`,
    ...(info.upnp ? [`  upnp         ${info.upnp.gateway}  external ${info.upnp.external}  (ip netns exec ${info.upnp.internet.namespace} curl http://${info.upnp.external}/)`] : []),
    ...(info.dhcp ? [`  dhcp         ${info.dhcp.server}  leases ${info.dhcp.range}  (dnsmasq on ${info.router.namespace})`] : []),
    '',
    // From the project's root, with the Ansible the lab runs (its virtualenv is not on the shell's PATH).
    `Try: PATH="$(bash test/ansible/venv.sh newest):$PATH" ./bin/run.js install -i ${info.inventories.kubespray} -e @inventory-examples/ecmp/${calico === 'none' ? 'extip_bgp_speaker' : 'extip_ecmp'}.yaml`,
    'Namespace default admits privileged pods here; every other one enforces Pod Security baseline.',
    'Ctrl-C stops the lab and removes everything it made.',
  ].join('\n');
}

const started = Date.now();
const env = await startEnvironment(nodes, (line) => process.stderr.write(`lab: ${line}\n`), {calico, racks, client: true, dualStack, upnp: Boolean(options.upnp), dhcp: Boolean(options.dhcp)}).catch((err) => {
  process.stderr.write(`lab: could not bring the lab up: ${(err as Error).message}\n`);
  process.exit(1);
});
if (options.info) await writeFile(options.info, `${JSON.stringify(env.info, null, 2)}\n`);
process.stdout.write(`${describe(env.info, (Date.now() - started) / 1000)}\n`);
await new Promise<void>((resolve) => {
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, () => resolve());
});
process.stderr.write('lab: stopping; removing its namespaces, processes and files\n');
const stopping = Date.now();
await env.lab.stop();
process.stderr.write(`lab: stopped in ${((Date.now() - stopping) / 1000).toFixed(1)} s\n`);
// Whatever handle the lab left open (a watch, a timer), the command is done.
process.exit(0);
