// Readiness tells the truth about what flowpin can keep: a pin table with no free entry
// cannot protect the next connection, and state that cannot be written is lost at the next
// restart; either makes flowpin not ready, with the reason. The first failed durable write
// of any kind (the flow journal too, while the change log still writes) turns it red.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileStateStore } from '../controller/state-store.js';
import { World, type WorldOptions } from '../cli/scenario/world.js';
import { recordFigures } from '../reliability/figures.js';

const VIP = '192.0.2.80';

function world(over: Partial<WorldOptions['controller']> & { pinCapacity?: number } = {}): World {
  const { pinCapacity, ...controller } = over;
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: VIP, nexthops: ['10.0.1.1', '10.0.1.2'], port: 443 }],
        spares: [],
        ecmpMode: 'resilient',
        pinCapacity: pinCapacity ?? 5000,
        programDelayMs: 0,
        rate: 50,
        lifetime: { kind: 'fixed', s: 600 },
      },
    ],
    latencyMs: 1,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed: 9,
    controller: { pinMode: 'on-change', settleMs: 5, barrierTimeoutMs: 5000, ...controller },
  });
}

test(
  'a full pin table makes the switch not ready; room again, ready again',
  { timeout: 60_000 },
  async () => {
    const w = world({ resyncIntervalS: 3600 });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(1000);
      assert.equal(w.controller?.readiness().ready, true);
      // Other owners take the switch's whole table: the next pin could not be programmed.
      const table = w.sw('sw1').sw.pins;
      table.reserved = table.capacity;
      await w.settle(w.controller?.periodic() ?? Promise.resolve(), 5000);
      const r = w.controller?.readiness();
      assert.equal(r?.switches[0]?.pins.table, 'full', JSON.stringify(r?.switches[0]?.pins));
      assert.equal(r?.ready, false);
      table.reserved = 0;
      await w.settle(w.controller?.periodic() ?? Promise.resolve(), 5000);
      assert.equal(w.controller?.readiness().switches[0]?.pins.table, 'ok');
      assert.equal(w.controller?.readiness().ready, true);
      recordFigures({
        fault: 'a full pin table (other owners took it)',
        test: 'test/readiness.test.ts',
        outcome: 'not ready while full (pins.table full, with the reason); ready again with room',
        figures: { 'pin table capacity': table.capacity },
      });
    } finally {
      await w.close();
    }
  },
);

test(
  'a state file that cannot be written makes flowpin not ready, naming it',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ready-'));
    try {
      const w = world({ store: () => new FileStateStore(path.join(dir, 'missing', 'state')) });
      try {
        await w.startController();
        w.startTraffic();
        await w.advance(500);
        const r = w.controller?.readiness();
        assert.equal(r?.ready, false);
        assert.match(
          r?.stateError ?? '',
          /cannot write the (state|flow journal|change log|flow snapshot) \(.*missing\/state/,
        );
        assert.ok(r?.reasons.includes(r.stateError ?? ''), 'listed among the reasons');
        recordFigures({
          fault: 'an unwritable state file',
          test: 'test/readiness.test.ts',
          outcome:
            'not ready from the start, stateError and reasons name the file; ready with a writable one',
        });
      } finally {
        await w.close();
      }
      const ok = world({ store: () => new FileStateStore(path.join(dir, 'state')) });
      try {
        await ok.startController();
        ok.startTraffic();
        await ok.advance(500);
        assert.equal(ok.controller?.readiness().stateError, null);
        assert.equal(ok.controller?.readiness().ready, true);
      } finally {
        await ok.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'the first failed write of the flow journal makes flowpin not ready, though the change log still writes',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ready-'));
    try {
      const file = path.join(dir, 'state');
      // No periodic snapshot: the journal is the only flow write for the test's duration.
      const w = world({ store: () => new FileStateStore(file), persistIntervalS: 3600 });
      try {
        await w.startController();
        await w.advance(200);
        assert.equal(w.controller?.readiness().ready, true);
        // The journal cannot be opened for appending (a directory stands where it goes): the next group
        // commit fails.
        mkdirSync(`${file}.journal`);
        w.startTraffic();
        // The first SYN's group commit is due 20 ms after it (simulated time; 50 SYN/s).
        for (let i = 0; i < 100 && w.controller?.readiness().stateError === null; i++) await w.advance(10);
        const r = w.controller?.readiness();
        assert.equal(r?.ready, false, JSON.stringify(r?.reasons));
        assert.match(r?.stateError ?? '', /cannot write the flow journal/);
        assert.ok(r?.reasons.includes(r.stateError ?? ''), 'listed among the reasons');
        // The change log is fine, and a good write of it does not make the journal's failure go away
        // (no SYN comes meanwhile: no new journal write could set the failure again).
        w.stopTraffic();
        await w.advance(100);
        await w.settle(w.controller?.persistChanges() ?? Promise.resolve(), 5000);
        assert.equal(w.controller?.readiness().ready, false);
      } finally {
        await w.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
