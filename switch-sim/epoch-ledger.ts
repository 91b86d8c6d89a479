// What the simulated switch saw of its writers' epochs, for a test bed under high
// availability. A DirectFlow switch keeps no fencing token (docs/fencing.md): the writer's
// epoch is known only from the flow's name (lib/pin-name.ts), so each pin write's arrival
// time and epoch are recorded here, and a write of a lower epoch arriving after a higher
// epoch's first write is a stale write that landed. Names that are not flowpin's pins (other
// owners' flows, the gNMI model's rules) are not counted.

import { parsePinName } from '../lib/pin-name.js';

export interface EpochWrite {
  name: string;
  epoch: bigint;
  /** Arrival, on the switch's clock (ms). */
  at: number;
}

/** Writes kept for inspection; counts go on past it. */
const KEPT = 10_000;

export class EpochLedger {
  /** The highest epoch seen in a write, and when its first write arrived. */
  highest = 0n;
  highestSince: number | undefined;
  /** Pin writes of flowpin's. */
  writes = 0;
  /** Writes of a lower epoch that arrived after a higher epoch's first write. */
  staleLanded = 0;
  readonly stale: EpochWrite[] = [];
  /** The wall-clock time (ms) of the last write of each epoch: when a writer's writes stopped landing. */
  readonly lastWallAt = new Map<bigint, number>();

  /** Records a write of the named flow arriving at `at`. */
  record(name: string, at: number): void {
    const parsed = parsePinName(name);
    if (parsed === undefined) return;
    this.writes++;
    const epoch = parsed.epoch;
    this.lastWallAt.set(epoch, Date.now());
    if (epoch > this.highest || this.highestSince === undefined) {
      this.highest = epoch;
      this.highestSince = at;
    } else if (epoch < this.highest) {
      this.staleLanded++;
      if (this.stale.length < KEPT) this.stale.push({ name, epoch, at });
    }
  }
}
