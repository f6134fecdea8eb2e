/**
 * extip's own BGP speaker (extip_bgp_speaker: extip) on the lab: BIRD 2 in
 * every controller pod, from the agent's image under runc, peering with the
 * router with BFD. A lost node leaves the router's ECMP routes within BFD's
 * detection time; a drained node withdraws its routes before its addresses
 * come down, so a client loses no connection; a killed speaker is noticed and
 * its routes come back when it restarts; nothing but the Services' addresses
 * inside the declared ranges is ever announced; uninstall leaves the router
 * as it was.
 */
import {expect, test} from '@jest/globals';
import {readFile} from 'node:fs/promises';
import {execa} from 'execa';
import {startBird} from '../lab/bird.js';
import {routerBgpPrefixes, routerBird2Config, routerNexthops, waitFor} from '../lab/bgp.js';
import {startProber} from '../lab/prober.js';
import {diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {runRole} from '../helpers/role.js';
import {extip} from '../helpers/cli.js';
import {useLab} from '../helpers/lab.js';
import {SPEAKER_NS, controllerMetrics, speakerVars, unexplainedDrainFailures} from '../helpers/speaker.js';

const lab = useLab({nodes: 3});
const NS = SPEAKER_NS;
const vars = (extra: Record<string, unknown> = {}) => speakerVars({extip_bgp_peers: [{address: lab.router.ip, asn: 64512}]}, extra);

async function pods(): Promise<Array<{name: string; node: string; ready: boolean; restarts: Record<string, number>}>> {
  const items = JSON.parse((await lab.kubectl(['get', 'pods', '-n', NS, '-l', 'app.kubernetes.io/component=controller', '-o', 'json'])).stdout).items;
  return items.map((p: any) => ({
    name: p.metadata.name,
    node: p.spec.nodeName,
    ready: p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ?? false,
    restarts: Object.fromEntries((p.status?.containerStatuses ?? []).map((c: any) => [c.name, c.restartCount])),
  }));
}

const metrics = (node: string) => controllerMetrics(lab, node);

test('the speaker announces the Services\' addresses with BFD, fails over in under a second, drains without loss, and uninstalls', async () => {
  await startBird(lab, 'tor', routerBird2Config(lab, lab.hosts, {bfd: true}));
  const client = await lab.addClient();
  for (const h of lab.hosts) lab.serveName(h.name);
  const before = await takeSnapshot(lab);

  const install = await runRole(lab, {vars: vars()});
  if (install.exitCode !== 0) console.log(lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === NS)).join('\n'));
  expect([install.exitCode, install.failures]).toEqual([0, []]);
  const ds = JSON.parse((await lab.kubectl(['get', 'daemonset', '-n', NS, 'claimcontroller', '-o', 'json'])).stdout);
  expect(ds.spec.template.spec.containers.map((c: {name: string}) => c.name)).toEqual(['controller', 'bgp-speaker']);

  // 1. A Service with two addresses: three nexthops each on the router, over BGP from the speakers.
  await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'web', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7', '10.0.0.8']}}));
  for (const ip of ['10.0.0.7', '10.0.0.8']) await waitFor(`${ip} with three nexthops`, async () => (await routerNexthops(lab, ip)).length === 3, 60000);
  expect(await routerNexthops(lab, '10.0.0.7')).toEqual(['10.210.1.11', '10.210.1.12', '10.210.1.13']);
  // The agent reads BIRD's state every second: until its next read, /metrics may lag the router.
  await waitFor('the sessions, BFD and both routes in /metrics', async () => /extip_bgp_routes_exported\{peer="10\.210\.1\.1"\} 2/.test(await metrics('node1')), 20000);
  const m = await metrics('node1');
  expect(m).toMatch(/extip_bgp_bfd_up\{peer="10\.210\.1\.1"\} 1/);
  expect(m).toMatch(/extip_bgp_speaker_up 1/);
  expect(m).toMatch(/extip_bgp_session_established\{peer="10\.210\.1\.1"\} 1/);
  expect(m).toMatch(/extip_bgp_routes_exported\{peer="10\.210\.1\.1"\} 2/);
  const status = JSON.parse((await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig])).stdout);
  expect(status.bgpSpeaker).toEqual({asn: 64512, peers: [{address: lab.router.ip, asn: 64512, bfd: true}], running: 3, of: 3, sessionsDown: []});

  // The router drops node2's session: node2's speaker reports it (a BGPSessionDown Event on
  // the Node), extip status shows the problem, and it clears when the session is back.
  const tor = await lab.exec('tor', 'birdc', ['-s', `${lab.dir}/bird-tor.ctl`, 'disable', 'node2']);
  expect(tor.stdout).toMatch(/disabled/);
  const statusNow = async () => JSON.parse((await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig])).stdout);
  await waitFor('node2\'s session reported down', async () => (await statusNow()).bgpSpeaker.sessionsDown.length > 0, 20000);
  const down = await statusNow();
  expect(down.bgpSpeaker.sessionsDown).toMatchObject([{node: 'node2', peer: lab.router.ip}]);
  expect(down.problems).toContainEqual(expect.stringMatching(/^node2: BGP session with 10\.210\.1\.1 is down/));
  await lab.exec('tor', 'birdc', ['-s', `${lab.dir}/bird-tor.ctl`, 'enable', 'node2']);
  await waitFor('node2\'s session reported up again', async () => (await statusNow()).bgpSpeaker.sessionsDown.length === 0, 30000);
  await waitFor('node2 back on the router', async () => (await routerNexthops(lab, '10.0.0.7')).length === 3, 30000);

  // 2. Route-leak guard: an address on lo no Service asked for, one outside the declared ranges,
  // and a Service naming a node's own address: none reaches the router, nor does anything else.
  await lab.exec('node1', 'ip', ['address', 'add', '10.0.0.99/32', 'dev', 'lo']);
  await lab.exec('node1', 'ip', ['address', 'add', '192.0.2.5/32', 'dev', 'lo']);
  await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'leak', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.210.1.12', '192.0.2.6', '10.0.0.20']}}));
  await waitFor('10.0.0.20 announced', async () => (await routerNexthops(lab, '10.0.0.20')).length === 3, 30000);
  expect(await routerBgpPrefixes(lab)).toEqual(['10.0.0.20', '10.0.0.7', '10.0.0.8']);
  await lab.exec('node1', 'ip', ['address', 'del', '10.0.0.99/32', 'dev', 'lo']);
  await lab.exec('node1', 'ip', ['address', 'del', '192.0.2.5/32', 'dev', 'lo']);
  await lab.kubectl(['delete', 'service', 'leak', '-n', 'default']);
  await waitFor('10.0.0.20 withdrawn', async () => (await routerNexthops(lab, '10.0.0.20')).length === 0, 30000);

  // 3. node2's link cut: the router stops using it within BFD's detection time (300 ms here);
  // the client behind the router keeps being answered.
  const prober = startProber(client, '10.0.0.7', 80, 20, 3000);
  try {
    await waitFor('the client answered', async () => Boolean(prober.last()) && prober.last() !== '-', 30000);
    const cut = Date.now();
    await lab.loseNode('node2');
    // A route whose nexthops leave node2 out (not a moment without a route while the router rewrites it).
    const without = async (ip: string) => {
      const hops = await routerNexthops(lab, '10.0.0.7');
      return hops.length > 0 && !hops.includes(ip);
    };
    const took = await waitFor('node2 gone from the router', () => without('10.210.1.12'), 10000);
    expect(took).toBeLessThan(1500);
    // Until the connections opened meanwhile have ended (answered, or 3 s without).
    await new Promise((r) => setTimeout(r, 4000));
    // Every connection opened once the router forgot node2 is answered (one opened before may
    // have gone to node2: in flight at the cut). `took` ends with the poll that saw the route
    // change, up to a poll's time (an `ip route` run, slow on a busy machine) after the change.
    const after = prober.openedBetween(cut + took + 200);
    if (after.some((a) => a.from === '-')) console.log(`cut; the router forgot node2 after ${took} ms`, JSON.stringify(prober.openedBetween(cut - 100).map((a) => [a.start - cut, a.at - cut, a.from])));
    expect(after.length).toBeGreaterThan(10);
    expect(after.filter((a) => a.from === '-')).toEqual([]);
    await lab.restoreNode('node2');
    await waitFor('node2 back on the router', async () => (await routerNexthops(lab, '10.0.0.7')).length === 3, 60000);

    // 4. node3's speaker killed: the agent notices and gives the restarted BIRD its configuration.
    const node3 = (await pods()).find((p) => p.node === 'node3')!;
    // The BIRD in node3's network namespace (pkill would find every BIRD on the machine).
    const pids = (await execa('ip', ['netns', 'pids', lab.host('node3').ns])).stdout.split('\n').filter(Boolean);
    const birds = [];
    for (const pid of pids) if ((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'bird') birds.push(pid);
    expect(birds).toHaveLength(1);
    process.kill(Number(birds[0]), 'SIGKILL');
    await waitFor('node3 gone from the router', async () => (await routerNexthops(lab, '10.0.0.7')).length === 2, 10000);
    await waitFor('node3 back on the router', async () => (await routerNexthops(lab, '10.0.0.7')).length === 3, 60000);
    const restarted = (await pods()).find((p) => p.name === node3.name)!;
    expect(restarted.restarts['bgp-speaker']).toBe((node3.restarts['bgp-speaker'] ?? 0) + 1);
    expect(await metrics('node3')).toMatch(/extip_bgp_speaker_reloads_total [1-9]/);

    // 5. node1 drained (its label removed: its pod gets SIGTERM): GRACEFUL_SHUTDOWN moves the
    // router off it, then the routes are withdrawn, then the addresses; none of the client's
    // connections fails but one in flight as the router switched (see unexplainedDrainFailures).
    await waitFor('every pod ready', async () => (await pods()).filter((p) => p.ready).length === 3, 60000);
    const drain = Date.now();
    expect((await lab.kubectl(['label', 'node', 'node1', 'externalip-'])).exitCode).toBe(0);
    const switched = drain + (await waitFor('node1 gone from the router', () => without('10.210.1.11'), 20000));
    await waitFor('node1\'s pod gone', async () => !(await pods()).some((p) => p.node === 'node1'), 40000);
    const goneAt = Date.now();
    // Until the connections opened up to then have ended (answered, or 3 s without).
    await new Promise((r) => setTimeout(r, 3500));
    const during = prober.openedBetween(drain, goneAt);
    if (during.some((a) => a.from === '-')) console.log(`drain; the router switched ${switched - drain} ms after`, JSON.stringify(during.map((a) => [a.start - drain, a.at - drain, a.from])));
    expect(during.length).toBeGreaterThan(20);
    expect(unexplainedDrainFailures(during, switched)).toEqual([]);
    expect(new Set(during.map((a) => a.from))).toContain('node3');
  } finally {
    prober.stop();
  }

  // 6. uninstall, the Service still there: no route from extip on the router, the speakers gone;
  // without the Service, the state as before.
  const removal = await runRole(lab, {vars: vars({extip_state: 'absent'})});
  expect([removal.exitCode, removal.failures]).toEqual([0, []]);
  await waitFor('no BGP route on the router', async () => (await routerBgpPrefixes(lab)).length === 0, 30000);
  await lab.kubectl(['delete', 'service', 'web', '-n', 'default']);
  await waitFor('the state before install', async () => diffSnapshots(before, await takeSnapshot(lab)).length === 0, 30000).catch(async () => {
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
  });
}, 600_000);
