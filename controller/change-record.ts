// A change as flowpin records it: what it is, who asked for it (the API token's name and the
// client's address) with what consent and after which dry-run figures, where it stands (its
// phase, with a time for every step it took), and its figures. The record is written durably
// before each next step (write-ahead), so a restart knows how far it got; a figure flowpin did
// not measure (lost to a kill) is null, never 0. The schema checks records read back from disk.

import { Type, type Static } from 'typebox';
import type { AtRiskReason } from './reconciler.js';

export type ChangeKind = 'drain' | 'add';
/**
 * queued -> pending -> applied -> complete (an addition) or drained (a drain; `deadline-passed`
 * first where its deadline came with connections left); failed where it stopped before its
 * group write (nothing stays changed) or could not be completed; cancelled where the operator
 * cancelled it before its group write was sent (nothing stays changed: its pins are released).
 */
export type ChangePhase =
  'queued' | 'pending' | 'applied' | 'deadline-passed' | 'drained' | 'complete' | 'failed' | 'cancelled';
/** Every phase, in the order a change may pass them. */
export const PHASES: readonly ChangePhase[] = [
  'queued',
  'pending',
  'applied',
  'deadline-passed',
  'drained',
  'complete',
  'failed',
  'cancelled',
];
export const ACTIVE_PHASES: readonly ChangePhase[] = ['queued', 'pending', 'applied', 'deadline-passed'];
export type AtRiskCounts = Record<AtRiskReason, number>;

export const AT_RISK_REASONS: readonly AtRiskReason[] = [
  'table-full',
  'refused',
  'not-programmed',
  'shed',
  'unresolved',
  'restart',
];
export const zeroRisk = (): AtRiskCounts => ({
  'table-full': 0,
  refused: 0,
  'not-programmed': 0,
  shed: 0,
  unresolved: 0,
  restart: 0,
});

/**
 * The caller's consent: how many connections the change may cost (`unbounded`: whatever flowpin counts, or
 * cannot count).
 */
export type MaxAtRisk = number | 'unbounded';

/**
 * The figures a bound is checked against: before the change (the dry run) and again right before its group
 * write.
 */
export interface RiskFigures {
  /** Connections flowpin saw that would not be kept, by reason. */
  atRisk: number;
  atRiskBy: AtRiskCounts;
  /**
   * Connections flowpin may never have seen (not watched for the whole connection lifetime): an upper bound.
   */
  unseen: number;
  /**
   * Connections expected in the change window, and whether they count against the bound (above the
   * threshold).
   */
  expectedWindowFlows: number;
  windowCounts: boolean;
  /** The mirror cannot be trusted: flowpin cannot count (only `unbounded` consents). */
  uncountable: string | null;
  /** What counts against the bound. */
  total: number;
}

/**
 * Who made a call: the name of the API token it carried (null: none, or a call made in-process) and the
 * client's address.
 */
export interface Actor {
  token: string | null;
  client: string | null;
}

export interface ResumeInfo {
  /** When flowpin resumed the change, and the phase it had reached as last written. */
  resumedAt: number;
  phaseWritten: ChangePhase;
  /** The last time flowpin's state shows it watching before the restart; the gap while it was not. */
  downSince: number | null;
  gapMs: number | null;
  /** What the record says without having measured it (read from the switch, or inferred). */
  inferred: string[];
}

export interface ProgressPoint {
  t: number;
  live: number;
  unknown: number;
  pinned: number;
}

export interface ChangeRecord {
  id: string;
  kind: ChangeKind;
  switch: string;
  vip: string;
  nexthop: string;
  phase: ChangePhase;
  /** The consent given: the most connections the change may cost. */
  maxAtRisk: MaxAtRisk;
  /** Who asked for the change (absent where it was made in-process: tests, the scenario runner). */
  requestedBy?: Actor;
  /**
   * The dry run's figures when the change was asked for: what its consent was checked against then
   * (`checked`: again before the group write).
   */
  dryRunFigures?: RiskFigures;
  /** Who cancelled it, where it was cancelled. */
  cancelledBy?: Actor;
  /** When the call was made (queued), and when its protocol started. */
  queuedAt: number;
  startedAt: number;
  /** Barrier: hold time, after which the mark was taken; the pins it relies on were programmed. */
  heldAt?: number;
  /**
   * The VIP's SYN rate when the change held (per second): how its window figures compare with another rate.
   */
  synRateAtHold?: number;
  programmedAt?: number;
  /**
   * The group write was about to be sent (durable before it is), accepted by the switch, and reported in
   * forwarding.
   */
  sentAt?: number;
  appliedAt?: number;
  effectiveAt?: number;
  /**
   * When the change's figures were counted (after it took effect and its window settled): figures without it
   * were not measured.
   */
  accountedAt?: number;
  completedAt?: number;
  /** Drain: when to stop waiting for its connections (ms), and when that came with connections left. */
  deadlineAt?: number;
  deadlinePassedAt?: number;
  /** The figures checked against the bound right before the group write. */
  checked?: RiskFigures;
  /**
   * Flows with a pin for the change the switch reported programmed before the group write left, so
   * held when it took effect (null: not measured).
   */
  pinned: number | null;
  /**
   * Pins for the change found programmed only after the group write left (window flows pinned as
   * they came, installs answered late): on the switch now, maybe not yet when the change took
   * effect, so their flows stay counted at risk or in the window (null: not measured).
   */
  pinnedLate?: number | null;
  /** Flows that needed a pin and have none programmed, in all and by reason (null: not measured). */
  atRisk: number | null;
  atRiskBy: AtRiskCounts;
  /** Flows whose SYN arrived in the change window, with no certain, programmed pin (null: not measured). */
  windowFlows: number | null;
  /**
   * Connections flowpin may never have seen that the change may move (an upper bound), and how it was made.
   */
  unseen: number | null;
  unseenBasis?: string;
  /** Drain: connections left on the nexthop (live and unknown), and pins left. */
  remaining: number;
  left?: { live: number; unknown: number; pinned: number };
  /**
   * Drain: the earliest its pinned connections can all be gone if none sends again (s), as last estimated.
   */
  estimateS?: number | null;
  progress?: ProgressPoint[];
  deadlineReached?: boolean;
  error?: string;
  /** Resumed after a restart. */
  resumed?: boolean;
  resume?: ResumeInfo;
}

const Num = Type.Number();
const NumOrNull = Type.Union([Type.Number(), Type.Null()]);
const Risk = Type.Object(
  Object.fromEntries(AT_RISK_REASONS.map((r) => [r, Type.Optional(Type.Integer({ minimum: 0 }))])),
);

/** A change record as read back from disk: checked field by field before flowpin acts on it. */
export const StoredChangeRecord = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 200 }),
    kind: Type.Enum(['drain', 'add']),
    switch: Type.String({ minLength: 1 }),
    vip: Type.String({ minLength: 2 }),
    nexthop: Type.String({ minLength: 2 }),
    phase: Type.Enum([...PHASES]),
    maxAtRisk: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Literal('unbounded')])),
    queuedAt: Num,
    startedAt: Num,
    heldAt: Type.Optional(Num),
    programmedAt: Type.Optional(Num),
    sentAt: Type.Optional(Num),
    appliedAt: Type.Optional(Num),
    effectiveAt: Type.Optional(Num),
    accountedAt: Type.Optional(Num),
    completedAt: Type.Optional(Num),
    deadlineAt: Type.Optional(Num),
    deadlinePassedAt: Type.Optional(Num),
    pinned: Type.Optional(NumOrNull),
    pinnedLate: Type.Optional(NumOrNull),
    atRisk: Type.Optional(NumOrNull),
    atRiskBy: Type.Optional(Risk),
    windowFlows: Type.Optional(NumOrNull),
    unseen: Type.Optional(NumOrNull),
    remaining: Type.Optional(Num),
  },
  { additionalProperties: true },
);

export type StoredChangeRecordT = Static<typeof StoredChangeRecord>;

/**
 * Whether a change still holds its VIP (queued, in progress, or a drain whose connections are still tracked).
 */
export function isActive(r: ChangeRecord): boolean {
  return ACTIVE_PHASES.includes(r.phase);
}
