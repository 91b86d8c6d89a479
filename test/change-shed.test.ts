// SYNs shed (resolve queue full) before a change are counted at risk by the dry run and by
// the change: flowpin never learned where those flows go, and says so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord, DryRunReport } from '../controller/changes.js';
import { World } from '../cli/scenario/world.js';
import { measured } from './helpers/measured.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

/**
 * One VIP over four members, 400 new connections a second, with the controller's look-up queue and flow table
 * bounded as given.
 */
function world(seed: number, bounds: { resolveQueue?: number; maxFlows?: number }): World {
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: VIP, nexthops: NH, port: 443 }],
        spares: [],
        ecmpMode: 'resilient',
        pinCapacity: 100_000,
        programDelayMs: 5,
        pinProgramDelayMs: 20,
        rate: 400,
        lifetime: { kind: 'fixed', s: 3600 },
      },
    ],
    latencyMs: 5,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed,
    controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 5000, store: 'memory', ...bounds },
  });
}

test(
  'SYNs shed before a drain are counted at risk by the dry run and the change',
  { timeout: 60_000 },
  async () => {
    const w = world(23, { resolveQueue: 20 });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(1000);
      const a = w.adapters.get('sw1');
      assert.ok(a);
      // The switch's API does not answer for a second: look-ups back up, the queue fills, SYNs are shed.
      a.faults.downUntil = w.now + 1000;
      await w.advance(3000);
      const rt = w.controller?.runtime('sw1');
      const shed = rt?.shedOn(VIP).length ?? 0;
      assert.ok(shed > 100, `${shed} SYNs shed`);
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      const dry = (await w.settle(cm.drain(VIP, NH[1] as string, { dryRun: true }), 5000)) as DryRunReport;
      const rec = (await w.settle(
        cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
        10_000,
      )) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      w.stopTraffic();
      await w.advance(2500);
      const audit = w.audit();
      assert.ok(
        dry.atRiskBy.shed > 0,
        `${shed} SYNs shed on the VIP, dry run: ${JSON.stringify(dry.atRiskBy)}`,
      );
      assert.ok(
        measured(rec.atRisk) + measured(rec.windowFlows) >= audit.broken,
        `${audit.broken} resets (${audit.uncounted} uncounted), record counts atRisk ${JSON.stringify(rec.atRiskBy)}, windowFlows ${measured(rec.windowFlows)}`,
      );
    } finally {
      await w.close();
    }
  },
);

test(
  'flows flowpin can no longer name (shed past its bound, pushed out of a full flow table) are still counted at risk',
  { timeout: 60_000 },
  async () => {
    const w = world(29, { resolveQueue: 20, maxFlows: 150 });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(1000);
      const a = w.adapters.get('sw1');
      assert.ok(a);
      a.faults.downUntil = w.now + 1000;
      await w.advance(3000);
      const rt = w.controller?.runtime('sw1');
      assert.ok(rt);
      const named = rt.shedOn(VIP).length;
      const forgotten = rt.shedForgottenOn(VIP, NH[1]);
      assert.ok(named <= 150, `${named} shed flows kept by name, bounded by maxFlows`);
      assert.ok(
        forgotten > 100,
        `${forgotten} flows flowpin can no longer name that a drain of ${NH[1]} may move`,
      );
      assert.ok(
        rt.shedForgottenOn(VIP) > forgotten,
        'those known on other members are left to the changes that move them',
      );
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      const dry = (await w.settle(cm.drain(VIP, NH[1] as string, { dryRun: true }), 5000)) as DryRunReport;
      assert.ok(
        dry.atRiskBy.shed >= named + forgotten,
        `dry run ${JSON.stringify(dry.atRiskBy)}, named ${named}, forgotten ${forgotten}`,
      );
      const rec = (await w.settle(
        cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
        10_000,
      )) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      w.stopTraffic();
      await w.advance(2500);
      const audit = w.audit();
      assert.ok(audit.broken > 0, 'the drain moved connections');
      assert.ok(rec.atRiskBy.shed >= forgotten, `record ${JSON.stringify(rec.atRiskBy)}`);
      assert.ok(
        measured(rec.atRisk) + measured(rec.windowFlows) >= audit.broken,
        `${audit.broken} resets, record counts atRisk ${measured(rec.atRisk)} ${JSON.stringify(rec.atRiskBy)}, windowFlows ${measured(rec.windowFlows)}`,
      );
    } finally {
      await w.close();
    }
  },
);

test(
  'flows pushed out of a full flow table are counted at risk by the next change',
  { timeout: 60_000 },
  async () => {
    const w = world(31, { maxFlows: 150 });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(2000);
      const rt = w.controller?.runtime('sw1');
      assert.ok(rt);
      assert.equal(rt.shedOn(VIP).length, 0, 'nothing shed: every SYN was looked up');
      const forgotten = rt.shedForgottenOn(VIP);
      assert.ok(forgotten > 300, `${forgotten} flows pushed out of the table`);
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      const rec = (await w.settle(
        cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
        10_000,
      )) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      w.stopTraffic();
      await w.advance(2500);
      const audit = w.audit();
      assert.ok(audit.broken > 50, `the drain moved connections flowpin no longer tracked (${audit.broken})`);
      assert.ok(
        measured(rec.atRisk) + measured(rec.windowFlows) >= audit.broken,
        `${audit.broken} resets, record counts atRisk ${measured(rec.atRisk)} ${JSON.stringify(rec.atRiskBy)}, windowFlows ${measured(rec.windowFlows)}`,
      );
    } finally {
      await w.close();
    }
  },
);
