// One switch inside the controller: its VIPs and nexthop states, the queue of flows
// waiting for their nexthop, the resolver loop (batched look-ups through the adapter, a
// bounded number in flight), the pin policy applied to each resolved flow, and the
// reconciler that owns every write to the switch. The barrier lets a change wait until
// every event received before it is resolved and its pins are installed.

import { parseTuple } from '../mirror-receiver/tuple.js';
import type { FlowSpec, SwitchAdapter } from '../switch-adapters/contract.js';
import { flowId } from '../switch-adapters/contract.js';
import { flowKey, type FlowTable, UNRESOLVED } from './flow-table.js';
import type { ControllerMetrics } from './metrics.js';
import type { NexthopRegistry } from './nexthop-registry.js';
import { pinReason, type ChangeView, type PinMode } from './pin-policy.js';
import { Reconciler } from './reconciler.js';
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
  now: () => number;
}

export interface VipState {
  address: string;
  /** Nexthops flowpin manages for the VIP (configured, added, or found in the group). */
  nexthops: Set<string>;
  /** Members of the switch's ECMP group, as last read or changed. */
  members: Set<string>;
}

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

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
  /** While true, no resolve batch starts (a group change is being applied). */
  private held = false;
  private resolveFailures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly progress = new Set<() => void>();

  constructor(private readonly o: SwitchRuntimeOptions) {
    this.name = o.name;
    this.id = o.id;
    this.adapter = o.adapter;
    this.queue = new ResolveQueue(o.queueCapacity);
    for (const v of o.vips) this.vips.set(v.address, { address: v.address, nexthops: new Set(v.nexthops), members: new Set() });
    this.reconciler = new Reconciler({ switchName: o.name, adapter: o.adapter, metrics: o.metrics, idleTimeoutS: o.pinIdleTimeoutS, now: o.now, backoffMaxMs: o.retryMaxMs });
  }

  /** Connects, reads the VIP groups and lists the pins on the switch. */
  async start(): Promise<void> {
    await this.adapter.connect();
    for (const v of this.vips.values()) {
      const members = await this.adapter.groupMembers(v.address);
      v.members = new Set(members);
      for (const m of members) v.nexthops.add(m);
    }
    this.connected = true;
    await this.reconciler.resync();
  }

  stop(): void {
    this.stopped = true;
    this.reconciler.stop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /** A decoded mirror event for this switch. Returns what it did, for counters. */
  onSegment(tuple: string, dst: string, flags: number): 'syn' | 'end' | 'ignored' | 'shed' | 'unknown-vip' {
    if (!this.vips.has(dst)) return 'unknown-vip';
    const key = flowKey(this.id, tuple);
    if ((flags & (FIN | RST)) !== 0) {
      if (!this.o.flowTable.end(key)) return 'ignored';
      this.reconciler.unwant(specOf(key));
      return 'end';
    }
    if ((flags & SYN) === 0 || (flags & ACK) !== 0) return 'ignored';
    if (this.o.flowTable.has(key)) return 'ignored';
    const seq = ++this.seq;
    if (!this.queue.push({ key, seq, at: this.o.now() })) return 'shed';
    this.o.flowTable.touch(key);
    this.pump();
    return 'syn';
  }

  /** Live flows resolved to a nexthop of a VIP. */
  flowsOn(vip: string, nexthop: string): string[] {
    const id = this.o.registry.find(this.name, vip, nexthop);
    return id === undefined ? [] : this.o.flowTable.flowsOn(id);
  }

  /** Flows with a pin (wanted and kept) on a nexthop of a VIP. */
  pinnedOn(vip: string, nexthop: string): number {
    let n = 0;
    for (const p of this.reconciler.desired.values()) if (p.nexthop === nexthop && p.flow.dst === vip) n++;
    return n;
  }

  /**
   * Asks for pins on these flows (live and resolved to `nexthop`), most recently seen
   * first: where the table cannot hold them all, those are the likeliest to be still alive.
   */
  pinFlows(keys: string[], nexthop: string, reason: string): void {
    const now = this.o.now();
    const seen = keys.map((key) => ({ key, at: this.o.flowTable.entry(key)?.lastSeen ?? 0 })).sort((a, b) => b.at - a.at);
    for (const { key } of seen) this.reconciler.want({ flow: specOf(key), nexthop, reason, since: now });
  }

  /**
   * The barrier before a group change: waits until every event accepted up to now is
   * resolved and its pins installed, then `settleMs` for frames in flight, then until the
   * resolver is idle with every pin flushed. It returns holding new resolutions, so that no
   * flow is resolved while the group changes (its answer would be ambiguous); the caller
   * applies the change and then calls release(). Throws on timeout, holding nothing.
   */
  async barrier(settleMs: number, timeoutMs: number): Promise<void> {
    const deadline = this.o.now() + timeoutMs;
    const mark = this.seq;
    await this.until(() => this.queue.doneThrough(mark), deadline, `resolving the flows seen before the change (${this.queue.length} queued)`);
    await this.flushBy(deadline);
    if (settleMs > 0) await sleep(settleMs);
    for (;;) {
      await this.until(() => this.idle(), deadline, `waiting for the resolver to be idle (${this.queue.length} queued)`);
      await this.flushBy(deadline);
      if (this.idle()) break;
    }
    this.held = true;
  }

  /** Lets resolution go on after a group change (see barrier()). */
  release(): void {
    this.held = false;
    this.pump();
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0;
  }

  private flushBy(deadline: number): Promise<void> {
    return withDeadline(this.reconciler.flush(), deadline - this.o.now(), () => `installing pins (${this.reconciler.lastError ?? 'switch busy'})`);
  }

  private until(cond: () => boolean, deadline: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond()) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new BarrierTimeout(`${this.name}: timed out ${what}`));
      }, Math.max(0, deadline - this.o.now()));
      const cleanup = (): void => {
        clearTimeout(timer);
        this.progress.delete(check);
      };
      this.progress.add(check);
    });
  }

  private notifyProgress(): void {
    for (const fn of [...this.progress]) fn();
  }

  /** Starts resolve batches while there is work and room in flight. */
  private pump(): void {
    const max = this.o.resolveConcurrency ?? 2;
    while (!this.stopped && !this.held && this.retryTimer === undefined && this.inFlight < max && this.queue.length > 0) {
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
      const delay = Math.min(this.o.retryMaxMs, 100 * 2 ** Math.min(this.resolveFailures - 1, 16));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, delay);
      return;
    }
    this.resolveFailures = 0;
    this.lastResolveError = undefined;
    const moved = await this.predictMoves(flows, nexthops);
    live.forEach((p, i) => {
      const nh = nexthops[i];
      const f = flows[i] as FlowSpec;
      if (nh === undefined) {
        this.o.metrics.resolved.inc({ switch: this.name, result: 'unknown' });
        return;
      }
      this.o.metrics.resolved.inc({ switch: this.name, result: 'ok' });
      const vip = this.vips.get(f.dst);
      vip?.nexthops.add(nh);
      if (!this.o.flowTable.resolve(p.key, this.o.registry.intern(this.name, f.dst, nh))) return;
      if (pinReason(this.o.pinMode, this.changes, { vip: f.dst, nexthop: nh, movedByAdd: moved[i] }) !== undefined) {
        this.reconciler.want({ flow: f, nexthop: nh, reason: this.o.pinMode === 'always' ? 'always' : 'change', since: p.at });
      }
    });
    this.queue.finish(batch);
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

export class BarrierTimeout extends Error {
  override readonly name = 'BarrierTimeout';
}

/** The flow a flow-table key stands for. */
export function specOf(key: string): FlowSpec {
  const t = parseTuple(key, 2);
  return { family: t.family, src: t.src, dst: t.dst, sport: t.sport, dport: t.dport };
}

export const idOfKey = (key: string): string => flowId(specOf(key));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withDeadline(p: Promise<void>, ms: number, what: () => string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BarrierTimeout(`timed out ${what()}`)), Math.max(0, ms));
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
