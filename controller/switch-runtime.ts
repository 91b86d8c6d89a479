// One switch inside the controller: its VIPs, and the parts that turn its mirror into flows
// with known servers, each in a module of its own: the mirror watch (rates, health, which
// connection ends the mirror carries), the watch ledger (what flowpin may not have seen),
// the resolver (look-ups with marks and holds), the reply observer (servers named by their
// mirrored replies), the risk ledger (flows a change must count at risk), and the reconciler,
// the one writer to the switch. This module routes each mirrored segment, keeps each
// connection's liveness (a connection ends on a FIN from each side or a RST; one FIN is a
// half-close, and its pin stays), applies the pin policy to each resolved flow, and offers
// the read-only views a change and the API need. Every accepted SYN gets a sequence number:
// a change takes a mark and waits until every event up to it is resolved.

import { isSynAck } from '../mirror-receiver/flow-event.js';
import { reverseTuple, tupleOf as tupleOfSpec } from '../mirror-receiver/tuple.js';
import type { FlowSpec, SwitchAdapter } from '../switch-adapters/contract.js';
import { flowId } from '../switch-adapters/contract.js';
import type { Clock } from './clock.js';
import { flowKey, type FlowTable, type Side, UNRESOLVED } from './flow-table.js';
import { idOfKey, specOf } from './flow-spec.js';
import type { ControllerMetrics } from './metrics.js';
import { MirrorWatch, type LivenessSource, type MirrorHealth, type VipRates } from './mirror-watch.js';
import type { NexthopRegistry } from './nexthop-registry.js';
import { pinReason, type ChangeView, type PinMode } from './pin-policy.js';
import { Reconciler, type AtRiskReason, type DesiredPin } from './reconciler.js';
import { ReplyObserver, type ResolutionMode } from './reply-observer.js';
import type { Pending } from './resolve-queue.js';
import { Resolver } from './resolver.js';
import { RiskLedger } from './risk-ledger.js';
import type { ServerIdentityMap } from './server-identity.js';
import { WatchLedger } from './watch.js';

export type { ResolutionMode } from './reply-observer.js';
export type { MirrorHealth } from './mirror-watch.js';
export { specOf, idOfKey } from './flow-spec.js';

/** Where a runtime logs what an operator should see (a pino logger fits). */
export interface RuntimeLog {
  warn(obj: object, msg: string): void;
}

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
  /** Shed SYNs remembered by name (default 100,000; the controller passes flowTable.maxFlows). */
  maxShed?: number;
  resolveConcurrency?: number;
  retryMaxMs: number;
  clock: Clock;
  /** Mirror health thresholds (config.mirror). */
  mirrorSilenceS?: number;
  mirrorCollapseRatio?: number;
  /** How a flow's nexthop is learnt; `lookup` unless given. */
  resolution?: ResolutionMode;
  /** With observe/both: how long to wait for a SYN's reply before falling back (ms). */
  replyTimeoutMs?: number;
  /** With observe/both: who sent a reply (required for them). */
  identity?: ServerIdentityMap;
  /** Re-read the switch's server identities this often (s); 30 unless given. */
  identityRefreshS?: number;
  log?: RuntimeLog;
  /** Mirror frames lost before decoding (socket and backlog drops; see mirror-receiver/loss-monitor.ts). */
  mirrorLoss?: () => { dropped: number; recent: boolean; why: string | null };
  /** The configured connection lifetime (ms): the warm-up lasts this long; 3,600,000 unless given. */
  lifetimeMs?: number;
  /** No connection of this switch is older than this (clock ms). */
  knownEmptyBefore?: number;
  /**
   * How long a pin stays after its connection closed with a FIN each way (the last ACK is on its way), ms.
   */
  endLingerMs?: number;
  /** Which connection ends the mirror carries, where configured (`auto`: learnt). */
  mirrorEnds?: 'auto' | 'both-ways' | 'client-side' | 'syn-only';
}

/**
 * A VIP of the switch: the nexthops flowpin manages for it, and its group's members as the write point knows
 * them.
 */
export class VipState implements VipRates {
  syns = 0;
  synRate = 0;
  synsAtWindow = 0;
  /** Nexthops flowpin manages for the VIP (configured, added, or found in the group). */
  readonly nexthops: Set<string>;

  constructor(
    readonly address: string,
    nexthops: Iterable<string>,
    private readonly groups: ReadonlyMap<string, ReadonlySet<string>>,
  ) {
    this.nexthops = new Set(nexthops);
  }

  /**
   * Members of the switch's ECMP group, as last read from or written to the switch (the reconciler's view).
   */
  get members(): ReadonlySet<string> {
    return this.groups.get(this.address) ?? EMPTY;
  }
}

const EMPTY: ReadonlySet<string> = new Set();

/** A flow resolved by the resolver, as change watchers see it. */
export interface Resolution {
  key: string;
  seq: number;
  vip: string;
  nexthop: string | undefined;
  /** Who wants its pin, if anyone. */
  pinOwner: string | undefined;
  /** When its SYN arrived (controller clock, ms). */
  synAt?: number;
  /** Learnt from the server's mirrored reply (exact), not from a look-up. */
  observed?: boolean;
}

/** What a mirrored segment did, for counters. */
export type SegmentResult =
  | 'syn'
  | 'end'
  | 'half-close'
  | 'ignored'
  | 'shed'
  | 'unknown-vip'
  | 'reply'
  | 'reply-unknown'
  | 'server-reset';

/** A tracked connection as flowpin knows it: open (live), or open with no way to see it end (unknown). */
export type Liveness = 'live' | 'unknown';

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const DEFAULT_LINGER_MS = 2000;
/**
 * both: one SYN in this many is looked up as well as observed, to compare the two; the others
 * are looked up only where their reply does not come in time. Asking the switch about every flow
 * its mirror already names would take its API's capacity for nothing (and it is the scarce part
 * of a change under load).
 */
export const COMPARE_EVERY = 16;
/** SYNs seen with no FIN or RST before a mirror counts as syn-only. */
const SYN_ONLY_AFTER = 200;

export class SwitchRuntime {
  readonly name: string;
  readonly id: number;
  readonly adapter: SwitchAdapter;
  readonly reconciler: Reconciler;
  readonly vips = new Map<string, VipState>();
  readonly mirror: MirrorWatch;
  readonly watchLedger: WatchLedger;
  readonly risks: RiskLedger;
  readonly resolution: ResolutionMode;
  /** Changes whose pins are wanted (kept current by the change manager). */
  changes: ChangeView[] = [];
  /**
   * When the latest mirrored frame handled was received (or crossed the switch, in the simulated world):
   * frames are handled in order.
   */
  lastFrameAt = 0;
  /** Sequence number of the last event accepted. */
  seq = 0;
  connected = false;
  lastResolveError: string | undefined;
  private readonly resolver: Resolver;
  private readonly replies: ReplyObserver;
  private stopped = false;
  private readonly progress = new Set<() => void>();
  private readonly watchers = new Set<(r: Resolution) => void>();
  /** Pins of connections that closed (a FIN each way), removed once the linger is over: [flow, when]. */
  private lingering: [FlowSpec, number][] = [];
  private lingerTimer: unknown;
  /**
   * Set before start where flowpin starts without flow state for this switch (none saved, or
   * discarded): the pins its first listing finds become tracked connections of unknown liveness.
   */
  adoptPinsAsFlows = false;
  /** Connections adopted from the switch's pins at start (their SYN was not seen by this process). */
  adoptedFlows = 0;
  /**
   * Keys of adopted connections still tracked, and of connections restored from the state file: their
   * liveness is unknown whatever the mirror carries (an end that passed while this process was down was
   * not seen).
   */
  private readonly adoptedKeys = new Set<string>();

  /**
   * A connection restored from the state file, saved before this process stopped: its end may have
   * passed while nothing watched the mirror, so it is of unknown liveness (it ends by FIN or RST, or when
   * its pin idles out, as an adopted one), not live until a FIN that was already missed.
   */
  markRestored(key: string): void {
    this.adoptedKeys.add(key);
  }

  constructor(private readonly o: SwitchRuntimeOptions) {
    this.name = o.name;
    this.id = o.id;
    this.adapter = o.adapter;
    this.reconciler = new Reconciler({
      switchName: o.name,
      adapter: o.adapter,
      metrics: o.metrics,
      idleTimeoutS: o.pinIdleTimeoutS,
      clock: o.clock,
      backoffMaxMs: o.retryMaxMs,
      onAdopted: (pins) => this.adoptPins(pins),
    });
    for (const v of o.vips)
      this.vips.set(v.address, new VipState(v.address, v.nexthops, this.reconciler.groups));
    const now = (): number => o.clock.now();
    this.mirror = new MirrorWatch({
      silenceS: o.mirrorSilenceS ?? 60,
      collapseRatio: o.mirrorCollapseRatio ?? 0.1,
      synOnlyAfter: SYN_ONLY_AFTER,
      now,
      declared: o.mirrorEnds ?? 'auto',
      ...(o.mirrorLoss ? { loss: o.mirrorLoss } : {}),
    });
    this.watchLedger = new WatchLedger({
      lifetimeMs: o.lifetimeMs ?? 3_600_000,
      now,
      ...(o.knownEmptyBefore === undefined ? {} : { knownEmptyBefore: o.knownEmptyBefore }),
      tracked: (k) => o.flowTable.has(k),
    });
    this.risks = new RiskLedger(o.maxShed ?? 100_000, now);
    this.resolution = o.resolution ?? 'lookup';
    if (this.resolution !== 'lookup' && o.identity === undefined)
      throw new Error(`switch ${o.name}: resolution ${this.resolution} needs a server identity map`);
    this.resolver = new Resolver({
      adapter: o.adapter,
      clock: o.clock,
      capacity: o.queueCapacity,
      concurrency: o.resolveConcurrency ?? 2,
      retryMaxMs: o.retryMaxMs,
      // both: a sampled flow the reply named first is still looked up, to compare (the answer never applies).
      wanted: (p) =>
        o.flowTable.nexthopOf(p.key) === UNRESOLVED ||
        (this.resolution === 'both' && this.replies.observed(p.key)),
      flowOf: specOf,
      onAnswers: (asked, nexthops, moved) => this.answered(asked, nexthops, moved),
      predictMoves: (flows, nexthops) => this.predictMoves(flows, nexthops),
      onFailure: (err, batch) => {
        this.lastResolveError = err instanceof Error ? err.message : String(err);
        o.metrics.resolved.inc({ switch: this.name, result: 'error' }, batch.length);
      },
      onProgress: () => this.notifyProgress(),
      ready: () => this.connected,
    });
    this.replies = new ReplyObserver(this, {
      resolution: this.resolution,
      replyTimeoutMs: o.replyTimeoutMs ?? 1000,
      identity: o.identity,
      identityRefreshS: o.identityRefreshS ?? 30,
      capacity: o.queueCapacity,
    });
    // A pin that idled out on the switch: no packet for the idle timeout. Where the mirror would
    // show the connection's end (live) and none was seen, it is only quiet: the pin is wanted
    // again while a change needs it. Otherwise the idle time is the best word there is: it is over.
    this.reconciler.onDropped((_id, pin, why) => {
      if (why !== 'idle-timeout') return;
      const key = flowKey(this.id, tupleOfSpec(pin.flow));
      if (this.o.flowTable.has(key) && this.livenessOf(key) === 'live') {
        const owner = pinReason(this.o.pinMode, this.changes, {
          vip: pin.flow.dst,
          nexthop: pin.nexthop,
          movedByAdd: undefined,
        });
        if (owner !== undefined)
          this.reconciler.want({
            flow: pin.flow,
            nexthop: pin.nexthop,
            reason: owner,
            since: this.o.clock.now(),
          });
      } else {
        this.o.flowTable.end(key);
        this.adoptedKeys.delete(key);
      }
    });
  }

  // What the reply observer needs of its switch.
  get flowTable(): FlowTable {
    return this.o.flowTable;
  }
  get registry(): NexthopRegistry {
    return this.o.registry;
  }
  get metrics(): ControllerMetrics {
    return this.o.metrics;
  }
  get log(): RuntimeLog | undefined {
    return this.o.log;
  }
  get clock(): Clock {
    return this.o.clock;
  }
  get pinMode(): PinMode {
    return this.o.pinMode;
  }
  get replyTimeoutMs(): number {
    return this.o.replyTimeoutMs ?? 1000;
  }
  /** The server identity map (observe/both). */
  get identity(): ServerIdentityMap | undefined {
    return this.o.identity;
  }
  /** The look-up queue (read-only use). */
  get queue(): Resolver['queue'] {
    return this.resolver.queue;
  }

  isNexthopOf(vip: string, nexthop: string): boolean {
    const v = this.vips.get(vip);
    return v !== undefined && (v.nexthops.has(nexthop) || v.members.has(nexthop));
  }

  noteNexthop(vip: string, nexthop: string): void {
    this.vips.get(vip)?.nexthops.add(nexthop);
  }

  /**
   * A VIP a reload added: managed from now on with its configured nexthops and, where the switch
   * was connected, the group members read from it (otherwise start() reads them at connect).
   */
  addVip(address: string, nexthops: Iterable<string>, members: string[] | undefined): VipState {
    const v = new VipState(address, nexthops, this.reconciler.groups);
    this.vips.set(address, v);
    if (members !== undefined) {
      this.reconciler.groupRead(address, members);
      for (const m of members) v.nexthops.add(m);
    }
    return v;
  }

  /**
   * A VIP a reload removed (no change of it in flight): its SYNs are no VIP's from now on; its group is left
   * as it is.
   */
  removeVip(address: string): void {
    this.vips.delete(address);
    this.reconciler.forgetGroup(address);
  }

  /**
   * The pins the first listing found on the switch, wanted by no one. Where flowpin starts
   * without flow state for this switch, each is the pin of a connection it no longer knows (its
   * SYN came before the state was lost): tracked from now on, on the pin's nexthop, with its
   * liveness unknown (a FIN each way or a RST ends it as any other; so does its pin idling out on
   * the switch). Removing them would move those connections to another server.
   */
  private adoptPins(pins: DesiredPin[]): void {
    if (!this.adoptPinsAsFlows) return;
    let n = 0;
    for (const p of pins) {
      if (!this.vips.has(p.flow.dst)) continue;
      const key = flowKey(this.id, tupleOfSpec(p.flow));
      if (this.o.flowTable.has(key)) continue;
      this.o.flowTable.touch(key);
      if (!this.o.flowTable.resolve(key, this.o.registry.intern(this.name, p.flow.dst, p.nexthop))) continue;
      this.noteNexthop(p.flow.dst, p.nexthop);
      this.adoptedKeys.add(key);
      n++;
    }
    this.adoptedFlows += n;
    if (n === 0) return;
    this.o.log?.warn(
      { switch: this.name, adopted: n, pins: pins.length },
      'no flow state for this switch: the pins found on it adopted as tracked connections of unknown liveness (they end by FIN or RST, or when the pin idles out)',
    );
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
      this.reconciler.groupRead(v.address, members);
      for (const m of members) v.nexthops.add(m);
    }
    if (this.resolution !== 'lookup') await this.replies.refreshIdentities();
    this.connected = true;
    const synced = this.reconciler.resync();
    connectedHook?.();
    this.resolver.pump();
    await synced;
  }

  stop(): void {
    this.stopped = true;
    this.reconciler.stop();
    this.resolver.stop();
    this.replies.stop();
    if (this.lingerTimer !== undefined) this.o.clock.cancel(this.lingerTimer);
  }

  refreshIdentities(): Promise<void> {
    return this.replies.refreshIdentities();
  }

  /**
   * A decoded mirror event for this switch. `from` carries the segment's source address and
   * what the mirror says of its sender (MAC, port): a segment from a VIP is a server's, seen on
   * the reply session. Returns what it did, for counters.
   */
  onSegment(
    tuple: string,
    dst: string,
    flags: number,
    from?: { src: string; srcMac?: string | undefined; port?: number | undefined },
  ): SegmentResult {
    if (from !== undefined && this.vips.has(from.src))
      return this.onServerSegment(reverseTuple(tuple), from.src, flags, from.srcMac, from.port);
    const vip = this.vips.get(dst);
    if (vip === undefined) return 'unknown-vip';
    const key = flowKey(this.id, tuple);
    if ((flags & RST) !== 0) {
      this.mirror.end('client');
      return this.ended(key, false) ? 'end' : 'ignored';
    }
    if ((flags & FIN) !== 0) {
      this.mirror.end('client');
      return this.finFrom(key, 'client');
    }
    if ((flags & SYN) === 0 || (flags & ACK) !== 0) return 'ignored';
    if (this.o.flowTable.has(key)) {
      // A SYN again: the same connection (a retransmission) while open; a new one on the same tuple once it
      // was closing.
      if (this.o.flowTable.halfClosedBy(key) === null) return 'ignored';
      this.ended(key, false);
    }
    const now = this.o.clock.now();
    this.mirror.syn(vip, now);
    const seq = ++this.seq;
    const p: Pending = { key, seq, at: now };
    // both: a sample is looked up at once (to compare); a SYN is shed only when neither its look-up nor its
    // reply can be waited for.
    const lookNow = this.resolution === 'lookup' || (this.resolution === 'both' && seq % COMPARE_EVERY === 0);
    const queued = lookNow ? this.resolver.push(p) : false;
    const awaited = this.resolution !== 'lookup' && !this.replies.full;
    if (!queued && !awaited) {
      this.risks.shed(key, dst);
      this.mirror.shed();
      return 'shed';
    }
    if (awaited) this.replies.await(queued ? p : { ...p, queued: false });
    this.risks.unshed(key);
    this.adoptedKeys.delete(key);
    this.o.flowTable.touch(key);
    this.watchLedger.sample(key, now);
    if (queued) this.resolver.pump();
    return 'syn';
  }

  /** A segment from a VIP (the reply session): a SYN-ACK names the server, a FIN half-closes, a RST ends. */
  private onServerSegment(
    tuple: string,
    vip: string,
    flags: number,
    mac: string | undefined,
    port: number | undefined,
  ): SegmentResult {
    if (isSynAck(flags)) return this.replies.onReply(tuple, vip, mac, port);
    const key = flowKey(this.id, tuple);
    if ((flags & RST) !== 0) {
      this.mirror.end('server');
      this.risks.serverReset(vip);
      this.o.metrics.serverResets.inc({ switch: this.name, vip });
      this.ended(key, false);
      return 'server-reset';
    }
    if ((flags & FIN) !== 0) {
      this.mirror.end('server');
      return this.finFrom(key, 'server');
    }
    return 'ignored';
  }

  private finFrom(key: string, side: Side): SegmentResult {
    const r = this.o.flowTable.fin(key, side);
    if (r === undefined) return 'ignored';
    if (r === 'half') return 'half-close';
    this.ended(key, true, false);
    return 'end';
  }

  /**
   * A connection is over (a RST, or the second FIN): it stops being tracked, and its pin goes,
   * after a short linger where it closed with FINs (the last ACK is still on its way).
   */
  private ended(key: string, linger: boolean, untrack = true): boolean {
    this.risks.unshed(key);
    this.replies.forget(key);
    const tracked = untrack ? this.o.flowTable.end(key) : true;
    this.adoptedKeys.delete(key);
    const flow = specOf(key);
    if (!this.reconciler.has(flow)) return tracked;
    if (!linger) this.reconciler.unwant(flow);
    else {
      this.lingering.push([flow, this.o.clock.now() + (this.o.endLingerMs ?? DEFAULT_LINGER_MS)]);
      this.scheduleLinger();
    }
    return tracked;
  }

  private scheduleLinger(): void {
    const first = this.lingering[0];
    if (first === undefined || this.lingerTimer !== undefined || this.stopped) return;
    this.lingerTimer = this.o.clock.schedule(Math.max(0, first[1] - this.o.clock.now()), () => {
      this.lingerTimer = undefined;
      const now = this.o.clock.now();
      let i = 0;
      for (; i < this.lingering.length && (this.lingering[i] as [FlowSpec, number])[1] <= now; i++) {
        const flow = (this.lingering[i] as [FlowSpec, number])[0];
        // A new connection on the same tuple since: its pin is its own.
        if (!this.o.flowTable.has(flowKey(this.id, tupleOfSpec(flow)))) this.reconciler.unwant(flow);
      }
      this.lingering = this.lingering.slice(i);
      this.scheduleLinger();
    });
  }

  /** Pins of connections that closed and are lingering (counted neither live nor unknown). */
  isLingering(id: string): boolean {
    return this.lingering.some(([f]) => flowId(f) === id);
  }

  /**
   * How flowpin knows a tracked connection is open: `live` where the mirror would show its end, else
   * `unknown`.
   */
  livenessOf(key: string): Liveness {
    if (this.adoptedKeys.has(key)) return 'unknown';
    return classify(this.mirror.liveness, this.o.flowTable.halfClosedBy(key) ?? null);
  }

  markUnresolved(p: Pending): void {
    const f = specOf(p.key);
    this.o.metrics.resolved.inc({ switch: this.name, result: 'unknown' });
    this.risks.unresolved(p.key, f.dst);
    this.emit({ key: p.key, seq: p.seq, vip: f.dst, nexthop: undefined, pinOwner: undefined });
  }

  lookUp(ps: Pending[]): void {
    this.resolver.requeue(ps);
  }

  /** Records a flow's nexthop, applies the pin policy and tells the watchers. */
  apply(
    key: string,
    seq: number,
    at: number,
    nh: string,
    id: number,
    movedByAdd: boolean | undefined,
    observed: boolean,
  ): void {
    const f = specOf(key);
    if (!this.o.flowTable.resolve(key, id)) return;
    const owner = pinReason(this.o.pinMode, this.changes, { vip: f.dst, nexthop: nh, movedByAdd });
    if (owner !== undefined) this.reconciler.want({ flow: f, nexthop: nh, reason: owner, since: at });
    this.emit({
      key,
      seq,
      vip: f.dst,
      nexthop: nh,
      pinOwner: owner,
      synAt: at,
      ...(observed ? { observed: true } : {}),
    });
  }

  /** A look-up batch's answers, in order. */
  private answered(asked: Pending[], nexthops: (string | undefined)[], moved: (boolean | undefined)[]): void {
    asked.forEach((p, i) => {
      const nh = nexthops[i];
      const f = specOf(p.key);
      if (nh === undefined) {
        // Observed meanwhile: the reply answered.
        if (this.o.flowTable.nexthopOf(p.key) !== UNRESOLVED) return;
        this.markUnresolved(p);
        return;
      }
      // Resolved meanwhile by something surer (a restored record, or the server's reply): an
      // answer given now may reflect a group that changed since the SYN, so it never overwrites.
      const current = this.o.flowTable.nexthopOf(p.key);
      if (current !== UNRESOLVED) {
        if (
          current !== undefined &&
          this.replies.observed(p.key) &&
          this.o.registry.ref(current)?.nexthop !== nh
        )
          this.replies.disagree(p.key, nh, this.o.registry.ref(current)?.nexthop ?? '?');
        return;
      }
      this.o.metrics.resolved.inc({ switch: this.name, result: 'ok' });
      this.o.metrics.synToServer.observe(
        { switch: this.name, source: 'lookup' },
        (this.o.clock.now() - p.at) / 1000,
      );
      this.noteNexthop(f.dst, nh);
      const id = this.o.registry.intern(this.name, f.dst, nh);
      // both: the reply is still to come and wins; the pin waits for it (or its timeout).
      if (this.replies.holdLookup(p.key, nh, id, moved[i])) return;
      this.apply(p.key, p.seq, p.at, nh, id, moved[i], false);
    });
  }

  /** Where an addition is pending on a flow's VIP and the adapter can tell, whether it moves the flow. */
  private async predictMoves(
    flows: FlowSpec[],
    nexthops: (string | undefined)[],
  ): Promise<(boolean | undefined)[]> {
    this.lastResolveError = undefined;
    const out = new Array<boolean | undefined>(flows.length).fill(undefined);
    const adds = this.changes.filter((c) => c.kind === 'add' && c.active);
    if (adds.length === 0 || !this.adapter.capabilities.predictsMovedFlows) return out;
    for (const c of adds) {
      const idx = flows
        .map((f, i) => (f.dst === c.vip && nexthops[i] !== undefined ? i : -1))
        .filter((i) => i >= 0);
      if (idx.length === 0) continue;
      try {
        const r = await this.adapter.movedByAdd(
          c.vip,
          c.nexthop,
          idx.map((i) => flows[i] as FlowSpec),
        );
        idx.forEach((i, k) => (out[i] = (out[i] ?? false) || (r[k] ?? true)));
      } catch (err) {
        // Cannot tell which flows move: pin them all (safe, costs table entries).
        this.lastResolveError = `predicting moved flows: ${err instanceof Error ? err.message : String(err)}`;
        idx.forEach((i) => (out[i] = true));
      }
    }
    return out;
  }

  /** A VIP's SYN rate (per second). */
  synRateOf(vip: VipState): number {
    return this.mirror.rateOf(vip, this.vips.values());
  }

  /** The mirror's health: silent, collapsed, dropping, or ok, and which connection ends it carries. */
  mirrorHealth(): MirrorHealth {
    return this.mirror.health(this.vips.values());
  }

  /** A flow restored unresolved (seen before a stop, not looked up yet): queued for its look-up. */
  lookUpAgain(key: string): void {
    if (this.resolver.push({ key, seq: ++this.seq, at: this.o.clock.now() })) this.resolver.pump();
  }

  /** Live flows resolved to a nexthop of a VIP. */
  flowsOn(vip: string, nexthop: string): string[] {
    const id = this.o.registry.find(this.name, vip, nexthop);
    return id === undefined ? [] : this.o.flowTable.flowsOn(id);
  }

  /**
   * Flows with a pin wanted on a nexthop of a VIP (lingering pins of closed connections left out unless
   * asked).
   */
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
   * What is left on a nexthop of a VIP: tracked connections by liveness, and pins whose
   * connection flowpin does not track (adopted after a restart, or aged out of the table):
   * those are connections of unknown state too. Lingering pins of closed connections are not.
   */
  leftOn(
    vip: string,
    nexthop: string,
  ): { live: number; unknown: number; pinned: number; untrackedPins: number } {
    let live = 0;
    let unknown = 0;
    const tracked = new Set<string>();
    for (const key of this.flowsOn(vip, nexthop)) {
      tracked.add(idOfKey(key));
      if (this.livenessOf(key) === 'live') live++;
      else unknown++;
    }
    let pinned = 0;
    let untrackedPins = 0;
    const lingering = new Set(this.lingering.map(([f]) => flowId(f)));
    for (const [id, p] of this.reconciler.desired) {
      if (p.nexthop !== nexthop || p.flow.dst !== vip || lingering.has(id)) continue;
      pinned++;
      if (!tracked.has(id)) untrackedPins++;
    }
    return { live, unknown: unknown + untrackedPins, pinned, untrackedPins };
  }

  /**
   * Asks for pins on these flows (live and resolved to `nexthop`), most recently seen
   * first: where the table cannot hold them all, those are the likeliest to be still alive.
   */
  pinFlows(keys: string[], nexthop: string, owner: string): void {
    const now = this.o.clock.now();
    const seen = keys
      .map((key) => ({ key, at: this.o.flowTable.lastSeen(key) ?? 0 }))
      .sort((a, b) => b.at - a.at);
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

  /**
   * Every event up to `mark` is resolved (or dropped) and its pin decision made: looked up,
   * and (observe/both) its reply seen, or its reply timed out and its fallback done or counted.
   */
  resolvedThrough(mark: number): boolean {
    // A queued flow answered meanwhile (its reply), or ended, needs no look-up to be settled.
    return (
      this.resolver.queue.doneThrough(mark, (p) => this.o.flowTable.nexthopOf(p.key) === UNRESOLVED) &&
      this.replies.repliesThrough(mark)
    );
  }

  /** No SYN up to `seq` is waiting for its reply (it was seen, or timed out and was handed on). */
  repliesThrough(seq: number): boolean {
    return this.replies.repliesThrough(seq);
  }

  /** SYNs waiting for their reply (observe/both). */
  get awaitingReplies(): number {
    return this.replies.size;
  }

  /**
   * Registers a progress listener (a resolve batch ended, a reply came, a round ended); returns its removal.
   */
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

  /**
   * Holds the start of new look-ups for `token`; answers to look-ups in flight are then not applied (asked
   * again after the release).
   */
  hold(token: string): void {
    this.resolver.hold(token);
  }

  release(token: string): void {
    this.resolver.release(token);
  }

  get held(): boolean {
    return this.resolver.held;
  }

  /**
   * A flow pushed out of the full flow table: flowpin saw it and cannot keep it any more, so
   * the changes that may move it count it at risk (with the shed SYNs it can no longer name).
   * One whose pin is programmed stays protected by the switch, and is not counted.
   */
  forgetFlow(key: string, nexthopId: number): void {
    this.adoptedKeys.delete(key);
    const flow = specOf(key);
    if (!this.vips.has(flow.dst)) return;
    const nh = nexthopId === UNRESOLVED ? undefined : this.o.registry.ref(nexthopId)?.nexthop;
    if (nh !== undefined && this.reconciler.isProgrammed(flowId(flow), nh)) return;
    this.risks.forgotten(flow.dst, nh);
  }

  /** A tracked flow aged past the connection lifetime: it is taken as ended, and its pin goes. */
  agedOut(key: string): void {
    this.adoptedKeys.delete(key);
    const flow = specOf(key);
    if (this.reconciler.has(flow)) this.reconciler.unwant(flow);
  }

  /**
   * Flows of a VIP flowpin can no longer name: SYNs shed beyond what it keeps, flows pushed out of the full
   * flow table.
   */
  shedForgottenOn(vip: string, nexthop?: string): number {
    return this.risks.forgottenOn(vip, nexthop);
  }

  /** Flows of a VIP whose SYN was shed (the resolve queue was full) and not seen since. */
  shedOn(vip: string): string[] {
    return this.risks.shedOn(vip);
  }

  /** Live flows of a VIP whose nexthop the switch could not tell: any change of the VIP may move them. */
  unresolvedOn(vip: string): string[] {
    return this.risks.unresolvedOn(vip, (key) => this.o.flowTable.nexthopOf(key) === UNRESOLVED);
  }

  /**
   * Server resets seen for a VIP in [from, to) (controller clock); null if none was ever mirrored on this
   * switch.
   */
  serverResetsBetween(vip: string, from: number, to: number): number | null {
    return this.risks.serverResetsBetween(vip, from, to);
  }

  /**
   * Queued or awaited flows of a VIP accepted after `after` and up to `through` (their nexthop is not known
   * yet).
   */
  queuedOn(vip: string, after: number, through: number): string[] {
    // Still unknown: a flow the reply already named (both: it is looked up too, to compare) is not.
    const keys = new Set(
      this.resolver.queue
        .between(after, through)
        .filter((p) => this.o.flowTable.nexthopOf(p.key) === UNRESOLVED && specOf(p.key).dst === vip)
        .map((p) => p.key),
    );
    for (const p of this.replies.pending()) {
      if (p.seq > through) break;
      if (p.seq > after && this.o.flowTable.nexthopOf(p.key) === UNRESOLVED && specOf(p.key).dst === vip)
        keys.add(p.key);
    }
    return [...keys];
  }

  notifyProgress(): void {
    for (const fn of [...this.progress]) fn();
  }

  /** A SYN up to some mark got its answer (the reply observer's word): the barrier may move on. */
  progressed(): void {
    this.notifyProgress();
  }

  private emit(r: Resolution): void {
    for (const fn of this.watchers) fn(r);
  }
}

/** A tracked connection's liveness from what the mirror carries and which side has closed. */
export function classify(source: LivenessSource, halfClosedBy: Side | null): Liveness {
  if (source === 'both-ways') return 'live';
  // One side's ends only: an open connection's first FIN (or RST) would show; once half-closed, the other
  // side's FIN would not.
  if (source === 'client-side' || source === 'server-side') return halfClosedBy === null ? 'live' : 'unknown';
  return 'unknown';
}

export type { AtRiskReason };
