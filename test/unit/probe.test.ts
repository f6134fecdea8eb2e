/**
 * How the ARP probe reads arping (agent/announce.ts), with arping's outputs
 * as a runner gives them: the real program, on a real segment, is in
 * test/e2e/announce.test.ts. The case that matters is the one a loaded host
 * makes: arping stopped at the wait before it sent its request must not
 * count as "nobody answers".
 */
import {expect, test} from '@jest/globals';
import {PROBE_RETRIES, type ProbeRunner, probeIPv4} from '../../agent/announce.js';
import type {RunResult} from '../../lib/run.js';

const SENT = 'ARPING 10.0.0.7 from 0.0.0.0 eth0\nSent 1 probes (1 broadcast(s))\nReceived 0 response(s)';
const REPLY = 'ARPING 10.0.0.7 from 0.0.0.0 eth0\nUnicast reply from 10.0.0.7 [5E:74:AF:99:59:6D]  0.521ms\nSent 1 probes (1 broadcast(s))\nReceived 1 response(s)';

/** A runner answering from a script of results, recording the waits it was given. */
function scripted(...results: RunResult[]): {runner: ProbeRunner; waits: number[]} {
  const waits: number[] = [];
  return {waits, runner: async (_args, timeoutMs) => (waits.push(timeoutMs), results[Math.min(waits.length - 1, results.length - 1)])};
}

test('stopped at the wait after sending its request, with no reply: free', async () => {
  const {runner, waits} = scripted({exitCode: -1, stdout: SENT, stderr: '', timedOut: true});
  expect(await probeIPv4('eth0', '10.0.0.7', 100, runner)).toEqual({taken: false});
  expect(waits).toEqual([100]);
});

test('a reply names the holder, whether arping ended on it or was stopped just after', async () => {
  expect(await probeIPv4('eth0', '10.0.0.7', 100, scripted({exitCode: 1, stdout: REPLY, stderr: ''}).runner)).toEqual({taken: true, by: '5e:74:af:99:59:6d'});
  expect(await probeIPv4('eth0', '10.0.0.7', 100, scripted({exitCode: -1, stdout: REPLY, stderr: '', timedOut: true}).runner)).toEqual({taken: true, by: '5e:74:af:99:59:6d'});
});

test('stopped before it sent anything: tried again with twice the wait, and free only once a request went out', async () => {
  const {runner, waits} = scripted({exitCode: -1, stdout: '', stderr: '', timedOut: true}, {exitCode: -1, stdout: SENT, stderr: '', timedOut: true});
  expect(await probeIPv4('eth0', '10.0.0.7', 100, runner)).toEqual({taken: false});
  expect(waits).toEqual([100, 200]);
});

test('never sent within the tries: unknown, never free', async () => {
  const {runner, waits} = scripted({exitCode: -1, stdout: 'ARPING 10.0.0.7 from 0.0.0.0 eth0\nSent 0 probes (0 broadcast(s))', stderr: '', timedOut: true});
  const probe = await probeIPv4('eth0', '10.0.0.7', 100, runner);
  expect(probe).toEqual({unknown: expect.stringContaining('sent no request')});
  expect(waits).toHaveLength(PROBE_RETRIES + 1);
});

test('arping that fails says why', async () => {
  const {runner} = scripted({exitCode: 2, stdout: '', stderr: 'arping: Device nosuch0 not available.'});
  expect(await probeIPv4('nosuch0', '10.0.0.7', 100, runner)).toEqual({unknown: 'arping: Device nosuch0 not available.'});
});
