/**
 * Leader election (agent/leader.ts) on the in-memory API server and a
 * simulated clock: Kubernetes' default timings (a 15 s lease, a 10 s renew
 * deadline, a try every 2 s) run in milliseconds, each step of the clock
 * followed by the requests it started. A standby takes the Lease of a leader
 * gone without a word only once the lease duration has passed on its own
 * clock since it last saw the Lease change; a leader that cannot renew stops
 * leading at its renew deadline; one that gives the Lease up is replaced at
 * the standby's next try.
 */
import {afterEach, beforeEach, expect, test} from '@jest/globals';
import type {ApiResponse} from '../../agent/api.js';
import {LeaderElector} from '../../agent/leader.js';
import {FakeApi} from '../helpers/fakeapi.js';
import {CuttableClient, logger} from '../helpers/simcluster.js';
import {SimClock} from '../helpers/simnet.js';

const LEASE = '/apis/coordination.k8s.io/v1/namespaces/default/leases/scheduler';
const TIMINGS = {leaseDurationMs: 15000, renewDeadlineMs: 10000, retryPeriodMs: 2000};

let api: FakeApi;
let clock: SimClock;
/** Requests not answered yet, by any candidate. */
let pending = 0;
/** What happened, with the simulated time: `12000 b leads`. */
let seen: string[];
let electors: LeaderElector[];

/** Counts its requests in flight, so that a step of the clock can wait for what it started. */
class Counted extends CuttableClient {
  override async request(method: string, path: string, body?: unknown, options?: {timeoutMs?: number; contentType?: string}): Promise<ApiResponse> {
    pending++;
    try {
      return await super.request(method, path, body, options);
    } finally {
      pending--;
    }
  }
}

function candidate(name: string, eligible?: () => boolean): {elector: LeaderElector; client: Counted} {
  const client = new Counted({server: api.url, insecure: true, token: () => undefined});
  const elector = new LeaderElector(client, {namespace: 'default', name: 'scheduler', identity: name, clock: clock.forAgent(), eligible, ...TIMINGS}, logger([]),
    () => void seen.push(`${clock.now()} ${name} leads`), (why) => void seen.push(`${clock.now()} ${name} stops: ${why}`));
  electors.push(elector);
  return {elector, client};
}

/** Lets the requests started so far finish, and what follows them run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    await new Promise((r) => setImmediate(r));
    if (pending === 0) {
      await new Promise((r) => setImmediate(r));
      if (pending === 0) return;
    }
  }
  throw new Error('requests still unanswered after 1,000 turns');
}

/** The clock moves `ms` on, 100 ms at a time. */
async function pass(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    clock.advance(100);
    await settle();
  }
}

async function holder(): Promise<string> {
  return (await api.client().call('GET', LEASE)).spec.holderIdentity;
}

beforeEach(async () => {
  api = await FakeApi.start();
  // Not at 0: the Lease's times are written from this clock.
  clock = new SimClock();
  clock.advance(1_700_000_000_000);
  seen = [];
  electors = [];
  pending = 0;
});

afterEach(async () => {
  for (const e of electors) await e.stop().catch(() => undefined);
  await api.stop();
});

test('the first candidate takes the free Lease; the second stands by for as long as the leader renews', async () => {
  const start = clock.now();
  const a = candidate('a');
  a.elector.start();
  await settle();
  expect(a.elector.leading).toBe(true);
  const b = candidate('b');
  b.elector.start();
  await pass(60_000);
  expect(b.elector.leading).toBe(false);
  expect(a.elector.leading).toBe(true);
  expect(seen).toEqual([`${start} a leads`]);
  const lease = await api.client().call('GET', LEASE);
  expect(lease.spec).toMatchObject({holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0});
  // Renewed every 2 s: the last renewal at most one try ago.
  expect(clock.now() - Date.parse(lease.spec.renewTime)).toBeLessThanOrEqual(2000);
});

test('a leader gone without a word is replaced once 15 s have passed on the standby\'s clock since it last saw the Lease change, not before', async () => {
  const a = candidate('a');
  a.elector.start();
  await settle();
  const b = candidate('b');
  b.elector.start();
  await pass(10_000);
  // a's process is gone: it renews nothing and gives nothing up.
  a.client.sever();
  await a.elector.stop();
  const renewed = Date.parse((await api.client().call('GET', LEASE)).spec.renewTime);
  await pass(30_000);
  const took = seen.find((s) => s.endsWith(' b leads'));
  expect(took).toBeDefined();
  const at = Number(took!.split(' ')[0]);
  // b saw the last renewal at its next try after it (within 2 s), and waits the lease from then: 15 to 17 s, and a try more.
  expect(at - renewed).toBeGreaterThanOrEqual(15_000);
  expect(at - renewed).toBeLessThanOrEqual(15_000 + 2 * 2000);
  expect(await holder()).toBe('b');
  expect((await api.client().call('GET', LEASE)).spec.leaseTransitions).toBe(1);
});

test('a leader that cannot reach the API server stops leading at its renew deadline, and leads again once it can', async () => {
  const a = candidate('a');
  a.elector.start();
  await settle();
  await pass(4000);
  const renewed = Date.parse((await api.client().call('GET', LEASE)).spec.renewTime);
  await api.away();
  await pass(14_000);
  const stopped = seen.find((s) => s.includes(' a stops: '));
  expect(stopped).toMatch(/a stops: could not renew lease default\/scheduler within 10000 ms$/);
  const at = Number(stopped!.split(' ')[0]);
  expect(at - renewed).toBeGreaterThan(10_000);
  expect(at - renewed).toBeLessThanOrEqual(10_000 + 2000);
  await api.back();
  await pass(4000);
  expect(a.elector.leading).toBe(true);
  expect(await holder()).toBe('a');
});

test('a leader that cannot do the work gives the Lease up at once: the standby takes it at its next try, not a lease later', async () => {
  let able = true;
  const a = candidate('a', () => able);
  a.elector.start();
  await settle();
  const b = candidate('b');
  b.elector.start();
  await pass(6000);
  const from = clock.now();
  able = false;
  await pass(6000);
  const gave = seen.find((s) => s.includes(' a stops: '));
  expect(gave).toMatch(/this process cannot do the leader's work/);
  const took = seen.find((s) => s.endsWith(' b leads'));
  expect(took).toBeDefined();
  // One try of a's to see it, one of b's to take it.
  expect(Number(took!.split(' ')[0]) - from).toBeLessThanOrEqual(2 * 2000);
  expect(await holder()).toBe('b');
  // a does not stand again while it cannot do the work.
  await pass(30_000);
  expect(a.elector.leading).toBe(false);
  expect(await holder()).toBe('b');
});
