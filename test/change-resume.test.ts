// A change resumed after a kill says what it measured and what it did not: killed after the
// switch accepted its group write and before the change took effect, its change window ran
// across the kill, so no process measured it. The resumed record gives `pinned` and
// `windowFlows` as null with the reason in `resume.inferred`, in the record and through the
// API alike (a response schema that writes null as 0 would make them look measured); an
// addition resumed that way reads `complete` with the same nulls.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import type { ChangeRecord } from '../controller/changes.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
const FIFTH = '10.0.1.5';

/** One switch, 300 long-lived connections and 200 new a second; state in memory across kills. */
function world(seed: number, programDelayMs: number, settleMs: number): World {
  console.log(`world seed ${seed}`);
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: VIP, nexthops: NH, port: 443 }],
        spares: [FIFTH],
        ecmpMode: 'resilient',
        pinCapacity: 100_000,
        programDelayMs,
        pinProgramDelayMs: 20,
        rate: 200,
        lifetime: { kind: 'fixed', s: 3600 },
      },
    ],
    latencyMs: 5,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed,
    controller: { pinMode: 'on-change', settleMs, barrierTimeoutMs: 5000, store: 'memory' },
  });
}

async function warm(w: World): Promise<void> {
  await w.startController();
  w.openLive(300, { kind: 'fixed', s: 3600 });
  w.startTraffic();
  await w.advance(1500);
}

for (const kind of ['drain', 'add'] as const) {
  test(
    `${kind === 'drain' ? 'a drain' : 'an addition'} killed between its group write and its effect resumes with its window figures null, not measured-looking`,
    { timeout: 120_000 },
    async () => {
      // The group change takes 400 ms to reach forwarding: room for a kill after the switch accepted it.
      const w = world(31 + (kind === 'add' ? 1 : 0), 400, 20);
      try {
        await warm(w);
        const cm = w.controller?.changeManager('sw1');
        assert.ok(cm);
        const p =
          kind === 'drain'
            ? cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' })
            : cm.add(VIP, FIFTH, { maxAtRisk: 'unbounded' });
        p.catch(() => undefined);
        const members = (): readonly string[] => w.sw('sw1').sw.vips.get(VIP)?.group.members() ?? [];
        const written = (): boolean =>
          kind === 'drain' ? !members().includes(NH[1] as string) : members().includes(FIFTH);
        // Until the switch has taken the group write (simulated time, 1 ms steps, bounded).
        for (let i = 0; i < 10_000 && !written(); i++) await w.advance(1);
        const before = cm.records.at(-1) as ChangeRecord;
        assert.ok(written(), `the switch never took the group write (record ${before.phase})`);
        assert.equal(before.effectiveAt, undefined, 'killed before the change took effect');
        await w.stopController('kill');
        await w.advance(300);
        await w.startController();
        await w.advance(3000);
        const c = w.controller;
        assert.ok(c);
        const rec = c.changeManager('sw1').records.find((r) => r.id === before.id);
        assert.ok(rec, 'the record survived the kill');
        assert.equal(rec.resumed, true);
        assert.equal(rec.phase, kind === 'drain' ? 'applied' : 'complete');
        assert.equal(
          rec.windowFlows,
          null,
          `windowFlows of a window across the kill: ${String(rec.windowFlows)}`,
        );
        assert.equal(rec.pinned, null, `pinned of a window across the kill: ${String(rec.pinned)}`);
        assert.ok(
          rec.resume?.inferred.some((x) => /window: not measured/.test(x)),
          JSON.stringify(rec.resume),
        );
        // Through the API: the same nulls, not zeros.
        const app = await buildApp({ controller: c, token: 't', logger: pino({ level: 'silent' }) });
        try {
          const one = await w.settle(
            app.inject({ method: 'GET', url: `/api/v1/switches/sw1/changes/${rec.id}` }),
            10_000,
          );
          assert.equal(one.statusCode, 200, one.body);
          const view = one.json<Record<string, unknown>>();
          assert.deepEqual([view['pinned'], view['windowFlows']], [null, null], one.body);
          const list = await w.settle(
            app.inject({ method: 'GET', url: '/api/v1/switches/sw1/changes' }),
            10_000,
          );
          const inList = list
            .json<{ changes: Record<string, unknown>[] }>()
            .changes.find((x) => x['id'] === rec.id);
          assert.deepEqual([inList?.['pinned'], inList?.['windowFlows']], [null, null], list.body);
        } finally {
          await app.close();
        }
      } finally {
        await w.close();
      }
    },
  );
}

test(
  'a drain killed after it took effect and before its figures were counted resumes with them null, not measured-looking',
  { timeout: 120_000 },
  async () => {
    // A settle time of 200 ms after the effect: the figures are counted at its end; the kill comes inside it.
    const w = world(41, 20, 200);
    try {
      await warm(w);
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }).catch(() => undefined);
      for (let i = 0; i < 10_000 && cm.records.at(-1)?.effectiveAt === undefined; i++) await w.advance(1);
      await w.advance(10);
      const before = cm.records.at(-1) as ChangeRecord;
      assert.ok(
        before.effectiveAt !== undefined && before.accountedAt === undefined,
        `killed between the effect and the count (${JSON.stringify({ effectiveAt: before.effectiveAt, accountedAt: before.accountedAt })})`,
      );
      await w.stopController('kill');
      await w.advance(300);
      await w.startController();
      await w.advance(3000);
      const rec = w.controller?.changeManager('sw1').records.find((r) => r.id === before.id);
      assert.ok(rec?.resumed, 'resumed');
      assert.deepEqual([rec.pinned, rec.windowFlows], [null, null], JSON.stringify(rec));
      assert.ok(
        rec.resume?.inferred.some((x) =>
          /window and pins: not measured \(the stop came after the change took effect, before its figures were counted\)/.test(
            x,
          ),
        ),
        JSON.stringify(rec.resume),
      );
    } finally {
      await w.close();
    }
  },
);
