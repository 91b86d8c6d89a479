// What a change would do, changing nothing: the live connections it moves and how many of
// them already have a programmed pin, the room the switch reports programmable now (a table
// shared with other owners counts only its free part), the connections at risk by reason,
// those flowpin may never have seen (the watch's upper bound), the change window expected
// from this switch's own measured windows, and the figures a consent bound is checked
// against. Reads only.

import type { FlowSpec } from '../switch-adapters/contract.js';
import { withDeadline } from './clock.js';
import type { AtRiskCounts, ChangeKind, ChangeRecord, RiskFigures } from './change-record.js';
import { zeroRisk } from './change-record.js';
import { riskFigures } from './consent.js';
import { FlowpinError } from './errors.js';
import { idOfKey, specOf } from './flow-spec.js';
import type { LivenessSource, MirrorHealth } from './mirror-watch.js';
import type { SwitchRuntime, VipState } from './switch-runtime.js';

export interface DryRunReport {
  dryRun: true;
  switch: string;
  vip: string;
  nexthop: string;
  /** Tracked connections the change would move that have no programmed pin yet, and those that have one. */
  flowsToPin: number;
  alreadyPinned: number;
  /** Of the connections it moves: open with their end visible on the mirror (live), or not (unknown). */
  live: number;
  unknown: number;
  /** Free pin table entries as the switch reports them now (shared with other owners). */
  freeEntries: number;
  /** Where the table cannot hold them all, which connections go without a pin. */
  leftOut: string;
  atRisk: number;
  atRiskBy: AtRiskCounts;
  /**
   * Flows seen whose nexthop is not known: waiting for their look-up (resolved before the group write), or
   * that the switch could not resolve (at risk).
   */
  unresolved: number;
  /**
   * Connections flowpin may never have seen that the change may move: an upper bound, and how it was made.
   */
  unseen: number;
  unseenBasis: string;
  /** Some of the last connection lifetime was not watched. */
  warming: boolean;
  /** Mirror traffic seen for the VIP: SYNs in all, and per second lately. */
  synsSeen: number;
  synRate: number;
  /**
   * Expected change window (ms), how it was estimated, and the connections expected to arrive in it on
   * servers the change moves.
   */
  expectedWindowMs: number;
  expectedWindowBasis: string;
  expectedWindowFlows: number;
  /** Where the switch cannot tell which flows an addition moves, every live flow is pinned. */
  movedFlowsKnown: boolean;
  /**
   * How flows' servers are learnt on this switch: `lookup` (the switch's look-up), `observe`
   * (the mirrored SYN-ACKs), `both`, or `none` (no look-up call and no mirrored replies, as
   * gNMI without the reply mirror: every flow stays unresolved and is counted at risk).
   */
  resolution: 'lookup' | 'observe' | 'both' | 'none';
  /** Which connection ends the mirror carries, and what follows for the connections' liveness. */
  liveness: LivenessSource;
  livenessNote: string;
  /** The switch's mirror as flowpin sees it. */
  mirror: MirrorHealth;
  /**
   * What counts against a consent bound (`maxAtRisk`), and the threshold above which window connections
   * count.
   */
  figures: RiskFigures;
  windowThreshold: number;
}

export interface DryRunContext {
  rt: SwitchRuntime;
  records: readonly ChangeRecord[];
  settleMs: number;
  barrierTimeoutMs: number;
  windowThreshold: number;
  lifetimeS: number;
}

/**
 * Live flows of the VIP that adding `nh` would move (all of them where the switch cannot tell), and whether
 * the switch told.
 */
export async function movedFlows(
  c: DryRunContext,
  vip: VipState,
  nh: string,
): Promise<{ keys: string[]; known: boolean }> {
  const rt = c.rt;
  const keys = [...vip.members].flatMap((m) => rt.flowsOn(vip.address, m));
  if (!rt.adapter.capabilities.predictsMovedFlows) return { keys, known: false };
  if (keys.length === 0) return { keys, known: true };
  try {
    const ask = rt.adapter.movedByAdd(vip.address, nh, keys.map(specOf));
    const moved = await withDeadline(
      rt.clock,
      ask,
      c.barrierTimeoutMs,
      () => `asking ${rt.name} which flows the addition of ${nh} moves`,
    );
    return { keys: keys.filter((_, i) => moved[i] !== false), known: true };
  } catch (err) {
    // The switch cannot tell now: every live flow may move (safe; costs table entries).
    rt.lastResolveError = `predicting moved flows: ${err instanceof Error ? err.message : String(err)}`;
    return { keys, known: false };
  }
}

/**
 * Connections expected in the change window at `rate` SYN/s: from this switch's measured
 * changes (window connections per SYN/s of the rate they ran at, the worst of the last five),
 * else the whole window's SYNs on the servers the change moves (`share`).
 */
export function expectedWindowFlows(
  c: DryRunContext,
  rate: number,
  share: number,
): { flows: number; ms: number; basis: string } {
  const w = expectedWindow(c);
  const measured = c.records
    .filter(
      (r) =>
        r.effectiveAt !== undefined &&
        r.windowFlows !== null &&
        (r.synRateAtHold ?? 0) > 0 &&
        r.resumed !== true,
    )
    .slice(-5);
  if (measured.length > 0) {
    const perRate = Math.max(...measured.map((r) => (r.windowFlows as number) / (r.synRateAtHold as number)));
    return {
      flows: Math.ceil(perRate * rate - 1e-9),
      ms: w.ms,
      basis: `${w.basis}; connections: the most this switch's last ${measured.length} changes counted in their window for their SYN rate (${measured.map((r) => `${r.windowFlows as number} at ${r.synRateAtHold as number}/s`).join(', ')}), at ${Math.round(rate * 10) / 10}/s now`,
    };
  }
  return {
    flows: Math.ceil((rate * w.ms * share) / 1000 - 1e-9),
    ms: w.ms,
    basis: `${w.basis}; connections: every SYN of the window on the servers the change moves (${Math.round(share * 1000) / 10} %), none measured yet`,
  };
}

/**
 * The change window to expect: this switch's measured windows (hold to effective), else the settle times and
 * the declared programming delay.
 */
export function expectedWindow(c: DryRunContext): { ms: number; basis: string } {
  const measured = c.records
    .filter((r) => r.effectiveAt !== undefined && r.heldAt !== undefined && r.resumed !== true)
    .slice(-5)
    .map((r) => (r.effectiveAt as number) - (r.heldAt as number));
  const declared = c.rt.adapter.capabilities.groupProgramDelayMs;
  if (measured.length > 0) {
    const worst = Math.max(...measured);
    return {
      ms: Math.round(worst + c.settleMs),
      basis: `the longest of this switch's last ${measured.length} changes (hold to effective ${measured.map((m) => Math.round(m)).join(', ')} ms), plus the settle time`,
    };
  }
  return {
    ms: Math.round(2 * c.settleMs + declared),
    basis: `no change measured on this switch yet: twice the settle time plus the switch's declared programming delay (${declared} ms)`,
  };
}

/**
 * The switch's free pin entries as it reports them now (shared with other owners), less flowpin's entries
 * still being programmed.
 */
export async function freeEntries(rt: SwitchRuntime): Promise<number> {
  const r = rt.reconciler;
  if (!rt.adapter.capabilities.reportsTableUsage) return r.freeEntries();
  try {
    const u = await rt.adapter.pinTableUsage();
    return Math.max(0, Math.min(u.capacity, rt.adapter.capabilities.pinTableSize) - u.used - r.pendingCount);
  } catch (err) {
    throw new FlowpinError(
      'switch-unavailable',
      `dry run on ${rt.name}: cannot read the pin table: ${err instanceof Error ? err.message : String(err)}`,
      undefined,
      { cause: err },
    );
  }
}

export function livenessNote(source: LivenessSource, lifetimeS: number): string {
  switch (source) {
    case 'both-ways':
      return 'the mirror carries FIN and RST both ways: a connection is tracked until it closes';
    case 'client-side':
    case 'server-side':
      return `the mirror carries FIN and RST from one side only: an open connection is live; once half-closed it is unknown until its pin idles out or it ages out after ${lifetimeS} s`;
    case 'syn-only':
      return `syn-only: the mirror shows SYNs but no FIN or RST, so flowpin cannot tell an ended connection from a live one; every tracked connection counts as unknown and ages out ${lifetimeS} s after it was last seen (mirror FIN and RST to track them exactly)`;
    case 'not-yet-known':
      return 'too few connections seen yet to tell whether the mirror carries FIN and RST';
  }
}

/**
 * The dry run of a drain (`kind` drain) or an addition of `nh` to `vip`. `fresh`: the free room
 * read from the switch now (a dry run asked for); otherwise as of the last resync (a change's
 * own check, which must not wait on a slow switch: its bound is checked again, against what
 * the switch really did, right before the group write).
 */
export async function dryRun(
  c: DryRunContext,
  kind: ChangeKind,
  vip: VipState,
  nh: string,
  fresh = true,
): Promise<DryRunReport> {
  const rt = c.rt;
  // A change's own check asks the switch nothing: an addition then counts every flow of the VIP as moved (an
  // upper bound).
  const moved =
    kind === 'drain'
      ? { keys: rt.flowsOn(vip.address, nh), known: true }
      : fresh
        ? await movedFlows(c, vip, nh)
        : { keys: [...vip.members].flatMap((m) => rt.flowsOn(vip.address, m)), known: false };
  const r = rt.reconciler;
  let pinned = 0;
  let live = 0;
  for (const k of moved.keys) {
    const id = idOfKey(k);
    if (r.isProgrammed(id, r.desired.get(id)?.nexthop)) pinned++;
    if (rt.livenessOf(k) === 'live') live++;
  }
  const toPin = moved.keys.length - pinned;
  const free = fresh ? await freeEntries(rt) : rt.reconciler.freeEntries();
  // Queued flows are resolved before the group write (the barrier waits for them); those the switch could not
  // resolve are at risk.
  const unresolvable = rt.unresolvedOn(vip.address).length;
  const unresolved = rt.queuedOn(vip.address, 0, Number.MAX_SAFE_INTEGER).length + unresolvable;
  const atRiskBy = zeroRisk();
  atRiskBy['table-full'] = Math.max(0, toPin - free);
  atRiskBy.unresolved = unresolvable;
  atRiskBy.shed =
    rt.shedOn(vip.address).length + rt.shedForgottenOn(vip.address, kind === 'drain' ? nh : undefined);
  const rate = rt.synRateOf(vip);
  const members = Math.max(1, vip.members.size);
  // The share of the VIP's connections the change moves: a drain's nexthop's, an addition's moved ones (all
  // where not known).
  const vipFlows = [...vip.members].reduce((n, m) => n + rt.flowsOn(vip.address, m).length, 0);
  const share =
    kind === 'drain'
      ? vipFlows > 0
        ? moved.keys.length / vipFlows
        : 1 / members
      : moved.known
        ? vipFlows > 0
          ? moved.keys.length / vipFlows
          : 1 / (members + 1)
        : 1;
  const u = rt.watchLedger.unseen(rate);
  const unseen = Math.round(u.connections * share);
  // SYNs in the window go to the old group's server; those the change moves are at risk: a drained server's,
  // or an addition's moved buckets.
  const w = expectedWindowFlows(c, rate, kind === 'drain' ? 1 / members : 1 / (members + 1));
  const expectedWindowFlowsN = w.flows;
  const mirror = rt.mirrorHealth();
  const figures = riskFigures({
    atRiskBy,
    unseen,
    expectedWindowFlows: expectedWindowFlowsN,
    windowThreshold: c.windowThreshold,
    uncountable:
      mirror.state === 'ok'
        ? null
        : `the mirror of ${rt.name} is ${mirror.state}${mirror.why === null ? '' : ` (${mirror.why})`}`,
  });
  return {
    dryRun: true,
    switch: rt.name,
    vip: vip.address,
    nexthop: nh,
    flowsToPin: toPin,
    alreadyPinned: pinned,
    live,
    unknown: moved.keys.length - live,
    freeEntries: free,
    leftOut:
      'where the table cannot hold them all, the connections seen longest ago go without a pin (the most recently active are pinned first)',
    atRisk: figures.atRisk,
    atRiskBy,
    unresolved,
    unseen,
    unseenBasis:
      share < 1 ? `${u.basis}; ${Math.round(share * 1000) / 10} % of the VIP's connections move` : u.basis,
    warming: rt.watchLedger.warming(),
    synsSeen: vip.syns,
    synRate: Math.round(rate * 10) / 10,
    expectedWindowMs: w.ms,
    expectedWindowBasis: w.basis,
    expectedWindowFlows: expectedWindowFlowsN,
    movedFlowsKnown: moved.known,
    resolution:
      rt.resolution === 'lookup' && !rt.adapter.capabilities.resolvesNexthop ? 'none' : rt.resolution,
    liveness: mirror.liveness,
    livenessNote: livenessNote(mirror.liveness, c.lifetimeS),
    mirror,
    figures,
    windowThreshold: c.windowThreshold,
  };
}

export type { FlowSpec };
