/**
 * BIRD's control protocol, as birdc speaks it on BIRD's unix socket: BIRD
 * greets with "0001 BIRD <version> ready.", then answers each command with
 * lines "NNNN-text" (more to come), " text" (the same code goes on) and a
 * last "NNNN text". Codes from 8000 up are errors (8xxx: run-time, 9xxx:
 * parse). The image carries no birdc: ipmanager speaks the protocol itself.
 */
import {createConnection} from 'node:net';

export interface BirdReply {
  /** The code of the last line. */
  code: number;
  lines: string[];
}

export class BirdError extends Error {}

/** Splits what BIRD sent into replies: [greeting, reply], or undefined until both are complete. */
export function parseReplies(text: string): BirdReply[] {
  const replies: BirdReply[] = [];
  let lines: string[] = [];
  // Only whole lines: a reply may arrive cut anywhere, even right after its code.
  const whole = text.split('\n').slice(0, -1);
  for (const line of whole) {
    const m = /^(\d{4})([ -])(.*)$/.exec(line);
    if (m) {
      lines.push(m[3]);
      if (m[2] === ' ') {
        replies.push({code: Number(m[1]), lines});
        lines = [];
      }
    } else if (line.startsWith(' ')) {
      lines.push(line.slice(1));
    }
  }
  return replies;
}

/** Runs one command on BIRD's control socket; rejects when BIRD is not there or answers with an error. */
export function birdCommand(socket: string, command: string, timeoutMs = 5000): Promise<BirdReply> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let text = '';
    let sent = false;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new BirdError(`BIRD did not answer "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new BirdError(`BIRD's control socket ${socket}: ${err.code ?? err.message}`));
    });
    conn.on('data', (chunk: string) => {
      text += chunk;
      const replies = parseReplies(text);
      if (!sent && replies.length >= 1) {
        sent = true;
        conn.write(`${command}\n`);
      }
      if (replies.length >= 2) {
        clearTimeout(timer);
        conn.end();
        const reply = replies[1];
        if (reply.code >= 8000) reject(new BirdError(`BIRD refused "${command}": ${reply.lines.join(' ').trim()}`));
        else resolve(reply);
      }
    });
  });
}

export interface BirdProtocol {
  name: string;
  proto: string;
  state: string;
  info: string;
}

/** `show protocols`: one entry a protocol (the header line left out). */
export function parseProtocols(lines: readonly string[]): BirdProtocol[] {
  return lines
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5)
    .map((f) => ({name: f[0], proto: f[1], state: f[3], info: f.slice(5).join(' ')}));
}

/** `show bfd sessions`: the peer addresses whose session is Up, and all of them. */
export function parseBfdSessions(lines: readonly string[]): {up: string[]; all: string[]} {
  const all: string[] = [];
  const up: string[] = [];
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length < 3 || !/^[0-9a-fA-F.:]+$/.test(f[0]) || !f[0].includes('.') && !f[0].includes(':')) continue;
    all.push(f[0]);
    if (f[2] === 'Up') up.push(f[0]);
  }
  return {up, all};
}
