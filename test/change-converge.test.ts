// Convergence after the barrier where the switch programs a pin in 1.5 s while new flows keep
// coming: a round cannot end before its flows' pins are programmed, and those that come
// meanwhile outnumber the ones it sees programmed. The change does not wait out the whole
// convergence time for it (simulated time on the scenario World's clock), and keeps its promise.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord } from '../controller/changes.js';
import { changeWorld, WORLD_NH as NH, WORLD_VIP as VIP } from './helpers/world.js';

const PIN_MS = 1500;

test(
  'convergence gives up a round the pin programming lag keeps from ending',
  { timeout: 120_000 },
  async () => {
    const w = changeWorld({
      seed: 29,
      sw: { pinCapacity: 100_000, pinProgramDelayMs: PIN_MS, rate: 400 },
      controller: { barrierTimeoutMs: 10_000, resyncIntervalS: 3600 },
    });
    try {
      await w.startController();
      w.openLive(100, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(1000);
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      const rec = await w.settle(
        cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }) as Promise<ChangeRecord>,
        20_000,
      );
      assert.ok(rec.appliedAt !== undefined && rec.heldAt !== undefined && rec.programmedAt !== undefined);
      const barrier = rec.programmedAt - rec.heldAt;
      process.stdout.write(`# hold to programmed: ${barrier} ms (pins take ${PIN_MS} ms)\n`);
      // The pins up to the mark take PIN_MS; a convergence round that waited its whole second
      // for flows it could not see programmed would come on top.
      assert.ok(barrier < PIN_MS + 700, `hold to programmed ${barrier} ms`);
      await w.advance(3000);
      const audit = w.audit();
      assert.equal(audit.brokenProtected, 0, audit.details.join('; '));
      assert.equal(audit.uncounted, 0, audit.details.join('; '));
    } finally {
      await w.close();
    }
  },
);
