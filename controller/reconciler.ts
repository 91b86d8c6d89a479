// The per-switch reconciler: the only writer of pins to a switch. It holds what the switch
// should have (desired pins) and what it has (installed, from installs and from listing the
// switch), and applies the difference in batches. On a failed round it marks itself for a
// full resync, backs off and counts the failure; flush() tells a caller when everything
// asked before it has been applied. Pins the switch timed out or could not program are
// garbage-collected; after a restart, pins found on the switch are adopted.

import type { FlowSpec, InstalledPin, SwitchAdapter } from '../switch-adapters/contract.js';
import { flowId } from '../switch-adapters/contract.js';
import type { ControllerMetrics } from './metrics.js';

export interface DesiredPin {
  flow: FlowSpec;
  nexthop: string;
  reason: string;
  /** When the SYN that led to this pin arrived (controller clock, ms), for latency. */
  since: number;
}

export interface InstalledView {
  flow: FlowSpec;
  nexthop: string;
  programmed: boolean;
  packets: number;
  /** When the packet counter last moved (controller clock), for controller-side aging. */
  lastActive: number;
}

export interface FailedPin {
  flow: FlowSpec;
  nexthop: string;
  why: string;
  at: number;
}

const INSTALL_PARALLELISM = 2;

export interface ReconcilerOptions {
  switchName: string;
  adapter: SwitchAdapter;
  metrics: ControllerMetrics;
  idleTimeoutS: number;
  now: () => number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Called when a desired pin is dropped (timed out, refused, no room). */
  onDropped?: (id: string, pin: DesiredPin, why: string) => void;
  /** Called with each batch of pins the switch accepted, and when. */
  onInstalled?: (pins: DesiredPin[], at: number) => void;
}

export class Reconciler {
  readonly desired = new Map<string, DesiredPin>();
  readonly installed = new Map<string, InstalledView>();
  readonly failed = new Map<string, FailedPin>();
  /** Consecutive failed rounds; 0 when in sync. */
  failures = 0;
  lastError: string | undefined;
  private needResync = true;
  /** Flows whose desired or installed state changed since the last round (all of them after a resync). */
  private readonly touched = new Set<string>();
  private adoptOnResync = true;
  private gen = 0;
  private appliedGen = -1;
  private running = false;
  private dirty = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters: { target: number; resolve: () => void }[] = [];

  constructor(private readonly o: ReconcilerOptions) {}

  get inSync(): boolean {
    return this.failures === 0 && !this.needResync && this.appliedGen >= this.gen;
  }

  want(pin: DesiredPin): void {
    const id = flowId(pin.flow);
    const cur = this.desired.get(id);
    if (cur && cur.nexthop === pin.nexthop) return;
    this.desired.set(id, pin);
    this.failed.delete(id);
    this.touched.add(id);
    this.touch();
  }

  unwant(flow: FlowSpec): void {
    const id = flowId(flow);
    if (this.desired.delete(id)) {
      this.touched.add(id);
      this.touch();
    }
  }

  has(flow: FlowSpec): boolean {
    return this.desired.has(flowId(flow));
  }

  /** Asks for a full resync (list the switch) at the next round. */
  resync(): Promise<void> {
    this.needResync = true;
    this.touch();
    return this.flush();
  }

  /** Resolves when every change asked for before the call has been applied. */
  flush(): Promise<void> {
    const target = this.gen;
    if (this.appliedGen >= target && !this.dirty && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ target, resolve }));
  }

  /** Installed and programmed pins, for capacity accounting. */
  programmedCount(): number {
    let n = 0;
    for (const v of this.installed.values()) if (v.programmed) n++;
    return n;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private touch(): void {
    this.gen++;
    this.dirty = true;
    if (!this.running && this.timer === undefined && !this.stopped) setImmediate(() => void this.run());
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped) return;
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
          this.o.metrics.reconcileFailures.inc({ switch: this.o.switchName, error: err instanceof Error ? err.name : 'Error' });
          this.o.metrics.ready.set({ switch: this.o.switchName }, 0);
          const min = this.o.backoffMinMs ?? 100;
          const delay = Math.min(this.o.backoffMaxMs ?? 30_000, min * 2 ** Math.min(this.failures - 1, 16));
          this.running = false;
          this.timer = setTimeout(() => {
            this.timer = undefined;
            void this.run();
          }, delay);
          return;
        }
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

  private drop(id: string, pin: DesiredPin, why: string, atRisk: boolean): void {
    this.desired.delete(id);
    this.failed.set(id, { flow: pin.flow, nexthop: pin.nexthop, why, at: this.o.now() });
    if (atRisk) this.o.metrics.connectionsAtRisk.inc({ switch: this.o.switchName, why });
    this.o.onDropped?.(id, pin, why);
  }

  private async fullResync(): Promise<void> {
    const listed: InstalledPin[] = await this.o.adapter.listPins();
    this.o.metrics.resyncs.inc({ switch: this.o.switchName });
    const now = this.o.now();
    const previous = new Map(this.installed);
    this.installed.clear();
    const garbage: FlowSpec[] = [];
    for (const p of listed) {
      const id = flowId(p.flow);
      const want = this.desired.get(id);
      if (!p.programmed && p.reason !== 'disabled') {
        garbage.push(p.flow);
        if (want && want.nexthop === p.nexthop) this.drop(id, want, p.reason ?? 'not programmed', p.reason === 'table-full');
        continue;
      }
      const prev = previous.get(id);
      const lastActive = prev && prev.packets === p.packets ? prev.lastActive : now;
      this.installed.set(id, { flow: p.flow, nexthop: p.nexthop, programmed: p.programmed, packets: p.packets, lastActive });
      if (this.adoptOnResync && want === undefined && p.programmed) this.desired.set(id, { flow: p.flow, nexthop: p.nexthop, reason: 'adopted', since: now });
    }
    this.adoptOnResync = false;
    // Switches without native idle timeouts: the controller ages pins from their counters.
    if (!this.o.adapter.capabilities.nativeIdleTimeout) {
      for (const [id, v] of this.installed) {
        const want = this.desired.get(id);
        if (want && now - v.lastActive >= this.o.idleTimeoutS * 1000) this.drop(id, want, 'idle-timeout', false);
      }
    }
    if (garbage.length > 0) {
      await this.o.adapter.removePins(garbage);
      this.o.metrics.pinsRemoved.inc({ switch: this.o.switchName, why: 'gc' }, garbage.length);
    }
    this.needResync = false;
    for (const id of this.desired.keys()) this.touched.add(id);
    for (const id of this.installed.keys()) this.touched.add(id);
  }

  private async round(): Promise<void> {
    if (this.needResync) await this.fullResync();
    const name = this.o.switchName;
    const ids = [...this.touched];
    this.touched.clear();
    const toRemove: FlowSpec[] = [];
    const toInstall: [string, DesiredPin][] = [];
    for (const id of ids) {
      const d = this.desired.get(id);
      const i = this.installed.get(id);
      if (d === undefined) {
        if (i !== undefined) toRemove.push(i.flow);
      } else if (i === undefined || i.nexthop !== d.nexthop || !i.programmed) toInstall.push([id, d]);
    }
    if (toRemove.length > 0) {
      await this.o.adapter.removePins(toRemove);
      for (const f of toRemove) this.installed.delete(flowId(f));
      this.o.metrics.pinsRemoved.inc({ switch: name, why: 'unwanted' }, toRemove.length);
    }
    if (toInstall.length === 0) return;
    let free = this.o.adapter.capabilities.pinTableSize - this.programmedCount();
    const fits: [string, DesiredPin][] = [];
    for (const entry of toInstall) {
      const replacing = this.installed.get(entry[0])?.programmed === true;
      if (replacing || free > 0) {
        fits.push(entry);
        if (!replacing) free--;
      } else this.drop(entry[0], entry[1], 'table-full', true);
    }
    const size = this.o.adapter.capabilities.pinBatchSize;
    const chunks: [string, DesiredPin][][] = [];
    for (let at = 0; at < fits.length; at += size) chunks.push(fits.slice(at, at + size));
    // Two requests in flight: one is built and sent while the switch works on the other.
    for (let at = 0; at < chunks.length; at += INSTALL_PARALLELISM) {
      await Promise.all(chunks.slice(at, at + INSTALL_PARALLELISM).map((c) => this.installChunk(c)));
    }
  }

  private async installChunk(chunk: [string, DesiredPin][]): Promise<void> {
    const name = this.o.switchName;
    const outcomes = await this.o.adapter.installPins(chunk.map(([, p]) => ({ flow: p.flow, nexthop: p.nexthop, idleTimeoutS: this.o.idleTimeoutS })));
    const now = this.o.now();
    const landed: DesiredPin[] = [];
    outcomes.forEach((o, k) => {
      const [id, p] = chunk[k] as [string, DesiredPin];
      if (o.ok) {
        this.installed.set(id, { flow: p.flow, nexthop: p.nexthop, programmed: true, packets: 0, lastActive: now });
        this.o.metrics.pinsInstalled.inc({ switch: name });
        landed.push(p);
        if (p.reason !== 'adopted') this.o.metrics.synToPin.observe({ switch: name }, Math.max(0, now - p.since) / 1000);
      } else {
        this.o.metrics.pinFailures.inc({ switch: name, reason: 'refused' });
        this.drop(id, p, `refused: ${o.error ?? 'unknown'}`, true);
      }
    });
    if (landed.length > 0) this.o.onInstalled?.(landed, now);
  }
}
