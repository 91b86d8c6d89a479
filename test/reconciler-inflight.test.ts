// A pin unwanted while its install is in flight: the switch answers for a pin the controller
// no longer wants, and the next round removes it (never left on the switch until a resync).
// Also a pin wanted toward another nexthop meanwhile: the switch ends with the new one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quietWorld } from './helpers/quiet-world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

test(
  'a pin unwanted or rewanted while its install is in flight: the switch ends with what is wanted',
  { timeout: 60_000 },
  async () => {
    const w = quietWorld(5);
    try {
      await w.startController();
      const r = w.controller?.runtime('sw1').reconciler;
      assert.ok(r);
      const sw = w.sw('sw1').sw;
      const flow = (i: number) => ({
        family: 4 as const,
        src: `10.100.0.${i}`,
        dst: VIP,
        sport: 40000 + i,
        dport: 443,
      });
      const on = (i: number): string[] =>
        sw.pins
          .all()
          .filter((e) => e.match.src === `10.100.0.${i}` && e.status === 'programmed')
          .map((e) => e.nexthop ?? '');
      r.want({ flow: flow(1), nexthop: NH[0] as string, reason: 'test', since: w.now });
      r.want({ flow: flow(2), nexthop: NH[0] as string, reason: 'test', since: w.now });
      await w.advance(5); // the install is on its way (20 ms round trip)
      r.unwant(flow(1));
      r.want({ flow: flow(2), nexthop: NH[1] as string, reason: 'test', since: w.now });
      await w.advance(500);
      assert.deepEqual(on(1), [], 'the pin unwanted in flight is removed');
      assert.deepEqual(on(2), [NH[1]], 'the pin rewanted in flight ends toward its new nexthop');
    } finally {
      await w.close();
    }
  },
);
