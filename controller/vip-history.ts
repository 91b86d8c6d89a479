// Per VIP, connections over the last hour for the dashboard: a fixed ring of samples (one every
// SAMPLE_EVERY_MS, an hour's worth) of the connections flowpin tracks to the VIP (live or unknown:
// not seen to end) and of the pins wanted for it. Memory is bounded by the VIPs configured
// (HISTORY_POINTS samples each); a VIP no longer managed loses its ring at the next sample.
// Pure bookkeeping: the controller takes the samples on its clock.

export interface VipSample {
  /** Controller clock, ms. */
  t: number;
  /** Connections tracked to the VIP (live or unknown). */
  live: number;
  /** Pins wanted for the VIP's connections. */
  pinned: number;
}

export const SAMPLE_EVERY_MS = 10_000;
/** An hour of samples. */
export const HISTORY_POINTS = 360;

class Ring {
  private readonly t: Float64Array;
  private readonly live: Uint32Array;
  private readonly pinned: Uint32Array;
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.live = new Uint32Array(capacity);
    this.pinned = new Uint32Array(capacity);
  }

  push(s: VipSample): void {
    this.t[this.next] = s.t;
    this.live[this.next] = s.live;
    this.pinned[this.next] = s.pinned;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** Oldest first, those at or after `since`. */
  samples(since: number): VipSample[] {
    const out: VipSample[] = [];
    for (let i = 0; i < this.size; i++) {
      const j = (this.next - this.size + i + this.capacity) % this.capacity;
      const t = this.t[j] as number;
      if (t >= since) out.push({ t, live: this.live[j] as number, pinned: this.pinned[j] as number });
    }
    return out;
  }
}

export class VipHistory {
  private readonly rings = new Map<string, Ring>();

  constructor(private readonly points = HISTORY_POINTS) {}

  /** One sample per VIP managed now, by `switch\nvip`; rings of VIPs not given are dropped. */
  record(t: number, vips: Iterable<{ switch: string; vip: string; live: number; pinned: number }>): void {
    const seen = new Set<string>();
    for (const v of vips) {
      const key = `${v.switch}\n${v.vip}`;
      seen.add(key);
      let ring = this.rings.get(key);
      if (ring === undefined) this.rings.set(key, (ring = new Ring(this.points)));
      ring.push({ t, live: v.live, pinned: v.pinned });
    }
    for (const key of this.rings.keys()) if (!seen.has(key)) this.rings.delete(key);
  }

  /** A VIP's samples since `since` (ms, controller clock), oldest first; empty before its first sample. */
  samples(switchName: string, vip: string, since = -Infinity): VipSample[] {
    return this.rings.get(`${switchName}\n${vip}`)?.samples(since) ?? [];
  }
}
