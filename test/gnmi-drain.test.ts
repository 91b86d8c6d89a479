// Drain and add under live traffic through the gNMI adapter against the simulator's gNMI
// target (pins as OpenConfig policy-forwarding rules, group changes as static-route
// next-hops, idle aging by the controller from matched-pkts): zero resets of the
// connections flowpin protects, with and without a programming delay on the switch (time
// moves while a change waits on the switch; what breaks was opened in a change window and
// is counted). gNMI
// cannot tell which server a flow takes: the switch mirrors the servers' SYN-ACKs as well
// (ERSPAN II with the port index, over GRE-in-UDP), and flowpin learns each flow's server from
// them (resolution: observe), with the server MACs read from the target's OpenConfig
// neighbour state.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Bed, FIFTH, NH, VIP } from './helpers/bed.js';
import type { ChangeRecord } from '../controller/changes.js';
import { measured } from './helpers/measured.js';

describe('drain and add under traffic through the gNMI adapter', () => {
  for (const programDelayMs of [0, 300]) {
    test(`zero resets (programming delay ${programDelayMs} ms)`, { timeout: 240_000 }, async () => {
      const bed = await Bed.create({
        pinMode: 'on-change',
        mirrorFinRst: true,
        adapter: 'gnmi',
        replies: 'erspan2',
        programDelayMs,
        virtualController: true,
      });
      try {
        const adapter = bed.controller?.runtimes.get('sw1')?.adapter;
        assert.equal(adapter?.kind, 'gnmi');
        await bed.run(150);
        const cm = bed.controller?.changeManager('sw1');
        assert.ok(cm);
        const drain = (await bed.during(
          cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
        )) as ChangeRecord;
        assert.equal(drain.phase, 'applied');
        assert.ok(measured(drain.pinned) > 100, `only ${measured(drain.pinned)} flows pinned for the drain`);
        assert.deepEqual(bed.sim.sw.vips.get(VIP)?.group.members(), [NH[0], NH[2], NH[3]]);
        // The pins are OpenConfig rules on the switch (some of their flows may have ended since).
        assert.ok(
          bed.sim.sw.pins.all().filter((e) => e.source === 'openconfig' && e.nexthop === NH[1]).length >
            measured(drain.pinned) / 2,
        );
        await bed.run(120);
        const add = (await bed.during(cm.add(VIP, FIFTH, { maxAtRisk: 'unbounded' }))) as ChangeRecord;
        assert.equal(add.phase, 'complete');
        assert.deepEqual(
          new Set(bed.sim.sw.vips.get(VIP)?.group.members()),
          new Set([NH[0], NH[2], NH[3], FIFTH]),
        );
        await bed.drainTraffic();
        const c = bed.traffic.counters;
        // Time moves during the changes: connections opened in a change window may break, and
        // are counted; none opened before a change's hold does.
        const changesEnd = (add.appliedAt ?? 0) + 60_000;
        const counted =
          measured(drain.windowFlows) +
          measured(add.windowFlows) +
          measured(drain.atRisk) +
          measured(add.atRisk);
        assert.ok(
          bed.resets.filter((r) => r.at <= changesEnd).length <= counted,
          `${c.reset} connections reset, ${counted} counted (window ${measured(drain.windowFlows)} + ${measured(add.windowFlows)}, at risk ${JSON.stringify(drain.atRiskBy)} ${JSON.stringify(add.atRiskBy)})`,
        );
        // Every reset, until the last connection ended, was counted by one of the changes: a
        // pin is never lost later either (a Set whose reply was lost, a listing older than a
        // write, a flow held by two rules: see gnmi-adapter.test.ts).
        const uncounted = bed.resets.filter(
          (r) => !bed.counted.has(`${r.src}|${r.sport}|${r.dst}|${r.dport}`),
        );
        assert.deepEqual(uncounted, [], 'every reset connection was counted by a change');
        for (const r of bed.resets.filter((x) => x.at <= changesEnd))
          assert.ok(
            r.openedAt >= Math.min(drain.heldAt ?? Infinity, add.heldAt ?? Infinity),
            `a connection opened before the hold was reset: ${JSON.stringify(r)}`,
          );
        assert.equal(c.closedCleanly + c.reset, c.opened);
        assert.ok(c.opened > 2500, `only ${c.opened} connections ran`);
        // Idle pins are aged out by the controller from the counters: none is left once traffic ended.
        await bed.during(bed.controller?.periodic() ?? Promise.resolve());
        await bed.run(700, 5000);
        const left = bed.sim.sw.pins.all().filter((e) => e.source === 'openconfig').length;
        assert.equal(left, 0, `${left} rules left after every connection ended`);
      } finally {
        await bed.close();
      }
    });
  }
});
