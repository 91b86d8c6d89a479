// A group write slower than the change's deadline: its outcome is unknown until the switch
// answers, so nothing is undone meanwhile (a write landing after a rollback would move
// flows whose pins were removed). The change waits for the answer and is applied, late,
// with its pins in place; nothing breaks uncounted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord } from '../controller/changes.js';
import { changeWorld, WORLD_NH as NH, WORLD_VIP as VIP } from './helpers/world.js';

test(
  'a group write slower than the change deadline is waited for, never rolled back blind',
  { timeout: 60_000 },
  async () => {
    const w = changeWorld({
      seed: 7,
      sw: { pinCapacity: 100_000, programDelayMs: 10, pinProgramDelayMs: 50, rate: 200 },
      controller: { barrierTimeoutMs: 2000, resyncIntervalS: 5 },
    });
    try {
      await w.startController();
      w.openLive(400, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(1500);
      const a = w.adapters.get('sw1');
      assert.ok(a);
      // The switch takes 6 s to answer the group write (a latency spike on that one call).
      const orig = a.removeGroupMember.bind(a);
      a.removeGroupMember = (vip: string, nh: string) => {
        a.faults.spikeUntil = w.now + 0.5;
        a.faults.spikeMs = 6000;
        return orig(vip, nh);
      };
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      const rec = (await w.settle(
        cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
        20_000,
      )) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      assert.ok(
        (rec.appliedAt as number) - (rec.sentAt as number) >= 5000,
        'applied when the slow write was answered',
      );
      await w.advance(12_000);
      const members = w.sw('sw1').sw.vips.get(VIP)?.group.members() ?? [];
      assert.ok(!members.includes(NH[1] as string), `the switch group is ${JSON.stringify(members)}`);
      assert.ok(
        w.controller?.runtime('sw1').pinnedOn(VIP, NH[1] as string) ?? 0 > 50,
        "the drain's pins stayed",
      );
      const audit = w.audit();
      assert.equal(audit.brokenProtected, 0, audit.details.join('\n'));
      assert.equal(
        audit.uncounted,
        0,
        `${audit.broken} resets, ${audit.uncounted} uncounted; ${audit.details.slice(0, 3).join('\n')}`,
      );
    } finally {
      await w.close();
    }
  },
);
