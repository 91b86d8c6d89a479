// A pin install whose reply is lost after the switch carried it out: the pins are on the
// switch, programmed, while the controller has no answer. Before a change counts them (its
// `pinned` figure at effect), they are read back: what is counted is what the switch holds,
// not what the controller happened to hear.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quietWorld } from './helpers/quiet-world.js';
import { flowId } from '../switch-adapters/contract.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

test(
  'pins whose install reply was lost are read back as programmed before they are counted',
  { timeout: 60_000 },
  async () => {
    const w = quietWorld(11);
    try {
      await w.startController();
      const r = w.controller?.runtime('sw1').reconciler;
      const a = w.adapters.get('sw1');
      assert.ok(r && a);
      const sw = w.sw('sw1').sw;
      const flows = Array.from({ length: 30 }, (_, i) => ({
        family: 4 as const,
        src: `10.100.0.${i + 1}`,
        dst: VIP,
        sport: 40000 + i,
        dport: 443,
      }));
      a.faults.lostReplyNext = 1;
      a.faults.lostReplyMs = 10_000;
      for (const f of flows) r.want({ flow: f, nexthop: NH[1] as string, reason: 'test', since: w.now });
      await w.advance(100); // carried out on the switch; the answer is lost
      assert.equal(
        sw.pins.all().filter((e) => e.status === 'programmed').length,
        30,
        'the switch holds the pins',
      );
      assert.equal(r.programmedCount(), 0, 'no answer heard yet');
      const ids = flows.map(flowId);
      const read = await w.settle(r.readBackUnanswered(ids), 5_000);
      assert.equal(read, 30, 'the unanswered pins read back');
      assert.equal(r.programmedCount(), 30, 'counted as the switch holds them');
      for (const id of ids) assert.ok(r.isProgrammed(id, NH[1]), `${id} programmed`);
      // The lost answer times out; the round fails and the next listing agrees.
      await w.advance(12_000);
      assert.equal(r.programmedCount(), 30);
      // Nothing in doubt any more: nothing read.
      assert.equal(await w.settle(r.readBackUnanswered(ids), 5_000), 0);
    } finally {
      await w.close();
    }
  },
);
