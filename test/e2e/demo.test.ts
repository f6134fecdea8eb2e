/** The README's demo command runs to the end and shows what it promises. */
import {expect, test} from '@jest/globals';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from '../helpers/ansible.js';

test('the demo brings up a lab, installs the ECMP setup, shows it, and tears down', async () => {
  // test/run.sh builds dist/ (npm run build:all) before jest runs.
  const r = await execa(process.execPath, [join(repoRoot, 'dist/test/lab/demo.js')], {reject: false, env: {NO_COLOR: '1'}});
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/^node1\s+Ready\s.*\strue$/m);
  expect(r.stdout).toContain('command: ipmanager naivecontroller --iface=lo --mask=32');
  expect(r.stdout).toMatch(/nginx\s+ClusterIP\s+\S+\s+10\.0\.0\.7,10\.0\.0\.8/);
  expect(r.stdout).toMatch(/node2: 127\.0\.0\.1\/8, 10\.0\.0\.\d\/32, 10\.0\.0\.\d\/32/);
  expect(r.stdout).toMatch(/10\.0\.0\.7 proto bird[^]*nexthop via 10\.210\.1\.11[^]*nexthop via 10\.210\.1\.12[^]*nexthop via 10\.210\.1\.13/);
  expect(r.stdout).toContain('/calico/bgp/v1/global/custom_filters/v4/lo_iface:\n    if ( ifname = "lo" ) then {');
  expect(r.stdout).toContain('/calico/bgp/v1/global/custom_filters/v4/lo_iface: (none)');
  expect(r.stdout).toContain("the router's route to 10.0.0.7: (none)");
  expect(r.stdout).toContain('Tearing the lab down');
  expect(r.stderr).toContain('Install finished');
  expect(r.stderr).toContain('Uninstall finished');
}, 300_000);
