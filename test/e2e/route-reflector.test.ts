/**
 * A rack's route reflector (extip_bgp_route_reflectors) on the lab: the ToR
 * peers with one address, 10.210.1.100, with ADD-PATH; the controller of one
 * node holds it (its Lease), brings it up on eth0 and reflects every node's
 * path, so the ToR has one nexthop a node. A node's link cut leaves the ToR
 * within BFD's time (the reflector notices and withdraws); the holder's node
 * drained, another node takes the address and the ToR's routes come back
 * with nothing changed on the ToR; uninstall leaves no route, address or
 * Lease.
 */
import {expect, test} from '@jest/globals';
import {readFile} from 'node:fs/promises';
import {type Bird, startBird} from '../lab/bird.js';
import {routerBgpPrefixes, routerBird2Config, routerNexthops, waitFor} from '../lab/bgp.js';
import {diffSnapshots, takeSnapshot} from '../lab/snapshot.js';
import {runRole} from '../helpers/role.js';
import {useLab} from '../helpers/lab.js';
import {SPEAKER_NS, controllerMetrics, speakerVars} from '../helpers/speaker.js';

const lab = useLab({nodes: 3});
const NS = SPEAKER_NS;
const RR = '10.210.1.100';
const vars = (extra: Record<string, unknown> = {}) =>
  speakerVars({extip_bgp_route_reflectors: [{address: RR, nodes: lab.hosts.map((h) => h.name), peers: [{address: lab.router.ip, asn: 64512}]}]}, extra);

/** The nodes with the reflector's address up. */
async function holders(): Promise<string[]> {
  const out: string[] = [];
  for (const h of lab.hosts) if ((await lab.exec(h.name, 'ip', ['-o', '-4', 'address', 'show', 'to', `${RR}/32`])).stdout.trim()) out.push(h.name);
  return out;
}

const metrics = (node: string) => controllerMetrics(lab, node);

test('the ToR peers with the reflector\'s one address, keeps a nexthop a node, and keeps its configuration when the reflector moves', async () => {
  const tor: Bird = await startBird(lab, 'tor', routerBird2Config(lab, [{name: 'reflector', ip: RR, addPaths: true}], {bfd: true}));
  const torConfig = await readFile(tor.config, 'utf8');
  const before = await takeSnapshot(lab);

  const install = await runRole(lab, {vars: vars()});
  if (install.exitCode !== 0) console.log(lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === NS)).join('\n'));
  expect([install.exitCode, install.failures]).toEqual([0, []]);

  // 1. One node holds the address; through it the ToR learns every node's path.
  await lab.kubectl(['apply', '-f', '-'], JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name: 'web', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['10.0.0.7', '10.0.0.8']}}));
  for (const ip of ['10.0.0.7', '10.0.0.8']) await waitFor(`${ip} with three nexthops`, async () => (await routerNexthops(lab, ip)).length === 3, 60000);
  expect(await routerNexthops(lab, '10.0.0.7')).toEqual(['10.210.1.11', '10.210.1.12', '10.210.1.13']);
  expect(await routerBgpPrefixes(lab)).toEqual(['10.0.0.7', '10.0.0.8']);
  const [holder, ...others] = await holders();
  expect(others).toEqual([]);
  expect(holder).toBeDefined();
  // ADD-PATH: two addresses from three nodes, six paths. The agent reads BIRD every second.
  await waitFor('the holder\'s /metrics to count six paths to the ToR', async () => /extip_bgp_reflector_routes_exported\{reflector="10\.210\.1\.100",peer="10\.210\.1\.1"\} 6/.test(await metrics(holder)), 20000);
  const m = await metrics(holder);
  expect(m).toMatch(/extip_bgp_reflector_holding 1/);
  expect(m).toMatch(/extip_bgp_reflector_clients\{reflector="10\.210\.1\.100"\} 2/);
  const other = lab.hosts.find((h) => h.name !== holder)!;
  expect(await metrics(other.name)).toMatch(/extip_bgp_reflector_holding 0/);
  expect(await metrics(other.name)).toMatch(/extip_bgp_session_established\{peer="10\.210\.1\.100"\} 1/);

  // 2. A node that does not hold the reflector loses its link: the reflector's BFD notices, and
  // the ToR stops using it within a second and a half.
  const cut = Date.now();
  await lab.loseNode(other.name);
  const without = async () => {
    const hops = await routerNexthops(lab, '10.0.0.7');
    return hops.length === 2 && !hops.includes(other.ip);
  };
  const took = await waitFor(`${other.name} gone from the ToR`, without, 10000);
  expect(took).toBeLessThan(1500);
  expect(Date.now() - cut).toBeLessThan(5000);
  await lab.restoreNode(other.name);
  await waitFor(`${other.name} back on the ToR`, async () => (await routerNexthops(lab, '10.0.0.7')).length === 3, 60000);

  // 3. The holder's node drained (its label removed: its pod goes, as in maintenance): it
  // withdraws its own routes, gives the reflector up, another node takes the address, and the
  // ToR's routes from the other nodes come back, its configuration and peer the same.
  const moved = Date.now();
  let emptySince: number | undefined;
  let emptyFor = 0;
  const watchRoutes = (async () => {
    while (Date.now() - moved < 30000) {
      const empty = (await routerNexthops(lab, '10.0.0.7')).length === 0;
      if (empty && emptySince === undefined) emptySince = Date.now();
      if (!empty && emptySince !== undefined) {
        emptyFor += Date.now() - emptySince;
        emptySince = undefined;
      }
      if (!empty && (await holders()).some((h) => h !== holder)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  expect((await lab.kubectl(['label', 'node', holder, 'externalip-'])).exitCode).toBe(0);
  await waitFor('another node holds the reflector', async () => {
    const h = await holders();
    return h.length === 1 && h[0] !== holder;
  }, 30000).catch(async (err) => {
    const drained = lab.nodeKubelets.find((k) => k.name === holder)!;
    console.log(`holders now: ${await holders()}`, lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === NS)).join('\n').split('\n').filter((l) => /reflector|Lease|leader/i.test(l)).join('\n'),
      `\n${holder}'s kubelet: ${drained.events.slice(-10).join('\n')}\n${drained.allLogs((ns) => ns === NS)}`);
    throw err;
  });
  const [next] = await holders();
  const rest = lab.hosts.filter((h) => h.name !== holder).map((h) => h.ip);
  await waitFor('the other nodes back on the ToR', async () => (await routerNexthops(lab, '10.0.0.7')).join() === rest.join() && (await routerNexthops(lab, '10.0.0.8')).join() === rest.join(), 60000);
  await watchRoutes;
  console.log(`the reflector moved from ${holder} to ${next}; the ToR had no route for 10.0.0.7 for ${emptyFor} ms, and every remaining node's again ${Date.now() - moved} ms after the drain`);
  expect(await readFile(tor.config, 'utf8')).toBe(torConfig);
  expect(await tor.birdc('show protocols reflector')).toMatch(/Established/);
  await waitFor(`${next}'s /metrics to say it holds the reflector`, async () => /extip_bgp_reflector_holding 1/.test(await metrics(next)), 20000);
  // The drained node back: its controller peers with the reflector where it is now.
  expect((await lab.kubectl(['label', 'node', holder, 'externalip=true'])).exitCode).toBe(0);
  await waitFor(`${holder} back on the ToR through ${next}`, async () => (await routerNexthops(lab, '10.0.0.7')).length === 3, 60000);
  expect(await holders()).toEqual([next]);

  // 4. Uninstall, the Service still there: no route on the ToR, the address on no node, no
  // Lease; without the Service, every host as before.
  const removal = await runRole(lab, {vars: vars({extip_state: 'absent'})});
  expect([removal.exitCode, removal.failures]).toEqual([0, []]);
  await waitFor('no BGP route on the ToR', async () => (await routerBgpPrefixes(lab)).length === 0, 30000);
  expect(await holders()).toEqual([]);
  expect(JSON.parse((await lab.kubectl(['get', 'leases', '-A', '-l', 'app.kubernetes.io/component=route-reflector', '-o', 'json'])).stdout).items).toEqual([]);
  await lab.kubectl(['delete', 'service', 'web', '-n', 'default']);
  await waitFor('the state before install', async () => diffSnapshots(before, await takeSnapshot(lab)).length === 0, 30000).catch(async () => {
    expect(diffSnapshots(before, await takeSnapshot(lab))).toEqual([]);
  });
}, 600_000);
