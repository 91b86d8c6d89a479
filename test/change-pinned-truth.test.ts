// A drain's `pinned` is what the switch held when the group change took effect, not more: pins
// found programmed only after the group write left (new flows of the change window pinned as they
// come, installs answered late) may have landed after the effect, so they count in `pinnedLate`
// and their flows stay counted, never in `pinned`. Judged by the simulated switch's own count of
// the pins toward the drained server when the change reached its forwarding. flowpin learns of the
// effect late here, as a busy controller or a slow read of forwarding makes it: every read of the
// programmed group takes 400 ms more.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord } from '../controller/changes.js';
import { changeWorld, WORLD_NH as NH, WORLD_VIP as VIP } from './helpers/world.js';

for (const seed of [3, 4, 5])
  test(
    `a drain under 3,000 new connections/s: pinned within the switch's pins at the effect (seed ${seed})`,
    { timeout: 120_000 },
    async () => {
      // The group change reaches forwarding in 50 ms, a pin in 250 ms: pins of flows seen just before the
      // write land after the change took effect, before flowpin reads it back.
      const w = changeWorld({
        seed,
        sw: { pinCapacity: 100_000, programDelayMs: 50, pinProgramDelayMs: 250, rate: 3000 },
        controller: { barrierTimeoutMs: 10_000, resyncIntervalS: 3600 },
      });
      try {
        await w.startController();
        w.openLive(400, { kind: 'fixed', s: 3600 });
        w.startTraffic();
        await w.advance(1000);
        const cm = w.controller?.changeManager('sw1');
        assert.ok(cm);
        const rec = await w.settle(
          cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }) as Promise<ChangeRecord>,
          20_000,
        );
        const g = w.sw('sw1').sw.groupChanges.find((c) => c.op === 'remove' && c.nexthop === NH[1]);
        assert.ok(
          g?.pinsToward !== undefined && g.pinsTowardOpen !== undefined,
          'the switch counted its pins',
        );
        const late = rec.pinnedLate ?? 0;
        process.stdout.write(
          `# seed ${seed}: pinned ${rec.pinned}, pinnedLate ${late}; the switch at the effect: ${g.pinsToward} pins toward ${NH[1]}, ${g.pinsTowardOpen} of open connections\n`,
        );
        assert.ok(typeof rec.pinned === 'number');
        assert.ok(
          rec.pinned <= g.pinsToward,
          `pinned ${rec.pinned} above the ${g.pinsToward} pins the switch held`,
        );
        assert.ok(
          rec.pinned + late >= g.pinsTowardOpen,
          `pinned ${rec.pinned} + late ${late} below the ${g.pinsTowardOpen} pins of open connections`,
        );
        await w.advance(2000);
        const audit = w.audit();
        assert.equal(audit.brokenProtected, 0, audit.details.join('; '));
        assert.equal(audit.uncounted, 0, audit.details.join('; '));
      } finally {
        await w.close();
      }
    },
  );
