/**
 * `extip status`: what runs where, where each external IP is held, and what
 * looks wrong. Pure assessment over a ClusterState read by cli/kube.ts.
 */
import type * as k8s from '@kubernetes/client-node';
import {sessionEventPeer} from '../lib/bgp.js';
import {wantedAddresses} from './services.js';
import {type AgentFlags, parseAgentFlags} from '../lib/agent-flags.js';
import {type AddressPolicy, type Refused, nodeAddresses, policyFrom} from '../lib/policy.js';
import {canonicalIp} from '../lib/ipnet.js';
import {UPNP_PORTS, isDhcpKey, poolFrom, serviceView} from '../lib/pools.js';
import {admit, claimHolders} from '../lib/tenancy.js';
import type {ClaimStatus, ClusterState} from './kube.js';

export interface NodeStatus {
  name: string;
  ready: boolean;
  labelled: boolean;
  controller: 'ready' | 'not ready' | 'missing' | '-';
}

export interface IpStatus {
  ip: string;
  services: string[];
  heldBy: string[];
  /** Why the controller does not bring it up: its address policy refuses it. */
  refused?: string;
  /** Claims mode: since when it is on its node (ISO time). */
  since?: string;
  /** Claims mode: the last move, and for how long the address had no holder (previous node last heard from, to up on the new one). */
  lastMove?: {from: string; to: string; at: string; reason: string; withoutHolderMs?: number};
  /** Claims mode with extip_upnp: the ports the holder mapped on the UPnP gateway (`1.2.3.1:80 TCP`), by whom, or the gateway's error. */
  upnp?: {gateway?: string; mapped: string[]; node: string; error?: string};
  /** Claims mode with extip_lb_dhcp: the DHCP lease the address is (the server, the Service's MAC, when it was last renewed). */
  lease?: {server?: string; mac: string; renewed: string};
}

export interface StatusReport {
  server: string;
  installed: boolean;
  mode: 'all' | 'balance' | 'single' | 'unknown';
  controller?: {kind: string; namespace: string; name: string; image: string; iface: string; mask: string};
  /** How many labelled nodes run a ready controller, of how many labelled nodes (and of the replicas a Deployment asks for). */
  controllers?: {ready: number; labelled: number; replicas?: number};
  nodeLabel?: string;
  schedulerLeader?: string;
  nodes: NodeStatus[];
  ips: IpStatus[];
  pools: Array<{name: string; cidr: string; allocated: number}>;
  /** What install did to Calico's BGP export, from the install ledger. */
  calico: {etcdKeys: string[]; serviceExternalIPs: string[]; createdBgpConfiguration: boolean};
  /** extip's own BGP speaker (extip_bgp_speaker: extip): its spec, and on how many controllers it runs. */
  bgpSpeaker?: {
    asn: number;
    peers: Array<{address: string; asn: number; bfd: boolean; nodes?: string[]}>;
    running: number;
    of: number;
    /** Sessions whose newest Event (written by the speaker of a controller still running) says down. */
    sessionsDown: Array<{node: string; peer: string; since: string; message: string}>;
    /** The route reflectors (extip_bgp_route_reflectors) and the node holding each, from its Lease. */
    reflectors?: Array<{address: string; nodes: string[]; heldBy?: string}>;
  };
  problems: string[];
}

/** Since when a claim is on its node, and its last move with the time the address had no holder. */
function claimHistory(st: ClaimStatus): Pick<IpStatus, 'since' | 'lastMove'> {
  const out: Pick<IpStatus, 'since' | 'lastMove'> = {};
  if (st.since) out.since = st.since;
  if (st.previousNode && st.movedAt) {
    const gone = Date.parse(st.previousLastSeen ?? '');
    const up = st.upOn === st.node ? Date.parse(st.upAt ?? '') : NaN;
    out.lastMove = {from: st.previousNode, to: st.node ?? '', at: st.movedAt, reason: st.reason ?? '', ...(Number.isFinite(gone) && Number.isFinite(up) ? {withoutHolderMs: Math.max(0, up - gone)} : {})};
  }
  return out;
}

/** "4m", "2h", "3d": how long ago, as kubectl prints ages. */
export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/**
 * The address policy the deployed agent enforces, read from its command line
 * (the scheduler's in claims mode), with the nodes' addresses; undefined when
 * the command line is not one extip's agent takes.
 */
function deployedPolicy(args: readonly string[], state: ClusterState): {policy: AddressPolicy; flags: AgentFlags} | undefined {
  try {
    const flags = parseAgentFlags(args.slice(1));
    const policy = policyFrom(flags);
    policy.setNodeAddresses(nodeAddresses(state.nodes));
    return {policy, flags};
  } catch {
    return undefined;
  }
}

/**
 * What the deployed agent refuses, by address: in naive mode its policy; in
 * claims mode the scheduler's own admission (lib/tenancy.ts), with the pools
 * and the holders the claims record, so status gives the scheduler's verdicts.
 */
function refusals(state: ClusterState, deployed: NonNullable<ReturnType<typeof deployedPolicy>>, claimsMode: boolean): Map<string, Refused[]> {
  const {policy, flags} = deployed;
  let invalid: Refused[];
  if (claimsMode) {
    const pools = state.pools.map(poolFrom);
    policy.setSubnets('pools', pools.map((p) => p.cidr));
    invalid = admit(state.services, {policy, pools, holders: claimHolders(state.claims), lbClass: flags.lbClass, mask: flags.mask, mask6: flags.mask6, dhcp: flags.lbDhcp}).invalid;
  } else {
    invalid = [];
    for (const s of state.services) {
      for (const value of s.spec?.externalIPs ?? []) {
        const c = canonicalIp(value);
        const no = 'refused' in c ? {rule: 'not-an-ip' as const, reason: `"${value}" is ${c.refused}`} : policy.check(c.ip, s.metadata?.namespace, c.family === 4 ? flags.mask : flags.mask6);
        if (no) invalid.push({service: `${s.metadata?.namespace}/${s.metadata?.name}`, value, ...no});
      }
    }
  }
  const byValue = new Map<string, Refused[]>();
  for (const r of invalid) byValue.set(r.value, [...(byValue.get(r.value) ?? []), r]);
  return byValue;
}

/** When an Event last happened, in ms since the epoch (NaN when it says nothing). */
function eventTime(e: k8s.CoreV1Event): number {
  return Date.parse(String(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? ''));
}

/** The message of the newest Event of this reason on the Service ("namespace/name"). */
function latestEvent(events: readonly k8s.CoreV1Event[], service: string, reason: string): string | undefined {
  const [namespace, name] = service.split('/');
  return events
    .filter((e) => e.reason === reason && e.involvedObject?.kind === 'Service' && e.involvedObject.namespace === namespace && e.involvedObject.name === name)
    .sort((a, b) => eventTime(b) - eventTime(a))[0]?.message;
}

function flag(args: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

/**
 * extip's BGP speaker: the spec ipmanager runs with (its --bgp-speaker), and
 * whether BIRD runs beside it on each controller pod; a pod whose speaker does
 * not run announces nothing, which is a problem.
 */
function speakerStatus(controller: ClusterState['workloads'][number], args: string[], pods: ClusterState['pods'], problems: string[], events: readonly k8s.CoreV1Event[], leases: ClusterState['leases']): StatusReport['bgpSpeaker'] {
  const hasSpeaker = controller.spec?.template.spec?.containers.some((c) => c.name === 'bgp-speaker');
  const specArg = flag(args, 'bgp-speaker');
  if (!hasSpeaker || !specArg) return undefined;
  let spec: {asn?: number; peers?: Array<{address: string; asn: number; bfd?: boolean; nodes?: string[]}>; reflectors?: Array<{address: string; nodes: string[]}>} = {};
  try {
    spec = JSON.parse(specArg);
  } catch {
    problems.push('the controller\'s --bgp-speaker is not JSON: install again');
  }
  let running = 0;
  for (const p of pods) {
    const st = p.status?.containerStatuses?.find((c) => c.name === 'bgp-speaker');
    if (st?.state?.running) running++;
    else problems.push(`the BGP speaker on ${p.spec?.nodeName ?? p.metadata?.name} is not running (${st?.state?.waiting?.reason ?? st?.state?.terminated?.reason ?? 'no status'}${st?.restartCount ? `, ${st.restartCount} restarts` : ''}): that node's addresses are not announced`);
  }
  // Each node's and peer's newest session Event; a Down one written before its controller
  // (re)started says nothing about the controller running now.
  const newest = new Map<string, k8s.CoreV1Event>();
  for (const e of events) {
    if (e.involvedObject?.kind !== 'Node' || !['BGPSessionDown', 'BGPSessionUp'].includes(e.reason ?? '')) continue;
    const peer = sessionEventPeer(e.message ?? '');
    if (!peer) continue;
    const key = `${e.involvedObject.name} ${peer}`;
    const seen = newest.get(key);
    if (!seen || eventTime(e) >= eventTime(seen)) newest.set(key, e);
  }
  const sessionsDown: NonNullable<StatusReport['bgpSpeaker']>['sessionsDown'] = [];
  for (const [key, e] of newest) {
    if (e.reason !== 'BGPSessionDown') continue;
    const [node, peer] = key.split(' ');
    const pod = pods.find((p) => p.spec?.nodeName === node);
    const started = Date.parse(String(pod?.status?.containerStatuses?.find((c) => c.name === 'controller')?.state?.running?.startedAt ?? ''));
    if (!pod || (Number.isFinite(started) && eventTime(e) < started)) continue;
    sessionsDown.push({node, peer, since: new Date(eventTime(e)).toISOString(), message: e.message ?? ''});
    problems.push(`${node}: ${e.message} (since ${new Date(eventTime(e)).toISOString()})`);
  }
  sessionsDown.sort((a, b) => a.node.localeCompare(b.node) || a.peer.localeCompare(b.peer));
  const reflectors = spec.reflectors?.map((r) => {
    const holder = leases.find((l) => l.metadata?.namespace === controller.metadata?.namespace && l.metadata?.name === `extip-reflector-${r.address.replace(/\./g, '-')}`)?.spec?.holderIdentity;
    const heldBy = holder ? holder.split('_')[0] : undefined;
    if (!heldBy) problems.push(`no node holds the route reflector ${r.address} (${r.nodes.join(', ')}): their ToR learns nothing from that rack`);
    return {address: r.address, nodes: r.nodes, ...(heldBy ? {heldBy} : {})};
  });
  return {
    asn: spec.asn ?? 0,
    peers: (spec.peers ?? []).map((peer) => ({address: peer.address, asn: peer.asn, bfd: peer.bfd !== false, ...(peer.nodes ? {nodes: peer.nodes} : {})})),
    running,
    of: pods.length,
    sessionsDown,
    ...(reflectors ? {reflectors} : {}),
  };
}

export function assess(state: ClusterState): StatusReport {
  const problems: string[] = [];
  const controller = state.workloads.find((w) => w.metadata?.labels?.['app.kubernetes.io/component'] === 'controller');
  const scheduler = state.workloads.find((w) => w.metadata?.labels?.['app.kubernetes.io/component'] === 'scheduler');
  const nodeReady = (name: string) =>
    state.nodes.find((n) => n.metadata?.name === name)?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

  if (!controller) {
    return {server: state.server, installed: false, mode: 'unknown', nodes: [], ips: [], pools: [], calico: {etcdKeys: [], serviceExternalIPs: [], createdBgpConfiguration: false}, problems: ['extip is not installed here: no controller workload labelled app.kubernetes.io/managed-by=extip']};
  }
  const container = controller.spec?.template.spec?.containers[0];
  const args = container?.args ?? [];
  const schedArgs = scheduler?.spec?.template.spec?.containers[0]?.args ?? [];
  const mode = args[0] === 'naivecontroller' || args[0] === 'n' ? 'all' : args[0] === 'claimcontroller' ? (flag(schedArgs, 'nodefilter') === 'first-alive' ? 'single' : 'balance') : 'unknown';
  const selector = controller.spec?.template.spec?.nodeSelector ?? {};
  const [labelKey, labelValue] = Object.entries(selector)[0] ?? [];
  const selectorLabels = controller.spec?.selector.matchLabels ?? {};
  const pods = state.pods.filter((p) => Object.entries(selectorLabels).every(([k, v]) => p.metadata?.labels?.[k] === v) && p.metadata?.namespace === controller.metadata?.namespace);
  const podReady = (p: (typeof pods)[number]) => p.status?.phase === 'Running' && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

  const nodes: NodeStatus[] = state.nodes.map((n) => {
    const name = n.metadata?.name ?? '';
    const labelled = labelKey !== undefined && n.metadata?.labels?.[labelKey] === labelValue;
    const onNode = pods.filter((p) => p.spec?.nodeName === name);
    const controllerState: NodeStatus['controller'] = onNode.some(podReady) ? 'ready' : onNode.length ? 'not ready' : labelled ? 'missing' : '-';
    return {name, ready: nodeReady(name), labelled, controller: controllerState};
  });
  // A DaemonSet runs a controller on every labelled node: one missing is a problem. A
  // Deployment runs its replicas on some of them, by choice: a problem when fewer run than
  // it asks for. Either way, fewer than two leave no node to move addresses to.
  const replicas = controller.kind === 'Deployment' ? ((controller as k8s.V1Deployment).spec?.replicas ?? 1) : undefined;
  const controllers = {ready: nodes.filter((n) => n.controller === 'ready').length, labelled: nodes.filter((n) => n.labelled).length, ...(replicas !== undefined ? {replicas} : {})};
  for (const n of nodes) {
    if (n.labelled && n.controller !== 'ready' && replicas === undefined) {
      problems.push(`node ${n.name} is labelled ${labelKey}=${labelValue} but its controller is ${n.controller}`);
    }
  }
  if (replicas !== undefined && controllers.ready < Math.min(replicas, controllers.labelled)) {
    problems.push(`${controllers.ready} of the ${replicas} controller replicas asked for (extip_ctrl_replicas) are ready`);
  }
  if (controllers.ready < 2 && controllers.labelled > 0) {
    problems.push(`only ${controllers.ready} controller${controllers.ready === 1 ? ' runs' : 's run'}: ${mode === 'all' ? 'one node\'s loss takes every external IP\'s route with it' : 'a lost node\'s addresses have no other node to move to'} (run the controller as a DaemonSet over two or more labelled nodes, or extip_ctrl_replicas: 2 or more)`);
  }
  const holders = nodes.filter((n) => n.controller === 'ready').map((n) => n.name);
  const bgpSpeaker = speakerStatus(controller, args, pods, problems, state.events ?? [], state.leases ?? []);

  const claimsMode = mode === 'balance' || mode === 'single';
  if (state.ledgerProblems?.length) problems.push(`the install ledger (ConfigMap kube-system/extip-ledger) is damaged, and the role will not run on it: ${state.ledgerProblems.join('; ')}`);
  // Claims mode cannot work without its three CRDs.
  for (const crd of state.missingCrds ?? []) {
    if (claimsMode) problems.push(`the CustomResourceDefinition ${crd} is missing: claims mode cannot place any address without it; run extip install again to create it`);
  }
  if (scheduler) {
    const schedPods = state.pods.filter((p) => p.metadata?.namespace === scheduler.metadata?.namespace && Object.entries(scheduler.spec?.selector.matchLabels ?? {}).every(([k, v]) => p.metadata?.labels?.[k] === v));
    if (!schedPods.some(podReady)) problems.push(`the scheduler ${scheduler.metadata?.namespace}/${scheduler.metadata?.name} has no ready replica: no address is placed or moved (its readiness fails while its passes keep failing; see its log)`);
  }

  const byIp = wantedAddresses(state.services);
  const deployed = deployedPolicy(mode === 'all' ? args : schedArgs, state);
  if (deployed?.policy.open) problems.push('the controller brings up any address a Service names (no --allowed-cidrs), so anyone who may create a Service can take an address of your network (CVE-2020-8554): set extip_external_cidrs and install again');
  const refusedBy = deployed ? refusals(state, deployed, claimsMode) : new Map<string, Refused[]>();
  const ips: IpStatus[] = [...byIp].sort(([a], [b]) => a.localeCompare(b, undefined, {numeric: true})).map(([ip, asking]) => {
    const refused = (refusedBy.get(ip) ?? []).filter((r) => asking.includes(r.service));
    const services = asking.filter((s) => !refused.some((r) => r.service === s));
    if (!services.length && refused.length) {
      problems.push(`external IP ${ip} (${asking.join(', ')}) is refused: ${refused[0].reason}`);
      return {ip, services: asking, heldBy: [], refused: refused[0].reason};
    }
    for (const r of refused) problems.push(`external IP ${ip} of ${r.service} is refused: ${r.reason}`);
    let heldBy: string[];
    let history: Pick<IpStatus, 'since' | 'lastMove'> = {};
    let upnp: IpStatus['upnp'];
    if (mode === 'all') heldBy = holders;
    else {
      // A DHCP-leased LoadBalancer's claim is keyed on the Service; its address is the lease's.
      const claims = state.claims.filter((c) => (isDhcpKey(c.spec?.cidr ?? '') ? c.status?.lease?.ip : (c.spec?.cidr ?? '').split('/')[0]) === ip);
      heldBy = claims.map((c) => c.spec?.nodeName ?? '').filter(Boolean);
      for (const c of claims) {
        const node = c.spec?.nodeName;
        if (node && !holders.includes(node)) problems.push(`claim ${c.metadata.name} for ${ip} is on node ${node}, which has no ready controller`);
      }
      heldBy = heldBy.filter((n) => holders.includes(n));
      const claim = claims.find((c) => c.spec?.nodeName && c.status?.node === c.spec.nodeName);
      if (claim) history = claimHistory(claim.status!);
      const u = claims.find((c) => c.metadata.annotations?.[UPNP_PORTS])?.status?.upnp;
      if (u) {
        upnp = {...(u.gateway ? {gateway: u.gateway} : {}), mapped: (u.mapped ?? []).map((m: string) => `${u.external ?? '?'}:${m.split('/')[1]} ${m.split('/')[0]}`), node: u.node, ...(u.error ? {error: u.error} : {})};
        if (u.error) problems.push(`external IP ${ip}: the UPnP gateway's mappings failed on ${u.node}: ${u.error}`);
      }
    }
    if (!heldBy.length) problems.push(`external IP ${ip} (${services.join(', ')}) is not held by any controller`);
    const leased = state.claims.find((c) => isDhcpKey(c.spec?.cidr ?? '') && c.status?.lease?.ip === ip)?.status?.lease;
    const lease = leased ? {server: leased.server ?? undefined, mac: leased.mac ?? '', renewed: leased.at ?? ''} : undefined;
    return {ip, services, heldBy, ...history, ...(upnp ? {upnp} : {}), ...(lease ? {lease} : {})};
  });

  // LoadBalancers extip serves that have no address: why, from the scheduler's last AllocationFailed Event.
  if (claimsMode && deployed) {
    for (const s of state.services) {
      const v = serviceView(s, deployed.flags.lbClass);
      if (!v.lb || v.ingress.length) continue;
      const why = v.dhcp && deployed.flags.lbDhcp ? latestEvent(state.events ?? [], v.key, 'LeaseFailed') : latestEvent(state.events ?? [], v.key, 'AllocationFailed');
      problems.push(`LoadBalancer ${v.key} has no address${why ? `: ${why}` : ' yet'}`);
    }
  }

  const leaseName = scheduler?.metadata?.name;
  const lease = state.leases.find((l) => l.metadata?.name === leaseName && l.metadata?.namespace === scheduler?.metadata?.namespace);
  const pools = state.pools.map((p) => ({name: p.metadata.name, cidr: p.spec?.cidr ?? '', allocated: Object.keys(p.spec?.allocated ?? {}).length}));
  return {
    server: state.server,
    installed: true,
    mode,
    controller: {
      kind: controller.kind ?? '',
      namespace: controller.metadata?.namespace ?? '',
      name: controller.metadata?.name ?? '',
      image: container?.image ?? '',
      iface: flag(args, 'iface') ?? '',
      mask: flag(args, 'mask') ?? '',
    },
    controllers,
    nodeLabel: labelKey ? `${labelKey}=${labelValue}` : undefined,
    schedulerLeader: scheduler ? (lease?.spec?.holderIdentity ?? '(none)') : undefined,
    nodes,
    ips,
    pools,
    calico: {
      etcdKeys: Object.keys(state.ledger?.calico?.etcd ?? {}).sort(),
      serviceExternalIPs: state.ledger?.calico?.bgpconfiguration?.added ?? [],
      createdBgpConfiguration: Boolean(state.ledger?.calico?.bgpconfiguration?.created),
    },
    ...(bgpSpeaker ? {bgpSpeaker} : {}),
    problems,
  };
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

function calicoLine(c: StatusReport['calico']): string {
  const parts: string[] = [];
  if (c.etcdKeys.length) parts.push(`Calico v2 filter in etcd at ${c.etcdKeys.join(', ')}`);
  if (c.serviceExternalIPs.length || c.createdBgpConfiguration) {
    parts.push(`Calico v3 BGPConfiguration default${c.createdBgpConfiguration ? ' (created by extip)' : ''}, serviceExternalIPs added: ${c.serviceExternalIPs.join(', ') || '(none)'}`);
  }
  return parts.join('; ') || 'none by extip (extip_calico_export none, or auto found no Calico)';
}

export function formatStatus(r: StatusReport, now = Date.now()): string {
  const out: string[] = [];
  if (!r.installed) return [`API: ${r.server}`, ...r.problems.map((p) => `problem: ${p}`)].join('\n');
  const c = r.controller!;
  out.push(`API:        ${r.server}`);
  out.push(`Mode:       ${r.mode}${r.mode === 'all' ? ' (ECMP: every controller holds every IP)' : ' (claims)'}`);
  out.push(`Controller: ${c.kind} ${c.namespace}/${c.name}, image ${c.image}, on ${c.iface}/${c.mask}`);
  if (r.nodeLabel) out.push(`Node label: ${r.nodeLabel}`);
  if (r.controllers) out.push(`Controllers: ${r.controllers.ready} of ${r.controllers.labelled} labelled node${r.controllers.labelled === 1 ? '' : 's'} run a ready controller${r.controllers.replicas !== undefined ? ` (extip_ctrl_replicas: ${r.controllers.replicas})` : ''}`);
  if (r.schedulerLeader !== undefined) out.push(`Scheduler leader: ${r.schedulerLeader}`);
  if (r.bgpSpeaker) {
    const b = r.bgpSpeaker;
    const peers = b.peers.map((p) => `${p.address} (AS ${p.asn}${p.bfd ? ', BFD' : ''}${p.nodes ? `, nodes ${p.nodes.join(',')}` : ''})`).join(', ');
    out.push(`BGP export: extip's speaker, AS ${b.asn}, peers ${peers || '(none)'}; BIRD runs on ${b.running} of ${b.of} controller${b.of === 1 ? '' : 's'}; ${b.sessionsDown.length ? `${b.sessionsDown.length} session${b.sessionsDown.length === 1 ? '' : 's'} down (below)` : 'no session reported down'} (BFD and routes: each controller's /metrics)`);
    for (const r of b.reflectors ?? []) out.push(`Route reflector: ${r.address} for ${r.nodes.join(', ')}, held by ${r.heldBy ?? '(nobody)'}`);
  } else out.push(`BGP export: ${calicoLine(r.calico)}`);
  out.push('', ...table([['NODE', 'READY', 'LABELLED', 'CONTROLLER'], ...r.nodes.map((n) => [n.name, n.ready ? 'yes' : 'no', n.labelled ? 'yes' : 'no', n.controller])]));
  out.push('');
  if (r.ips.length && r.mode !== 'all') {
    const move = (m: IpStatus['lastMove']) => (m ? `${m.from} -> ${m.to} ${age(m.at, now)} ago${m.withoutHolderMs !== undefined ? `, ${(m.withoutHolderMs / 1000).toFixed(1)} s without a holder` : ''}: ${m.reason}` : '-');
    out.push(...table([['EXTERNAL IP', 'SERVICES', 'HELD BY', 'FOR', 'LAST MOVE'], ...r.ips.map((i) => [i.ip, i.services.join(','), i.refused ? '(refused)' : i.heldBy.join(',') || '(nobody)', i.since ? age(i.since, now) : '-', move(i.lastMove)])]));
  } else if (r.ips.length) out.push(...table([['EXTERNAL IP', 'SERVICES', 'HELD BY'], ...r.ips.map((i) => [i.ip, i.services.join(','), i.refused ? '(refused)' : i.heldBy.join(',') || '(nobody)'])]));
  else out.push('No Service has external IPs or LoadBalancer ingress.');
  const mapped = r.ips.filter((i) => i.upnp);
  const leases = r.ips.filter((i) => i.lease);
  if (leases.length) out.push('', ...table([['EXTERNAL IP', 'DHCP SERVER', 'MAC', 'RENEWED'], ...leases.map((i) => [i.ip, i.lease!.server ?? '?', i.lease!.mac, i.lease!.renewed ? `${age(i.lease!.renewed, now)} ago` : '-'])]));
  if (mapped.length) out.push('', ...table([['EXTERNAL IP', 'UPNP MAPPINGS', 'BY'], ...mapped.map((i) => [i.ip, i.upnp!.error ? `(failed: ${i.upnp!.error})` : i.upnp!.mapped.join(', ') || '(none yet)', i.upnp!.node])]));
  if (r.pools.length) out.push('', ...table([['POOL', 'CIDR', 'ALLOCATED'], ...r.pools.map((p) => [p.name, p.cidr, String(p.allocated)])]));
  out.push('', r.problems.length ? `${r.problems.length} problem${r.problems.length > 1 ? 's' : ''}:` : 'No problems found.');
  for (const p of r.problems) out.push(`  - ${p}`);
  return out.join('\n');
}
