// ECMP groups of the simulated switch. ResilientGroup keeps a fixed table of hash buckets:
// removing a member hands only its buckets to the others; adding one takes buckets evenly
// from the others. ModNGroup is plain hash-mod-N, where any change moves most flows.

export interface EcmpGroup {
  readonly kind: 'resilient' | 'mod-n';
  members(): readonly string[];
  /** The member a flow hash maps to, or undefined for an empty group. */
  pick(hash: number): string | undefined;
  add(member: string): void;
  remove(member: string): void;
  /** Bucket owners (resilient) or members in order (mod-n). */
  table(): readonly string[];
}

export class ResilientGroup implements EcmpGroup {
  readonly kind = 'resilient';
  private readonly buckets: (string | undefined)[];
  private readonly order: string[] = [];

  constructor(
    readonly bucketCount: number,
    initial: readonly string[] = [],
  ) {
    if (!Number.isInteger(bucketCount) || bucketCount < 1)
      throw new RangeError(`bucket count must be a positive integer, got ${bucketCount}`);
    this.buckets = new Array<string | undefined>(bucketCount).fill(undefined);
    for (const m of initial) this.add(m);
  }

  members(): readonly string[] {
    return this.order;
  }

  bucketOf(hash: number): number {
    return hash % this.buckets.length;
  }

  pick(hash: number): string | undefined {
    return this.buckets[hash % this.buckets.length];
  }

  table(): readonly string[] {
    return this.buckets.map((b) => b ?? '');
  }

  /** Bucket counts per member. */
  shares(): Map<string, number> {
    const out = new Map<string, number>(this.order.map((m) => [m, 0]));
    for (const b of this.buckets) if (b !== undefined) out.set(b, (out.get(b) ?? 0) + 1);
    return out;
  }

  /** The buckets that adding `member` would move to it, without changing the group. */
  previewAdd(member: string): number[] {
    if (this.order.includes(member)) return [];
    if (this.order.length === 0) return this.buckets.map((_, i) => i);
    const target = Math.floor(this.buckets.length / (this.order.length + 1));
    const owned = new Map<string, number[]>(this.order.map((m) => [m, []]));
    this.buckets.forEach((b, i) => {
      if (b !== undefined) owned.get(b)?.push(i);
    });
    const moved: number[] = [];
    while (moved.length < target) {
      // Take from the member holding the most buckets (first in member order on a tie), its highest bucket.
      let donor: string | undefined;
      let most = -1;
      for (const m of this.order) {
        const n = owned.get(m)?.length ?? 0;
        if (n > most) {
          most = n;
          donor = m;
        }
      }
      const list = donor === undefined ? undefined : owned.get(donor);
      const bucket = list?.pop();
      if (bucket === undefined) break;
      moved.push(bucket);
    }
    return moved.sort((a, b) => a - b);
  }

  add(member: string): void {
    if (this.order.includes(member)) return;
    const moved = this.previewAdd(member);
    this.order.push(member);
    for (const i of moved) this.buckets[i] = member;
  }

  remove(member: string): void {
    const at = this.order.indexOf(member);
    if (at < 0) return;
    this.order.splice(at, 1);
    const counts = this.shares();
    for (let i = 0; i < this.buckets.length; i++) {
      if (this.buckets[i] !== member) continue;
      // Give each orphaned bucket to the member with the fewest buckets (first in order on a tie).
      let heir: string | undefined;
      let fewest = Infinity;
      for (const m of this.order) {
        const n = counts.get(m) ?? 0;
        if (n < fewest) {
          fewest = n;
          heir = m;
        }
      }
      this.buckets[i] = heir;
      if (heir !== undefined) counts.set(heir, fewest + 1);
    }
  }
}

export class ModNGroup implements EcmpGroup {
  readonly kind = 'mod-n';
  private readonly order: string[];

  constructor(initial: readonly string[] = []) {
    this.order = [...new Set(initial)];
  }

  members(): readonly string[] {
    return this.order;
  }

  pick(hash: number): string | undefined {
    return this.order.length === 0 ? undefined : this.order[hash % this.order.length];
  }

  table(): readonly string[] {
    return this.order;
  }

  add(member: string): void {
    if (!this.order.includes(member)) this.order.push(member);
  }

  remove(member: string): void {
    const at = this.order.indexOf(member);
    if (at >= 0) this.order.splice(at, 1);
  }
}
