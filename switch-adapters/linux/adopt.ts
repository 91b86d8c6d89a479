// Taking over a VIP's existing resilient group. flowpin adopts a group whose shape it can drive
// (resilient, idle_timer 0, unbalanced_timer 0, the configured bucket count) and refuses any
// other with the fix. A member that is not one of flowpin's own nexthop objects (ids idBase ..
// idBase+999, whose id gives its pin mark) is handed over: replaced, one member at a time and in
// its place with its weight, by flowpin's object for the same gateway. With idle_timer 0 the
// group is balanced, every member holding exactly the buckets it wants, so the replaced
// member's buckets, orphaned, all go to the one member that wants buckets, its replacement
// (the kernel's upkeep, upkeep.ts): every bucket keeps its server and no flow moves. The plan
// is checked with the upkeep model before each write and on the bucket table after it.

import { upkeep, type GroupEntry } from './upkeep.js';
import type { NexthopObject } from './iproute.js';

/** The `group` argument of `ip nexthop`: ids with their weights where not 1 (ip-nexthop(8)). */
export function groupSpec(entries: readonly GroupEntry[]): string {
  return entries.map((e) => (e.weight === 1 ? String(e.id) : `${e.id},${e.weight}`)).join('/');
}

/** Why flowpin cannot drive this VIP's existing group, with the fix; undefined where it can. */
export function adoptionRefusal(
  vip: string,
  obj: NexthopObject | undefined,
  buckets: number,
): string | undefined {
  const id = obj?.id ?? '?';
  if (obj?.group === undefined || obj.resilient === undefined) {
    return `VIP ${vip} routes through nexthop ${id}, which is not a resilient group; fix: ip nexthop add id N group A/B/... type resilient buckets ${buckets} idle_timer 0 unbalanced_timer 0, then ip route replace ${vip} nhid N (or remove the route and let flowpin make the group)`;
  }
  const r = obj.resilient;
  if (r.idleTimer !== 0 || r.unbalancedTimer !== 0) {
    return `VIP ${vip}: group ${id} has idle_timer ${r.idleTimer}, unbalanced_timer ${r.unbalancedTimer}; flowpin needs 0 and 0 (an addition then takes effect at once and predictably); fix: ip nexthop replace id ${id} group ${groupSpec(obj.group)} type resilient idle_timer 0 unbalanced_timer 0`;
  }
  if (r.buckets !== buckets) {
    return `VIP ${vip}: group ${id} has ${r.buckets} buckets and flowpin is configured for ${buckets} (the kernel cannot change a group's bucket count); fix: set linux.buckets: ${r.buckets}`;
  }
  return undefined;
}

/**
 * Replacing member `at` of `entries` by `newId` (same weight), from the bucket table `table`
 * (bucket -> member id): the new entries, or why it would move a bucket to another server.
 * `serverOf` names a member's server (its gateway).
 */
export function handOverStep(
  table: readonly number[],
  entries: readonly GroupEntry[],
  at: number,
  newId: number,
  serverOf: (id: number) => string | undefined,
): { entries: GroupEntry[] } | { refused: string } {
  const old = entries[at];
  if (old === undefined) return { refused: `no member at ${at}` };
  const next = entries.map((e, i) => (i === at ? { id: newId, weight: e.weight } : e));
  const after = upkeep([...table], next).table;
  const moved = after.filter((owner, b) => serverOf(owner) !== serverOf(table[b] as number)).length;
  if (moved > 0)
    return {
      refused: `replacing member ${old.id} by ${newId} would move ${moved} of ${table.length} buckets to other servers (the group is not balanced)`,
    };
  return { entries: next };
}
