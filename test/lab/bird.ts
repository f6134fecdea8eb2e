/** BIRD daemons in the lab's namespaces, each with its own config, socket and PID file. */
import {writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {execa} from 'execa';
import type {Daemon} from './procs.js';
import type {Lab} from './lab.js';

export interface Bird {
  host: string;
  config: string;
  socket: string;
  daemon: Daemon;
  /** Runs a birdc command against this daemon. */
  birdc(command: string): Promise<string>;
  /** Rewrites the config and reloads it. */
  reconfigure(config: string): Promise<void>;
}

/**
 * Starts `binary` (bird for BIRD 2, or a BIRD 1.6 binary) in `host`'s namespace
 * ('tor' for the router) in the foreground, stopped with the lab.
 */
export async function startBird(lab: Lab, host: string, config: string, binary = 'bird', birdc = 'birdc'): Promise<Bird> {
  const base = join(lab.dir, `bird-${host}`);
  const configFile = `${base}.conf`;
  const socket = `${base}.ctl`;
  await writeFile(configFile, config);
  const check = await execa(binary, ['-p', '-c', configFile], {reject: false});
  if (check.exitCode !== 0) throw new Error(`BIRD rejects the ${host} config: ${check.stderr || check.stdout}`);
  const daemon = lab.startIn(host, binary, ['-f', '-c', configFile, '-s', socket, '-P', `${base}.pid`]);
  const run = async (command: string) => {
    const r = await execa(birdc, ['-s', socket, ...command.split(' ')], {reject: false});
    return r.stdout;
  };
  const deadline = Date.now() + 10000;
  while (!(await run('show status')).includes('Daemon is up')) {
    if (Date.now() > deadline || daemon.child.exitCode !== null) throw new Error(`BIRD on ${host} did not start: ${daemon.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    host,
    config: configFile,
    socket,
    daemon,
    birdc: run,
    async reconfigure(next: string) {
      await writeFile(configFile, next);
      const r = await run('configure');
      if (!/Reconfigur|Reconfiguration in progress|Reconfigured/.test(r)) throw new Error(`BIRD on ${host} did not take the new config: ${r}`);
    },
  };
}
