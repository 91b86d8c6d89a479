// The lease's own deadline, against a real three-member etcd: when etcd stops answering
// (every member paused), `uncertain` fires no later than send time of the last acknowledged
// keep-alive + TTL (the earliest etcd could expire the lease), before the npm etcd3 client's
// own `lost`; a lease etcd revoked is `gone`; one member killed, the lease keeps being renewed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Etcd3 } from 'etcd3';
import { HaLease, monoNow } from '../controller/ha/lease.js';
import { until } from '../lib/until.js';
import { skipEtcd, startEtcdCluster, type EtcdCluster } from './helpers/etcd.js';

const skip = skipEtcd();
let cluster: EtcdCluster | undefined;
const clients: Etcd3[] = [];
const client = (): Etcd3 => {
  const c = new Etcd3({ hosts: cluster?.endpoints ?? [], dialTimeout: 2000 });
  clients.push(c);
  return c;
};

before(async () => {
  if (skip === false) cluster = await startEtcdCluster(3);
});
after(async () => {
  for (const c of clients) c.close();
  await cluster?.close();
});

test(
  'etcd paused: the own deadline fires by last acked send + TTL, before etcd3 says lost',
  { skip, timeout: 60_000 },
  async () => {
    const c = cluster as EtcdCluster;
    // A margin of a third of the TTL: a timer late by less than that still fires in time.
    const mine = new HaLease(client(), { ttlS: 3, marginMs: 1000 });
    await mine.grant();
    const plain = client().lease(3);
    await once(plain, 'keepaliveSucceeded');
    await until('two acknowledged keep-alives', 10_000, () => mine.acked >= 2);
    let uncertainAt = 0;
    let lostAt = 0;
    mine.on('uncertain', () => (uncertainAt = monoNow()));
    plain.on('lost', () => (lostAt = monoNow()));
    for (const m of c.members) m.pause();
    try {
      await until('the own deadline and etcd3 lost', 30_000, () => uncertainAt > 0 && lostAt > 0);
    } finally {
      for (const m of c.members) m.resume();
    }
    const lastSent = mine.lastAckedSentAt;
    console.log(
      `# last acked keep-alive sent at 0 ms; own deadline fired at ${Math.round(uncertainAt - lastSent)} ms, ` +
        `etcd3 lost at ${Math.round(lostAt - lastSent)} ms (TTL ${mine.ttlMs} ms)`,
    );
    assert.ok(
      uncertainAt <= lastSent + mine.ttlMs,
      'the own deadline came before etcd could expire the lease',
    );
    assert.ok(uncertainAt < lostAt, 'the own deadline came before etcd3 lost');
    assert.equal(mine.valid(), false);
    mine.close();
    await c.waitHealthy();
  },
);

test('a lease revoked in etcd is gone (and uncertain first)', { skip, timeout: 30_000 }, async () => {
  const mine = new HaLease(client(), { ttlS: 2 });
  const id = await mine.grant();
  const events: string[] = [];
  mine.on('uncertain', () => events.push('uncertain'));
  mine.on('gone', () => events.push('gone'));
  await client().leaseClient.leaseRevoke({ ID: id });
  await until('gone', 10_000, () => events.includes('gone'));
  assert.deepEqual(events, ['uncertain', 'gone']);
  assert.equal(mine.valid(), false);
});

test('one etcd member killed: the lease is still renewed', { skip, timeout: 60_000 }, async () => {
  const c = cluster as EtcdCluster;
  const mine = new HaLease(client(), { ttlS: 2 });
  await mine.grant();
  let uncertain = 0;
  mine.on('uncertain', () => uncertain++);
  const victim = c.members[0];
  assert.ok(victim !== undefined);
  await victim.kill();
  const killedAt = monoNow();
  try {
    await until(
      'a keep-alive sent after the kill acknowledged',
      20_000,
      () => mine.lastAckedSentAt > killedAt,
    );
    const acked = mine.acked;
    await until('three more keep-alives', 20_000, () => mine.acked >= acked + 3);
    assert.equal(mine.valid(), true);
  } finally {
    victim.start();
    mine.close();
  }
  await c.waitHealthy();
  console.log(`# uncertain events while one member was down: ${uncertain}`);
});
