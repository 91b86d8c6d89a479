// flowpin's Prometheus metrics on prom-client: one registry per controller, with the
// process and event-loop metrics of prom-client's collectDefaultMetrics added at scrape time
// (they describe the process, so they are collected once per process, not once per
// controller). Names follow the Prometheus conventions (https://prometheus.io/docs/practices/naming/):
// `_total` counters (what only grows is a counter, also where its value is read at scrape
// time: ScrapeCounter), `_seconds` histograms, base units, a `flowpin_build_info` gauge, and
// every closed label value's series made at zero before the first event (metrics-series.ts).
// Every label value comes from the
// configuration or from a fixed set (switch, VIP and nexthop addresses flowpin manages,
// adapter kinds, operation names, reasons), never from free text.

import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { initialiseSeries, type SeriesSwitch } from './metrics-series.js';

type Row<L extends string> = { labels: Partial<Record<L, string>>; value: number };

/** A gauge whose values are read from a function at scrape time (set with `collect`). */
export class ScrapeGauge<L extends string> {
  readonly gauge: Gauge<L>;
  private read: (() => Row<L>[]) | undefined;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.gauge = new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        if (self.read === undefined) return;
        this.reset();
        for (const r of self.read()) this.set(r.labels, r.value);
      },
    });
  }

  /** Reads the values at scrape time: series not returned are gone. */
  collect(fn: () => Row<L>[]): void {
    this.read = fn;
  }
}

/**
 * A counter whose value is read at scrape time from counts kept elsewhere (the kernel's drops
 * of a socket, the receiver's backlog drops): it grows by what those counts grew since the
 * last scrape, so it never goes down when the count behind it restarts (a socket reopened
 * starts again from 0: its new count is added, not subtracted), as a `_total` counter must.
 * Rows with the same labels are summed (a closed socket keeps its last count beside its successor's).
 */
export class ScrapeCounter<L extends string> {
  readonly counter: Counter<L>;
  private read: (() => Row<L>[]) | undefined;
  private readonly last = new Map<string, number>();

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.counter = new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        if (self.read === undefined) return;
        const sums = new Map<string, Row<L>>();
        for (const r of self.read()) {
          const key = JSON.stringify(Object.entries(r.labels).sort());
          const s = sums.get(key);
          if (s === undefined) sums.set(key, { labels: r.labels, value: r.value });
          else s.value += r.value;
        }
        for (const [key, r] of sums) {
          const before = self.last.get(key) ?? 0;
          // A count lower than last time restarted from zero: all of it is new.
          this.inc(r.labels, r.value >= before ? r.value - before : r.value);
          self.last.set(key, r.value);
        }
      },
    });
  }

  /** Reads the counts behind the counter at scrape time. */
  collect(fn: () => Row<L>[]): void {
    this.read = fn;
  }
}

/**
 * flowpin's version (package.json), the Node.js version, and the commit where known (FLOWPIN_COMMIT, or the
 * checkout's git HEAD).
 */
export function buildInfo(): { version: string; node_version: string; commit: string } {
  const root = new URL('../../', import.meta.url);
  const read = (rel: string): string | undefined => {
    try {
      return readFileSync(new URL(rel, root), 'utf8').trim();
    } catch {
      return undefined; // not a checkout (an installed package, an image without .git): unknown
    }
  };
  const version = (JSON.parse(read('package.json') ?? '{}') as { version?: string }).version ?? 'unknown';
  let commit = process.env['FLOWPIN_COMMIT'];
  if (commit === undefined || commit === '') {
    const head = read('.git/HEAD');
    const ref = head?.startsWith('ref: ') ? read(`.git/${head.slice(5)}`) : head;
    commit = ref !== undefined && /^[0-9a-f]{40}$/.test(ref) ? ref : 'unknown';
  }
  return { version, node_version: process.version, commit };
}

const SECONDS_FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** flowpin's metrics, one registry per controller. */
export function controllerMetrics() {
  const registry = new Registry();
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: number[],
  ): Histogram<L> => new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });
  return {
    registry,
    events: counter(
      'flowpin_mirror_events_total',
      'Decoded mirrored TCP segments by switch and kind (syn, end, ignored, shed, unknown-switch)',
      ['switch', 'kind'],
    ),
    shed: counter('flowpin_events_shed_total', 'SYNs dropped because the resolve queue was full', ['switch']),
    resolved: counter(
      'flowpin_flows_resolved_total',
      'Flows whose nexthop look-up ended, by switch and result (ok, unknown, error)',
      ['switch', 'result'],
    ),
    pinsInstalled: counter('flowpin_pins_installed_total', 'Pins installed on switches', ['switch']),
    pinsRemoved: counter('flowpin_pins_removed_total', 'Pins removed from switches, by why (gc, unwanted)', [
      'switch',
      'why',
    ]),
    pinFailures: counter(
      'flowpin_pin_failures_total',
      'Pins the switch refused or could not program, by reason',
      ['switch', 'reason'],
    ),
    reconcileFailures: counter(
      'flowpin_reconcile_failures_total',
      'Failed reconcile rounds (then backoff and full resync), by switch and error class',
      ['switch', 'error'],
    ),
    fenceRefusals: counter(
      'flowpin_fence_refusals_total',
      'Switch writes refused under high availability, by reason: expired (the owner fenced itself: ' +
        'its fence was past validUntil), stale (the switch refused a lower epoch)',
      ['switch', 'reason'],
    ),
    haTakeovers: counter(
      'flowpin_ha_takeovers_total',
      'Under high availability: times this instance took a switch (fenced it, read it, resumed its changes)',
      ['switch'],
    ),
    haStaleWrites: counter(
      'flowpin_ha_stale_writes_total',
      'Under high availability: pins the periodic audit of an owned switch found that no write of this ' +
        'owner explains: stale (an older epoch, landed after the takeover), ahead (a newer epoch: writes stop)',
      ['switch', 'found'],
    ),
    haOwner: gauge(
      'flowpin_ha_owner',
      'Under high availability: 1 while this instance owns the switch (writes it), else 0',
      ['switch'],
    ),
    resyncs: counter('flowpin_resyncs_total', 'Full resyncs of a switch pin table', ['switch']),
    synToPin: histogram(
      'flowpin_syn_to_pin_seconds',
      'Time from a SYN arriving to its pin being installed',
      ['switch'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    ),
    switchCall: histogram(
      'flowpin_switch_call_seconds',
      "Latency of the controller's calls to a switch adapter, by switch, adapter kind and operation",
      ['switch', 'adapter', 'operation'],
      SECONDS_FAST,
    ),
    switchCallErrors: counter(
      'flowpin_switch_call_errors_total',
      'Calls to a switch adapter that failed, by switch, adapter kind and operation',
      ['switch', 'adapter', 'operation'],
    ),
    flows: new ScrapeGauge(registry, 'flowpin_flows', 'Tracked flows by switch', ['switch']),
    pins: new ScrapeGauge(registry, 'flowpin_pins', 'Pins by switch and state (desired, installed, failed)', [
      'switch',
      'state',
    ]),
    nexthopFlows: new ScrapeGauge(
      registry,
      'flowpin_nexthop_flows',
      'Tracked flows by switch, VIP and nexthop',
      ['switch', 'vip', 'nexthop'],
    ),
    nexthopPins: new ScrapeGauge(
      registry,
      'flowpin_nexthop_pins',
      'Programmed pins by switch, VIP and nexthop',
      ['switch', 'vip', 'nexthop'],
    ),
    pinTable: new ScrapeGauge(
      registry,
      'flowpin_pin_table_entries',
      "The switch pin table: capacity, programmed (flowpin's) and free entries",
      ['switch', 'kind'],
    ),
    ready: gauge('flowpin_switch_ready', '1 when the switch answers and its pins are in sync', ['switch']),
    connectionsAtRisk: counter(
      'flowpin_connections_at_risk_total',
      'Flows that needed a pin and have none programmed, by switch and reason (table-full, refused, not-programmed, shed, unresolved)',
      ['switch', 'why'],
    ),
    windowFlows: counter(
      'flowpin_change_window_flows_total',
      'Flows whose SYN arrived in a change window with no certain, programmed pin',
      ['switch'],
    ),
    changesInProgress: new ScrapeGauge(
      registry,
      'flowpin_changes_in_progress',
      'Changes queued or in progress, and drains whose connections are still tracked, by switch, kind (drain, add) and phase (queued, pending, applied, deadline-passed); every kind and phase has its series, at 0 when none',
      ['switch', 'kind', 'phase'],
    ),
    changeConnectionsLeft: new ScrapeGauge(
      registry,
      'flowpin_change_connections_left',
      'Connections (live and unknown) left on the nexthop of each drain whose group write is done and whose connections are still tracked, by switch, VIP and nexthop (the series ends with the drain)',
      ['switch', 'vip', 'nexthop'],
    ),
    groupDrift: counter(
      'flowpin_group_drift_total',
      'ECMP groups found changed on the switch by someone else (taken as they are)',
      ['switch'],
    ),
    mirrorSocketDrops: new ScrapeCounter(
      registry,
      'flowpin_mirror_socket_drops_total',
      'Mirrored datagrams the kernel dropped for a full receive buffer, by mirror socket (source as configured)',
      ['source'],
    ),
    mirrorReceiveBuffer: new ScrapeGauge(
      registry,
      'flowpin_mirror_receive_buffer_bytes',
      'Receive buffer of each mirror socket as the kernel granted it (Linux reports twice the usable size), and as asked for, by source and kind (granted, requested)',
      ['source', 'kind'],
    ),
    mirrorBacklogDrops: new ScrapeCounter(
      registry,
      'flowpin_mirror_backlog_drops_total',
      'Decoded mirror events dropped because the main thread was too far behind the receiver',
      [],
    ),
    buildInfo: (() => {
      const info = buildInfo();
      const g = new Gauge({
        name: 'flowpin_build_info',
        help: "Always 1: flowpin's version, the Node.js version and the commit it was built from (unknown where not known)",
        labelNames: ['version', 'node_version', 'commit'],
        registers: [registry],
      });
      g.set(info, 1);
      return g;
    })(),
    /**
     * The switches whose closed-label series are made at zero before each scrape (set by the controller's
     * collectors).
     */
    seriesSwitches: { read: undefined as (() => Iterable<SeriesSwitch>) | undefined },
    journalLag: histogram(
      'flowpin_journal_lag_seconds',
      'Time from the oldest flow of a journal group commit being seen to the commit being durable: what a kill can lose (the restart counts it in its gap)',
      [],
      [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    ),
    persistSeconds: histogram(
      'flowpin_persist_seconds',
      'Time to write the tracked flows to the state store',
      [],
      [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30],
    ),
    serverResets: counter(
      'flowpin_server_resets_total',
      'Resets sent by servers (RST from a VIP) seen on the reply mirror where its ACL matches RST, by switch and VIP',
      ['switch', 'vip'],
    ),
    replies: counter(
      'flowpin_replies_observed_total',
      'Mirrored server replies (SYN-ACK from a VIP) by switch and result (resolved, agree, disagree, duplicate, unknown-server, no-syn, ignored)',
      ['switch', 'result'],
    ),
    unknownServer: counter(
      'flowpin_reply_unknown_server_total',
      'Mirrored replies whose server flowpin could not tell, by switch and reason (no-identity, unknown-mac, ambiguous-mac, unknown-port, ambiguous-port, not-a-nexthop)',
      ['switch', 'reason'],
    ),
    disagreements: counter(
      'flowpin_resolution_disagreements_total',
      'Flows whose look-up answer differed from the server that answered (the observation wins), by switch',
      ['switch'],
    ),
    replyTimeouts: counter(
      'flowpin_reply_timeouts_total',
      'SYNs whose reply was not seen in time, by switch and what followed (lookup, unresolved, resolved)',
      ['switch', 'then'],
    ),
    synToServer: histogram(
      'flowpin_syn_to_server_seconds',
      'Time from a SYN arriving to its server being known, by switch and source (observe, lookup)',
      ['switch', 'source'],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    ),
  };
}

export type ControllerMetrics = ReturnType<typeof controllerMetrics>;

let processRegistry: Registry | undefined;

/**
 * The process and event-loop metrics (prom-client's defaults, `process_` and `nodejs_`), collected once per
 * process.
 */
function defaults(): Registry {
  if (processRegistry === undefined) {
    const r = new Registry();
    collectDefaultMetrics({ register: r });
    // prom-client names three gauges `_total` (nodejs_active_{handles,requests,resources}_total),
    // which the conventions keep for counters (promtool check metrics says so): they are left
    // out; the same counts stay, by type, in nodejs_active_{handles,requests,resources}.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ])
      r.removeSingleMetric(name);
    processRegistry = r;
  }
  return processRegistry;
}

/** The text exposition served at /metrics: the controller's metrics and the process's. */
export async function exposition(m: ControllerMetrics): Promise<string> {
  const switches = m.seriesSwitches.read?.();
  if (switches !== undefined) await initialiseSeries(m, switches);
  return Registry.merge([m.registry, defaults()]).metrics();
}

/** prom-client's content type of that text. */
export const EXPOSITION_TYPE: string = new Registry().contentType;

/** The current value of one series of a counter or gauge (0 when it has none yet). */
export async function valueOf<L extends string>(
  metric: Counter<L> | Gauge<L>,
  labels: Partial<Record<L, string>>,
): Promise<number> {
  const want = Object.entries(labels);
  const got = await metric.get();
  const row = got.values.find(
    (v) =>
      want.length === Object.keys(v.labels).length &&
      want.every(([k, val]) => String(v.labels[k as L]) === val),
  );
  return row?.value ?? 0;
}
