// Persistence at scale: 1 M tracked flows written to the file state store while the event
// loop is watched (monitorEventLoopDelay, 10 ms resolution). The store writes a slice at a
// time between turns of the loop, so the delay stays small whatever the table's size.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FlowTable, flowKey } from '../controller/flow-table.js';
import { NexthopRegistry } from '../controller/nexthop-registry.js';
import { FileStateStore } from '../controller/state-store.js';
import { tupleOf } from '../mirror-receiver/tuple.js';
import type { Figure } from './results.js';

export async function persistBench(): Promise<Figure[]> {
  const n = Number(process.env['FLOWPIN_BENCH_FLOWS'] ?? 1_000_000);
  const t = 0;
  const table = new FlowTable({ maxFlows: n + 1, maxAgeMs: 3_600_000, now: () => t });
  const registry = new NexthopRegistry();
  const ids = [1, 2, 3, 4].map((i) => registry.intern('sw1', '192.0.2.80', `10.0.1.${i}`));
  for (let i = 0; i < n; i++) {
    const key = flowKey(
      1,
      tupleOf({
        family: 4,
        src: `10.${100 + ((i >> 16) & 0x3f)}.${(i >> 8) & 0xff}.${i & 0xff}`,
        dst: '192.0.2.80',
        sport: 1024 + (i % 60000),
        dport: 443,
      }),
    );
    table.touch(key);
    table.resolve(key, ids[i % 4] as number);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-persist-'));
  try {
    const store = new FileStateStore(path.join(dir, 'state'));
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const t0 = performance.now();
    const written = await store.saveFlows(
      {
        *groups() {
          for (const [id, keys] of table.indexed()) {
            const ref = registry.ref(id);
            if (ref) yield { switchName: ref.switchName, vip: ref.vip, nexthop: ref.nexthop, keys };
          }
        },
        live: (k) => table.has(k),
      },
      0,
    );
    const ms = performance.now() - t0;
    h.disable();
    const p99 = h.percentile(99) / 1e6;
    const max = h.max / 1e6;
    const bytes = statSync(path.join(dir, 'state')).size;
    const m = n.toLocaleString('en-US');
    return [
      {
        id: 'persist.write_s',
        what: `Persist ${m} tracked flows (file store, in the background)`,
        value: Math.round(ms) / 1000,
        unit: 's',
        target: '',
        met: true,
      },
      {
        id: 'persist.loop_delay_p99_ms',
        what: `Event-loop delay p99 while persisting ${m} flows`,
        value: Math.round(p99 * 10) / 10,
        unit: 'ms',
        target: '< 50',
        met: p99 < 50,
      },
      {
        id: 'persist.loop_delay_max_ms',
        what: `Event-loop delay max while persisting ${m} flows`,
        value: Math.round(max * 10) / 10,
        unit: 'ms',
        target: '',
        met: true,
      },
      {
        id: 'persist.bytes_per_flow',
        what: 'State file size per flow',
        value: Math.round((bytes / Math.max(1, written)) * 10) / 10,
        unit: 'bytes',
        target: '',
        met: true,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
