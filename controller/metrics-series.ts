// The closed label sets of flowpin's labelled counters and histograms, and their series
// created at zero for every switch (and VIP) before the first event: `rate()` and `increase()`
// then see a series from the start (a counter born at 3 loses those 3 to `rate()`), and an
// alert on `absent()` tells a missing target from a quiet one. Each set is typed against the
// code that emits its values, so a new reason fails to compile until it is listed here.
// Label values: configured switch names, VIP addresses the runtime manages, adapter kinds.

import type { AtRiskReason } from './reconciler.js';
import type { UnknownServerReason } from './server-identity.js';
import type { SegmentResult } from './switch-runtime.js';
import type { ControllerMetrics } from './metrics.js';
import { OPERATIONS } from './timed-adapter.js';

const all = <T extends string>(set: Record<T, true>): T[] => Object.keys(set) as T[];

export const EVENT_KINDS = all<SegmentResult>({
  syn: true,
  end: true,
  ignored: true,
  shed: true,
  'unknown-vip': true,
  reply: true,
  'reply-unknown': true,
  'server-reset': true,
  'half-close': true,
});
export const AT_RISK = all<AtRiskReason>({
  'table-full': true,
  refused: true,
  'not-programmed': true,
  shed: true,
  unresolved: true,
  restart: true,
});
export const UNKNOWN_SERVER = all<UnknownServerReason | 'not-a-nexthop'>({
  'no-identity': true,
  'unknown-mac': true,
  'ambiguous-mac': true,
  'unknown-port': true,
  'ambiguous-port': true,
  'not-a-nexthop': true,
});
export const RESOLVE_RESULTS = ['ok', 'unknown', 'error'] as const;
export const PIN_REMOVED = ['gc', 'unwanted'] as const;
export const PIN_FAILURES = ['refused', 'table-full', 'not-programmed'] as const;
/** Error classes of a failed reconcile round: the switch error names, and Error for anything else. */
export const RECONCILE_ERRORS = [
  'SwitchTimeoutError',
  'SwitchTransportError',
  'SwitchAuthError',
  'SwitchCommandError',
  'SwitchProtocolError',
  'SwitchUnsupportedError',
  'SwitchFencedError',
  'FenceExpiredError',
  'Error',
] as const;
/** Why a write was refused under high availability (flowpin_fence_refusals_total). */
export const FENCE_REFUSALS = ['expired', 'stale'] as const;
export const REPLY_RESULTS = [
  'resolved',
  'agree',
  'disagree',
  'duplicate',
  'unknown-server',
  'no-syn',
  'ignored',
] as const;
export const REPLY_TIMEOUTS = ['lookup', 'unresolved', 'resolved'] as const;
export const SERVER_SOURCES = ['observe', 'lookup'] as const;

/** What the series are made for: a switch, its adapter kind and its VIPs. */
export interface SeriesSwitch {
  name: string;
  adapter: string;
  vips: Iterable<string>;
}

/** Switches (and switch-VIP pairs) already given their series, per registry: each is made once. */
const done = new WeakMap<ControllerMetrics, Set<string>>();

/** Creates every closed-label series of these switches at zero; series that exist keep their values. */
export async function initialiseSeries(
  m: ControllerMetrics,
  switches: Iterable<SeriesSwitch>,
): Promise<void> {
  let made = done.get(m);
  if (made === undefined) done.set(m, (made = new Set()));
  m.events.inc({ switch: 'unknown', kind: 'unknown-switch' }, 0);
  for (const s of switches) {
    const sw = { switch: s.name };
    for (const vip of s.vips) {
      if (made.has(`${s.name}\n${vip}`)) continue;
      made.add(`${s.name}\n${vip}`);
      m.serverResets.inc({ ...sw, vip }, 0);
    }
    if (made.has(s.name)) continue;
    made.add(s.name);
    for (const kind of EVENT_KINDS) m.events.inc({ ...sw, kind }, 0);
    for (const c of [m.shed, m.pinsInstalled, m.resyncs, m.windowFlows, m.groupDrift, m.disagreements])
      c.inc(sw, 0);
    for (const result of RESOLVE_RESULTS) m.resolved.inc({ ...sw, result }, 0);
    for (const why of PIN_REMOVED) m.pinsRemoved.inc({ ...sw, why }, 0);
    for (const reason of PIN_FAILURES) m.pinFailures.inc({ ...sw, reason }, 0);
    for (const error of RECONCILE_ERRORS) m.reconcileFailures.inc({ ...sw, error }, 0);
    for (const reason of FENCE_REFUSALS) m.fenceRefusals.inc({ ...sw, reason }, 0);
    for (const why of AT_RISK) m.connectionsAtRisk.inc({ ...sw, why }, 0);
    for (const result of REPLY_RESULTS) m.replies.inc({ ...sw, result }, 0);
    for (const reason of UNKNOWN_SERVER) m.unknownServer.inc({ ...sw, reason }, 0);
    for (const then of REPLY_TIMEOUTS) m.replyTimeouts.inc({ ...sw, then }, 0);
    for (const operation of OPERATIONS) m.switchCallErrors.inc({ ...sw, adapter: s.adapter, operation }, 0);
    // zero() resets a series: a histogram's series is zeroed only where it has none yet.
    const seen = async (
      h: typeof m.synToPin | typeof m.synToServer,
      labels: Record<string, string>,
    ): Promise<boolean> =>
      (await h.get()).values.some((v) =>
        Object.entries(labels).every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === x),
      );
    if (!(await seen(m.synToPin, sw))) m.synToPin.zero(sw);
    for (const source of SERVER_SOURCES)
      if (!(await seen(m.synToServer, { ...sw, source }))) m.synToServer.zero({ ...sw, source });
  }
}
