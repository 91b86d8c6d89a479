// The gauges read at scrape time per switch, VIP and nexthop: tracked flows and programmed
// pins on each nexthop flowpin manages, and the pin table's capacity, programmed and free
// entries; and per change: the changes in progress by kind and phase (every kind and active
// phase of every switch, at 0 when none), and the connections left on each drain still tracked
// (a series only while its drain is: a bounded set). Label values are the configured switch names and the VIP
// and nexthop addresses
// of the runtime (configured, added through the API as validated addresses, or found in the
// switch's group): a bounded set, never free text. It also tells the metrics which switches
// (adapter kinds, VIPs) get their closed-label series at zero before each scrape.

import { ACTIVE_PHASES, type ChangeKind, type ChangeRecord } from './change-record.js';
import type { ControllerMetrics } from './metrics.js';
import type { SwitchRuntime } from './switch-runtime.js';

const KINDS: readonly ChangeKind[] = ['drain', 'add'];

/** The change records of each switch: only the active ones are read. */
export interface ChangeSource {
  switch: string;
  active(): ChangeRecord[];
}

export function collectChangeGauges(metrics: ControllerMetrics, sources: () => Iterable<ChangeSource>): void {
  metrics.changesInProgress.collect(() => {
    const rows: { labels: { switch: string; kind: string; phase: string }; value: number }[] = [];
    for (const s of sources()) {
      const active = s.active();
      for (const kind of KINDS)
        for (const phase of ACTIVE_PHASES)
          rows.push({
            labels: { switch: s.switch, kind, phase },
            value: active.filter((r) => r.kind === kind && r.phase === phase).length,
          });
    }
    return rows;
  });
  metrics.changeConnectionsLeft.collect(() =>
    [...sources()].flatMap((s) =>
      s
        .active()
        .filter((r) => r.kind === 'drain' && (r.phase === 'applied' || r.phase === 'deadline-passed'))
        .map((r) => ({ labels: { switch: r.switch, vip: r.vip, nexthop: r.nexthop }, value: r.remaining })),
    ),
  );
}

export function collectNexthopGauges(
  metrics: ControllerMetrics,
  runtimes: () => Iterable<SwitchRuntime>,
): void {
  const each = <T>(fn: (rt: SwitchRuntime, vip: string, nexthop: string) => T): T[] => {
    const out: T[] = [];
    for (const rt of runtimes())
      for (const v of rt.vips.values())
        for (const nh of [...v.nexthops].sort()) out.push(fn(rt, v.address, nh));
    return out;
  };
  metrics.seriesSwitches.read = () =>
    [...runtimes()].map((rt) => ({ name: rt.name, adapter: rt.adapter.kind, vips: rt.vips.keys() }));
  metrics.nexthopFlows.collect(() =>
    each((rt, vip, nexthop) => ({
      labels: { switch: rt.name, vip, nexthop },
      value: rt.flowsOn(vip, nexthop).length,
    })),
  );
  metrics.nexthopPins.collect(() =>
    each((rt, vip, nexthop) => ({
      labels: { switch: rt.name, vip, nexthop },
      value: rt.pinnedOn(vip, nexthop),
    })),
  );
  metrics.pinTable.collect(() =>
    [...runtimes()].flatMap((rt) => {
      const r = rt.reconciler;
      return [
        { labels: { switch: rt.name, kind: 'capacity' }, value: r.tableCapacity },
        { labels: { switch: rt.name, kind: 'programmed' }, value: r.programmedCount() },
        { labels: { switch: rt.name, kind: 'free' }, value: r.freeEntries() },
      ];
    }),
  );
}
