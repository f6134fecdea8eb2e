/**
 * Failover without the API server, the pure parts: each claim's standbys,
 * who takes a claim over when the group finds its holder dead, how the
 * scheduler records a takeover, the membership's keys file, and the flags.
 */
import {describe, expect, test} from '@jest/globals';
import {type ClaimView, Liveness, decide, standbysFor, takenOver, takesOver, vouched} from '../../agent/claims.js';
import {Peers, parsePeerKeys, peerAddress} from '../../agent/peers.js';
import {randomBytes} from 'node:crypto';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {FlagError, parseAgentFlags} from '../../lib/agent-flags.js';

const nodes = ['node1', 'node2', 'node3', 'node4', 'node5'];

describe('standbys', () => {
  test('the live nodes but the holder, the same order on every call, two of them', () => {
    const s = standbysFor('10-0-0-1-32', 'node1', nodes);
    expect(s).toHaveLength(2);
    expect(s).not.toContain('node1');
    expect(standbysFor('10-0-0-1-32', 'node1', [...nodes].reverse())).toEqual(s);
  });

  test('a lost node\'s claims spread over the others: each first standby is some other node, not one for all', () => {
    const firsts = new Set(Array.from({length: 40}, (_, i) => standbysFor(`10-0-0-${i}-32`, 'node1', nodes)[0]));
    expect(firsts.size).toBe(4);
  });

  test('a node that leaves changes only the lists it was in', () => {
    let changed = 0;
    for (let i = 0; i < 200; i++) {
      const before = standbysFor(`c${i}`, 'node1', nodes);
      const after = standbysFor(`c${i}`, 'node1', nodes.filter((n) => n !== 'node5'));
      if (!before.includes('node5')) expect(after).toEqual(before);
      else changed++;
    }
    // node5 is in about half of the two-of-four lists.
    expect(changed).toBeGreaterThan(60);
    expect(changed).toBeLessThan(140);
  });

  test('one node: none; two: the other', () => {
    expect(standbysFor('c', 'node1', ['node1'])).toEqual([]);
    expect(standbysFor('c', 'node1', ['node1', 'node2'])).toEqual(['node2']);
  });
});

describe('takeover', () => {
  const view = (states: Record<string, string>) => (n: string) => states[n];

  test.each([
    ['the holder dead, this node the first standby', {node1: 'dead', node2: 'alive', node3: 'alive'}, 'node2', true],
    ['the holder dead, this node the second, the first alive', {node1: 'dead', node2: 'alive', node3: 'alive'}, 'node3', false],
    ['the holder dead, the first standby dead too: the second takes it', {node1: 'dead', node2: 'dead', node3: 'alive'}, 'node3', true],
    ['the first standby only suspect: it may refute and take it, so the second waits', {node1: 'dead', node2: 'suspect', node3: 'alive'}, 'node3', false],
    ['the first standby unknown to the group: passed over', {node1: 'dead', node3: 'alive'}, 'node3', true],
    ['the holder only suspect: nobody takes it yet', {node1: 'suspect', node2: 'alive', node3: 'alive'}, 'node2', false],
    ['the holder alive', {node1: 'alive', node2: 'alive'}, 'node2', false],
    ['the holder unknown (its IpNode was deleted: the scheduler moves it)', {node2: 'alive'}, 'node2', false],
    ['not a standby at all', {node1: 'dead', node2: 'alive', node3: 'alive', node4: 'alive'}, 'node4', false],
  ])('%s', (_, states, self, expected) => {
    expect(takesOver(self, 'node1', ['node2', 'node3'], view(states as Record<string, string>))).toBe(expected);
  });

  test('the holder never takes its own claim over', () => {
    expect(takesOver('node1', 'node1', ['node1'], () => 'dead')).toBe(false);
  });
});

describe('the scheduler after a takeover', () => {
  const claim = (over: Partial<ClaimView>): ClaimView => ({name: '10-0-0-1-32', cidr: '10.0.0.1/32', node: 'node1', ...over});

  test('a claim taken over by a live standby is assigned there, as already up', () => {
    const moves = takenOver([claim({takenBy: 'node3'})], ['node2', 'node3']);
    expect(moves).toEqual([expect.objectContaining({from: 'node1', to: 'node3', alreadyUp: true, reason: 'node3 took it over: node1 stopped answering its peers'})]);
    // Not when the taker is not live itself, nor when it is the holder already.
    expect(takenOver([claim({takenBy: 'node3'})], ['node2'])).toEqual([]);
    expect(takenOver([claim({node: 'node3', takenBy: 'node3'})], ['node3'])).toEqual([]);
  });

  test('a lost node\'s claim goes to its first live standby, where the controllers brought it up, not to the emptiest node', () => {
    const claims = [claim({standbys: ['node3', 'node2']}), {name: 'b', cidr: '10.0.0.2/32', node: 'node3'}, {name: 'c', cidr: '10.0.0.3/32', node: 'node3'}];
    const d = decide(new Set(claims.map((c) => c.cidr)), claims, ['node2', 'node3'], 'fair');
    expect(d.move.find((m) => m.name === '10-0-0-1-32')).toMatchObject({from: 'node1', to: 'node3'});
  });

  test('a first standby that is not live either: the next', () => {
    const d = decide(new Set(['10.0.0.1/32']), [claim({standbys: ['node3', 'node2']})], ['node2'], 'fair');
    expect(d.move).toEqual([expect.objectContaining({to: 'node2'})]);
  });
});

describe('the membership keys file', () => {
  const key = (c: string) => Buffer.alloc(32, c).toString('base64');
  const now = Date.parse('2026-12-02T12:00:00Z');

  test('one key: it signs', () => {
    const k = parsePeerKeys(JSON.stringify([{key: key('a'), from: '2026-01-01T00:00:00Z'}]), now);
    expect(k).toEqual({keys: [Buffer.alloc(32, 'a')], nextAt: undefined});
  });

  test('a rotation: the new key is taken at once, signs only from its time on; the old one signs until then', () => {
    const text = JSON.stringify([{key: key('n'), from: '2026-12-02T12:03:00Z'}, {key: key('o'), from: '2026-01-01T00:00:00Z'}]);
    expect(parsePeerKeys(text, now)).toEqual({keys: [Buffer.alloc(32, 'o'), Buffer.alloc(32, 'n')], nextAt: Date.parse('2026-12-02T12:03:00Z')});
    expect(parsePeerKeys(text, Date.parse('2026-12-02T12:03:00Z'))).toEqual({keys: [Buffer.alloc(32, 'n'), Buffer.alloc(32, 'o')], nextAt: undefined});
  });

  test.each([
    ['', 'not JSON'],
    ['{}', 'not a list of keys'],
    ['[]', 'not a list of keys'],
    [JSON.stringify([{key: Buffer.alloc(16).toString('base64'), from: '2026-01-01T00:00:00Z'}]), 'key 1 is not base64 of 32 bytes or more'],
    [JSON.stringify([{key: Buffer.alloc(32).toString('base64')}]), 'key 1 has no "from" time (RFC 3339)'],
  ])('%j is refused: %s', (text, why) => {
    expect(parsePeerKeys(text, now)).toBe(why);
  });

  test('addresses: IPv6 in brackets', () => {
    expect(peerAddress('10.0.0.1', 10295)).toBe('10.0.0.1:10295');
    expect(peerAddress('fd00::1', 10295)).toBe('[fd00::1]:10295');
  });
});

test('the membership flags: off by default; a port needs the node\'s address; UDP, so the health port\'s number is fine', () => {
  expect(parseAgentFlags([])).toMatchObject({peerPort: 0, peerAddress: undefined, peerKeys: '/etc/extip/peers/keys.json'});
  expect(parseAgentFlags(['--peer-port=10295', '--peer-address=10.0.0.1'])).toMatchObject({peerPort: 10295, peerAddress: '10.0.0.1'});
  expect(() => parseAgentFlags(['--peer-port=10295'])).toThrow(new FlagError('--peer-port needs --peer-address, the node\'s IP address the other controllers reach (in a pod: --peer-address=$(NODE_IP) from status.hostIP)'));
  expect(() => parseAgentFlags(['--peer-port=70000', '--peer-address=10.0.0.1'])).toThrow(FlagError);
  expect(() => parseAgentFlags(['--peer-port=1', '--peer-address=node1'])).toThrow(/invalid --peer-address/);
  expect(parseAgentFlags(['--peer-port=10295', '--peer-address=10.0.0.1', '--health-port=10295'])).toMatchObject({peerPort: 10295, healthPort: 10295});
});

describe('peers over UDP on loopback', () => {
  const quiet = {info: () => undefined, warn: () => undefined} as unknown as ConstructorParameters<typeof Peers>[0]['log'];

  async function keysFile(dir: string, name: string, keys: Array<{key: string; from: string}>): Promise<string> {
    const file = join(dir, name);
    await writeFile(file, JSON.stringify(keys));
    return file;
  }

  test('two members find each other alive, and one that stops dead within 2 s; one without the key is never taken in', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'extip-peers-'));
    const key = {key: randomBytes(32).toString('base64'), from: '2020-01-01T00:00:00Z'};
    const good = await keysFile(dir, 'good.json', [key]);
    const bad = await keysFile(dir, 'bad.json', [{key: randomBytes(32).toString('base64'), from: '2020-01-01T00:00:00Z'}]);
    const changes: string[] = [];
    const make = (name: string, port: number, keysFile: string) => new Peers({name, ip: '127.0.0.1', port, keysFile, log: quiet, onChange: (n, s) => changes.push(`${name}: ${n} ${s}`)});
    const ports = [38000 + Math.floor(Math.random() * 2000) * 3];
    ports.push(ports[0] + 1, ports[0] + 2);
    const a = make('a', ports[0], good);
    const b = make('b', ports[1], good);
    const intruder = make('x', ports[2], bad);
    try {
      await Promise.all([a.start(), b.start(), intruder.start()]);
      a.setMembers([{name: 'b', address: peerAddress('127.0.0.1', ports[1])}]);
      b.setMembers([{name: 'a', address: peerAddress('127.0.0.1', ports[0])}]);
      // The intruder knows both and probes them; it is never answered nor taken in.
      intruder.setMembers([{name: 'a', address: peerAddress('127.0.0.1', ports[0])}, {name: 'b', address: peerAddress('127.0.0.1', ports[1])}]);
      await new Promise((r) => setTimeout(r, 1500));
      expect(a.view()).toEqual([expect.objectContaining({name: 'a', state: 'alive'}), expect.objectContaining({name: 'b', state: 'alive'})]);
      expect(a.isolated(1000)).toBe(false);
      expect(intruder.isolated(1000)).toBe(true);
      expect(changes.filter((c) => c.startsWith('a:') || c.startsWith('b:'))).toEqual([]);
      const stopped = Date.now();
      b.stop();
      while (a.state('b') !== 'dead' && Date.now() - stopped < 3000) await new Promise((r) => setTimeout(r, 20));
      expect(a.state('b')).toBe('dead');
      expect(Date.now() - stopped).toBeLessThan(2000);
      // Alone now: nothing heard for a second makes it isolated.
      await new Promise((r) => setTimeout(r, 1100));
      expect(a.isolated(1000)).toBe(true);
    } finally {
      for (const p of [a, b, intruder]) p.stop();
      await rm(dir, {recursive: true, force: true});
    }
  });

  test('a keys file that cannot be read stops the start, saying which', async () => {
    const p = new Peers({name: 'a', ip: '127.0.0.1', port: 0, keysFile: '/nonexistent/keys.json', log: quiet, onChange: () => undefined});
    await expect(p.start()).rejects.toThrow('the peer keys in /nonexistent/keys.json: unreadable (ENOENT)');
  });
});

test('a node its live peers hear is live, though its heartbeats do not reach the API; only live nodes vouch, only for known nodes', () => {
  const hears = new Map([['node1', ['node2', 'node3']], ['node4', ['node5']], ['node2', ['gone']]]);
  const known = new Set(['node1', 'node2', 'node3', 'node4', 'node5']);
  expect(vouched(['node1', 'node2'], hears, known)).toEqual(['node1', 'node2', 'node3']);
  expect(vouched([], hears, known)).toEqual([]);
});

test('the scheduler\'s standbys are a prefix of the claim\'s order over every node: a controller reading the order from its members agrees with the annotation', () => {
  const all = ['node1', 'node2', 'node3', 'node4', 'node5', 'node6'];
  for (let i = 0; i < 100; i++) {
    const claim = `10-0-${i}-1-32`;
    const everyone = standbysFor(claim, 'node1', all, all.length);
    for (const live of [all, all.filter((n) => n !== 'node4'), ['node1', 'node2', 'node6']]) {
      const written = standbysFor(claim, 'node1', live);
      expect(everyone.filter((n) => live.includes(n)).slice(0, written.length)).toEqual(written);
    }
  }
});

test('after a reset a node is live on credit but given no claims until its heartbeat is seen again', () => {
  const l = new Liveness(1500);
  l.observe('node1', 1, 0);
  l.observe('node2', 1, 0);
  l.reset(10_000);
  expect(l.live(10_100)).toEqual(['node1', 'node2']);
  expect(l.heard(10_100)).toEqual([]);
  l.observe('node1', 2, 10_200);
  expect(l.heard(10_300)).toEqual(['node1']);
  // node2 holds two claims and is live on credit: they stay; a new address and rebalancing go to node1 alone.
  const claims: ClaimView[] = [{name: 'a', cidr: '10.0.0.1/32', node: 'node2'}, {name: 'b', cidr: '10.0.0.2/32', node: 'node2'}];
  const d = decide(new Set(['10.0.0.1/32', '10.0.0.2/32', '10.0.0.3/32', '10.0.0.4/32']), claims, l.live(10_300), 'fair', undefined, new Set(l.heard(10_300)));
  expect(d.create.map((c) => c.node)).toEqual(['node1', 'node1']);
  expect(d.move).toEqual([]);
  // Nobody heard yet: new addresses wait.
  const none = decide(new Set(['10.0.0.9/32']), [], ['node1'], 'fair', undefined, new Set());
  expect(none.waiting).toEqual(['10.0.0.9/32']);
});
