// Resolution by observation: where the switch mirrors the servers' replies, a server's
// SYN-ACK (from the VIP) names the server that holds the connection, by its source MAC or the
// mirror port it was copied on (server-identity.ts). SYNs wait here for their reply; a reply
// resolves its flow; `both` also takes look-up answers, counts where the two disagree, and lets
// the observation win (a look-up answer's pin waits for the reply, bounded by the reply
// timeout). A SYN whose reply is not seen in time is handed on: to a look-up (where the switch
// can answer one), or counted unresolved, so nothing waits past the timeout. The server map is
// re-read every identityRefreshS and at once (at most once a second) on an unknown MAC.

import { LRUCache } from 'lru-cache';
import type { SwitchAdapter } from '../switch-adapters/contract.js';
import { flowId } from '../switch-adapters/contract.js';
import type { Clock } from './clock.js';
import { flowKey, type FlowTable, UNRESOLVED } from './flow-table.js';
import type { ControllerMetrics } from './metrics.js';
import type { NexthopRegistry } from './nexthop-registry.js';
import type { Reconciler } from './reconciler.js';
import type { Pending } from './resolve-queue.js';
import type { ServerIdentityMap, UnknownServerReason } from './server-identity.js';
import { specOf } from './flow-spec.js';

export type ResolutionMode = 'lookup' | 'observe' | 'both';

/** What the observer needs of its switch. */
export interface ReplyHost {
  readonly name: string;
  readonly id: number;
  readonly adapter: SwitchAdapter;
  readonly flowTable: FlowTable;
  readonly registry: NexthopRegistry;
  readonly metrics: ControllerMetrics;
  readonly reconciler: Reconciler;
  readonly clock: Clock;
  readonly log?: { warn(obj: object, msg: string): void } | undefined;
  /** Whether `nexthop` is one of the VIP's nexthops (configured, added or in its group). */
  isNexthopOf(vip: string, nexthop: string): boolean;
  noteNexthop(vip: string, nexthop: string): void;
  /** Records a flow's nexthop and applies the pin policy. */
  apply(
    key: string,
    seq: number,
    at: number,
    nh: string,
    id: number,
    movedByAdd: boolean | undefined,
    observed: boolean,
  ): void;
  markUnresolved(p: Pending): void;
  /** Hands flows whose reply did not come to the look-up, in sequence order. */
  lookUp(ps: Pending[]): void;
  /** A SYN up to some mark got its answer (the barrier may move on). */
  progressed(): void;
  /** The latest sequence number (for replies to SYNs no longer awaited). */
  readonly seq: number;
}

export interface ReplyOptions {
  resolution: ResolutionMode;
  replyTimeoutMs: number;
  identity: ServerIdentityMap | undefined;
  identityRefreshS: number;
  capacity: number;
}

export class ReplyObserver {
  /** SYNs waiting for their server's reply, in arrival (sequence) order. */
  private readonly awaiting = new Map<string, Pending>();
  /**
   * both: look-up answers given while the flow's reply is still awaited. The flow is resolved,
   * but its pin waits for the reply (which wins) or the reply timeout: a pin on a wrong answer
   * would itself move the connection.
   */
  private readonly lookedUp = new Map<
    string,
    { nexthop: string; id: number; movedByAdd: boolean | undefined }
  >();
  /** Flows resolved by observation lately (both: a later look-up answer is compared, never applied). */
  private readonly observedKeys = new LRUCache<string, true>({ max: 200_000 });
  private replyTimer: unknown;
  private identityTimer: unknown;
  private identityRefreshing = false;
  private identityAskedAt = -Infinity;
  private stopped = false;

  constructor(
    private readonly h: ReplyHost,
    private readonly o: ReplyOptions,
  ) {}

  stop(): void {
    this.stopped = true;
    if (this.replyTimer !== undefined) this.h.clock.cancel(this.replyTimer);
    if (this.identityTimer !== undefined) this.h.clock.cancel(this.identityTimer);
  }

  get size(): number {
    return this.awaiting.size;
  }

  get full(): boolean {
    return this.awaiting.size >= this.o.capacity;
  }

  /** Awaited SYNs, oldest first. */
  pending(): IterableIterator<Pending> {
    return this.awaiting.values();
  }

  isAwaiting(key: string): boolean {
    return this.awaiting.has(key);
  }

  /** Learnt by observation lately (both: a look-up answer is then only compared). */
  observed(key: string): boolean {
    return this.observedKeys.has(key);
  }

  /** No SYN up to `seq` is waiting for its reply. */
  repliesThrough(seq: number): boolean {
    const first = this.awaiting.values().next();
    return first.done === true || first.value.seq > seq;
  }

  /** A SYN now waits for its reply. */
  await(p: Pending): void {
    this.awaiting.set(p.key, p);
    if (this.replyTimer === undefined) this.scheduleSweep(p.at);
  }

  /** The flow ended: nothing to wait for. */
  forget(key: string): void {
    this.awaiting.delete(key);
    this.lookedUp.delete(key);
  }

  /**
   * both: a look-up answered while the reply is still awaited. The flow is resolved; its pin
   * waits for the reply or its timeout. Returns false where the reply is no longer awaited.
   */
  holdLookup(key: string, nexthop: string, id: number, movedByAdd: boolean | undefined): boolean {
    if (!this.awaiting.has(key)) return false;
    if (this.h.flowTable.resolve(key, id)) this.lookedUp.set(key, { nexthop, id, movedByAdd });
    return true;
  }

  /** A look-up answer disagrees with an observation (both): counted and logged; the observation stands. */
  disagree(key: string, lookedUp: string | undefined, observed: string): void {
    const f = specOf(key);
    this.h.metrics.replies.inc({ switch: this.h.name, result: 'disagree' });
    this.h.metrics.disagreements.inc({ switch: this.h.name });
    this.h.log?.warn(
      { switch: this.h.name, flow: flowId(f), lookup: lookedUp ?? null, observed },
      'look-up and observed server disagree; the observation wins',
    );
  }

  /**
   * Re-reads the servers the switch knows (MAC and port of each nexthop) into the identity
   * map, then again every identityRefreshS. A failed read keeps the last map and is reported.
   */
  async refreshIdentities(): Promise<void> {
    const map = this.o.identity;
    if (map === undefined || this.identityRefreshing) return;
    if (this.identityTimer !== undefined) this.h.clock.cancel(this.identityTimer);
    this.identityTimer = undefined;
    this.identityRefreshing = true;
    this.identityAskedAt = this.h.clock.now();
    try {
      if (this.h.adapter.capabilities.knowsServers)
        map.learn(await this.h.adapter.serverIdentities(), this.h.clock.now());
    } catch (err) {
      map.lastError = err instanceof Error ? err.message : String(err);
      this.h.log?.warn({ switch: this.h.name, err: map.lastError }, 'reading server identities failed');
    } finally {
      this.identityRefreshing = false;
    }
    if (!this.stopped && this.h.adapter.capabilities.knowsServers) {
      this.identityTimer = this.h.clock.schedule(this.o.identityRefreshS * 1000, () => {
        this.identityTimer = undefined;
        void this.refreshIdentities();
      });
    }
  }

  /** A server's mirrored reply to flow `tuple` (client to VIP): the server that holds the connection. */
  onReply(
    tuple: string,
    vip: string,
    mac: string | undefined,
    port: number | undefined,
  ): 'reply' | 'reply-unknown' | 'ignored' {
    const h = this.h;
    const key = flowKey(h.id, tuple);
    const current = h.flowTable.nexthopOf(key);
    if (this.o.resolution === 'lookup' || current === undefined) {
      // Not observing here, or a reply to a SYN flowpin did not see (or one that ended): nothing to learn.
      h.metrics.replies.inc({
        switch: h.name,
        result: this.o.resolution === 'lookup' ? 'ignored' : 'no-syn',
      });
      return 'ignored';
    }
    // The reply's family and VIP narrow a MAC or port several nexthops share (a dual-stack server).
    const who = (this.o.identity as ServerIdentityMap).lookup(mac, port, {
      family: vip.includes(':') ? 6 : 4,
      isNexthop: (nh) => h.isNexthopOf(vip, nh),
    });
    let nh = who.nexthop;
    let why: UnknownServerReason | 'not-a-nexthop' | undefined =
      who.nexthop === undefined ? who.why : undefined;
    if (nh !== undefined && !h.isNexthopOf(vip, nh)) {
      why = 'not-a-nexthop';
      nh = undefined;
    }
    if (nh === undefined) {
      // Never guessed: counted, the map re-read (at most once a second); the SYN's timeout still runs.
      h.metrics.replies.inc({ switch: h.name, result: 'unknown-server' });
      h.metrics.unknownServer.inc({ switch: h.name, reason: why ?? 'no-identity' });
      if (h.clock.now() - this.identityAskedAt >= 1000) void this.refreshIdentities();
      return 'reply-unknown';
    }
    const p = this.awaiting.get(key);
    if (p !== undefined) {
      this.awaiting.delete(key);
      h.metrics.synToServer.observe({ switch: h.name, source: 'observe' }, (h.clock.now() - p.at) / 1000);
    }
    const id = h.registry.intern(h.name, vip, nh);
    h.noteNexthop(vip, nh);
    const looked = this.lookedUp.get(key);
    this.lookedUp.delete(key);
    const seq = p?.seq ?? h.seq;
    const at = p?.at ?? h.clock.now();
    if (current === id) {
      h.metrics.replies.inc({ switch: h.name, result: this.observedKeys.has(key) ? 'duplicate' : 'agree' });
      this.observedKeys.set(key, true);
      // The look-up's pin decision waited for this reply.
      if (looked !== undefined) h.apply(key, seq, at, nh, id, looked.movedByAdd, true);
      if (p !== undefined) h.progressed();
      return 'reply';
    }
    if (current !== UNRESOLVED) {
      this.disagree(key, h.registry.ref(current)?.nexthop, nh);
      // The observation wins: a pin wanted on the looked-up nexthop goes, the observed one's policy applies.
      const flow = specOf(key);
      const want = h.reconciler.desired.get(flowId(flow));
      if (want !== undefined && want.nexthop !== nh) h.reconciler.unwant(flow);
    } else h.metrics.replies.inc({ switch: h.name, result: 'resolved' });
    this.observedKeys.set(key, true);
    h.apply(key, seq, at, nh, id, undefined, true);
    if (p !== undefined) h.progressed();
    return 'reply';
  }

  private scheduleSweep(oldestAt: number): void {
    const due = Math.max(0, oldestAt + this.o.replyTimeoutMs - this.h.clock.now());
    this.replyTimer = this.h.clock.schedule(due, () => {
      this.replyTimer = undefined;
      this.sweep();
    });
  }

  /**
   * SYNs whose reply did not come in time: looked up where the adapter can (observe), left to
   * their look-up (both), or counted unresolved. Nothing waits past the timeout.
   */
  private sweep(): void {
    const h = this.h;
    const now = h.clock.now();
    const fallback: Pending[] = [];
    let changed = false;
    for (const [key, p] of this.awaiting) {
      if (p.at + this.o.replyTimeoutMs > now) break;
      this.awaiting.delete(key);
      changed = true;
      if (h.flowTable.nexthopOf(key) !== UNRESOLVED) {
        h.metrics.replyTimeouts.inc({ switch: h.name, then: 'resolved' });
        // both: no reply came; the look-up's answer stands, and its pin is decided now.
        const l = this.lookedUp.get(key);
        if (l !== undefined) {
          this.lookedUp.delete(key);
          h.apply(key, p.seq, p.at, l.nexthop, l.id, l.movedByAdd, false);
        }
        continue;
      }
      if (this.o.resolution === 'both' || h.adapter.capabilities.resolvesNexthop) {
        h.metrics.replyTimeouts.inc({ switch: h.name, then: 'lookup' });
        // observe, or both where the look-up queue had no room for it: looked up now.
        if (this.o.resolution === 'observe' || p.queued === false) fallback.push(p);
        continue;
      }
      h.metrics.replyTimeouts.inc({ switch: h.name, then: 'unresolved' });
      h.markUnresolved(p);
    }
    // Back into the look-up queue in sequence order, so the barrier still sees the oldest first.
    h.lookUp(fallback);
    const first = this.awaiting.values().next();
    if (!first.done) this.scheduleSweep(first.value.at);
    if (changed) h.progressed();
  }
}
