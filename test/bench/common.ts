/** What the benchmarks share: address monitoring in a lab node, batched calls, percentiles. */
import type {Lab} from '../lab/lab.js';
import {startDaemon, type Daemon} from '../lab/procs.js';

export const hrms = () => Number(process.hrtime.bigint()) / 1e6;

/** Runs the calls 50 at a time. */
export async function inBatches(count: number, call: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += 50) await Promise.all(Array.from({length: Math.min(50, count - i)}, (_, j) => call(i + j)));
}

/** Streams `ip monitor address` in a node; calls back with each address added (and its device) and the time it was seen. */
export function monitorAddresses(lab: Lab, node: string, onAdd: (cidr: string, at: number, dev: string) => void): Daemon {
  const d = startDaemon('ip', ['netns', 'exec', lab.host(node).ns, 'ip', '-o', 'monitor', 'address']);
  let partial = '';
  d.child.stdout?.on('data', (chunk: Buffer) => {
    const at = hrms();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^\d+:\s+(\S+)\s+inet6?\s+(\S+)/.exec(line);
      if (m && !line.startsWith('Deleted')) onAdd(m[2], at, m[1]);
    }
  });
  return d;
}

/** The p-th percentile of sorted values (nearest rank). */
export const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
