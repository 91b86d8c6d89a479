// Which buckets of a resilient nexthop group an added member takes over, computed from the
// real bucket table the way the kernel's upkeep moves them (net/ipv4/nexthop.c:
// nh_res_group_rebalance sets each member's wanted bucket count from the cumulative weights,
// DIV_ROUND_CLOSEST(buckets * w, total); nh_res_table_upkeep walks buckets in index order and
// moves a bucket whose owner is overweight to the first underweight member; with idle_timer 0
// every bucket is idle, so the walk happens at once and completely). Underweight members are
// kept on a list that grows at its head (list_add), so the most recently listed is served first.

export interface GroupEntry {
  id: number;
  weight: number;
}

const divRoundClosest = (a: number, b: number): number => Math.floor((a + Math.floor(b / 2)) / b);

/** Bucket count each member wants, in group order. */
export function wantedBuckets(entries: GroupEntry[], buckets: number): Map<number, number> {
  const total = entries.reduce((a, e) => a + e.weight, 0);
  const wants = new Map<number, number>();
  let w = 0;
  let prev = 0;
  for (const e of entries) {
    w += e.weight;
    const upper = divRoundClosest(buckets * w, total);
    wants.set(e.id, upper - prev);
    prev = upper;
  }
  return wants;
}

/**
 * The bucket table after upkeep with the group's members replaced by `entries` (all buckets
 * idle), and the indexes of the buckets that changed owner.
 */
export function upkeep(table: number[], entries: GroupEntry[]): { table: number[]; moved: number[] } {
  const wants = wantedBuckets(entries, table.length);
  const count = new Map<number, number>(entries.map((e) => [e.id, 0]));
  for (const owner of table) if (count.has(owner)) count.set(owner, (count.get(owner) as number) + 1);
  const uw: number[] = [];
  for (const e of entries) if ((count.get(e.id) as number) < (wants.get(e.id) as number)) uw.unshift(e.id);
  const out = [...table];
  const moved: number[] = [];
  for (let b = 0; b < out.length && uw.length > 0; b++) {
    const owner = out[b] as number;
    const c = count.get(owner);
    // A bucket whose owner left the group is reassigned whatever its state; an overweight owner's too.
    if (c !== undefined && c <= (wants.get(owner) as number)) continue;
    const to = uw[0] as number;
    out[b] = to;
    if (c !== undefined) count.set(owner, c - 1);
    const n = (count.get(to) as number) + 1;
    count.set(to, n);
    if (n >= (wants.get(to) as number)) uw.shift();
    moved.push(b);
  }
  return { table: out, moved };
}
