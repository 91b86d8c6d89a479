// Drains and additions, following DESIGN.md's protocol for per-connection consistency.
// Changes on one switch run one at a time (later ones wait, `queued`); a VIP has at most one
// change queued or in progress. Each change:
//   1. is written durably (write-ahead), then marked pending: every newly resolved flow it
//      affects is pinned at once, and the live flows it affects are pinned now;
//   2. barrier by marks: after the settle time (frames in flight), a mark is taken; every
//      event up to the mark is resolved and every pin wanted for the VIP read back as
//      programmed (or dropped and counted at risk, by reason). Events after the mark are not
//      waited for;
//   3. holds new look-ups, writes the group change through the switch's write point
//      (`sentAt`, `appliedAt` when accepted), waits until the switch reports it in forwarding
//      (`effectiveAt`) and the settle time, then releases. Flows whose SYN arrived after the
//      mark and whose server is not certain, or whose pin was not programmed before the
//      change took effect, are the change window: counted in `windowFlows`. Where the switch
//      mirrors the servers' replies (resolution observe/both), a flow whose SYN arrived in the
//      window is pinned to the server that answered as soon as the reply is seen: before the
//      release, the replies of the SYNs up to the settle are waited for (bounded by the reply
//      timeout), and only flows whose pin was not programmed when the change took effect, or
//      whose server stayed unknown, count in `windowFlows`;
//   4. a drain is tracked until no pin is left on the nexthop (or the caller's deadline).
// A change that fails before its group change removes the pins it added and restores the
// desired group. A change resumed after a restart reads the switch's group and completes
// what is missing. A dry run reports, changing nothing, the flows to pin, the programmable
// room the switch reports, the flows at risk by reason and the expected window flows.

import { isSwitchError } from '../switch-adapters/errors.js';
import { AddressError, familyOf, hostAddress } from './address.js';
import { DeadlineError, sleep, until, withDeadline } from './clock.js';
import { badRequest, conflict, FlowpinError, notFound } from './errors.js';
import type { ControllerMetrics } from './metrics.js';
import type { ChangeView } from './pin-policy.js';
import { sameMembers, type AtRiskReason } from './reconciler.js';
import { idOfKey, specOf as specOfKey, type MirrorHealth, type Resolution, type SwitchRuntime, type VipState } from './switch-runtime.js';

export type ChangeKind = 'drain' | 'add';
export type ChangePhase = 'queued' | 'pending' | 'applied' | 'complete' | 'failed';
export type AtRiskCounts = Record<AtRiskReason, number>;

export interface ChangeRecord {
  id: string;
  kind: ChangeKind;
  switch: string;
  vip: string;
  nexthop: string;
  phase: ChangePhase;
  /** When the call was made (queued), and when its protocol started. */
  queuedAt: number;
  startedAt: number;
  /** Barrier: hold time, after which the mark was taken. */
  heldAt?: number;
  /** The group change was sent, accepted by the switch, and reported in forwarding. */
  sentAt?: number;
  appliedAt?: number;
  effectiveAt?: number;
  completedAt?: number;
  /** Drain: complete at this time even with pinned flows left (ms). */
  deadlineAt?: number;
  /** Flows with a programmed pin for the change when it took effect. */
  pinned: number;
  /** Flows that needed a pin and have none programmed, in all and by reason. */
  atRisk: number;
  atRiskBy: AtRiskCounts;
  /** Flows whose SYN arrived in the change window, with no certain, programmed pin. */
  windowFlows: number;
  /** Pinned flows left on the nexthop (drain). */
  remaining: number;
  deadlineReached?: boolean;
  error?: string;
  /** Resumed after a restart. */
  resumed?: boolean;
}

export interface DryRunReport {
  dryRun: true;
  switch: string;
  vip: string;
  nexthop: string;
  /** Live flows the change would move that have no programmed pin yet. */
  flowsToPin: number;
  alreadyPinned: number;
  /** Free pin table entries as the switch reports them (shared with other owners). */
  freeEntries: number;
  atRisk: number;
  atRiskBy: AtRiskCounts;
  /** Flows seen but not yet resolved (their nexthop is unknown until they are). */
  unresolved: number;
  /** Mirror traffic seen for the VIP: SYNs in all, and per second lately. */
  synsSeen: number;
  synRate: number;
  /** Expected change window (ms) and the flows expected to arrive in it. */
  expectedWindowMs: number;
  expectedWindowFlows: number;
  /** Where the switch cannot tell which flows an addition moves, every live flow is pinned. */
  movedFlowsKnown: boolean;
  /**
   * How flows' servers are learnt on this switch: `lookup` (the switch's look-up), `observe`
   * (the mirrored SYN-ACKs), `both`, or `none` (no look-up call and no mirrored replies, as
   * gNMI without the reply mirror: every flow stays unresolved and is counted at risk).
   */
  resolution: 'lookup' | 'observe' | 'both' | 'none';
  /** The switch's mirror as flowpin sees it; a change needs acceptRisk unless it is ok. */
  mirror: MirrorHealth;
}

export interface ChangeOptions {
  settleMs: number;
  barrierTimeoutMs: number;
  /** Writes the change records durably; resolves once they are on disk. */
  persist: () => Promise<void>;
  /** Resolves once every flow resolved so far is durable (the flow journal), so a restart knows them. */
  flowsDurable: () => Promise<void>;
  metrics: ControllerMetrics;
  /** Called with every flow (by flow id) counted at risk or in a change window, for tests and the scenario runner. */
  onCounted?: (rec: ChangeRecord, id: string, why: AtRiskReason | 'window') => void;
}

export type NexthopState = 'active' | 'draining' | 'drained';

const zeroRisk = (): AtRiskCounts => ({ 'table-full': 0, refused: 0, 'not-programmed': 0, shed: 0, unresolved: 0 });
let nextId = 1;

export class ChangeManager {
  /** Changes queued, in progress and the last completed ones, oldest first. */
  readonly records: ChangeRecord[] = [];

  /**
   * The records with the server resets seen afterwards: RSTs from the VIP on the reply mirror
   * from the change's group write until the next change of the VIP (null where the switch does
   * not mirror server resets).
   */
  withResets(records: readonly ChangeRecord[] = this.records): (ChangeRecord & { resetsSeen: number | null })[] {
    return records.map((r) => {
      const from = r.sentAt ?? r.heldAt;
      const next = this.records.find((x) => x.vip === r.vip && x !== r && (x.heldAt ?? Infinity) > (from ?? Infinity));
      const resetsSeen = from === undefined ? null : this.rt.serverResetsBetween(r.vip, from, next?.heldAt ?? Infinity);
      return { ...r, resetsSeen };
    });
  }
  private tail: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly aborts = new Set<(err: Error) => void>();

  constructor(
    private readonly rt: SwitchRuntime,
    private readonly o: ChangeOptions,
  ) {}

  private get now(): number {
    return this.rt.clock.now();
  }

  /**
   * The controller is stopping: changes in progress stop where they are, their records left
   * as they were written (they resume at the next start), nothing undone or marked failed.
   */
  stop(): void {
    this.stopped = true;
    const err = new FlowpinError('switch-unavailable', 'flowpin is stopping; changes in progress resume when it starts again');
    for (const abort of [...this.aborts]) abort(err);
  }

  /** Waits for `p`, or ends at once when the controller stops. */
  private guard<T>(p: Promise<T>): Promise<T> {
    if (this.stopped) return Promise.reject(new FlowpinError('switch-unavailable', 'flowpin is stopping'));
    let abort: (err: Error) => void = () => undefined;
    const stop = new Promise<never>((_, reject) => (abort = reject));
    this.aborts.add(abort);
    return Promise.race([p, stop]).finally(() => this.aborts.delete(abort));
  }

  vip(address: string): VipState {
    const a = parsed(address, 'vip');
    const v = this.rt.vips.get(a);
    if (v === undefined) throw notFound(`switch ${this.rt.name} has no VIP ${a}`, { switch: this.rt.name, vip: a });
    return v;
  }

  private nexthopOf(v: VipState, address: string): string {
    const a = parsed(address, 'nexthop');
    if (!v.nexthops.has(a)) throw notFound(`VIP ${v.address} on ${this.rt.name} has no nexthop ${a}`, { switch: this.rt.name, vip: v.address, nexthop: a });
    return a;
  }

  active(): ChangeRecord[] {
    return this.records.filter((r) => r.phase === 'queued' || r.phase === 'pending' || r.phase === 'applied');
  }

  stateOf(vip: VipState, nexthop: string): NexthopState {
    if (this.active().some((r) => r.kind === 'drain' && r.vip === vip.address && r.nexthop === nexthop)) return 'draining';
    return vip.members.has(nexthop) ? 'active' : 'drained';
  }

  /** Drains a nexthop (or reports what a drain would do). */
  async drain(vipAddr: string, nhAddr: string, opts: { dryRun?: boolean; deadlineSeconds?: number; acceptRisk?: boolean }): Promise<ChangeRecord | DryRunReport> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    if (!vip.members.has(nh) && !this.active().some((r) => r.vip === vip.address && r.nexthop === nh)) throw conflict(`${nh} is not in the ECMP group of ${vip.address}: nothing to drain`, { state: 'drained' });
    this.noConflict(vip.address, nh);
    if (opts.dryRun) return this.dryRun('drain', vip, nh);
    if (vip.members.size <= 1) throw conflict(`${nh} is the last member of ${vip.address}; add another before draining it`);
    this.mirrorTrusted(opts.acceptRisk);
    const rec = this.begin('drain', vip.address, nh);
    if (opts.deadlineSeconds !== undefined) rec.deadlineAt = rec.queuedAt + opts.deadlineSeconds * 1000;
    await this.serialised(() => this.runProtocol(rec));
    return rec;
  }

  /** Puts a drained or draining nexthop back into the group. */
  async undrain(vipAddr: string, nhAddr: string, opts: { acceptRisk?: boolean } = {}): Promise<{ switch: string; vip: string; nexthop: string; state: NexthopState }> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    const drains = this.active().filter((r) => r.kind === 'drain' && r.vip === vip.address && r.nexthop === nh);
    if (drains.some((r) => r.phase !== 'applied')) throw conflict(`the drain of ${nh} is still being applied; try again in a moment`);
    if (drains.length === 0 && vip.members.has(nh)) return { switch: this.rt.name, vip: vip.address, nexthop: nh, state: 'active' };
    this.noConflict(vip.address, nh, 'drain');
    this.mirrorTrusted(opts.acceptRisk);
    // Re-adding a member moves flows onto it like any addition: run it through the protocol.
    const rec = this.begin('add', vip.address, nh);
    await this.serialised(async () => {
      await this.runProtocol(rec);
      for (const d of drains) this.finish(d, 'complete');
    });
    return { switch: this.rt.name, vip: vip.address, nexthop: nh, state: 'active' };
  }

  /** What putting a nexthop back would do (an addition's dry run); null where it is in the group with no drain to undo. */
  async undrainDryRun(vipAddr: string, nhAddr: string): Promise<DryRunReport | null> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    if (vip.members.has(nh)) return null;
    return this.dryRun('add', vip, nh);
  }

  /** Adds a nexthop to a VIP's group without moving any pinned connection. */
  async add(vipAddr: string, nhAddr: string, opts: { dryRun?: boolean; acceptRisk?: boolean }): Promise<ChangeRecord | DryRunReport> {
    const vip = this.vip(vipAddr);
    const nh = parsed(nhAddr, 'address');
    if (familyOf(nh) !== familyOf(vip.address)) throw badRequest(`${nh} is an IPv${familyOf(nh)} address; ${vip.address} is an IPv${familyOf(vip.address)} VIP`, 'address');
    if (nh === vip.address) throw badRequest(`${nh} is the VIP itself`, 'address');
    if (vip.members.has(nh)) throw conflict(`${nh} is already in the ECMP group of ${vip.address}`, { state: 'active' });
    this.noConflict(vip.address, nh);
    if (opts.dryRun) return this.dryRun('add', vip, nh);
    this.mirrorTrusted(opts.acceptRisk);
    const rec = this.begin('add', vip.address, nh);
    vip.nexthops.add(nh);
    await this.serialised(() => this.runProtocol(rec));
    return rec;
  }

  /** Forgets a nexthop that is out of the group; refused while pinned flows remain, unless forced. */
  remove(vipAddr: string, nhAddr: string, force: boolean): { switch: string; vip: string; nexthop: string; removed: true; pinnedLeft: number } {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    if (this.active().some((r) => r.vip === vip.address && r.nexthop === nh && r.phase !== 'applied')) throw conflict(`a change of ${nh} is being applied`);
    if (vip.members.has(nh)) throw conflict(`${nh} is still in the ECMP group of ${vip.address}: drain it first`, { state: 'active' });
    const pinned = this.rt.pinnedOn(vip.address, nh);
    if (pinned > 0 && !force) throw conflict(`${pinned} pinned flows remain on ${nh}; wait for the drain to complete (or force)`, { pinned });
    for (const r of this.active()) if (r.vip === vip.address && r.nexthop === nh) this.finish(r, 'complete');
    vip.nexthops.delete(nh);
    this.sync();
    return { switch: this.rt.name, vip: vip.address, nexthop: nh, removed: true, pinnedLeft: pinned };
  }

  /** Updates tracked drains: complete at zero pinned flows or at the deadline. */
  track(): void {
    const now = this.now;
    let changed = false;
    for (const r of this.active()) {
      if (r.kind !== 'drain' || r.phase !== 'applied') continue;
      r.remaining = this.rt.pinnedOn(r.vip, r.nexthop);
      if (r.remaining === 0) {
        this.finish(r, 'complete');
        changed = true;
      } else if (r.deadlineAt !== undefined && now >= r.deadlineAt) {
        r.deadlineReached = true;
        this.finish(r, 'complete');
        changed = true;
      }
    }
    if (changed) this.sync();
  }

  /**
   * Restores persisted records after a restart and completes what was in progress: the
   * switch's group says whether a change's group write happened before the restart.
   */
  async resume(saved: ChangeRecord[]): Promise<void> {
    for (const r of saved) if (!this.records.some((x) => x.id === r.id)) this.records.push({ ...r, atRiskBy: { ...zeroRisk(), ...r.atRiskBy }, windowFlows: r.windowFlows ?? 0 });
    this.sync();
    const work: Promise<void>[] = [];
    for (const r of this.active()) {
      const vip = this.rt.vips.get(r.vip);
      if (vip === undefined) {
        this.finish(r, 'failed', `VIP ${r.vip} is no longer configured`);
        continue;
      }
      r.resumed = true;
      vip.nexthops.add(r.nexthop);
      const done = r.kind === 'drain' ? !vip.members.has(r.nexthop) : vip.members.has(r.nexthop);
      if (r.phase === 'applied' || done) {
        // The group write happened: keep the flows of the change pinned and complete it.
        if (r.phase !== 'applied') {
          r.phase = 'applied';
          r.appliedAt ??= this.now;
          r.effectiveAt ??= this.now;
        }
        this.rt.reconciler.setGroup(r.vip, vip.members);
        if (r.kind === 'drain') this.rt.pinFlows(this.rt.flowsOn(r.vip, r.nexthop), r.nexthop, r.id);
        else this.finish(r, 'complete');
        continue;
      }
      // Not written yet: run the protocol from the start, in turn with any new change.
      r.phase = 'queued';
      work.push(this.serialised(() => this.runProtocol(r)).catch((err: unknown) => {
        r.error ??= err instanceof Error ? err.message : String(err);
      }));
    }
    this.sync();
    await this.o.persist();
    await Promise.all(work);
  }

  private async dryRun(kind: ChangeKind, vip: VipState, nh: string): Promise<DryRunReport> {
    const keys = kind === 'drain' ? this.rt.flowsOn(vip.address, nh) : await this.movedFlows(vip, nh);
    const r = this.rt.reconciler;
    let pinned = 0;
    for (const k of keys) {
      const id = idOfKey(k);
      if (r.isProgrammed(id, r.desired.get(id)?.nexthop)) pinned++;
    }
    const toPin = keys.length - pinned;
    let free = r.freeEntries();
    if (this.rt.adapter.pinTableUsage !== undefined) {
      try {
        const u = await this.rt.adapter.pinTableUsage();
        free = Math.max(0, Math.min(u.capacity, this.rt.adapter.capabilities.pinTableSize) - u.used - this.rt.reconciler.pendingCount);
      } catch (err) {
        throw new FlowpinError('switch-unavailable', `dry run on ${this.rt.name}: cannot read the pin table: ${err instanceof Error ? err.message : String(err)}`, undefined, { cause: err });
      }
    }
    const unresolved = this.rt.queuedOn(vip.address, 0, Number.MAX_SAFE_INTEGER).length + this.rt.unresolvedOn(vip.address).length;
    const atRiskBy = zeroRisk();
    atRiskBy['table-full'] = Math.max(0, toPin - free);
    atRiskBy.unresolved = unresolved;
    atRiskBy.shed = this.rt.shedOn(vip.address).length + this.rt.shedForgottenOn(vip.address, kind === 'drain' ? nh : undefined);
    const expectedWindowMs = this.expectedWindowMs();
    const rate = this.rt.synRateOf(vip);
    return {
      dryRun: true, switch: this.rt.name, vip: vip.address, nexthop: nh, flowsToPin: toPin, alreadyPinned: pinned, freeEntries: free,
      atRisk: atRiskBy['table-full'] + atRiskBy.unresolved + atRiskBy.shed, atRiskBy, unresolved, synsSeen: vip.syns, synRate: Math.round(rate * 10) / 10,
      expectedWindowMs, expectedWindowFlows: Math.ceil((rate * expectedWindowMs) / 1000),
      movedFlowsKnown: kind === 'drain' || (this.rt.adapter.capabilities.predictsMovedFlows && this.rt.adapter.movedByAdd !== undefined),
      resolution: this.rt.resolution === 'lookup' && !this.rt.adapter.capabilities.resolvesNexthop ? 'none' : this.rt.resolution,
      mirror: this.rt.mirrorHealth(),
    };
  }

  /** The change window to expect: the group write, its programming, and the settle time. */
  private expectedWindowMs(): number {
    const effective = this.records.filter((r) => r.effectiveAt !== undefined && r.sentAt !== undefined).slice(-5);
    const measured = effective.length === 0 ? 0 : Math.max(...effective.map((r) => (r.effectiveAt as number) - (r.sentAt as number)));
    return Math.round(Math.max(measured, this.rt.adapter.capabilities.groupProgramDelayMs ?? 0) + this.o.settleMs);
  }

  /** Live flows of the VIP that adding `nh` would move (all of them where the switch cannot tell). */
  private async movedFlows(vip: VipState, nh: string): Promise<string[]> {
    const keys = [...vip.members].flatMap((m) => this.rt.flowsOn(vip.address, m));
    if (!this.rt.adapter.capabilities.predictsMovedFlows || this.rt.adapter.movedByAdd === undefined || keys.length === 0) return keys;
    try {
      const ask = this.rt.adapter.movedByAdd(vip.address, nh, keys.map(specOfKey));
      const moved = await withDeadline(this.rt.clock, ask, this.o.barrierTimeoutMs, () => `asking ${this.rt.name} which flows the addition of ${nh} moves`);
      return keys.filter((_, i) => moved[i] !== false);
    } catch (err) {
      // The switch cannot tell now: every live flow may move (safe; costs table entries).
      this.rt.lastResolveError = `predicting moved flows: ${err instanceof Error ? err.message : String(err)}`;
      return keys;
    }
  }

  /** Pins the live flows the change would move, each to the member it is on now. */
  private async pinAffected(rec: ChangeRecord, vip: VipState): Promise<void> {
    if (rec.kind === 'drain') {
      this.rt.pinFlows(this.rt.flowsOn(vip.address, rec.nexthop), rec.nexthop, rec.id);
      return;
    }
    const moved = new Set(await this.movedFlows(vip, rec.nexthop));
    for (const m of vip.members) this.rt.pinFlows(this.rt.flowsOn(vip.address, m).filter((k) => moved.has(k)), m, rec.id);
  }

  /**
   * flowpin pins only what its mirror shows: with the mirror silent or collapsed it would pin
   * nothing with confidence. Such a change goes ahead only with the caller's explicit consent.
   */
  private mirrorTrusted(acceptRisk: boolean | undefined): void {
    const m = this.rt.mirrorHealth();
    if (m.state === 'ok' || acceptRisk === true) return;
    throw conflict(`the mirror of ${this.rt.name} is ${m.state} (${m.why ?? ''}); flowpin cannot see the connections this change would move. Fix the mirror, or accept the risk (acceptRisk: true)`, { mirror: m });
  }

  /** At most one change queued or in progress per VIP, and none on a nexthop with a change still tracked. */
  private noConflict(vip: string, nh: string, except?: ChangeKind): void {
    const other = this.active().find((r) => r.vip === vip && (r.phase !== 'applied' || r.nexthop === nh) && r.kind !== except);
    if (other) throw conflict(`a ${other.kind} of ${other.nexthop} on ${vip} is ${other.phase === 'queued' ? 'queued' : 'in progress'}`, { change: other.id });
    const tracked = this.active().find((r) => r.vip === vip && r.phase === 'applied' && r.kind === 'add');
    if (tracked) throw conflict(`an addition of ${tracked.nexthop} on ${vip} is being applied`, { change: tracked.id });
  }

  private begin(kind: ChangeKind, vip: string, nh: string): ChangeRecord {
    const now = this.now;
    const rec: ChangeRecord = {
      id: `${this.rt.name}-${kind}-${Date.now().toString(36)}-${nextId++}`, kind, switch: this.rt.name, vip, nexthop: nh, phase: 'queued',
      queuedAt: now, startedAt: now, pinned: 0, atRisk: 0, atRiskBy: zeroRisk(), windowFlows: 0, remaining: 0,
    };
    this.records.push(rec);
    while (this.records.length > 200) {
      const i = this.records.findIndex((r) => r.phase === 'complete' || r.phase === 'failed');
      if (i < 0) break;
      this.records.splice(i, 1);
    }
    this.sync();
    return rec;
  }

  /** Runs `fn` after every change queued before it on this switch. */
  private serialised(fn: () => Promise<void>): Promise<void> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Counts one flow (by flow id; '' where it is not known) at risk or in the window. */
  private count(rec: ChangeRecord, id: string, why: AtRiskReason | 'window'): void {
    if (why === 'window') {
      rec.windowFlows++;
      this.o.metrics.windowFlows.inc({ switch: rec.switch });
    } else {
      rec.atRisk++;
      rec.atRiskBy[why]++;
      // Pins the reconciler dropped are in the metric already; these are not.
      if (why === 'shed' || why === 'unresolved' || why === 'not-programmed') this.o.metrics.connectionsAtRisk.inc({ switch: rec.switch, why });
    }
    this.o.onCounted?.(rec, id, why);
  }

  /** The protocol for one change; on failure before the group write, nothing stays changed and the record says why. */
  private async runProtocol(rec: ChangeRecord): Promise<void> {
    const rt = this.rt;
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
      if (why !== 'idle-timeout' && rec.effectiveAt === undefined && p.flow.dst === rec.vip && (rec.kind === 'add' || p.nexthop === rec.nexthop)) dropped.set(id, why);
    });
    const unwatch = (): void => {
      watching();
      dropping();
    };
    try {
      this.sync();
      await this.guard(this.o.persist());
      await this.guard(this.pinAffected(rec, vip));
      // 2. barrier by marks.
      rec.heldAt = this.now;
      if (this.o.settleMs > 0) await this.guard(sleep(rt.clock, this.o.settleMs));
      mark = rt.mark();
      const wake = (fn: () => void): (() => void) => rt.onProgress(fn);
      await this.guard(until(rt.clock, () => rt.resolvedThrough(mark), wake, deadline, () => `resolving the flows seen before the change (${rt.queue.length} queued)`));
      await this.guard(withDeadline(rt.clock, this.o.flowsDurable(), Math.max(0, deadline - this.now), () => 'writing the flow journal'));
      const needed = this.pinsOf(rec);
      // Programmed as the switch reports it now, not as last seen: read back, until it holds.
      for (;;) {
        await this.guard(until(rt.clock, () => rt.reconciler.settled(needed), wake, deadline, () => `programming the pins of the change (${rt.reconciler.lastError ?? 'switch busy'})`));
        await this.guard(withDeadline(rt.clock, rt.reconciler.verify([...needed]), Math.max(0, deadline - this.now), () => 'reading back the pins of the change'));
        if (rt.reconciler.settled(needed)) break;
      }
      // 3. the group write, with look-ups held.
      held = true;
      await this.guard(withDeadline(rt.clock, rt.hold(hold), Math.max(0, deadline - this.now), () => 'waiting for look-ups in flight'));
      sent = true;
      const sentSeq = rt.mark();
      rec.sentAt = this.now;
      rt.reconciler.setGroup(rec.vip, target);
      this.sync();
      // No deadline from here: once the write is on its way its outcome must be known before
      // anything is undone (a write that lands after a rollback would move unpinned flows).
      // The write point retries what can be retried; a refusal ends the wait (blocked).
      await this.guard(rt.reconciler.flush());
      if (!sameMembers(rt.reconciler.groups.get(rec.vip), target)) throw new FlowpinError('switch-unavailable', `${rec.kind} of ${rec.nexthop} on ${rec.switch} not applied: the switch refused the group change: ${rt.reconciler.blocked ?? rt.reconciler.lastError ?? 'unknown'}`, { change: rec.id });
      rec.appliedAt = this.now;
      vip.members = new Set(target);
      rec.phase = 'applied';
      await this.guard(this.untilEffective(rec, target));
      rec.effectiveAt = this.now;
      // Pins that the change needed and that were not programmed when it took effect: at risk or window.
      // (Including pins wanted since the barrier: flows observed in the window.)
      const effectiveProgrammed = new Set<string>();
      for (const id of [...needed, ...this.pinsOf(rec)]) if (rt.reconciler.isProgrammed(id)) effectiveProgrammed.add(id);
      if (this.o.settleMs > 0) await this.guard(sleep(rt.clock, this.o.settleMs));
      const settledSeq = rt.mark();
      if (rt.resolution !== 'lookup') {
        // The replies of the SYNs in the window name their servers: wait for them (each SYN's
        // reply timeout bounds this), look-ups still held.
        // Past that bound (not expected: the timeouts hand every SYN on), the flows still
        // waiting count as uncertain below.
        await this.guard(until(rt.clock, () => rt.repliesThrough(settledSeq), wake, this.now + rt.replyTimeoutMs * 2, () => 'waiting for the replies of the change window')).catch((err: unknown) => {
          if (!(err instanceof DeadlineError)) throw err;
        });
      }
      // Flows accepted after the mark and not resolved before the group write: their server is not certain.
      const uncertain = rt.queuedOn(rec.vip, mark, settledSeq);
      rt.release(hold);
      held = false;
      this.account(rec, { needed, dropped, programmedAtEffect: effectiveProgrammed, afterMark, uncertain }, sentSeq, settledSeq);
    } catch (err) {
      unwatch();
      if (held) rt.release(hold);
      // Stopping: the record stays as last written (pending), the change resumes at the next start.
      if (this.stopped) throw err;
      if (rec.appliedAt === undefined) {
        // Nothing changed on the switch: drop the change's pins and the desired group write.
        rt.reconciler.unwantReason(rec.id);
        if (sent) rt.reconciler.setGroup(rec.vip, before);
        vip.members = before;
      }
      this.finish(rec, 'failed', err instanceof Error ? err.message : String(err));
      await this.o.persist().catch(() => undefined);
      if (err instanceof DeadlineError || isSwitchError(err)) throw new FlowpinError('switch-unavailable', `${rec.kind} of ${rec.nexthop} on ${rec.switch} not applied: ${err.message}`, { change: rec.id }, { cause: err });
      throw err;
    }
    unwatch();
    if (rec.kind === 'add') this.finish(rec, 'complete');
    this.sync();
    await this.o.persist();
    this.track();
  }

  /** Desired pins the change relies on, by flow id: a drain's on its nexthop, an addition's on every member. */
  private pinsOf(rec: ChangeRecord): Set<string> {
    const ids = new Set<string>();
    for (const [id, p] of this.rt.reconciler.desired) if (p.flow.dst === rec.vip && (rec.kind === 'add' || p.nexthop === rec.nexthop)) ids.add(id);
    return ids;
  }

  /** Waits until the switch reports the group change in forwarding (or its declared programming delay). */
  private async untilEffective(rec: ChangeRecord, target: Set<string>): Promise<void> {
    const a = this.rt.adapter;
    const clock = this.rt.clock;
    if (a.groupProgrammed === undefined) {
      const delay = a.capabilities.groupProgramDelayMs ?? 0;
      if (delay > 0) await sleep(clock, delay);
      return;
    }
    // Read back from forwarding, and never sooner than the switch's declared bound (where a
    // removal cannot be read back, the bound is what there is).
    const bound = (rec.appliedAt ?? this.now) + (a.capabilities.groupProgramDelayMs ?? 0);
    const deadline = this.now + Math.max(this.o.barrierTimeoutMs, (a.capabilities.groupProgramDelayMs ?? 0) * 4);
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

  /** The change's figures: programmed pins, flows at risk by reason, window flows. */
  private account(
    rec: ChangeRecord,
    seen: { needed: Set<string>; dropped: Map<string, AtRiskReason>; programmedAtEffect: Set<string>; afterMark: Map<string, Resolution>; uncertain: string[] },
    sentSeq: number,
    settledSeq: number,
  ): void {
    const r = this.rt.reconciler;
    const { needed, dropped, programmedAtEffect, afterMark, uncertain } = seen;
    const counted = new Set<string>(programmedAtEffect);
    rec.pinned = programmedAtEffect.size;
    for (const [id, why] of dropped) {
      if (counted.has(id)) continue;
      counted.add(id);
      this.count(rec, id, why);
    }
    for (const id of needed) {
      if (counted.has(id)) continue;
      counted.add(id);
      const failed = r.failed.get(id);
      if (failed !== undefined && failed.why !== 'idle-timeout') this.count(rec, id, failed.why);
      else if (r.desired.has(id)) this.count(rec, id, 'not-programmed');
      // Otherwise the flow ended (FIN/RST) before the change: nothing to protect.
    }
    // Resolved after the mark and before the group write, or observed (the server that
    // answered) for a SYN up to the settle: the server is certain; protected only if its pin
    // was programmed when the change took effect.
    for (const res of afterMark.values()) {
      const id = idOfKey(res.key);
      if (res.seq > (res.observed === true ? settledSeq : sentSeq) || res.nexthop === undefined || res.pinOwner === undefined || counted.has(id)) continue;
      if (rec.kind === 'drain' && res.nexthop !== rec.nexthop) continue;
      counted.add(id);
      if (!r.isProgrammed(id, res.nexthop) || !programmedAtEffect.has(id)) this.count(rec, id, 'window');
    }
    // Not resolved before the group write: the switch may have sent the SYN to either group.
    for (const key of uncertain) this.count(rec, idOfKey(key), 'window');
    // SYNs shed (the resolve queue was full): flowpin never learned where those flows go.
    for (const key of this.rt.shedOn(rec.vip)) {
      const id = idOfKey(key);
      if (!counted.has(id)) {
        counted.add(id);
        this.count(rec, id, 'shed');
      }
    }
    // Shed beyond what flowpin keeps by name: counted all the same, without names.
    const forgotten = this.rt.shedForgottenOn(rec.vip, rec.kind === 'drain' ? rec.nexthop : undefined);
    if (forgotten > 0) {
      rec.atRisk += forgotten;
      rec.atRiskBy.shed += forgotten;
      this.o.metrics.connectionsAtRisk.inc({ switch: rec.switch, why: 'shed' }, forgotten);
    }
    // Flows the switch could not resolve: wherever they go, nothing pinned them.
    for (const key of this.rt.unresolvedOn(rec.vip)) {
      const id = idOfKey(key);
      if (!counted.has(id)) {
        counted.add(id);
        this.count(rec, id, 'unresolved');
      }
    }
    rec.remaining = rec.kind === 'drain' ? this.rt.pinnedOn(rec.vip, rec.nexthop) : 0;
  }

  private finish(rec: ChangeRecord, phase: 'complete' | 'failed', error?: string): void {
    rec.phase = phase;
    rec.completedAt = this.now;
    if (error !== undefined) rec.error = error;
    this.sync();
  }

  /** Publishes the changes whose pins are wanted to the runtime. */
  private sync(): void {
    const views: ChangeView[] = this.active()
      .filter((r) => r.phase !== 'queued')
      // An addition's pins are wanted until it is accounted (complete): flows observed while it takes effect are pinned too.
      .map((r) => ({ id: r.id, kind: r.kind, vip: r.vip, nexthop: r.nexthop, active: r.kind === 'drain' || r.phase === 'pending' || r.phase === 'applied' }));
    this.rt.changes = views;
  }
}

/** An address from a request, canonical, or a 400 naming the field. */
function parsed(text: string, field: string): string {
  try {
    return hostAddress(text);
  } catch (err) {
    throw badRequest(err instanceof AddressError ? err.message : `'${String(text).slice(0, 64)}' is not an IP address`, field);
  }
}

