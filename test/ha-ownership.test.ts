// Ownership of switches through a real three-member etcd, two flowpin instances (each its own
// etcd client) in this process: they split the switches by rendezvous hashing; each epoch is
// written in the transaction that takes the owner key; when one dies (lease revoked, or left
// to expire) the other takes its switches under epoch + 1; a switch with a change in flight is
// not handed over; a stale owner's change-log write is refused; one etcd member lost, things
// go on; quorum lost, owners drop their switches before etcd could expire their leases.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import type { HaConfig } from '../controller/ha/config.js';
import { DuplicateMemberError, HaCoordinator } from '../controller/ha/coordinator.js';
import { EtcdChangeLog, StaleOwnerError } from '../controller/ha/change-log.js';
import { haKeys, parseOwner } from '../controller/ha/keys.js';
import { monoNow } from '../controller/ha/lease.js';
import { rendezvousOwner } from '../controller/ha/rendezvous.js';
import type { ChangeRecord } from '../controller/change-record.js';
import { until } from '../lib/until.js';
import { skipEtcd, startEtcdCluster, type EtcdCluster } from './helpers/etcd.js';

const skip = skipEtcd();
let cluster: EtcdCluster | undefined;
const running: HaCoordinator[] = [];
let admin: Etcd3 | undefined;
let prefixN = 0;

before(async () => {
  if (skip !== false) return;
  cluster = await startEtcdCluster(3);
  admin = new Etcd3({ hosts: cluster.endpoints });
});
after(async () => {
  for (const c of running) await c.stop({ revoke: false }).catch(() => undefined);
  admin?.close();
  await cluster?.close();
});

const SWITCHES = Array.from({ length: 8 }, (_, i) => `leaf${i}`);

function instance(
  name: string,
  prefix: string,
  inFlight: (sw: string) => boolean = () => false,
  switches: readonly string[] = SWITCHES,
  ttlS = 2,
): HaCoordinator {
  const cfg: HaConfig = {
    endpoints: cluster?.endpoints ?? [],
    tls: undefined,
    leaseTtlS: ttlS,
    auditIntervalS: 60,
    prefix,
    name,
    apiAddress: `http://127.0.0.1:80${prefixN}`,
  };
  // Above 2 s, a margin of a third of the TTL: a timer late by less than that under a loaded test
  // run still fires before etcd could expire the lease.
  const lease = ttlS > 2 ? { lease: { marginMs: (ttlS * 1000) / 3 } } : {};
  const c = new HaCoordinator(cfg, { switches, inFlight, pollMs: 300, ...lease });
  c.on('error', () => undefined);
  running.push(c);
  return c;
}

const newPrefix = (): string => `/t${process.pid}-${++prefixN}/`;

/** Waits until the instances own every switch between them, as rendezvous hashing over them says. */
async function settled(cs: HaCoordinator[], switches: readonly string[] = SWITCHES): Promise<void> {
  const names = cs.map((c) => c.cfg.name);
  await until('the switches split by rendezvous', 20_000, () =>
    switches.every((sw) => {
      const want = rendezvousOwner(sw, names);
      return cs.every((c) => c.ownedSwitches().has(sw) === (c.cfg.name === want));
    }),
  );
}

/** The owner key's and the epoch key's mod revisions and the epoch, read from etcd. */
async function stored(prefix: string, sw: string) {
  const k = haKeys(prefix);
  const a = admin as Etcd3;
  const [o, e] = await Promise.all([a.get(k.owner(sw)).exec(), a.get(k.epoch(sw)).exec()]);
  const ov = o.kvs[0];
  const ev = e.kvs[0];
  return {
    owner: ov === undefined ? null : parseOwner(ov.value.toString()),
    ownerMod: ov?.mod_revision,
    epoch: ev === undefined ? 0 : Number(ev.value.toString()),
    epochMod: ev?.mod_revision,
  };
}

const record = (sw: string, id: string): ChangeRecord =>
  ({
    id,
    kind: 'drain',
    switch: sw,
    vip: '192.0.2.80',
    nexthop: '10.0.1.1',
    phase: 'pending',
    maxAtRisk: 0,
    queuedAt: 1,
    startedAt: 2,
  }) as unknown as ChangeRecord;

test(
  'two instances split the switches by rendezvous; each epoch is taken in the owner txn',
  { skip, timeout: 60_000 },
  async () => {
    const prefix = newPrefix();
    const a = instance('a', prefix);
    const b = instance('b', prefix);
    await a.start();
    await b.start();
    await settled([a, b]);
    assert.ok(a.ownedSwitches().size > 0 && b.ownedSwitches().size > 0, 'both own some of 8 switches');
    for (const sw of SWITCHES) {
      const s = await stored(prefix, sw);
      const c = a.ownedSwitches().has(sw) ? a : b;
      assert.equal(s.owner?.name, c.cfg.name);
      assert.equal(s.epoch, c.ownedSwitches().get(sw));
      assert.equal(c.fence(sw).epoch, s.epoch);
      // The same revision: the epoch was written by the transaction that wrote the owner key.
      assert.equal(s.epochMod, s.ownerMod, `${sw}: owner and epoch written in one transaction`);
    }
    await a.stop();
    await b.stop();
  },
);

for (const how of ['revoked', 'expired'] as const) {
  test(
    `the owner's lease ${how}: the other takes its switches under epoch + 1`,
    { skip, timeout: 60_000 },
    async () => {
      const prefix = newPrefix();
      const a = instance('a', prefix);
      const b = instance('b', prefix);
      await a.start();
      await b.start();
      await settled([a, b]);
      const aHad = new Map(a.ownedSwitches());
      assert.ok(aHad.size > 0);
      const acquired = new Map<string, number>();
      b.on('acquired', (sw, e) => acquired.set(sw, e));
      const t0 = monoNow();
      // revoked: a leaves (etcd deletes its keys at once); expired: a stops renewing, as if killed.
      await a.stop({ revoke: how === 'revoked' });
      await settled([b]);
      console.log(
        `# ${how}: b took a's ${aHad.size} switches ${Math.round(monoNow() - t0)} ms after a stopped`,
      );
      for (const [sw, e] of aHad) {
        assert.equal(acquired.get(sw), e + 1, `${sw}: epoch + 1`);
        assert.equal(b.fence(sw).epoch, e + 1);
      }
      await b.stop();
    },
  );
}

test(
  'a switch with a change in flight is not handed over until the change ends',
  { skip, timeout: 60_000 },
  async () => {
    const prefix = newPrefix();
    const busy = new Set<string>();
    const a = instance('a', prefix, (sw) => busy.has(sw));
    await a.start();
    await until('a owns every switch', 10_000, () => a.ownedSwitches().size === SWITCHES.length);
    // Switches b should own once it joins: one of them stays busy on a.
    const forB = SWITCHES.filter((sw) => rendezvousOwner(sw, ['a', 'b']) === 'b');
    const held = forB[0];
    assert.ok(held !== undefined);
    busy.add(held);
    const epochOnA = a.ownedSwitches().get(held);
    const b = instance('b', prefix);
    await b.start();
    await until('b owns the others', 20_000, () => forB.slice(1).every((sw) => b.ownedSwitches().has(sw)));
    const passes = a.passes;
    await until('a few more passes of a', 20_000, () => a.passes >= passes + 3);
    assert.equal(a.ownedSwitches().get(held), epochOnA, 'the busy switch stays with a');
    assert.equal(b.ownedSwitches().has(held), false);
    busy.delete(held);
    await settled([a, b]);
    assert.equal(b.ownedSwitches().get(held), (epochOnA ?? 0) + 1);
    await a.stop();
    await b.stop();
  },
);

test(
  "a stale owner's change-log write is refused; the new owner's lands",
  { skip, timeout: 60_000 },
  async () => {
    const prefix = newPrefix();
    const keys = haKeys(prefix);
    const a = instance('a', prefix, () => false, ['leaf0']);
    await a.start();
    await until('a owns leaf0', 10_000, () => a.ownedSwitches().has('leaf0'));
    const log = a.changeLog('leaf0');
    await log.saveChanges({ changes: { leaf0: [record('leaf0', 'c1')] }, watch: {} });
    assert.equal(log.writes, 1);
    // What a paused owner still believes when it wakes: its owner value and epoch.
    const s = await stored(prefix, 'leaf0');
    const believed = { owner: s.owner ?? { name: '', lease: '' }, epoch: s.epoch };
    const stale = new EtcdChangeLog(admin as Etcd3, keys, 'leaf0', () => believed);
    await stale.saveChanges({ changes: { leaf0: [record('leaf0', 'c2')] }, watch: {} });
    // Its lease revoked (as etcd does when it expires): the owner key goes with it.
    await (admin as Etcd3).leaseClient.leaseRevoke({ ID: a.currentLease.id });
    await until('the owner key gone', 10_000, async () => (await stored(prefix, 'leaf0')).owner === null);
    await assert.rejects(
      stale.saveChanges({ changes: { leaf0: [record('leaf0', 'c3')] }, watch: {} }),
      StaleOwnerError,
      'no owner: refused',
    );
    const b = instance('b', prefix, () => false, ['leaf0']);
    await b.start();
    await until('b owns leaf0', 10_000, () => b.ownedSwitches().has('leaf0'));
    assert.equal(b.fence('leaf0').epoch, believed.epoch + 1);
    await assert.rejects(
      stale.saveChanges({ changes: { leaf0: [record('leaf0', 'c4')] }, watch: {} }),
      StaleOwnerError,
      'another owner, a higher epoch: refused',
    );
    const loaded = await b.changeLog('leaf0').load();
    assert.deepEqual(
      loaded?.changes['leaf0']?.map((r) => r.id),
      ['c2'],
      'the new owner reads what the old one last wrote while it owned the switch',
    );
    await b.changeLog('leaf0').saveChanges({ changes: { leaf0: [record('leaf0', 'c5')] }, watch: {} });
    assert.deepEqual(
      (await b.changeLog('leaf0').load())?.changes['leaf0']?.map((r) => r.id),
      ['c5'],
    );
    // etcd writes per change-log save: one transaction, one revision.
    const before = Number((await stored(prefix, 'leaf0')).epochMod);
    const rev0 = Number((await (admin as Etcd3).get(keys.changes('leaf0')).exec()).header.revision);
    await b.changeLog('leaf0').saveChanges({ changes: { leaf0: [record('leaf0', 'c6')] }, watch: {} });
    const rev1 = Number((await (admin as Etcd3).get(keys.changes('leaf0')).exec()).header.revision);
    assert.ok(before > 0);
    console.log(`# etcd revisions per change-log save: ${rev1 - rev0}`);
    await a.stop({ revoke: false });
    await b.stop();
  },
);

test(
  'one etcd member of three killed: leases renew, switches fail over, change logs are written',
  { skip, timeout: 90_000 },
  async () => {
    const c = cluster as EtcdCluster;
    const prefix = newPrefix();
    // The default TTL (5 s): the member killed may be the leader, and its election must fit.
    const a = instance('a', prefix, () => false, SWITCHES, 5);
    const b = instance('b', prefix, () => false, SWITCHES, 5);
    await a.start();
    await b.start();
    await settled([a, b]);
    const victim = c.members[1];
    assert.ok(victim !== undefined);
    await victim.kill();
    try {
      const killedAt = monoNow();
      await until('keep-alives sent after the kill acknowledged', 20_000, () =>
        [a, b].every((x) => x.currentLease.lastAckedSentAt > killedAt),
      );
      const [sw] = [...a.ownedSwitches().keys()];
      assert.ok(sw !== undefined);
      await a.changeLog(sw).saveChanges({ changes: { [sw]: [record(sw, 'k1')] }, watch: {} });
      const aHad = new Map(a.ownedSwitches());
      await a.stop({ revoke: false });
      await settled([b]);
      for (const [s, e] of aHad) assert.equal(b.ownedSwitches().get(s), e + 1);
      await b.changeLog(sw).saveChanges({ changes: { [sw]: [record(sw, 'k2')] }, watch: {} });
    } finally {
      victim.start();
    }
    await c.waitHealthy();
    await b.stop();
  },
);

test(
  'quorum lost: owners drop their switches before etcd could expire their leases',
  { skip, timeout: 90_000 },
  async () => {
    const c = cluster as EtcdCluster;
    const prefix = newPrefix();
    const a = instance('a', prefix, () => false, SWITCHES, 3);
    await a.start();
    await until('a owns every switch', 10_000, () => a.ownedSwitches().size === SWITCHES.length);
    const lost: number[] = [];
    a.on('lost', () => lost.push(monoNow()));
    const two = c.members.slice(0, 2);
    for (const m of two) m.pause();
    try {
      await until('every switch lost', 20_000, () => lost.length === SWITCHES.length);
    } finally {
      for (const m of two) m.resume();
    }
    const earliestExpiry = a.currentLease.lastAckedSentAt + a.currentLease.ttlMs;
    console.log(
      `# quorum lost: switches dropped ${Math.round(earliestExpiry - Math.max(...lost))} ms before etcd could expire the lease`,
    );
    assert.ok(Math.max(...lost) <= earliestExpiry, 'dropped before the lease could expire in etcd');
    assert.equal(a.ownedSwitches().size, 0);
    assert.throws(() => a.fence('leaf0'));
    await c.waitHealthy();
    // Sure again (the lease lived on): the switches are taken again, under new epochs.
    await until('a owns every switch again', 20_000, () => a.ownedSwitches().size === SWITCHES.length);
    await a.stop();
  },
);

test(
  'two instances under one name: the second refuses to start; a restart after a kill waits for the old lease',
  { skip, timeout: 60_000 },
  async () => {
    const prefix = newPrefix();
    const a = instance('dup', prefix);
    await a.start();
    await until('a owns every switch', 10_000, () => a.ownedSwitches().size === SWITCHES.length);
    const twin = instance('dup', prefix);
    await assert.rejects(twin.start(), DuplicateMemberError);
    assert.equal(a.ownedSwitches().size, SWITCHES.length, 'the first keeps its switches');
    const epochs = new Map(a.ownedSwitches());
    // Killed (its lease left to expire), then started again under the same name.
    await a.stop({ revoke: false });
    const again = instance('dup', prefix);
    await again.start();
    await until(
      'the restarted instance owns every switch',
      20_000,
      () => again.ownedSwitches().size === SWITCHES.length,
    );
    for (const [sw, e] of epochs) assert.equal(again.ownedSwitches().get(sw), e + 1);
    await again.stop();
  },
);
