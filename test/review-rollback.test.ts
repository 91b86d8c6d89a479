// Review: a group write that times out (its outcome unknown) fails the change and "rolls
// back" by setting the old group as desired; but the round still writing the new group
// clears the VIP's touched mark when its write completes, so the rollback is never written.
// The switch ends without the nexthop, the change says it failed (nothing changed), and the
// drain's pins were removed: every connection on the nexthop breaks, uncounted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowpinError } from '../controller/errors.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

test('a group write slower than the change deadline: the change fails, and the switch is left as the change asked, unprotected', { timeout: 60_000 }, async () => {
  const w = new World({
    switches: [{
      name: 'sw1', vips: [{ address: VIP, nexthops: NH, port: 443 }], spares: [], ecmpMode: 'resilient', pinCapacity: 100_000,
      programDelayMs: 10, pinProgramDelayMs: 50, rate: 200, lifetime: { kind: 'fixed', s: 3600 },
    }],
    latencyMs: 5, mirrorDelayMs: 1, packetIntervalMs: 1000, seed: 7,
    controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 2000, store: 'memory', resyncIntervalS: 5 },
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
    await assert.rejects(w.settle(cm.drain(VIP, NH[1] as string, {}), 10_000), (err: unknown) => err instanceof FlowpinError && err.status === 503);
    const rec = cm.records.at(-1);
    assert.equal(rec?.phase, 'failed');
    assert.equal(rec?.appliedAt, undefined, 'the change reports it was not applied');
    await w.advance(12_000);
    const members = w.sw('sw1').sw.vips.get(VIP)?.group.members() ?? [];
    assert.ok(members.includes(NH[1] as string), `the change failed "not applied", yet the switch group is ${JSON.stringify(members)}`);
    const audit = w.audit();
    assert.equal(audit.uncounted, 0, `${audit.broken} resets, ${audit.uncounted} uncounted; ${audit.details.slice(0, 3).join('\n')}`);
  } finally {
    await w.close();
  }
});
