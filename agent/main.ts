/**
 * `ipmanager`: extip's drop-in for the External IP Controller binary, with the
 * upstream command-line contract: naivecontroller, and claims mode's
 * claimcontroller and scheduler.
 */
import {createServer} from 'node:http';
import {hostname} from 'node:os';
import {ApiClient} from './api.js';
import {KubeconfigError, loadAccess} from './kubeconfig.js';
import {Ownership} from './addresses.js';
import {ClaimController} from './claimcontroller.js';
import {fenceAfterMs} from './claims.js';
import {FlagError, parseAgentFlags} from '../lib/agent-flags.js';
import {createLogger} from './log.js';
import {Metrics} from './metrics.js';
import {NaiveController} from './naive.js';
import {Scheduler} from './scheduler.js';
import {Speaker, SpeakerError, loadSpeakerSpec} from './speaker.js';
import {birdRun} from './birdrun.js';
import {ReflectorHolder} from './reflector.js';
import {podNamespace} from './scheduler.js';
import {reflectorOf} from '../lib/bgp.js';

const USAGE = `Usage: ipmanager <command> [flags]

Commands:
  naivecontroller (n)  bring every Service external IP up on --iface as IP/--mask
  claimcontroller      claims mode, on each node: heartbeat the IpNode --hostname
                       every --hb, bring up the IpClaims assigned to it
  scheduler            claims mode: an IpClaim per Service external IP, each on
                       one live IpNode (--nodefilter=fair|first-alive); claims of
                       a node silent for --monitor, or gone, move
  bgp-speaker          runs BIRD beside naivecontroller --bgp-speaker, and keeps
                       it on SIGTERM until naivecontroller has withdrawn its
                       routes (ipmanager bgp-speaker --help)

Flags: --iface=eth0 --mask=32 (IPv4 prefix) --mask-v6=128 (IPv6 prefix)
       --kubeconfig=PATH (default: in-cluster) --resync=20s
       --hostname=NAME (default: this host's name) --hb=2s --monitor=4s
         (the controller takes its addresses down when no heartbeat succeeded
         for --monitor less min(--hb, --monitor/4), before the scheduler moves them)
       --dad-wait=100ms (claimcontroller: before bringing an IPv4 address up, wait
         this long for another host to answer an ARP probe for it; one that does
         is a conflict, and the address stays down; 0: no probe)
       --peer-port=0 --peer-address=IP --peer-keys=/etc/extip/peers/keys.json
         (claimcontroller: the controllers' own membership over UDP on
         PORT of the node's address IP, signed with the keys file's keys;
         with it a holder that the others find gone is replaced by the
         claim's first live standby at once, and a controller cut off from
         the API server keeps its addresses while its peers answer; 0: none)
       --announce=3 (claimcontroller: gratuitous ARPs, a second apart, after
         bringing an IPv4 address up; IPv6 addresses get the kernel's
         duplicate address detection and unsolicited neighbour advertisement)
       --lb-class=extip.io/ipmanager (scheduler: LoadBalancer Services of this
         loadBalancerClass, or of none, get an address from the IpClaimPools;
         so do Services annotated external-ip: auto)
       --upnp (scheduler: the ports of Services annotated extip.io/upnp: "true"
         are mapped on the segment's UPnP Internet gateway by the node that
         holds their address; without it, by none)
       --lb-dhcp (scheduler: a LoadBalancer asking for 0.0.0.0, in
         spec.loadBalancerIP or an address annotation, gets its address
         leased from the segment's DHCP server by the node that holds its
         claim, on a macvlan with a MAC derived from the Service; without
         it, such a Service is refused with an Event)
       --allowed-cidrs=CIDR[,CIDR...] (bring up only Service addresses inside
         these ranges; others get an ExternalIPRefused Event on their Service.
         Without it any address is taken, but never an unspecified, loopback,
         link-local, multicast, broadcast or reserved one, a node's address,
         the API server's, or one inside --service-cidr or --cluster-cidr)
       --service-cidr=CIDR[,CIDR] --cluster-cidr=CIDR[,CIDR] (the cluster's
         Service and pod CIDRs) --allowed-namespaces=NS[,NS...] (only these
         namespaces' Services; default: any)
       --nodefilter=fair --leader-elect --leader-elect-lease-duration=15s
         --leader-elect-renew-deadline=10s --leader-elect-retry-period=2s
         --leader-elect-resource-name=ipmanager-scheduler
         --leader-elect-resource-namespace=NS (default: the pod's namespace)
       --v=N --logtostderr --alsologtostderr
       --health-port=0 --health-address=127.0.0.1 (serve /healthz /readyz
         /metrics on ADDRESS:PORT;
         /readyz answers 503 until the Services are listed and while the API is away)
       --bgp-speaker=JSON|FILE (naivecontroller: announce the addresses it brings
         up over BGP through the BIRD beside it, with the peers, AS, ranges and
         timers of this spec, as the role renders it; only /32s in the ranges)
         --bgp-socket=/run/extip-bgp/bird.ctl (BIRD's control socket; ipmanager
         writes BIRD's configuration beside it) --bgp-router-id=IP (the node's
         IPv4 address) --bgp-withdraw-wait=1s (between announcing a route with
         GRACEFUL_SHUTDOWN and withdrawing it, and again before its address
         comes down). A node of a rack with a route reflector
         in the spec stands for its Lease (extip-reflector-<address>, in
         --leader-elect-resource-namespace); the holder brings the
         reflector's address up on the interface of its subnet and reflects
         the rack's paths to the reflector's routers
       --keep-on-exit (leave the addresses up on SIGTERM) --state-dir=/run/extip
       --owner=ipmanager (the workload whose addresses these are; agents with
         different owners on one node never take down each other's addresses)
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'bgp-speaker') return birdRun(rest);
  if (!['naivecontroller', 'n', 'claimcontroller', 'scheduler'].includes(command)) {
    process.stderr.write(`ipmanager: unknown command "${command}"\n${USAGE}`);
    return 2;
  }
  let flags;
  try {
    flags = parseAgentFlags(rest);
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`ipmanager: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (flags.bgpSpeaker && !['naivecontroller', 'n'].includes(command)) {
    process.stderr.write(`ipmanager: --bgp-speaker is for naivecontroller (ECMP: every node announces every address); ${command} does not announce over BGP\n`);
    return 2;
  }
  const log = createLogger(flags.verbosity);
  let api: ApiClient;
  try {
    api = new ApiClient(loadAccess(flags.kubeconfig));
  } catch (err) {
    if (!(err instanceof KubeconfigError)) throw err;
    process.stderr.write(`ipmanager: ${err.message}\n`);
    return 2;
  }
  const metrics = new Metrics();
  let controller: {ready: boolean; start(): Promise<void>; stop(withdraw: boolean): Promise<void>};
  let banner: string;
  if (command === 'scheduler') {
    const scheduler = new Scheduler(api, flags, log, metrics);
    // A leader that lost its lease stops deciding and stands again as a candidate (see leader.ts).
    scheduler.lost = (why) => log.warn(`leader election lost: ${why}; standing by as a candidate`);
    controller = {get ready() { return scheduler.ready; }, start: () => scheduler.start(), stop: () => scheduler.stop()};
    banner = `scheduler: --nodefilter=${flags.nodefilter}, heartbeat timeout --monitor=${flags.monitorMs}ms, masks /${flags.mask} /${flags.mask6}, leader election ${flags.leaderElect ? `on (lease ${flags.leaseDurationMs}ms, renew ${flags.renewDeadlineMs}ms, retry ${flags.retryPeriodMs}ms)` : 'off'}`;
  } else if (command === 'claimcontroller') {
    const node = flags.hostname || hostname();
    controller = new ClaimController(api, flags, new Ownership(flags.stateDir, flags.iface, flags.owner), log, metrics, node);
    banner = `claimcontroller for IpNode ${node} on ${flags.iface}, owner ${flags.owner}, heartbeat every ${flags.hbMs} ms, self-fence after ${fenceAfterMs(flags.hbMs, flags.monitorMs)} ms without one (--monitor=${flags.monitorMs}ms)`;
  } else {
    let speaker: Speaker | undefined;
    if (flags.bgpSpeaker) {
      try {
        const spec = await loadSpeakerSpec(flags.bgpSpeaker);
        const node = flags.hostname || hostname();
        speaker = new Speaker(spec, {node, routerId: flags.bgpRouterId!, socket: flags.bgpSocket, withdrawWaitMs: flags.bgpWithdrawWaitMs}, log);
        speaker.events = {api, component: 'extip-naivecontroller'};
        const reflector = reflectorOf(spec, node);
        if (reflector) speaker.holder = new ReflectorHolder(api, reflector, {node, namespace: flags.leaseNamespace ?? podNamespace(), speaker, announce: flags.announce}, log);
      } catch (err) {
        if (!(err instanceof SpeakerError)) throw err;
        process.stderr.write(`ipmanager: ${err.message}\n`);
        return 2;
      }
      const s = speaker;
      metrics.sources.push(() => s.metrics());
    }
    controller = new NaiveController(api, flags, new Ownership(flags.stateDir, flags.iface, flags.owner), log, metrics, speaker);
    banner = `naivecontroller on ${flags.iface} with masks /${flags.mask} (IPv4) and /${flags.mask6} (IPv6), owner ${flags.owner}, resync ${flags.resyncMs} ms`;
  }

  const server = flags.healthPort
    ? createServer((req, res) => {
        if (req.url === '/healthz') res.writeHead(200).end('ok\n');
        else if (req.url === '/readyz') res.writeHead(controller.ready ? 200 : 503).end(controller.ready ? 'ready\n' : 'not ready\n');
        else if (req.url === '/metrics') res.writeHead(200, {'Content-Type': 'text/plain; version=0.0.4'}).end(metrics.text());
        else res.writeHead(404).end('not found\n');
      })
    : undefined;
  if (server) {
    // Before anything else runs: a port that is taken stops the agent with a clear message, not a crash later.
    const listening = await new Promise<Error | undefined>((resolve) => {
      server.once('error', resolve).once('listening', () => resolve(undefined));
      server.listen(flags.healthPort, flags.healthAddress);
    });
    if (listening) {
      log.error(`cannot serve --health-port=${flags.healthPort} on ${flags.healthAddress} (${(listening as NodeJS.ErrnoException).code ?? listening.message}); choose a free port, or 0 for none`);
      return 1;
    }
  }

  const done = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info(0, `${signal}: ${command === 'scheduler' ? 'stopping' : flags.keepOnExit ? 'leaving the addresses up (--keep-on-exit)' : 'withdrawing the addresses'}`);
      controller
        .stop(!flags.keepOnExit)
        .then(() => resolve(0), (err: Error) => {
          log.error(`stopping failed: ${err.message}`);
          resolve(1);
        })
        .finally(() => server?.close());
    };
    // Listeners stay for the whole run: execa's exit hook re-raises a signal that no
    // other listener handles, which would kill the agent before it withdraws.
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  log.info(0, banner);
  await controller.start();
  return done;
}
