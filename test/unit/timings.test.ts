/**
 * One verdict for a duration and for claims mode's timings, whoever checks
 * them: the CLI's validation, the agent's flags and lib/timings.ts run the
 * shared tables here; the role's filter runs them in its pytest tests.
 */
import {expect, test} from '@jest/globals';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {parseAgentFlags, parseDuration} from '../../lib/agent-flags.js';
import {durationMs, timingErrors} from '../../lib/timings.js';
import {findProblems, variablesByName} from '../../cli/validate.js';
import {repoRoot} from '../helpers/ansible.js';

const read = <T>(name: string) => JSON.parse(readFileSync(join(repoRoot, 'test/fixtures', name), 'utf8')) as T;
const durations = read<Array<{text: string; ms: number | null}>>('duration-cases.json');
const timings = read<Array<{hb: string; monitor: string; lease: string; errors: string[]}>>('timing-cases.json');

test.each(durations.map((c) => [JSON.stringify(c.text), c]))('duration %s: the same in lib/timings, the CLI\'s rule and the agent', (_label, c) => {
  const {text, ms} = c as {text: string; ms: number | null};
  const got = durationMs(text);
  expect(got === undefined ? null : Number(got.toFixed(6))).toBe(ms);
  expect(variablesByName.get('extip_ctrl_hb')!.rule.check(text, {ipFamily: 'ipv4'}) === undefined).toBe(ms !== null);
  if (ms === null) expect(() => parseDuration(text)).toThrow(/invalid duration/);
  else expect(parseDuration(text)).toBeCloseTo(ms, 6);
});

test.each(timings.map((c) => [`hb ${c.hb}, monitor ${c.monitor}, lease ${c.lease}`, c]))('timings %s: the same in lib/timings, the CLI and the agent', (_label, c) => {
  const {hb, monitor, lease, errors} = c as (typeof timings)[number];
  expect(timingErrors(hb, monitor, lease)).toEqual(errors);
  const valid = [hb, monitor, lease].every((d) => durationMs(d) !== undefined);
  // The CLI: exit 2 before anything runs, naming the variables (a value that is not a duration fails its own rule).
  const cli = findProblems({extip_distribution: 'balance', extip_ctrl_hb: hb, extip_sched_monitor: monitor, extip_sched_lease_duration: lease});
  if (valid) expect(cli.map((p) => p.rule)).toEqual(errors);
  else expect(cli.map((p) => p.name)).toEqual(['extip_ctrl_hb']);
  // The agent: the flags the role renders refuse what the CLI and the role refuse.
  const controller = () => parseAgentFlags([`--hb=${hb}`, `--monitor=${monitor}`]);
  const scheduler = () => parseAgentFlags([`--monitor=${monitor}`, `--leader-elect-lease-duration=${lease}`]);
  const refused = !valid || errors.length > 0;
  let agentRefused = false;
  for (const parse of [controller, scheduler]) {
    try {
      parse();
    } catch {
      agentRefused = true;
    }
  }
  expect(agentRefused).toBe(refused);
});

test('naive mode does not check claims mode\'s timings', () => {
  expect(findProblems({extip_distribution: 'all', extip_ctrl_hb: '2s', extip_sched_monitor: '1500ms'})).toEqual([]);
});
