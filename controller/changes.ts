// Drains and additions, following DESIGN.md's protocol for per-connection consistency, as the
// I/O shell around the pure parts (change-record.ts, consent.ts, dry-run.ts,
// change-accounting.ts). Changes on one switch run one at a time (later ones wait, `queued`);
// a VIP has at most one change queued or in progress. Each change:
//   0. is checked against the caller's bound (`maxAtRisk`) on its dry run, and refused where
//      it may cost more; a drain also against the VIP's `maxUnavailable`;
//   1. is written durably (write-ahead), then marked pending: every newly resolved flow it
//      affects is pinned at once, and the live flows it affects are pinned now;
//   2. barrier by marks: after the settle time (frames in flight), a mark is taken; every
//      event up to the mark is resolved and every pin wanted for the VIP read back as
//      programmed (or dropped and counted at risk, by reason). Events after the mark are not
//      waited for. The figures are checked against the bound again: past it, the change stops
//      before its group write and undoes its pins;
//   3. holds new look-ups, writes the group change through the switch's write point (durable
//      intent first), waits until the switch reports it in forwarding and the settle time,
//      then releases. Flows whose SYN arrived after the mark and whose server is not certain,
//      or whose pin was not programmed before the change took effect, are the change window;
//   4. a drain is tracked until no live or unknown connection is left on the nexthop:
//      `drained`; at the caller's deadline with connections left, `deadline-passed` (and
//      `drained` later, when they are gone).
// The operator may cancel a change until its group write is sent: a queued one leaves the
// queue, a pending one stops at its next step (every wait before the write ends at once, and
// the write is not sent) and releases its pins; either is `cancelled`. After the write there is
// nothing a cancel can take back: the way back is the opposite change, with its own bound.
// Every phase is durable before the next action, so a restart knows how far a change got; a
// change resumed after a restart reads the switch's group and completes what is missing, and
// its record says what it measured and what it inferred.

import { isSwitchError } from '../switch-adapters/errors.js';
import { SerialQueue } from '../lib/serial-queue.js';
import { AddressError, familyOf, hostAddress } from './address.js';
import { account, type Observations } from './change-accounting.js';
import {
  isActive,
  zeroRisk,
  type Actor,
  type AtRiskCounts,
  type ChangeKind,
  type ChangeRecord,
  type MaxAtRisk,
  type RiskFigures,
} from './change-record.js';
import { DeadlineError, sleep, until, withDeadline } from './clock.js';
import { exceeds, riskFigures } from './consent.js';
import { estimateDrain } from './drain-estimate.js';
import { dryRun, expectedWindowFlows, movedFlows, type DryRunContext, type DryRunReport } from './dry-run.js';
import { badRequest, conflict, FlowpinError, notFound } from './errors.js';
import { idOfKey } from './flow-spec.js';
import type { ControllerMetrics } from './metrics.js';
import type { ChangeView } from './pin-policy.js';
import { sameMembers, type AtRiskReason } from './reconciler.js';
import type { Resolution, SwitchRuntime, VipState } from './switch-runtime.js';

export type {
  Actor,
  AtRiskCounts,
  ChangeKind,
  ChangePhase,
  ChangeRecord,
  MaxAtRisk,
  RiskFigures,
} from './change-record.js';
export type { DryRunReport } from './dry-run.js';

/**
 * The points of a change's protocol where it logs, and where a fault-injection run may kill the process
 * (FLOWPIN_CRASH_AT).
 */
export type ProtocolPoint =
  | 'pending'
  | 'held'
  | 'resolved'
  | 'journaled'
  | 'programmed'
  | 'sending'
  | 'sent'
  | 'accepted'
  | 'applied'
  | 'effective'
  | 'complete';

export interface ChangeOptions {
  settleMs: number;
  barrierTimeoutMs: number;
  /** Writes the change records durably; resolves once they are on disk. */
  persist: () => Promise<void>;
  /** Resolves once every flow resolved so far is durable (the flow journal), so a restart knows them. */
  flowsDurable: () => Promise<void>;
  metrics: ControllerMetrics;
  /** Window connections count against a consent bound only above this many (consent.windowFlows). */
  windowThreshold?: number;
  /** The configured connection lifetime (s), as the dry run states it. */
  lifetimeS?: number;
  /** Members of a VIP that may be out (draining or drained) at once; 1 unless given. */
  maxUnavailable?: (vip: string) => number;
  /**
   * Each protocol point a change reaches (logged by the controller; a fault-injection run may kill there).
   */
  onPoint?: (rec: ChangeRecord, point: ProtocolPoint) => void;
  /** Change ids; unique per switch. */
  newId?: (kind: ChangeKind) => string;
  /**
   * Called with every flow (by flow id) counted at risk or in a change window, for tests and the scenario
   * runner.
   */
  onCounted?: (rec: ChangeRecord, id: string, why: AtRiskReason | 'window') => void;
}

export type NexthopState = 'active' | 'draining' | 'deadline-passed' | 'drained';

/** A change's caller options. */
export interface ChangeRequest {
  dryRun?: boolean;
  /** The most connections the change may cost (0 unless given). */
  maxAtRisk?: MaxAtRisk;
  /** Who asks (the API's caller), for the record. */
  by?: Actor;
}

/** Flows a change counted, by flow id, kept per change up to this many (a few MB at most). */
const COUNTED_KEPT = 100_000;
/** Progress points kept per change (halved when full), and how many records keep theirs on disk. */
const PROGRESS_KEPT = 120;
/**
 * Rounds after the barrier for the pins of flows seen meanwhile, and how few left unprogrammed is close
 * enough.
 */
const CONVERGE_ROUNDS = 8;
/**
 * A mirror that sends nothing for this long after a point in time has nothing of before it still on its way;
 * checked this often.
 */
const MIRROR_LAG_MS = 2000;
const FRAME_POLL_MS = 5;
/** Rounds stop starting after this long: past it the window holds the flows still waiting. */
const CONVERGE_MS = 1000;
/** A round waits at most this long: one that has not halved what waits by then met the programming lag. */
const CONVERGE_ROUND_MS = 250;
const CONVERGED = 8;
const PROGRESS_EVERY_MS = 2000;
/** Records kept (the oldest finished ones go first). */
const RECORDS_KEPT = 200;
/** The reason a cancelled change's record gives. */
export const CANCELLED = 'cancelled by the operator';

/**
 * A change's protocol while it runs: whether its group write was sent, a cancel asked for, and how to end its
 * current wait.
 */
interface Running {
  sent: boolean;
  cancelled: boolean;
  abort: ((err: Error) => void) | undefined;
  /** Settles once the protocol has ended (completed, failed or cancelled, its record updated). */
  done: Promise<void>;
}

let nextId = 1;

export class ChangeManager {
  /** Changes queued, in progress and the last completed ones, oldest first. */
  readonly records: ChangeRecord[] = [];
  private readonly queue = new SerialQueue();
  private stopped = false;
  private readonly aborts = new Set<(err: Error) => void>();
  private readonly countedFlows = new Map<
    string,
    { items: { flow: string; why: AtRiskReason | 'window' }[]; truncated: boolean }
  >();
  /** Changes read back from the state that had counted flows before: their names went with that process. */
  private readonly countedBefore = new Set<string>();
  /**
   * VIPs whose next change is being checked against its bound (its record is not made yet): VIP -> nexthop.
   */
  private readonly checking = new Map<string, string>();
  /** Changes whose protocol runs now, by id. */
  private readonly running = new Map<string, Running>();
  /**
   * Additions that brought their nexthop to the VIP (it was not known before): a cancel takes it away again.
   */
  private readonly introduced = new Set<string>();

  constructor(
    private readonly rt: SwitchRuntime,
    private readonly o: ChangeOptions,
  ) {}

  /**
   * Takes the records read back from the state: kept from now on, so nothing writes them away before they
   * resume.
   */
  adopt(saved: readonly ChangeRecord[]): void {
    for (const r of saved) {
      if (this.records.some((x) => x.id === r.id)) continue;
      this.records.push(normalise(r));
      // Counted by an earlier process: the flows it named are not kept across a restart.
      if ((r.atRisk ?? 0) + (r.windowFlows ?? 0) > 0) this.countedBefore.add(r.id);
    }
    this.sync();
  }

  private get now(): number {
    return this.rt.clock.now();
  }

  private get ctx(): DryRunContext {
    return {
      rt: this.rt,
      records: this.records,
      settleMs: this.o.settleMs,
      barrierTimeoutMs: this.o.barrierTimeoutMs,
      windowThreshold: this.o.windowThreshold ?? 10,
      lifetimeS: this.o.lifetimeS ?? 3600,
    };
  }

  /**
   * The records with the server resets seen afterwards: RSTs from the VIP on the reply mirror
   * from the change's group write until the next change of the VIP (null where the switch does
   * not mirror server resets).
   */
  withResets(
    records: readonly ChangeRecord[] = this.records,
  ): (ChangeRecord & { resetsSeen: number | null })[] {
    return records.map((r) => ({ ...r, resetsSeen: this.resetsSeen(r) }));
  }

  private resetsSeen(r: ChangeRecord): number | null {
    const from = r.sentAt ?? r.heldAt;
    const next = this.records.find(
      (x) => x.vip === r.vip && x !== r && (x.heldAt ?? Infinity) > (from ?? Infinity),
    );
    return from === undefined ? null : this.rt.serverResetsBetween(r.vip, from, next?.heldAt ?? Infinity);
  }

  /** One change by id, with its resets seen; undefined if not kept. */
  get(id: string): (ChangeRecord & { resetsSeen: number | null }) | undefined {
    const r = this.records.find((x) => x.id === id);
    return r === undefined ? undefined : { ...r, resetsSeen: this.resetsSeen(r) };
  }

  /** The flows a change counted at risk or in its window, by flow (`src:sport->dst:dport`), up to a bound. */
  counted(id: string): {
    items: { flow: string; why: AtRiskReason | 'window' }[];
    truncated: boolean;
    lost?: true;
  } {
    const list = this.countedFlows.get(id) ?? { items: [], truncated: false };
    // Flows an earlier process counted are not named here: the list is short of them, and says so.
    return this.countedBefore.has(id) ? { ...list, truncated: true, lost: true } : list;
  }

  /**
   * The controller is stopping: changes in progress stop where they are, their records left
   * as they were written (they resume at the next start), nothing undone or marked failed.
   */
  stop(why = 'flowpin is stopping; changes in progress resume when it starts again'): void {
    this.stopped = true;
    const err = new FlowpinError('switch-unavailable', why);
    for (const abort of [...this.aborts]) abort(err);
  }

  /**
   * Under high availability, the switch's ownership was lost: work stops at once as at stop()
   * (nothing undone, records left as last written: the next owner resumes them from the change
   * log) and the records leave memory (the next owner's log is the truth from now on).
   */
  release(why: string): void {
    this.stop(why);
    this.records.splice(0);
    this.checking.clear();
    this.sync();
  }

  /** Ownership (re)gained: the records as the change log holds them, and work accepted again. */
  reacquire(saved: readonly ChangeRecord[]): void {
    this.records.splice(0);
    this.stopped = false;
    this.adopt(saved);
  }

  /**
   * Waits for `p`, or ends at once when the controller stops (or, for a change before its group write, when
   * it is cancelled).
   */
  private guard<T>(p: Promise<T>, run?: Running): Promise<T> {
    if (this.stopped) return Promise.reject(new FlowpinError('switch-unavailable', 'flowpin is stopping'));
    if (run?.cancelled === true && !run.sent) return Promise.reject(new Error(CANCELLED));
    let abort: (err: Error) => void = () => undefined;
    const stop = new Promise<never>((_, reject) => (abort = reject));
    this.aborts.add(abort);
    if (run !== undefined && !run.sent) run.abort = abort;
    return Promise.race([p, stop]).finally(() => {
      this.aborts.delete(abort);
      if (run?.abort === abort) run.abort = undefined;
    });
  }

  /**
   * Cancels a change whose group write has not been sent: a queued change leaves the queue; a
   * pending one stops at its next step, its pins are released and no group write is sent.
   * Either ends `cancelled` (written durably before this answers). A change whose write was
   * sent cannot be cancelled: the 409 says what would undo it (the opposite change, with its
   * own bound). A change already cancelled is answered as it is.
   */
  async cancel(id: string, by?: Actor): Promise<ChangeRecord & { resetsSeen: number | null }> {
    const rec = this.records.find((x) => x.id === id);
    if (rec === undefined)
      throw notFound(
        `switch ${this.rt.name} has no change ${id.slice(0, 64)} (recent changes are kept, older ones are forgotten)`,
        { switch: this.rt.name, id: id.slice(0, 100) },
      );
    const answer = (): ChangeRecord & { resetsSeen: number | null } => ({
      ...rec,
      resetsSeen: this.resetsSeen(rec),
    });
    if (rec.phase === 'cancelled') return answer();
    const run = this.running.get(id);
    if (rec.phase === 'queued' && run === undefined) {
      // Not started: when its turn comes, the protocol sees the phase and does nothing.
      if (by !== undefined) rec.cancelledBy = by;
      this.finish(rec, 'cancelled', CANCELLED);
      this.forgetIntroduced(rec);
      await this.o.persist();
      return answer();
    }
    if (run !== undefined && !run.sent) {
      run.cancelled = true;
      if (by !== undefined) rec.cancelledBy = by;
      run.abort?.(new Error(CANCELLED));
      await run.done;
      await this.o.persist();
      return answer();
    }
    throw this.tooLate(rec);
  }

  /** Why a change cannot be cancelled any more, and what would undo it (the opposite change). */
  private tooLate(rec: ChangeRecord): FlowpinError {
    const detail: Record<string, unknown> = {
      change: rec.id,
      phase: rec.phase,
      switch: rec.switch,
      vip: rec.vip,
      nexthop: rec.nexthop,
    };
    if (rec.phase === 'failed')
      return conflict(`change ${rec.id} is failed: there is nothing left to cancel`, detail);
    // Undone since by a later change (the drained nexthop is back, the added one is out again): nothing to
    // undo.
    const inGroup = this.rt.vips.get(rec.vip)?.members.has(rec.nexthop) ?? false;
    if (!isActive(rec) && inGroup === (rec.kind === 'drain'))
      return conflict(
        `change ${rec.id} is ${rec.phase}, and ${rec.nexthop} is ${inGroup ? 'back in' : 'out of'} the group of ${rec.vip} since: there is nothing left to cancel or undo`,
        detail,
      );
    const written =
      rec.appliedAt !== undefined
        ? `was applied at ${new Date(rec.appliedAt).toISOString()}`
        : 'has been sent to the switch';
    const undo = rec.kind === 'drain' ? 'undrain' : 'drain';
    const path = `/api/v1/switches/${encodeURIComponent(rec.switch)}/vips/${encodeURIComponent(rec.vip)}/nexthops/${encodeURIComponent(rec.nexthop)}/${undo}`;
    const back =
      rec.kind === 'drain'
        ? `putting ${rec.nexthop} back into the group of ${rec.vip}`
        : `taking ${rec.nexthop} out of the group of ${rec.vip} again`;
    return conflict(
      `the group write of ${rec.kind} ${rec.id} ${written}: cancel cannot take it back. What would undo it is ${back}: ${undo === 'undrain' ? 'an undrain' : 'a drain'}, a new change checked against its own bound (POST ${path} with maxAtRisk). Nothing was changed by this call`,
      { ...detail, undo: { command: undo, method: 'POST', path } },
    );
  }

  /** A cancelled addition takes away the nexthop it brought, where nothing else holds it. */
  private forgetIntroduced(rec: ChangeRecord): void {
    if (!this.introduced.delete(rec.id)) return;
    const vip = this.rt.vips.get(rec.vip);
    if (
      vip === undefined ||
      vip.members.has(rec.nexthop) ||
      this.active().some((r) => r !== rec && r.vip === rec.vip && r.nexthop === rec.nexthop)
    )
      return;
    vip.nexthops.delete(rec.nexthop);
  }

  vip(address: string): VipState {
    const a = parsed(address, 'vip');
    const v = this.rt.vips.get(a);
    if (v === undefined)
      throw notFound(`switch ${this.rt.name} has no VIP ${a}`, { switch: this.rt.name, vip: a });
    return v;
  }

  private nexthopOf(v: VipState, address: string): string {
    const a = parsed(address, 'nexthop');
    if (!v.nexthops.has(a))
      throw notFound(`${a} is not a nexthop of VIP ${v.address} on ${this.rt.name}`, {
        switch: this.rt.name,
        vip: v.address,
        nexthop: a,
      });
    return a;
  }

  active(): ChangeRecord[] {
    return this.records.filter(isActive);
  }

  stateOf(vip: VipState, nexthop: string): NexthopState {
    const drain = this.active().find(
      (r) => r.kind === 'drain' && r.vip === vip.address && r.nexthop === nexthop,
    );
    if (drain !== undefined) return drain.phase === 'deadline-passed' ? 'deadline-passed' : 'draining';
    return vip.members.has(nexthop) ? 'active' : 'drained';
  }

  /** Changes of the switch's group are written only to a switch flowpin has read: never blind. */
  private connected(): void {
    if (!this.rt.connected)
      throw new FlowpinError(
        'switch-unavailable',
        `${this.rt.name} is not connected yet: flowpin has not read its groups and pins, so it cannot change them safely (${this.rt.lastResolveError ?? 'connecting'})`,
        { switch: this.rt.name },
      );
  }

  /** Drains a nexthop (or reports what a drain would do). */
  async drain(
    vipAddr: string,
    nhAddr: string,
    opts: ChangeRequest & { deadlineSeconds?: number } = {},
  ): Promise<ChangeRecord | DryRunReport> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    this.connected();
    if (!vip.members.has(nh) && !this.active().some((r) => r.vip === vip.address && r.nexthop === nh))
      throw conflict(`${nh} is not in the ECMP group of ${vip.address}: nothing to drain`, {
        state: 'drained',
      });
    this.noConflict(vip.address, nh);
    if (opts.dryRun) return dryRun(this.ctx, 'drain', vip, nh);
    if (vip.members.size <= 1)
      throw conflict(`${nh} is the last member of ${vip.address}; add another before draining it`);
    this.availability(vip, nh);
    const rec = await this.begin('drain', vip, nh, opts);
    if (opts.deadlineSeconds !== undefined) rec.deadlineAt = rec.queuedAt + opts.deadlineSeconds * 1000;
    await this.queued(rec);
    await this.queue.run(() => this.runProtocol(rec));
    return rec;
  }

  /** Puts a drained or draining nexthop back into the group. */
  async undrain(
    vipAddr: string,
    nhAddr: string,
    opts: ChangeRequest = {},
  ): Promise<{ switch: string; vip: string; nexthop: string; state: NexthopState }> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    this.connected();
    const drains = this.active().filter(
      (r) => r.kind === 'drain' && r.vip === vip.address && r.nexthop === nh,
    );
    if (drains.some((r) => r.phase === 'queued' || r.phase === 'pending'))
      throw conflict(`the drain of ${nh} is still being applied; try again in a moment`);
    if (drains.length === 0 && vip.members.has(nh))
      return { switch: this.rt.name, vip: vip.address, nexthop: nh, state: 'active' };
    this.noConflict(vip.address, nh, 'drain');
    // Re-adding a member moves flows onto it like any addition: run it through the protocol.
    const rec = await this.begin('add', vip, nh, opts);
    await this.queued(rec);
    await this.queue.run(async () => {
      await this.runProtocol(rec);
      for (const d of drains)
        this.finish(d, 'drained', 'put back into the group before its connections were gone');
      await this.o.persist();
    });
    return { switch: this.rt.name, vip: vip.address, nexthop: nh, state: 'active' };
  }

  /**
   * What putting a nexthop back would do (an addition's dry run); null where it is in the group with no drain
   * to undo.
   */
  async undrainDryRun(vipAddr: string, nhAddr: string): Promise<DryRunReport | null> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    this.connected();
    if (vip.members.has(nh)) return null;
    return dryRun(this.ctx, 'add', vip, nh);
  }

  /** Adds a nexthop to a VIP's group without moving any pinned connection. */
  async add(vipAddr: string, nhAddr: string, opts: ChangeRequest = {}): Promise<ChangeRecord | DryRunReport> {
    const vip = this.vip(vipAddr);
    const nh = parsed(nhAddr, 'address');
    if (familyOf(nh) !== familyOf(vip.address))
      throw badRequest(
        `${nh} is an IPv${familyOf(nh)} address; ${vip.address} is an IPv${familyOf(vip.address)} VIP`,
        'address',
      );
    if (nh === vip.address) throw badRequest(`${nh} is the VIP itself`, 'address');
    this.connected();
    if (vip.members.has(nh))
      throw conflict(`${nh} is already in the ECMP group of ${vip.address}`, { state: 'active' });
    this.noConflict(vip.address, nh);
    if (opts.dryRun) return dryRun(this.ctx, 'add', vip, nh);
    const rec = await this.begin('add', vip, nh, opts);
    if (!vip.nexthops.has(nh)) this.introduced.add(rec.id);
    vip.nexthops.add(nh);
    await this.queued(rec);
    await this.queue.run(() => this.runProtocol(rec));
    return rec;
  }

  /**
   * Forgets a nexthop that is out of the group. Its connections left (live, unknown, or with a
   * pin) lose their pins: that needs a bound at least their number. A dry run reports them.
   */
  remove(
    vipAddr: string,
    nhAddr: string,
    opts: ChangeRequest = {},
  ): {
    switch: string;
    vip: string;
    nexthop: string;
    removed: boolean;
    dryRun?: true;
    left: { live: number; unknown: number; pinned: number };
    pinnedLeft: number;
  } {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    this.connected();
    if (
      this.active().some(
        (r) => r.vip === vip.address && r.nexthop === nh && (r.phase === 'queued' || r.phase === 'pending'),
      )
    )
      throw conflict(`a change of ${nh} is being applied`);
    if (vip.members.has(nh))
      throw conflict(`${nh} is still in the ECMP group of ${vip.address}: drain it first`, {
        state: 'active',
      });
    const l = this.rt.leftOn(vip.address, nh);
    const left = { live: l.live, unknown: l.unknown, pinned: l.pinned };
    const lose = l.live + l.unknown;
    const base = { switch: this.rt.name, vip: vip.address, nexthop: nh, left, pinnedLeft: l.pinned };
    if (opts.dryRun) return { ...base, removed: false, dryRun: true };
    const bound = opts.maxAtRisk ?? 0;
    if (lose > 0 && bound !== 'unbounded' && lose > bound) {
      throw conflict(
        `removing ${nh} loses ${lose} connections still on it (${l.live} live, ${l.unknown} unknown; ${l.pinned} pinned): their pins go and they move to other servers, more than the bound of ${bound}. Wait until it is drained, or give a bound of at least ${lose}`,
        { left, atRisk: lose, maxAtRisk: bound },
      );
    }
    for (const r of this.active())
      if (r.vip === vip.address && r.nexthop === nh)
        this.finish(
          r,
          r.kind === 'drain' ? 'drained' : 'complete',
          lose > 0 ? `removed with ${lose} connections left (consented)` : undefined,
        );
    vip.nexthops.delete(nh);
    this.sync();
    void this.o.persist().catch(() => undefined);
    return { ...base, removed: true };
  }

  /**
   * Tracks drains: a drain with no live or unknown connection left on its nexthop is
   * drained; at its deadline with connections left, deadline-passed (tracked on until drained).
   * Also samples each active drain's progress. Returns whether a record changed.
   */
  track(): boolean {
    const now = this.now;
    let changed = false;
    for (const r of this.active()) {
      if (r.kind !== 'drain' || (r.phase !== 'applied' && r.phase !== 'deadline-passed')) continue;
      const l = this.rt.leftOn(r.vip, r.nexthop);
      r.left = { live: l.live, unknown: l.unknown, pinned: l.pinned };
      r.remaining = l.live + l.unknown;
      this.sample(r, now);
      if (r.remaining === 0) {
        this.finish(r, 'drained');
        changed = true;
      } else if (r.phase === 'applied' && r.deadlineAt !== undefined && now >= r.deadlineAt) {
        r.phase = 'deadline-passed';
        r.deadlinePassedAt = now;
        r.deadlineReached = true;
        r.error = `deadline passed with ${r.remaining} connections left (${l.live} live, ${l.unknown} unknown; ${l.pinned} pinned): not drained`;
        changed = true;
      }
    }
    if (changed) this.sync();
    return changed;
  }

  /**
   * A progress point for a drain (at most every PROGRESS_EVERY_MS), with the earliest its pins can all be
   * gone.
   */
  private sample(r: ChangeRecord, now: number): void {
    const points = (r.progress ??= []);
    const last = points.at(-1);
    if (
      last !== undefined &&
      now - last.t < PROGRESS_EVERY_MS &&
      r.left !== undefined &&
      last.live === r.left.live &&
      last.unknown === r.left.unknown
    )
      return;
    points.push({
      t: now,
      live: r.left?.live ?? 0,
      unknown: r.left?.unknown ?? 0,
      pinned: r.left?.pinned ?? 0,
    });
    // Full: every other point goes (the first and the newest stay), so the history spans the whole drain.
    if (points.length > PROGRESS_KEPT)
      r.progress = points.filter((_, i) => i === 0 || i === points.length - 1 || i % 2 === 0);
    const rec = this.rt.reconciler;
    const pins: { since: number; lastActive: number }[] = [];
    for (const [id, p] of rec.desired)
      if (p.nexthop === r.nexthop && p.flow.dst === r.vip)
        pins.push({ since: p.since, lastActive: rec.installed.get(id)?.lastActive ?? p.since });
    r.estimateS = pins.length === 0 ? 0 : estimateDrain(pins, this.rt.reconciler.idleTimeoutS, now).earliestS;
  }

  /**
   * Resumes the changes read back from the state, once the switch is connected and its mirror
   * listened to: the switch's group says whether a change's group write happened before the
   * stop. What the record could not measure across the stop stays null, and it says so.
   */
  async resume(downSince: number | null): Promise<void> {
    const now = this.now;
    const work: Promise<void>[] = [];
    for (const r of this.active()) {
      if (r.resume !== undefined && r.resume.resumedAt >= now) continue;
      const vip = this.rt.vips.get(r.vip);
      if (vip === undefined) {
        this.finish(r, 'failed', `VIP ${r.vip} is no longer configured`);
        continue;
      }
      r.resumed = true;
      r.resume = {
        resumedAt: now,
        phaseWritten: r.phase,
        downSince,
        gapMs: downSince === null ? null : Math.max(0, now - downSince),
        inferred: [],
      };
      vip.nexthops.add(r.nexthop);
      const target = r.kind === 'drain' ? !vip.members.has(r.nexthop) : vip.members.has(r.nexthop);
      if (r.appliedAt !== undefined || (r.sentAt !== undefined && target)) {
        work.push(this.resumeApplied(r, vip, target));
        continue;
      }
      if (r.sentAt !== undefined)
        r.resume.inferred.push(
          `the group write sent before the stop did not land (the switch's group shows ${r.nexthop} ${r.kind === 'drain' ? 'still in' : 'not in'} it): the change runs again from the start`,
        );
      // Not written yet: run the protocol from the start, in turn with any new change.
      delete r.heldAt;
      delete r.programmedAt;
      delete r.sentAt;
      delete r.checked;
      r.phase = 'queued';
      work.push(
        this.queue
          .run(() => this.runProtocol(r))
          .catch((err: unknown) => {
            r.error ??= err instanceof Error ? err.message : String(err);
          }),
      );
    }
    this.sync();
    await this.o.persist();
    await Promise.all(work);
  }

  /**
   * A change whose group write happened before the stop: its pins are kept (a drain's flows
   * pinned again) and it goes on from there. Its window was not measured; the connections seen
   * before the stop that have no pin on the switch now are counted at risk (`restart`), and the
   * connections flowpin could not see while it was down are estimated (`unseen`).
   */
  private async resumeApplied(r: ChangeRecord, vip: VipState, landed: boolean): Promise<void> {
    const info = r.resume as NonNullable<ChangeRecord['resume']>;
    if (r.appliedAt === undefined)
      info.inferred.push(
        `applied: the switch's group shows the write sent at ${new Date(r.sentAt as number).toISOString()} landed; when it took effect is not known`,
      );
    else if (!landed)
      info.inferred.push(`the switch's group no longer shows the change (changed by someone else since)`);
    r.phase = r.phase === 'deadline-passed' ? 'deadline-passed' : 'applied';
    if (r.accountedAt === undefined) {
      // The window ran across the stop, or the stop came before its figures were counted: not measured.
      r.windowFlows = null;
      r.pinned = null;
      r.pinnedLate = null;
      info.inferred.push(
        r.effectiveAt === undefined
          ? 'window: not measured (the stop came before the change took effect); resets seen on the reply mirror are in resetsSeen'
          : 'window and pins: not measured (the stop came after the change took effect, before its figures were counted); resets seen on the reply mirror are in resetsSeen',
      );
    }
    if (r.kind === 'drain') this.rt.pinFlows(this.rt.flowsOn(r.vip, r.nexthop), r.nexthop, r.id);
    this.sync();
    // The switch's pins as listed after the restart: a flow seen before the stop without one was not kept.
    await this.rt.reconciler.flush().catch(() => undefined);
    const lost = this.unpinnedAfterRestart(r, vip);
    r.atRiskBy = { ...zeroRisk(), ...r.atRiskBy };
    r.atRiskBy.restart += lost.length;
    for (const id of lost) this.count(r, id, 'restart', false);
    r.atRisk = r.atRisk === null ? null : r.atRisk + lost.length;
    const u = this.rt.watchLedger.unseen(this.rt.synRateOf(vip));
    const share =
      r.kind === 'drain' ? 1 / Math.max(1, vip.members.size + 1) : 1 / Math.max(1, vip.members.size);
    r.unseen = (r.unseen ?? 0) + Math.round(u.connections * share);
    r.unseenBasis = `across the restart: ${u.basis}`;
    if (r.kind === 'add') this.finish(r, 'complete');
    this.sync();
    await this.o.persist();
    this.track();
  }

  /** Flows seen before the stop, on what the change moves, with no programmed pin now. */
  private unpinnedAfterRestart(r: ChangeRecord, vip: VipState): string[] {
    const rec = this.rt.reconciler;
    const keys =
      r.kind === 'drain'
        ? this.rt.flowsOn(r.vip, r.nexthop)
        : [...vip.members].filter((m) => m !== r.nexthop).flatMap((m) => this.rt.flowsOn(r.vip, m));
    return keys.map(idOfKey).filter((id) => !rec.isProgrammed(id));
  }

  /**
   * Members out (draining, deadline-passed, or drained and not removed) may not exceed the VIP's
   * maxUnavailable.
   */
  private availability(vip: VipState, nh: string): void {
    const max = this.o.maxUnavailable?.(vip.address) ?? 1;
    const out = new Set<string>();
    for (const r of this.records) {
      if (r.vip !== vip.address || r.nexthop === nh || !vip.nexthops.has(r.nexthop)) continue;
      // The latest record of a nexthop says whether it is out: a drain not undone since.
      const latest = this.records
        .filter(
          (x) =>
            x.vip === vip.address &&
            x.nexthop === r.nexthop &&
            x.phase !== 'failed' &&
            x.phase !== 'cancelled',
        )
        .at(-1);
      if (latest?.kind === 'drain' && !vip.members.has(r.nexthop)) out.add(r.nexthop);
      else if (latest?.kind === 'drain' && isActive(latest)) out.add(r.nexthop);
    }
    if (out.size + 1 > max)
      throw conflict(
        `${[...out].join(', ')} ${out.size === 1 ? 'is' : 'are'} already out of ${vip.address} (draining or drained); maxUnavailable for it is ${max}. Put ${out.size === 1 ? 'it' : 'them'} back or remove ${out.size === 1 ? 'it' : 'them'} first, or raise maxUnavailable for the VIP`,
        { out: [...out], maxUnavailable: max },
      );
  }

  /** At most one change queued or in progress per VIP, and none on a nexthop with a change still tracked. */
  private noConflict(vip: string, nh: string, except?: ChangeKind): void {
    const tracking = (r: ChangeRecord): boolean => r.phase === 'applied' || r.phase === 'deadline-passed';
    const checked = this.checking.get(vip);
    if (checked !== undefined)
      throw conflict(`a change of ${checked} on ${vip} is being checked against its bound`, { vip });
    const other = this.active().find(
      (r) => r.vip === vip && (!tracking(r) || r.nexthop === nh) && r.kind !== except,
    );
    if (other)
      throw conflict(
        `a ${other.kind} of ${other.nexthop} on ${vip} is ${other.phase === 'queued' ? 'queued' : 'in progress'}`,
        { change: other.id },
      );
    const tracked = this.active().find((r) => r.vip === vip && tracking(r) && r.kind === 'add');
    if (tracked)
      throw conflict(`an addition of ${tracked.nexthop} on ${vip} is being applied`, { change: tracked.id });
  }

  /**
   * Checks the change's dry run against the caller's bound, then records it (queued) with who asked and the
   * figures it was checked against.
   */
  private async begin(
    kind: ChangeKind,
    vip: VipState,
    nh: string,
    req: ChangeRequest,
  ): Promise<ChangeRecord> {
    const bound = req.maxAtRisk ?? 0;
    // The VIP is taken while the dry run runs: a second call sees it (409) at once.
    this.checking.set(vip.address, nh);
    let dry: DryRunReport;
    try {
      dry = await dryRun(this.ctx, kind, vip, nh, false);
    } finally {
      this.checking.delete(vip.address);
    }
    const why = exceeds(dry.figures, bound);
    const ask =
      dry.figures.uncountable !== null
        ? 'Give the bound (maxAtRisk) "unbounded" to go ahead all the same'
        : `Give a bound (maxAtRisk) of at least ${dry.figures.total}`;
    if (why !== null)
      throw conflict(
        `${kind === 'drain' ? 'draining' : 'adding'} ${nh} may cost connections: ${why}. ${ask}, or change nothing (the dry run is in detail.report)`,
        {
          report: dry as unknown as Record<string, unknown>,
          figures: dry.figures as unknown as Record<string, unknown>,
          maxAtRisk: bound,
        },
      );
    const now = this.now;
    const rec: ChangeRecord = {
      id: this.o.newId?.(kind) ?? `${this.rt.name}-${kind}-${Date.now().toString(36)}-${nextId++}`,
      kind,
      switch: this.rt.name,
      vip: vip.address,
      nexthop: nh,
      phase: 'queued',
      maxAtRisk: bound,
      queuedAt: now,
      startedAt: now,
      pinned: 0,
      atRisk: 0,
      atRiskBy: zeroRisk(),
      windowFlows: 0,
      unseen: dry.unseen,
      unseenBasis: dry.unseenBasis,
      remaining: 0,
      ...(req.by === undefined ? {} : { requestedBy: { ...req.by } }),
      dryRunFigures: dry.figures,
    };
    this.records.push(rec);
    this.trim();
    this.sync();
    return rec;
  }

  /**
   * A queued change is durable before the caller is told anything (it survives a kill while it waits its
   * turn).
   */
  private async queued(rec: ChangeRecord): Promise<void> {
    try {
      await this.o.persist();
    } catch (err) {
      this.records.splice(this.records.indexOf(rec), 1);
      this.sync();
      throw err;
    }
  }

  private trim(): void {
    while (this.records.length > RECORDS_KEPT) {
      const i = this.records.findIndex((r) => !isActive(r));
      if (i < 0) break;
      this.countedFlows.delete((this.records[i] as ChangeRecord).id);
      this.countedBefore.delete((this.records[i] as ChangeRecord).id);
      this.records.splice(i, 1);
    }
  }

  /** Counts one flow (by flow id; '' where it is not known) at risk or in the window. */
  private count(rec: ChangeRecord, id: string, why: AtRiskReason | 'window', tally = true): void {
    if (tally) {
      if (why === 'window') rec.windowFlows = (rec.windowFlows ?? 0) + 1;
      else {
        rec.atRisk = (rec.atRisk ?? 0) + 1;
        rec.atRiskBy[why]++;
      }
    }
    if (why === 'window') this.o.metrics.windowFlows.inc({ switch: rec.switch });
    // Pins the reconciler dropped are in the metric already; these are not.
    else if (why === 'shed' || why === 'unresolved' || why === 'not-programmed' || why === 'restart')
      this.o.metrics.connectionsAtRisk.inc({ switch: rec.switch, why });
    let list = this.countedFlows.get(rec.id);
    if (list === undefined) this.countedFlows.set(rec.id, (list = { items: [], truncated: false }));
    if (id !== '') {
      if (list.items.length < COUNTED_KEPT) list.items.push({ flow: flowName(id), why });
      else list.truncated = true;
    }
    this.o.onCounted?.(rec, id, why);
  }

  /**
   * Persists the record, then tells the controller the change reached `point` (a log line; maybe a fault
   * injection).
   */
  private async reached(rec: ChangeRecord, point: ProtocolPoint, run?: Running): Promise<void> {
    await this.guard(this.o.persist(), run);
    this.o.onPoint?.(rec, point);
  }

  /**
   * The figures right before the group write: what the barrier dropped, what is shed or unresolved, unseen,
   * and the expected window.
   */
  private figuresNow(rec: ChangeRecord, vip: VipState, dropped: Map<string, AtRiskReason>): RiskFigures {
    const atRiskBy = zeroRisk();
    for (const why of dropped.values()) atRiskBy[why]++;
    atRiskBy.shed =
      this.rt.shedOn(rec.vip).length +
      this.rt.shedForgottenOn(rec.vip, rec.kind === 'drain' ? rec.nexthop : undefined);
    atRiskBy.unresolved = this.rt.unresolvedOn(rec.vip).length;
    const rate = this.rt.synRateOf(vip);
    const members = Math.max(1, vip.members.size);
    const w = expectedWindowFlows(this.ctx, rate, rec.kind === 'drain' ? 1 / members : 1 / (members + 1));
    const m = this.rt.mirrorHealth();
    return riskFigures({
      atRiskBy,
      unseen: rec.unseen ?? 0,
      expectedWindowFlows: w.flows,
      windowThreshold: this.ctx.windowThreshold,
      uncountable:
        m.state === 'ok'
          ? null
          : `the mirror of ${this.rt.name} is ${m.state}${m.why === null ? '' : ` (${m.why})`}`,
    });
  }

  /**
   * The protocol for one change; on failure or cancel before the group write, nothing stays changed and the
   * record says why.
   */
  private async runProtocol(rec: ChangeRecord): Promise<void> {
    // Cancelled while it waited its turn: nothing was done, nothing to undo.
    if (rec.phase === 'cancelled') throw this.cancelledError(rec);
    let ended: () => void = () => undefined;
    const run: Running = {
      sent: false,
      cancelled: false,
      abort: undefined,
      done: new Promise<void>((r) => (ended = r)),
    };
    this.running.set(rec.id, run);
    try {
      await this.protocol(rec, run);
    } finally {
      this.running.delete(rec.id);
      ended();
    }
  }

  private cancelledError(rec: ChangeRecord): FlowpinError {
    return conflict(
      `${rec.kind} of ${rec.nexthop} on ${rec.switch} ${CANCELLED} before its group write: nothing changed on the switch, its pins are released`,
      { change: rec.id, phase: 'cancelled' },
    );
  }

  private async protocol(rec: ChangeRecord, run: Running): Promise<void> {
    const rt = this.rt;
    // Every wait before the group write ends at once when the change is cancelled.
    const wait = <T>(p: Promise<T>): Promise<T> => this.guard(p, run);
    const vip = rt.vips.get(rec.vip) as VipState;
    const before = new Set(vip.members);
    const target = new Set(vip.members);
    if (rec.kind === 'drain') target.delete(rec.nexthop);
    else target.add(rec.nexthop);
    rec.phase = 'pending';
    rec.startedAt = this.now;
    const deadline = rec.startedAt + this.o.barrierTimeoutMs;
    const hold = `${rec.id}`;
    let held = false;
    let sent = false;
    // Resolutions after the mark: certain (resolved before the group write) or not.
    const afterMark = new Map<string, Resolution>();
    let mark = Number.MAX_SAFE_INTEGER;
    const watching = rt.watch((r) => {
      // Observed servers are certain whenever they come: recorded until the accounting.
      if (r.vip === rec.vip && r.seq > mark && (!sent || r.observed === true)) afterMark.set(r.key, r);
    });
    // Pins of the change the switch refused or had no room for, until it takes effect.
    const dropped = new Map<string, AtRiskReason>();
    const dropping = rt.reconciler.onDropped((id, p, why) => {
      if (
        why !== 'idle-timeout' &&
        rec.effectiveAt === undefined &&
        p.flow.dst === rec.vip &&
        (rec.kind === 'add' || p.nexthop === rec.nexthop)
      )
        dropped.set(id, why);
    });
    const offWrite = rt.reconciler.onGroupWrite((v) => {
      if (v === rec.vip && sent && rec.appliedAt === undefined) this.o.onPoint?.(rec, 'sent');
    });
    const unwatch = (): void => {
      watching();
      dropping();
      offWrite();
    };
    try {
      this.sync();
      await this.reached(rec, 'pending', run);
      await wait(this.pinAffected(rec, vip));
      // 2. barrier by marks.
      rec.heldAt = this.now;
      rec.synRateAtHold = Math.round(rt.synRateOf(vip) * 10) / 10;
      await this.reached(rec, 'held', run);
      if (this.o.settleMs > 0) await wait(sleep(rt.clock, this.o.settleMs));
      // Frames of before the hold still in the receive path (a busy event loop lags): handled first.
      await wait(this.framesThrough(rec.heldAt + this.o.settleMs));
      mark = rt.mark();
      const markAt = this.now;
      const wake = (fn: () => void): (() => void) => rt.onProgress(fn);
      await wait(
        until(
          rt.clock,
          () => rt.resolvedThrough(mark),
          wake,
          deadline,
          () => `resolving the flows seen before the change (${rt.queue.length} queued)`,
        ),
      );
      this.o.onPoint?.(rec, 'resolved');
      await wait(
        withDeadline(
          rt.clock,
          this.o.flowsDurable(),
          Math.max(0, deadline - this.now),
          () => 'writing the flow journal',
        ),
      );
      this.o.onPoint?.(rec, 'journaled');
      // The pins of the flows seen up to the mark: the ones this change promises to keep. Flows
      // after it are pinned as they come, and counted in the window where not programmed in time.
      const needed = this.pinsOf(rec, markAt);
      // Programmed as the switch reports it now, not as last seen: read back, until it holds.
      for (;;) {
        await wait(
          until(
            rt.clock,
            rt.reconciler.settledCheck(needed),
            wake,
            deadline,
            () => `programming the pins of the change (${rt.reconciler.lastError ?? 'switch busy'})`,
          ),
        );
        await wait(
          withDeadline(
            rt.clock,
            rt.reconciler.verify([...needed]),
            Math.max(0, deadline - this.now),
            () => 'reading back the pins of the change',
          ),
        );
        if (rt.reconciler.settled(needed)) break;
      }
      // Flows seen since the mark are pinned as they come. Where programming the barrier's pins
      // took long (an addition on a switch that cannot say which flows it moves pins them all),
      // many came meanwhile: wait for their pins too, in rounds while each leaves fewer behind,
      // so that the window is only the last short round and the group write.
      await this.converge(rec, needed, wake, deadline);
      // The bound, again, against the figures now: past it, the change stops here.
      rec.checked = this.figuresNow(rec, vip, dropped);
      const why = exceeds(rec.checked, rec.maxAtRisk);
      if (why !== null)
        throw conflict(
          `${rec.kind} of ${rec.nexthop} on ${rec.switch} stopped before its group write: ${why}`,
          { change: rec.id, figures: rec.checked as unknown as Record<string, unknown> },
        );
      rec.programmedAt = this.now;
      await this.reached(rec, 'programmed', run);
      // 3. the group write, with look-ups held.
      held = true;
      rt.hold(hold);
      const sentSeq = rt.mark();
      // Flows at risk as the write goes out, by name: one that ends meanwhile (its reset mirrored) is still
      // counted.
      const atWrite = {
        shed: rt.shedOn(rec.vip).map(idOfKey),
        unresolved: rt.unresolvedOn(rec.vip).map(idOfKey),
      };
      rec.sentAt = this.now;
      // Durable before the write: a restart reads the switch's group to learn whether it landed.
      await this.reached(rec, 'sending', run);
      // The last point a cancel is heard: from the next line on, the write is on its way.
      if (run.cancelled) throw new Error(CANCELLED);
      sent = true;
      run.sent = true;
      // What the switch reported programmed before the write left was there before it took effect;
      // what it reports only later may have landed after the effect (in `pinnedLate`).
      const programmedAtSend = new Set<string>();
      for (const id of [...needed, ...this.pinsOf(rec)])
        if (rt.reconciler.isProgrammed(id)) programmedAtSend.add(id);
      rt.reconciler.setGroup(rec.vip, target);
      this.sync();
      // No deadline from here: once the write is on its way its outcome must be known before
      // anything is undone (a write that lands after a rollback would move unpinned flows).
      // The write point retries what can be retried; a refusal ends the wait (blocked). Only
      // this write is waited for, not the pin installs of the same round.
      await this.guard(
        until(
          rt.clock,
          () => !rt.reconciler.groupPending(rec.vip) || rt.reconciler.blocked !== undefined,
          wake,
          Infinity,
          () => 'writing the group change',
        ),
      );
      if (!sameMembers(rt.reconciler.groups.get(rec.vip), target))
        throw new FlowpinError(
          'switch-unavailable',
          `${rec.kind} of ${rec.nexthop} on ${rec.switch} not applied: the switch refused the group change: ${rt.reconciler.blocked ?? rt.reconciler.lastError ?? 'unknown'}`,
          { change: rec.id },
        );
      this.o.onPoint?.(rec, 'accepted');
      rec.appliedAt = this.now;
      rec.phase = 'applied';
      await this.reached(rec, 'applied');
      await this.guard(this.untilEffective(rec, target));
      rec.effectiveAt = this.now;
      await this.reached(rec, 'effective');
      // Pins that the change needed and that were not programmed when it took effect: at risk or window.
      // (Including pins wanted since the barrier: flows observed in the window.)
      const effectiveProgrammed = new Set<string>();
      const relied = [...needed, ...this.pinsOf(rec)];
      for (const id of relied)
        if (programmedAtSend.has(id) && rt.reconciler.isProgrammed(id)) effectiveProgrammed.add(id);
      // A pin whose install went unanswered (still on its way, or its answer lost) may be programmed:
      // read back from the switch. Found so, it counts in `pinnedLate` with those found programmed
      // after the write left; its flow is still counted at risk or in the window, since nothing says
      // the pin was there before the effect.
      const inDoubt = new Set<string>();
      await this.guard(rt.reconciler.readBackUnanswered(relied)).catch((err: unknown) => {
        if (this.stopped) throw err;
      });
      for (const id of relied)
        if (!effectiveProgrammed.has(id) && rt.reconciler.isProgrammed(id)) inDoubt.add(id);
      if (this.o.settleMs > 0) await this.guard(sleep(rt.clock, this.o.settleMs));
      // Every SYN that crossed the switch before the effect is handled before the window is closed, however
      // late the receive path runs.
      await this.guard(this.framesThrough((rec.effectiveAt ?? this.now) + this.o.settleMs));
      const settledSeq = rt.mark();
      if (rt.resolution !== 'lookup') {
        // The replies of the SYNs in the window name their servers: wait for them (each SYN's
        // reply timeout bounds this), look-ups still held. Past that bound (not expected: the
        // timeouts hand every SYN on), the flows still waiting count as uncertain below.
        await this.guard(
          until(
            rt.clock,
            () => rt.repliesThrough(settledSeq),
            wake,
            this.now + rt.replyTimeoutMs * 2,
            () => 'waiting for the replies of the change window',
          ),
        ).catch((err: unknown) => {
          if (!(err instanceof DeadlineError)) throw err;
        });
      }
      // Flows accepted after the mark and not resolved before the group write: their server is not certain.
      const uncertain = rt.queuedOn(rec.vip, mark, settledSeq);
      rt.release(hold);
      held = false;
      this.account(
        rec,
        {
          needed,
          dropped,
          programmedAtEffect: effectiveProgrammed,
          programmedInDoubt: inDoubt,
          afterMark,
          uncertain,
          sentSeq,
          settledSeq,
        },
        atWrite,
      );
    } catch (err) {
      unwatch();
      if (held) rt.release(hold);
      // Stopping: the record stays as last written, the change resumes at the next start.
      if (this.stopped) throw err;
      if (rec.appliedAt === undefined) {
        // Nothing changed on the switch: drop the change's pins and the desired group write.
        rt.reconciler.unwantReason(rec.id);
        if (sent) rt.reconciler.setGroup(rec.vip, before);
      }
      if (run.cancelled && !sent) {
        // The write-ahead mark of a write that was never sent goes: the record says no write.
        delete rec.sentAt;
        this.finish(rec, 'cancelled', CANCELLED);
        this.forgetIntroduced(rec);
        await this.o.persist().catch(() => undefined);
        throw this.cancelledError(rec);
      }
      this.finish(rec, 'failed', err instanceof Error ? err.message : String(err));
      await this.o.persist().catch(() => undefined);
      if (err instanceof DeadlineError || isSwitchError(err))
        throw new FlowpinError(
          'switch-unavailable',
          `${rec.kind} of ${rec.nexthop} on ${rec.switch} not applied: ${err.message}`,
          { change: rec.id },
          { cause: err },
        );
      throw err;
    }
    unwatch();
    if (rec.kind === 'add') this.finish(rec, 'complete');
    this.sync();
    this.track();
    await this.reached(rec, 'complete');
  }

  /** The change's figures from what was seen (change-accounting.ts), each counted flow reported. */
  private account(
    rec: ChangeRecord,
    seen: Observations,
    atWrite: { shed: string[]; unresolved: string[] },
  ): void {
    rec.accountedAt = this.now;
    const r = this.rt.reconciler;
    const union = (a: string[], b: string[]): string[] => [...new Set([...a, ...b])];
    const out = account(seen, {
      isProgrammed: (id, nh) => r.isProgrammed(id, nh),
      failedWhy: (id) => r.failed.get(id)?.why,
      desired: (id) => r.desired.has(id),
      drainOf: rec.kind === 'drain' ? rec.nexthop : undefined,
      shed: union(atWrite.shed, this.rt.shedOn(rec.vip).map(idOfKey)),
      forgotten: this.rt.shedForgottenOn(rec.vip, rec.kind === 'drain' ? rec.nexthop : undefined),
      unresolved: union(atWrite.unresolved, this.rt.unresolvedOn(rec.vip).map(idOfKey)),
    });
    rec.pinned = out.pinned;
    rec.pinnedLate = out.pinnedLate;
    rec.atRisk = 0;
    rec.atRiskBy = zeroRisk();
    rec.windowFlows = 0;
    for (const c of out.counted) this.count(rec, c.id, c.why);
    if (out.forgotten > 0) {
      rec.atRisk += out.forgotten;
      rec.atRiskBy.shed += out.forgotten;
      this.o.metrics.connectionsAtRisk.inc({ switch: rec.switch, why: 'shed' }, out.forgotten);
    }
    rec.remaining =
      rec.kind === 'drain'
        ? this.rt.leftOn(rec.vip, rec.nexthop).live + this.rt.leftOn(rec.vip, rec.nexthop).unknown
        : 0;
  }

  /**
   * Desired pins the change relies on, by flow id: a drain's on its nexthop, an addition's on every member;
   * `seenBy`: of flows whose SYN came by then.
   */
  /**
   * Rounds after the barrier: the pins wanted since the mark that are not programmed yet, waited
   * for while there are more than CONVERGED of them, each round leaves at most half of what the
   * last one waited for, and the table has room, for at most CONVERGE_ROUNDS rounds started
   * within CONVERGE_MS, each at most CONVERGE_ROUND_MS. A round that cannot halve what waits has
   * met the switch's programming lag: flows keep coming during every round, so about rate x lag
   * are always waiting, and another round only makes the change longer without making its
   * window smaller. Nor does a first round that the lag keeps from ending: where pins take
   * seconds, the flows that came while it waited outnumber those it saw programmed.
   */
  private async converge(
    rec: ChangeRecord,
    needed: Set<string>,
    wake: (fn: () => void) => () => void,
    deadline: number,
  ): Promise<void> {
    const rt = this.rt;
    let last = Infinity;
    const stopAt = this.now + CONVERGE_MS;
    for (let round = 0; round < CONVERGE_ROUNDS && this.now < stopAt; round++) {
      const waiting = new Set(
        [...this.pinsOf(rec)].filter((id) => !needed.has(id) && !rt.reconciler.settled([id])),
      );
      // Not past the table's room: pins that cannot be programmed are not waited for (they count in the
      // window).
      if (waiting.size <= CONVERGED || waiting.size > last / 2 || rt.reconciler.freeEntries() === 0) return;
      last = waiting.size;
      // A round never fails the change: past its time (or the barrier's deadline) the window holds what is
      // still waiting.
      try {
        await this.guard(
          until(
            rt.clock,
            rt.reconciler.settledCheck(waiting),
            wake,
            Math.min(deadline, stopAt, this.now + CONVERGE_ROUND_MS),
            () => 'programming the pins of the flows seen during the barrier',
          ),
        );
      } catch (err) {
        // Past the round's time: the next round starts only if this one halved what waits.
        if (!(err instanceof DeadlineError)) throw err;
        if (this.now >= Math.min(deadline, stopAt)) return;
      }
    }
  }

  /**
   * Until a mirrored frame received after `t` has been handled (those received before it then
   * have been: a switch's frames are handled in order), or MIRROR_LAG_MS past `t` on a mirror
   * that sends nothing.
   */
  private async framesThrough(t: number): Promise<void> {
    const rt = this.rt;
    while (rt.lastFrameAt <= t && this.now < t + MIRROR_LAG_MS) await sleep(rt.clock, FRAME_POLL_MS);
  }

  private pinsOf(rec: ChangeRecord, seenBy = Infinity): Set<string> {
    const ids = new Set<string>();
    for (const [id, p] of this.rt.reconciler.desired)
      if (p.flow.dst === rec.vip && (rec.kind === 'add' || p.nexthop === rec.nexthop) && p.since <= seenBy)
        ids.add(id);
    return ids;
  }

  /** Waits until the switch reports the group change in forwarding (or its declared programming delay). */
  private async untilEffective(rec: ChangeRecord, target: Set<string>): Promise<void> {
    const a = this.rt.adapter;
    const clock = this.rt.clock;
    if (!a.capabilities.readsProgrammedGroup) {
      const delay = a.capabilities.groupProgramDelayMs;
      if (delay > 0) await sleep(clock, delay);
      return;
    }
    // Read back from forwarding, and never sooner than the switch's declared bound (where a
    // removal cannot be read back, the bound is what there is).
    const bound = (rec.appliedAt ?? this.now) + a.capabilities.groupProgramDelayMs;
    const deadline = this.now + Math.max(this.o.barrierTimeoutMs, a.capabilities.groupProgramDelayMs * 4);
    if (bound > this.now) await sleep(clock, bound - this.now);
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      let members: string[];
      try {
        members = await a.groupProgrammed(rec.vip);
      } catch (err) {
        rec.error = `reading the programmed group: ${err instanceof Error ? err.message : String(err)}`;
        members = [];
      }
      if (sameMembers(new Set(members), target)) return;
      if (this.now >= deadline) {
        rec.error = `the switch did not report the group change in forwarding within ${deadline - (rec.appliedAt ?? 0)} ms`;
        return;
      }
      await sleep(clock, wait);
    }
  }

  /** Pins the live flows the change would move, each to the member it is on now. */
  private async pinAffected(rec: ChangeRecord, vip: VipState): Promise<void> {
    if (rec.kind === 'drain') {
      this.rt.pinFlows(this.rt.flowsOn(vip.address, rec.nexthop), rec.nexthop, rec.id);
      return;
    }
    const moved = new Set((await movedFlows(this.ctx, vip, rec.nexthop)).keys);
    // Cancelled (or stopped) meanwhile: its pins were released; none is asked for again.
    if (rec.phase !== 'pending') return;
    for (const m of vip.members)
      this.rt.pinFlows(
        this.rt.flowsOn(vip.address, m).filter((k) => moved.has(k)),
        m,
        rec.id,
      );
  }

  private finish(
    rec: ChangeRecord,
    phase: 'complete' | 'drained' | 'failed' | 'cancelled',
    error?: string,
  ): void {
    rec.phase = phase;
    if (phase !== 'cancelled') this.introduced.delete(rec.id);
    rec.completedAt = this.now;
    if (error !== undefined) rec.error = error;
    this.sync();
  }

  /** Publishes the changes whose pins are wanted to the runtime. */
  private sync(): void {
    const views: ChangeView[] = this.active()
      .filter((r) => r.phase !== 'queued')
      // An addition's pins are wanted until it is accounted (complete): flows observed while it takes effect
      // are pinned too.
      .map((r) => ({ id: r.id, kind: r.kind, vip: r.vip, nexthop: r.nexthop, active: true }));
    this.rt.changes = views;
  }
}

/**
 * A flow id (`src|sport|dst|dport`) as the API names a connection: `src:sport->dst:dport` (IPv6 in brackets).
 */
function flowName(id: string): string {
  const [src = '', sport = '', dst = '', dport = ''] = id.split('|');
  const host = (a: string): string => (a.includes(':') ? `[${a}]` : a);
  return `${host(src)}:${sport}->${host(dst)}:${dport}`;
}

/** A record read back from the state, with the fields an earlier version did not write. */
function normalise(r: ChangeRecord): ChangeRecord {
  const out: ChangeRecord = {
    ...r,
    atRiskBy: { ...zeroRisk(), ...r.atRiskBy },
    maxAtRisk: r.maxAtRisk ?? 0,
    windowFlows: r.windowFlows === undefined ? 0 : r.windowFlows,
  };
  // An earlier version called a finished drain `complete`.
  if (out.kind === 'drain' && out.phase === 'complete') out.phase = 'drained';
  return out;
}

/** An address from a request, canonical, or a 400 naming the field. */
function parsed(text: string, field: string): string {
  try {
    return hostAddress(text);
  } catch (err) {
    throw badRequest(
      err instanceof AddressError ? err.message : `'${String(text).slice(0, 64)}' is not an IP address`,
      field,
    );
  }
}

export type { AtRiskReason } from './reconciler.js';
export type RiskCounts = AtRiskCounts;
