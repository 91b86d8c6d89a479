// Simulated time: a clock with a queue of timed callbacks. VirtualClock advances only when
// told to, so hours of traffic run in seconds; RealTimeDriver advances it with wall time.

export interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled?: boolean;
}

export class VirtualClock {
  private t: number;
  private seq = 0;
  private readonly heap: Timer[] = [];

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now = (): number => this.t;

  get pending(): number {
    return this.heap.length;
  }

  /** Runs `fn` when the clock reaches `at` (ms); same-time callbacks run in the order given. */
  at(at: number, fn: () => void): Timer {
    const timer: Timer = { at: Math.max(at, this.t), seq: this.seq++, fn };
    this.push(timer);
    return timer;
  }

  after(ms: number, fn: () => void): Timer {
    return this.at(this.t + ms, fn);
  }

  /** Runs `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void {
    let timer: Timer | undefined;
    const arm = (): void => {
      timer = this.after(ms, () => {
        arm();
        fn();
      });
    };
    arm();
    return () => {
      if (timer !== undefined) this.cancel(timer);
    };
  }

  /** A cancelled timer stays in the queue but does not run. */
  cancel(timer: Timer): void {
    timer.cancelled = true;
  }

  /** When the next timer is due, or undefined if none is queued. */
  nextAt(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Advances to `until`, running every callback due on the way, in time order. */
  advanceTo(until: number): void {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.at > until) break;
      this.pop();
      this.t = top.at;
      if (!top.cancelled) top.fn();
    }
    if (until > this.t) this.t = until;
  }

  advance(ms: number): void {
    this.advanceTo(this.t + ms);
  }

  private push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i] as Timer, h[parent] as Timer)) break;
      [h[i], h[parent]] = [h[parent] as Timer, h[i] as Timer];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as Timer, h[m] as Timer)) m = l;
      if (r < h.length && before(h[r] as Timer, h[m] as Timer)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Timer, h[i] as Timer];
      i = m;
    }
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Drives a VirtualClock in step with wall time (the demo), every `tickMs`; `speed` times faster if asked. */
export class RealTimeDriver {
  private timer: NodeJS.Timeout | undefined;
  private readonly wallStart = Date.now();
  private readonly simStart: number;

  constructor(
    private readonly clock: VirtualClock,
    private readonly tickMs = 20,
    private readonly speed = 1,
  ) {
    this.simStart = clock.now();
  }

  start(): void {
    this.timer ??= setInterval(() => this.catchUp(), this.tickMs);
  }

  /** Brings the clock to the wall time now (before handling a packet from outside, say). */
  catchUp(): void {
    this.clock.advanceTo(this.simStart + (Date.now() - this.wallStart) * this.speed);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
