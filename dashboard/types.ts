// Shapes the dashboard reads: the server-sent snapshot (controller/api/snapshot.ts), change
// records (controller/changes.ts), dry-run reports and flow pages.

/** controller/drain-estimate.ts */
export interface DrainEstimate {
  pinned: number;
  idleTimeoutS: number;
  earliestS: number;
  medianAgeS: number | null;
  oldestAgeS: number | null;
}

export interface Nexthop {
  address: string;
  /** active, draining, drained (removed nexthops leave the list; the page shows them as removed) */
  state: string;
  tracked: number;
  pinned: number;
  inGroup: boolean;
  estimate?: DrainEstimate;
}

export interface MirrorHealth {
  state: 'ok' | 'silent' | 'collapsed';
  syns: number;
  synRate: number;
  usualRate: number;
  lastSynAgoS: number | null;
  why: string | null;
  /** Which connection ends the mirror shows: both ways, one side, none (syn-only), or not known yet. */
  liveness?: 'both-ways' | 'client-side' | 'server-side' | 'syn-only' | 'not-yet-known';
}

export interface MirrorCounters {
  frames: number;
  decoded: number;
  decodeDrops: number;
  dropped: Record<string, number>;
  socketDrops: number | null;
  backlogDrops: number;
  listening: string[];
}

export interface ChangeRecord {
  id: string;
  kind: string;
  switch: string;
  vip: string;
  nexthop: string;
  phase: string;
  queuedAt: number;
  startedAt: number;
  completedAt?: number;
  deadlineAt?: number;
  deadlinePassedAt?: number;
  /** The operator's bound on the connections the change may cost. */
  maxAtRisk?: number | 'unbounded';
  /** Who asked for it (the API token's name, the client's address), and who cancelled it. */
  requestedBy?: Actor;
  cancelledBy?: Actor;
  /**
   * The figures its bound was checked against: the dry run when asked for, and right before the group write.
   */
  dryRunFigures?: RiskFigures;
  checked?: RiskFigures;
  /** Figures the change measured (null: not measured, e.g. across a restart). */
  pinned: number | null;
  atRisk: number | null;
  atRiskBy: Record<string, number>;
  windowFlows: number | null;
  remaining: number;
  /** Drain: connections and pins left on the nexthop, and their history as the server sampled it. */
  left?: { live: number; unknown: number; pinned: number };
  progress?: ProgressPoint[];
  /** Drain: the earliest its pins can all be gone if none sends again (s), as the server last estimated. */
  estimateS?: number | null;
  /** Server resets seen on the reply mirror after the change (null: the switch does not mirror them). */
  resetsSeen: number | null;
  deadlineReached?: boolean;
  error?: string;
}

/** controller/change-record.ts */
export interface Actor {
  token: string | null;
  client: string | null;
}

/** controller/change-record.ts: what counts against a change's bound. */
export interface RiskFigures {
  atRisk: number;
  atRiskBy: Record<string, number>;
  unseen: number;
  expectedWindowFlows: number;
  windowCounts: boolean;
  uncountable: string | null;
  total: number;
}

/** One sample of a drain's progress, kept by the server (controller/changes.ts). */
export interface ProgressPoint {
  t: number;
  live: number;
  unknown: number;
  pinned: number;
}

export interface SwitchSnap {
  name: string;
  adapter: string;
  connected: boolean;
  inSync: boolean;
  reconcileFailures: number;
  blocked: string | null;
  lastError: string | null;
  queue: number;
  flows: number;
  mirror: MirrorHealth;
  pins: {
    desired: number;
    installed: number;
    failed: number;
    capacity: number;
    free: number;
    table?: 'ok' | 'nearly-full' | 'full';
  };
  vips: { address: string; nexthops: Nexthop[] }[];
  changes: ChangeRecord[];
}

export interface Snapshot {
  at: number;
  ready: boolean;
  switches: SwitchSnap[];
  simulator: { opened: number; closed: number; reset: number; active: number } | null;
  mirror: MirrorCounters;
  timeouts: { pinIdleS: number; flowMaxAgeS: number };
}

export interface DryRun {
  dryRun: true;
  switch: string;
  vip: string;
  nexthop: string;
  flowsToPin: number;
  alreadyPinned: number;
  freeEntries: number;
  atRisk: number;
  atRiskBy: Record<string, number>;
  unresolved: number;
  synRate: number;
  expectedWindowMs: number;
  expectedWindowFlows: number;
  movedFlowsKnown: boolean;
  resolution: 'lookup' | 'observe' | 'both' | 'none';
  /** The switch's mirror: a change needs the operator's consent unless it is ok. */
  mirror?: { state: 'ok' | 'silent' | 'collapsed' | 'dropping'; why: string | null };
  /** Connections flowpin may never have seen (an upper bound), and how it was made. */
  unseen?: number;
  unseenBasis?: string;
  /** What a consent bound is checked against: its total, or why flowpin cannot count. */
  figures?: { total: number; uncountable: string | null };
  /** Connections expected in the change window count against the bound only above this many. */
  windowThreshold?: number;
}

/** GET /api/v1/switches/:switch/vips/:vip/history (controller/api/vip-history.ts) */
export interface VipHistory {
  switch: string;
  vip: string;
  intervalS: number;
  spanS: number;
  now: { t: number; live: number; pinned: number };
  samples: { t: number; live: number; pinned: number }[];
}

export interface Flow {
  switch: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  nexthop: string | null;
  pinned: boolean;
  lastSeen: number;
}

export interface FlowPage {
  total: number;
  offset: number;
  limit: number;
  flows: Flow[];
}

/** GET /api/v1/flows/:switch/:src/:sport/:dst/:dport (controller/api/flow-detail.ts) */
export interface FlowDetail {
  switch: string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  nexthop: string | null;
  learned: { how: 'look-up' | 'adopted' | 'unresolved'; detail: string };
  firstSeen: number;
  lastSeen: number;
  pin: {
    state: 'programmed' | 'pending' | 'failed' | 'none';
    wantedFor: string | null;
    reason: string | null;
    packets: number | null;
    lastActive: number | null;
  };
  idle: {
    pinIdleTimeoutS: number;
    agedBy: 'switch' | 'controller';
    pinLeftS: number | null;
    trackedLeftS: number;
  };
}
