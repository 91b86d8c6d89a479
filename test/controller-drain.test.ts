// The heart of flowpin, end to end against the simulator under live traffic: draining one
// of four nexthops and then adding a fifth breaks zero connections, in both pin modes,
// while the same traffic without flowpin breaks many; the same across a controller restart
// in the middle of a drain; and with a full pin table, no more break than the dry run said.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Bed, FIFTH, NH, VIP } from './helpers/bed.js';
import type { ChangeRecord, DryRunReport } from '../controller/changes.js';
import { measured } from './helpers/measured.js';

async function drainThenAdd(bed: Bed): Promise<{ drain: ChangeRecord; add: ChangeRecord }> {
  await bed.run(150);
  const cm = bed.controller?.changeManager('sw1');
  assert.ok(cm);
  const drain = (await cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' })) as ChangeRecord;
  assert.equal(drain.phase, 'applied');
  assert.ok(measured(drain.pinned) > 100, `only ${measured(drain.pinned)} flows pinned for the drain`);
  assert.deepEqual(bed.sim.sw.vips.get(VIP)?.group.members(), [NH[0], NH[2], NH[3]]);
  await bed.run(120);
  const add = (await cm.add(VIP, FIFTH, { maxAtRisk: 'unbounded' })) as ChangeRecord;
  assert.equal(add.phase, 'complete');
  await bed.drainTraffic();
  return { drain, add };
}

describe('drain and add against the simulator under live traffic', () => {
  test('without flowpin the same changes break many connections', async () => {
    const bed = await Bed.create({ pinMode: 'on-change', withoutFlowpin: true });
    try {
      await bed.run(150);
      bed.sim.sw.groupRemove(VIP, NH[1] as string);
      await bed.run(120);
      bed.sim.sw.groupAdd(VIP, FIFTH);
      await bed.drainTraffic();
      const c = bed.traffic.counters;
      assert.ok(c.reset > 200, `only ${c.reset} resets without flowpin`);
      assert.equal(c.opened, c.closedCleanly + c.reset);
    } finally {
      await bed.close();
    }
  });

  for (const pinMode of ['on-change', 'always'] as const) {
    test(`with flowpin (${pinMode}): zero broken connections`, async () => {
      const bed = await Bed.create({ pinMode, mirrorFinRst: true });
      try {
        const { drain } = await drainThenAdd(bed);
        const c = bed.traffic.counters;
        assert.equal(c.reset, 0, `${c.reset} connections reset`);
        assert.equal(c.closedCleanly, c.opened);
        assert.ok(c.opened > 2500, `only ${c.opened} connections ran`);
        // The drain completes once every pinned flow on the nexthop has ended and its pin aged out.
        await bed.controller?.periodic();
        const rec = bed.controller?.changeManager('sw1').records.find((r) => r.id === drain.id);
        assert.equal(rec?.phase, 'drained');
        assert.equal(rec?.remaining, 0);
        assert.equal(
          bed.sim.sw.servers.get(NH[1] as string)?.connectionCount,
          0,
          'the drained server has no connections left',
        );
      } finally {
        await bed.close();
      }
    });
  }

  test('a controller restarted in the middle of a drain resets nothing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-state-'));
    const bed = await Bed.create({
      pinMode: 'on-change',
      mirrorFinRst: true,
      stateFile: path.join(dir, 'state.json'),
    });
    try {
      await bed.run(150);
      const drain = (await bed.controller
        ?.changeManager('sw1')
        .drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' })) as ChangeRecord;
      await bed.run(30);
      await bed.stopController();
      // A new controller starts from the state file and the pins the switch kept. (SYNs that
      // arrive while no controller runs are not seen, so no simulated time passes here.)
      const c2 = await bed.startController();
      const resumed = c2.changeManager('sw1').records.find((r) => r.id === drain.id);
      assert.equal(resumed?.phase, 'applied', 'the drain is still being tracked');
      assert.ok(c2.flowTable.size > 500, `only ${c2.flowTable.size} flows restored`);
      assert.ok(
        (c2.runtime('sw1').reconciler.desired.size ?? 0) >= resumed.remaining,
        'pins on the switch adopted',
      );
      await bed.run(120);
      const add = (await c2.changeManager('sw1').add(VIP, FIFTH, { maxAtRisk: 'unbounded' })) as ChangeRecord;
      assert.equal(add.phase, 'complete');
      await bed.drainTraffic();
      assert.equal(bed.traffic.counters.reset, 0);
    } finally {
      await bed.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('table full: the dry run predicts the flows at risk and the drain breaks no more', async () => {
    const bed = await Bed.create({
      pinMode: 'on-change',
      mirrorFinRst: true,
      pinCapacity: 60,
      connectionsPerSecond: 10,
    });
    try {
      await bed.run(150);
      const cm = bed.controller?.changeManager('sw1');
      assert.ok(cm);
      const dry = (await cm.drain(VIP, NH[1] as string, { dryRun: true })) as DryRunReport;
      assert.equal(dry.dryRun, true);
      assert.equal(dry.freeEntries, 60);
      assert.ok(dry.flowsToPin > 60, `only ${dry.flowsToPin} flows to pin`);
      assert.equal(measured(dry.atRisk), dry.flowsToPin - 60);
      assert.deepEqual(bed.sim.sw.vips.get(VIP)?.group.members(), NH, 'the dry run changed nothing');
      assert.equal(bed.sim.sw.pins.size, 0);
      const drain = (await cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' })) as ChangeRecord;
      assert.equal(measured(drain.atRisk), measured(dry.atRisk));
      await bed.drainTraffic();
      const reset = bed.traffic.counters.reset;
      assert.ok(reset > 0, 'some unpinned flows broke');
      assert.ok(reset <= measured(dry.atRisk), `${reset} broke, ${measured(dry.atRisk)} predicted`);
    } finally {
      await bed.close();
    }
  });
});
