// A drain programs the pins of the flows it knows of at its start before its hold, not during it:
// when the record says held, every pin of the connections open on the nexthop before the call is
// programmed on the switch, so the hold waits only for the flows seen since.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord } from '../controller/changes.js';
import { idOfKey } from '../controller/flow-spec.js';
import { QUIET_NH, QUIET_VIP, quietWorld } from './helpers/quiet-world.js';

test(
  'a drain holds only once the pins of the flows known at its start are programmed',
  { timeout: 60_000 },
  async () => {
    const w = quietWorld(23);
    try {
      await w.startController();
      w.openLive(200, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(2000);
      const rt = w.controller?.runtime('sw1');
      const cm = w.controller?.changeManager('sw1');
      assert.ok(rt && cm);
      const nh = QUIET_NH[1] as string;
      const known = rt.flowsOn(QUIET_VIP, nh).map(idOfKey);
      assert.ok(known.length > 20, `flows open on ${nh} before the drain (${known.length})`);
      const call = cm.drain(QUIET_VIP, nh, { maxAtRisk: 'unbounded' }) as Promise<ChangeRecord>;
      call.catch(() => undefined);
      // Step by step until the record says held, then look at the switch at once.
      let rec: ChangeRecord | undefined;
      for (let i = 0; i < 10_000 && rec?.heldAt === undefined; i++) {
        await w.advance(1);
        rec = cm.active().find((r) => r.kind === 'drain' && r.nexthop === nh);
      }
      assert.ok(rec?.heldAt !== undefined, 'the drain reached its hold');
      const unprogrammed = known.filter(
        (id) => rt.reconciler.desired.has(id) && !rt.reconciler.isProgrammed(id, nh),
      );
      assert.deepEqual(unprogrammed, [], 'every pin of a flow known at the call is programmed at the hold');
      const done = await w.settle(call, 30_000);
      assert.ok(done.appliedAt !== undefined, 'the drain applied');
    } finally {
      await w.close();
    }
  },
);
