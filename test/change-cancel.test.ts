// Cancelling a change, in the simulated world through the API: a queued change leaves the
// queue and a pending one stops before its group write, its pins released, the switch's group
// as it was, the record `cancelled` (durable: a killed controller does not resume it), and the
// caller of the change told so; an addition cancelled takes away the nexthop it brought. After
// the group write nothing is undone: a 409 names the opposite change, with its own bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import type { ChangeRecord } from '../controller/changes.js';
import { FlowpinError } from '../controller/errors.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const VIP2 = '192.0.2.81';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];
const NH2 = ['10.0.2.1', '10.0.2.2', '10.0.2.3'];

function world(): World {
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [
          { address: VIP, nexthops: NH, port: 443 },
          { address: VIP2, nexthops: NH2, port: 443 },
        ],
        spares: ['10.0.1.5'],
        ecmpMode: 'resilient',
        pinCapacity: 5000,
        programDelayMs: 10,
        rate: 100,
        lifetime: { kind: 'fixed', s: 600 },
      },
    ],
    // A long settle time: a change stays pending (held, waiting for frames in flight) long enough to be
    // cancelled.
    latencyMs: 2,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed: 23,
    controller: {
      pinMode: 'on-change',
      settleMs: 3000,
      barrierTimeoutMs: 20_000,
      resyncIntervalS: 3600,
      store: 'memory',
    },
  });
}

type Call = (method: 'POST', url: string) => Promise<{ statusCode: number; body: string; json: <T>() => T }>;

async function withApi(w: World, fn: (call: Call) => Promise<void>): Promise<void> {
  const c = w.controller;
  assert.ok(c);
  const app = await buildApp({ controller: c, token: 't', logger: pino({ level: 'silent' }) });
  try {
    await fn((method, url) =>
      w.settle(app.inject({ method, url, headers: { authorization: 'Bearer t' } }), 30_000),
    );
  } finally {
    await app.close();
  }
}

const cancelUrl = (id: string): string => `/api/v1/switches/sw1/changes/${encodeURIComponent(id)}/cancel`;

test(
  'cancel: a queued change leaves the queue, a pending one stops before its group write and releases its pins; durable across a kill',
  { timeout: 120_000 },
  async () => {
    // Catches: a cancel that only marks the record while the protocol goes on to the group write;
    // pins of the cancelled change left wanted; a cancel answered before it is on disk (a kill
    // then resumes the change); the change's own caller never told.
    const w = world();
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(8000);
      const c = w.controller;
      assert.ok(c);
      const cm = c.changeManager('sw1');
      const pending = cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' });
      pending.catch(() => undefined);
      for (let i = 0; i < 2000 && cm.records.at(-1)?.heldAt === undefined; i++) await w.advance(1);
      const a = cm.records.at(-1) as ChangeRecord;
      assert.equal(a.phase, 'pending');
      const pinsOf = (id: string): number =>
        [...c.runtime('sw1').reconciler.desired.values()].filter((p) => p.reason === id).length;
      assert.ok(pinsOf(a.id) > 0, 'the pending drain has pinned its connections');
      // The second change of the switch waits its turn.
      const queued = cm.drain(VIP2, NH2[1] as string, { maxAtRisk: 'unbounded' });
      queued.catch(() => undefined);
      await w.advance(5);
      const b = cm.records.at(-1) as ChangeRecord;
      assert.equal(b.phase, 'queued');
      await withApi(w, async (call) => {
        const qb = await call('POST', cancelUrl(b.id));
        assert.equal(qb.statusCode, 200, qb.body);
        assert.deepEqual(
          [qb.json<ChangeRecord>().phase, qb.json<ChangeRecord>().error],
          ['cancelled', 'cancelled by the operator'],
        );
        // On disk before the answer.
        assert.equal(c.store?.loadChanges()?.changes['sw1']?.find((r) => r.id === b.id)?.phase, 'cancelled');
        const pa = await call('POST', cancelUrl(a.id));
        assert.equal(pa.statusCode, 200, pa.body);
        const rec = pa.json<ChangeRecord>();
        assert.equal(rec.phase, 'cancelled');
        assert.equal(rec.sentAt, undefined, 'no group write');
        assert.equal(rec.appliedAt, undefined);
        // Asked again: the same answer, nothing more done.
        assert.equal((await call('POST', cancelUrl(a.id))).json<ChangeRecord>().phase, 'cancelled');
        assert.equal((await call('POST', cancelUrl('sw1-drain-none-1'))).statusCode, 404);
      });
      for (const p of [pending, queued]) {
        await assert.rejects(
          w.settle(p, 10_000),
          (err: unknown) =>
            err instanceof FlowpinError &&
            err.status === 409 &&
            /cancelled by the operator before its group write: nothing changed on the switch/.test(
              err.message,
            ),
        );
      }
      assert.equal(pinsOf(a.id), 0, 'its pins are released');
      // Past the settle time the cancelled drain would have written the group: it did not.
      await w.advance(5000);
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'VIP group as it was');
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP2)?.group.members(), NH2, 'the queued change never ran');
      // Killed without a chance to write anything more: the cancels were durable, nothing resumes.
      await w.stopController('kill');
      await w.startController();
      await w.advance(5000);
      const again = w.controller?.changeManager('sw1');
      assert.deepEqual([again?.get(a.id)?.phase, again?.get(b.id)?.phase], ['cancelled', 'cancelled']);
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH);
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP2)?.group.members(), NH2);
    } finally {
      await w.close();
    }
  },
);

test(
  'cancel: an addition cancelled takes its new nexthop away; after the group write a cancel undoes nothing and names the opposite change',
  { timeout: 120_000 },
  async () => {
    // Catches: an undrain done silently by a cancel; a cancelled addition leaving its nexthop behind as
    // "drained".
    const w = world();
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(8000);
      const c = w.controller;
      assert.ok(c);
      const cm = c.changeManager('sw1');
      const adding = cm.add(VIP, '10.0.1.5', { maxAtRisk: 'unbounded' });
      adding.catch(() => undefined);
      for (let i = 0; i < 2000 && cm.records.at(-1)?.heldAt === undefined; i++) await w.advance(1);
      const add = cm.records.at(-1) as ChangeRecord;
      assert.ok(c.runtime('sw1').vips.get(VIP)?.nexthops.has('10.0.1.5'));
      await w.settle(cm.cancel(add.id), 10_000);
      await assert.rejects(w.settle(adding, 10_000), /cancelled by the operator/);
      assert.equal(
        c.runtime('sw1').vips.get(VIP)?.nexthops.has('10.0.1.5'),
        false,
        'the nexthop it brought is gone',
      );
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH);

      const drained = (await w.settle(
        cm.drain(VIP, NH[2] as string, { maxAtRisk: 'unbounded' }),
        30_000,
      )) as ChangeRecord;
      assert.ok(drained.appliedAt !== undefined);
      await withApi(w, async (call) => {
        const late = await call('POST', cancelUrl(drained.id));
        assert.equal(late.statusCode, 409, late.body);
        const body = late.json<{ message: string; detail: { undo: { command: string; path: string } } }>();
        assert.match(
          body.message,
          /the group write of drain \S+ was applied at \S+: cancel cannot take it back\. What would undo it is putting 10\.0\.1\.3 back into the group of 192\.0\.2\.80: an undrain, a new change checked against its own bound/,
        );
        assert.equal(body.detail.undo.command, 'undrain');
        assert.equal(
          body.detail.undo.path,
          `/api/v1/switches/sw1/vips/${VIP}/nexthops/${NH[2] as string}/undrain`,
        );
        const done = await call('POST', cancelUrl(add.id));
        assert.equal(done.statusCode, 200, 'a cancelled change answers as it is');
      });
      assert.equal(
        w
          .sw('sw1')
          .sw.vips.get(VIP)
          ?.group.members()
          .includes(NH[2] as string),
        false,
        'not undrained',
      );
      assert.ok(['applied', 'drained'].includes(cm.get(drained.id)?.phase ?? ''), cm.get(drained.id)?.phase);
    } finally {
      await w.close();
    }
  },
);
