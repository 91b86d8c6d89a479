// The state store of an instance with `ha:`, against a real three-member etcd: the change log of
// every owned switch goes out in one fenced transaction (one revision), the flows stay in the
// local files; a switch this instance does not own refuses the save before anything is sent;
// a switch lost between the check and the write is named, and the others land.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import type { ChangeRecord } from '../controller/change-record.js';
import { EtcdChangeLog, StaleOwnerError } from '../controller/ha/change-log.js';
import type { HaConfig } from '../controller/ha/config.js';
import { HaCoordinator } from '../controller/ha/coordinator.js';
import { haKeys, type OwnerValue } from '../controller/ha/keys.js';
import { HaStateStore, type HaSide } from '../controller/ha/state-store.js';
import { FileStateStore, type ChangeDoc } from '../controller/state-store.js';
import { until } from '../lib/until.js';
import { skipEtcd, startEtcdCluster, type EtcdCluster } from './helpers/etcd.js';

const skip = skipEtcd();
let cluster: EtcdCluster | undefined;
let admin: Etcd3 | undefined;
let dir = '';
const SWITCHES = ['leaf0', 'leaf1', 'leaf2', 'leaf3'];

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ha-store-'));
  if (skip !== false) return;
  cluster = await startEtcdCluster(3);
  admin = new Etcd3({ hosts: cluster.endpoints });
});
after(async () => {
  admin?.close();
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

const record = (sw: string, id: string): ChangeRecord =>
  ({
    id,
    kind: 'drain',
    switch: sw,
    vip: '192.0.2.80',
    nexthop: '10.0.1.1',
    phase: 'applied',
    maxAtRisk: 0,
    queuedAt: 1,
    startedAt: 2,
  }) as unknown as ChangeRecord;

const docOf = (switches: string[], id: string): ChangeDoc => ({
  changes: Object.fromEntries(switches.map((sw) => [sw, [record(sw, `${id}-${sw}`)]])),
  watch: Object.fromEntries(switches.map((sw) => [sw, { watched: [{ from: 0, to: 5 }] }])),
});

async function owner(prefix: string): Promise<HaCoordinator> {
  const cfg: HaConfig = {
    endpoints: cluster?.endpoints ?? [],
    tls: undefined,
    leaseTtlS: 2,
    auditIntervalS: 60,
    prefix,
    name: 'a',
    apiAddress: 'http://127.0.0.1:8080',
  };
  const a = new HaCoordinator(cfg, { switches: SWITCHES, inFlight: () => false });
  a.on('error', () => undefined);
  await a.start();
  await until('a owns every switch', 10_000, () => a.ownedSwitches().size === SWITCHES.length);
  return a;
}

const revision = async (): Promise<number> =>
  Number((await (admin as Etcd3).get('/none').exec()).header.revision);

test(
  'one transaction for every switch of a save; flows stay in the local files',
  { skip, timeout: 60_000 },
  async () => {
    const prefix = `/store-${process.pid}-1/`;
    const a = await owner(prefix);
    const store = new HaStateStore(a, new FileStateStore(path.join(dir, 'state1')));
    const r0 = await revision();
    await store.saveChanges(docOf(SWITCHES, 'c1'));
    assert.equal((await revision()) - r0, 1, 'one revision for four switches');
    assert.equal(store.txns, 1);
    // Read back from etcd by a fresh store.
    const again = new HaStateStore(a, new FileStateStore(path.join(dir, 'state1')));
    await again.load();
    assert.deepEqual(again.loadChanges(), docOf(SWITCHES, 'c1'));
    await store.appendFlows(
      [{ switchName: 'leaf0', vip: '192.0.2.80', nexthop: '10.0.1.1', key: 'k'.repeat(14) }],
      7,
    );
    assert.deepEqual(store.loadFlows()?.flows[0]?.keys, ['k'.repeat(14)]);
    await a.stop();
  },
);

test(
  'a switch this instance does not own refuses the save before anything is sent',
  { skip, timeout: 60_000 },
  async () => {
    const prefix = `/store-${process.pid}-2/`;
    const a = await owner(prefix);
    const store = new HaStateStore(a, new FileStateStore(path.join(dir, 'state2')));
    const r0 = await revision();
    await assert.rejects(store.saveChanges(docOf([...SWITCHES, 'spine9'], 'c1')), (err: unknown) => {
      return err instanceof StaleOwnerError && err.switchName === 'spine9';
    });
    assert.equal(await revision(), r0, 'nothing written');
    await a.stop();
  },
);

test(
  'a switch lost between the check and the write is named; the others land',
  { skip, timeout: 60_000 },
  async () => {
    const prefix = `/store-${process.pid}-3/`;
    const a = await owner(prefix);
    const keys = haKeys(prefix);
    // What the instance believes, frozen (as in a process paused before it writes).
    const believed = new Map(
      SWITCHES.map((sw) => {
        const h = a.holder(sw);
        assert.ok(h !== null);
        return [sw, h] as const;
      }),
    );
    const logs = new Map(
      SWITCHES.map((sw) => [sw, new EtcdChangeLog(admin as Etcd3, keys, sw, () => believed.get(sw) ?? null)]),
    );
    const side: HaSide = {
      client: admin as Etcd3,
      keys,
      holder: (sw) => believed.get(sw) ?? null,
      changeLog: (sw) => logs.get(sw) as EtcdChangeLog,
      ownedSwitches: () => new Map(SWITCHES.map((sw) => [sw, believed.get(sw)?.epoch ?? 0])),
    };
    const store = new HaStateStore(side, new FileStateStore(path.join(dir, 'state3')));
    await store.saveChanges(docOf(SWITCHES, 'c1'));
    // Another instance takes leaf1 (its owner key and a higher epoch).
    const other: OwnerValue = { name: 'b', lease: '0' };
    await (admin as Etcd3).put(keys.owner('leaf1')).value(JSON.stringify(other));
    await (admin as Etcd3).put(keys.epoch('leaf1')).value(String((believed.get('leaf1')?.epoch ?? 0) + 1));
    await assert.rejects(store.saveChanges(docOf(SWITCHES, 'c2')), (err: unknown) => {
      return err instanceof StaleOwnerError && err.switchName === 'leaf1';
    });
    const stored = async (sw: string): Promise<string | undefined> =>
      (JSON.parse((await (admin as Etcd3).get(keys.changes(sw)).string()) ?? '[]') as { id: string }[])[0]
        ?.id;
    assert.equal(await stored('leaf0'), 'c2-leaf0');
    assert.equal(await stored('leaf2'), 'c2-leaf2');
    assert.equal(await stored('leaf1'), 'c1-leaf1', "the stale owner's write did not land");
    await a.stop({ revoke: false });
  },
);
