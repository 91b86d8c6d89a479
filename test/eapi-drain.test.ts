// Drains through the whole controller and the eAPI adapter against the simulator's eAPI,
// with time moving while the change waits on the switch: servers behind a shared VLAN
// interface (resolved with certainty: pinned and kept) and behind a shared port-channel
// (ambiguous: never pinned on a guess, counted at risk as unresolved before and after).
// No connection opened before the hold with a programmed pin is reset, and every reset
// connection was counted by the change.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Bed, NH, VIP } from './helpers/bed.js';
import type { ChangeRecord, DryRunReport } from '../controller/changes.js';
import type { SimSwitch } from '../switch-sim/sim-switch.js';
import { measured } from './helpers/measured.js';

function sharedLayout(sw: SimSwitch): void {
  sw.addPortChannel('Port-Channel1', ['Ethernet21', 'Ethernet22']);
  sw.attachServer(NH[0] as string, { via: 'Vlan10', vlan: 10, l2: 'Ethernet11' });
  sw.attachServer(NH[1] as string, { via: 'Vlan10', vlan: 10, l2: 'Ethernet12' });
  sw.attachServer(NH[2] as string, { via: 'Vlan20', vlan: 20, l2: 'Port-Channel1' });
  sw.attachServer(NH[3] as string, { via: 'Vlan20', vlan: 20, l2: 'Port-Channel1' });
}

async function drainAndAudit(
  drained: string,
): Promise<{ dry: DryRunReport; rec: ChangeRecord; resets: number; uncounted: string[] }> {
  const bed = await Bed.create({
    pinMode: 'on-change',
    mirrorFinRst: true,
    virtualController: true,
    topology: sharedLayout,
    connectionsPerSecond: 10,
  });
  try {
    await bed.run(120);
    const cm = bed.controller?.changeManager('sw1');
    assert.ok(cm);
    const dry = (await bed.during(cm.drain(VIP, drained, { dryRun: true }))) as DryRunReport;
    const rec = (await bed.during(cm.drain(VIP, drained, { maxAtRisk: 'unbounded' }))) as ChangeRecord;
    // Applied, and tracked until its pins are gone (at once where there are none).
    assert.ok(rec.phase === 'applied' || rec.phase === 'drained', rec.phase);
    assert.ok(!bed.sim.sw.vips.get(VIP)?.group.members().includes(drained));
    await bed.drainTraffic();
    const resets = bed.resets;
    assert.equal(resets.length, bed.traffic.counters.reset);
    const uncounted = resets
      .filter((r) => !bed.counted.has(`${r.src}|${r.sport}|${r.dst}|${r.dport}`))
      .map((r) => JSON.stringify(r));
    return { dry, rec, resets: resets.length, uncounted };
  } finally {
    await bed.close();
  }
}

describe(
  'drains through the controller and the eAPI adapter, servers behind shared interfaces',
  { timeout: 240_000 },
  () => {
    test('a server behind a shared VLAN interface: its flows resolve through ARP and MAC, are pinned, and none breaks', async () => {
      const r = await drainAndAudit(NH[0] as string);
      assert.ok(measured(r.rec.pinned) > 50, `${measured(r.rec.pinned)} pinned`);
      assert.deepEqual(r.uncounted, []);
      assert.ok(
        r.resets <= measured(r.rec.windowFlows),
        `${r.resets} resets, ${measured(r.rec.windowFlows)} window flows`,
      );
    });

    test('a server behind a shared port-channel: ambiguous, nothing pinned on a guess, every reset counted as unresolved', async () => {
      const r = await drainAndAudit(NH[2] as string);
      assert.ok(
        r.dry.atRiskBy.unresolved > 50,
        `the dry run says ${r.dry.atRiskBy.unresolved} flows cannot be resolved`,
      );
      assert.equal(measured(r.rec.pinned), 0);
      assert.ok(r.rec.atRiskBy.unresolved > 50);
      assert.ok(r.resets > 0, "the drained server's connections move: they could not be protected");
      assert.deepEqual(r.uncounted, [], 'every reset was counted');
    });
  },
);
