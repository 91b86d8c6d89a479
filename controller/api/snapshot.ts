// The compact state the dashboard shows, built in one pass: switches with adapter health and
// pin table, per VIP the nexthops with state and flow counts, the changes of each switch, and
// (in the demo) the simulator's connection counters. Read-only apart from drain tracking,
// which is the same bookkeeping `GET /api/v1/switches/:switch/changes` does.

import type { ChangeRecord } from '../changes.js';
import type { Controller, SwitchStatus } from '../controller.js';

/** Connection counters of a simulated switch's traffic (the demo): what the zero-resets claim is about. */
export interface SimulatorCounters {
  opened: number;
  closed: number;
  reset: number;
  active: number;
}

export interface NexthopSnapshot {
  address: string;
  state: string;
  tracked: number;
  pinned: number;
  inGroup: boolean;
}

export interface Snapshot {
  at: number;
  ready: boolean;
  switches: (SwitchStatus & { vips: { address: string; nexthops: NexthopSnapshot[] }[]; changes: ChangeRecord[] })[];
  simulator: SimulatorCounters | null;
}

/** Changes per switch in a snapshot: the ones in progress and the most recent others. */
const RECENT_CHANGES = 20;

export function buildSnapshot(controller: Controller, simulator: (() => SimulatorCounters) | undefined): Snapshot {
  const { ready, switches } = controller.readiness();
  return {
    at: Date.now(),
    ready,
    switches: switches.map((s) => {
      const rt = controller.runtime(s.name);
      const cm = controller.changeManager(s.name);
      cm.track();
      return {
        ...s,
        vips: [...rt.vips.values()].map((v) => ({
          address: v.address,
          nexthops: [...v.nexthops].sort().map((nh) => ({ address: nh, state: cm.stateOf(v, nh), tracked: rt.flowsOn(v.address, nh).length, pinned: rt.pinnedOn(v.address, nh), inGroup: v.members.has(nh) })),
        })),
        changes: cm.records.slice(-RECENT_CHANGES),
      };
    }),
    simulator: simulator === undefined ? null : simulator(),
  };
}
