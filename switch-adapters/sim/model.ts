// What the in-process adapter drives of the simulated switch: its pin table (DirectFlow-style
// named flows), its VIP groups, its look-up and the predictions its bucket table allows. The
// simulator's SimSwitch (switch-sim/sim-switch.ts) has this shape; the adapter depends on the
// shape only, so the adapter layer does not reach into the simulator.

import type { ServerIdentity } from '../contract.js';

export type SimPinStatus = 'pending' | 'programmed' | 'table-full' | 'idle-timeout' | 'hard-timeout';

/** A pin as the adapter writes it: an exact TCP match and an output nexthop, DirectFlow's way. */
export interface SimPinSpec {
  source: 'directflow';
  match: { family: 4 | 6; src: string; dst: string; protocol: number; sport: number; dport: number };
  nexthop: string;
  idleTimeoutS: number;
  hardTimeoutS: number;
  persistent: boolean;
  priority: number;
}

export interface SimPinEntry {
  readonly name: string;
  readonly nexthop?: string | undefined;
  readonly status: SimPinStatus;
  readonly packets: number;
  readonly bytes: number;
}

export interface SimPinTable {
  readonly capacity: number;
  /** Entries programmed (of any source). */
  readonly programmed: number;
  /** Entries held by other owners. */
  readonly reserved: number;
  get(name: string): SimPinEntry | undefined;
  all(): readonly SimPinEntry[];
  upsert(name: string, spec: SimPinSpec, now: number): SimPinEntry;
  remove(name: string): boolean;
  /** Marks entries idle past their timeout (the switch's own aging; no configuration changes). */
  expire(now: number): number;
  /** Programs the pending entries whose programming delay has passed. */
  settle(now: number): void;
}

export interface SimulatedSwitch {
  readonly pins: SimPinTable;
  readonly options: { readonly ecmpMode: 'resilient' | 'mod-n'; readonly hashSeed: number };
  readonly vips: ReadonlyMap<string, { readonly group: { members(): readonly string[] } }>;
  directflowEnabled: boolean;
  /** The switch's clock (simulated ms). */
  readonly now: () => number;
  ecmpNexthop(src: string, dst: string, protocol: number, sport: number, dport: number): string | undefined;
  ecmpNexthopSeeded(
    src: string,
    dst: string,
    protocol: number,
    sport: number,
    dport: number,
    seed: number,
  ): string | undefined;
  movedByAdd(
    vip: string,
    nexthop: string,
    flows: readonly { src: string; dst: string; sport: number; dport: number }[],
  ): boolean[];
  serverIdentities(): ServerIdentity[];
  programmedMembers(vip: string): readonly string[];
  groupAdd(vip: string, nexthop: string): void;
  groupRemove(vip: string, nexthop: string): void;
}
