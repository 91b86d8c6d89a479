// A reload against what runs, in the simulated world: a VIP the new file drops while a change of
// it is pending is refused (naming the key and the change), and so is a nexthop the file drops
// while connections are left on it; a nexthop still in the switch's group stays whatever the
// file says; a refused reload changes nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FlowpinConfig } from '../controller/config.js';
import { applyReload } from '../controller/reload.js';
import { ConfigError } from '../lib/validate.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const VIP2 = '192.0.2.81';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];

test(
  'reload against what runs: a VIP with a change in flight, a nexthop with connections left, a member of the group',
  { timeout: 120_000 },
  async () => {
    const w = new World({
      switches: [
        {
          name: 'sw1',
          vips: [
            { address: VIP, nexthops: NH, port: 443 },
            { address: VIP2, nexthops: ['10.0.2.1', '10.0.2.2'], port: 443 },
          ],
          spares: [],
          ecmpMode: 'resilient',
          pinCapacity: 5000,
          programDelayMs: 10,
          rate: 100,
          lifetime: { kind: 'fixed', s: 600 },
        },
      ],
      latencyMs: 2,
      mirrorDelayMs: 1,
      packetIntervalMs: 1000,
      seed: 31,
      controller: { pinMode: 'on-change', settleMs: 3000, barrierTimeoutMs: 20_000, resyncIntervalS: 3600 },
    });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(8000);
      const c = w.controller;
      assert.ok(c);
      const edited = (fn: (cfg: FlowpinConfig) => void): FlowpinConfig => {
        const next = structuredClone<FlowpinConfig>(c.config);
        fn(next);
        return next;
      };
      const cm = c.changeManager('sw1');
      const drain = cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' });
      drain.catch(() => undefined);
      for (let i = 0; i < 2000 && cm.records.at(-1)?.heldAt === undefined; i++) await w.advance(1);
      const id = cm.records.at(-1)?.id as string;
      const noVip = edited((n) => n.switches[0]?.vips.splice(0, 1));
      await assert.rejects(
        w.settle(applyReload(c, noVip), 5000),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.key === 'switches[0].vips' &&
          err.message.includes(
            `VIP ${VIP} is no longer in the file, but changes of it are in flight (drain ${id} of ${NH[1] as string}, pending)`,
          ),
      );
      assert.ok(c.runtime('sw1').vips.has(VIP), 'the VIP stays');
      const rec = await w.settle(drain, 30_000);
      assert.ok('appliedAt' in rec && rec.appliedAt !== undefined);

      // The drained nexthop's connections are still tracked: its drain is in flight.
      const without = (nh: string): FlowpinConfig =>
        edited((n) => {
          const v = n.switches[0]?.vips[0];
          if (v !== undefined) v.nexthops = NH.filter((x) => x !== nh);
        });
      await assert.rejects(
        w.settle(applyReload(c, without(NH[1] as string)), 5000),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.key === 'switches[0].vips[0].nexthops' &&
          err.message.includes(
            `${NH[1] as string} is no longer in the file, but a change of it is in flight (drain ${id} of ${NH[1] as string}, applied)`,
          ),
      );
      // Out of the group by someone else's hand, with connections left on it (each lives 600 s): forgetting
      // it would drop their pins.
      w.sw('sw1').sw.groupRemove(VIP, NH[2] as string);
      await w.settle(c.periodic(), 10_000);
      assert.equal(
        c
          .runtime('sw1')
          .vips.get(VIP)
          ?.members.has(NH[2] as string),
        false,
      );
      const left = c.runtime('sw1').leftOn(VIP, NH[2] as string);
      assert.ok(left.live + left.unknown > 0, JSON.stringify(left));
      await assert.rejects(
        w.settle(applyReload(c, without(NH[2] as string)), 5000),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.key === 'switches[0].vips[0].nexthops' &&
          /10\.0\.1\.3 is no longer in the file, but connections are left on it \(\d+ live, \d+ unknown, \d+ pinned\): forgetting it would drop their pins/.test(
            err.message,
          ),
      );
      assert.ok(
        c
          .runtime('sw1')
          .vips.get(VIP)
          ?.nexthops.has(NH[2] as string),
        'the nexthop stays',
      );

      // A member of the group stays whatever the file says; the other VIP goes.
      const lines = await w.settle(
        applyReload(
          c,
          edited((n) => {
            const sw = n.switches[0];
            if (sw === undefined) return;
            sw.vips = [
              {
                ...(sw.vips[0] as FlowpinConfig['switches'][number]['vips'][number]),
                nexthops: [NH[1] as string, NH[2] as string],
              },
            ];
          }),
        ),
        5000,
      );
      assert.deepEqual(lines, [
        `sw1: VIP ${VIP2} removed (its group is left as it is; its pins stay until they idle out)`,
        `sw1: VIP ${VIP}: nexthop ${NH[0] as string} stays: it is in the switch's group (drain and remove it to forget it)`,
      ]);
      assert.ok(
        c
          .runtime('sw1')
          .vips.get(VIP)
          ?.nexthops.has(NH[0] as string),
      );
      assert.equal(c.runtime('sw1').vips.has(VIP2), false);
      assert.deepEqual(
        w.sw('sw1').sw.vips.get(VIP2)?.group.members(),
        ['10.0.2.1', '10.0.2.2'],
        'its group left as it is',
      );
    } finally {
      await w.close();
    }
  },
);
