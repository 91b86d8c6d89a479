// Before the group change, the pins a change relies on are read back from the switch, not
// taken from the controller's cached view: a pin the switch no longer has programmed (its
// native idle timeout fired; the switch reloaded its table) is installed again before the
// change takes effect, and `pinned` counts what the switch reports programmed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord } from '../controller/changes.js';
import type { FlowpinConfig } from '../controller/config.js';
import { World } from '../cli/scenario/world.js';
import { changeWorld, WORLD_NH as NH, WORLD_VIP as VIP } from './helpers/world.js';
import { measured } from './helpers/measured.js';

/** The test bed with a short pin idle timeout (the switch's native DirectFlow `timeout idle`). */
class ShortIdleWorld extends World {
  override config(): FlowpinConfig {
    return { ...super.config(), pinIdleTimeoutS: 2 };
  }
}

test(
  'a drain installs again the pins the switch has idled out of connections still open, and counts as pinned only what is programmed',
  { timeout: 60_000 },
  async () => {
    // FIN and RST mirrored both ways: a connection with no FIN seen is open, however quiet; its idled-out pin
    // is wanted again.
    const w = new ShortIdleWorld({
      switches: [
        {
          name: 'sw1',
          vips: [{ address: VIP, nexthops: NH, port: 443 }],
          spares: [],
          ecmpMode: 'resilient',
          pinCapacity: 100_000,
          programDelayMs: 5,
          pinProgramDelayMs: 5,
          rate: 20,
          lifetime: { kind: 'fixed', s: 3600 },
          mirrorFinRst: true,
          mirrorReplies: true,
          mirrorReplyFinRst: true,
        },
      ],
      // Connections send a packet every 1.5-4.5 s: some pins idle out between packets, and the connection
      // goes on.
      latencyMs: 5,
      mirrorDelayMs: 1,
      packetIntervalMs: 3000,
      seed: 17,
      controller: {
        pinMode: 'always',
        settleMs: 20,
        barrierTimeoutMs: 5000,
        store: 'memory',
        resyncIntervalS: 3600,
      },
    });
    try {
      await w.startController();
      w.openLive(400, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(8000);
      const s = w.sw('sw1').sw;
      const rt = w.controller?.runtime('sw1');
      assert.ok(rt);
      const onNh = rt.flowsOn(VIP, NH[1] as string).length;
      const programmedOnSwitch = s.pins
        .all()
        .filter((e) => e.status === 'programmed' && e.nexthop === NH[1]).length;
      assert.ok(
        programmedOnSwitch < onNh,
        `some pins idled out before the drain (${programmedOnSwitch} of ${onNh} programmed)`,
      );
      const rec = await w.settle(
        rt &&
          (w.controller
            ?.changeManager('sw1')
            .drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }) as Promise<ChangeRecord>),
        10_000,
      );
      assert.equal(rec.phase, 'applied');
      // `pinned` counts pins the switch reported programmed: the barrier read them back and
      // installed again the ones that had idled out, so they are on the switch as the change takes effect.
      const programmedNow = s.pins
        .all()
        .filter((e) => e.status === 'programmed' && e.nexthop === NH[1]).length;
      assert.ok(
        measured(rec.pinned) >= onNh - 5,
        `record: pinned ${measured(rec.pinned)} of ${onNh} flows on the nexthop`,
      );
      assert.ok(
        programmedNow >= measured(rec.pinned) - 5,
        `record: pinned ${measured(rec.pinned)}; the switch has ${programmedNow} programmed`,
      );
    } finally {
      await w.close();
    }
  },
);

test(
  'a drain right after the switch lost its pins (table reloaded, API up) reads them back and installs them again',
  { timeout: 60_000 },
  async () => {
    const w = changeWorld({
      seed: 19,
      sw: { pinCapacity: 100_000, pinProgramDelayMs: 5, rate: 20 },
      controller: { pinMode: 'always', barrierTimeoutMs: 5000, resyncIntervalS: 30 },
    });
    try {
      await w.startController();
      w.openLive(400, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(3000);
      const s = w.sw('sw1').sw;
      // The switch's flow table is reloaded (an agent restart): its pins are gone; its API answers all along.
      for (const e of s.pins.all()) s.pins.remove(e.name);
      const rec = await w.settle(
        w.controller
          ?.changeManager('sw1')
          .drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }) as Promise<ChangeRecord>,
        10_000,
      );
      assert.equal(rec.phase, 'applied');
      await w.advance(2500);
      const a = w.audit();
      assert.equal(
        a.uncounted,
        0,
        `${a.broken} resets, ${a.uncounted} uncounted (record: pinned ${measured(rec.pinned)}, atRisk ${measured(rec.atRisk)}, windowFlows ${measured(rec.windowFlows)}); ${a.details.slice(0, 2).join('\n')}`,
      );
    } finally {
      await w.close();
    }
  },
);
