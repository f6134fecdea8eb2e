/** cli/nodes.ts against the table the role's extip_node_names filter runs too. */
import {expect, test} from '@jest/globals';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {nodeNames} from '../../cli/nodes.js';
import {repoRoot} from '../helpers/root.js';

const table = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/node-name-cases.json'), 'utf8'));

test.each(table.cases.map((c: any) => [c.label, c]))('%s', (_label, c: any) => {
  expect(nodeNames(Object.keys(c.hostvars), c.hostvars, table.nodes, c.lookup)).toEqual(c.want);
});
