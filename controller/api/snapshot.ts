// The compact state the dashboard shows, built in one pass: switches with adapter health and
// pin table, per VIP the nexthops with state and flow counts, the changes of each switch, and
// (in the demo) the simulator's connection counters. Read-only apart from drain tracking,
// which is the same bookkeeping `GET /api/v1/switches/:switch/changes` does.

import type { ChangeRecord } from '../changes.js';
import type { Controller, SwitchStatus } from '../controller.js';
import { estimateDrain, type DrainEstimate, type PinAge } from '../drain-estimate.js';
import type { SwitchRuntime } from '../switch-runtime.js';
import { flowKey } from '../flow-table.js';
import { tupleOf } from '../../mirror-receiver/tuple.js';

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
  /** While draining: when its pinned flows can reach zero (drain-estimate.ts). */
  estimate?: DrainEstimate;
}

/** The mirror receiver's counters (every switch's frames arrive through it). */
export interface MirrorCounters {
  frames: number;
  decoded: number;
  /** Frames the decoder dropped (not GRE/ERSPAN, not TCP, truncated...), by reason and in all. */
  decodeDrops: number;
  dropped: Record<string, number>;
  /** Datagrams the kernel dropped for a full receive buffer; null where unknown. */
  socketDrops: number | null;
  /** Decoded events dropped because the controller was that far behind. */
  backlogDrops: number;
  listening: string[];
  /**
   * What reads each UDP mirror socket (recvmmsg or dgram), by source, and why dgram where the native reader
   * is not built.
   */
  readers: { source: string; reader: string; note?: string }[];
}

export interface Snapshot {
  at: number;
  ready: boolean;
  switches: (SwitchStatus & {
    vips: { address: string; nexthops: NexthopSnapshot[] }[];
    changes: ChangeRecord[];
  })[];
  simulator: SimulatorCounters | null;
  mirror: MirrorCounters;
  timeouts: { pinIdleS: number; flowMaxAgeS: number };
}

/** Changes per switch in a snapshot: the ones in progress and the most recent others. */
const RECENT_CHANGES = 20;

/**
 * The pins wanted on a nexthop: each flow's SYN time (a pin asked for by a change is younger than its flow)
 * and its counter's last move.
 */
function pinAges(controller: Controller, rt: SwitchRuntime, vip: string, nexthop: string): PinAge[] {
  const r = rt.reconciler;
  const out: PinAge[] = [];
  for (const [id, p] of r.desired) {
    if (p.nexthop !== nexthop || p.flow.dst !== vip) continue;
    const seen = controller.flowTable.entry(flowKey(rt.id, tupleOf(p.flow)))?.lastSeen ?? p.since;
    out.push({ since: Math.min(seen, p.since), lastActive: r.installed.get(id)?.lastActive ?? p.since });
  }
  return out;
}

function mirrorCounters(controller: Controller): MirrorCounters {
  const s = controller.receiver.status();
  return {
    frames: s.frames,
    decoded: s.decoded,
    decodeDrops: Object.values(s.dropped).reduce((a, n) => a + n, 0),
    dropped: s.dropped,
    socketDrops: s.socketDrops,
    backlogDrops: s.backlogDrops,
    listening: s.listening,
    readers: s.sockets.map((k) => ({
      source: k.source,
      reader: k.reader,
      ...(k.readerNote === undefined ? {} : { note: k.readerNote }),
    })),
  };
}

export function buildSnapshot(
  controller: Controller,
  simulator: (() => SimulatorCounters) | undefined,
): Snapshot {
  const { ready, switches } = controller.readiness();
  const timeouts = controller.timeouts;
  const now = controller.now();
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
          nexthops: [...v.nexthops].sort().map((nh): NexthopSnapshot => {
            const state = cm.stateOf(v, nh);
            const n: NexthopSnapshot = {
              address: nh,
              state,
              tracked: rt.flowsOn(v.address, nh).length,
              pinned: rt.pinnedOn(v.address, nh),
              inGroup: v.members.has(nh),
            };
            if (state === 'draining')
              n.estimate = estimateDrain(pinAges(controller, rt, v.address, nh), timeouts.pinIdleS, now);
            return n;
          }),
        })),
        changes: cm.withResets(cm.records.slice(-RECENT_CHANGES)),
      };
    }),
    simulator: simulator === undefined ? null : simulator(),
    mirror: mirrorCounters(controller),
    timeouts,
  };
}
