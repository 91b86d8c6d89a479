// This instance's etcd lease, with a deadline of its own. etcd expires a lease when it has had
// no keep-alive for the lease's TTL ("A lease expires if the etcd cluster does not receive a
// keepAlive within a given TTL period", etcd API guide, "Obtaining leases"), counted on the
// server from when it processed the last one; the LeaseKeepAliveResponse's TTL is "the new
// time-to-live for the lease" (etcdserverpb/rpc.proto). A keep-alive is processed after it is
// sent, so the lease lives at least until send time + TTL of the last acknowledged one: that,
// less a margin (timer lateness, stopping work in flight), is `validUntil()`. Past it this
// instance can no longer be sure that no other took its switches: `uncertain` fires, at once,
// from a timer, whatever the network does.
//
// The npm etcd3 client's own keep-alive is not used for this: it counts from when a response
// ARRIVED and declares `lost` only after two TTLs without one (etcd3 1.1.2, lib/lease.js
// `keepalive()`), a TTL after etcd may have handed the switches to another instance. Here one
// keep-alive is in flight at a time (`keepaliveOnce`, with a gRPC deadline), sent every TTL/3
// as etcd's own Go client does (clientv3/lease.go: next keep-alive at TTL/3), and retried
// sooner after a failure.
//
// Events: `uncertain` (the deadline passed), `renewed` (sure again: a keep-alive acknowledged
// after `uncertain`), `gone` (etcd says the lease no longer exists: revoked or expired),
// `keepaliveFailed` (one keep-alive failed or timed out, and after how long; retried).

import { EventEmitter } from 'node:events';
import { EtcdLeaseInvalidError, type Etcd3, type Lease } from 'etcd3';

/** Milliseconds on a clock that does not jump (wall-clock scale, so times read alike in logs). */
export const monoNow = (): number => performance.timeOrigin + performance.now();

export interface HaLeaseOptions {
  ttlS: number;
  /** Taken off the deadline (default: a fifth of the TTL, at least 500 ms). */
  marginMs?: number;
  /** Keep-alive cadence (default TTL/3). */
  everyMs?: number;
  /** How long one keep-alive may take before it counts as failed (default TTL/8, at least 250 ms). */
  callTimeoutMs?: number;
  /** Retry after a failed keep-alive (default 100 ms), likely on another endpoint. */
  retryMs?: number;
  now?: () => number;
}

export class LeaseGoneError extends Error {
  override readonly name = 'LeaseGoneError';
}

export class HaLease extends EventEmitter<{
  uncertain: [];
  renewed: [];
  gone: [Error];
  keepaliveFailed: [Error, number];
}> {
  readonly ttlMs: number;
  readonly marginMs: number;
  readonly everyMs: number;
  private readonly retryMs: number;
  readonly callTimeoutMs: number;
  private readonly now: () => number;
  private lease: Lease | undefined;
  private leaseId = '';
  private until = 0;
  private sure = false;
  private closed = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private loopTimer: NodeJS.Timeout | undefined;
  /** Keep-alives acknowledged; the send time of the last acknowledged one. */
  acked = 0;
  lastAckedSentAt = 0;
  /** The last keep-alive's round trip, ms. */
  lastRoundTripMs = 0;

  constructor(
    private readonly client: Etcd3,
    opts: HaLeaseOptions,
  ) {
    super();
    this.ttlMs = opts.ttlS * 1000;
    this.marginMs = opts.marginMs ?? Math.max(500, this.ttlMs / 5);
    this.everyMs = opts.everyMs ?? this.ttlMs / 3;
    this.retryMs = opts.retryMs ?? 100;
    this.callTimeoutMs = opts.callTimeoutMs ?? Math.max(250, this.ttlMs / 8);
    this.now = opts.now ?? monoNow;
    if (this.marginMs >= this.ttlMs) throw new RangeError('the lease margin must be shorter than its TTL');
  }

  /** The lease's id (decimal, as etcd3 gives it); '' before grant(). */
  get id(): string {
    return this.leaseId;
  }

  /** The id as etcdctl prints it (hex). */
  get hexId(): string {
    return this.leaseId === '' ? '' : BigInt(this.leaseId).toString(16);
  }

  /** Until when this instance is sure its lease lives (last acked keep-alive's send time + TTL − margin). */
  validUntil(): number {
    return this.sure ? this.until : 0;
  }

  /** The deadline as last extended (kept once past it, for the log: when this instance stopped). */
  get deadline(): number {
    return this.until;
  }

  valid(): boolean {
    return this.sure && this.now() < this.until;
  }

  /** Grants the lease (deadline counted from when the grant was sent) and starts keeping it alive. */
  async grant(timeoutMs = this.ttlMs): Promise<string> {
    const sentAt = this.now();
    const lease = this.client.lease(this.ttlMs / 1000, {
      autoKeepAlive: false,
      deadline: new Date(Date.now() + timeoutMs),
    });
    this.lease = lease;
    const id = await lease.grant();
    this.leaseId = id;
    this.extend(sentAt, this.ttlMs);
    this.schedule(this.everyMs);
    return id;
  }

  /** Revokes the lease: etcd deletes every key bound to it at once. */
  async revoke(): Promise<void> {
    const lease = this.lease;
    this.close();
    if (lease !== undefined) await lease.revoke();
  }

  /** Stops keeping the lease alive (etcd expires it one TTL after the last keep-alive). */
  close(): void {
    this.closed = true;
    this.sure = false;
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.loopTimer);
    this.lease?.release();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.loopTimer);
    this.loopTimer = setTimeout(() => void this.keepAlive(), ms);
  }

  private async keepAlive(): Promise<void> {
    const lease = this.lease;
    if (this.closed || lease === undefined) return;
    const sentAt = this.now();
    try {
      // A short deadline: an endpoint that does not answer is left for another (etcd3 picks one at
      // random per call) well before the lease's deadline.
      const res = await lease.keepaliveOnce({ deadline: new Date(Date.now() + this.callTimeoutMs) });
      if (this.closed) return;
      this.lastRoundTripMs = this.now() - sentAt;
      const ttl = Number(res.TTL);
      if (!(ttl > 0)) throw new LeaseGoneError(`etcd lease ${this.hexId} has expired or was revoked`);
      this.extend(sentAt, ttl * 1000);
      this.schedule(this.everyMs);
    } catch (err) {
      if (this.closed) return;
      if (err instanceof LeaseGoneError || err instanceof EtcdLeaseInvalidError) {
        this.fail(err instanceof LeaseGoneError ? err : new LeaseGoneError(err.message));
        return;
      }
      this.emit('keepaliveFailed', err instanceof Error ? err : new Error(String(err)), this.now() - sentAt);
      this.schedule(this.retryMs);
    }
  }

  private extend(sentAt: number, ttlMs: number): void {
    const until = sentAt + ttlMs - this.marginMs;
    this.acked++;
    this.lastAckedSentAt = sentAt;
    if (until <= this.until && this.sure) return;
    this.until = Math.max(this.until, until);
    const wasSure = this.sure;
    if (this.now() >= this.until) return;
    this.sure = true;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.check(), Math.max(0, this.until - this.now()));
    if (!wasSure && this.acked > 1) this.emit('renewed');
  }

  private check(): void {
    if (this.closed || !this.sure) return;
    const left = this.until - this.now();
    if (left > 0) {
      this.deadlineTimer = setTimeout(() => this.check(), left);
      return;
    }
    this.sure = false;
    this.emit('uncertain');
  }

  private fail(err: Error): void {
    const wasSure = this.sure;
    this.close();
    if (wasSure) this.emit('uncertain');
    this.emit('gone', err);
  }
}
