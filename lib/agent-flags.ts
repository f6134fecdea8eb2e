/**
 * The upstream ipmanager command line (Go pflag style): `--name=value` or
 * `--name value`, a single dash accepted too, booleans as `--flag` or
 * `--flag=true|false`.
 */
import {type TimingNames, durationMs, heartbeatErrors, leaseErrors} from './timings.js';
import {patterns} from './rules.js';
import {isIP} from 'node:net';
import {parseCidrs} from './policy.js';

export interface AgentFlags {
  iface: string;
  /** Prefix length of IPv4 addresses (`--mask`, upstream's flag). */
  mask: number;
  /** Prefix length of IPv6 addresses (`--mask-v6`; default 128, or `--mask` when that is above 32). */
  mask6: number;
  /** The workload that owns the addresses this agent adds (`--owner`), so that two agents on a node keep apart. */
  owner: string;
  kubeconfig?: string;
  resyncMs: number;
  hostname?: string;
  verbosity: number;
  healthPort: number;
  /** Where /healthz, /readyz and /metrics listen (`--health-address`): 127.0.0.1, or 0.0.0.0 in a pod of its own network, where the kubelet's probes come from outside. */
  healthAddress: string;
  keepOnExit: boolean;
  stateDir: string;
  /** claimcontroller: heartbeat interval (`--hb`). */
  hbMs: number;
  /** scheduler: heartbeat timeout after which a node's claims move (`--monitor`); claimcontroller: the same value, to fence before it. */
  monitorMs: number;
  nodefilter: 'fair' | 'first-alive';
  leaderElect: boolean;
  /** Leader election, as Kubernetes components take it: lease duration, renew deadline, retry period, the Lease's name and namespace. */
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  leaseName: string;
  leaseNamespace?: string;
  /** claimcontroller: how long to wait for another host to answer an ARP probe before bringing an IPv4 address up (`--dad-wait`; 0: no probe). */
  dadWaitMs: number;
  /** scheduler: the loadBalancerClass extip serves, besides LoadBalancers with none (`--lb-class`). */
  lbClass: string;
  /** Scheduler: map the ports of Services annotated extip.io/upnp on the segment's UPnP Internet gateway. */
  upnp: boolean;
  /** Scheduler: LoadBalancers asking for 0.0.0.0 get their address leased from the segment's DHCP server (`--lb-dhcp`). */
  lbDhcp: boolean;
  /** claimcontroller: gratuitous ARPs sent after bringing an IPv4 address up (`--announce`; 0: none). */
  announce: number;
  /** Where external IPs may come from (`--allowed-cidrs`); undefined: anywhere but the ranges never allowed. */
  allowedCidrs?: string[];
  /** The cluster's Service CIDRs (`--service-cidr`) and pod CIDRs (`--cluster-cidr`, kube-proxy's name): never external IPs. */
  serviceCidrs: string[];
  clusterCidrs: string[];
  /** Only Services of these namespaces get their external IPs (`--allowed-namespaces`); empty: any. */
  allowedNamespaces: string[];
  /** naivecontroller: the BGP speaker spec file (`--bgp-speaker`, lib/bgp.ts); undefined: no speaker of extip's. */
  bgpSpeaker?: string;
  /** BIRD's control socket (`--bgp-socket`). */
  bgpSocket: string;
  /** The node's address, BIRD's router ID (`--bgp-router-id`). */
  bgpRouterId?: string;
  /** Each of the two waits before an address comes down (`--bgp-withdraw-wait`): after GRACEFUL_SHUTDOWN, and after the withdrawal. */
  bgpWithdrawWaitMs: number;
  /** claimcontroller: the UDP port of the controllers' membership (`--peer-port`; 0: none, liveness through the API alone). */
  peerPort: number;
  /** The node's address the other controllers reach it on (`--peer-address`, the pod's status.hostIP). */
  peerAddress?: string;
  /** The membership's keys file (`--peer-keys`): the role's Secret, mounted. */
  peerKeys: string;
}

const BOOLEAN = new Set(['logtostderr', 'alsologtostderr', 'leader-elect', 'keep-on-exit', 'upnp', 'lb-dhcp']);
const VALUED = new Set(['iface', 'mask', 'kubeconfig', 'resync', 'hostname', 'v', 'hb', 'monitor', 'nodefilter', 'health-port', 'health-address', 'state-dir', 'mask-v6', 'owner', 'leader-elect-lease-duration', 'leader-elect-renew-deadline', 'leader-elect-retry-period', 'leader-elect-resource-lock', 'leader-elect-resource-name', 'leader-elect-resource-namespace', 'dad-wait', 'announce', 'lb-class', 'allowed-cidrs', 'service-cidr', 'cluster-cidr', 'allowed-namespaces', 'bgp-speaker', 'bgp-socket', 'bgp-router-id', 'bgp-withdraw-wait', 'peer-port', 'peer-address', 'peer-keys', 'stderrthreshold', 'log_dir', 'vmodule']);

export class FlagError extends Error {}

/** Go's time.ParseDuration, to milliseconds (lib/timings.ts, as the CLI and the role read it). */
export function parseDuration(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new FlagError(`invalid duration "${text}" (a Go duration such as 500ms, 20s, 1m)`);
  return ms;
}

/** Whether a value follows one of the catalogue's patterns (lib/rules.ts): the agent takes what extip_* takes. */
function matches(name: keyof typeof patterns, value: string): boolean {
  return new RegExp(patterns[name]).test(value);
}

/** The timings' names on the agent's command line. */
const TIMING_FLAGS: TimingNames = {hb: '--hb', monitor: '--monitor', lease: '--leader-elect-lease-duration'};

export function parseAgentFlags(args: string[]): AgentFlags {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const m = /^--?([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?$/.exec(arg);
    if (!m) throw new FlagError(`unexpected argument "${arg}"`);
    const [, name, inline] = m;
    if (BOOLEAN.has(name)) {
      if (inline !== undefined && !['true', 'false', '1', '0'].includes(inline)) throw new FlagError(`invalid boolean value "${inline}" for --${name}`);
      values.set(name, inline ?? 'true');
    } else if (VALUED.has(name)) {
      const value = inline ?? args[++i];
      if (value === undefined) throw new FlagError(`flag needs an argument: --${name}`);
      values.set(name, value);
    } else {
      throw new FlagError(`unknown flag: --${name}`);
    }
  }
  const mask = Number(values.get('mask') ?? '32');
  if (!Number.isInteger(mask) || mask < 1 || mask > 128) throw new FlagError(`invalid --mask "${values.get('mask')}" (1 to 32, or to 128 for IPv6)`);
  // Upstream had one --mask for both families; above 32 it can only have meant IPv6.
  const mask6 = Number(values.get('mask-v6') ?? (mask > 32 ? String(mask) : '128'));
  if (!Number.isInteger(mask6) || mask6 < 1 || mask6 > 128) throw new FlagError(`invalid --mask-v6 "${values.get('mask-v6')}" (1 to 128)`);
  const owner = values.get('owner') ?? 'ipmanager';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/.test(owner)) throw new FlagError(`invalid --owner "${owner}" (letters, digits, "_", "." and "-", such as kube-system.externalipcontroller)`);
  const iface = values.get('iface') ?? 'eth0';
  if (!matches('iface', iface)) throw new FlagError(`invalid --iface "${iface}"`);
  const healthPort = Number(values.get('health-port') ?? '0');
  if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535) throw new FlagError(`invalid --health-port "${values.get('health-port')}"`);
  const healthAddress = values.get('health-address') ?? '127.0.0.1';
  if (!isIP(healthAddress)) throw new FlagError(`invalid --health-address "${healthAddress}" (an IP address such as 127.0.0.1 or 0.0.0.0)`);
  const truthy = (name: string) => ['true', '1'].includes(values.get(name) ?? 'false');
  const duration = (name: string, fallback: string) => {
    const ms = parseDuration(values.get(name) ?? fallback);
    if (ms <= 0) throw new FlagError(`--${name} must be above zero`);
    return ms;
  };
  const nodefilter = values.get('nodefilter') ?? 'fair';
  if (nodefilter !== 'fair' && nodefilter !== 'first-alive') throw new FlagError(`invalid --nodefilter "${nodefilter}" (fair or first-alive)`);
  const hbMs = duration('hb', '2s');
  const monitorMs = duration('monitor', '4s');
  // The rules the CLI and the role check (lib/timings.ts). The scheduler takes no --hb: a
  // controller's heartbeat must be shorter than the timeout it fences before.
  const timings = [
    ...(values.has('hb') ? heartbeatErrors(values.get('hb')!, values.get('monitor') ?? '4s', TIMING_FLAGS) : []),
    ...leaseErrors(values.get('leader-elect-lease-duration') ?? '15s', TIMING_FLAGS),
  ];
  if (timings.length) throw new FlagError(timings.join('; '));
  const leaseDurationMs = duration('leader-elect-lease-duration', '15s');
  // Kubernetes' defaults are 15s, 10s and 2s; a shorter lease given alone keeps those proportions.
  const renewDeadlineMs = values.has('leader-elect-renew-deadline') ? duration('leader-elect-renew-deadline', '10s') : Math.round((leaseDurationMs * 2) / 3);
  const retryPeriodMs = values.has('leader-elect-retry-period') ? duration('leader-elect-retry-period', '2s') : Math.round((leaseDurationMs * 2) / 15);
  if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs)) {
    throw new FlagError('leader election needs --leader-elect-lease-duration > --leader-elect-renew-deadline > --leader-elect-retry-period');
  }
  const dadWaitMs = parseDuration(values.get('dad-wait') ?? '100ms');
  if (dadWaitMs > 10000) throw new FlagError(`--dad-wait=${values.get('dad-wait')} is longer than 10s: every move would wait that long; a host on the link answers in under a millisecond`);
  const announce = Number(values.get('announce') ?? '3');
  if (!Number.isInteger(announce) || announce < 0 || announce > 10) throw new FlagError(`invalid --announce "${values.get('announce')}" (gratuitous ARPs after bringing an address up: 0 to 10)`);
  const lbClass = values.get('lb-class') ?? 'extip.io/ipmanager';
  if (!matches('labelKey', lbClass)) throw new FlagError(`invalid --lb-class "${lbClass}" (a label-style name such as example.com/lb)`);
  const list = (name: string) => (values.get(name) ?? '').split(',').map((v) => v.trim()).filter(Boolean);
  const cidrs = (name: string) => {
    const items = list(name);
    try {
      parseCidrs(items, `--${name}`);
    } catch (err) {
      throw new FlagError(`${(err as Error).message} (a comma-separated list of CIDRs such as 192.0.2.0/24,2001:db8::/64)`);
    }
    return items;
  };
  const allowedCidrs = values.has('allowed-cidrs') ? cidrs('allowed-cidrs') : undefined;
  if (allowedCidrs && allowedCidrs.length === 0) throw new FlagError('--allowed-cidrs is empty: name at least one CIDR, or leave the flag out to allow any address outside the ranges never allowed');
  const allowedNamespaces = list('allowed-namespaces');
  const badNamespace = allowedNamespaces.find((n) => !matches('dnsLabel', n));
  if (badNamespace) throw new FlagError(`invalid --allowed-namespaces entry "${badNamespace}" (namespace names, comma-separated)`);
  const bgpRouterId = values.get('bgp-router-id') || undefined;
  if (bgpRouterId !== undefined && isIP(bgpRouterId) !== 4) throw new FlagError(`invalid --bgp-router-id "${bgpRouterId}" (the node's IPv4 address)`);
  if (values.has('bgp-speaker') && !bgpRouterId) throw new FlagError('--bgp-speaker needs --bgp-router-id, the node\'s IPv4 address (in a pod: --bgp-router-id=$(NODE_IP) from status.hostIP)');
  const bgpWithdrawWaitMs = parseDuration(values.get('bgp-withdraw-wait') ?? '1s');
  if (bgpWithdrawWaitMs > 60000) throw new FlagError(`--bgp-withdraw-wait=${values.get('bgp-withdraw-wait')} is over a minute: the routers stop sending within milliseconds of the withdrawal`);
  const peerPort = Number(values.get('peer-port') ?? '0');
  if (!Number.isInteger(peerPort) || peerPort < 0 || peerPort > 65535) throw new FlagError(`invalid --peer-port "${values.get('peer-port')}" (a UDP port, or 0 for no membership)`);
  const peerAddress = values.get('peer-address') || undefined;
  if (peerAddress !== undefined && !isIP(peerAddress)) throw new FlagError(`invalid --peer-address "${peerAddress}" (the node's IP address; in a pod: --peer-address=$(NODE_IP) from status.hostIP)`);
  if (peerPort && !peerAddress) throw new FlagError('--peer-port needs --peer-address, the node\'s IP address the other controllers reach (in a pod: --peer-address=$(NODE_IP) from status.hostIP)');
  const lock = values.get('leader-elect-resource-lock') ?? 'leases';
  if (lock !== 'leases') throw new FlagError(`--leader-elect-resource-lock=${lock}: only leases is supported (endpoints and configmaps locks are gone from Kubernetes)`);
  return {
    iface,
    mask: Math.min(mask, 32),
    mask6,
    owner,
    kubeconfig: values.get('kubeconfig') || undefined,
    resyncMs: parseDuration(values.get('resync') ?? '20s'),
    hostname: values.get('hostname'),
    verbosity: Number(values.get('v') ?? '0') || 0,
    healthPort,
    healthAddress,
    keepOnExit: truthy('keep-on-exit'),
    stateDir: values.get('state-dir') ?? '/run/extip',
    bgpSpeaker: values.get('bgp-speaker') || undefined,
    bgpSocket: values.get('bgp-socket') ?? '/run/extip-bgp/bird.ctl',
    bgpRouterId,
    bgpWithdrawWaitMs,
    hbMs,
    monitorMs,
    nodefilter,
    leaderElect: truthy('leader-elect'),
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    leaseName: values.get('leader-elect-resource-name') ?? 'ipmanager-scheduler',
    leaseNamespace: values.get('leader-elect-resource-namespace') || undefined,
    dadWaitMs,
    announce,
    lbClass,
    upnp: truthy('upnp'),
    lbDhcp: truthy('lb-dhcp'),
    allowedCidrs,
    serviceCidrs: cidrs('service-cidr'),
    clusterCidrs: cidrs('cluster-cidr'),
    allowedNamespaces,
    peerPort,
    peerAddress,
    peerKeys: values.get('peer-keys') ?? '/etc/extip/peers/keys.json',
  };
}
