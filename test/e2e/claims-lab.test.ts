/**
 * Claims mode end to end on the lab's real control plane: the role installs
 * the scheduler and the claim controllers (balance), which the lab kubelets
 * run; Services' external IPs become IpClaims, brought up on eth0 of one node
 * each. Every placement is checked on the nodes' interfaces, sampled so that
 * no moment shows two holders of one address.
 */
import {expect, test} from '@jest/globals';
import {readFile} from 'node:fs/promises';
import {execa} from 'execa';
import {waitFor} from '../lab/bgp.js';
import {explain, runRole} from '../helpers/role.js';
import {extip} from '../helpers/cli.js';
import {type PolicyRule, auditUses, rbacReport} from '../helpers/rbac-audit.js';
import {useLab} from '../helpers/lab.js';

const IPS = Array.from({length: 6}, (_, i) => `10.210.1.${101 + i}`);
// The controller's kind is the role's default (a DaemonSet): the failovers below are what a user of the defaults gets.
const vars = {
  extip_distribution: 'balance',
  extip_namespace: 'extip',
  extip_iface: 'eth0',
  extip_mask: 32,
  // The Services' own addresses (IPS, and the conflict test's): a pool's CIDR outside its ranges grants none.
  extip_external_cidrs: ['10.210.1.96/27'],
  extip_ip_pools: [{name: 'lab', cidr: '10.210.1.0/24', ranges: [['10.210.1.200', '10.210.1.202']]}],
};

const lab = useLab({nodes: 3}, async (started) => {
  const run = await runRole(started, {vars});
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
});

/** Which nodes have each of IPS on eth0. */
async function holders(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = Object.fromEntries(IPS.map((ip) => [ip, []]));
  await Promise.all(lab.hosts.map(async (h) => {
    const r = await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    const addrs = r.exitCode === 0 ? (JSON.parse(r.stdout)[0]?.addr_info ?? []).map((a: {local: string}) => a.local) : [];
    for (const ip of IPS) if (addrs.includes(ip)) out[ip].push(h.name);
  }));
  return out;
}

async function claims(): Promise<Record<string, string>> {
  const r = await lab.kubectl(['get', 'ipclaims', '-o', 'json']);
  const items = JSON.parse(r.stdout).items as Array<{spec: {cidr: string; nodeName: string}}>;
  return Object.fromEntries(items.map((c) => [c.spec.cidr.split('/')[0], c.spec.nodeName]));
}

/** Each address's claim: its node, and the node a handoff asks it to go to. */
async function claimsDetail(): Promise<Record<string, {node: string; releaseTo?: string}>> {
  const r = await lab.kubectl(['get', 'ipclaims', '-o', 'json']);
  const items = JSON.parse(r.stdout).items as Array<{metadata: {annotations?: Record<string, string>}; spec: {cidr: string; nodeName: string}}>;
  return Object.fromEntries(items.map((c) => [c.spec.cidr.split('/')[0], {node: c.spec.nodeName, releaseTo: c.metadata.annotations?.['extip.io/release-to']}]));
}

async function claimReasons(): Promise<Record<string, string>> {
  const r = await lab.kubectl(['get', 'ipclaims', '-o', 'json']);
  const items = JSON.parse(r.stdout).items as Array<{spec: {cidr: string}; status?: {reason?: string}}>;
  return Object.fromEntries(items.map((c) => [c.spec.cidr.split('/')[0], c.status?.reason ?? '']));
}

async function eth0Mac(node: string): Promise<string> {
  const r = await lab.exec(node, 'ip', ['-j', 'link', 'show', 'dev', 'eth0']);
  return JSON.parse(r.stdout)[0].address;
}

/** The MAC the router (a client on the segment) holds for an address, if any. */
async function routerMac(ip: string): Promise<string | undefined> {
  const r = await lab.exec('tor', 'ip', ['-j', 'neigh', 'show', ip, 'dev', 'br0']);
  return JSON.parse(r.stdout || '[]')[0]?.lladdr;
}

/** Samples the holders every 50 ms while `during` runs; fails on any moment with two holders of one address. */
async function neverTwo<T>(during: () => Promise<T>): Promise<T> {
  let done = false;
  const doubles: string[] = [];
  const sampler = (async () => {
    while (!done) {
      const h = await holders();
      for (const [ip, nodes] of Object.entries(h)) if (nodes.length > 1) doubles.push(`${ip} on ${nodes.join(' and ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return await during();
  } finally {
    done = true;
    await sampler;
    expect(doubles).toEqual([]);
  }
}

/** The addresses of IPS a node holds now; balance gives each of the three nodes two. */
async function heldBy(node: string): Promise<string[]> {
  const h = await holders();
  const mine = IPS.filter((ip) => h[ip].includes(node));
  expect(mine.length).toBe(2);
  return mine;
}

const count = (h: Record<string, string[]>, node: string) => Object.values(h).filter((n) => n.includes(node)).length;

async function controllerPod(node: string): Promise<string> {
  const r = await lab.kubectl(['get', 'pods', '-n', 'extip', '-l', 'app.kubernetes.io/component=controller', '--field-selector', `spec.nodeName=${node}`, '-o', 'jsonpath={.items[0].metadata.name}']);
  return r.stdout.trim();
}

test('balance: 6 addresses on 3 nodes, 2 each, each up exactly where its claim says', async () => {
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'six', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: IPS}};
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).exitCode).toBe(0);
  await waitFor('every address on one node', async () => Object.values(await holders()).every((n) => n.length === 1), 60000);
  const h = await holders();
  for (const node of ['node1', 'node2', 'node3']) expect(count(h, node)).toBe(2);
  const c = await claims();
  for (const ip of IPS) expect(h[ip]).toEqual([c[ip]]);
});

test('a drain (SIGTERM) moves the node\'s addresses without waiting for the heartbeat timeout; it gets its share back after', async () => {
  const mine = await heldBy('node1');
  const pod = await controllerPod('node1');
  await neverTwo(async () => {
    const started = Date.now();
    expect((await lab.kubectl(['delete', 'pod', '-n', 'extip', pod, '--wait=false'])).exitCode).toBe(0);
    await waitFor('node1\'s addresses up elsewhere', async () => {
      const h = await holders();
      return mine.every((ip) => h[ip].length === 1 && !h[ip].includes('node1'));
    }, 30000);
    // Well inside the 2 s heartbeat timeout plus the grace it would take otherwise.
    expect(Date.now() - started).toBeLessThan(5000);
  });
  // The DaemonSet starts a new controller on node1; fair gives it claims again,
  // each handed off: the holder lets go before node1 brings it up.
  await neverTwo(() => waitFor('node1 holds addresses again', async () => count(await holders(), 'node1') === 2, 60000));
});

test('a lost node: its addresses come up elsewhere, it fences itself, and holds none when it returns', async () => {
  const mine = await heldBy('node2');
  // A client on the segment (the router) has talked to the address: its ARP entry holds node2's MAC.
  const watched = mine[0];
  expect((await lab.exec('tor', 'ping', ['-c', '1', '-W', '2', watched])).exitCode).toBe(0);
  expect(await routerMac(watched)).toBe(await eth0Mac('node2'));
  await neverTwo(async () => {
    await lab.loseNode('node2');
    await waitFor('node2\'s addresses on the others', async () => {
      const h = await holders();
      return mine.every((ip) => h[ip].length === 1 && !h[ip].includes('node2'));
    }, 30000);
  });
  // The new holder's gratuitous ARP moved the client's entry, with no traffic and no flush.
  const now = (await holders())[watched][0];
  await waitFor('the client\'s ARP entry on the new holder', async () => (await routerMac(watched)) === (await eth0Mac(now)), 1500);
  expect((await lab.exec('tor', 'ping', ['-c', '1', '-W', '2', watched])).exitCode).toBe(0);
  // Where it is and what happened: extip status, and an Event on the Service.
  // The group found node2 dead and the claim's first live standby brought the address up, before
  // the scheduler's --monitor (1.5 s) ran out; the scheduler then recorded the takeover.
  await waitFor('the takeover recorded', async () => (await claims())[watched] === now, 10000);
  const status = JSON.parse((await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig])).stdout);
  const entry = status.ips.find((i: {ip: string}) => i.ip === watched);
  expect(entry).toMatchObject({heldBy: [now], lastMove: {from: 'node2', to: now, reason: `${now} took it over: node2 stopped answering its peers`}});
  // From node2's last heartbeat seen to up on the new holder: under --monitor.
  expect(entry.lastMove.withoutHolderMs).toBeLessThan(1500);
  const events = JSON.parse((await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.kind=Service,involvedObject.name=six,reason=AddressMoved', '-o', 'json'])).stdout).items;
  expect(events.map((e: {message: string}) => e.message)).toContainEqual(`${watched}/32 moved node2 -> ${now}: ${now} took it over: node2 stopped answering its peers`);
  // Cut off, node2 took them down itself.
  expect(count(await holders(), 'node2')).toBe(0);
  const c = await claims();
  for (const ip of mine) expect(c[ip]).not.toBe('node2');
  await neverTwo(async () => {
    await lab.restoreNode('node2');
    await waitFor('node2 serves its share again', async () => count(await holders(), 'node2') === 2, 60000);
  });
  // Both came from live nodes, so each was handed off: asked, let go, then assigned.
  const reasons = await claimReasons();
  const back = Object.entries(await claims()).filter(([, node]) => node === 'node2').map(([ip]) => reasons[ip]);
  expect(back).toHaveLength(2);
  for (const reason of back) expect(reason).toMatch(/^rebalancing: .* let go first$/);
});

/** The pid of the claim controller running on a node (the lab kubelet runs it in the node's namespace). */
async function controllerPid(node: string): Promise<number> {
  const r = await execa('ip', ['netns', 'pids', lab.host(node).ns]);
  for (const pid of r.stdout.split('\n').filter(Boolean).map(Number)) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.split('\0').includes('claimcontroller')) return pid;
  }
  throw new Error(`no claimcontroller process on ${node}`);
}

test('a holder\'s interface loses its link while its API path is fine: its addresses answer elsewhere within 2 s; back, it serves its share again', async () => {
  const mine = await heldBy('node1');
  const watched = mine[0];
  expect((await lab.exec('tor', 'ping', ['-c', '1', '-W', '2', watched])).exitCode).toBe(0);
  let took = 0;
  await neverTwo(async () => {
    // Only eth0: node1 still reaches the API server and its kubelet reports.
    const cut = Date.now();
    await lab.exec('node1', 'ip', ['link', 'set', 'eth0', 'down']);
    await waitFor('node1\'s addresses on the others', async () => {
      const h = await holders();
      return mine.every((ip) => h[ip].length === 1 && !h[ip].includes('node1'));
    }, 30000);
    took = Date.now() - cut;
  });
  // Before, nothing moved at all: the heartbeats went on through the API path.
  console.log(`eth0 down on node1: its addresses answered elsewhere ${took} ms later`);
  expect(took).toBeLessThan(2000);
  const now = (await holders())[watched][0];
  await waitFor('the client\'s ARP entry on the new holder', async () => (await routerMac(watched)) === (await eth0Mac(now)), 1500);
  expect((await lab.exec('tor', 'ping', ['-c', '1', '-W', '2', watched])).exitCode).toBe(0);
  const logs = lab.nodeKubelets.find((k) => k.name === 'node1')!.allLogs((ns) => ns === 'extip');
  expect(logs).toMatch(/the link of eth0 is down: took down .*; IpNode deleted: its claims move now/);
  await neverTwo(async () => {
    await lab.exec('node1', 'ip', ['link', 'set', 'eth0', 'up']);
    await lab.exec('node1', 'ip', ['route', 'replace', 'default', 'via', lab.tor(1).ip]);
    await waitFor('node1 serves its share again', async () => count(await holders(), 'node1') === 2, 60000);
  });
});

test('kill -9 of a holder\'s controller: its addresses stay up throughout, on node3 alone, and their claims come back to it', async () => {
  const mine = await heldBy('node3');
  const pid = await controllerPid('node3');
  // Every 50 ms: each of node3's addresses on exactly one node (never none: no flap; never two).
  const gaps: string[] = [];
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const h = await holders();
      for (const ip of mine) if (h[ip].length !== 1) gaps.push(`${ip} on ${h[ip].join(' and ') || 'no node'}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    process.kill(pid, 'SIGKILL');
    // The scheduler moves the claims after --monitor; the new holders' probes find them answered on node3
    // and keep them down. The restarted controller (the lab kubelet's back-off: 10 s) finds them still up
    // here, keeps them, and asks for the claims back, which the scheduler gives.
    await waitFor('the claims moved off node3', async () => {
      const c = await claims();
      return mine.every((ip) => c[ip] !== 'node3');
    }, 15000);
    await waitFor('a new controller on node3', async () => (await controllerPid('node3').catch(() => 0)) > 0, 30000);
    await waitFor('node3\'s claims back on node3', async () => {
      const c = await claims();
      return mine.every((ip) => c[ip] === 'node3');
    }, 30000);
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    done = true;
    await sampler;
  }
  if (gaps.length) {
    // What the controllers and the scheduler said about these addresses, to see who took them down.
    const said = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n');
    console.log(said.filter((l) => mine.some((ip) => l.includes(ip)) || /held|given|claim back|serving|fenced/.test(l)).join('\n'));
  }
  expect(gaps).toEqual([]);
  const reasons = await claimReasons();
  for (const ip of mine) expect(reasons[ip]).toMatch(/^node3 still has it up and node\d did not bring it up$/);
  const h = await holders();
  const c = await claims();
  expect(IPS.every((ip) => h[ip].length === 1 && h[ip][0] === c[ip])).toBe(true);
  // Meanwhile the new holders had found node3 still answering.
  const node3 = await eth0Mac('node3');
  const logs = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n');
  for (const ip of mine) expect(logs).toContain(`conflict: the host with MAC ${node3} answers for ${ip}/32 on eth0`);
});

test('the scheduler\'s leader goes: the standby takes over and new addresses are still placed', async () => {
  const lease = async () => JSON.parse((await lab.kubectl(['get', 'lease', 'claimscheduler', '-n', 'extip', '-o', 'json'])).stdout).spec.holderIdentity as string;
  const leader = await lease();
  const pod = leader.split('_')[0];
  expect((await lab.kubectl(['delete', 'pod', '-n', 'extip', pod])).exitCode).toBe(0);
  await waitFor('another leader', async () => {
    const now = await lease();
    return Boolean(now) && !now.startsWith(`${pod}_`);
  }, 30000);
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'six', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: IPS.slice(0, 5)}};
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).exitCode).toBe(0);
  await waitFor('the dropped address gone', async () => (await holders())[IPS[5]].length === 0 && !(IPS[5] in (await claims())), 30000);
});

test('the node that runs the scheduler\'s leader is lost: its addresses answer elsewhere as fast as any other node\'s, without waiting for the lease', async () => {
  const holder = JSON.parse((await lab.kubectl(['get', 'lease', 'claimscheduler', '-n', 'extip', '-o', 'json'])).stdout).spec.holderIdentity as string;
  const pod = holder.replace(/_[0-9a-f-]{36}$/, '');
  const node = (await lab.kubectl(['get', 'pod', '-n', 'extip', pod, '-o', 'jsonpath={.spec.nodeName}'])).stdout.trim();
  const h = await holders();
  const mine = IPS.filter((ip) => h[ip].includes(node));
  expect(mine.length).toBeGreaterThan(0);
  const cut = Date.now();
  await lab.loseNode(node);
  try {
    await waitFor(`${node}'s addresses on the others`, async () => {
      const now = await holders();
      return mine.every((ip) => now[ip].length === 1 && !now[ip].includes(node));
    }, 30000);
    const took = Date.now() - cut;
    console.log(`the scheduler's leader's node lost: its addresses answered elsewhere ${took} ms later`);
    // The claims' standbys took them over: no lease (3 s) to wait for. Under a second plus the
    // sampling's own time on a loaded machine.
    expect(took).toBeLessThan(1500);
    // The new leader recorded the takeovers once it led.
    await waitFor('the takeovers recorded', async () => {
      const reasons = await claimReasons();
      return mine.every((ip) => reasons[ip].endsWith(`took it over: ${node} stopped answering its peers`));
    }, 15000);
    const logs = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n');
    expect(logs).toMatch(/took over lease extip\/claimscheduler from /);
    // The old leader, cut off past its renew deadline, stepped down and stayed: a standby again, not a
    // restart waiting out the kubelet's back-off.
    expect(logs).toMatch(/leader election lost: could not renew lease extip\/claimscheduler within 2000 ms; standing by as a candidate/);
  } finally {
    // The tests after this one need every node.
    await lab.restoreNode(node);
  }
  await waitFor(`${node} serves again`, async () => count(await holders(), node) > 0, 60000);
  const old = JSON.parse((await lab.kubectl(['get', 'pod', '-n', 'extip', pod, '-o', 'json'])).stdout);
  expect(old.status.containerStatuses[0].restartCount).toBe(0);
}, 120000);

test('an address another host on the segment answers for stays down, with a conflict in the log, until that host lets it go', async () => {
  const clash = '10.210.1.120';
  await lab.exec('tor', 'ip', ['address', 'add', `${clash}/32`, 'dev', 'br0']);
  const routerMacAddr = JSON.parse((await lab.exec('tor', 'ip', ['-j', 'link', 'show', 'dev', 'br0'])).stdout)[0].address;
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'clash', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: [clash]}};
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).exitCode).toBe(0);
  let node = '';
  await waitFor('a claim for the address', async () => {
    const r = await lab.kubectl(['get', 'ipclaim', '10-210-1-120-32', '-o', 'jsonpath={.spec.nodeName}']);
    node = r.stdout.trim();
    return r.exitCode === 0 && node !== '';
  }, 30000);
  const kubelet = lab.nodeKubelets.find((k) => k.name === node)!;
  await waitFor('the conflict in the controller\'s log', async () => kubelet.allLogs((ns) => ns === 'extip').includes(`conflict: the host with MAC ${routerMacAddr} answers for ${clash}/32 on eth0`), 15000);
  // Checked again every 2 s, and still down while the router holds it.
  const until = Date.now() + 4500;
  while (Date.now() < until) {
    const r = await lab.exec(node, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    expect(JSON.parse(r.stdout)[0].addr_info.map((a: {local: string}) => a.local)).not.toContain(clash);
    await new Promise((r) => setTimeout(r, 200));
  }
  await lab.exec('tor', 'ip', ['address', 'del', `${clash}/32`, 'dev', 'br0']);
  await waitFor('the address up on its node once nobody else answers', async () => {
    const r = await lab.exec(node, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    return JSON.parse(r.stdout)[0].addr_info.some((a: {local: string}) => a.local === clash);
  }, 10000);
  expect((await lab.kubectl(['delete', 'service', 'clash', '-n', 'default'])).exitCode).toBe(0);
});

/** A Service of the default namespace as the API server has it. */
async function get(name: string): Promise<any> {
  return JSON.parse((await lab.kubectl(['get', 'service', name, '-n', 'default', '-o', 'json'])).stdout);
}

/** A Service's status.loadBalancer.ingress addresses. */
async function ingress(name: string): Promise<string[]> {
  return ((await get(name)).status?.loadBalancer?.ingress ?? []).map((i: {ip: string}) => i.ip);
}

/** The nodes whose eth0 has the address. */
async function upOn(ip: string): Promise<string[]> {
  return (await Promise.all(lab.hosts.map(async (h) => {
    const r = await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    return JSON.parse(r.stdout)[0].addr_info.some((a: {local: string}) => a.local === ip) ? [h.name] : [];
  }))).flat();
}

test('pools: external-ip: auto and LoadBalancers get addresses that come up on a node; another class is left alone; an exhausted pool is an Event; a deleted Service gives its address back', async () => {
  const pooled = ['10.210.1.200', '10.210.1.201', '10.210.1.202'];
  const service = (name: string, spec: Record<string, unknown>, annotations: Record<string, string> = {}) =>
    ({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default', annotations}, spec: {ports: [{port: 80}], ...spec}});
  const docs = [
    service('auto', {}, {'external-ip': 'auto'}),
    service('lb', {type: 'LoadBalancer'}),
    service('lb-asks', {type: 'LoadBalancer'}, {'extip.io/load-balancer-ip': '10.210.1.202'}),
    service('lb-other', {type: 'LoadBalancer', loadBalancerClass: 'example.com/other'}),
  ];
  try {
    await pooledServices();
  } finally {
    // Whatever happened, the next tests start without these Services (and their addresses).
    await lab.kubectl(['delete', 'service', '-n', 'default', '--ignore-not-found', 'auto', 'lb', 'lb-asks', 'lb-other', 'lb-late']);
  }

  async function pooledServices(): Promise<void> {
    for (const d of docs) expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(d))).exitCode).toBe(0);
    await waitFor('addresses for auto, lb and lb-asks', async () => (await get('auto')).spec.externalIPs?.length === 1 && (await ingress('lb')).length === 1 && (await ingress('lb-asks')).length === 1, 30000);
    const given = {auto: (await get('auto')).spec.externalIPs[0], lb: (await ingress('lb'))[0], asks: (await ingress('lb-asks'))[0]};
    expect(given.asks).toBe('10.210.1.202');
    expect([given.auto, given.lb].sort()).toEqual(['10.210.1.200', '10.210.1.201']);
    await waitFor('each given address up on exactly one node', async () => (await Promise.all(pooled.map(upOn))).every((n) => n.length === 1), 30000);
    const allocated = async () => Object.keys(JSON.parse((await lab.kubectl(['get', 'ipclaimpool', 'lab', '-o', 'json'])).stdout).spec.allocated ?? {}).sort();
    expect(await allocated()).toEqual(pooled);
    // Another implementation's class: not extip's to serve.
    expect(await ingress('lb-other')).toEqual([]);
    // The pool is exhausted: an Event says so, and nothing crashes.
    expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(service('lb-late', {type: 'LoadBalancer'})))).exitCode).toBe(0);
    await waitFor('an AllocationFailed Event on lb-late', async () => {
      const r = await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=lb-late,reason=AllocationFailed', '-o', 'jsonpath={.items[*].message}']);
      return r.stdout.includes('every IpClaimPool is exhausted (lab)');
    }, 30000);
    // lb goes: its address comes down, the pool releases it, and lb-late gets it.
    expect((await lab.kubectl(['delete', 'service', 'lb', '-n', 'default'])).exitCode).toBe(0);
    await waitFor('lb-late given the released address', async () => (await ingress('lb-late'))[0] === given.lb, 30000);
    await waitFor('lb-late\'s address up on one node', async () => (await upOn(given.lb)).length === 1, 30000);
    for (const name of ['auto', 'lb-asks', 'lb-other', 'lb-late']) await lab.kubectl(['delete', 'service', name, '-n', 'default']);
    await waitFor('every pooled address released and down', async () => (await allocated()).length === 0 && (await Promise.all(pooled.map(upOn))).every((n) => n.length === 0), 30000);
  }
});

test('Services written for MetalLB or kube-vip keep their addresses; two with one sharing key and other ports share one, a third with a port in common is told why not', async () => {
  const lb = (name: string, port: number, annotations: Record<string, string>) =>
    ({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: 'default', annotations}, spec: {type: 'LoadBalancer', ports: [{name: `p${port}`, port}]}});
  const names = ['mlb', 'mlb-tls', 'kv', 'clash'];
  try {
    for (const d of [
      lb('mlb', 80, {'metallb.io/loadBalancerIPs': '10.210.1.201', 'metallb.io/allow-shared-ip': 'front'}),
      lb('mlb-tls', 443, {'metallb.universe.tf/loadBalancerIPs': '10.210.1.201', 'metallb.universe.tf/allow-shared-ip': 'front'}),
      lb('kv', 80, {'kube-vip.io/loadbalancerIPs': '10.210.1.202'}),
    ]) expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(d))).exitCode).toBe(0);
    await waitFor('each given the address it names', async () => (await ingress('mlb')).join() === '10.210.1.201' && (await ingress('mlb-tls')).join() === '10.210.1.201' && (await ingress('kv')).join() === '10.210.1.202', 30000);
    await waitFor('each address up on exactly one node', async () => (await upOn('10.210.1.201')).length === 1 && (await upOn('10.210.1.202')).length === 1, 30000);
    // One claim for the shared address, naming both Services, the older first.
    await waitFor('the claim records both Services', async () => {
      const r = await lab.kubectl(['get', 'ipclaim', '10-210-1-201-32', '-o', 'jsonpath={.status.services}']);
      return r.stdout === JSON.stringify(['default/mlb', 'default/mlb-tls']);
    }, 15000);
    expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(lb('clash', 80, {'extip.io/load-balancer-ips': '10.210.1.201', 'extip.io/allow-shared-ip': 'front'})))).exitCode).toBe(0);
    await waitFor('an AllocationFailed Event on clash', async () => {
      const r = await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=clash,reason=AllocationFailed', '-o', 'jsonpath={.items[*].message}']);
      return r.stdout.includes('the address asked for, 10.210.1.201, is taken: held by Service default/mlb, which has port TCP/80 too');
    }, 30000);
    expect(await ingress('clash')).toEqual([]);
    // The first to go leaves the address to the other; the last takes it down and back to the pool.
    expect((await lab.kubectl(['delete', 'service', 'mlb', '-n', 'default'])).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await upOn('10.210.1.201')).toHaveLength(1);
    expect((await lab.kubectl(['delete', 'service', 'mlb-tls', 'clash', 'kv', '-n', 'default'])).exitCode).toBe(0);
    await waitFor('the addresses down and back in the pool', async () => {
      const allocated = JSON.parse((await lab.kubectl(['get', 'ipclaimpool', 'lab', '-o', 'json'])).stdout).spec.allocated ?? {};
      return Object.keys(allocated).length === 0 && (await upOn('10.210.1.201')).length === 0 && (await upOn('10.210.1.202')).length === 0;
    }, 30000);
  } finally {
    await lab.kubectl(['delete', 'service', '-n', 'default', '--ignore-not-found', ...names]);
  }
});

test('claims mode refuses what the policy refuses: no claim for an address outside the pools or a node\'s own, one Event each', async () => {
  const svc = {apiVersion: 'v1', kind: 'Service', metadata: {name: 'outside', namespace: 'default'}, spec: {ports: [{port: 80}], externalIPs: ['8.8.8.8', '10.210.1.12', IPS[0]]}};
  expect((await lab.kubectl(['apply', '-f', '-'], JSON.stringify(svc))).exitCode).toBe(0);
  const events = async () => JSON.parse((await lab.kubectl(['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.name=outside,reason=ExternalIPRefused', '-o', 'json'])).stdout).items as Array<{message: string; source: {component: string}}>;
  await waitFor('an ExternalIPRefused Event on outside', async () => (await events()).length > 0, 15000);
  const [e] = await events();
  expect(e.source.component).toBe('extip-scheduler');
  expect(e.message).toContain('8.8.8.8: 8.8.8.8 is outside the ranges external IPs may come from (10.210.1.96/27, 10.210.1.200/31, 10.210.1.202/32)');
  expect(e.message).toContain('10.210.1.12: 10.210.1.12 is an address of node node2');
  const c = await claims();
  expect(['8.8.8.8', '10.210.1.12'].filter((ip) => ip in c)).toEqual([]);
  // The allowed address of the same Service keeps its claim.
  expect(c[IPS[0]]).toBeTruthy();
  await new Promise((r) => setTimeout(r, 2000));
  expect(await events()).toHaveLength(1);
  expect((await lab.kubectl(['delete', 'service', 'outside', '-n', 'default'])).exitCode).toBe(0);
});

test('RBAC is exactly what the agent uses: no request of its ServiceAccounts was refused, and every rule granted was used', async () => {
  const uses = await auditUses(lab.k8s.auditLog, 'system:serviceaccount:extip:');
  const rules = async (kind: string, name: string) => JSON.parse((await lab.kubectl(['get', kind, name, '-n', 'extip', '-o', 'json'])).stdout).rules as PolicyRule[];
  const controller = rbacReport(uses, 'system:serviceaccount:extip:claimcontroller', await rules('clusterrole', 'extip:claimcontroller'));
  const scheduler = rbacReport(uses, 'system:serviceaccount:extip:claimscheduler', [
    ...(await rules('clusterrole', 'extip:claimscheduler')),
    ...(await rules('role', 'extip:claimscheduler:leader-election')),
  ]);
  expect({controller, scheduler}).toEqual({controller: {unused: [], forbidden: []}, scheduler: {unused: [], forbidden: []}});
});

/** The controllers' lines about their peers and takeovers, for a failed test's message. */
function peerLog(): string {
  return lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n')
    .filter((l) => /^---|peer|taking over|took|fenced|self-fenced|API server is away/.test(l)).slice(-80).join('\n');
}

/** How long the API server is away for every node: the README's table says five minutes. */
const API_OUTAGE_MS = 5 * 60_000;

test('the API server away for every node: no address goes down and none moves; a node lost meanwhile has its addresses answer elsewhere within 1 s; the records catch up when the API is back', async () => {
  const before = await holders();
  // The Service wants five of IPS now (the leader test dropped one).
  const ips = IPS.filter((ip) => before[ip].length > 0);
  expect(ips.length).toBeGreaterThanOrEqual(5);
  for (const ip of ips) expect(before[ip]).toHaveLength(1);
  const lost = before[ips[0]][0];
  const mine = ips.filter((ip) => before[ip][0] === lost);
  await lab.k8s.stopApiServer();
  let movedMs = 0;
  try {
    // The table's five minutes without the API (far past every heartbeat, fence and watch
    // timeout): every address where it was, sampled all along.
    await neverTwo(async () => {
      const until = Date.now() + API_OUTAGE_MS;
      while (Date.now() < until) {
        const h = await holders();
        for (const ip of ips) expect([ip, h[ip]]).toEqual([ip, before[ip]]);
        await new Promise((r) => setTimeout(r, 20));
      }
      // Now a node is lost, the API still away: the group finds it dead, and each claim's first live standby brings its address up.
      const cut = Date.now();
      await lab.loseNode(lost);
      await waitFor(`${lost}'s addresses on the others`, async () => {
        const h = await holders();
        return mine.every((ip) => h[ip].length === 1 && h[ip][0] !== lost);
      }, 10000);
      movedMs = Date.now() - cut;
      // The others stayed where they were.
      const h = await holders();
      for (const ip of ips.filter((x) => !mine.includes(x))) expect([ip, h[ip]]).toEqual([ip, before[ip]]);
    });
    console.log(`API server away: ${lost} lost, its ${mine.length} addresses up elsewhere ${movedMs} ms after the cut`);
    // The router reaches each at its new holder.
    for (const ip of mine) expect((await lab.exec('tor', 'ping', ['-c', '1', '-W', '2', ip])).exitCode).toBe(0);
    expect(movedMs).toBeLessThan(1500);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${peerLog()}`);
  } finally {
    await lab.k8s.startApiServer();
  }
  try {
    // Back, the scheduler records where each went: the claim, its reason.
    const after = await holders();
    // Never two; none for a moment is a handoff the scheduler may already be making.
    if (mine.some((ip) => after[ip].length > 1)) {
      const said = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n').filter((l) => /^---|took|taking|peer |moved|conflict|fenced/.test(l)).slice(-100).join('\n');
      throw new Error(`two holders after the outage: ${JSON.stringify(after)}\n${said}`);
    }
    await waitFor('the claims follow the takeovers', async () => {
      const c = await claims();
      return mine.every((ip) => after[ip].length === 0 || c[ip] === after[ip][0]);
    }, 60000).catch(async (err: Error) => {
      const items = JSON.parse((await lab.kubectl(['get', 'ipclaims', '-o', 'json'])).stdout).items as Array<{metadata: {name: string; annotations?: object}; spec: object; status?: object}>;
      const said = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n').filter((l) => /^---|took|taking|peer |moved|conflict|fenced/.test(l)).slice(-100).join('\n');
      throw new Error(`${err.message}; held: ${JSON.stringify(after)}\n${items.filter((c) => mine.some((ip) => c.metadata.name.startsWith(ip.replaceAll('.', '-')))).map((c) => JSON.stringify(c)).join('\n')}\n${said}`);
    });
    const reasons = await claimReasons();
    for (const ip of mine.filter((x) => after[x].length)) expect(reasons[ip]).toMatch(new RegExp(`took it over: ${lost} stopped answering its peers|let go first$`));
  } finally {
    await neverTwo(async () => {
      await lab.restoreNode(lost);
      await waitFor(`${lost} serves its share again`, async () => count(await holders(), lost) >= 1, 60000);
    }).catch((err: Error) => {
      const said = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n').split('\n')
        .filter((l) => /^---|took|taking|peer |moved|let go|released|asked|added|removed|conflict|fenced|serving/.test(l)).slice(-120).join('\n');
      throw new Error(`${err.message}\n${said}`);
    });
  }
}, API_OUTAGE_MS + 150000);

/**
 * Waits for the handoffs a test before started (a node restored gets its share back in two
 * steps) to settle: every claimed address has one holder, where its claim says, no handoff is
 * asked, and the claims stay so for a second. The tests before leave some addresses without a
 * Service: those have no claim and no holder.
 */
async function settled(): Promise<void> {
  let seen = '';
  await waitFor('the handoffs after the last test settled', async () => {
    const first = await claimsDetail();
    await new Promise((r) => setTimeout(r, 1000));
    const [h, c] = await Promise.all([holders(), claimsDetail()]);
    seen = JSON.stringify({holders: h, claims: c});
    const placed = IPS.every((ip) => (c[ip] ? h[ip].length === 1 && h[ip][0] === c[ip].node && !c[ip].releaseTo : h[ip].length === 0));
    return placed && JSON.stringify(c) === JSON.stringify(first);
  }, 60000).catch((err: Error) => {
    throw new Error(`${err.message}; last seen ${seen}\n${peerLog()}`);
  });
}

test('a node loses only the API server: it keeps its addresses and nothing moves, its peers vouching for it', async () => {
  await settled();
  const now = await holders();
  const mine = IPS.filter((ip) => now[ip].includes('node3'));
  expect(mine.length).toBeGreaterThan(0);
  const before = await claims();
  const proxy = await lab.apiProxy('node3');
  proxy.refuse();
  try {
    // Well past the scheduler's --monitor (1.5 s) and the controller's fence time (1.1 s).
    await neverTwo(async () => {
      const until = Date.now() + 8000;
      while (Date.now() < until) {
        const h = await holders();
        for (const ip of mine) expect([ip, h[ip]]).toEqual([ip, ['node3']]);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    expect(await claims()).toEqual(before);
    const said = lab.nodeKubelets.find((k) => k.name === 'node3')!.allLogs((ns) => ns === 'extip');
    expect(said).toContain('peers answer: the API server is away, and the addresses stay up');
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${peerLog()}`);
  } finally {
    proxy.resume();
  }
});

/**
 * How long the segment is lossy: two minutes in the test command; the
 * README's table asks ten, run with EXTIP_LOSSY_MINUTES=10 on this test alone.
 */
const LOSSY_MS = Number(process.env.EXTIP_LOSSY_MINUTES ?? '2') * 60_000;

test('a lossy segment (2 % of every node\'s packets dropped): no failover at all, no fence, nothing moves', async () => {
  await settled();
  const before = await holders();
  expect(IPS.filter((ip) => before[ip].length === 1).length).toBeGreaterThanOrEqual(5);
  const claimed = await claims();
  // What each controller said of deaths, takeovers and fences before (lines carry their time).
  const alarming = (k: (typeof lab.nodeKubelets)[number]) => k.allLogs((ns) => ns === 'extip').split('\n').filter((l) => /is dead|taking over|self-fenced|took down/.test(l));
  const said = new Map(lab.nodeKubelets.map((k) => [k.name, new Set(alarming(k))]));
  // netem is not in this kernel: iptables' statistic match drops a random 2 % of what each node
  // sends on the segment (its peers' UDP and its API traffic alike; ARP is not IP, and passes).
  const rule = ['OUTPUT', '-o', 'eth0', '-m', 'statistic', '--mode', 'random', '--probability', '0.02', '-j', 'DROP'];
  for (const n of ['node1', 'node2', 'node3']) {
    const r = await lab.exec(n, 'iptables', ['-A', ...rule]);
    expect([n, r.exitCode, r.stderr]).toEqual([n, 0, '']);
  }
  try {
    await neverTwo(async () => {
      const until = Date.now() + LOSSY_MS;
      while (Date.now() < until) {
        const h = await holders();
        for (const ip of IPS) expect([ip, h[ip]]).toEqual([ip, before[ip]]);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    expect(await claims()).toEqual(claimed);
    // The loss was there: each node's rule dropped packets.
    for (const n of ['node1', 'node2', 'node3']) {
      const listed = (await lab.exec(n, 'iptables', ['-L', 'OUTPUT', '-v', '-n', '-x'])).stdout;
      const dropped = Number(/^\s*(\d+)\s+\d+\s+DROP/m.exec(listed)?.[1] ?? 0);
      console.log(`lossy segment: ${n} dropped ${dropped} packets`);
      expect([n, dropped > 0]).toEqual([n, true]);
    }
    // Nobody declared dead, nothing taken over, nobody fenced: what each controller said meanwhile.
    for (const k of lab.nodeKubelets) expect([k.name, alarming(k).filter((l) => !said.get(k.name)?.has(l))]).toEqual([k.name, []]);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${peerLog()}`);
  } finally {
    for (const n of ['node1', 'node2', 'node3']) await lab.exec(n, 'iptables', ['-D', ...rule]);
  }
}, LOSSY_MS + 120000);

test('single: every address on one node; uninstall takes every address down', async () => {
  const run = await runRole(lab, {vars: {...vars, extip_distribution: 'single'}});
  expect(run.exitCode).toBe(0);
  await waitFor('all on one node', async () => {
    const h = await holders();
    const nodes = new Set(Object.values(h).flat());
    return Object.values(h).slice(0, 5).every((n) => n.length === 1) && nodes.size === 1;
  }, 60000);
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars});
  expect(removal.exitCode).toBe(0);
  await waitFor('no address left', async () => Object.values(await holders()).every((n) => n.length === 0), 30000);
  await lab.kubectl(['delete', 'service', 'six', '-n', 'default']);
});
