/**
 * The agent's list and watch (agent/listwatch.ts, agent/api.ts) against a
 * small HTTP server that answers as the API server does: lists in pages
 * with continue tokens (and 410 for a token it no longer knows), watches as
 * a stream of JSON lines. What a real API server makes of the same requests
 * is test/e2e/listwatch-lab.test.ts's.
 */
import {afterEach, expect, test} from '@jest/globals';
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';
import {ApiClient} from '../../agent/api.js';
import {Backoff} from '../../agent/backoff.js';
import {ListWatch} from '../../agent/listwatch.js';

const services = (names: string[]) => names.map((name) => ({metadata: {name, namespace: 'default', resourceVersion: '100'}}));

interface Fake {
  api: ApiClient;
  /** Each request's query, in order (watch requests as `watch rv=…`). */
  requests: string[];
  server: Server;
}

const servers: Server[] = [];
const watches: ListWatch[] = [];
afterEach(async () => {
  for (const w of watches.splice(0)) w.stop();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A server listing `items` in pages; `onWatch` answers each watch request. */
async function fake(items: unknown[], onWatch: (res: ServerResponse, n: number) => void, opts: {expireOnce?: string} = {}): Promise<Fake> {
  const requests: string[] = [];
  let watchCount = 0;
  let expired = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    if (q.get('watch')) {
      requests.push(`watch rv=${q.get('resourceVersion')}`);
      onWatch(res, ++watchCount);
      return;
    }
    const limit = Number(q.get('limit') ?? items.length);
    const from = Number(q.get('continue') ?? 0);
    requests.push(`list limit=${q.get('limit')}${q.get('continue') ? ` continue=${from}` : ''}`);
    res.setHeader('content-type', 'application/json');
    if (opts.expireOnce && q.get('continue') === opts.expireOnce && !expired) {
      expired = true;
      res.statusCode = 410;
      res.end(JSON.stringify({kind: 'Status', code: 410, reason: 'Expired', message: 'The provided continue parameter is too old'}));
      return;
    }
    const next = from + limit < items.length ? String(from + limit) : '';
    res.end(JSON.stringify({kind: 'List', metadata: {resourceVersion: '100', ...(next ? {continue: next} : {})}, items: items.slice(from, from + limit)}));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const {port} = server.address() as AddressInfo;
  return {api: new ApiClient({server: `http://127.0.0.1:${port}`, insecure: false, token: () => undefined}), requests, server};
}

function start(f: Fake, tune: (w: ListWatch) => void = () => {}): {w: ListWatch; errors: string[]} {
  const errors: string[] = [];
  const w = new ListWatch(f.api, '/api/v1/services', 'Services', {onChange: () => {}, onError: (_what, err) => errors.push((err as Error).message)});
  tune(w);
  watches.push(w);
  void w.run();
  return {w, errors};
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a list comes in pages of pageSize; the watch starts from the list\'s version and its events reach the cache', async () => {
  const f = await fake(services(['a', 'b', 'c', 'd', 'e', 'f', 'g']), (res) => {
    res.write(`${JSON.stringify({type: 'ADDED', object: {metadata: {name: 'h', namespace: 'default', resourceVersion: '101'}}})}\n`);
  });
  const {w} = start(f, (x) => (x.pageSize = 3));
  await until('the watch event', () => w.list().length === 8);
  expect(f.requests).toEqual(['list limit=3', 'list limit=3 continue=3', 'list limit=3 continue=6', 'watch rv=100']);
  expect(w.synced).toBe(true);
  expect(w.get('default/g')?.metadata.name).toBe('g');
});

test('a continue token the server no longer knows (410) starts the list over, with nothing of the first try kept', async () => {
  const f = await fake(services(['a', 'b', 'c', 'd', 'e']), () => {}, {expireOnce: '2'});
  const {w, errors} = start(f, (x) => (x.pageSize = 2));
  await until('synced', () => w.synced);
  expect(f.requests.slice(0, 5)).toEqual(['list limit=2', 'list limit=2 continue=2', 'list limit=2', 'list limit=2 continue=2', 'list limit=2 continue=4']);
  expect(w.list().map((o) => o.metadata.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
  expect(errors).toEqual([]);
});

test('a watch that answers and then goes silent (a quiet resource, or a half-open connection) is replaced after idleMs from the same version, quietly', async () => {
  const f = await fake(services(['a']), (res, n) => {
    if (n === 1) res.writeHead(200, {'content-type': 'application/json'}).flushHeaders(); // then nothing, ever
    else res.write(`${JSON.stringify({type: 'ADDED', object: {metadata: {name: 'b', namespace: 'default', resourceVersion: '102'}}})}\n`);
  });
  const {w, errors} = start(f, (x) => (x.idleMs = 300));
  await until('the first watch open', () => w.connected);
  // Connected throughout: readiness and the scheduler's liveness read it, and nothing was missed.
  const samples: boolean[] = [];
  const sampler = setInterval(() => samples.push(w.connected), 2);
  await until('the second watch\'s event', () => w.list().length === 2, 8000);
  clearInterval(sampler);
  expect(samples.length).toBeGreaterThan(50);
  expect(samples.filter((c) => !c)).toEqual([]);
  expect(errors).toEqual([]);
  expect(f.requests.filter((r) => r.startsWith('watch'))).toEqual(['watch rv=100', 'watch rv=100']);
});

test('a watch request that gets no answer within idleMs is a failure, reported and retried', async () => {
  const f = await fake(services(['a']), (res, n) => {
    if (n > 1) res.writeHead(200).flushHeaders();
  });
  const {w, errors} = start(f, (x) => (x.idleMs = 300));
  await until('a second watch', () => f.requests.filter((r) => r.startsWith('watch')).length === 2, 8000);
  expect(errors[0]).toMatch(/no answer to the watch within 0.3 s/);
  await until('the second watch open', () => w.connected);
});

test('bookmarks keep a watch alive; its client-side deadline ends it a little after the timeoutSeconds it asked for', async () => {
  const timers: NodeJS.Timeout[] = [];
  const f = await fake(services(['a']), (res) => {
    res.writeHead(200).flushHeaders();
    timers.push(setInterval(() => res.write(`${JSON.stringify({type: 'BOOKMARK', object: {metadata: {resourceVersion: '105'}}})}\n`), 50));
  });
  try {
    const opened = Date.now();
    const {errors} = start(f, (x) => {
      x.idleMs = 300;
      x.watchSeconds = () => 1;
    });
    await until('a second watch', () => f.requests.filter((r) => r.startsWith('watch')).length === 2, 8000);
    // 1 s asked for: the deadline is 1.1 s + 1 s; the bookmarks (every 50 ms) kept the 300 ms idle limit from firing.
    expect(Date.now() - opened).toBeGreaterThanOrEqual(2000);
    expect(errors).toEqual([expect.stringMatching(/outlived its deadline of 2.1 s/)]);
    expect(f.requests.filter((r) => r.startsWith('watch'))).toEqual(['watch rv=100', 'watch rv=105']);
  } finally {
    for (const t of timers) clearInterval(t);
  }
});

test('once any request of the client gets an answer again (a heartbeat), a list waiting out a long back-off starts at once', async () => {
  let down = true;
  const f = await fake(services(['a']), (res) => res.writeHead(200).flushHeaders());
  f.server.removeAllListeners('request');
  const lists: number[] = [];
  f.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (down) return req.socket.destroy(); // as a node cut off sees it: no answer
    if (req.url!.startsWith('/healthz')) return res.end('ok');
    if (new URL(req.url!, 'http://x').searchParams.get('watch')) return res.writeHead(200).flushHeaders();
    lists.push(Date.now());
    res.end(JSON.stringify({kind: 'List', metadata: {resourceVersion: '100'}, items: services(['a'])}));
  });
  const {w, errors} = start(f, (x) => (x.backoff = new Backoff(20000, 30000)));
  await until('the first list failed', () => errors.length === 1);
  down = false;
  const beat = Date.now();
  expect((await f.api.request('GET', '/healthz')).status).toBe(200);
  await until('synced', () => w.synced, 3000);
  // The back-off had 10 to 20 s to go.
  expect(lists[0] - beat).toBeLessThan(1000);
});
