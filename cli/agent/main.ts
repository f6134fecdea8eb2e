/**
 * `ipmanager`: extip's drop-in for the External IP Controller binary, with the
 * upstream command-line contract. Naive mode is implemented; claims mode
 * (claimcontroller, scheduler) is not yet.
 */
import {createServer} from 'node:http';
import * as k8s from '@kubernetes/client-node';
import {Ownership} from './addresses.js';
import {FlagError, parseAgentFlags} from './flags.js';
import {createLogger} from './log.js';
import {Metrics} from './metrics.js';
import {NaiveController} from './naive.js';

const USAGE = `Usage: ipmanager <command> [flags]

Commands:
  naivecontroller (n)  bring every Service external IP up on --iface as IP/--mask
  claimcontroller      claims-mode agent (not implemented yet)
  scheduler            claims-mode scheduler (not implemented yet)

Flags: --iface=eth0 --mask=32 (IPv4 prefix) --mask-v6=128 (IPv6 prefix)
       --kubeconfig=PATH (default: in-cluster) --resync=20s
       --hostname=NAME --v=N --logtostderr --alsologtostderr
       --health-port=0 (serve /healthz /readyz /metrics on 127.0.0.1:PORT;
         /readyz answers 503 until the Services are listed and while the API is away)
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
  if (command === 'claimcontroller' || command === 'scheduler') {
    process.stderr.write(`ipmanager ${command}: not implemented yet in extip's ipmanager; use extip_distribution: all (naivecontroller), or the upstream image for claims mode\n`);
    return 2;
  }
  if (command !== 'naivecontroller' && command !== 'n') {
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
  const log = createLogger(flags.verbosity);
  const kc = new k8s.KubeConfig();
  if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  const metrics = new Metrics();
  const controller = new NaiveController(kc, flags, new Ownership(flags.stateDir, flags.iface, flags.owner), log, metrics);

  const server = flags.healthPort
    ? createServer((req, res) => {
        if (req.url === '/healthz') res.writeHead(200).end('ok\n');
        else if (req.url === '/readyz') res.writeHead(controller.ready ? 200 : 503).end(controller.ready ? 'ready\n' : 'not ready\n');
        else if (req.url === '/metrics') res.writeHead(200, {'Content-Type': 'text/plain; version=0.0.4'}).end(metrics.text());
        else res.writeHead(404).end('not found\n');
      }).listen(flags.healthPort, '127.0.0.1')
    : undefined;

  const done = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info(0, `${signal}: ${flags.keepOnExit ? 'leaving the addresses up (--keep-on-exit)' : 'withdrawing the addresses'}`);
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
  log.info(0, `naivecontroller on ${flags.iface} with masks /${flags.mask} (IPv4) and /${flags.mask6} (IPv6), owner ${flags.owner}, resync ${flags.resyncMs} ms`);
  await controller.start();
  return done;
}
