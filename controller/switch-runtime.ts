// One switch inside the controller: its VIPs, the queue of flows waiting for their nexthop,
// the resolver loop (batched look-ups through the adapter, a bounded number in flight), the
// pin policy applied to each resolved flow, and the reconciler that owns every write to the
// switch. Every accepted SYN gets a sequence number: a change takes a mark and waits until
// every event up to it is resolved (never until the resolver is idle). Holds pause the start
// of new look-ups while a group change is being applied; each change holds with its own
// token, so one change's release never ends another's hold. Resolution watchers let a
// change see the flows resolved after its mark (its change window).

import { LRUCache } from 'lru-cache';
import { parseTuple } from '../mirror-receiver/tuple.js';
import type { FlowSpec, SwitchAdapter } from '../switch-adapters/contract.js';
import { flowId } from '../switch-adapters/contract.js';
import { isSwitchError } from '../switch-adapters/errors.js';
import type { Clock } from './clock.js';
import { flowKey, type FlowTable, UNRESOLVED } from './flow-table.js';
import type { ControllerMetrics } from './metrics.js';
import type { NexthopRegistry } from './nexthop-registry.js';
import { pinReason, type ChangeView, type PinMode } from './pin-policy.js';
import { Reconciler, type AtRiskReason } from './reconciler.js';
import { ResolveQueue, type Pending } from './resolve-queue.js';

export interface SwitchRuntimeOptions {
  name: string;
  id: number;
  adapter: SwitchAdapter;
  vips: { address: string; nexthops: string[] }[];
  flowTable: FlowTable;
  registry: NexthopRegistry;
  metrics: ControllerMetrics;
  pinMode: PinMode;
  pinIdleTimeoutS: number;
  queueCapacity: number;
  resolveConcurrency?: number;
  retryMaxMs: number;
  clock: Clock;
  /** Mirror health thresholds (config.mirror). */
  mirrorSilenceS?: number;
  mirrorCollapseRatio?: number;
  /** Mirror frames lost before decoding (socket and backlog drops; see mirror-receiver/loss-monitor.ts). */
  mirrorLoss?: () => { dropped: number; recent: boolean; why: string | null };
}

/** What the switch's mirror tells flowpin, and whether it can be trusted. */
export interface MirrorHealth {
  /** `dropping`: mirrored frames were lost before decoding within the last window. */
  state: 'ok' | 'silent' | 'collapsed' | 'dropping';
  syns: number;
  /** Mirrored frames lost before decoding since start (kernel socket drops, backlog); null where not known. */
  dropped: number | null;
  /** SYNs per second over the last window, and the switch's usual rate (slow average). */
  synRate: number;
  usualRate: number;
  /** Seconds since the last mirrored SYN; null before the first. */
  lastSynAgoS: number | null;
  why: string | null;
}

export interface VipState {
  address: string;
  /** Nexthops flowpin manages for the VIP (configured, added, or found in the group). */
  nexthops: Set<string>;
  /** Members of the switch's ECMP group, as last read or changed. */
  members: Set<string>;
  /** SYNs accepted for the VIP. */
  syns: number;
  /** SYNs per second over the last full rate window, and the count when that window began. */
  synRate: number;
  synsAtWindow: number;
}

/** A flow resolved by the resolver, as change watchers see it. */
export interface Resolution {
  key: string;
  seq: number;
  vip: string;
  nexthop: string | undefined;
  /** Who wants its pin, if anyone. */
  pinOwner: string | undefined;
}

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const RATE_WINDOW_MS = 10_000;

export class SwitchRuntime {
  readonly name: string;
  readonly id: number;
  readonly adapter: SwitchAdapter;
  readonly reconciler: Reconciler;
  readonly queue: ResolveQueue;
  readonly vips = new Map<string, VipState>();
  /** Changes whose pins are wanted (kept current by the change manager). */
  changes: ChangeView[] = [];
  /** Sequence number of the last event accepted. */
  seq = 0;
  connected = false;
  lastResolveError: string | undefined;
  private inFlight = 0;
  /** Changes holding resolution while their group change is applied. */
  private readonly holds = new Set<string>();
  private resolveFailures = 0;
  private retryTimer: unknown;
  private stopped = false;
  private readonly progress = new Set<() => void>();
  private readonly watchers = new Set<(r: Resolution) => void>();
  /** SYNs shed (queue full) and not seen again, by flow key -> VIP: every change of the VIP counts them at risk. */
  private readonly shedKeys = new LRUCache<string, string>({ max: 100_000, ttl: 3_600_000 });
  /** Flows the switch could not resolve, per VIP (pruned when read: ended or aged flows drop out). */
  private readonly unresolvedKeys = new Map<string, Set<string>>();
  private rateStart = 0;
  private syns = 0;
  private synsAtWindow = 0;
  private synRate = 0;
  private usualRate = 0;
  private lastSynAt: number | undefined;
  private readonly startedAt: number;

  constructor(private readonly o: SwitchRuntimeOptions) {
    this.name = o.name;
    this.id = o.id;
    this.adapter = o.adapter;
    this.queue = new ResolveQueue(o.queueCapacity);
    for (const v of o.vips) this.vips.set(v.address, { address: v.address, nexthops: new Set(v.nexthops), members: new Set(), syns: 0, synRate: 0, synsAtWindow: 0 });
    this.reconciler = new Reconciler({ switchName: o.name, adapter: o.adapter, metrics: o.metrics, idleTimeoutS: o.pinIdleTimeoutS, clock: o.clock, backoffMaxMs: o.retryMaxMs });
    this.rateStart = o.clock.now();
    this.startedAt = this.rateStart;
  }

  get clock(): Clock {
    return this.o.clock;
  }

  get pinMode(): PinMode {
    return this.o.pinMode;
  }

  /**
   * Connects, reads the VIP groups, then lists the pins on the switch (the first resync).
   * `connectedHook` runs once the groups are read, before that resync completes (a slow
   * listing goes on in the background and must not hold up what depends on the groups).
   */
  async start(connectedHook?: () => void): Promise<void> {
    await this.adapter.connect();
    for (const v of this.vips.values()) {
      const members = await this.adapter.groupMembers(v.address);
      v.members = new Set(members);
      for (const m of members) v.nexthops.add(m);
      this.reconciler.groups.set(v.address, new Set(members));
    }
    this.connected = true;
    const synced = this.reconciler.resync();
    connectedHook?.();
    this.pump();
    await synced;
  }

  stop(): void {
    this.stopped = true;
    this.reconciler.stop();
    if (this.retryTimer !== undefined) this.o.clock.cancel(this.retryTimer);
  }

  /** A decoded mirror event for this switch. Returns what it did, for counters. */
  onSegment(tuple: string, dst: string, flags: number): 'syn' | 'end' | 'ignored' | 'shed' | 'unknown-vip' {
    const vip = this.vips.get(dst);
    if (vip === undefined) return 'unknown-vip';
    const key = flowKey(this.id, tuple);
    if ((flags & (FIN | RST)) !== 0) {
      this.shedKeys.delete(key);
      if (!this.o.flowTable.end(key)) return 'ignored';
      this.reconciler.unwant(specOf(key));
      return 'end';
    }
    if ((flags & SYN) === 0 || (flags & ACK) !== 0) return 'ignored';
    if (this.o.flowTable.has(key)) return 'ignored';
    const now = this.o.clock.now();
    this.countSyn(vip, now);
    const seq = ++this.seq;
    if (!this.queue.push({ key, seq, at: now })) {
      this.shedKeys.set(key, dst);
      return 'shed';
    }
    this.shedKeys.delete(key);
    this.o.flowTable.touch(key);
    this.pump();
    return 'syn';
  }

  private countSyn(vip: VipState, now: number): void {
    vip.syns++;
    this.syns++;
    this.lastSynAt = now;
    this.rollRates(now);
  }

  /** Closes the rate window if it is over (also when no SYN comes: a silent mirror's rate is 0). */
  private rollRates(now: number): void {
    const elapsed = now - this.rateStart;
    if (elapsed < RATE_WINDOW_MS) return;
    for (const v of this.vips.values()) {
      v.synRate = ((v.syns - v.synsAtWindow) * 1000) / elapsed;
      v.synsAtWindow = v.syns;
    }
    this.synRate = ((this.syns - this.synsAtWindow) * 1000) / elapsed;
    this.synsAtWindow = this.syns;
    // The usual rate follows slowly (a few minutes), so a collapse shows against it.
    this.usualRate = this.usualRate === 0 ? this.synRate : this.usualRate * 0.95 + this.synRate * 0.05;
    this.rateStart = now;
  }

  /**
   * A VIP's SYN rate: the last full window's, or, before one has closed (or when the current
   * one already runs higher), the current window's once it is a second old.
   */
  synRateOf(vip: VipState): number {
    const now = this.o.clock.now();
    this.rollRates(now);
    const elapsed = now - this.rateStart;
    const current = elapsed >= 1000 ? ((vip.syns - vip.synsAtWindow) * 1000) / elapsed : 0;
    return Math.max(vip.synRate, current);
  }

  /** The mirror's health: silent (no SYN for silenceS), collapsed (rate far below usual), dropping (frames lost lately), or ok. */
  mirrorHealth(): MirrorHealth {
    const now = this.o.clock.now();
    this.rollRates(now);
    const silenceMs = (this.o.mirrorSilenceS ?? 60) * 1000;
    const since = this.lastSynAt ?? this.startedAt;
    const loss = this.o.mirrorLoss?.();
    const h: MirrorHealth = { state: 'ok', syns: this.syns, dropped: loss?.dropped ?? null, synRate: round1(this.synRate), usualRate: round1(this.usualRate), lastSynAgoS: this.lastSynAt === undefined ? null : round1((now - this.lastSynAt) / 1000), why: null };
    if (now - since >= silenceMs) {
      h.state = 'silent';
      h.why = this.lastSynAt === undefined ? `no mirrored SYN since flowpin started ${Math.round((now - this.startedAt) / 1000)} s ago: check the switch's mirror session and mirrorSources` : `no mirrored SYN for ${Math.round((now - since) / 1000)} s`;
    } else if (this.usualRate >= 5 && this.synRate < this.usualRate * (this.o.mirrorCollapseRatio ?? 0.1)) {
      h.state = 'collapsed';
      h.why = `mirrored SYNs fell to ${round1(this.synRate)}/s from a usual ${round1(this.usualRate)}/s`;
    } else if (loss?.recent === true) {
      h.state = 'dropping';
      h.why = loss.why;
    }
    return h;
  }

  /** A flow restored unresolved (seen before a stop, not looked up yet): queued for its look-up. */
  lookUpAgain(key: string): void {
    if (this.queue.push({ key, seq: ++this.seq, at: this.o.clock.now() })) this.pump();
  }

  /** Live flows resolved to a nexthop of a VIP. */
  flowsOn(vip: string, nexthop: string): string[] {
    const id = this.o.registry.find(this.name, vip, nexthop);
    return id === undefined ? [] : this.o.flowTable.flowsOn(id);
  }

  /** Flows with a pin wanted on a nexthop of a VIP. */
  pinnedOn(vip: string, nexthop: string, programmedOnly = false): number {
    let n = 0;
    for (const [id, p] of this.reconciler.desired) {
      if (p.nexthop !== nexthop || p.flow.dst !== vip) continue;
      if (programmedOnly && !this.reconciler.isProgrammed(id, nexthop)) continue;
      n++;
    }
    return n;
  }

  /**
   * Asks for pins on these flows (live and resolved to `nexthop`), most recently seen
   * first: where the table cannot hold them all, those are the likeliest to be still alive.
   */
  pinFlows(keys: string[], nexthop: string, owner: string): void {
    const now = this.o.clock.now();
    const seen = keys.map((key) => ({ key, at: this.o.flowTable.entry(key)?.lastSeen ?? 0 })).sort((a, b) => b.at - a.at);
    for (const { key } of seen) {
      const flow = specOf(key);
      if (this.reconciler.desired.get(flowId(flow))?.nexthop === nexthop) continue;
      this.reconciler.want({ flow, nexthop, reason: owner, since: now });
    }
  }

  /** Sequence number of the last accepted event: a change's mark. */
  mark(): number {
    return this.seq;
  }

  /** Every event up to `mark` is resolved (or dropped) and its pin decision made. */
  resolvedThrough(mark: number): boolean {
    return this.queue.doneThrough(mark);
  }

  /** Registers a progress listener (a resolve batch ended); returns its removal. */
  onProgress(fn: () => void): () => void {
    this.progress.add(fn);
    const off = this.reconciler.onProgress(fn);
    return () => {
      this.progress.delete(fn);
      off();
    };
  }

  /** Watches every flow resolved from now on; returns the removal. */
  watch(fn: (r: Resolution) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** Holds the start of new look-ups for `token`; resolves once none is in flight. */
  hold(token: string): Promise<void> {
    this.holds.add(token);
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onProgress(() => {
        if (this.inFlight !== 0) return;
        off();
        resolve();
      });
    });
  }

  release(token: string): void {
    this.holds.delete(token);
    this.pump();
  }

  get held(): boolean {
    return this.holds.size > 0;
  }

  /** Flows of a VIP whose SYN was shed (the resolve queue was full) and not seen since. */
  shedOn(vip: string): string[] {
    const out: string[] = [];
    for (const [key, v] of this.shedKeys.entries()) if (v === vip) out.push(key);
    return out;
  }

  /** Live flows of a VIP whose nexthop the switch could not tell: any change of the VIP may move them. */
  unresolvedOn(vip: string): string[] {
    const set = this.unresolvedKeys.get(vip);
    if (set === undefined) return [];
    const out: string[] = [];
    for (const key of set) {
      if (this.o.flowTable.nexthopOf(key) === UNRESOLVED) out.push(key);
      else set.delete(key);
    }
    return out;
  }

  /** Queued flows of a VIP accepted after `after` and up to `through` (their nexthop is not known yet). */
  queuedOn(vip: string, after: number, through: number): string[] {
    return this.queue.between(after, through).filter((p) => specOf(p.key).dst === vip).map((p) => p.key);
  }

  private notifyProgress(): void {
    for (const fn of [...this.progress]) fn();
  }

  /** Starts resolve batches while there is work and room in flight. */
  private pump(): void {
    const max = this.o.resolveConcurrency ?? 2;
    while (!this.stopped && this.holds.size === 0 && this.retryTimer === undefined && this.inFlight < max && this.queue.length > 0) {
      const batch = this.queue.take(this.adapter.capabilities.resolveBatchSize);
      this.inFlight++;
      void this.resolveBatch(batch).finally(() => {
        this.inFlight--;
        this.notifyProgress();
        this.pump();
      });
    }
  }

  private async resolveBatch(batch: Pending[]): Promise<void> {
    const live = batch.filter((p) => this.o.flowTable.nexthopOf(p.key) === UNRESOLVED);
    const flows = live.map((p) => specOf(p.key));
    let nexthops: (string | undefined)[];
    try {
      nexthops = live.length === 0 ? [] : await this.adapter.resolve(flows);
    } catch (err) {
      this.resolveFailures++;
      this.lastResolveError = err instanceof Error ? err.message : String(err);
      this.queue.requeue(batch);
      this.o.metrics.resolved.inc({ switch: this.name, result: 'error' }, batch.length);
      // Retrying soon cannot mend refused credentials or a refused command: wait the longest.
      const hopeless = isSwitchError(err) && !err.retryable;
      const delay = hopeless ? this.o.retryMaxMs : Math.min(this.o.retryMaxMs, 100 * 2 ** Math.min(this.resolveFailures - 1, 16));
      this.retryTimer = this.o.clock.schedule(delay, () => {
        this.retryTimer = undefined;
        this.pump();
      });
      return;
    }
    this.resolveFailures = 0;
    this.lastResolveError = undefined;
    const moved = await this.predictMoves(flows, nexthops);
    live.forEach((p, i) => {
      const nh = nexthops[i];
      const f = flows[i] as FlowSpec;
      const vip = this.vips.get(f.dst);
      if (nh === undefined) {
        this.o.metrics.resolved.inc({ switch: this.name, result: 'unknown' });
        let set = this.unresolvedKeys.get(f.dst);
        if (set === undefined) this.unresolvedKeys.set(f.dst, (set = new Set()));
        set.add(p.key);
        this.emit({ key: p.key, seq: p.seq, vip: f.dst, nexthop: undefined, pinOwner: undefined });
        return;
      }
      // Resolved meanwhile by something surer (a restored record): an answer given now may
      // reflect a group that changed since the SYN, so it never overwrites.
      if (this.o.flowTable.nexthopOf(p.key) !== UNRESOLVED) return;
      this.o.metrics.resolved.inc({ switch: this.name, result: 'ok' });
      vip?.nexthops.add(nh);
      if (!this.o.flowTable.resolve(p.key, this.o.registry.intern(this.name, f.dst, nh))) return;
      const owner = pinReason(this.o.pinMode, this.changes, { vip: f.dst, nexthop: nh, movedByAdd: moved[i] });
      if (owner !== undefined) this.reconciler.want({ flow: f, nexthop: nh, reason: owner, since: p.at });
      this.emit({ key: p.key, seq: p.seq, vip: f.dst, nexthop: nh, pinOwner: owner });
    });
    this.queue.finish(batch);
  }

  private emit(r: Resolution): void {
    for (const fn of this.watchers) fn(r);
  }

  /** Where an addition is pending on a flow's VIP and the adapter can tell, whether it moves the flow. */
  private async predictMoves(flows: FlowSpec[], nexthops: (string | undefined)[]): Promise<(boolean | undefined)[]> {
    const out = new Array<boolean | undefined>(flows.length).fill(undefined);
    const adds = this.changes.filter((c) => c.kind === 'add' && c.active);
    if (adds.length === 0 || this.adapter.movedByAdd === undefined) return out;
    for (const c of adds) {
      const idx = flows.map((f, i) => (f.dst === c.vip && nexthops[i] !== undefined ? i : -1)).filter((i) => i >= 0);
      if (idx.length === 0) continue;
      try {
        const r = await this.adapter.movedByAdd(c.vip, c.nexthop, idx.map((i) => flows[i] as FlowSpec));
        idx.forEach((i, k) => (out[i] = (out[i] ?? false) || (r[k] ?? true)));
      } catch (err) {
        // Cannot tell which flows move: pin them all (safe, costs table entries).
        this.lastResolveError = `predicting moved flows: ${err instanceof Error ? err.message : String(err)}`;
        idx.forEach((i) => (out[i] = true));
      }
    }
    return out;
  }
}

export type { AtRiskReason };

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** The flow a flow-table key stands for. */
export function specOf(key: string): FlowSpec {
  const t = parseTuple(key, 2);
  return { family: t.family, src: t.src, dst: t.dst, sport: t.sport, dport: t.dport };
}

export const idOfKey = (key: string): string => flowId(specOf(key));
