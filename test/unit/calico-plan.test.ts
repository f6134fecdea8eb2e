/**
 * The role's Calico planning filters (roles/externalip/filter_plugins/extip_calico.py),
 * table-driven through real python3: what install and uninstall would change in
 * etcd and in the default BGPConfiguration, for the cases the lab runs do not reach.
 */
import {describe, expect, test} from '@jest/globals';
import {join} from 'node:path';
import {execa} from 'execa';
import {repoRoot} from '../helpers/ansible.js';

async function call(filter: string, ...args: unknown[]): Promise<any> {
  const script = `import json, sys
sys.path.insert(0, ${JSON.stringify(join(repoRoot, 'roles/externalip/filter_plugins'))})
import extip_calico as extip
args = json.load(sys.stdin)
print(json.dumps(getattr(extip, ${JSON.stringify(filter)})(*args)))`;
  const r = await execa('/usr/bin/python3', ['-c', script], {input: JSON.stringify(args)});
  return JSON.parse(r.stdout);
}

const K = '/calico/bgp/v1/global/custom_filters/v4/lo_iface';
const OTHER = '/calico/bgp/v1/global/custom_filters/v4/old_name';

describe('extip_etcd_plan', () => {
  test('a first install records the previous value (none) and the directory it makes, then writes', async () => {
    const p = await call('extip_etcd_plan', {}, {[K]: 'F'}, {[K]: null}, {[K]: '/calico/bgp/v1/global'});
    expect(p.ahead).toEqual({[K]: {previous: null, written: 'F', made_dir: '/calico/bgp/v1/global'}});
    expect(p.writes).toEqual({[K]: 'F'});
    expect(p.expect).toEqual({[K]: null});
    expect(p.soft).toEqual([]);
  });

  test('a re-install keeps the first previous value, and writes nothing when etcd already holds the text', async () => {
    const ledger = {[K]: {previous: 'OLD', written: 'F', made_dir: null}};
    const p = await call('extip_etcd_plan', ledger, {[K]: 'F'}, {[K]: 'F'}, {});
    expect(p.ahead).toEqual(ledger);
    expect(p.writes).toEqual({});
  });

  test('a new filter text replaces the old one but keeps what was there before extip', async () => {
    const p = await call('extip_etcd_plan', {[K]: {previous: 'OLD', written: 'F', made_dir: null}}, {[K]: 'G'}, {[K]: 'F'}, {});
    expect(p.after).toEqual({[K]: {previous: 'OLD', written: 'G', made_dir: null}});
    expect(p.writes).toEqual({[K]: 'G'});
    expect(p.expect).toEqual({[K]: 'F'});
  });

  test('a renamed filter restores the old key (soft), and uninstall (nothing wanted) restores all', async () => {
    const ledger = {[OTHER]: {previous: null, written: 'F', made_dir: '/calico/bgp/v1/global'}};
    const renamed = await call('extip_etcd_plan', ledger, {[K]: 'F'}, {[K]: null, [OTHER]: 'F'}, {[K]: null});
    expect(renamed.writes).toEqual({[K]: 'F', [OTHER]: null});
    expect(renamed.expect).toEqual({[K]: null, [OTHER]: 'F'});
    expect(renamed.soft).toEqual([OTHER]);
    expect(renamed.prune).toEqual({[OTHER]: '/calico/bgp/v1/global'});
    // The new key takes over the directory extip made for the old one.
    expect(renamed.after).toEqual({[K]: {previous: null, written: 'F', made_dir: '/calico/bgp/v1/global'}});

    const uninstall = await call('extip_etcd_plan', {[K]: {previous: 'OLD', written: 'F', made_dir: null}}, {}, {[K]: 'F'}, {});
    expect(uninstall.writes).toEqual({[K]: 'OLD'});
    expect(uninstall.expect).toEqual({[K]: 'F'});
    expect(uninstall.after).toEqual({});
    expect(uninstall.prune).toEqual({});
  });

  test('a key already back at its previous value needs nothing', async () => {
    const p = await call('extip_etcd_plan', {[K]: {previous: null, written: 'F', made_dir: null}}, {}, {[K]: null}, {});
    expect(p.writes).toEqual({});
    expect(p.after).toEqual({});
  });
});

describe('extip_bgp_plan', () => {
  const obj = (spec: Record<string, unknown> | undefined) => ({apiVersion: 'crd.projectcalico.org/v1', kind: 'BGPConfiguration', metadata: {name: 'default', resourceVersion: '7'}, ...(spec ? {spec} : {})});

  test('no object and nothing wanted: nothing to do', async () => {
    const p = await call('extip_bgp_plan', {}, [], null);
    expect([p.changed, p.create, p.after_ledger]).toEqual([false, null, {}]);
  });

  test('an object without spec gets one, with the wanted CIDRs, host bits and duplicates folded', async () => {
    const p = await call('extip_bgp_plan', {}, ['10.0.0.5/24', '10.0.0.0/24', '10.1.0.0/24'], obj(undefined));
    expect(p.patch).toEqual([
      {op: 'test', path: '/metadata/resourceVersion', value: '7'},
      {op: 'add', path: '/spec', value: {}},
      {op: 'add', path: '/spec/serviceExternalIPs', value: []},
      {op: 'add', path: '/spec/serviceExternalIPs/-', value: {cidr: '10.0.0.0/24'}},
      {op: 'add', path: '/spec/serviceExternalIPs/-', value: {cidr: '10.1.0.0/24'}},
    ]);
    expect(p.ahead).toEqual({created: false, added: ['10.0.0.0/24', '10.1.0.0/24']});
  });

  test('entries present before extip are never added to the ledger, so never removed', async () => {
    const current = obj({serviceExternalIPs: [{cidr: '10.0.0.0/24'}]});
    const install = await call('extip_bgp_plan', {}, ['10.0.0.0/24'], current);
    expect([install.changed, install.ahead, install.after_ledger]).toEqual([false, {}, {}]);
    const uninstall = await call('extip_bgp_plan', {}, [], current);
    expect(uninstall.changed).toBe(false);
  });

  test('uninstall removes only the entries extip added, from the highest index, each tested first', async () => {
    const current = obj({asNumber: 64512, serviceExternalIPs: [{cidr: '10.0.0.0/24'}, {cidr: '192.0.2.0/24'}, {cidr: '10.1.0.0/24'}]});
    const p = await call('extip_bgp_plan', {created: false, added: ['10.0.0.0/24', '10.1.0.0/24']}, [], current);
    expect(p.patch).toEqual([
      {op: 'test', path: '/metadata/resourceVersion', value: '7'},
      {op: 'test', path: '/spec/serviceExternalIPs/2', value: {cidr: '10.1.0.0/24'}},
      {op: 'remove', path: '/spec/serviceExternalIPs/2'},
      {op: 'test', path: '/spec/serviceExternalIPs/0', value: {cidr: '10.0.0.0/24'}},
      {op: 'remove', path: '/spec/serviceExternalIPs/0'},
    ]);
    expect(p.after).toEqual(['192.0.2.0/24']);
    expect([p.delete, p.after_ledger]).toEqual([false, {}]);
  });

  test('CIDRs kubespray keeps (calico_advertise_service_external_ips) are added when missing but never owned, so never removed', async () => {
    const kept = ['10.0.0.0/24'];
    const install = await call('extip_bgp_plan', {}, ['10.0.0.0/24', '10.1.0.0/24'], obj({serviceExternalIPs: []}), null, kept);
    expect(install.patch.filter((o: {op: string}) => o.op === 'add').map((o: {value: unknown}) => o.value)).toEqual([{cidr: '10.0.0.0/24'}, {cidr: '10.1.0.0/24'}]);
    expect(install.after_ledger).toEqual({created: false, added: ['10.1.0.0/24']});
    // An earlier install that owned it gives it up once kubespray lists it.
    const uninstall = await call('extip_bgp_plan', {created: false, added: ['10.0.0.0/24', '10.1.0.0/24']}, [],
      obj({serviceExternalIPs: [{cidr: '10.0.0.0/24'}, {cidr: '10.1.0.0/24'}]}), null, kept);
    expect(uninstall.after).toEqual(['10.0.0.0/24']);
    const created = await call('extip_bgp_plan', {}, ['10.0.0.0/24'], null, null, kept);
    expect(created.after_ledger).toEqual({created: true, added: []});
  });

  test('an object extip created is deleted only when nothing else is in its spec', async () => {
    const ledger = {created: true, added: ['10.0.0.0/24']};
    const alone = await call('extip_bgp_plan', ledger, [], obj({serviceExternalIPs: [{cidr: '10.0.0.0/24'}]}));
    expect([alone.delete, alone.patch]).toEqual([true, []]);
    const shared = await call('extip_bgp_plan', ledger, [], obj({logSeverityScreen: 'Info', serviceExternalIPs: [{cidr: '10.0.0.0/24'}]}));
    expect(shared.delete).toBe(false);
    expect(shared.patch.map((o: {op: string}) => o.op)).toEqual(['test', 'test', 'remove']);
  });
});
