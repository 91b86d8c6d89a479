// One switch inside the controller: its VIPs, the queue of flows waiting for their nexthop,
// the resolver loop (batched look-ups through the adapter, a bounded number in flight), the
// pin policy applied to each resolved flow, and the reconciler that owns every write to the
// switch. Every accepted SYN gets a sequence number: a change takes a mark and waits until
// every event up to it is resolved (never until the resolver is idle). Holds pause the start
// of new look-ups while a group change is being applied; each change holds with its own
// token, so one change's release never ends another's hold. Resolution watchers let a
// change see the flows resolved after its mark (its change window).
// Resolution (config `resolution`): `lookup` asks the adapter for every new flow; `observe`
// waits for the server's mirrored reply (SYN-ACK from the VIP), whose source MAC or mirror port
// names the server (server-identity.ts), and asks nothing; `both` does both, counts where they
// disagree, and lets the observation win. A SYN whose reply is not seen within replyTimeoutMs
// falls back to a look-up (where the adapter can) or is counted unresolved, so the barrier
// (every SYN up to a mark answered, fallen back, or counted) stays bounded.

import { LRUCache } from 'lru-cache';
import { isSynAck } from '../mirror-receiver/flow-event.js';
import { parseTuple, reverseTuple } from '../mirror-receiver/tuple.js';
import type { FlowSpec, SwitchAdapter } from '../switch-adapters/contract.js';
import { flowId } from '../switch-adapters/contract.js';
import { isSwitchError } from '../switch-adapters/errors.js';
import type { Clock } from './clock.js';
import { flowKey, type FlowTable, UNRESOLVED } from './flow-table.js';
import type { ControllerMetrics } from './metrics.js';
import type { NexthopRegistry } from './nexthop-registry.js';
import { pinReason, type ChangeView, type PinMode } from './pin-policy.js';
import { Reconciler, type AtRiskReason } from './reconciler.js';
import { purgeIfStale } from './flow-table.js';
import { RecentCounts } from './recent-counts.js';
import { ResolveQueue, type Pending } from './resolve-queue.js';
import type { ServerIdentityMap, UnknownServerReason } from './server-identity.js';

export type ResolutionMode = 'lookup' | 'observe' | 'both';

/** Where a runtime logs what an operator should see (a pino logger fits). */
export interface RuntimeLog {
  warn(obj: object, msg: string): void;
}

/** How long a shed SYN's flow is counted at risk without being seen again. */
const SHED_TTL_MS = 3_600_000;

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
  /** When its SYN arrived (controller clock, ms). */
  synAt?: number;
  /** Learnt from the server's mirrored reply (exact), not from a look-up. */
  observed?: boolean;
}

/** What a mirrored segment did, for counters. */
export type SegmentResult = 'syn' | 'end' | 'ignored' | 'shed' | 'unknown-vip' | 'reply' | 'reply-unknown' | 'server-reset';

/** Server resets kept per VIP (their times), for the changes' figures. */
const SERVER_RESETS_KEPT = 100_000;

/**
 * Times pushed in clock order, the last `max` of them kept (dropped a block at a time, so a
 * push stays cheap); counts in a range by binary search (read every second by the dashboard).
 */
class RecentTimes {
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
  /**
   * SYNs shed (queue full) and not seen again, by flow key -> VIP: every change of the VIP
   * counts them at risk. Bounded like the flow table (`maxShed`); a key pushed out is still
   * counted, without its name, in shedForgotten.
   */
  private readonly shedKeys: LRUCache<string, string>;
  /** Flows flowpin saw and can no longer name, per `VIP|nexthop` ('' where unknown), over the last hour. */
  private readonly shedForgotten = new RecentCounts(SHED_TTL_MS);
  /** Times of server resets (RST from a VIP) seen on the reply mirror, per VIP. */
  private readonly serverResets = new Map<string, RecentTimes>();
  /** Flows the switch could not resolve, per VIP (pruned when read: ended or aged flows drop out). */
  private readonly unresolvedKeys = new Map<string, Set<string>>();
  private rateStart = 0;
  private syns = 0;
  private synsAtWindow = 0;
  private synRate = 0;
  private usualRate = 0;
  private lastSynAt: number | undefined;
  private readonly startedAt: number;
  readonly resolution: ResolutionMode;
  /** SYNs waiting for their server's reply (observe/both), in arrival (sequence) order. */
  private readonly awaiting = new Map<string, Pending>();
  private replyTimer: unknown;
  private identityTimer: unknown;
  private identityRefreshing = false;
  private identityAskedAt = -Infinity;
  /**
   * both: look-up answers given while the flow's reply is still awaited. The flow is resolved,
   * but its pin waits for the reply (which wins) or the reply timeout: a pin on a wrong answer
   * would itself move the connection.
   */
  private readonly lookedUp = new Map<string, { nexthop: string; id: number; movedByAdd: boolean | undefined }>();
  /** Flows resolved by observation lately (both: a later look-up answer is compared, never applied). */
  private readonly observedKeys = new LRUCache<string, true>({ max: 200_000 });

  constructor(private readonly o: SwitchRuntimeOptions) {
    this.shedKeys = new LRUCache<string, string>({
      max: o.maxShed ?? 100_000,
      ttl: SHED_TTL_MS,
      dispose: (vip, _key, reason) => {
        if (reason === 'evict') this.forgotten(vip, undefined);
      },
    });
    this.name = o.name;
    this.id = o.id;
    this.adapter = o.adapter;
    this.queue = new ResolveQueue(o.queueCapacity);
    for (const v of o.vips) this.vips.set(v.address, { address: v.address, nexthops: new Set(v.nexthops), members: new Set(), syns: 0, synRate: 0, synsAtWindow: 0 });
    this.reconciler = new Reconciler({ switchName: o.name, adapter: o.adapter, metrics: o.metrics, idleTimeoutS: o.pinIdleTimeoutS, clock: o.clock, backoffMaxMs: o.retryMaxMs });
    this.rateStart = o.clock.now();
    this.startedAt = this.rateStart;
    this.resolution = o.resolution ?? 'lookup';
    if (this.resolution !== 'lookup' && o.identity === undefined) throw new Error(`switch ${o.name}: resolution ${this.resolution} needs a server identity map`);
  }

  get replyTimeoutMs(): number {
    return this.o.replyTimeoutMs ?? 1000;
  }

  /** The server identity map (observe/both). */
  get identity(): ServerIdentityMap | undefined {
    return this.o.identity;
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
    if (this.resolution !== 'lookup') await this.refreshIdentities();
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
    if (this.replyTimer !== undefined) this.o.clock.cancel(this.replyTimer);
    if (this.identityTimer !== undefined) this.o.clock.cancel(this.identityTimer);
  }

  /**
   * Re-reads the servers the switch knows (MAC and port of each nexthop) into the identity
   * map, then again every identityRefreshS. A failed read keeps the last map and is reported.
   */
  async refreshIdentities(): Promise<void> {
    const map = this.o.identity;
    if (map === undefined || this.identityRefreshing) return;
    if (this.identityTimer !== undefined) this.o.clock.cancel(this.identityTimer);
    this.identityTimer = undefined;
    this.identityRefreshing = true;
    this.identityAskedAt = this.o.clock.now();
    try {
      if (this.adapter.serverIdentities !== undefined) map.learn(await this.adapter.serverIdentities(), this.o.clock.now());
    } catch (err) {
      map.lastError = err instanceof Error ? err.message : String(err);
      this.o.log?.warn({ switch: this.name, err: map.lastError }, 'reading server identities failed');
    } finally {
      this.identityRefreshing = false;
    }
    if (!this.stopped && this.adapter.serverIdentities !== undefined) {
      this.identityTimer = this.o.clock.schedule((this.o.identityRefreshS ?? 30) * 1000, () => {
        this.identityTimer = undefined;
        void this.refreshIdentities();
      });
    }
  }

  /**
   * A decoded mirror event for this switch. `from` carries the segment's source address and
   * what the mirror says of its sender (MAC, port): a SYN-ACK from a VIP is a server's reply.
   * Returns what it did, for counters.
   */
  onSegment(tuple: string, dst: string, flags: number, from?: { src: string; srcMac?: string | undefined; port?: number | undefined }): SegmentResult {
    if (from !== undefined && isSynAck(flags) && this.vips.has(from.src)) return this.onReply(reverseTuple(tuple), from.src, from.srcMac, from.port);
    if (from !== undefined && (flags & RST) !== 0 && this.vips.has(from.src)) return this.onServerReset(from.src);
    const vip = this.vips.get(dst);
    if (vip === undefined) return 'unknown-vip';
    const key = flowKey(this.id, tuple);
    if ((flags & (FIN | RST)) !== 0) {
      this.shedKeys.delete(key);
      this.awaiting.delete(key);
      this.lookedUp.delete(key);
      if (!this.o.flowTable.end(key)) return 'ignored';
      this.reconciler.unwant(specOf(key));
      return 'end';
    }
    if ((flags & SYN) === 0 || (flags & ACK) !== 0) return 'ignored';
    if (this.o.flowTable.has(key)) return 'ignored';
    const now = this.o.clock.now();
    this.countSyn(vip, now);
    const seq = ++this.seq;
    const p: Pending = { key, seq, at: now };
    const observe = this.resolution === 'observe';
    if (observe ? this.awaiting.size >= this.o.queueCapacity : !this.queue.push(p)) {
      // Past the bound the oldest key is pushed out (and counted); one already past its age is not a flow to count.
      purgeIfStale(this.shedKeys);
      this.shedKeys.set(key, dst);
      return 'shed';
    }
    // both: awaited too where there is room (else the look-up alone answers).
    if (this.resolution !== 'lookup' && this.awaiting.size < this.o.queueCapacity) this.await(p);
    this.shedKeys.delete(key);
    this.o.flowTable.touch(key);
    if (!observe) this.pump();
    return 'syn';
  }

  private await(p: Pending): void {
    this.awaiting.set(p.key, p);
    if (this.replyTimer === undefined) this.scheduleReplySweep(p.at);
  }

  private scheduleReplySweep(oldestAt: number): void {
    const due = Math.max(0, oldestAt + (this.o.replyTimeoutMs ?? 1000) - this.o.clock.now());
    this.replyTimer = this.o.clock.schedule(due, () => {
      this.replyTimer = undefined;
      this.sweepReplies();
    });
  }

  /**
   * SYNs whose reply did not come in time: looked up where the adapter can (observe), left to
   * their look-up (both), or counted unresolved. Nothing waits past the timeout.
   */
  private sweepReplies(): void {
    const now = this.o.clock.now();
    const timeout = this.o.replyTimeoutMs ?? 1000;
    const fallback: Pending[] = [];
    let changed = false;
    for (const [key, p] of this.awaiting) {
      if (p.at + timeout > now) break;
      this.awaiting.delete(key);
      changed = true;
      if (this.o.flowTable.nexthopOf(key) !== UNRESOLVED) {
        this.o.metrics.replyTimeouts.inc({ switch: this.name, then: 'resolved' });
        // both: no reply came; the look-up's answer stands, and its pin is decided now.
        const l = this.lookedUp.get(key);
        if (l !== undefined) {
          this.lookedUp.delete(key);
          this.apply(key, p.seq, p.at, l.nexthop, l.id, l.movedByAdd, false);
        }
        continue;
      }
      if (this.resolution === 'both' || this.adapter.capabilities.resolvesNexthop) {
        this.o.metrics.replyTimeouts.inc({ switch: this.name, then: 'lookup' });
        if (this.resolution === 'observe') fallback.push(p);
        continue;
      }
      this.o.metrics.replyTimeouts.inc({ switch: this.name, then: 'unresolved' });
      this.markUnresolved(p);
    }
    // Back into the look-up queue in sequence order, so the barrier still sees the oldest first.
    if (fallback.length > 0) this.queue.requeue(fallback);
    const first = this.awaiting.values().next();
    if (!first.done) this.scheduleReplySweep(first.value.at);
    if (changed) this.notifyProgress();
    this.pump();
  }

  private markUnresolved(p: Pending): void {
    const f = specOf(p.key);
    this.o.metrics.resolved.inc({ switch: this.name, result: 'unknown' });
    let set = this.unresolvedKeys.get(f.dst);
    if (set === undefined) this.unresolvedKeys.set(f.dst, (set = new Set()));
    set.add(p.key);
    this.emit({ key: p.key, seq: p.seq, vip: f.dst, nexthop: undefined, pinOwner: undefined });
  }

  /** A server's mirrored reply to flow `tuple` (client to VIP): the server that holds the connection. */
  /** A server reset a connection (RST from a VIP, where the reply session mirrors RST too). */
  private onServerReset(vip: string): SegmentResult {
    let times = this.serverResets.get(vip);
    if (times === undefined) this.serverResets.set(vip, (times = new RecentTimes(SERVER_RESETS_KEPT)));
    times.push(this.o.clock.now());
    this.o.metrics.serverResets.inc({ switch: this.name, vip });
    return 'server-reset';
  }

  /** Server resets seen for a VIP in [from, to) (controller clock); null if none was ever mirrored on this switch. */
  serverResetsBetween(vip: string, from: number, to: number): number | null {
    if (this.serverResets.size === 0) return null;
    return this.serverResets.get(vip)?.countBetween(from, to) ?? 0;
  }

  private onReply(tuple: string, vipAddr: string, mac: string | undefined, port: number | undefined): SegmentResult {
    const key = flowKey(this.id, tuple);
    const current = this.o.flowTable.nexthopOf(key);
    if (this.resolution === 'lookup' || current === undefined) {
      // Not observing here, or a reply to a SYN flowpin did not see (or one that ended): nothing to learn.
      this.o.metrics.replies.inc({ switch: this.name, result: this.resolution === 'lookup' ? 'ignored' : 'no-syn' });
      return 'ignored';
    }
    const vip = this.vips.get(vipAddr) as VipState;
    const who = (this.o.identity as ServerIdentityMap).lookup(mac, port);
    let nh = who.nexthop;
    let why: UnknownServerReason | 'not-a-nexthop' | undefined = who.nexthop === undefined ? who.why : undefined;
    if (nh !== undefined && !vip.nexthops.has(nh) && !vip.members.has(nh)) {
      why = 'not-a-nexthop';
      nh = undefined;
    }
    if (nh === undefined) {
      // Never guessed: counted, the map re-read (at most once a second); the SYN's timeout still runs.
      this.o.metrics.replies.inc({ switch: this.name, result: 'unknown-server' });
      this.o.metrics.unknownServer.inc({ switch: this.name, reason: why ?? 'no-identity' });
      if (this.o.clock.now() - this.identityAskedAt >= 1000) void this.refreshIdentities();
      return 'reply-unknown';
    }
    const p = this.awaiting.get(key);
    if (p !== undefined) {
      this.awaiting.delete(key);
      this.o.metrics.synToServer.observe({ switch: this.name, source: 'observe' }, (this.o.clock.now() - p.at) / 1000);
    }
    const id = this.o.registry.intern(this.name, vipAddr, nh);
    vip.nexthops.add(nh);
    const looked = this.lookedUp.get(key);
    this.lookedUp.delete(key);
    if (current === id) {
      this.o.metrics.replies.inc({ switch: this.name, result: this.observedKeys.has(key) ? 'duplicate' : 'agree' });
      this.observedKeys.set(key, true);
      // The look-up's pin decision waited for this reply.
      if (looked !== undefined) this.apply(key, p?.seq ?? this.seq, p?.at ?? this.o.clock.now(), nh, id, looked.movedByAdd, true);
      if (p !== undefined) this.notifyProgress();
      return 'reply';
    }
    if (current !== UNRESOLVED) {
      const before = this.o.registry.ref(current)?.nexthop;
      this.disagree(key, before, nh);
      // The observation wins: a pin wanted on the looked-up nexthop goes, the observed one's policy applies.
      const flow = specOf(key);
      const want = this.reconciler.desired.get(flowId(flow));
      if (want !== undefined && want.nexthop !== nh) this.reconciler.unwant(flow);
    } else this.o.metrics.replies.inc({ switch: this.name, result: 'resolved' });
    this.observedKeys.set(key, true);
    this.apply(key, p?.seq ?? this.seq, p?.at ?? this.o.clock.now(), nh, id, undefined, true);
    if (p !== undefined) this.notifyProgress();
    return 'reply';
  }

  private disagree(key: string, lookedUp: string | undefined, observed: string): void {
    const f = specOf(key);
    this.o.metrics.replies.inc({ switch: this.name, result: 'disagree' });
    this.o.metrics.disagreements.inc({ switch: this.name });
    this.o.log?.warn({ switch: this.name, flow: flowId(f), lookup: lookedUp ?? null, observed }, 'look-up and observed server disagree; the observation wins');
  }

  /** Records a flow's nexthop, applies the pin policy and tells the watchers. */
  private apply(key: string, seq: number, at: number, nh: string, id: number, movedByAdd: boolean | undefined, observed: boolean): void {
    const f = specOf(key);
    if (!this.o.flowTable.resolve(key, id)) return;
    const owner = pinReason(this.o.pinMode, this.changes, { vip: f.dst, nexthop: nh, movedByAdd });
    if (owner !== undefined) this.reconciler.want({ flow: f, nexthop: nh, reason: owner, since: at });
    this.emit({ key, seq, vip: f.dst, nexthop: nh, pinOwner: owner, synAt: at, ...(observed ? { observed: true } : {}) });
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

  /**
   * Every event up to `mark` is resolved (or dropped) and its pin decision made: looked up,
   * and (observe/both) its reply seen, or its reply timed out and its fallback done or counted.
   */
  resolvedThrough(mark: number): boolean {
    if (!this.queue.doneThrough(mark)) return false;
    const first = this.awaiting.values().next();
    return first.done || first.value.seq > mark;
  }

  /** No SYN up to `seq` is waiting for its reply (it was seen, or timed out and was handed on). */
  repliesThrough(seq: number): boolean {
    const first = this.awaiting.values().next();
    return first.done || first.value.seq > seq;
  }

  /** SYNs waiting for their reply (observe/both). */
  get awaitingReplies(): number {
    return this.awaiting.size;
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

  /**
   * A flow pushed out of the full flow table: flowpin saw it and cannot keep it any more, so
   * the changes that may move it count it at risk (with the shed SYNs it can no longer name).
   * One whose pin is programmed stays protected by the switch, and is not counted.
   */
  forgetFlow(key: string, nexthopId: number): void {
    const flow = specOf(key);
    if (!this.vips.has(flow.dst)) return;
    const nh = nexthopId === UNRESOLVED ? undefined : this.o.registry.ref(nexthopId)?.nexthop;
    if (nh !== undefined && this.reconciler.isProgrammed(flowId(flow), nh)) return;
    this.forgotten(flow.dst, nh);
  }

  private forgotten(vip: string, nexthop: string | undefined): void {
    this.shedForgotten.add(`${vip}|${nexthop ?? ''}`, this.o.clock.now());
  }

  /** Flows of a VIP flowpin can no longer name: SYNs shed beyond what it keeps, flows pushed out of the full flow table. */
  shedForgottenOn(vip: string, nexthop?: string): number {
    // Flows of unknown nexthop may move with any change; the others only with a change of theirs (a drain) or any addition.
    const now = this.o.clock.now();
    let n = 0;
    for (const k of this.shedForgotten.keys()) {
      const bar = k.lastIndexOf('|');
      if (k.slice(0, bar) !== vip) continue;
      const nh = k.slice(bar + 1);
      if (nexthop === undefined || nh === '' || nh === nexthop) n += this.shedForgotten.sum(k, now);
    }
    return n;
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

  /** Queued or awaited flows of a VIP accepted after `after` and up to `through` (their nexthop is not known yet). */
  queuedOn(vip: string, after: number, through: number): string[] {
    const keys = new Set(this.queue.between(after, through).filter((p) => specOf(p.key).dst === vip).map((p) => p.key));
    for (const p of this.awaiting.values()) {
      if (p.seq > through) break;
      if (p.seq > after && this.o.flowTable.nexthopOf(p.key) === UNRESOLVED && specOf(p.key).dst === vip) keys.add(p.key);
    }
    return [...keys];
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
    // both: flows already observed are still looked up, to compare (the answer never applies).
    const live = batch.filter((p) => this.o.flowTable.nexthopOf(p.key) === UNRESOLVED || (this.resolution === 'both' && this.observedKeys.has(p.key)));
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
        // Observed meanwhile: the reply answered.
        if (this.o.flowTable.nexthopOf(p.key) !== UNRESOLVED) return;
        this.markUnresolved(p);
        return;
      }
      // Resolved meanwhile by something surer (a restored record, or the server's reply): an
      // answer given now may reflect a group that changed since the SYN, so it never overwrites.
      const current = this.o.flowTable.nexthopOf(p.key);
      if (current !== UNRESOLVED) {
        if (current !== undefined && this.observedKeys.has(p.key) && this.o.registry.ref(current)?.nexthop !== nh) this.disagree(p.key, nh, this.o.registry.ref(current)?.nexthop ?? '?');
        return;
      }
      this.o.metrics.resolved.inc({ switch: this.name, result: 'ok' });
      this.o.metrics.synToServer.observe({ switch: this.name, source: 'lookup' }, (this.o.clock.now() - p.at) / 1000);
      vip?.nexthops.add(nh);
      const id = this.o.registry.intern(this.name, f.dst, nh);
      if (this.awaiting.has(p.key)) {
        // both: the reply is still to come and wins; the pin waits for it (or its timeout).
        if (this.o.flowTable.resolve(p.key, id)) this.lookedUp.set(p.key, { nexthop: nh, id, movedByAdd: moved[i] });
        return;
      }
      this.apply(p.key, p.seq, p.at, nh, id, moved[i], false);
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
