// The bounded queue of flows waiting for their nexthop. Each entry carries the sequence
// number of the mirror event that brought it, so a change can wait for every event received
// before it ("the barrier"). Full means shed: the caller counts it; memory never grows past
// the bound.

export interface Pending {
  key: string;
  seq: number;
  /** When the SYN arrived (controller clock, ms). */
  at: number;
  /** both: false where the look-up queue had no room (the reply alone was waited for). */
  queued?: boolean;
}

export class ResolveQueue {
  private items: Pending[] = [];
  private head = 0;
  /** Flows taken but not yet finished (in flight at the switch), by sequence number. */
  private readonly inFlight = new Map<number, Pending>();

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Adds a flow; false when full (shed). */
  push(p: Pending): boolean {
    if (this.length >= this.capacity) return false;
    this.items.push(p);
    return true;
  }

  /**
   * Takes up to `n` flows for resolution; call finish() with them when done. Flows `wanted`
   * rejects (answered meanwhile, or ended) are dropped on the way: never asked, never in flight.
   */
  take(n: number, wanted: (p: Pending) => boolean = () => true): Pending[] {
    const out: Pending[] = [];
    while (out.length < n && this.head < this.items.length) {
      const p = this.items[this.head++] as Pending;
      if (wanted(p)) out.push(p);
    }
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    for (const p of out) this.inFlight.set(p.seq, p);
    return out;
  }

  /**
   * Puts flows back (their resolution failed and will be retried), in sequence order with
   * what is queued: batches can fail in any order, and the barrier reads the queue's head as
   * its oldest event.
   */
  requeue(ps: Pending[]): void {
    for (const p of ps) this.inFlight.delete(p.seq);
    const queued = this.items.slice(this.head);
    const back = [...ps].sort((a, b) => a.seq - b.seq);
    const merged: Pending[] = [];
    let i = 0;
    let j = 0;
    while (i < back.length || j < queued.length) {
      const a = back[i];
      const b = queued[j];
      if (b === undefined || (a !== undefined && a.seq <= b.seq)) {
        merged.push(a as Pending);
        i++;
      } else {
        merged.push(b);
        j++;
      }
    }
    this.items = merged;
    this.head = 0;
  }

  finish(ps: Pending[]): void {
    for (const p of ps) this.inFlight.delete(p.seq);
  }

  /**
   * Flows with `after` < seq <= `through` whose look-up has not answered: queued, or in flight at
   * the switch (an answer still on its way, or one a hold will have asked again), in order.
   */
  between(after: number, through: number): Pending[] {
    const out: Pending[] = [];
    for (const p of this.inFlight.values()) if (p.seq > after && p.seq <= through) out.push(p);
    for (let i = this.head; i < this.items.length; i++) {
      const p = this.items[i] as Pending;
      if (p.seq > after && p.seq <= through) out.push(p);
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /**
   * True when no flow with sequence number <= `seq` is queued or in flight. Queued flows
   * `pending` rejects (answered by other means, or ended) are dropped from the head first, so
   * the check does not wait for look-ups nobody needs.
   */
  doneThrough(seq: number, pending: (p: Pending) => boolean = () => true): boolean {
    for (const s of this.inFlight.keys()) if (s <= seq) return false;
    while (this.head < this.items.length && !pending(this.items[this.head] as Pending)) this.head++;
    const first = this.items[this.head];
    return first === undefined || first.seq > seq;
  }
}
