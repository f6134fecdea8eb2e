/** The install ledger's schema, read by extip status (lib/schema.ts) as the role reads it (its pytest tests run the same table). */
import {expect, test} from '@jest/globals';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {readLedger} from '../../cli/kube.js';
import {type Schema, schemaProblems} from '../../lib/schema.js';
import {repoRoot} from '../helpers/ansible.js';

const schema = JSON.parse(readFileSync(join(repoRoot, 'roles/externalip/files/ledger.schema.json'), 'utf8')) as Schema;
const cases = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/ledger-cases.json'), 'utf8')) as Array<{ledger: unknown; problems: string[]}>;

test.each(cases.map((c) => [JSON.stringify(c.ledger).slice(0, 80), c]))('%s', (_label, c) => {
  const {ledger, problems} = c as (typeof cases)[number];
  expect(schemaProblems(ledger, schema)).toEqual(problems);
  // status trusts only a ledger without problems.
  const read = readLedger(JSON.stringify(ledger));
  expect(read.problems).toEqual(problems);
  expect(read.ledger === undefined).toBe(problems.length > 0);
});

test('a ledger that is not JSON is damaged; none at all is no problem', () => {
  expect(readLedger('{').problems[0]).toMatch(/^ledger\.json is not JSON/);
  expect(readLedger(undefined)).toEqual({problems: []});
});
