/** Whether a setup leaves claims mode a node to fail over to: the shared case table, which the role's filter runs too. */
import {expect, test} from '@jest/globals';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {type ControllerSetup, controllerCount, failoverErrors} from '../../lib/failover.js';
import {repoRoot} from '../helpers/ansible.js';

const table = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/failover-cases.json'), 'utf8')) as Array<ControllerSetup & {errors: string[]}>;

test.each(table.map((c) => [`${c.kind} x${c.replicas} over ${c.labelled} (claims ${c.claims}, allowed ${c.allowNoFailover})`, c]))('%s', (_label, c) => {
  const {errors, ...setup} = c as ControllerSetup & {errors: string[]};
  expect(failoverErrors(setup)).toEqual(errors);
});

test('a Deployment runs one controller a labelled node at most', () => {
  expect(controllerCount({kind: 'Deployment', replicas: 5, labelled: 3})).toBe(3);
  expect(controllerCount({kind: 'DaemonSet', replicas: 1, labelled: 4})).toBe(4);
});
