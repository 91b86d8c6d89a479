// What a switch's changes must count at risk because flowpin cannot name the connection's
// server: SYNs shed while the resolve queue was full (kept by flow key up to a bound, then by
// number), flows pushed out of a full flow table (by number), flows the switch could not
// resolve; and the servers' resets seen on the reply mirror (per VIP, by time), against which
// a change's figures are checked. Bounded in memory; time comes from the caller.

import { LRUCache } from 'lru-cache';
import { purgeIfStale } from './flow-table.js';
import { RecentCounts } from './recent-counts.js';

/** How long a shed SYN's flow is counted at risk without being seen again. */
const SHED_TTL_MS = 3_600_000;
/** Server resets kept per VIP (their times), for the changes' figures. */
const SERVER_RESETS_KEPT = 100_000;

/**
 * Times pushed in clock order, the last `max` of them kept (dropped a block at a time, so a
 * push stays cheap); counts in a range by binary search (read every second by the dashboard).
 */
export class RecentTimes {
  private times: number[] = [];
  private head = 0;
  /** False once the wall clock stepped back between two pushes: counts then scan. */
  private ordered = true;
  constructor(private readonly max: number) {}

  push(t: number): void {
    if (this.times.length > this.head && t < (this.times.at(-1) as number)) this.ordered = false;
    this.times.push(t);
    if (this.times.length - this.head > this.max) this.head++;
    if (this.head >= this.max) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }

  /** Times in [from, to). */
  countBetween(from: number, to: number): number {
    if (this.ordered) return this.firstAtOrAfter(to) - this.firstAtOrAfter(from);
    let n = 0;
    for (let i = this.head; i < this.times.length; i++) {
      const t = this.times[i] as number;
      if (t >= from && t < to) n++;
    }
    return n;
  }

  private firstAtOrAfter(x: number): number {
    let lo = this.head;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.times[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export class RiskLedger {
  /**
   * SYNs shed (queue full) and not seen again, by flow key -> VIP: every change of the VIP
   * counts them at risk. Bounded (`maxShed`); a key pushed out is still counted, without its
   * name, in `forgottenCounts`.
   */
  private readonly shedKeys: LRUCache<string, string>;
  /** Flows flowpin saw and can no longer name, per `VIP|nexthop` ('' where unknown), over the last hour. */
  private readonly forgottenCounts = new RecentCounts(SHED_TTL_MS);
  /** Flows the switch could not resolve, per VIP (pruned when read: ended or aged flows drop out). */
  private readonly unresolvedKeys = new Map<string, Set<string>>();
  private readonly serverResets = new Map<string, RecentTimes>();

  constructor(
    maxShed: number,
    private readonly now: () => number,
  ) {
    this.shedKeys = new LRUCache<string, string>({
      max: maxShed,
      ttl: SHED_TTL_MS,
      perf: { now },
      dispose: (vip, _key, reason) => {
        if (reason === 'evict') this.forgotten(vip, undefined);
      },
    });
  }

  /** A SYN shed: its flow is counted at risk by the changes of its VIP until seen again. */
  shed(key: string, vip: string): void {
    // Past the bound the oldest key is pushed out (and counted); one already past its age is not a flow to
    // count.
    purgeIfStale(this.shedKeys);
    this.shedKeys.set(key, vip);
  }

  /** The flow was seen again (accepted, or ended). */
  unshed(key: string): void {
    this.shedKeys.delete(key);
  }

  /**
   * A flow flowpin saw and can no longer name (pushed out of the full flow table, or a shed key past the
   * bound).
   */
  forgotten(vip: string, nexthop: string | undefined): void {
    this.forgottenCounts.add(`${vip}|${nexthop ?? ''}`, this.now());
  }

  /** Flows of a VIP whose SYN was shed and not seen since. */
  shedOn(vip: string): string[] {
    const out: string[] = [];
    for (const [key, v] of this.shedKeys.entries()) if (v === vip) out.push(key);
    return out;
  }

  /**
   * Flows of a VIP flowpin can no longer name. Flows of unknown nexthop may move with any
   * change; the others only with a change of theirs (a drain, `nexthop` given) or any addition.
   */
  forgottenOn(vip: string, nexthop?: string): number {
    const now = this.now();
    let n = 0;
    for (const k of this.forgottenCounts.keys()) {
      const bar = k.lastIndexOf('|');
      if (k.slice(0, bar) !== vip) continue;
      const nh = k.slice(bar + 1);
      if (nexthop === undefined || nh === '' || nh === nexthop) n += this.forgottenCounts.sum(k, now);
    }
    return n;
  }

  /** A flow the switch could not resolve. */
  unresolved(key: string, vip: string): void {
    let set = this.unresolvedKeys.get(vip);
    if (set === undefined) this.unresolvedKeys.set(vip, (set = new Set()));
    set.add(key);
  }

  /** Flows of a VIP still unresolved (`stillUnresolved` prunes the ones resolved, ended or aged since). */
  unresolvedOn(vip: string, stillUnresolved: (key: string) => boolean): string[] {
    const set = this.unresolvedKeys.get(vip);
    if (set === undefined) return [];
    const out: string[] = [];
    for (const key of set) {
      if (stillUnresolved(key)) out.push(key);
      else set.delete(key);
    }
    return out;
  }

  /** A server reset a connection (RST from a VIP, where the reply session mirrors RST). */
  serverReset(vip: string): void {
    let times = this.serverResets.get(vip);
    if (times === undefined) this.serverResets.set(vip, (times = new RecentTimes(SERVER_RESETS_KEPT)));
    times.push(this.now());
  }

  /** Server resets seen for a VIP in [from, to); null if none was ever mirrored on this switch. */
  serverResetsBetween(vip: string, from: number, to: number): number | null {
    if (this.serverResets.size === 0) return null;
    return this.serverResets.get(vip)?.countBetween(from, to) ?? 0;
  }
}
