// The simulated switch's pin table, modelled on DirectFlow: named flows with match fields,
// an output nexthop, idle and hard timeouts, counters, and a hardware table of fixed
// capacity shared with entries of other owners (`reserved`). A flow that does not fit, or
// that timed out, stays configured but not programmed, with the reason, until it is removed
// or configured again. With a programming delay a configured flow is `pending` (accepted,
// not forwarding) until the delay has passed, then programmed if the table has room.

import { EpochLedger } from './epoch-ledger.js';

export interface PinMatch {
  /** Address family when `ethertype ip`/`ipv6` was matched. */
  family?: 4 | 6;
  src?: string;
  dst?: string;
  protocol?: number;
  sport?: number;
  dport?: number;
}

export interface PinSpec {
  /** Who configured it: DirectFlow (eAPI) flows act only while DirectFlow is enabled. */
  source: 'directflow' | 'openconfig';
  match: PinMatch;
  /** Output nexthop; undefined means drop (a flow with no output action). */
  nexthop?: string;
  idleTimeoutS: number;
  hardTimeoutS: number;
  persistent: boolean;
  priority: number;
}

export type PinStatus = 'pending' | 'programmed' | 'table-full' | 'idle-timeout' | 'hard-timeout';

export interface PinEntry extends PinSpec {
  readonly name: string;
  status: PinStatus;
  packets: number;
  bytes: number;
  /** Simulated milliseconds. */
  createdAt: number;
  lastMatchAt: number;
  /** When a pending entry is due to be programmed. */
  programAt: number;
}

export interface PinTableOptions {
  /** Accepted entries reach hardware after this long (ms); 0: at once. */
  programDelayMs?: number;
  /** Hardware entries held by other owners (other DirectFlow or ACL users of the table). */
  reserved?: number;
  /** Clock for reads that settle pending entries. */
  now?: () => number;
}

/** Key of an exact 5-tuple match in the fast index. */
export const exactKey = (src: string, dst: string, protocol: number, sport: number, dport: number): string =>
  `${src}|${dst}|${protocol}|${sport}|${dport}`;

function exactKeyOf(m: PinMatch): string | undefined {
  if (
    m.src === undefined ||
    m.dst === undefined ||
    m.protocol === undefined ||
    m.sport === undefined ||
    m.dport === undefined
  )
    return undefined;
  return exactKey(m.src, m.dst, m.protocol, m.sport, m.dport);
}

export interface PinLookup {
  src: string;
  dst: string;
  protocol: number;
  sport: number;
  dport: number;
}

export class PinTable {
  private readonly entries = new Map<string, PinEntry>();
  /** Programmed flows with an exact 5-tuple match, by key; several names may share one. */
  private readonly exact = new Map<string, PinEntry[]>();
  /** Programmed flows with wildcards, scanned in priority order. */
  private wildcard: PinEntry[] = [];
  private programmedCount = 0;
  /** Entries accepted and not yet settled (status 'pending'). */
  private pendingCount = 0;
  /** Entries waiting for their programming time, in the order they were accepted. */
  private pendingQueue: PinEntry[] = [];
  /** First entry of pendingQueue not yet settled (the array is compacted once half is spent). */
  private pendingHead = 0;
  /** Configuration changes since start, for ON_CHANGE subscribers. */
  revision = 0;
  /** Each pin write's epoch (from its name) and arrival, for counting stale writes under HA. */
  readonly epochs = new EpochLedger();
  programDelayMs: number;
  reserved: number;
  private readonly clock: (() => number) | undefined;

  constructor(
    public capacity: number,
    options: PinTableOptions = {},
  ) {
    this.programDelayMs = options.programDelayMs ?? 0;
    this.reserved = options.reserved ?? 0;
    this.clock = options.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Entries flowpin-visible as programmed (of any source), not counting `reserved`. */
  get programmed(): number {
    this.settleNow();
    return this.programmedCount;
  }

  /** Hardware entries left for new flows. */
  get free(): number {
    this.settleNow();
    return Math.max(0, this.capacity - this.reserved - this.programmedCount);
  }

  /** Entries accepted and waiting to be programmed. */
  get pending(): number {
    this.settleNow();
    return this.pendingCount;
  }

  get(name: string): PinEntry | undefined {
    this.settleNow();
    return this.entries.get(name);
  }

  all(): PinEntry[] {
    this.settleNow();
    return [...this.entries.values()];
  }

  /**
   * Adds or replaces a named flow; it is programmed (now, or after the delay) if the hardware table has room.
   */
  upsert(name: string, spec: PinSpec, now: number): PinEntry {
    this.settle(now);
    this.epochs.record(name, now);
    this.remove(name);
    const entry: PinEntry = {
      ...spec,
      match: { ...spec.match },
      name,
      status: 'pending',
      packets: 0,
      bytes: 0,
      createdAt: now,
      lastMatchAt: now,
      programAt: now + this.programDelayMs,
    };
    this.entries.set(name, entry);
    this.pendingCount++;
    if (this.programDelayMs > 0) this.pendingQueue.push(entry);
    else this.programOrReject(entry);
    this.revision++;
    return entry;
  }

  /** Programs the pending entries whose time has come (in the order they were accepted). */
  settle(now: number): void {
    if (this.pendingHead >= this.pendingQueue.length) return;
    let i = this.pendingHead;
    for (; i < this.pendingQueue.length; i++) {
      const e = this.pendingQueue[i] as PinEntry;
      if (e.programAt > now) break;
      if (e.status !== 'pending' || this.entries.get(e.name) !== e) continue;
      // Its idle timer starts when it reaches hardware.
      e.lastMatchAt = e.programAt;
      this.programOrReject(e);
      this.revision++;
    }
    this.pendingHead = i;
    if (i === this.pendingQueue.length) {
      this.pendingQueue = [];
      this.pendingHead = 0;
    } else if (i > 1024 && i * 2 > this.pendingQueue.length) {
      this.pendingQueue = this.pendingQueue.slice(i);
      this.pendingHead = 0;
    }
  }

  private settleNow(): void {
    if (this.clock !== undefined) this.settle(this.clock());
  }

  private programOrReject(e: PinEntry): void {
    if (e.status === 'pending') this.pendingCount--;
    if (this.programmedCount + this.reserved < this.capacity) this.program(e);
    else e.status = 'table-full';
  }

  remove(name: string): boolean {
    const entry = this.entries.get(name);
    if (entry === undefined) return false;
    if (entry.status === 'pending') this.pendingCount--;
    this.unprogram(entry, entry.status);
    this.entries.delete(name);
    this.revision++;
    return true;
  }

  /** Whether a programmed flow matches this exact 5-tuple now (no counters touched). */
  programmedFor(p: PinLookup): boolean {
    this.settleNow();
    return (this.exact.get(exactKey(p.src, p.dst, p.protocol, p.sport, p.dport))?.length ?? 0) > 0;
  }

  /** Programmed flows by output nexthop (flows that drop are under ''). */
  programmedByNexthop(): Record<string, number> {
    this.settleNow();
    const out: Record<string, number> = {};
    for (const e of this.entries.values())
      if (e.status === 'programmed') out[e.nexthop ?? ''] = (out[e.nexthop ?? ''] ?? 0) + 1;
    return out;
  }

  /** Programmed pins of one destination (a VIP) toward one nexthop (those `keep` keeps, where given). */
  programmedToward(dst: string, nexthop: string, keep?: (e: PinEntry) => boolean): number {
    this.settleNow();
    let n = 0;
    for (const e of this.entries.values())
      if (e.status === 'programmed' && e.nexthop === nexthop && e.match.dst === dst && (keep?.(e) ?? true))
        n++;
    return n;
  }

  /** Marks programmed flows past their idle or hard timeout as not programmed. */
  expire(now: number): number {
    this.settle(now);
    let n = 0;
    for (const e of this.entries.values()) if (e.status === 'programmed' && this.checkTimeouts(e, now)) n++;
    return n;
  }

  /**
   * The programmed flow a packet matches, refreshing its idle timer and counters.
   * DirectFlow flows are skipped while `directflowEnabled` is false.
   */
  match(p: PinLookup, bytes: number, now: number, directflowEnabled: boolean): PinEntry | undefined {
    this.settle(now);
    let hit: PinEntry | undefined;
    const active = (e: PinEntry): boolean =>
      (directflowEnabled || e.source !== 'directflow') && !this.checkTimeouts(e, now);
    const list = this.exact.get(exactKey(p.src, p.dst, p.protocol, p.sport, p.dport));
    if (list !== undefined) {
      for (const e of list) if ((hit === undefined || e.priority > hit.priority) && active(e)) hit = e;
    }
    for (const e of this.wildcard) {
      if (hit !== undefined && e.priority <= hit.priority) break;
      if (matches(e.match, p) && active(e)) {
        hit = e;
        break;
      }
    }
    if (hit === undefined) return undefined;
    hit.packets++;
    hit.bytes += bytes;
    hit.lastMatchAt = now;
    return hit;
  }

  private checkTimeouts(e: PinEntry, now: number): boolean {
    if (e.status !== 'programmed' || e.persistent) return false;
    if (e.hardTimeoutS > 0 && now - e.createdAt >= e.hardTimeoutS * 1000) {
      this.unprogram(e, 'hard-timeout');
      return true;
    }
    if (e.idleTimeoutS > 0 && now - e.lastMatchAt >= e.idleTimeoutS * 1000) {
      this.unprogram(e, 'idle-timeout');
      return true;
    }
    return false;
  }

  private program(e: PinEntry): void {
    e.status = 'programmed';
    this.programmedCount++;
    const key = exactKeyOf(e.match);
    if (key !== undefined) {
      const list = this.exact.get(key);
      if (list) list.push(e);
      else this.exact.set(key, [e]);
    } else {
      this.wildcard.push(e);
      this.wildcard.sort((a, b) => b.priority - a.priority);
    }
  }

  private unprogram(e: PinEntry, status: PinStatus): void {
    if (e.status === 'programmed') {
      this.programmedCount--;
      const key = exactKeyOf(e.match);
      if (key !== undefined) {
        const list = (this.exact.get(key) ?? []).filter((x) => x !== e);
        if (list.length > 0) this.exact.set(key, list);
        else this.exact.delete(key);
      } else {
        this.wildcard = this.wildcard.filter((x) => x !== e);
      }
      this.revision++;
    }
    e.status = status;
  }
}

function matches(m: PinMatch, p: PinLookup): boolean {
  return (
    (m.src === undefined || m.src === p.src) &&
    (m.dst === undefined || m.dst === p.dst) &&
    (m.protocol === undefined || m.protocol === p.protocol) &&
    (m.sport === undefined || m.sport === p.sport) &&
    (m.dport === undefined || m.dport === p.dport) &&
    (m.family === undefined || m.family === (p.src.includes(':') ? 6 : 4))
  );
}
