// The barrier by marks does not pass while an event accepted before the mark is still waiting
// for its look-up: failed look-up batches go back in sequence order, whatever order they
// failed in, because `doneThrough(mark)` reads the oldest queued event. A flow whose look-up is
// in flight when a change is accounted is counted in its window like a queued one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResolveQueue } from '../controller/resolve-queue.js';
import type { ChangeRecord } from '../controller/changes.js';
import { changeWorld, WORLD_VIP as VIP } from './helpers/world.js';
import { SwitchTransportError } from '../switch-adapters/errors.js';
import type { FlowSpec } from '../switch-adapters/contract.js';

test(
  'doneThrough(mark) is false while an event before the mark is queued again after a failed look-up',
  { timeout: 10_000 },
  () => {
    const q = new ResolveQueue(100);
    q.push({ key: 'a', seq: 1, at: 0 });
    const early = q.take(10); // seq 1, accepted before the mark
    const mark = 1;
    q.push({ key: 'b', seq: 2, at: 0 });
    const late = q.take(10); // seq 2, after the mark
    // Both look-ups fail (the switch did not answer); they fail in the order they were sent.
    q.requeue(early);
    q.requeue(late);
    assert.equal(q.length, 2);
    assert.equal(q.doneThrough(mark), false, 'event 1 (before the mark) is still queued');
  },
);

test(
  'between(mark, settled) names the flows whose look-up is in flight: the window counts them as uncertain',
  { timeout: 10_000 },
  () => {
    const q = new ResolveQueue(100);
    q.push({ key: 'a', seq: 1, at: 0 });
    q.push({ key: 'b', seq: 2, at: 0 });
    q.push({ key: 'c', seq: 3, at: 0 });
    // b and c are at the switch when the change is accounted (a slow answer, asked again after a hold).
    q.take(1);
    q.finish([{ key: 'a', seq: 1, at: 0 }]);
    const asked = q.take(2);
    assert.deepEqual(
      q.between(1, 3).map((p) => p.key),
      ['b', 'c'],
    );
    q.requeue(asked);
    assert.deepEqual(
      q.between(1, 3).map((p) => p.key),
      ['b', 'c'],
    );
    assert.deepEqual(
      q.between(2, 3).map((p) => p.key),
      ['c'],
    );
  },
);

test(
  'a drain whose barrier meets two failed look-ups breaks no connection seen before the hold',
  { timeout: 60_000 },
  async () => {
    const w = changeWorld({
      seed: 5,
      sw: { pinCapacity: 100_000, pinProgramDelayMs: 0, rate: 0.2 },
      controller: { settleMs: 0, barrierTimeoutMs: 5000 },
    });
    try {
      await w.startController();
      w.openLive(200, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(1500);
      const a = w.adapters.get('sw1');
      assert.ok(a);
      // Look-ups sent in the next 4 ms fail after one round trip (the switch resets the connection).
      const orig = a.resolve.bind(a);
      const failUntil = w.now + 4;
      a.resolve = (flows: FlowSpec[]) =>
        w.now < failUntil
          ? new Promise((_, reject) =>
              w.clock.after(5, () => reject(new SwitchTransportError('sw1', 'resolve: connection reset'))),
            )
          : orig(flows);
      const t = w.sw('sw1').traffic;
      // A connection opens now; flowpin sees its SYN 1 ms later, before the hold (2 ms: the write-ahead
      // record).
      const c = t.open({ kind: 'fixed', s: 3600 });
      assert.ok(c);
      const drain = w.controller?.changeManager('sw1').drain(VIP, c.server, { maxAtRisk: 'unbounded' });
      assert.ok(drain);
      // Another connection, whose SYN arrives after the mark.
      w.clock.after(1.5, () => void t.open({ kind: 'fixed', s: 3600 }));
      const rec = (await w.settle(drain, 10_000)) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      await w.advance(3000);
      const audit = w.audit();
      assert.equal(
        audit.brokenProtected,
        0,
        `held ${rec.heldAt}, sent ${rec.sentAt}; ${audit.details.join('\n')}`,
      );
      assert.equal(audit.uncounted, 0, audit.details.join('\n'));
    } finally {
      await w.close();
    }
  },
);
