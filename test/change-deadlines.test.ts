// An addition's first step (which flows will move: movedByAdd at the switch) has a deadline
// of its own: one slow answer never holds the change, and every change queued behind it on
// the switch, past barrierTimeoutMs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FlowSpec } from '../switch-adapters/contract.js';
import { changeWorld, WORLD_VIP as VIP } from './helpers/world.js';

test(
  'an addition whose moved-flows query is slow settles within its barrier deadline',
  { timeout: 60_000 },
  async () => {
    const w = changeWorld({
      seed: 37,
      sw: { spares: ['10.0.1.5'], pinCapacity: 100_000, pinProgramDelayMs: 5, rate: 50 },
      controller: { barrierTimeoutMs: 2000 },
    });
    try {
      await w.startController();
      w.openLive(200, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(1000);
      const a = w.adapters.get('sw1');
      assert.ok(a !== undefined);
      const orig = a.movedByAdd.bind(a);
      // The switch takes 20 s to answer this one query.
      a.movedByAdd = (vip: string, nh: string, flows: FlowSpec[]) => {
        a.faults.spikeUntil = w.now + 0.5;
        a.faults.spikeMs = 20_000;
        return orig(vip, nh, flows);
      };
      const t0 = w.now;
      const p = w.controller?.changeManager('sw1').add(VIP, '10.0.1.5', { maxAtRisk: 'unbounded' });
      assert.ok(p);
      let failure: unknown;
      await w.settle(p, 3000).catch((err: unknown) => (failure = err));
      assert.ok(
        !(failure instanceof Error && /still waiting/.test(failure.message)),
        `the addition had not settled ${w.now - t0} ms after it was asked for (barrierTimeoutMs 2000)`,
      );
    } finally {
      await w.close();
    }
  },
);
