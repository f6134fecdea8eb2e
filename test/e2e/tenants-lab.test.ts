/**
 * Claims mode under hostile tenants, on the lab's real control plane, each
 * row of the README's "Address policy" table tried as a tenant would:
 * users with the built-in `edit` ClusterRole in their own namespace only
 * (and, for one, `patch` on `services/status`), acting through `kubectl
 * --as`. Pool a serves team-a, pool b team-b, and 10.210.1.192/26 is
 * declared for anyone. Then what an operator's re-install may do to them:
 * cut a pool's range (renumbering, only when acknowledged) and rename the
 * install (a handover with no gap).
 */
import {expect, test} from '@jest/globals';
import {waitFor} from '../lab/bgp.js';
import {explain, runRole} from '../helpers/role.js';
import {extip} from '../helpers/cli.js';
import {useLab} from '../helpers/lab.js';
import {ApiClient} from '../../agent/api.js';
import {loadAccess} from '../../agent/kubeconfig.js';
import {LeaderElector} from '../../agent/leader.js';
import {createLogger} from '../../agent/log.js';

// The controller's kind and replicas are the role's defaults: a controller on every labelled node.
const vars = {
  extip_distribution: 'balance',
  extip_namespace: 'extip',
  extip_iface: 'eth0',
  extip_mask: 24,
  // Heartbeats with room: these tests are about who gets which address and about handovers, not
  // failover speed (claims-lab's), and a re-install's burst of new pods on a loaded two-core
  // machine can delay a 500 ms heartbeat past the default 1.1 s fence.
  extip_ctrl_hb: '1s',
  extip_sched_monitor: '6s',
  extip_external_cidrs: ['10.210.1.192/26'],
  extip_ip_pools: [
    {name: 'a', cidr: '10.210.1.0/25', ranges: [['10.210.1.100', '10.210.1.110']], namespaces: ['team-a']},
    {name: 'b', cidr: '10.210.1.128/25', ranges: [['10.210.1.211', '10.210.1.220']], namespaces: ['team-b']},
  ],
};

const lab = useLab({nodes: 3}, async (started) => {
  const run = await runRole(started, {vars});
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
  const objects = [
    ...['team-a', 'team-b'].map((name) => ({apiVersion: 'v1', kind: 'Namespace', metadata: {name}})),
    // Each tenant may edit its own namespace, and nothing else.
    ...['a', 'b'].map((t) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: `user-${t}-edit`, namespace: `team-${t}`},
      roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit'},
      subjects: [{apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: `user-${t}`}],
    })),
    // What a tenant's own LoadBalancer controller has: its Services' status.
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: {name: 'status-writer', namespace: 'team-b'}, rules: [{apiGroups: [''], resources: ['services/status'], verbs: ['get', 'patch', 'update']}]},
    {apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: {name: 'user-b-status', namespace: 'team-b'}, roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'status-writer'}, subjects: [{apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'user-b'}]},
  ];
  for (const o of objects) {
    const r = await started.kubectl(['apply', '-f', '-'], JSON.stringify(o));
    if (r.exitCode !== 0) throw new Error(r.stderr);
  }
});

/** A role run that must succeed: its failures are the test's message. */
function succeeded(run: Awaited<ReturnType<typeof runRole>>): void {
  if (run.exitCode !== 0) throw new Error(explain(run).slice(0, 3000));
}

const as = (user: string, args: string[], stdin?: string) => lab.kubectl([`--as=${user}`, ...args], stdin);
const service = (ns: string, name: string, spec: Record<string, unknown>, annotations: Record<string, string> = {}) =>
  JSON.stringify({apiVersion: 'v1', kind: 'Service', metadata: {name, namespace: ns, annotations}, spec: {ports: [{port: 80}], ...spec}});

/** The nodes that have the address on eth0. */
async function upOn(ip: string): Promise<string[]> {
  return (await Promise.all(lab.hosts.map(async (h) => {
    const r = await lab.exec(h.name, 'ip', ['-j', 'address', 'show', 'dev', 'eth0']);
    return JSON.parse(r.stdout)[0].addr_info.some((a: {local: string}) => a.local === ip) ? [h.name] : [];
  }))).flat();
}

async function ingress(ns: string, name: string): Promise<string[]> {
  const r = await lab.kubectl(['get', 'service', name, '-n', ns, '-o', 'json']);
  return (JSON.parse(r.stdout).status?.loadBalancer?.ingress ?? []).map((i: {ip: string}) => i.ip);
}

async function events(ns: string, name: string, reason: string): Promise<string[]> {
  const r = await lab.kubectl(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${name},reason=${reason}`, '-o', 'json']);
  return JSON.parse(r.stdout).items.map((e: {message: string}) => e.message);
}

async function claimed(): Promise<string[]> {
  const r = await lab.kubectl(['get', 'ipclaims', '-o', 'json']);
  return JSON.parse(r.stdout).items.map((c: {spec: {cidr: string}}) => c.spec.cidr.split('/')[0]).sort();
}

/** Samples the nodes every 50 ms while `during` runs; records each moment an address is not up on exactly one node. */
async function alwaysOne<T>(ips: readonly string[], during: () => Promise<T>): Promise<{result: T; gaps: string[]}> {
  let done = false;
  const gaps: string[] = [];
  const sampler = (async () => {
    while (!done) {
      for (const ip of ips) {
        const nodes = await upOn(ip);
        if (nodes.length !== 1) gaps.push(`${new Date().toISOString()} ${ip} on ${nodes.join(' and ') || 'no node'}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    return {result: await during(), gaps};
  } finally {
    done = true;
    await sampler;
  }
}

test('the defaults run a controller on every labelled node and schedulers on different nodes; status finds nothing wrong', async () => {
  const ds = JSON.parse((await lab.kubectl(['get', 'daemonset', 'claimcontroller', '-n', 'extip', '-o', 'json'])).stdout);
  expect(ds.status.numberReady).toBe(3);
  const schedulers = JSON.parse((await lab.kubectl(['get', 'pods', '-n', 'extip', '-l', 'app.kubernetes.io/component=scheduler', '-o', 'json'])).stdout).items;
  expect(schedulers).toHaveLength(2);
  expect(new Set(schedulers.map((p: {spec: {nodeName: string}}) => p.spec.nodeName)).size).toBe(2);
  let status = await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig]);
  // The second scheduler may still be starting.
  await waitFor('status without problems', async () => {
    status = await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig]);
    return status.exitCode === 0;
  }, 30000).catch(() => undefined);
  expect(JSON.parse(status.stdout).problems).toEqual([]);
  expect(JSON.parse(status.stdout).controllers).toEqual({ready: 3, labelled: 3});
});

test('a malformed address in one tenant\'s Service is an Event on it; the scheduler goes on for everyone else', async () => {
  // The API server accepts this loadBalancerIP; it used to end every scheduling pass.
  expect((await as('user-b', ['apply', '-f', '-'], service('team-b', 'zoned', {type: 'LoadBalancer', loadBalancerIP: 'fe80::1%eth0'}, {'extip.io/load-balancer-ip': 'fe80::1%eth0'}))).exitCode).toBe(0);
  expect((await as('user-a', ['apply', '-f', '-'], service('team-a', 'web', {type: 'LoadBalancer'}))).exitCode).toBe(0);
  await waitFor('team-a\'s LoadBalancer given its pool\'s first address', async () => (await ingress('team-a', 'web'))[0] === '10.210.1.100', 30000);
  await waitFor('its address up on one node', async () => (await upOn('10.210.1.100')).length === 1, 30000);
  await waitFor('an AllocationFailed Event on team-b/zoned', async () => (await events('team-b', 'zoned', 'AllocationFailed')).some((m) => m.includes('"fe80::1%eth0", is an address with a zone')), 15000);
  expect(await ingress('team-b', 'zoned')).toEqual([]);
  const logs = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip')).join('\n');
  expect(logs).not.toMatch(/scheduling failed/);
  // status says what is wrong, and exits 6.
  const status = await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig]);
  expect(status.exitCode).toBe(6);
  expect(JSON.parse(status.stdout).problems).toContainEqual(expect.stringMatching(/^LoadBalancer team-b\/zoned has no address: .*is an address with a zone/));
  // So does doctor, of the install already there.
  const doctor = await extip(['doctor', '-i', lab.kubesprayInventory, '--kubeconfig', lab.api.kubeconfig, '--json', '--set', 'extip_distribution=balance', '--set', 'extip_iface=eth0', '--set', 'extip_external_cidrs=[10.210.1.192/26]']);
  const installed = JSON.parse(doctor.stdout).checks.find((c: {name: string}) => c.name === 'installed');
  expect({exitCode: doctor.exitCode, installed}).toMatchObject({exitCode: 6, installed: expect.anything()});
  expect(installed).toMatchObject({ok: false, detail: expect.stringContaining('LoadBalancer team-b/zoned has no address')});
  expect((await lab.kubectl(['delete', 'service', 'zoned', '-n', 'team-b'])).exitCode).toBe(0);
});

test('another pool\'s addresses, a pool CIDR outside its ranges and the segment\'s edges are refused to a tenant, and none comes up', async () => {
  const wanted = ['10.210.1.100', '10.210.1.105', '10.210.1.50', '10.210.1.255', '10.210.1.0'];
  expect((await as('user-b', ['apply', '-f', '-'], service('team-b', 'steal', {externalIPs: wanted}))).exitCode).toBe(0);
  let message = '';
  await waitFor('an ExternalIPRefused Event on team-b/steal', async () => {
    message = (await events('team-b', 'steal', 'ExternalIPRefused'))[0] ?? '';
    return message !== '';
  }, 15000);
  expect(message).toContain('10.210.1.100: 10.210.1.100 is an address of IpClaimPool a, which serves only namespace team-a');
  expect(message).toContain('10.210.1.105: 10.210.1.105 is an address of IpClaimPool a');
  expect(message).toContain('10.210.1.50: 10.210.1.50 is outside the ranges external IPs may come from');
  expect(message).toContain('10.210.1.255: 10.210.1.255 is the broadcast address of');
  expect(message).toContain('10.210.1.0: 10.210.1.0 is the network address of');
  // team-a's address stays on exactly one node, and nothing else of the list comes up or is claimed.
  await new Promise((r) => setTimeout(r, 2000));
  expect(await upOn('10.210.1.100')).toHaveLength(1);
  for (const ip of wanted.slice(1)) expect([ip, await upOn(ip)]).toEqual([ip, []]);
  expect(await claimed()).toEqual(['10.210.1.100']);
  // team-a may still ask for the address team-b wrote.
  expect((await as('user-a', ['apply', '-f', '-'], service('team-a', 'asks', {type: 'LoadBalancer'}, {'extip.io/load-balancer-ip': '10.210.1.105'}))).exitCode).toBe(0);
  await waitFor('team-a given 10.210.1.105', async () => (await ingress('team-a', 'asks'))[0] === '10.210.1.105', 30000);
  expect((await lab.kubectl(['delete', 'service', 'steal', '-n', 'team-b'])).exitCode).toBe(0);
  expect((await lab.kubectl(['delete', 'service', 'asks', '-n', 'team-a'])).exitCode).toBe(0);
});

test('a tenant writing another tenant\'s address into its LoadBalancer\'s status gets one of its own pool instead', async () => {
  expect((await as('user-b', ['apply', '-f', '-'], service('team-b', 'lb', {type: 'LoadBalancer'}))).exitCode).toBe(0);
  await waitFor('team-b\'s LoadBalancer given pool b\'s first address', async () => (await ingress('team-b', 'lb'))[0] === '10.210.1.211', 30000);
  // Its own controller's right: patch services/status.
  const patch = await as('user-b', ['patch', 'service', 'lb', '-n', 'team-b', '--subresource=status', '--type=merge', '-p', JSON.stringify({status: {loadBalancer: {ingress: [{ip: '10.210.1.100'}]}}})]);
  expect(patch.exitCode).toBe(0);
  await waitFor('the scheduler writes pool b\'s address back', async () => (await ingress('team-b', 'lb'))[0] === '10.210.1.211', 30000);
  expect(await upOn('10.210.1.100')).toHaveLength(1);
  const claims = JSON.parse((await lab.kubectl(['get', 'ipclaim', '10-210-1-100-24', '-o', 'json'])).stdout);
  expect(claims.status.services).toEqual(['team-a/web']);
  // Without the right, the write is refused by the API server itself.
  expect((await as('user-a', ['patch', 'service', 'lb', '-n', 'team-b', '--subresource=status', '--type=merge', '-p', '{}'])).exitCode).not.toBe(0);
  expect((await lab.kubectl(['delete', 'service', 'lb', '-n', 'team-b'])).exitCode).toBe(0);
});

test('a declared address one namespace holds is refused to another; the same namespace may share it', async () => {
  expect((await as('user-a', ['apply', '-f', '-'], service('team-a', 'first', {externalIPs: ['10.210.1.200']}))).exitCode).toBe(0);
  await waitFor('10.210.1.200 up on one node', async () => (await upOn('10.210.1.200')).length === 1, 30000);
  await waitFor('its claim records team-a/first', async () => {
    const r = await lab.kubectl(['get', 'ipclaim', '10-210-1-200-24', '-o', 'jsonpath={.status.services}']);
    return r.stdout.includes('team-a/first');
  }, 15000);
  expect((await as('user-b', ['apply', '-f', '-'], service('team-b', 'second', {externalIPs: ['10.210.1.200']}))).exitCode).toBe(0);
  expect((await as('user-a', ['apply', '-f', '-'], service('team-a', 'sibling', {externalIPs: ['10.210.1.200'], ports: [{port: 443}]}))).exitCode).toBe(0);
  await waitFor('a taken refusal on team-b/second', async () => (await events('team-b', 'second', 'ExternalIPRefused')).some((m) => m.includes('10.210.1.200 is held by Service team-a/first, of another namespace')), 15000);
  await waitFor('the claim records both of team-a\'s Services, the holder first', async () => {
    const r = await lab.kubectl(['get', 'ipclaim', '10-210-1-200-24', '-o', 'json']);
    return JSON.stringify(JSON.parse(r.stdout).status.services) === JSON.stringify(['team-a/first', 'team-a/sibling']);
  }, 15000);
  expect(await events('team-a', 'sibling', 'ExternalIPRefused')).toEqual([]);
  for (const [ns, name] of [['team-a', 'first'], ['team-a', 'sibling'], ['team-b', 'second']]) await lab.kubectl(['delete', 'service', name, '-n', ns]);
  await waitFor('10.210.1.200 down', async () => (await upOn('10.210.1.200')).length === 0, 30000);
});

test('a scheduler that cannot do the leader\'s work gives its Lease up to a standby, and stands again once it can', async () => {
  const api = new ApiClient(loadAccess(lab.api.kubeconfig));
  const log = createLogger(0);
  let ok = true;
  const options = {namespace: 'default', name: 'extip-eligibility', leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200};
  const failing = new LeaderElector(api, {...options, identity: 'failing', eligible: () => ok}, log, () => undefined, () => undefined);
  const standby = new LeaderElector(api, {...options, identity: 'standby'}, log, () => undefined, () => undefined);
  const holder = async () => JSON.parse((await lab.kubectl(['get', 'lease', 'extip-eligibility', '-n', 'default', '-o', 'json'])).stdout).spec.holderIdentity;
  failing.start();
  try {
    await waitFor('the first candidate leads', async () => failing.leading, 10000);
    standby.start();
    ok = false;
    const since = Date.now();
    await waitFor('the standby leads', async () => standby.leading && (await holder()) === 'standby', 10000);
    // Given up, not left to expire: well within the lease duration.
    expect(Date.now() - since).toBeLessThan(2000);
    expect(failing.leading).toBe(false);
  } finally {
    await standby.stop();
    await failing.stop();
    await lab.kubectl(['delete', 'lease', 'extip-eligibility', '-n', 'default']);
  }
});

test('a re-install that cuts a pool\'s range names the Service it would renumber and goes ahead only when told', async () => {
  const cut = {...vars, extip_ip_pools: [{...vars.extip_ip_pools[0], ranges: [['10.210.1.101', '10.210.1.110']]}, vars.extip_ip_pools[1]]};
  const refused = await runRole(lab, {vars: cut});
  expect(refused.exitCode).not.toBe(0);
  expect(JSON.stringify(refused.failures)).toContain('Service team-a/web: 10.210.1.100 (IpClaimPool a: no longer in its ranges)');
  expect(JSON.stringify(refused.failures)).toContain('extip_allow_renumber');
  expect(await ingress('team-a', 'web')).toEqual(['10.210.1.100']);
  const acknowledged = await runRole(lab, {vars: {...cut, extip_allow_renumber: true}});
  succeeded(acknowledged);
  await waitFor('team-a/web renumbered into the new range', async () => (await ingress('team-a', 'web'))[0] === '10.210.1.101', 30000);
  // Back to the original pools for the tests after this one: nothing leaves them, so no acknowledgement.
  succeeded(await runRole(lab, {vars}));
});

test('one controller is refused in claims mode, naming what to set; accepted when acknowledged, status says what it means', async () => {
  const one = {...vars, extip_ctrl_app_kind: 'Deployment', extip_ctrl_replicas: 1};
  const refused = await runRole(lab, {vars: one});
  expect(refused.exitCode).not.toBe(0);
  const said = JSON.stringify(refused.failures);
  expect(said).toContain('this setup runs 1 controller (extip_ctrl_app_kind: Deployment with extip_ctrl_replicas: 1)');
  expect(said).toContain('extip_allow_no_failover: true');
  // More replicas than labelled nodes could never all run.
  expect(JSON.stringify((await runRole(lab, {vars: {...one, extip_ctrl_replicas: 4}})).failures)).toContain('extip_ctrl_replicas is 4, but 3 nodes carry the node label');
  const ip = (await ingress('team-a', 'web'))[0];
  // Acknowledged: the addresses of the nodes left without a controller move to the one that has it
  // (a drain of those nodes); and back to the DaemonSet, which takes over with no gap.
  succeeded(await runRole(lab, {vars: {...one, extip_allow_no_failover: true}}));
  await waitFor('the address held by the one controller', async () => (await upOn(ip)).length === 1, 30000);
  const status = await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig]);
  const report = JSON.parse(status.stdout);
  expect(report.controllers).toEqual({ready: 1, labelled: 3, replicas: 1});
  expect(report.problems).toContainEqual(expect.stringMatching(/^only 1 controller runs: a lost node's addresses have no other node to move to/));
  // A labelled node without a controller is a Deployment's choice, not a problem of its own.
  expect(report.problems.filter((p: string) => p.startsWith('node '))).toEqual([]);
  const back = await alwaysOne([ip], () => runRole(lab, {vars}));
  succeeded(back.result);
  expect(back.gaps).toEqual([]);
});

test('renaming the install hands every address over without a gap; uninstall then removes what both names left', async () => {
  const ip = (await ingress('team-a', 'web'))[0];
  await waitFor(`${ip} up on one node`, async () => (await upOn(ip)).length === 1, 30000);
  const renamed = {...vars, extip_namespace: 'extip2'};
  const {result: run, gaps} = await alwaysOne([ip], () => runRole(lab, {vars: renamed}));
  succeeded(run);
  if (gaps.length) {
    // What the agents said meanwhile, to see who took the address down.
    const said = lab.nodeKubelets.map((k) => k.allLogs((ns) => ns === 'extip' || ns === 'extip2')).join('\n').split('\n');
    console.log(said.filter((l) => l.includes(ip) || /withdr|IpNode|lease|SIGTERM|serving|fenced|moved/.test(l)).join('\n'));
  }
  expect(gaps).toEqual([]);
  // The new controllers serve their probes on the port after the old ones' (both ran at once).
  const ds = JSON.parse((await lab.kubectl(['get', 'daemonset', 'claimcontroller', '-n', 'extip2', '-o', 'json'])).stdout);
  expect(ds.spec.template.spec.containers[0].args).toContain('--health-port=10296');
  expect((await lab.kubectl(['get', 'daemonset', 'claimcontroller', '-n', 'extip'])).exitCode).not.toBe(0);
  // The old scheduler's Lease went with it.
  const leases = JSON.parse((await lab.kubectl(['get', 'leases', '-A', '-l', 'app.kubernetes.io/component=scheduler', '-o', 'json'])).stdout).items.map((l: {metadata: {namespace: string; name: string}}) => `${l.metadata.namespace}/${l.metadata.name}`);
  expect(leases).toEqual(['extip2/claimscheduler']);
  // The same name again keeps its port: no restart of the controllers.
  succeeded(await runRole(lab, {vars: renamed}));
  const again = JSON.parse((await lab.kubectl(['get', 'daemonset', 'claimcontroller', '-n', 'extip2', '-o', 'json'])).stdout);
  expect(again.metadata.generation).toBe(ds.metadata.generation);
  for (const [ns, name] of [['team-a', 'web']]) await lab.kubectl(['delete', 'service', name, '-n', ns]);
  // A claims-mode CRD deleted by hand: status names it, and uninstall still removes everything.
  expect((await lab.kubectl(['delete', 'crd', 'ipclaims.ipcontroller.ext'])).exitCode).toBe(0);
  const status = JSON.parse((await extip(['status', '--json', '--kubeconfig', lab.api.kubeconfig])).stdout);
  expect(status.problems).toContainEqual(expect.stringMatching(/^the CustomResourceDefinition ipclaims\.ipcontroller\.ext is missing/));
  const removal = await runRole(lab, {playbook: 'externalip-uninstall.yml', vars: renamed});
  succeeded(removal);
  expect(JSON.parse((await lab.kubectl(['get', 'leases', '-A', '-l', 'app.kubernetes.io/managed-by=extip,app.kubernetes.io/component=scheduler', '-o', 'json'])).stdout).items).toEqual([]);
  for (const ns of ['extip', 'extip2']) expect((await lab.kubectl(['get', 'namespace', ns])).exitCode).not.toBe(0);
}, 300000);
