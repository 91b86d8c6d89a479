// A switch lost under high availability while a change is in flight: the change stops where it
// is (nothing undone, its record left as last written for the next owner), and its caller is
// told why, with the loss named, not that flowpin is stopping.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowpinError } from '../controller/errors.js';
import { changeWorld, WORLD_NH as NH, WORLD_VIP as VIP } from './helpers/world.js';

test(
  'a change in flight when its switch is released fails with the reason given, its record left',
  { timeout: 60_000 },
  async () => {
    // Pins take 2 s to program: the drain is still waiting for them when the switch is lost.
    const w = changeWorld({
      seed: 41,
      sw: { pinProgramDelayMs: 2000 },
      controller: { barrierTimeoutMs: 10_000 },
    });
    try {
      await w.startController();
      w.openLive(100, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(1500);
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      const p = cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' });
      const outcome = p.then(
        () => undefined,
        (e: unknown) => e,
      );
      await w.advance(300);
      const rec = cm.records.at(-1);
      assert.ok(rec !== undefined && rec.heldAt !== undefined && rec.sentAt === undefined, 'held, not sent');
      const why = 'this instance no longer owns switch sw1 (taken by another instance): ...';
      cm.release(why);
      await w.advance(100);
      const err = await outcome;
      assert.ok(err instanceof FlowpinError, `rejected with a FlowpinError, got ${String(err)}`);
      assert.equal(err.code, 'switch-unavailable');
      assert.equal(err.message, why);
      assert.deepEqual(cm.records, [], 'the records leave memory: the next owner reads them');
    } finally {
      await w.close();
    }
  },
);
