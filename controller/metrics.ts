// A small Prometheus registry: counters, gauges (set, or read from a function at scrape
// time) and histograms with labels, rendered in the text exposition format at /metrics.

type Labels = Record<string, string>;

const labelText = (l: Labels): string => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
};
const keyOf = (l: Labels): string => JSON.stringify(Object.entries(l).sort(([a], [b]) => a.localeCompare(b)));

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels);
    const e = this.values.get(k);
    if (e) e.value += by;
    else this.values.set(k, { labels, value: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.value}`)];
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  private collector: (() => { labels: Labels; value: number }[]) | undefined;
  constructor(readonly name: string, readonly help: string) {}

  set(labels: Labels, value: number): void {
    this.values.set(keyOf(labels), { labels, value });
  }

  /** Reads the values at scrape time instead. */
  collect(fn: () => { labels: Labels; value: number }[]): void {
    this.collector = fn;
  }

  render(): string[] {
    const rows = this.collector ? this.collector() : [...this.values.values()];
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...rows.map((e) => `${this.name}${labelText(e.labels)} ${e.value}`)];
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {}

  observe(labels: Labels, value: number): void {
    const k = keyOf(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(b) })} ${s.counts[i] ?? 0}`));
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`, `${this.name}_sum${labelText(s.labels)} ${s.sum}`, `${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  counter(name: string, help: string): Counter {
    const m = new Counter(name, help);
    this.metrics.push(m);
    return m;
  }

  gauge(name: string, help: string): Gauge {
    const m = new Gauge(name, help);
    this.metrics.push(m);
    return m;
  }

  histogram(name: string, help: string, buckets: number[]): Histogram {
    const m = new Histogram(name, help, buckets);
    this.metrics.push(m);
    return m;
  }

  render(): string {
    return this.metrics.flatMap((m) => m.render()).join('\n') + '\n';
  }
}

/** flowpin's metrics, one registry per controller. */
export function controllerMetrics(): {
  registry: Registry;
  events: Counter;
  shed: Counter;
  resolved: Counter;
  pinsInstalled: Counter;
  pinsRemoved: Counter;
  pinFailures: Counter;
  reconcileFailures: Counter;
  resyncs: Counter;
  synToPin: Histogram;
  flows: Gauge;
  pins: Gauge;
  ready: Gauge;
  connectionsAtRisk: Counter;
  windowFlows: Counter;
  groupDrift: Counter;
  persistSeconds: Histogram;
  mirrorSocketDrops: Gauge;
  mirrorReceiveBuffer: Gauge;
  mirrorBacklogDrops: Gauge;
} {
  const r = new Registry();
  return {
    registry: r,
    events: r.counter('flowpin_mirror_events_total', 'Decoded mirrored TCP segments by switch and kind (syn, end, ignored)'),
    shed: r.counter('flowpin_events_shed_total', 'SYNs dropped because the resolve queue was full'),
    resolved: r.counter('flowpin_flows_resolved_total', 'Flows whose nexthop was resolved, by switch and result'),
    pinsInstalled: r.counter('flowpin_pins_installed_total', 'Pins installed on switches'),
    pinsRemoved: r.counter('flowpin_pins_removed_total', 'Pins removed from switches'),
    pinFailures: r.counter('flowpin_pin_failures_total', 'Pins the switch refused or could not program, by reason'),
    reconcileFailures: r.counter('flowpin_reconcile_failures_total', 'Failed reconcile rounds (then backoff and full resync), by switch and error'),
    resyncs: r.counter('flowpin_resyncs_total', 'Full resyncs of a switch pin table'),
    synToPin: r.histogram('flowpin_syn_to_pin_seconds', 'Time from a SYN arriving to its pin being installed', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
    flows: r.gauge('flowpin_flows', 'Tracked flows by switch'),
    pins: r.gauge('flowpin_pins', 'Pins by switch and state (desired, installed, not_programmed)'),
    ready: r.gauge('flowpin_switch_ready', '1 when the switch answers and its pins are in sync'),
    connectionsAtRisk: r.counter('flowpin_connections_at_risk_total', 'Flows that needed a pin and have none programmed, by switch and reason (table-full, refused, not-programmed, shed, unresolved)'),
    windowFlows: r.counter('flowpin_change_window_flows_total', 'Flows whose SYN arrived in a change window with no certain, programmed pin'),
    groupDrift: r.counter('flowpin_group_drift_total', 'ECMP groups found changed on the switch by someone else (taken as they are)'),
    mirrorSocketDrops: r.gauge('flowpin_mirror_socket_drops', 'Mirrored datagrams the kernel dropped for a full receive buffer, by mirror socket (source as configured; only grows while flowpin runs)'),
    mirrorReceiveBuffer: r.gauge('flowpin_mirror_receive_buffer_bytes', 'Receive buffer of each mirror socket as the kernel granted it (Linux reports twice the usable size), and as asked for, by source and kind (granted, requested)'),
    mirrorBacklogDrops: r.gauge('flowpin_mirror_backlog_drops', 'Decoded mirror events dropped because the main thread was too far behind the receiver (only grows while flowpin runs)'),
    persistSeconds: r.histogram('flowpin_persist_seconds', 'Time to write the tracked flows to the state store', [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30]),
  };
}

export type ControllerMetrics = ReturnType<typeof controllerMetrics>;
