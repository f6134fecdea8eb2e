/**
 * A client that opens a TCP connection to ip:port every `gapMs` from its own
 * namespace and records each answer (the node's name) or '-' (refused, reset,
 * or no answer within `timeoutMs`, and why) with the times it was opened and ended.
 */
import {spawn} from 'node:child_process';
import type {LabClient} from './lab.js';

export interface Answer {
  /** When the connection was opened. */
  start: number;
  /** When it ended: answered, or failed. */
  at: number;
  from: string;
  /** Why a failed one failed: the socket error's code (ECONNREFUSED, EHOSTUNREACH...), 'timeout', or 'closed' (ended without an answer). */
  why?: string;
}

export interface Prober {
  answers: Answer[];
  /** The answer that ended last. */
  last(): string | undefined;
  /** Answers that came in [from, to). */
  between(from: number, to?: number): Answer[];
  /** Connections opened in [from, to). */
  openedBetween(from: number, to?: number): Answer[];
  stop(): void;
}

export function startProber(client: LabClient, ip: string, port: number, gapMs = 20, timeoutMs = 150): Prober {
  // A connection every gapMs whatever the earlier ones do, as independent clients would: one
  // that hangs on a lost node does not hold back the next.
  const script = `const net = require('net');
    const once = () => { const start = Date.now(); const s = net.connect({host: '${ip}', port: ${port}, timeout: ${timeoutMs}}); let d = ''; let over = false;
      const done = (a, why) => { if (over) return; over = true; s.destroy(); console.log(Date.now() + ' ' + a + ' ' + start + (why ? ' ' + why : '')); };
      s.on('data', (x) => (d += x)); s.on('end', () => (d.trim() ? done(d.trim()) : done('-', 'closed')));
      s.on('error', (e) => done('-', e.code || 'error')); s.on('timeout', () => done('-', 'timeout')); };
    setInterval(once, ${gapMs});`;
  const child = spawn('ip', ['netns', 'exec', client.ns, process.execPath, '-e', script], {stdio: ['ignore', 'pipe', 'inherit']});
  const answers: Answer[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [at, from, start, why] = line.split(' ');
      answers.push({start: Number(start), at: Number(at), from, ...(why ? {why} : {})});
    }
  });
  return {
    answers,
    last: () => answers[answers.length - 1]?.from,
    between: (from, to = Infinity) => answers.filter((a) => a.at >= from && a.at < to),
    openedBetween: (from, to = Infinity) => answers.filter((a) => a.start >= from && a.start < to),
    stop: () => child.kill('SIGKILL'),
  };
}
