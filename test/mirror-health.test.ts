// flowpin protects only what its mirror shows. A switch whose mirror is silent (a session
// down, mirrorSources not matching the switch) or whose SYN rate collapsed is not ready, the
// dry run says so, and a change goes ahead only with a bound (maxAtRisk).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord, DryRunReport } from '../controller/changes.js';
import { FlowpinError } from '../controller/errors.js';
import { World } from '../cli/scenario/world.js';
import { recordFigures } from '../reliability/figures.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];

function world(rate: number): World {
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: VIP, nexthops: NH, port: 443 }],
        spares: [],
        ecmpMode: 'resilient',
        pinCapacity: 5000,
        programDelayMs: 0,
        rate,
        lifetime: { kind: 'fixed', s: 600 },
      },
    ],
    latencyMs: 1,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed: 5,
    controller: { pinMode: 'on-change', settleMs: 5, barrierTimeoutMs: 5000, resyncIntervalS: 3600 },
  });
}

describe('mirror health', () => {
  test(
    'a silent mirror: not ready, the dry run says so, a change needs a bound (maxAtRisk)',
    { timeout: 60_000 },
    async () => {
      const w = world(50);
      try {
        await w.startController();
        // The switch mirrors nowhere flowpin listens (its session points elsewhere).
        w.sw('sw1').sw.mirror = undefined;
        w.startTraffic();
        await w.advance(61_000);
        const r = w.controller?.readiness();
        assert.equal(r?.ready, false);
        assert.equal(r?.switches[0]?.mirror.state, 'silent');
        assert.match(r?.switches[0]?.mirror.why ?? '', /no mirrored SYN since flowpin started/);
        const cm = w.controller?.changeManager('sw1');
        assert.ok(cm);
        const dry = (await w.settle(cm.drain(VIP, NH[1] as string, { dryRun: true }), 5000)) as DryRunReport;
        assert.equal(dry.mirror.state, 'silent');
        assert.equal(dry.flowsToPin, 0, 'it saw nothing to pin');
        await assert.rejects(
          w.settle(cm.drain(VIP, NH[1] as string, {}), 5000),
          (err: unknown) =>
            err instanceof FlowpinError && err.status === 409 && /mirror of sw1 is silent/.test(err.message),
        );
        assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'nothing changed');
        const rec = (await w.settle(
          cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          5000,
        )) as ChangeRecord;
        assert.ok(rec.phase === 'applied' || rec.phase === 'drained');
        // Consent given: what breaks is what flowpin said it could not see (it took no SYN at all).
        await w.advance(3000);
        assert.equal(w.controller?.readiness().switches[0]?.mirror.syns, 0);
        recordFigures({
          fault: 'a silent mirror',
          test: 'test/mirror-health.test.ts',
          outcome:
            'not ready; the dry run reports the mirror silent; the drain refused (409) until given a bound (maxAtRisk)',
          broken: w.sw('sw1').resets.length,
          brokenPromised: 0,
          figures: {
            'connections opened': w.sw('sw1').traffic.counters.opened,
            'SYNs flowpin saw': 0,
            'connections broken after the accepted drain': w.sw('sw1').resets.length,
          },
        });
      } finally {
        await w.close();
      }
    },
  );

  test('a collapsed SYN rate is reported against the usual rate', { timeout: 60_000 }, async () => {
    const w = world(200);
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(40_000);
      assert.equal(w.controller?.readiness().switches[0]?.mirror.state, 'ok');
      assert.equal(w.controller?.readiness().ready, true);
      // The mirror now carries one SYN in a hundred (an ACL or a session gone wrong).
      const s = w.sw('sw1');
      const mirror = s.sw.mirror;
      let n = 0;
      s.sw.mirror = (p) => {
        if (n++ % 100 === 0) mirror?.(p);
      };
      await w.advance(25_000);
      const m = w.controller?.readiness().switches[0]?.mirror;
      assert.equal(m?.state, 'collapsed', JSON.stringify(m));
      assert.equal(w.controller?.readiness().ready, false);
      recordFigures({
        fault: 'a collapsed mirror (1 SYN in 100)',
        test: 'test/mirror-health.test.ts',
        outcome: 'not ready (mirror collapsed), against the usual rate',
        figures: { 'usual SYN rate (/s)': m?.usualRate ?? 0, 'SYN rate after (/s)': m?.synRate ?? 0 },
      });
    } finally {
      await w.close();
    }
  });
});
