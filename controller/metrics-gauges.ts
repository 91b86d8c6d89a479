// The gauges read at scrape time per switch, VIP and nexthop: tracked flows and programmed
// pins on each nexthop flowpin manages, and the pin table's capacity, programmed and free
// entries. Label values are the configured switch names and the VIP and nexthop addresses
// of the runtime (configured, added through the API as validated addresses, or found in the
// switch's group): a bounded set, never free text. It also tells the metrics which switches
// (adapter kinds, VIPs) get their closed-label series at zero before each scrape.

import type { ControllerMetrics } from './metrics.js';
import type { SwitchRuntime } from './switch-runtime.js';

export function collectNexthopGauges(metrics: ControllerMetrics, runtimes: () => Iterable<SwitchRuntime>): void {
  const each = <T>(fn: (rt: SwitchRuntime, vip: string, nexthop: string) => T): T[] => {
    const out: T[] = [];
    for (const rt of runtimes()) for (const v of rt.vips.values()) for (const nh of [...v.nexthops].sort()) out.push(fn(rt, v.address, nh));
    return out;
  };
  metrics.seriesSwitches.read = () => [...runtimes()].map((rt) => ({ name: rt.name, adapter: rt.adapter.kind, vips: rt.vips.keys() }));
  metrics.nexthopFlows.collect(() => each((rt, vip, nexthop) => ({ labels: { switch: rt.name, vip, nexthop }, value: rt.flowsOn(vip, nexthop).length })));
  metrics.nexthopPins.collect(() => each((rt, vip, nexthop) => ({ labels: { switch: rt.name, vip, nexthop }, value: rt.pinnedOn(vip, nexthop) })));
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
