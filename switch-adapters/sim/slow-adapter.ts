// A switch adapter that takes time and fails like a remote switch: it wraps another adapter
// (the in-process simulator's) and delivers every call after a latency on the caller's
// clock (the simulator's virtual clock in the scenario runner and tests), applying the
// operation on the switch half-way through, as a request that travels, runs and answers.
// Faults are injected through `faults`: latency spikes, errors, a pin batch that fails
// part-way (what ran before the failing item stays), a reply lost after the call was carried
// out, the switch down until a time.

import type {
  FenceToken,
  FlowSpec,
  InstalledPin,
  PinOutcome,
  PinRule,
  PinTableUsage,
  ServerIdentity,
  SwitchAdapter,
} from '../contract.js';
import { SwitchAuthError, SwitchCommandError, SwitchTimeoutError, SwitchTransportError } from '../errors.js';

export interface SlowFaults {
  /** Round-trip time of every call (ms). */
  latencyMs: number;
  /** Extra latency for calls started before this time (clock ms). */
  spikeUntil: number;
  spikeMs: number;
  /** Calls fail (transport error) until this time (clock ms): the switch is down. */
  downUntil: number;
  /** The next N calls fail with a transport error. */
  failNext: number;
  /** The next install batch fails after this many of its pins were applied (-1: off). */
  partialInstallAt: number;
  /** The next N pins written are refused by the switch (a rejected command, per pin). */
  refuseNext: number;
  /** Group writes are refused (a rejected command: retrying will not help). */
  refuseGroupWrites: boolean;
  /** Credentials are refused until this time (clock ms). */
  authFailUntil: number;
  /** The next N calls are carried out on the switch and their answer is lost: a timeout after lostReplyMs. */
  lostReplyNext: number;
  lostReplyMs: number;
}

export interface SlowAdapterOptions {
  name: string;
  now: () => number;
  schedule: (ms: number, fn: () => void) => void;
  latencyMs: number;
}

export class SlowAdapter implements SwitchAdapter {
  readonly kind: string;
  readonly faults: SlowFaults;
  /** Calls and pin rules written, for figures. */
  readonly stats = { calls: 0, pinWrites: 0, failures: 0, byCall: {} as Record<string, number> };
  private dead = false;

  constructor(
    private readonly inner: SwitchAdapter,
    private readonly o: SlowAdapterOptions,
  ) {
    this.kind = inner.kind;
    this.faults = {
      latencyMs: o.latencyMs,
      spikeUntil: 0,
      spikeMs: 0,
      downUntil: 0,
      failNext: 0,
      partialInstallAt: -1,
      refuseNext: 0,
      refuseGroupWrites: false,
      authFailUntil: 0,
      lostReplyNext: 0,
      lostReplyMs: 3000,
    };
  }

  get capabilities(): SwitchAdapter['capabilities'] {
    return this.inner.capabilities;
  }

  /** The process that used this adapter is gone: calls in flight and later ones never complete. */
  kill(): void {
    this.dead = true;
  }

  /** Calls handed to the inner adapter and not yet answered by it (real I/O, for a gNMI target). */
  inFlight = 0;

  /** Runs `op` half-way through a round trip; fails as the faults say. */
  private call<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.dead) return new Promise<T>(() => undefined);
    this.stats.calls++;
    this.stats.byCall[what] = (this.stats.byCall[what] ?? 0) + 1;
    const f = this.faults;
    const now = this.o.now();
    const rtt = f.latencyMs + (now < f.spikeUntil ? f.spikeMs : 0);
    return new Promise<T>((resolve, reject) => {
      this.o.schedule(rtt / 2, () => {
        if (this.dead) return;
        const at = this.o.now();
        let failure: Error | undefined;
        if (at < f.downUntil) failure = new SwitchTransportError(this.o.name, `${what}: connection refused`);
        else if (at < f.authFailUntil)
          failure = new SwitchAuthError(this.o.name, `${what}: 401 Unauthorized`);
        else if (f.refuseGroupWrites && what.startsWith('group-') && what !== 'group-programmed')
          failure = new SwitchCommandError(this.o.name, what, '% Unavailable command', 1002);
        else if (f.failNext > 0) {
          f.failNext--;
          failure = new SwitchTimeoutError(this.o.name, `${what}: no answer in time`);
        }
        if (failure !== undefined) {
          this.stats.failures++;
          this.o.schedule(rtt / 2, () => reject(failure));
          return;
        }
        this.inFlight++;
        op().then(
          (v) => {
            this.inFlight--;
            if (f.lostReplyNext > 0) {
              // Carried out; the answer never comes back, and the caller times out.
              f.lostReplyNext--;
              this.stats.failures++;
              this.o.schedule(f.lostReplyMs, () =>
                reject(
                  new SwitchTimeoutError(this.o.name, `${what}: no answer in time (the reply was lost)`),
                ),
              );
              return;
            }
            this.o.schedule(rtt / 2, () => resolve(v));
          },
          (err: unknown) => {
            this.inFlight--;
            this.o.schedule(rtt / 2, () => reject(err instanceof Error ? err : new Error(String(err))));
          },
        );
      });
    });
  }

  connect(): Promise<void> {
    return this.call('connect', () => this.inner.connect());
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  resolve(flows: FlowSpec[]): Promise<(string | undefined)[]> {
    return this.call('resolve', () => this.inner.resolve(flows));
  }

  installPins(pins: PinRule[], fence?: FenceToken): Promise<PinOutcome[]> {
    return this.call('install', async () => {
      const cut = this.faults.partialInstallAt;
      if (cut >= 0 && cut < pins.length) {
        this.faults.partialInstallAt = -1;
        const done = await this.inner.installPins(pins.slice(0, cut), fence);
        this.stats.pinWrites += done.length;
        throw new SwitchCommandError(this.o.name, 'flow', 'batch failed part-way', 1002, { retryable: true });
      }
      const refused = Math.min(this.faults.refuseNext, pins.length);
      this.faults.refuseNext -= refused;
      this.stats.pinWrites += pins.length - refused;
      const out = await this.inner.installPins(pins.slice(refused), fence);
      return [
        ...pins.slice(0, refused).map((p): PinOutcome => ({
          flow: p.flow,
          ok: false,
          error: '% Invalid input (refused by the switch)',
        })),
        ...out,
      ];
    });
  }

  removePins(flows: FlowSpec[], fence?: FenceToken): Promise<void> {
    return this.call('remove', () => this.inner.removePins(flows, fence));
  }

  listPins(): Promise<InstalledPin[]> {
    return this.call('list', () => this.inner.listPins());
  }

  /**
   * Passed through at once: the simulator's model holds no strays, so it makes no switch call (the scenarios'
   * timing stays).
   */
  removeStrays(fence?: FenceToken): Promise<number> {
    return this.inner.removeStrays(fence);
  }

  readPins(flows: FlowSpec[]): Promise<(InstalledPin | undefined)[]> {
    return this.call('read', () => this.inner.readPins(flows));
  }

  pinTableUsage(): Promise<PinTableUsage> {
    return this.call('usage', () => this.inner.pinTableUsage());
  }

  serverIdentities(): Promise<ServerIdentity[]> {
    return this.call('identities', () => this.inner.serverIdentities());
  }

  problems(): string[] {
    return this.inner.problems();
  }

  /** Passed through at once: the in-process and gNMI adapters make no switch call for it. */
  prepareVips(vips: readonly { address: string; nexthops: readonly string[] }[]): Promise<() => void> {
    return this.inner.prepareVips(vips);
  }

  groupMembers(vip: string): Promise<string[]> {
    return this.call('group', () => this.inner.groupMembers(vip));
  }

  groupProgrammed(vip: string): Promise<string[]> {
    return this.call('group-programmed', () => this.inner.groupProgrammed(vip));
  }

  addGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    return this.call('group-add', () => this.inner.addGroupMember(vip, nexthop, fence));
  }

  removeGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    return this.call('group-remove', () => this.inner.removeGroupMember(vip, nexthop, fence));
  }

  fenceTakeover(fence: FenceToken): Promise<void> {
    return this.call('fence-takeover', () => this.inner.fenceTakeover(fence));
  }

  movedByAdd(vip: string, nexthop: string, flows: FlowSpec[]): Promise<boolean[]> {
    return this.call('moved', () => this.inner.movedByAdd(vip, nexthop, flows));
  }
}
