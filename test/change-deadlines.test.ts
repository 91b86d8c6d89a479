// An addition's first step (which flows will move: movedByAdd at the switch) has a deadline
// of its own: one slow answer never holds the change, and every change queued behind it on
// the switch, past barrierTimeoutMs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FlowSpec } from '../switch-adapters/contract.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

test(
  'an addition whose moved-flows query is slow settles within its barrier deadline',
  { timeout: 60_000 },
  async () => {
    const w = new World({
      switches: [
        {
          name: 'sw1',
          vips: [{ address: VIP, nexthops: NH, port: 443 }],
          spares: ['10.0.1.5'],
          ecmpMode: 'resilient',
          pinCapacity: 100_000,
          programDelayMs: 5,
          pinProgramDelayMs: 5,
          rate: 50,
          lifetime: { kind: 'fixed', s: 3600 },
        },
      ],
      latencyMs: 5,
      mirrorDelayMs: 1,
      packetIntervalMs: 1000,
      seed: 37,
      controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 2000, store: 'memory' },
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
