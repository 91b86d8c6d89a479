// Ground truth of a torture run and the checks against it: each reset connection (the
// simulator's reset log) is put on the change it happened across and classed (protected:
// SYN seen well before the barrier and a programmed pin; seen but unpinned; in the change
// window; opened while the controller was down), then each change record's figures are
// compared with what happened. Pure functions over what the runner gathered.

import type { ResetLine } from '../switch-sim/reset-log.js';

/**
 * Margin between a SYN crossing the switch and flowpin knowing it: the mirror's path (a
 * datagram on loopback), the receiver's batch and the resolver (the reply mirror's SYN-ACK).
 * A connection whose SYN crossed within this margin before the barrier counts as a window
 * flow, not a protected one.
 */
export const MIRROR_MARGIN_MS = 250;

/** A change as the runner made and watched it. */
export interface Watched {
  id: string | undefined;
  kind: 'drain' | 'add';
  vip: string;
  nexthop: string;
  callAt: number;
  status: number;
  /** Wall time the runner first saw each phase (log line or API poll). */
  seen: Record<string, number>;
  /**
   * Live connections (not closing: both FINs sent), closing ones and programmed pins on the drained nexthop
   * when the record was first seen final.
   */
  atFinal?: { at: number; phase: string; live: number; closing?: number; pins: number };
  /** Programmed pins toward the nexthop (drain) when the record was first seen effective. */
  pinsAtEffective?: number;
  pinsSampledAt?: number;
  /** The simulator's acceptance of the group write (wall ms), when it came. */
  groupWriteAt?: number;
  /** Programmed pins toward the nexthop (drain) when the group write reached the switch's forwarding. */
  pinsAtWrite?: number;
  /** Of those, the pins of connections the server still held open. */
  openPinsAtWrite?: number;
}

/** What the controller's API says of a change at the end (fields the runner reads; others pass). */
export interface RecordView {
  id: string;
  kind: string;
  phase: string;
  vip: string;
  nexthop: string;
  /** null where the record says it did not measure them (a window across a kill). */
  pinned?: number | null;
  pinnedLate?: number | null;
  atRisk?: number | null;
  windowFlows?: number | null;
  remaining?: number;
  heldAt?: number;
  sentAt?: number;
  appliedAt?: number;
  effectiveAt?: number;
  completedAt?: number;
  deadlineReached?: boolean;
  resumed?: boolean;
  [k: string]: unknown;
}

export interface Downtime {
  /** The controller was killed (or stopped) at `from` and listened for the mirror again at `to`. */
  from: number;
  to: number;
}

export interface ChangeTruth {
  id: string | undefined;
  kind: string;
  nexthop: string;
  phase: string | undefined;
  resumed: boolean;
  pinned: number | null | undefined;
  /** A drain: the pins the switch held toward the nexthop when the group write reached forwarding. */
  switchPinned?: number;
  /** Of those, the pins of connections still open on the server. */
  switchPinnedOpen?: number;
  atRisk: number | null | undefined;
  windowFlows: number | null | undefined;
  resets: number;
  protected: number;
  seenUnpinned: number;
  window: number;
  blind: number;
  counted: number;
  uncounted: number;
  callToAppliedMs: number | undefined;
  heldToSentMs: number | undefined;
  /** From the switch accepting the group write to the record's appliedAt. */
  appliedLagMs: number | undefined;
  false: string[];
}

/** Flows a change may have counted in a gap while flowpin was down (the field's name is the controller's). */
export function gapCount(rec: RecordView): number {
  for (const k of ['unseen', 'gapFlows', 'unseenEstimate']) if (typeof rec[k] === 'number') return rec[k];
  const gap = rec['gap'];
  if (typeof gap === 'object' && gap !== null) {
    const g = gap as Record<string, unknown>;
    for (const k of ['flows', 'estimate', 'connections']) if (typeof g[k] === 'number') return g[k];
  }
  return 0;
}

const inDowntime = (t: number, down: readonly Downtime[]): boolean =>
  down.some((d) => t >= d.from - MIRROR_MARGIN_MS && t <= d.to + MIRROR_MARGIN_MS);

/** Which change each reset happened across: the last change of its VIP called before it, that it concerns. */
export function attribute(
  resets: readonly ResetLine[],
  changes: readonly Watched[],
): { by: Map<Watched, ResetLine[]>; unattributed: ResetLine[] } {
  const by = new Map<Watched, ResetLine[]>(changes.map((c) => [c, []]));
  const unattributed: ResetLine[] = [];
  for (const r of resets) {
    const cands = changes.filter(
      (c) =>
        c.vip === r.dst &&
        c.callAt <= r.at &&
        (c.kind === 'drain' ? r.server === c.nexthop : r.reached === c.nexthop),
    );
    const c = cands.sort((a, b) => b.callAt - a.callAt)[0];
    if (c === undefined) unattributed.push(r);
    else by.get(c)?.push(r);
  }
  return { by, unattributed };
}

export const flowName = (r: { src: string; sport: number; dst: string; dport: number }): string =>
  `${r.src.includes(':') ? `[${r.src}]` : r.src}:${r.sport}->${r.dst.includes(':') ? `[${r.dst}]` : r.dst}:${r.dport}`;

/** Checks one change against the resets it caused and what the simulator showed. */
export function judge(
  c: Watched,
  rec: RecordView | undefined,
  resets: readonly ResetLine[],
  down: readonly Downtime[],
  counted: Set<string> | undefined,
): ChangeTruth {
  const held = rec?.heldAt ?? c.seen['held'] ?? c.callAt;
  let protectedN = 0;
  let seenUnpinned = 0;
  let window = 0;
  let blind = 0;
  for (const r of resets) {
    if (inDowntime(r.openedAt, down)) blind++;
    else if (r.openedAt < held - MIRROR_MARGIN_MS) {
      if (r.pinned) protectedN++;
      else seenUnpinned++;
    } else window++;
  }
  const atRisk = rec?.atRisk;
  const windowFlows = rec?.windowFlows;
  const countedN = (atRisk ?? 0) + (windowFlows ?? 0) + (rec === undefined ? 0 : gapCount(rec));
  // Connections opened while flowpin was down cannot be named in its list: the record's gap estimate covers
  // them, up to its size.
  const uncounted =
    counted === undefined
      ? Math.max(0, resets.length - countedN)
      : resets.filter((r) => !inDowntime(r.openedAt, down) && !counted.has(flowName(r))).length +
        Math.max(0, blind - (rec === undefined ? 0 : gapCount(rec)));
  const falseRec: string[] = [];
  if (rec === undefined) {
    if ((c.status >= 200 && c.status < 300) || c.seen['record'] !== undefined)
      falseRec.push(
        `lost: the change was ${c.status >= 200 && c.status < 300 ? 'accepted' : 'recorded'} and its record is gone`,
      );
  } else {
    const final = rec.phase !== 'queued' && rec.phase !== 'pending' && rec.phase !== 'applied';
    if (
      c.kind === 'drain' &&
      final &&
      rec.phase !== 'failed' &&
      rec.deadlineReached !== true &&
      c.atFinal !== undefined &&
      c.atFinal.live > 0
    ) {
      falseRec.push(
        `${rec.phase} with ${c.atFinal.live} live connections and ${c.atFinal.pins} pins left on ${c.nexthop}`,
      );
    }
    // The switch's own counts when the write reached its forwarding: `pinned` lies between the pins of
    // the connections the server still held (each one relied on) and every pin toward the nexthop (some
    // are of connections already closed, lingering or not removed yet), give or take max(20, 25 %) for
    // the time from the write to the effect. Without them, a sample taken close to the effect: pins come
    // (late pins of window flows) and go (ended connections).
    if (c.kind === 'drain' && typeof rec.pinned === 'number' && rec.resumed !== true) {
      const tol = (t: number): number => Math.max(20, 0.25 * t);
      const sampled =
        c.pinsAtEffective !== undefined &&
        c.pinsSampledAt !== undefined &&
        rec.effectiveAt !== undefined &&
        c.pinsSampledAt - rec.effectiveAt < 300
          ? c.pinsAtEffective
          : undefined;
      const high = c.pinsAtWrite ?? sampled;
      const low = c.pinsAtWrite === undefined ? sampled : (c.openPinsAtWrite ?? c.pinsAtWrite);
      if (high !== undefined && rec.pinned > high + tol(high))
        falseRec.push(
          `pinned ${rec.pinned}, the switch had ${high} pins toward ${c.nexthop} when it took effect`,
        );
      // Pins found only after the write left (`pinnedLate`) may have been there at the effect.
      else if (low !== undefined && rec.pinned + (rec.pinnedLate ?? 0) < low - tol(low))
        falseRec.push(
          `pinned ${rec.pinned} (+${rec.pinnedLate ?? 0} late), the switch had ${low} pins toward ${c.nexthop} ${c.pinsAtWrite === undefined ? '' : 'of connections still open '}when it took effect`,
        );
    }
    if (atRisk !== undefined && seenUnpinned > (atRisk ?? 0) + (rec === undefined ? 0 : gapCount(rec)))
      falseRec.push(
        `atRisk ${atRisk}, ${seenUnpinned} connections seen before the barrier without a pin were reset`,
      );
    // A window not measured reads null (the record says so): no figure to contradict.
    if (typeof windowFlows === 'number' && window > windowFlows)
      falseRec.push(`windowFlows ${windowFlows}, ${window} connections opened in the window were reset`);
    // Applied before the switch accepted the write is false; after it, late by the answer's way back
    // (a figure, not a falsehood), unless the write was accepted before a kill and the record
    // dates it after the restart: inferred, not measured.
    if (rec.appliedAt !== undefined && c.groupWriteAt !== undefined) {
      if (rec.appliedAt < c.groupWriteAt - 50)
        falseRec.push(
          `appliedAt ${c.groupWriteAt - rec.appliedAt} ms before the switch accepted the group write`,
        );
      const killedAfterWrite = down.find(
        (d) => d.from >= (c.groupWriteAt as number) && d.to <= (rec.appliedAt as number),
      );
      if (killedAfterWrite !== undefined)
        falseRec.push(
          `appliedAt ${rec.appliedAt - c.groupWriteAt} ms after the switch accepted the group write, dated after the restart (inferred, not measured)`,
        );
    }
    // The switch accepted the group write and the controller was killed before the record saw
    // the change take effect: its window ran across the kill, and no process measured it. The
    // record must say so (null), not give figures that look measured.
    if (rec.resumed === true && c.groupWriteAt !== undefined) {
      const across = down.find(
        (d) =>
          d.from >= (c.groupWriteAt as number) &&
          (rec.effectiveAt === undefined || rec.effectiveAt >= d.from),
      );
      const measuredLooking = (['windowFlows', 'pinned'] as const).filter((k) => typeof rec[k] === 'number');
      if (across !== undefined && measuredLooking.length > 0)
        falseRec.push(
          `${measuredLooking.map((k) => `${k} ${String(rec[k])}`).join(', ')} for a window that ran across the kill (the switch accepted the group write before it): not measured, yet not null`,
        );
    }
    if (
      rec.resumed === true &&
      final &&
      rec.phase !== 'failed' &&
      resets.length > 0 &&
      (rec.pinned ?? 0) + (rec.atRisk ?? 0) + (rec.windowFlows ?? 0) + gapCount(rec) === 0
    ) {
      falseRec.push(
        `resumed ${rec.phase} with pinned 0, atRisk 0, windowFlows 0 while ${resets.length} connections were reset`,
      );
    }
  }
  return {
    id: rec?.id ?? c.id,
    kind: c.kind,
    nexthop: c.nexthop,
    phase: rec?.phase,
    resumed: rec?.resumed === true,
    pinned: rec?.pinned,
    atRisk,
    windowFlows,
    resets: resets.length,
    protected: protectedN,
    seenUnpinned,
    window,
    blind,
    counted: countedN,
    uncounted,
    callToAppliedMs: rec?.appliedAt === undefined ? undefined : rec.appliedAt - c.callAt,
    heldToSentMs: rec?.sentAt === undefined || rec.heldAt === undefined ? undefined : rec.sentAt - rec.heldAt,
    appliedLagMs:
      rec?.appliedAt === undefined || c.groupWriteAt === undefined
        ? undefined
        : rec.appliedAt - c.groupWriteAt,
    ...(c.kind === 'drain' && c.pinsAtWrite !== undefined ? { switchPinned: c.pinsAtWrite } : {}),
    ...(c.kind === 'drain' && c.openPinsAtWrite !== undefined ? { switchPinnedOpen: c.openPinsAtWrite } : {}),
    false: falseRec,
  };
}

/**
 * The journal's loss at a kill: SYNs sent after the last snapshot and before the kill that a restart would
 * not know.
 */
export function journalLoss(
  syns: readonly { t: number; flow: string }[],
  restored: Set<string>,
  since: number,
  killAt: number,
): { lossWindowMs: number; missing: number; lastSentMs: number; lastRestoredMs: number } {
  let earliestMissing = Infinity;
  let missing = 0;
  let lastSent = -Infinity;
  let lastRestored = -Infinity;
  for (const s of syns) {
    if (s.t <= since || s.t > killAt) continue;
    lastSent = Math.max(lastSent, s.t);
    if (restored.has(s.flow)) lastRestored = Math.max(lastRestored, s.t);
    else {
      missing++;
      earliestMissing = Math.min(earliestMissing, s.t);
    }
  }
  const rel = (t: number): number => (Number.isFinite(t) ? killAt - t : -1);
  return {
    lossWindowMs: missing === 0 ? 0 : killAt - earliestMissing,
    missing,
    lastSentMs: rel(lastSent),
    lastRestoredMs: rel(lastRestored),
  };
}
