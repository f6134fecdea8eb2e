/**
 * Membership benchmark: the agents' SWIM (lib/membership.ts) against the
 * baseline every member heartbeating every other (what a design without
 * gossip does: each heartbeat signed the same way, a member dead after
 * `--timeout` without one), both on the simulated segment of
 * test/helpers/simnet.ts (0.3 ms latency, 2 ms jitter), in one process.
 *
 * For 3, 50 and 500 members: bytes sent per member per second once settled,
 * and, over several deaths, the time from a member's death until the first
 * live member and until every live member holds it dead. Prints each figure
 * and its ratio to the baseline measured in the same run. Simulated time, so
 * the machine's load does not enter the figures; the run's own time does.
 *
 * Usage: npm run bench:membership [-- --deaths N] [--sizes 3,50,500]
 */
import {createHmac, randomBytes} from 'node:crypto';
import {SimClock, seeded, simCluster} from '../helpers/simnet.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const DEATHS = Number(arg('--deaths', '5'));
const SIZES = arg('--sizes', '3,50,500').split(',').map(Number);
if (!Number.isInteger(DEATHS) || DEATHS < 1 || SIZES.some((n) => !Number.isInteger(n) || n < 3)) {
  console.error('--deaths takes a whole number above 0, --sizes whole numbers of at least 3');
  process.exit(2);
}
const PERIOD_MS = 200;
const TIMEOUT_MS = 1000;

interface Figures {
  bytesPerSecond: number;
  firstMs: number[];
  allMs: number[];
}

type DeadEvents = Array<{name: string; by: string; at: number}>;

/** The baseline: every member sends a signed heartbeat to every other every PERIOD_MS; silent for TIMEOUT_MS, dead. */
function allToAll(n: number, seed: number, deaths: number): Figures {
  const clock = new SimClock();
  const random = seeded(seed);
  const key = randomBytes(32);
  const names = Array.from({length: n}, (_, i) => `node${i + 1}`);
  const down = new Set<string>();
  const lastHeard = new Map<string, Map<string, number>>(names.map((a) => [a, new Map(names.map((b) => [b, 0]))]));
  const flagged = new Set<string>();
  const events: DeadEvents = [];
  let bytes = 0;
  for (const name of names) {
    const beat = () => {
      clock.setTimeout(beat, PERIOD_MS);
      if (down.has(name)) return;
      const body = Buffer.from(JSON.stringify({from: name, addr: name, ts: clock.now()}));
      const data = Buffer.concat([Buffer.from([1]), createHmac('sha256', key).update(body).digest(), body]);
      for (const to of names) {
        if (to === name) continue;
        bytes += data.length;
        clock.setTimeout(() => {
          if (down.has(to)) return;
          lastHeard.get(to)!.set(name, clock.now());
          flagged.delete(`${to}|${name}`);
        }, 0.3 + random() * 2);
      }
      // Who has been silent too long, in this member's view.
      for (const [who, at] of lastHeard.get(name)!) {
        if (who === name || clock.now() - at <= TIMEOUT_MS || flagged.has(`${name}|${who}`)) continue;
        flagged.add(`${name}|${who}`);
        events.push({name: who, by: name, at: clock.now()});
      }
    };
    clock.setTimeout(beat, random() * PERIOD_MS);
  }
  return measure(n, clock, down, () => bytes, events, deaths, seed);
}

function swim(n: number, seed: number, deaths: number): Figures {
  const c = simCluster(n, {seed, jitterMs: 2});
  const bytes = () => [...c.members.values()].reduce((s, m) => s + m.sent.bytes, 0);
  return measure(n, c.clock, c.down, bytes, c.changes, deaths, seed);
}

/**
 * Settles, counts bytes for a window, then kills one member at a time, times
 * its detection (from `events`: dead in whose view, when), and brings it
 * back and lets it settle before the next.
 */
function measure(n: number, clock: SimClock, down: Set<string>, bytes: () => number, events: ReadonlyArray<{name: string; by: string; at: number; state?: string}>, deaths: number, seed: number): Figures {
  clock.advance(5000);
  const window = n >= 500 ? 2000 : 10_000;
  const before = bytes();
  clock.advance(window);
  const bytesPerSecond = (bytes() - before) / n / (window / 1000);
  const random = seeded(seed + 1000);
  const names = Array.from({length: n}, (_, i) => `node${i + 1}`);
  const firstMs: number[] = [];
  const allMs: number[] = [];
  for (let d = 0; d < deaths; d++) {
    const victim = names[Math.floor(random() * n)];
    clock.advance(random() * PERIOD_MS);
    const at = clock.now();
    down.add(victim);
    const others = names.filter((x) => x !== victim);
    const seen = () => {
      const first = new Map<string, number>();
      for (const e of events) if (e.name === victim && e.at >= at && (e.state ?? 'dead') === 'dead' && !first.has(e.by)) first.set(e.by, e.at);
      return first;
    };
    for (let waited = 0; waited < 30_000 && seen().size < others.length; waited += 100) clock.advance(100);
    const times = [...seen().values()];
    firstMs.push(times.length ? Math.min(...times) - at : Infinity);
    allMs.push(times.length === others.length ? Math.max(...times) - at : Infinity);
    down.delete(victim);
    clock.advance(5000);
  }
  return {bytesPerSecond, firstMs, allMs};
}

const p = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((q / 100) * s.length) - 1)];
};
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : 'none');

console.log(`membership on a simulated segment: ${DEATHS} deaths per size; SWIM (${PERIOD_MS} ms period) against every member heartbeating every other (${PERIOD_MS} ms, dead after ${TIMEOUT_MS} ms)`);
console.log('members  design         B/s per member  ratio   first dead p50/p95 ms   all dead p50/p95 ms   ratio p95 all');
for (const n of SIZES) {
  const started = Date.now();
  const base = allToAll(n, 7, DEATHS);
  const ours = swim(n, 7, DEATHS);
  for (const [name, f] of [['baseline', base], ['extip SWIM', ours]] as const) {
    console.log(
      `${String(n).padEnd(9)}${name.padEnd(15)}${f.bytesPerSecond.toFixed(0).padStart(14)}  ${(f.bytesPerSecond / base.bytesPerSecond).toFixed(3).padStart(6)}   ${`${ms(p(f.firstMs, 50))}/${ms(p(f.firstMs, 95))}`.padStart(20)}   ${`${ms(p(f.allMs, 50))}/${ms(p(f.allMs, 95))}`.padStart(18)}   ${(p(f.allMs, 95) / p(base.allMs, 95)).toFixed(2).padStart(12)}`,
    );
  }
  process.stderr.write(`  ${n} members: ${((Date.now() - started) / 1000).toFixed(1)} s of this machine's time\n`);
}
