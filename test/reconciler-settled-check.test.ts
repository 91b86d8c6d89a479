// The barrier's settled check (Reconciler.settledCheck): cheap to repeat, it passes over the pins
// it found settled, and is still never true while a pin it passed has gone back to not
// programmed (removed on the switch, or wanted toward another nexthop since).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../controller/clock.js';
import { controllerMetrics } from '../controller/metrics.js';
import { Reconciler } from '../controller/reconciler.js';
import { flowId } from '../switch-adapters/contract.js';
import { SimAdapter } from '../switch-adapters/sim/adapter.js';
import { pinName } from '../lib/pin-name.js';
import { NEXTHOPS, testSwitch, VIP } from './helpers/sim.js';

async function eventually(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test(
  'settledCheck: false until every pin is programmed, and false again when a pin it passed is not',
  { timeout: 30_000 },
  async () => {
    const { sw } = testSwitch({ pinCapacity: 1000 });
    const r = new Reconciler({
      switchName: 'sw1',
      adapter: new SimAdapter(sw),
      metrics: controllerMetrics(),
      idleTimeoutS: 300,
      clock: systemClock,
    });
    try {
      const flows = Array.from({ length: 40 }, (_, i) => ({
        family: 4 as const,
        src: `10.100.1.${i + 1}`,
        dst: VIP,
        sport: 41000 + i,
        dport: 443,
      }));
      for (const flow of flows) r.want({ flow, nexthop: NEXTHOPS[0] as string, reason: 'test', since: 0 });
      const ids = flows.map(flowId);
      const check = r.settledCheck(ids);
      assert.equal(check(), false, 'nothing is programmed yet');
      await eventually(check, 'every pin programmed');
      assert.equal(r.settled(ids), true);

      // A pin the check passed is removed on the switch behind the controller's back; a read-back sees it.
      const gone = flows[3] as (typeof flows)[number];
      assert.ok(sw.pins.remove(pinName(gone)));
      await r.verify([flowId(gone)]);
      assert.equal(r.settled(ids), false);
      assert.equal(check(), false, 'a pin passed before and gone now is not settled');
      await eventually(check, 'the pin installed again');

      // A pin passed before is wanted toward another nexthop: not settled until that one is programmed.
      const moved = flows[7] as (typeof flows)[number];
      r.want({ flow: moved, nexthop: NEXTHOPS[1] as string, reason: 'test', since: 0 });
      assert.equal(check(), false, 'wanted elsewhere since: not settled');
      await eventually(check, 'the pin programmed toward its new nexthop');
      assert.equal(r.isProgrammed(flowId(moved), NEXTHOPS[1]), true);

      // A pin no longer wanted is settled (dropped or unwanted), as settled() says.
      r.unwant(flows[0] as (typeof flows)[number]);
      assert.equal(check(), r.settled(ids));
    } finally {
      r.stop();
    }
  },
);
