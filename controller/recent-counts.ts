// Counts of events in the last window (an hour by default), kept per key in one-minute
// buckets: adding is O(1), a sum reads at most 60 buckets, and counts older than the window
// fall out however steady the stream is. Used for the flows flowpin saw and can no longer
// name (shed past its bound, pushed out of a full flow table), which every change of their
// VIP counts at risk.

const BUCKET_MS = 60_000;

interface Buckets {
  /** Start of each bucket (ms, multiple of BUCKET_MS); -1 when unused. */
  starts: number[];
  counts: number[];
}

export class RecentCounts {
  private readonly byKey = new Map<string, Buckets>();
  private readonly slots: number;

  constructor(windowMs = 3_600_000) {
    this.slots = Math.max(1, Math.ceil(windowMs / BUCKET_MS));
  }

  add(key: string, now: number, n = 1): void {
    let b = this.byKey.get(key);
    if (b === undefined) {
      b = { starts: new Array<number>(this.slots).fill(-1), counts: new Array<number>(this.slots).fill(0) };
      this.byKey.set(key, b);
    }
    const bucket = Math.floor(now / BUCKET_MS);
    const start = bucket * BUCKET_MS;
    const i = bucket % this.slots;
    if (b.starts[i] !== start) {
      b.starts[i] = start;
      b.counts[i] = 0;
    }
    b.counts[i] = (b.counts[i] ?? 0) + n;
  }

  /** Events of `key` in the window ending at `now`. */
  sum(key: string, now: number): number {
    const b = this.byKey.get(key);
    if (b === undefined) return 0;
    const oldest = Math.floor(now / BUCKET_MS) * BUCKET_MS - (this.slots - 1) * BUCKET_MS;
    let total = 0;
    let live = false;
    for (let i = 0; i < this.slots; i++) {
      const s = b.starts[i] ?? -1;
      if (s >= oldest && s <= now) {
        total += b.counts[i] ?? 0;
        live = true;
      }
    }
    if (!live) this.byKey.delete(key);
    return total;
  }

  /** Keys with events in the window (their sums may be read with sum()). */
  keys(): string[] {
    return [...this.byKey.keys()];
  }
}
