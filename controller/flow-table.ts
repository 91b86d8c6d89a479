// FlowTable: the TCP flows flowpin has seen, keyed by switch + flow tuple, bounded in count
// and in age by an LRU cache, with an index from nexthop id to its live flows. The clock is
// injected; the table never reads the wall clock itself.
//
// Memory per flow is kept small on purpose: the key is a short flat latin1 string (2
// characters of switch id + the binary tuple), the value is a plain small integer (the nexthop
// id, 0 while unresolved, times four, plus one bit per side whose FIN was seen), and the index
// holds the same key strings. A connection ends when both sides have sent FIN (or on a RST):
// one FIN is a half-close, and the connection lives on (the other side may send for hours).

import { LRUCache } from 'lru-cache';
import { parseTuple, type FlowTuple } from '../mirror-receiver/tuple.js';

export interface FlowTableOptions {
  /** Most flows kept; the least recently seen is evicted past it. */
  maxFlows: number;
  /** A flow not seen for this long is gone. */
  maxAgeMs: number;
  /** Milliseconds, monotonic. */
  now: () => number;
  /**
   * Called with each flow pushed out because the table was full, and its nexthop id (not for flows aged out
   * or ended).
   */
  onEvict?: (key: string, nexthopId: number) => void;
  /** Called with each flow that aged out (not seen for maxAgeMs: taken as ended). */
  onExpire?: (key: string, nexthopId: number) => void;
}

export interface FlowEntry extends FlowTuple {
  switchId: number;
  /** Nexthop id from the NexthopRegistry, 0 while unresolved. */
  nexthopId: number;
  /** The side that half-closed the connection (sent a FIN), or null while both are open. */
  halfClosedBy: Side | null;
  /** When the flow was last seen, in the clock of `now`. */
  lastSeen: number;
}

export const UNRESOLVED = 0;

/** Which side of a connection sent a FIN: the client (toward the VIP) or the server (from it). */
export type Side = 'client' | 'server';
const SIDE_BIT: Record<Side, number> = { client: 1, server: 2 };
const BOTH = 3;
const nhOf = (v: number): number => v >> 2;
const bitsOf = (v: number): number => v & 3;
const MAX_SWITCH_ID = 0xffff;

const keyScratch: number[] = new Array<number>(38).fill(0);

/**
 * The key of a flow: switch id as two latin1 characters, then the tuple. Built as one flat
 * string: V8 keeps `a + b` as a rope (a cons string pointing at both parts) until something
 * flattens it, and a key held by the table as a rope cost about 55 bytes more per flow
 * (bench: flow table heap per flow).
 */
export function flowKey(switchId: number, tuple: string): string {
  if (!Number.isInteger(switchId) || switchId < 0 || switchId > MAX_SWITCH_ID)
    throw new RangeError(`switch id out of range: ${switchId}`);
  const n = tuple.length;
  const hi = switchId >> 8;
  const lo = switchId & 0xff;
  if (n === 12) {
    return String.fromCharCode(
      hi,
      lo,
      tuple.charCodeAt(0),
      tuple.charCodeAt(1),
      tuple.charCodeAt(2),
      tuple.charCodeAt(3),
      tuple.charCodeAt(4),
      tuple.charCodeAt(5),
      tuple.charCodeAt(6),
      tuple.charCodeAt(7),
      tuple.charCodeAt(8),
      tuple.charCodeAt(9),
      tuple.charCodeAt(10),
      tuple.charCodeAt(11),
    );
  }
  const codes = n === 36 ? keyScratch : new Array<number>(n + 2);
  codes[0] = hi;
  codes[1] = lo;
  for (let i = 0; i < n; i++) codes[i + 2] = tuple.charCodeAt(i);
  return String.fromCharCode.apply(null, codes);
}

/**
 * Before an entry is added to a cache (a no-op unless the cache is full, when the next set
 * pushes out its least recently used entry): if that entry is already past
 * its age, every stale entry is removed as expired, so that only live ones are ever evicted
 * (lru-cache reports a stale entry pushed out as evicted, not expired).
 */
export function purgeIfStale<V extends NonNullable<unknown>>(cache: LRUCache<string, V>): void {
  if (cache.size < cache.max) return;
  const oldest = cache.rkeys().next();
  if (oldest.done === true) return;
  if (cache.getRemainingTTL(oldest.value) <= 0) cache.purgeStale();
}

export function switchIdOfKey(key: string): number {
  return (key.charCodeAt(0) << 8) | key.charCodeAt(1);
}

export class FlowTable {
  private readonly lru: LRUCache<string, number>;
  private readonly byNexthop = new Map<number, Set<string>>();
  private readonly maxAgeMs: number;
  private evictions = 0;

  constructor(options: FlowTableOptions) {
    if (!(options.maxFlows > 0)) throw new RangeError('maxFlows must be positive');
    if (!(options.maxAgeMs > 0)) throw new RangeError('maxAgeMs must be positive');
    this.maxAgeMs = options.maxAgeMs;
    this.lru = new LRUCache<string, number>({
      max: options.maxFlows,
      ttl: options.maxAgeMs,
      ttlResolution: 0,
      ttlAutopurge: false,
      updateAgeOnGet: false,
      allowStale: false,
      perf: { now: options.now },
      noDisposeOnSet: true,
      dispose: (value, key, reason) => {
        if (reason === 'evict' || reason === 'expire') this.evictions++;
        this.unindex(key, nhOf(value));
        if (reason === 'evict') options.onEvict?.(key, nhOf(value));
        else if (reason === 'expire') options.onExpire?.(key, nhOf(value));
      },
    });
  }

  get size(): number {
    return this.lru.size;
  }

  /** Flows dropped for count or age since the table was made. */
  get evicted(): number {
    return this.evictions;
  }

  /**
   * Records that a flow was seen (a SYN, or any later segment) and refreshes its age.
   * Returns true for a flow the table did not hold.
   */
  touch(key: string): boolean {
    const current = this.lru.get(key);
    if (current === undefined) {
      purgeIfStale(this.lru);
      this.lru.set(key, UNRESOLVED);
      return true;
    }
    this.lru.set(key, current);
    return false;
  }

  /** Sets a live flow's nexthop; returns false if the flow is no longer in the table. */
  resolve(key: string, nexthopId: number): boolean {
    const current = this.lru.get(key);
    if (current === undefined) return false;
    if (nhOf(current) === nexthopId) return true;
    this.unindex(key, nhOf(current));
    this.lru.set(key, nexthopId * 4 + bitsOf(current), { noUpdateTTL: true });
    if (nexthopId !== UNRESOLVED) {
      let set = this.byNexthop.get(nexthopId);
      if (set === undefined) {
        set = new Set();
        this.byNexthop.set(nexthopId, set);
      }
      set.add(key);
    }
    return true;
  }

  /** Ends a flow (both FINs or a RST seen, or known idle); returns true if it was tracked. */
  end(key: string): boolean {
    return this.lru.delete(key);
  }

  /**
   * A FIN from one side: a tracked flow is half-closed (and counts as seen), or, when the other
   * side had closed already, it ends. Returns 'half', 'ended', or undefined for a flow not tracked.
   */
  fin(key: string, side: Side): 'half' | 'ended' | undefined {
    const current = this.lru.get(key);
    if (current === undefined) return undefined;
    const value = current | SIDE_BIT[side];
    if (bitsOf(value) === BOTH) {
      this.lru.delete(key);
      return 'ended';
    }
    this.lru.set(key, value);
    return 'half';
  }

  /** Refreshes a tracked flow's age (a segment or a pin counter showed it alive); false if not tracked. */
  seen(key: string): boolean {
    const current = this.lru.get(key);
    if (current === undefined) return false;
    this.lru.set(key, current);
    return true;
  }

  /**
   * The nexthop id of a live flow (0 while unresolved), or undefined if not live. A read:
   * it does not count as seeing the flow, so it is safe while walking keys().
   */
  nexthopOf(key: string): number | undefined {
    const v = this.lru.peek(key);
    return v === undefined ? undefined : nhOf(v);
  }

  /**
   * The side that half-closed a tracked flow, null while both are open, undefined if not tracked (a read).
   */
  halfClosedBy(key: string): Side | null | undefined {
    const v = this.lru.peek(key);
    if (v === undefined) return undefined;
    const b = bitsOf(v);
    return b === 0 ? null : b === SIDE_BIT.client ? 'client' : 'server';
  }

  has(key: string): boolean {
    return this.lru.has(key);
  }

  /** Live flows on a nexthop; stale ones met on the way are removed. */
  flowsOn(nexthopId: number): string[] {
    const set = this.byNexthop.get(nexthopId);
    if (set === undefined) return [];
    const out: string[] = [];
    for (const key of set) {
      // has() is false for an expired flow, which get() would then purge (and unindex).
      if (this.lru.has(key)) out.push(key);
      else this.lru.get(key);
    }
    return out;
  }

  /**
   * The nexthop index: each resolved nexthop id with its flow keys (live sets: safe to read across awaits).
   */
  indexed(): IterableIterator<[number, ReadonlySet<string>]> {
    return this.byNexthop.entries();
  }

  /** Number of flows indexed on a nexthop (may include flows past their age until purged). */
  countOn(nexthopId: number): number {
    return this.byNexthop.get(nexthopId)?.size ?? 0;
  }

  /** Removes every flow past its age; returns how many went. */
  purgeStale(): number {
    const before = this.lru.size;
    this.lru.purgeStale();
    return before - this.lru.size;
  }

  /** A live flow in readable form (a read, like nexthopOf). */
  entry(key: string): FlowEntry | undefined {
    const v = this.lru.peek(key);
    if (v === undefined) return undefined;
    const remaining = this.lru.getRemainingTTL(key);
    const b = bitsOf(v);
    return {
      switchId: switchIdOfKey(key),
      ...parseTuple(key, 2),
      nexthopId: nhOf(v),
      halfClosedBy: b === 0 ? null : b === SIDE_BIT.client ? 'client' : 'server',
      lastSeen: this.lruNow() - (this.maxAgeMs - remaining),
    };
  }

  /** When a tracked flow was last seen (a read), or undefined if not tracked. */
  lastSeen(key: string): number | undefined {
    if (!this.lru.has(key)) return undefined;
    return this.lruNow() - (this.maxAgeMs - this.lru.getRemainingTTL(key));
  }

  /**
   * Keys of live flows, most recently seen first. Only reads (nexthopOf, entry, has) may run while walking
   * it.
   */
  *keys(): IterableIterator<string> {
    yield* this.lru.keys();
  }

  /** Checks that the nexthop index and the table agree; returns the problems found. */
  checkIndex(): string[] {
    const problems: string[] = [];
    let indexed = 0;
    for (const [nh, set] of this.byNexthop) {
      for (const key of set) {
        indexed++;
        const v = this.lru.peek(key, { allowStale: true });
        if (v === undefined || nhOf(v) !== nh)
          problems.push(`key indexed on ${nh} has nexthop ${v === undefined ? 'none' : nhOf(v)}`);
      }
    }
    let resolved = 0;
    for (const [key, v] of this.lru.entries()) {
      if (nhOf(v) === UNRESOLVED) continue;
      resolved++;
      if (!this.byNexthop.get(nhOf(v))?.has(key))
        problems.push(`resolved flow missing from index of ${nhOf(v)}`);
    }
    if (indexed < resolved) problems.push(`index holds ${indexed} keys, table ${resolved} resolved flows`);
    return problems;
  }

  private lruNow(): number {
    return this.lru.perf.now();
  }

  private unindex(key: string, nexthopId: number): void {
    if (nexthopId === UNRESOLVED) return;
    const set = this.byNexthop.get(nexthopId);
    if (set === undefined) return;
    set.delete(key);
    if (set.size === 0) this.byNexthop.delete(nexthopId);
  }
}
