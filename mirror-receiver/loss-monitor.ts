// Mirror frames lost before decoding, as readiness needs them: the kernel's drops for each
// mirror socket (its receive buffer was full) and the worker's backlog drops (the main thread
// was too far behind). A lost frame may be a SYN flowpin never saw, whose connection it then
// cannot protect: a loss within the last window makes every switch's mirror `dropping` (not
// ready; a change needs consent), because the kernel drops a datagram before anyone reads
// which switch sent it. A window with no new loss makes the mirror trusted again.

import type { ReceiverStatus } from './receiver.js';

/** How long after the last lost frame the mirror stays untrusted, by default (the SYN rate window). */
export const MIRROR_LOSS_WINDOW_MS = 10_000;

export interface MirrorLoss {
  /** Frames lost since start: kernel socket drops (where known) plus backlog drops. */
  dropped: number;
  /** The last loss was within the window. */
  recent: boolean;
  why: string | null;
}

export class MirrorLossMonitor {
  private last = 0;
  private lastLossAt: number | undefined;
  private lastWhy: string | null = null;

  constructor(
    private readonly status: () => ReceiverStatus,
    private readonly now: () => number,
    private readonly windowMs = MIRROR_LOSS_WINDOW_MS,
  ) {}

  /** Reads the receiver's counters and says whether frames were lost within the window. */
  sample(): MirrorLoss {
    const st = this.status();
    const dropped = (st.socketDrops ?? 0) + st.backlogDrops;
    const now = this.now();
    if (dropped > this.last) {
      const where = st.sockets
        .filter((s) => (s.drops ?? 0) > 0)
        .map((s) => `${s.source}: ${s.drops ?? 0}, receive buffer ${s.receiveBufferBytes} bytes`);
      if (st.backlogDrops > 0) where.push(`backlog: ${st.backlogDrops}`);
      this.lastWhy = `${dropped - this.last} mirrored frames lost before decoding (${where.join('; ')}): SYNs among them are connections flowpin cannot protect`;
      this.lastLossAt = now;
      this.last = dropped;
    }
    const recent = this.lastLossAt !== undefined && now - this.lastLossAt < this.windowMs;
    return { dropped, recent, why: recent ? this.lastWhy : null };
  }
}
