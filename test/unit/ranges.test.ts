/** The declared ranges against the cluster's own: doctor (lib/ranges.ts) and the role's preflight give the same words (the role's pytest tests run this table too). */
import {expect, test} from '@jest/globals';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {rangeErrors} from '../../lib/ranges.js';
import {nodeAddresses} from '../../lib/policy.js';
import {repoRoot} from '../helpers/ansible.js';

const cases = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/range-cases.json'), 'utf8')) as Array<{externalCidrs: unknown[]; pools: unknown[]; serviceCidr: string; podCidr: string; nodes: never[]; errors: string[]}>;

test.each(cases.map((c) => [JSON.stringify([c.externalCidrs, c.pools]), c]))('%s', (_label, c) => {
  const {externalCidrs, pools, serviceCidr, podCidr, nodes, errors} = c as (typeof cases)[number];
  const byNode = [...nodeAddresses(nodes)].map(([name, addresses]) => ({name, addresses}));
  expect(rangeErrors(externalCidrs, pools, serviceCidr, podCidr, byNode)).toEqual(errors);
});
