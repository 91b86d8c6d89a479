// Drains and additions, following DESIGN.md's protocol for per-connection consistency:
//   1. the change is marked pending: from now on every newly resolved flow it affects is
//      pinned at once, and the live flows it affects are pinned now;
//   2. barrier: every mirror event received before the change is resolved and its pins are
//      installed, plus a settle time for frames still in flight;
//   3. the group change is applied on the switch;
//   4. a drain is tracked until no pinned flow is left on the nexthop (pins end when their
//      flows end or go idle), or until the caller's deadline, reporting what is left.
// A dry run reports, changing nothing, how many flows would need pins, how many entries are
// free, and how many flows would be at risk.

import { canonicalIp } from '../mirror-receiver/addr.js';
import { isSwitchError } from '../switch-adapters/errors.js';
import { badRequest, conflict, FlowpinError, notFound } from './errors.js';
import type { ChangeView } from './pin-policy.js';
import { BarrierTimeout, idOfKey as idOf, specOf as specOfKey, type SwitchRuntime, type VipState } from './switch-runtime.js';

export type ChangeKind = 'drain' | 'add';
export type ChangePhase = 'pending' | 'applied' | 'complete' | 'failed';

export interface ChangeRecord {
  id: string;
  kind: ChangeKind;
  switch: string;
  vip: string;
  nexthop: string;
  phase: ChangePhase;
  startedAt: number;
  appliedAt?: number;
  completedAt?: number;
  /** Drain: complete at this time even with pinned flows left (ms). */
  deadlineAt?: number;
  /** Flows pinned for the change when it was applied. */
  pinned: number;
  /** Flows that needed a pin and got none (table full, refused). */
  atRisk: number;
  /** Pinned flows left on the nexthop (drain). */
  remaining: number;
  deadlineReached?: boolean;
  error?: string;
}

export interface DryRunReport {
  dryRun: true;
  switch: string;
  vip: string;
  nexthop: string;
  /** Live flows the change would move that have no pin yet. */
  flowsToPin: number;
  alreadyPinned: number;
  freeEntries: number;
  atRisk: number;
  /** Flows seen but not yet resolved (their nexthop is unknown until they are). */
  unresolved: number;
}

export interface ChangeOptions {
  settleMs: number;
  barrierTimeoutMs: number;
  now: () => number;
  /** Called whenever change state moves (for persistence). */
  onChange: () => void;
}

export type NexthopState = 'active' | 'draining' | 'drained';

let nextId = 1;

export class ChangeManager {
  /** Changes in progress and the last completed ones, newest last. */
  readonly records: ChangeRecord[] = [];

  constructor(
    private readonly rt: SwitchRuntime,
    private readonly o: ChangeOptions,
  ) {}

  vip(address: string): VipState {
    let a: string;
    try {
      a = canonicalIp(address);
    } catch {
      throw badRequest(`'${address}' is not an IP address`, 'vip');
    }
    const v = this.rt.vips.get(a);
    if (v === undefined) throw notFound(`switch ${this.rt.name} has no VIP ${a}`, { switch: this.rt.name, vip: a });
    return v;
  }

  private nexthopOf(v: VipState, address: string): string {
    let a: string;
    try {
      a = canonicalIp(address);
    } catch {
      throw badRequest(`'${address}' is not an IP address`, 'nexthop');
    }
    if (!v.nexthops.has(a)) throw notFound(`VIP ${v.address} on ${this.rt.name} has no nexthop ${a}`, { switch: this.rt.name, vip: v.address, nexthop: a });
    return a;
  }

  active(): ChangeRecord[] {
    return this.records.filter((r) => r.phase === 'pending' || r.phase === 'applied');
  }

  stateOf(vip: VipState, nexthop: string): NexthopState {
    if (this.active().some((r) => r.kind === 'drain' && r.vip === vip.address && r.nexthop === nexthop)) return 'draining';
    return vip.members.has(nexthop) ? 'active' : 'drained';
  }

  /** Drains a nexthop (or reports what a drain would do). */
  async drain(vipAddr: string, nhAddr: string, opts: { dryRun?: boolean; deadlineSeconds?: number }): Promise<ChangeRecord | DryRunReport> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    if (!vip.members.has(nh) && !this.active().some((r) => r.vip === vip.address && r.nexthop === nh)) throw conflict(`${nh} is not in the ECMP group of ${vip.address}: nothing to drain`, { state: 'drained' });
    this.noConflict(vip.address, nh);
    const keys = this.rt.flowsOn(vip.address, nh);
    if (opts.dryRun) return this.dryRun(vip.address, nh, keys);
    if (vip.members.size <= 1) throw conflict(`${nh} is the last member of ${vip.address}; add another before draining it`);
    const rec = this.begin('drain', vip.address, nh);
    if (opts.deadlineSeconds !== undefined) rec.deadlineAt = rec.startedAt + opts.deadlineSeconds * 1000;
    this.rt.pinFlows(keys, nh, 'drain');
    await this.runProtocol(rec, () => this.rt.adapter.removeGroupMember(vip.address, nh), () => vip.members.delete(nh));
    return rec;
  }

  /** Puts a drained or draining nexthop back into the group. */
  async undrain(vipAddr: string, nhAddr: string): Promise<{ switch: string; vip: string; nexthop: string; state: NexthopState }> {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    const drains = this.active().filter((r) => r.kind === 'drain' && r.vip === vip.address && r.nexthop === nh);
    if (drains.some((r) => r.phase === 'pending')) throw conflict(`the drain of ${nh} is still being applied; try again in a moment`);
    if (drains.length === 0 && vip.members.has(nh)) return { switch: this.rt.name, vip: vip.address, nexthop: nh, state: 'active' };
    this.noConflict(vip.address, nh, 'drain');
    // Re-adding a member moves flows onto it like any addition: run it through the protocol.
    const rec = this.begin('add', vip.address, nh);
    await this.pinForAdd(vip, nh);
    await this.runProtocol(rec, () => this.rt.adapter.addGroupMember(vip.address, nh), () => vip.members.add(nh));
    for (const d of drains) this.finish(d, 'complete');
    rec.phase = 'complete';
    rec.completedAt = this.o.now();
    this.sync();
    return { switch: this.rt.name, vip: vip.address, nexthop: nh, state: 'active' };
  }

  /** Adds a nexthop to a VIP's group without moving any pinned connection. */
  async add(vipAddr: string, nhAddr: string, opts: { dryRun?: boolean }): Promise<ChangeRecord | DryRunReport> {
    const vip = this.vip(vipAddr);
    let nh: string;
    try {
      nh = canonicalIp(nhAddr);
    } catch {
      throw badRequest(`'${nhAddr}' is not an IP address`, 'address');
    }
    if (vip.members.has(nh)) throw conflict(`${nh} is already in the ECMP group of ${vip.address}`, { state: 'active' });
    this.noConflict(vip.address, nh);
    if (opts.dryRun) return this.dryRun(vip.address, nh, await this.movedFlows(vip, nh));
    const rec = this.begin('add', vip.address, nh);
    vip.nexthops.add(nh);
    await this.pinForAdd(vip, nh);
    await this.runProtocol(rec, () => this.rt.adapter.addGroupMember(vip.address, nh), () => vip.members.add(nh));
    rec.phase = 'complete';
    rec.completedAt = this.o.now();
    this.sync();
    return rec;
  }

  /** Forgets a nexthop that is out of the group; refused while pinned flows remain, unless forced. */
  remove(vipAddr: string, nhAddr: string, force: boolean): { switch: string; vip: string; nexthop: string; removed: true; pinnedLeft: number } {
    const vip = this.vip(vipAddr);
    const nh = this.nexthopOf(vip, nhAddr);
    if (this.active().some((r) => r.vip === vip.address && r.nexthop === nh && r.phase === 'pending')) throw conflict(`a change of ${nh} is being applied`);
    if (vip.members.has(nh) && !force) throw conflict(`${nh} is still in the ECMP group of ${vip.address}: drain it first (or force)`, { state: 'active' });
    const pinned = this.rt.pinnedOn(vip.address, nh);
    if (pinned > 0 && !force) throw conflict(`${pinned} pinned flows remain on ${nh}; wait for the drain to complete (or force)`, { pinned });
    for (const r of this.active()) if (r.vip === vip.address && r.nexthop === nh) this.finish(r, 'complete');
    vip.nexthops.delete(nh);
    this.sync();
    return { switch: this.rt.name, vip: vip.address, nexthop: nh, removed: true, pinnedLeft: pinned };
  }

  /** Updates tracked drains: complete at zero pinned flows or at the deadline. */
  track(): void {
    const now = this.o.now();
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

  /** Restores persisted records after a restart and resumes what was in progress. */
  async resume(saved: ChangeRecord[]): Promise<void> {
    for (const r of saved) this.records.push({ ...r });
    this.sync();
    for (const r of this.active()) {
      const vip = this.rt.vips.get(r.vip);
      if (vip === undefined) {
        this.finish(r, 'failed', `VIP ${r.vip} is no longer configured`);
        continue;
      }
      vip.nexthops.add(r.nexthop);
      if (r.kind === 'drain') this.rt.pinFlows(this.rt.flowsOn(r.vip, r.nexthop), r.nexthop, 'drain');
      else await this.pinForAdd(vip, r.nexthop);
      if (r.phase === 'pending') {
        const drop = r.kind === 'drain';
        // A failure is recorded on the change itself (phase failed, error); resuming goes on with the others.
        await this.runProtocol(r, () => (drop ? this.rt.adapter.removeGroupMember(r.vip, r.nexthop) : this.rt.adapter.addGroupMember(r.vip, r.nexthop)), () => (drop ? vip.members.delete(r.nexthop) : vip.members.add(r.nexthop))).catch((err: unknown) => {
          r.error ??= err instanceof Error ? err.message : String(err);
        });
        if (r.kind === 'add' && (r.phase as ChangePhase) === 'applied') this.finish(r, 'complete');
      }
    }
    this.sync();
  }

  private dryRun(vip: string, nh: string, keys: string[]): DryRunReport {
    let pinned = 0;
    for (const k of keys) if (this.rt.reconciler.desired.has(idOf(k))) pinned++;
    const toPin = keys.length - pinned;
    const free = Math.max(0, this.rt.adapter.capabilities.pinTableSize - this.rt.reconciler.programmedCount());
    return { dryRun: true, switch: this.rt.name, vip, nexthop: nh, flowsToPin: toPin, alreadyPinned: pinned, freeEntries: free, atRisk: Math.max(0, toPin - free), unresolved: this.rt.queue.length };
  }

  /** Live flows of the VIP that adding `nh` would move (all of them where the switch cannot tell). */
  private async movedFlows(vip: VipState, nh: string): Promise<string[]> {
    const keys = [...vip.members].flatMap((m) => this.rt.flowsOn(vip.address, m));
    if (!this.rt.adapter.capabilities.predictsMovedFlows || this.rt.adapter.movedByAdd === undefined || keys.length === 0) return keys;
    const moved = await this.rt.adapter.movedByAdd(vip.address, nh, keys.map(specOfKey));
    return keys.filter((_, i) => moved[i] !== false);
  }

  /** Pins the flows the addition would move, each to the member it is on now. */
  private async pinForAdd(vip: VipState, nh: string): Promise<void> {
    const moved = new Set(await this.movedFlows(vip, nh));
    for (const m of vip.members) this.rt.pinFlows(this.rt.flowsOn(vip.address, m).filter((k) => moved.has(k)), m, 'add');
  }

  private noConflict(vip: string, nh: string, except?: ChangeKind): void {
    const other = this.active().find((r) => r.vip === vip && (r.phase === 'pending' || r.nexthop === nh) && r.kind !== except);
    if (other) throw conflict(`a ${other.kind} of ${other.nexthop} on ${vip} is in progress (${other.phase})`, { change: other.id });
  }

  private begin(kind: ChangeKind, vip: string, nh: string): ChangeRecord {
    const rec: ChangeRecord = { id: `${this.rt.name}-${kind}-${Date.now().toString(36)}-${nextId++}`, kind, switch: this.rt.name, vip, nexthop: nh, phase: 'pending', startedAt: this.o.now(), pinned: 0, atRisk: 0, remaining: 0 };
    this.records.push(rec);
    while (this.records.length > 200) {
      const i = this.records.findIndex((r) => r.phase === 'complete' || r.phase === 'failed');
      if (i < 0) break;
      this.records.splice(i, 1);
    }
    this.sync();
    return rec;
  }

  /** Barrier, then the group change; on failure nothing changed on the switch and the record says why. */
  private async runProtocol(rec: ChangeRecord, apply: () => Promise<void>, applied: () => void): Promise<void> {
    const failedBefore = this.rt.reconciler.failed.size;
    try {
      await this.rt.barrier(this.o.settleMs, this.o.barrierTimeoutMs);
      try {
        await apply();
      } finally {
        this.rt.release();
      }
    } catch (err) {
      this.finish(rec, 'failed', err instanceof Error ? err.message : String(err));
      if (err instanceof BarrierTimeout || isSwitchError(err)) throw new FlowpinError('switch-unavailable', `${rec.kind} of ${rec.nexthop} on ${rec.switch} not applied: ${err.message}`, { change: rec.id }, { cause: err });
      throw err;
    }
    applied();
    rec.phase = 'applied';
    rec.appliedAt = this.o.now();
    rec.pinned = this.rt.pinnedOn(rec.vip, rec.nexthop);
    rec.atRisk = Math.max(0, this.rt.reconciler.failed.size - failedBefore);
    rec.remaining = rec.pinned;
    this.sync();
    this.track();
  }

  private finish(rec: ChangeRecord, phase: 'complete' | 'failed', error?: string): void {
    rec.phase = phase;
    rec.completedAt = this.o.now();
    if (error !== undefined) rec.error = error;
    this.sync();
  }

  /** Publishes the changes whose pins are wanted to the runtime, and persists. */
  private sync(): void {
    const views: ChangeView[] = this.active().map((r) => ({ kind: r.kind, vip: r.vip, nexthop: r.nexthop, active: r.kind === 'drain' || r.phase === 'pending' }));
    this.rt.changes = views;
    this.o.onChange();
  }
}
