// What a restart reads back, through the controller: saved flows keep their switch by name
// when the configuration lists the switches in another order (a flow key's switch id is the
// position in this process's configuration, not the file's last one); the temporary files a
// killed writer left beside the state file are removed at the next start; and a kill loses
// at most the flow journal's last group commit (SYNs from about 20 ms before it), at 2,000
// new connections/s.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryDisk, MemoryStateStore } from '../controller/memory-store.js';
import { FileStateStore } from '../controller/state-store.js';
import { World, type WorldOptions } from '../cli/scenario/world.js';

const VIP1 = '192.0.2.80';
const NH1 = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
const VIP2 = '198.51.100.10';
const NH2 = ['10.0.3.1', '10.0.3.2', '10.0.3.3'];

function world(seed: number, controller: Partial<NonNullable<WorldOptions['controller']>>, rate = 20): World {
  console.log(`world seed ${seed}`);
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: VIP1, nexthops: NH1, port: 443 }],
        spares: [],
        ecmpMode: 'resilient',
        pinCapacity: 20_000,
        programDelayMs: 5,
        rate,
        lifetime: { kind: 'fixed', s: 600 },
      },
      {
        name: 'sw2',
        vips: [{ address: VIP2, nexthops: NH2, port: 443 }],
        spares: [],
        ecmpMode: 'resilient',
        pinCapacity: 20_000,
        programDelayMs: 5,
        rate,
        lifetime: { kind: 'fixed', s: 600 },
      },
    ],
    latencyMs: 2,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed,
    controller: {
      pinMode: 'on-change',
      settleMs: 20,
      barrierTimeoutMs: 5000,
      store: 'memory',
      windowFlows: 1000,
      ...controller,
    },
  });
}

const flowsOf = (w: World, name: string): number =>
  w.controller?.readiness().switches.find((s) => s.name === name)?.flows ?? -1;

test(
  'saved flows keep their switch across a restart with the switches listed in another order, and a drain after it breaks none of them',
  { timeout: 120_000 },
  async () => {
    const w = world(51, {});
    try {
      await w.startController();
      w.openLive(600, { kind: 'fixed', s: 600 });
      w.startTraffic();
      await w.advance(3000);
      const before = { sw1: flowsOf(w, 'sw1'), sw2: flowsOf(w, 'sw2'), id1: w.controller?.runtime('sw1').id };
      assert.ok(before.sw1 > 250 && before.sw2 > 250, JSON.stringify(before));
      await w.stopController('graceful');
      w.reverseConfigOrder = true;
      await w.advance(200);
      await w.startController();
      const c = w.controller;
      assert.ok(c);
      assert.notEqual(c.runtime('sw1').id, before.id1, 'the configuration lists sw1 at another position');
      // Every flow saved is back on its own switch (none ended: they live 600 s; new ones only add).
      assert.ok(
        flowsOf(w, 'sw1') >= before.sw1 && flowsOf(w, 'sw2') >= before.sw2,
        `restored ${flowsOf(w, 'sw1')} / ${flowsOf(w, 'sw2')}, saved ${before.sw1} / ${before.sw2}`,
      );
      assert.equal(
        c.readiness().switches.every((s) => s.connected),
        true,
      );
      await w.settle(
        c.changeManager('sw1').drain(VIP1, NH1[1] as string, { maxAtRisk: 'unbounded' }),
        20_000,
      );
      await w.settle(
        c.changeManager('sw2').drain(VIP2, NH2[1] as string, { maxAtRisk: 'unbounded' }),
        20_000,
      );
      await w.advance(3000);
      const a = w.audit();
      assert.equal(a.brokenProtected, 0, a.details.join('; '));
      assert.equal(a.uncounted, 0, a.details.join('; '));
    } finally {
      await w.close();
    }
  },
);

test(
  'temporary files a killed writer left beside the state file are removed when flowpin starts',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-restart-'));
    try {
      const file = path.join(dir, 'state');
      // What a kill in the middle of an atomic write leaves: a change log and a flow snapshot never renamed
      // into place.
      const pid = process.pid === 999_999 ? 999_998 : 999_999;
      writeFileSync(`${file}.changes.tmp-${pid}`, '{"version":3,"chan');
      writeFileSync(`${file}.tmp-${pid}`, '{"version":3,"savedAt":1}\n@sw1 ');
      const w = world(53, { store: () => new FileStateStore(file) });
      try {
        await w.startController();
        w.startTraffic();
        await w.advance(500);
        assert.deepEqual(
          readdirSync(dir).filter((f) => f.includes('.tmp-')),
          [],
          `left in ${dir}: ${readdirSync(dir).join(', ')}`,
        );
        assert.ok(existsSync(`${file}.changes`), 'the change log is written as usual');
        assert.equal(w.controller?.readiness().stateError, null);
      } finally {
        await w.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  "a kill loses at most the flow journal's last group commit: every SYN seen more than 50 ms before it is restored (2,000 SYN/s)",
  { timeout: 120_000 },
  async () => {
    const disk = new MemoryDisk();
    // No periodic snapshot: what a restart knows of the last seconds is the journal alone.
    const w: World = world(
      57,
      { store: () => new MemoryStateStore(disk, (ms, fn) => w.clock.after(ms, fn)), persistIntervalS: 3600 },
      1000,
    );
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(2000);
      const c = w.controller;
      assert.ok(c);
      const killAt = w.now;
      const seen = new Map<string, number>();
      for (const k of c.flowTable.keys()) seen.set(k, c.flowTable.lastSeen(k) ?? 0);
      assert.ok(seen.size > 3000, `${seen.size} flows tracked`);
      await w.stopController('kill');
      const loaded = new MemoryStateStore(disk, () => undefined).loadFlows();
      const restored = new Set(
        (loaded?.flows ?? []).flatMap((g) => g.keys).filter((k) => !loaded?.ended.has(k)),
      );
      const missing = [...seen].filter(([k]) => !restored.has(k)).map(([, t]) => t);
      const windowMs = missing.length === 0 ? 0 : killAt - Math.min(...missing);
      console.log(
        `journal: ${seen.size} flows tracked at the kill, ${missing.length} not restored, loss window ${Math.round(windowMs)} ms (simulated time)`,
      );
      assert.ok(
        windowMs <= 50,
        `SYNs seen up to ${Math.round(windowMs)} ms before the kill were not in the journal (${missing.length} flows)`,
      );
    } finally {
      await w.close();
    }
  },
);
