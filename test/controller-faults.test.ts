// Faults toward the switch: eAPI slow, answering errors, then unreachable for a while. The
// controller retries, reports degraded readiness while it cannot write, and recovers with
// every pin in place; a drain and an addition afterwards still reset nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bed, FIFTH, NH, VIP } from './helpers/bed.js';
import type { ChangeRecord } from '../controller/changes.js';
import { valueOf } from '../controller/metrics.js';

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('eAPI slow, erroring and unreachable: degraded, then recovered without losing pins', async () => {
  const bed = await Bed.create({ pinMode: 'always', mirrorFinRst: true });
  const c = bed.controller;
  assert.ok(c);
  const eapi = bed.sim.eapi;
  assert.ok(eapi);
  const pinsMatch = (): boolean => {
    const desired = [...c.runtime('sw1').reconciler.desired.values()];
    return (
      desired.length > 0 &&
      desired.every(
        (p) =>
          bed.sim.sw.pins.get(
            `fp-${p.flow.src.replace(/\./g, '_')}-${p.flow.sport}-${p.flow.dst.replace(/\./g, '_')}-${p.flow.dport}`,
          )?.status === 'programmed',
      )
    );
  };
  try {
    await bed.run(60);
    assert.ok(c.readiness().ready);
    assert.ok(pinsMatch(), 'every wanted pin is on the switch');

    // Slow: 30 ms per request. Work continues, just later.
    eapi.faults.set({ latencyMs: 30 });
    await bed.run(20);
    assert.ok(c.readiness().ready);
    assert.ok(pinsMatch());

    // Errors: the next requests fail; the controller notices, retries and recovers.
    eapi.faults.set({ latencyMs: 0, failNext: 4 });
    bed.clock.advance(2000);
    let degraded: ReturnType<typeof c.readiness> | undefined;
    await waitFor(() => {
      const r = c.readiness();
      if (!r.ready) degraded = r;
      return !r.ready;
    }, 'degraded readiness');
    assert.match(degraded?.switches[0]?.lastError ?? '', /Internal error \(injected fault\)/);
    await bed.settle();
    assert.ok(c.readiness().ready, 'ready again after the errors');
    assert.ok(
      (await valueOf(c.metrics.reconcileFailures, { switch: 'sw1', error: 'SwitchCommandError' })) +
        (await valueOf(c.metrics.resolved, { switch: 'sw1', result: 'error' })) >
        0,
    );

    // Unreachable: every connection dropped for 15 simulated seconds of traffic.
    eapi.faults.set({ dropRate: 1 });
    for (let i = 0; i < 15; i++) {
      bed.clock.advance(1000);
      await new Promise((r) => setTimeout(r, 20));
    }
    const down = c.readiness();
    assert.equal(down.ready, false);
    assert.match(
      down.switches[0]?.lastError ?? '',
      /eAPI request .* failed|socket hang up|other side closed/,
    );
    eapi.faults.clear();
    await bed.settle();
    await c.periodic();
    assert.ok(c.readiness().ready, 'recovered');
    assert.ok(pinsMatch(), 'no pin lost, the queued flows pinned');
    assert.equal(c.runtime('sw1').reconciler.failed.size, 0);

    // And the point of it all still holds.
    const cm = c.changeManager('sw1');
    assert.equal(
      ((await cm.drain(VIP, NH[2] as string, { maxAtRisk: 'unbounded' })) as ChangeRecord).phase,
      'applied',
    );
    await bed.run(60);
    assert.equal(((await cm.add(VIP, FIFTH, { maxAtRisk: 'unbounded' })) as ChangeRecord).phase, 'complete');
    await bed.drainTraffic();
    assert.equal(bed.traffic.counters.reset, 0);
  } finally {
    await bed.close();
  }
});

test('a change whose barrier cannot complete fails cleanly and changes nothing', async () => {
  const bed = await Bed.create({ pinMode: 'on-change', mirrorFinRst: true });
  const c = bed.controller;
  assert.ok(c);
  try {
    await bed.run(30);
    bed.sim.eapi?.faults.set({ dropRate: 1 });
    const cm = c.changeManager('sw1');
    // Pins for the drain cannot be written, so the drain must not be applied.
    await assert.rejects(
      cm.drain(VIP, NH[0] as string, { maxAtRisk: 'unbounded' }),
      (e: Error & { code?: string }) => e.code === 'switch-unavailable' && /not applied/.test(e.message),
    );
    assert.deepEqual(bed.sim.sw.vips.get(VIP)?.group.members(), NH, 'group unchanged');
    const rec = cm.records[cm.records.length - 1];
    assert.equal(rec?.phase, 'failed');
    bed.sim.eapi?.faults.clear();
    await bed.settle();
    assert.equal(
      ((await cm.drain(VIP, NH[0] as string, { maxAtRisk: 'unbounded' })) as ChangeRecord).phase,
      'applied',
      'a retry succeeds',
    );
  } finally {
    await bed.close();
  }
});
