/**
 * ipmanager's side of BIRD's control protocol (agent/bird.ts), against a
 * socket that answers as BIRD 2.0.12 does (its replies as birdc showed them).
 */
import {afterAll, expect, test} from '@jest/globals';
import {mkdtemp, rm} from 'node:fs/promises';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {BirdError, birdCommand, parseBfdSessions, parseProtocols, parseReplies} from '../../agent/bird.js';

const PROTOCOLS = [
  '2002-Name       Proto      Table      State  Since         Info',
  '1002-device1    Device     ---        up     11:59:44.273  ',
  ' extip_bfd  BFD        ---        up     11:59:44.273  ',
  ' extip_exports Static     master4    up     11:59:44.273  ',
  ' peer_10_210_1_1 BGP        ---        up     11:59:46.001  Established   ',
  ' peer_10_211_2_1 BGP        ---        start  11:59:44.273  Active        Socket: Connection refused',
  '0000 ',
].join('\n');

test('replies split into lines by their codes, continuation lines kept', () => {
  const [greeting, reply] = parseReplies(`0001 BIRD 2.0.12 ready.\n${PROTOCOLS}\n`);
  expect(greeting).toEqual({code: 1, lines: ['BIRD 2.0.12 ready.']});
  expect(reply.code).toBe(0);
  const protocols = parseProtocols(reply.lines);
  expect(protocols.map((p) => [p.name, p.state, p.info])).toEqual([
    ['device1', 'up', ''],
    ['extip_bfd', 'up', ''],
    ['extip_exports', 'up', ''],
    ['peer_10_210_1_1', 'up', 'Established'],
    ['peer_10_211_2_1', 'start', 'Active Socket: Connection refused'],
  ]);
});

test('BFD sessions: the peers whose session is Up', () => {
  const lines = ['extip_bfd:', 'IP address                Interface  State      Since         Interval  Timeout', '10.210.1.1                eth0       Up         12:00:01.000    0.100    0.300', '10.211.2.1                eth0       Down       12:00:01.000    1.000    0.000'];
  expect(parseBfdSessions(lines)).toEqual({up: ['10.210.1.1'], all: ['10.210.1.1', '10.211.2.1']});
});

const dir = await mkdtemp(join(tmpdir(), 'extip-birdc-'));
afterAll(async () => rm(dir, {recursive: true, force: true}));

/** A socket that greets as BIRD does and answers each command from `answers`. */
async function fakeBird(answers: Record<string, string>): Promise<{socket: string; asked: string[]; close(): void}> {
  const socket = join(dir, `bird-${Math.random().toString(36).slice(2)}.ctl`);
  const asked: string[] = [];
  const server = createServer((conn) => {
    conn.write('0001 BIRD 2.0.12 ready.\n');
    conn.on('data', (d) => {
      const command = d.toString().trim();
      asked.push(command);
      // In two writes: a reply split across packets must still be read whole.
      const reply = answers[command] ?? '9001 syntax error\n';
      conn.write(reply.slice(0, 5));
      setTimeout(() => conn.write(reply.slice(5)), 5);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {socket, asked, close: () => server.close()};
}

test('a command gets its whole reply; an error code rejects with BIRD\'s words; no BIRD rejects saying so', async () => {
  const bird = await fakeBird({
    'show protocols': `${PROTOCOLS}\n`,
    'configure "/run/extip-bgp/bird.conf"': '0002-Reading configuration from /run/extip-bgp/bird.conf\n0003 Reconfigured\n',
    'configure "/bad"': '8002 /bad:3:1 syntax error, unexpected CF_SYM_UNDEFINED\n',
  });
  try {
    expect(parseProtocols((await birdCommand(bird.socket, 'show protocols')).lines)).toHaveLength(5);
    expect(await birdCommand(bird.socket, 'configure "/run/extip-bgp/bird.conf"')).toEqual({code: 3, lines: ['Reading configuration from /run/extip-bgp/bird.conf', 'Reconfigured']});
    await expect(birdCommand(bird.socket, 'configure "/bad"')).rejects.toThrow('BIRD refused "configure "/bad"": /bad:3:1 syntax error');
    expect(bird.asked).toEqual(['show protocols', 'configure "/run/extip-bgp/bird.conf"', 'configure "/bad"']);
  } finally {
    bird.close();
  }
  await expect(birdCommand(join(dir, 'none.ctl'), 'show status')).rejects.toThrow(BirdError);
  await expect(birdCommand(join(dir, 'none.ctl'), 'show status')).rejects.toThrow(/control socket .*none\.ctl: ENOENT/);
});
