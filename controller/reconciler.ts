// The per-switch reconciler: the one write point of a switch. It holds what the switch
// should have (desired pins, desired group members per VIP) and what it has (installed pins
// with their programming state, as the switch reports it), and applies the difference in
// batches. A pin counts as installed only once the switch reports it programmed: accepted
// pins whose state is not known yet are read back until they are programmed or refused.
// On a failed round it marks itself for a full resync, backs off (retryable errors) or stops
// until the next resync (errors retrying cannot mend: auth, refused configuration), and
// counts the failure. Failed-pin records are bounded and aged. Adapter reads change nothing:
// pins the switch timed out or could not program, and entries of flowpin's no pin stands for,
// are removed by this reconciler's resync round (garbage collection is a write like any
// other); after a restart, pins found are adopted. Under high availability every write
// carries the owner's fence (setFence), and none is started once the fence's validUntil (less
// a margin) has passed: the owner fences itself before its lease can expire elsewhere.

import { LRUCache } from 'lru-cache';
import type {
  FenceToken,
  FlowSpec,
  InstalledPin,
  NotProgrammedReason,
  PinOutcome,
  SwitchAdapter,
} from '../switch-adapters/contract.js';
import { flowId } from '../switch-adapters/contract.js';
import { isSwitchError } from '../switch-adapters/errors.js';
import { FenceExpiredError, SwitchFencedError } from '../switch-adapters/fence.js';
import type { Clock } from './clock.js';
import type { ControllerMetrics } from './metrics.js';

/**
 * Why a flow that needed a pin has none programmed (closed set: metric labels). `restart`: seen
 * before a restart, and no pin on the switch after it, for a change resumed past its group write.
 */
export type AtRiskReason = 'table-full' | 'refused' | 'not-programmed' | 'shed' | 'unresolved' | 'restart';

export interface DesiredPin {
  flow: FlowSpec;
  nexthop: string;
  /** Why it is wanted: 'always', 'adopted', or the id of the change that wants it. */
  reason: string;
  /** When the SYN that led to this pin arrived (controller clock, ms), for latency. */
  since: number;
}

export interface InstalledView {
  flow: FlowSpec;
  nexthop: string;
  programmed: boolean;
  /** Why not programmed: `pending` while the switch is still programming it. */
  reason?: NotProgrammedReason;
  packets: number;
  /** When the packet counter last moved (controller clock), for controller-side aging. */
  lastActive: number;
}

/**
 * The installed view, keeping the number of programmed pins as it changes: the count is read
 * every round (free entries) and by every scrape, and a scan of a million pins each time
 * made a round grow with the table. Views are replaced, never changed in place.
 */
export class InstalledPins extends Map<string, InstalledView> {
  private programmedN = 0;

  get programmed(): number {
    return this.programmedN;
  }

  override set(id: string, view: InstalledView): this {
    if (super.get(id)?.programmed === true) this.programmedN--;
    if (view.programmed) this.programmedN++;
    return super.set(id, view);
  }

  override delete(id: string): boolean {
    if (super.get(id)?.programmed === true) this.programmedN--;
    return super.delete(id);
  }

  override clear(): void {
    this.programmedN = 0;
    super.clear();
  }
}

export interface FailedPin {
  flow: FlowSpec;
  nexthop: string;
  why: AtRiskReason | 'idle-timeout';
  detail: string;
  at: number;
}

/** The failed-pin records as others see them: read, never written (the reconciler records and forgets). */
export interface FailedPins {
  readonly size: number;
  get(id: string): Readonly<FailedPin> | undefined;
  values(): IterableIterator<Readonly<FailedPin>>;
}

const INSTALL_PARALLELISM = 2;
const FAILED_MAX = 10_000;
const FAILED_TTL_MS = 15 * 60_000;

export interface ReconcilerOptions {
  switchName: string;
  adapter: SwitchAdapter;
  metrics: ControllerMetrics;
  idleTimeoutS: number;
  clock: Clock;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** How often accepted pins whose programming state is unknown are read back (ms). */
  readbackMs?: number;
  /**
   * No write is started later than this before the fence's validUntil (ms; default 1000): room
   * for a write started just before it to land before the lease can expire elsewhere.
   */
  fenceMarginMs?: number;
  /** The pins the first listing adopted (found on the switch, wanted by no one yet). */
  onAdopted?: (pins: DesiredPin[]) => void;
}

export type DropListener = (id: string, pin: DesiredPin, why: AtRiskReason | 'idle-timeout') => void;

export class Reconciler {
  /**
   * What the switch should hold and what it holds: written here only (`desired`, `installed`,
   * `desiredGroups`, `groups` are read-only views).
   */
  private readonly wanted = new Map<string, DesiredPin>();
  private readonly held = new InstalledPins();
  private readonly failedPins: LRUCache<string, FailedPin>;
  /** Desired members per VIP; a VIP absent here is left as the switch has it. */
  private readonly wantedGroups = new Map<string, Set<string>>();
  /**
   * Members per VIP as last read from or written to the switch (this reconciler writes it: `groups` is its
   * view).
   */
  private readonly groupsKnown = new Map<string, Set<string>>();
  /** Consecutive failed rounds; 0 when in sync. */
  failures = 0;
  lastError: string | undefined;
  /** Set by an error retrying cannot mend; cleared by the next resync(). */
  blocked: string | undefined;
  private needResync = true;
  /** Flows whose desired or installed state changed since the last round (all of them after a resync). */
  private readonly touched = new Set<string>();
  private readonly touchedGroups = new Set<string>();
  private adoptOnResync = true;
  private gen = 0;
  private appliedGen = -1;
  private running = false;
  private dirty = false;
  private stopped = false;
  private timer: unknown;
  private readbackTimer: unknown;
  /** Installed pins accepted but not yet reported programmed. */
  private pendingIds = new Set<string>();
  /**
   * Pins whose install is unanswered: on its way, or its answer lost (the switch may have carried it out).
   * Read back before a change counts them (readBackUnanswered); a listing or a read-back settles them.
   */
  private readonly unanswered = new Set<string>();
  /** Pins whose install request is on its way now. */
  private readonly sending = new Set<string>();
  /** Entries of other owners in the switch's table, as of the last resync. */
  private othersUsed = 0;
  private capacity: number;
  private readonly waiters: { target: number; resolve: () => void }[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly dropListeners = new Set<DropListener>();
  private readonly groupWriteListeners = new Set<(vip: string) => void>();
  private groupWriter: Promise<void> = Promise.resolve();
  /** The owner's fence under high availability; undefined: no HA, writes carry none. */
  private fenceToken: FenceToken | undefined;
  /** The fence refusal that set `blocked`, if one did. */
  private fenceBlock: { reason: 'expired' | 'stale'; epoch: bigint } | undefined;

  constructor(private readonly o: ReconcilerOptions) {
    this.capacity = o.adapter.capabilities.pinTableSize;
    this.failedPins = new LRUCache<string, FailedPin>({
      max: FAILED_MAX,
      ttl: FAILED_TTL_MS,
      perf: { now: () => o.clock.now() },
    });
  }

  /** Pins that could not be installed, by flow id (bounded and aged), read-only. */
  get failed(): FailedPins {
    return this.failedPins;
  }

  /**
   * Sets the fence every later write carries (a new owner's, or its lease extended). A block its
   * predecessor's expiry set, or a stale-write refusal set under a lower epoch than this one's,
   * is cleared (with a resync); any other block stays until the next resync.
   * undefined: no fence (no HA), as before any was set.
   */
  setFence(token: FenceToken | undefined): void {
    this.fenceToken = token;
    const b = this.fenceBlock;
    if (this.blocked === undefined || b === undefined) return;
    if (b.reason === 'expired' || token === undefined || token.epoch > b.epoch) void this.resync();
  }

  /** The fence writes carry now. */
  get fence(): FenceToken | undefined {
    return this.fenceToken;
  }

  /**
   * The fence for a write about to start, or undefined without one; throws FenceExpiredError
   * (nothing sent) once its validUntil less the margin has passed.
   */
  private writeFence(): FenceToken | undefined {
    const f = this.fenceToken;
    if (f === undefined || f.validUntil === undefined) return f;
    const now = this.o.clock.now();
    if (now < f.validUntil - (this.o.fenceMarginMs ?? 1000)) return f;
    this.o.metrics.fenceRefusals.inc({ switch: this.o.switchName, reason: 'expired' });
    throw new FenceExpiredError(this.o.switchName, f.epoch, f.validUntil, now);
  }

  /**
   * A new owner takes the switch: later writes carry `token`, the switch's own fence is set to
   * its epoch where the kind keeps one (the adapter's fenceTakeover), and the switch is read
   * again (resync, adopting the pins found) before anything is written from what this instance held.
   */
  async takeover(token: FenceToken): Promise<void> {
    this.fenceToken = token;
    const fence = this.writeFence() as FenceToken;
    try {
      await this.o.adapter.fenceTakeover(fence);
    } catch (err) {
      if (err instanceof SwitchFencedError)
        this.o.metrics.fenceRefusals.inc({ switch: this.o.switchName, reason: 'stale' });
      throw err;
    }
    // The last owner's programmed pins are kept (adopted as wanted, aged as pins are) until the
    // changes resumed say which are still needed: a pin of a flow this instance did not see stays.
    this.adoptOnResync = true;
    await this.resync();
  }

  /** Desired pins by flow id. */
  get desired(): ReadonlyMap<string, DesiredPin> {
    return this.wanted;
  }

  /** Pins on the switch by flow id, with their programming state as the switch last reported it. */
  get installed(): ReadonlyMap<string, InstalledView> {
    return this.held;
  }

  /** Desired members per VIP; a VIP absent is left as the switch has it. */
  get desiredGroups(): ReadonlyMap<string, ReadonlySet<string>> {
    return this.wantedGroups;
  }

  /** Members per VIP as last read from or written to the switch. */
  get groups(): ReadonlyMap<string, ReadonlySet<string>> {
    return this.groupsKnown;
  }

  /** The switch's group of a VIP as read outside a round (at connect, for a VIP a reload added). */
  groupRead(vip: string, members: Iterable<string>): void {
    this.groupsKnown.set(vip, new Set(members));
  }

  get inSync(): boolean {
    return (
      this.failures === 0 &&
      this.blocked === undefined &&
      !this.needResync &&
      this.appliedGen >= this.gen &&
      this.pendingIds.size === 0
    );
  }

  /** How long a pin lasts without packets (s). */
  get idleTimeoutS(): number {
    return this.o.idleTimeoutS;
  }

  /** Pin table entries the switch reports (or is configured to have) for all owners. */
  get tableCapacity(): number {
    return this.capacity;
  }

  /**
   * Entries free for new pins: capacity less other owners' entries and flowpin's programmed and pending ones.
   */
  freeEntries(): number {
    return Math.max(0, this.capacity - this.othersUsed - this.programmedCount() - this.pendingIds.size);
  }

  want(pin: DesiredPin): void {
    const id = flowId(pin.flow);
    const cur = this.wanted.get(id);
    if (cur && cur.nexthop === pin.nexthop) return;
    this.wanted.set(id, pin);
    this.failedPins.delete(id);
    this.touched.add(id);
    this.touch();
  }

  unwant(flow: FlowSpec): void {
    const id = flowId(flow);
    if (this.wanted.delete(id)) {
      this.touched.add(id);
      this.touch();
    }
  }

  /** Drops every desired pin wanted for `reason` (a change that failed before its group change). */
  unwantReason(reason: string): number {
    let n = 0;
    for (const [id, p] of this.wanted) {
      if (p.reason !== reason) continue;
      this.wanted.delete(id);
      this.touched.add(id);
      n++;
    }
    if (n > 0) this.touch();
    return n;
  }

  has(flow: FlowSpec): boolean {
    return this.wanted.has(flowId(flow));
  }

  /** The pin of a flow is on the switch and programmed toward `nexthop`. */
  isProgrammed(id: string, nexthop?: string): boolean {
    const i = this.held.get(id);
    return i !== undefined && i.programmed && (nexthop === undefined || i.nexthop === nexthop);
  }

  /**
   * A VIP flowpin no longer manages (a reload removed it, with no change of it in flight): its
   * group is left as the switch has it and no longer read; its pins stay until they idle out.
   */
  forgetGroup(vip: string): void {
    this.wantedGroups.delete(vip);
    this.groupsKnown.delete(vip);
    this.touchedGroups.delete(vip);
  }

  /** Sets a VIP's desired members; applied by the next round like pins. */
  setGroup(vip: string, members: Iterable<string>): void {
    this.wantedGroups.set(vip, new Set(members));
    this.touchedGroups.add(vip);
    this.touch();
    // A round in progress (installing pins) would write it only when it gets there: written at
    // once beside it, through the same (serialised) group writer. A failure is left to the round.
    if (this.running && !this.needResync && this.blocked === undefined && !this.stopped) {
      this.applyGroups().catch((err: unknown) => {
        this.lastError = `writing a group: ${err instanceof Error ? err.message : String(err)}`;
        this.dirty = true;
      });
    }
  }

  /** Asks for a full resync (list the switch) at the next round; clears a block. */
  resync(): Promise<void> {
    this.needResync = true;
    this.blocked = undefined;
    this.fenceBlock = undefined;
    this.touch();
    return this.flush();
  }

  /** Resolves when every change asked for before the call has been applied (not necessarily programmed). */
  flush(): Promise<void> {
    const target = this.gen;
    if (this.appliedGen >= target && !this.dirty && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ target, resolve }));
  }

  /** Registers a progress listener (a round ended, a pin was read back); returns its removal. */
  onProgress(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Registers a listener for desired pins dropped (refused, no room, not programmed, idled out); returns its
   * removal.
   */
  onDropped(fn: DropListener): () => void {
    this.dropListeners.add(fn);
    return () => this.dropListeners.delete(fn);
  }

  /**
   * Whether every pin in `ids` is settled: programmed on the switch as desired, or no longer
   * desired (dropped as at risk, or unwanted).
   */
  settled(ids: Iterable<string>): boolean {
    for (const id of ids) {
      const d = this.wanted.get(id);
      if (d !== undefined && !this.isProgrammed(id, d.nexthop)) return false;
    }
    return true;
  }

  /**
   * settled(ids) as a check that is cheap to repeat (a change's barrier asks it on every wake:
   * every resolve batch, reply and round, thousands a second under load). Pins found settled
   * are passed over on later calls; only once every pin has been passed is the whole set checked
   * again (a pin can go back to not programmed: read back gone, or wanted toward another
   * nexthop), and that check is the answer. Amortised, a call costs the pins it passes.
   */
  settledCheck(ids: Iterable<string>): () => boolean {
    const all = [...ids];
    let at = 0;
    const unsettled = (id: string): boolean => {
      const d = this.wanted.get(id);
      return d !== undefined && !this.isProgrammed(id, d.nexthop);
    };
    return () => {
      for (; at < all.length; at++) if (unsettled(all[at] as string)) return false;
      // Every pin was settled when it was passed: the whole set again, from the first that is not.
      at = all.findIndex(unsettled);
      if (at < 0) {
        at = all.length;
        return true;
      }
      return false;
    };
  }

  /** Pins the switch accepted and is still programming. */
  get pendingCount(): number {
    return this.pendingIds.size;
  }

  /** Installed and programmed pins. */
  programmedCount(): number {
    return this.held.programmed;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.cancel(this.timer);
    if (this.readbackTimer !== undefined) this.o.clock.cancel(this.readbackTimer);
    this.timer = undefined;
    this.readbackTimer = undefined;
  }

  private touch(): void {
    this.gen++;
    this.dirty = true;
    if (!this.running && this.timer === undefined && !this.stopped && this.blocked === undefined)
      setImmediate(() => void this.run());
  }

  private notify(): void {
    for (const fn of [...this.listeners]) fn();
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped || this.blocked !== undefined) return;
    this.running = true;
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        const target = this.gen;
        try {
          await this.round();
          this.failures = 0;
          this.lastError = undefined;
          this.appliedGen = target;
          this.o.metrics.ready.set({ switch: this.o.switchName }, 1);
          this.release();
        } catch (err) {
          this.failures++;
          this.lastError = err instanceof Error ? err.message : String(err);
          this.needResync = true;
          this.dirty = true;
          this.o.metrics.reconcileFailures.inc({ switch: this.o.switchName, error: errorKind(err) });
          if (err instanceof SwitchFencedError)
            this.o.metrics.fenceRefusals.inc({ switch: this.o.switchName, reason: 'stale' });
          this.o.metrics.ready.set({ switch: this.o.switchName }, 0);
          this.running = false;
          if (isSwitchError(err) && !err.retryable) {
            // Retrying cannot mend it: stop until the next resync (periodic, or an operator's).
            // Whoever waits for a flush is told now (it reads `blocked`), not at its deadline.
            this.blocked = this.lastError;
            if (err instanceof FenceExpiredError) this.fenceBlock = { reason: 'expired', epoch: err.epoch };
            else if (err instanceof SwitchFencedError)
              this.fenceBlock = { reason: 'stale', epoch: err.epoch };
            for (const w of this.waiters.splice(0)) w.resolve();
          } else {
            const min = this.o.backoffMinMs ?? 100;
            const delay = Math.min(this.o.backoffMaxMs ?? 30_000, min * 2 ** Math.min(this.failures - 1, 16));
            this.timer = this.o.clock.schedule(delay, () => {
              this.timer = undefined;
              void this.run();
            });
          }
          this.notify();
          return;
        }
        this.notify();
      }
    } finally {
      this.running = false;
    }
  }

  private release(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i] as { target: number; resolve: () => void };
      if (w.target <= this.appliedGen) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  private drop(id: string, pin: DesiredPin, why: AtRiskReason | 'idle-timeout', detail: string): void {
    this.wanted.delete(id);
    this.failedPins.set(id, { flow: pin.flow, nexthop: pin.nexthop, why, detail, at: this.o.clock.now() });
    if (why !== 'idle-timeout') this.o.metrics.connectionsAtRisk.inc({ switch: this.o.switchName, why });
    for (const fn of this.dropListeners) fn(id, pin, why);
  }

  /**
   * Takes the switch's report of one pin into the installed view; returns true if it is garbage to remove.
   */
  private take(p: InstalledPin, now: number, previous: InstalledView | undefined): boolean {
    const id = flowId(p.flow);
    const want = this.wanted.get(id);
    const pending = !p.programmed && p.reason === 'pending';
    if (!p.programmed && !pending && p.reason !== 'disabled') {
      // Configured but not forwarding (rejected, timed out, unknown state): remove it; a pin still needed is
      // re-added whole.
      this.held.delete(id);
      this.pendingIds.delete(id);
      if (want && want.nexthop === p.nexthop)
        this.drop(
          id,
          want,
          p.reason === 'table-full'
            ? 'table-full'
            : p.reason === 'idle-timeout' || p.reason === 'hard-timeout'
              ? 'idle-timeout'
              : 'not-programmed',
          p.reason ?? 'not programmed',
        );
      return true;
    }
    const lastActive = previous && previous.packets === p.packets ? previous.lastActive : now;
    const view: InstalledView = {
      flow: p.flow,
      nexthop: p.nexthop,
      programmed: p.programmed,
      packets: p.packets,
      lastActive,
    };
    if (!p.programmed) view.reason = p.reason;
    this.held.set(id, view);
    if (pending) this.pendingIds.add(id);
    else this.pendingIds.delete(id);
    return false;
  }

  private async fullResync(): Promise<void> {
    const a = this.o.adapter;
    const listed: InstalledPin[] = await a.listPins();
    this.o.metrics.resyncs.inc({ switch: this.o.switchName });
    const now = this.o.clock.now();
    const previous = new Map(this.held);
    this.held.clear();
    this.pendingIds.clear();
    const garbage: FlowSpec[] = [];
    const adopted: DesiredPin[] = [];
    for (const id of this.unanswered) if (!this.sending.has(id)) this.unanswered.delete(id);
    for (const p of listed) {
      if (this.take(p, now, previous.get(flowId(p.flow)))) garbage.push(p.flow);
      else if (this.adoptOnResync && p.programmed && !this.wanted.has(flowId(p.flow))) {
        const pin: DesiredPin = { flow: p.flow, nexthop: p.nexthop, reason: 'adopted', since: now };
        this.wanted.set(flowId(p.flow), pin);
        adopted.push(pin);
      }
    }
    if (this.adoptOnResync) this.o.onAdopted?.(adopted);
    this.adoptOnResync = false;
    // Garbage collection is this round's write, not the listing's: what the switch timed out
    // or could not program, and what the listing found of flowpin's that no pin stands for.
    // Removed before the table's use is read, so the room it held counts as free.
    if (garbage.length > 0) await a.removePins(garbage, this.writeFence());
    const strays = await a.removeStrays(this.writeFence());
    if (garbage.length + strays > 0)
      this.o.metrics.pinsRemoved.inc({ switch: this.o.switchName, why: 'gc' }, garbage.length + strays);
    await this.readUsage();
    // Switches without native idle timeouts: the controller ages pins from their counters.
    if (!a.capabilities.nativeIdleTimeout) {
      for (const [id, v] of this.held) {
        const want = this.wanted.get(id);
        if (want && now - v.lastActive >= this.o.idleTimeoutS * 1000)
          this.drop(id, want, 'idle-timeout', 'idle');
      }
    }
    for (const vip of new Set([...this.wantedGroups.keys(), ...this.groupsKnown.keys()])) {
      const read = new Set(await a.groupMembers(vip));
      this.groupsKnown.set(vip, read);
      const want = this.wantedGroups.get(vip);
      if (want !== undefined && !this.touchedGroups.has(vip) && !sameMembers(want, read)) {
        // Changed on the switch by someone else, with no write of flowpin's pending: take the
        // switch's group as it is. Writing ours back would move flows outside any change.
        this.wantedGroups.set(vip, new Set(read));
        this.o.metrics.groupDrift.inc({ switch: this.o.switchName });
      }
    }
    this.needResync = false;
    for (const id of this.wanted.keys()) this.touched.add(id);
    for (const id of this.held.keys()) this.touched.add(id);
  }

  private async readUsage(): Promise<void> {
    const a = this.o.adapter;
    if (!a.capabilities.reportsTableUsage) {
      this.capacity = a.capabilities.pinTableSize;
      this.othersUsed = 0;
      return;
    }
    const u = await a.pinTableUsage();
    this.capacity = Math.min(u.capacity, a.capabilities.pinTableSize);
    this.othersUsed = Math.max(0, u.used - this.programmedCount());
  }

  private async round(): Promise<void> {
    if (this.needResync) await this.fullResync();
    // Group writes first: a change asks for one only once the pins it relies on are programmed,
    // so it waits for no pin install of this round (the change window is as short as the write).
    await this.applyGroups();
    const name = this.o.switchName;
    const ids = [...this.touched];
    this.touched.clear();
    const toRemove: FlowSpec[] = [];
    const toInstall: [string, DesiredPin][] = [];
    for (const id of ids) {
      const d = this.wanted.get(id);
      const i = this.held.get(id);
      if (d === undefined) {
        if (i !== undefined) toRemove.push(i.flow);
      } else if (i === undefined || i.nexthop !== d.nexthop || (!i.programmed && i.reason !== 'pending'))
        toInstall.push([id, d]);
    }
    if (toRemove.length > 0) {
      await this.o.adapter.removePins(toRemove, this.writeFence());
      for (const f of toRemove) {
        const id = flowId(f);
        this.held.delete(id);
        this.pendingIds.delete(id);
      }
      this.o.metrics.pinsRemoved.inc({ switch: name, why: 'unwanted' }, toRemove.length);
    }
    if (toInstall.length > 0) await this.install(toInstall);
    await this.applyGroups();
    if (this.pendingIds.size > 0) this.scheduleReadback();
  }

  private async install(toInstall: [string, DesiredPin][]): Promise<void> {
    let free = this.freeEntries();
    const fits: [string, DesiredPin][] = [];
    for (const entry of toInstall) {
      const replacing = this.held.get(entry[0])?.programmed === true;
      if (replacing || free > 0) {
        fits.push(entry);
        if (!replacing) free--;
      } else this.drop(entry[0], entry[1], 'table-full', 'no free entry');
    }
    const size = this.o.adapter.capabilities.pinBatchSize;
    const chunks: [string, DesiredPin][][] = [];
    for (let at = 0; at < fits.length; at += size) chunks.push(fits.slice(at, at + size));
    // Two requests in flight: one is built and sent while the switch works on the other (or
    // reads the first back), each next chunk sent as soon as one is done, not in waves. A group
    // write asked for meanwhile goes out between chunks, not after the whole install.
    // After a failure no further chunk is sent: the round fails once the one in flight ends.
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < chunks.length && !failed) {
        try {
          await this.installChunk(chunks[next++] as [string, DesiredPin][]);
          if (this.touchedGroups.size > 0) await this.applyGroups();
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    const ends = await Promise.allSettled(
      Array.from({ length: Math.min(INSTALL_PARALLELISM, chunks.length) }, worker),
    );
    for (const e of ends) if (e.status === 'rejected') throw e.reason;
  }

  private async installChunk(all: [string, DesiredPin][]): Promise<void> {
    // Under churn a round installs for seconds: a pin unwanted (its connection ended) or wanted
    // elsewhere since the round began is not written.
    const chunk = all.filter(([id, p]) => this.wanted.get(id) === p);
    if (chunk.length === 0) return;
    const name = this.o.switchName;
    // Past the fence's deadline nothing is sent (and nothing is in doubt).
    const fence = this.writeFence();
    for (const [id] of chunk) {
      this.unanswered.add(id);
      this.sending.add(id);
    }
    let outcomes: PinOutcome[];
    try {
      outcomes = await this.o.adapter.installPins(
        chunk.map(([, p]) => ({ flow: p.flow, nexthop: p.nexthop, idleTimeoutS: this.o.idleTimeoutS })),
        fence,
      );
    } finally {
      for (const [id] of chunk) this.sending.delete(id);
    }
    // Answered: the outcomes below are the switch's word. (Unanswered, the pins stay in doubt.)
    for (const [id] of chunk) this.unanswered.delete(id);
    const now = this.o.clock.now();
    const garbage: FlowSpec[] = [];
    let strays = false;
    outcomes.forEach((o, k) => {
      const [id, p] = chunk[k] as [string, DesiredPin];
      if (this.wanted.get(id) !== p) {
        // Unwanted (or wanted toward another nexthop) while its install was in flight: what the
        // switch now holds is recorded, so that the next round removes or replaces it.
        if (o.ok && (o.programmed !== false || o.reason === 'pending')) {
          this.held.set(id, {
            flow: p.flow,
            nexthop: p.nexthop,
            programmed: o.programmed === true,
            packets: 0,
            lastActive: now,
            ...(o.programmed === true ? {} : { reason: 'pending' }),
          });
          // Read back like any pin whose state is not known yet, so it is never left pending.
          if (o.programmed !== true) this.pendingIds.add(id);
          this.touched.add(id);
          strays = true;
        }
        return;
      }
      if (!o.ok) {
        this.o.metrics.pinFailures.inc({ switch: name, reason: 'refused' });
        this.drop(id, p, 'refused', o.error ?? 'refused');
        return;
      }
      if (o.programmed === false && o.reason !== 'pending') {
        this.o.metrics.pinFailures.inc({
          switch: name,
          reason: o.reason === 'table-full' ? 'table-full' : 'not-programmed',
        });
        this.drop(
          id,
          p,
          o.reason === 'table-full' ? 'table-full' : 'not-programmed',
          o.reason ?? 'not programmed',
        );
        this.held.delete(id);
        this.pendingIds.delete(id);
        garbage.push(p.flow);
        return;
      }
      const programmed = o.programmed === true;
      const view: InstalledView = {
        flow: p.flow,
        nexthop: p.nexthop,
        programmed,
        packets: 0,
        lastActive: now,
      };
      if (!programmed) {
        view.reason = 'pending';
        this.pendingIds.add(id);
      } else {
        this.pendingIds.delete(id);
        this.landed(p, now);
      }
      this.held.set(id, view);
    });
    if (strays) this.touch();
    if (garbage.length > 0) {
      await this.o.adapter.removePins(garbage, this.writeFence());
      this.o.metrics.pinsRemoved.inc({ switch: name, why: 'gc' }, garbage.length);
    }
  }

  private landed(p: DesiredPin, now: number): void {
    const name = this.o.switchName;
    this.o.metrics.pinsInstalled.inc({ switch: name });
    if (p.reason !== 'adopted')
      this.o.metrics.synToPin.observe({ switch: name }, Math.max(0, now - p.since) / 1000);
  }

  /** Group writes, one at a time (a round's and one asked for while the round installs pins). */
  private applyGroups(): Promise<void> {
    const run = this.groupWriter.then(() => this.writeGroups());
    this.groupWriter = run.catch(() => undefined);
    return run;
  }

  private async writeGroups(): Promise<void> {
    const a = this.o.adapter;
    for (const vip of [...this.touchedGroups]) {
      const want = this.wantedGroups.get(vip);
      if (want === undefined) {
        this.touchedGroups.delete(vip);
        continue;
      }
      let have = this.groupsKnown.get(vip);
      if (have === undefined) {
        have = new Set(await a.groupMembers(vip));
        this.groupsKnown.set(vip, have);
      }
      // Additions first: a group is never left with fewer members than either end state.
      for (const m of want) {
        if (have.has(m)) continue;
        const fence = this.writeFence();
        await this.issued(vip, a.addGroupMember(vip, m, fence));
        have.add(m);
      }
      for (const m of [...have]) {
        if (want.has(m)) continue;
        const fence = this.writeFence();
        await this.issued(vip, a.removeGroupMember(vip, m, fence));
        have.delete(m);
      }
      // A newer desired group (a rollback, say) set while this one was written is written next.
      if (this.wantedGroups.get(vip) === want) {
        this.touchedGroups.delete(vip);
        // Whoever waits for this write hears now, not at the end of the round.
        this.notify();
      } else this.dirty = true;
    }
  }

  /** A group write asked for (setGroup) is not written yet. */
  groupPending(vip: string): boolean {
    return this.touchedGroups.has(vip);
  }

  /** A group write is on its way to the switch: listeners hear of it before its answer. */
  private issued(vip: string, write: Promise<void>): Promise<void> {
    for (const fn of this.groupWriteListeners) fn(vip);
    return write;
  }

  /** Registers a listener for group writes issued (before their answer); returns its removal. */
  onGroupWrite(fn: (vip: string) => void): () => void {
    this.groupWriteListeners.add(fn);
    return () => this.groupWriteListeners.delete(fn);
  }

  /**
   * Reads back those of `ids` whose install is unanswered (on its way, or its answer lost: the
   * switch may hold them programmed) or whose programming state is not known yet (accepted,
   * pending), so that what is counted as programmed is what the switch says. Returns how many
   * were read; nothing is read where none is in doubt.
   */
  async readBackUnanswered(ids: Iterable<string>): Promise<number> {
    const doubt = [...ids].filter((id) => this.unanswered.has(id) || this.pendingIds.has(id));
    if (doubt.length === 0) return 0;
    await this.verify(doubt);
    for (const id of doubt) if (!this.sending.has(id)) this.unanswered.delete(id);
    return doubt.length;
  }

  /** Reads back accepted pins whose programming state is unknown, until they are programmed or refused. */
  private scheduleReadback(): void {
    if (this.readbackTimer !== undefined || this.stopped) return;
    this.readbackTimer = this.o.clock.schedule(this.o.readbackMs ?? 10, () => {
      this.readbackTimer = undefined;
      void this.readback();
    });
  }

  private async readback(): Promise<void> {
    if (this.pendingIds.size === 0 || this.stopped) return;
    try {
      await this.verify([...this.pendingIds]);
    } catch (err) {
      this.lastError = `reading back pins: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (this.pendingIds.size > 0) this.scheduleReadback();
  }

  /**
   * Reads these pins back from the switch and takes its word for them: programmed, still
   * being programmed, gone or timed out (installed again, where still wanted), or refused
   * (dropped and counted at risk). It only reads; what must be written is left to the next
   * round, so the round stays the one writer.
   */
  async verify(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const a = this.o.adapter;
    // What each pin's view was when the read was sent: a round or a resync that changed it
    // while the read was in flight knows better than this (older) answer, which is then left out.
    const seen = new Map(ids.map((id) => [id, this.held.get(id)]));
    let byId: Map<string, InstalledPin>;
    if (a.capabilities.readsPins) {
      const flows = ids
        .map((id) => this.held.get(id)?.flow ?? this.wanted.get(id)?.flow)
        .filter((f): f is FlowSpec => f !== undefined);
      byId = new Map();
      for (const p of await a.readPins(flows)) if (p !== undefined) byId.set(flowId(p.flow), p);
    } else byId = new Map((await a.listPins()).map((p) => [flowId(p.flow), p]));
    const now = this.o.clock.now();
    for (const id of ids) {
      const prev = this.held.get(id);
      if (prev !== seen.get(id)) continue;
      const p = byId.get(id);
      const d = this.wanted.get(id);
      if (p === undefined) {
        // Not on the switch (lost, or never written): written again by the next round if wanted.
        this.held.delete(id);
        this.pendingIds.delete(id);
        if (d !== undefined) this.touched.add(id);
        continue;
      }
      // A pin that timed out on the switch is dropped like any not programmed (take): no packet
      // for the idle timeout is the switch's word that its connection is over.
      const wasPending = this.pendingIds.has(id);
      if (this.take(p, now, prev)) {
        // Refused or not programmed for good: kept as installed-not-programmed so the round removes it.
        this.held.set(id, {
          flow: p.flow,
          nexthop: p.nexthop,
          programmed: false,
          reason: p.reason ?? 'unknown',
          packets: p.packets,
          lastActive: now,
        });
        this.touched.add(id);
      } else if (p.programmed && wasPending && d !== undefined) this.landed(d, now);
    }
    if (this.touched.size > 0) this.touch();
    this.notify();
  }
}

/** Whether two groups have the same members (`a` absent: not the same). */
export function sameMembers(a: ReadonlySet<string> | undefined, b: ReadonlySet<string>): boolean {
  if (a === undefined || a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** A closed set of error kinds for metric labels. */
export function errorKind(err: unknown): string {
  if (isSwitchError(err)) return err.name;
  return 'Error';
}
