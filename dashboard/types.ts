// Shapes the dashboard reads: the server-sent snapshot (controller/api/snapshot.ts), change
// records (controller/changes.ts), dry-run reports and flow pages.

export interface Nexthop {
  address: string;
  /** active, draining, drained (removed nexthops leave the list) */
  state: string;
  tracked: number;
  pinned: number;
  inGroup: boolean;
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
  pinned: number;
  atRisk: number;
  atRiskBy: Record<string, number>;
  windowFlows: number;
  remaining: number;
  deadlineReached?: boolean;
  error?: string;
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
  pins: { desired: number; installed: number; failed: number; capacity: number; free: number };
  vips: { address: string; nexthops: Nexthop[] }[];
  changes: ChangeRecord[];
}

export interface Snapshot {
  at: number;
  ready: boolean;
  switches: SwitchSnap[];
  simulator: { opened: number; closed: number; reset: number; active: number } | null;
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
  /** The switch's mirror: a change needs the operator's consent unless it is ok. */
  mirror?: { state: 'ok' | 'silent' | 'collapsed' | 'dropping'; why: string | null };
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
