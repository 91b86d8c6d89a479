// A simulated world on one virtual clock: switches (the simulator's model) with live
// traffic, their mirror sessions feeding a flowpin controller (mirror latency included),
// switch APIs that take time and fail on demand (SlowAdapter), and a driver that moves time
// in small steps while the controller works, so that latency, programming delays and
// traffic during a change all happen as they would. It restarts the controller gracefully or
// as a kill (no shutdown hook), and keeps the accounting that proves the promise: every
// reset connection is either counted by flowpin (at risk, or in a change window) or was
// never seen by it.

import pino from 'pino';
import { Controller } from '../../controller/controller.js';
import type { ChangeRecord } from '../../controller/changes.js';
import type { Clock } from '../../controller/clock.js';
import { readConfig, type FlowpinConfig } from '../../controller/config.js';
import { MemoryDisk, MemoryStateStore } from '../../controller/memory-store.js';
import type { StateStore } from '../../controller/state-store.js';
import { Reader } from '../../lib/validate.js';
import type { FlowEvent } from '../../mirror-receiver/flow-event.js';
import { tupleOf } from '../../mirror-receiver/tuple.js';
import { flowId } from '../../switch-adapters/contract.js';
import { pinName } from '../../lib/pin-name.js';
import { flowKey } from '../../controller/flow-table.js';
import { SimAdapter } from '../../switch-adapters/sim/adapter.js';
import { SlowAdapter } from '../../switch-adapters/sim/slow-adapter.js';
import { GnmiAdapter } from '../../switch-adapters/gnmi/adapter.js';
import type { SwitchAdapter } from '../../switch-adapters/contract.js';
import { GnmiServer } from '../../switch-sim/gnmi/server.js';
import { VirtualClock, type Timer } from '../../switch-sim/clock.js';
import type { LifetimeDistribution } from '../../switch-sim/rng.js';
import { portIndexOf, SimSwitch, type ReplySource, type SimPacket } from '../../switch-sim/sim-switch.js';
import { TrafficGenerator, type ResetRecord, type TrafficOptions } from '../../switch-sim/traffic.js';

/** Where the world's clock starts (ms). */
const WORLD_EPOCH = 1_000_000;

export interface WorldSwitchOptions {
  name: string;
  vips: { address: string; nexthops: string[]; port: number }[];
  spares: string[];
  ecmpMode: 'resilient' | 'mod-n';
  pinCapacity: number;
  programDelayMs: number;
  /** Pins only, where they take longer than group changes; default programDelayMs. */
  pinProgramDelayMs?: number;
  reservedPinEntries?: number;
  /** New connections per second, over the switch's VIPs. */
  rate: number;
  lifetime: LifetimeDistribution;
  mirrorFinRst?: boolean;
  /** The switch mirrors the servers' SYN-ACKs too (a second session on the server ports). */
  mirrorReplies?: boolean;
  /** The reply session also matches the servers' FINs and RSTs (FIN/RST from a VIP). */
  mirrorReplyFinRst?: boolean;
  /** How connections end and how many stay idle (the traffic model's options). */
  close?: TrafficOptions['close'];
  idleShare?: number;
  idleGapS?: number;
  /**
   * ERSPAN flavour of the reply session: 'erspan2' carries the port index, 'erspan1' only the frame (MAC).
   */
  replyEncap?: 'erspan1' | 'erspan2';
  /** flowpin's resolution for the switch (the config's default unless given). */
  resolution?: 'observe' | 'lookup' | 'both';
  replyTimeoutMs?: number;
  /**
   * Time from a SYN reaching its server to the server's SYN-ACK reaching the switch (ms); 0.2 unless given.
   */
  replyDelayMs?: number;
  /** The client's round trip: its handshake ACK follows the SYN by this much (ms). */
  clientRttMs?: number;
  /** The adapter's look-up: exact (default), none (no look-up capability), or wrong-hash (a wrong model). */
  lookup?: 'exact' | 'none' | 'wrong-hash';
  /**
   * Servers behind one VLAN interface on a two-port port-channel: the routed interface names none of them.
   */
  sharedInterface?: boolean;
}

export interface WorldOptions {
  switches: WorldSwitchOptions[];
  /**
   * The adapter flowpin drives: the simulator's own (default), or gNMI: the simulator's gNMI
   * target on loopback and flowpin's gNMI adapter, real gRPC calls (each step of simulated time
   * then waits for the calls in flight to be answered).
   */
  adapter?: 'sim' | 'gnmi';
  latencyMs: number;
  /** Switch to flowpin, for a mirrored SYN (ms). */
  mirrorDelayMs: number;
  packetIntervalMs: number;
  seed: number;
  /** No controller: the switches alone (the baselines). */
  controller?: {
    pinMode: 'always' | 'on-change';
    settleMs: number;
    barrierTimeoutMs: number;
    /** Periodic resync of each switch (s); 5 unless given. */
    resyncIntervalS?: number;
    /**
     * Where state goes across restarts: 'memory' (writes take 2 ms of simulated time), a store of the
     * caller's, or none (a restart forgets).
     */
    store?: 'memory' | (() => StateStore);
    /** SYNs waiting for a look-up (`resolveQueue`); 500,000 unless given. */
    resolveQueue?: number;
    /** Flows tracked (`flowTable.maxFlows`); 4,000,000 unless given. */
    maxFlows?: number;
    persistIntervalS?: number;
    /** How long a pin lasts without packets (`pinIdleTimeoutS`); 300 unless given. */
    pinIdleTimeoutS?: number;
    /**
     * Change-window connections that need no consent (`consent.windowFlows`); the configuration's default
     * unless given.
     */
    windowFlows?: number;
    /**
     * What the configuration states about the age of the switches' connections
     * (`connectionsSince`): the world's start unless given (its traffic starts with it);
     * `unstated` where traffic ran before flowpin and its operator cannot say since when.
     */
    connectionsSince?: 'world-start' | 'unstated';
  };
  /** Driver step (ms of virtual time between chances for the controller to run). */
  stepMs?: number;
}

interface WorldSwitch {
  opts: WorldSwitchOptions;
  sw: SimSwitch;
  traffic: TrafficGenerator;
  source: string;
  resets: ResetRecord[];
}

/** Why a counted flow was counted, by switch and flow id. */
export type Counted = Map<string, { change: string; why: string }>;

export const clockOf = (c: VirtualClock): Clock => ({
  now: c.now,
  schedule: (ms, fn) => c.after(ms, fn),
  cancel: (h) => c.cancel(h as Timer),
});

export class World {
  readonly clock = new VirtualClock(WORLD_EPOCH);
  readonly switches: WorldSwitch[] = [];
  controller: Controller | undefined;
  adapters = new Map<string, SlowAdapter>();
  /** Every change record seen, by id, as last seen. */
  readonly changes = new Map<string, ChangeRecord>();
  readonly counted: Counted = new Map();
  /** Intervals (clock ms) when no controller was running: SYNs then are not seen. */
  readonly downtime: { from: number; to: number }[] = [];
  /**
   * A kill loses what the controller had not written yet: the SYNs since its last journal
   * write (a group commit every 20 ms, each taking a few ms). SYNs that reached it this long
   * before a kill count as not seen.
   */
  get killGraceMs(): number {
    return 50;
  }
  pinPeak = 0;
  private readonly vclock: Clock;
  private readonly disk = new MemoryDisk();
  private store: StateStore | undefined;

  constructor(readonly o: WorldOptions) {
    this.vclock = clockOf(this.clock);
    o.switches.forEach((s, i) => {
      const sw = new SimSwitch({
        hostname: s.name,
        hashSeed: 0x5eed + i,
        ecmpMode: s.ecmpMode,
        bucketCount: 64,
        pinCapacity: s.pinCapacity,
        uplink: {
          interface: 'Ethernet47',
          nexthop: '10.0.0.254',
          prefixes: ['10.100.0.0/16', '10.101.0.0/16'],
        },
        mirrorFinRst: s.mirrorFinRst ?? false,
        programDelayMs: s.programDelayMs,
        ...(s.pinProgramDelayMs === undefined ? {} : { pinProgramDelayMs: s.pinProgramDelayMs }),
        reservedPinEntries: s.reservedPinEntries ?? 0,
        now: this.clock.now,
      });
      for (const v of s.vips) sw.addVip(v.address, v.nexthops);
      for (const sp of s.spares) sw.addServer(sp);
      if (s.sharedInterface === true) {
        sw.addPortChannel('Port-Channel10', ['Ethernet20', 'Ethernet21']);
        for (const a of [...s.vips.flatMap((v) => v.nexthops), ...s.spares])
          sw.attachServer(a, { via: 'Vlan10', vlan: 10, l2: 'Port-Channel10' });
      }
      const resets: ResetRecord[] = [];
      const traffic = new TrafficGenerator(sw, this.clock, {
        connectionsPerSecond: s.rate,
        lifetime: s.lifetime,
        packetIntervalMs: o.packetIntervalMs,
        targets: s.vips.map((v) => ({ vip: v.address, port: v.port })),
        clientBase: i === 0 ? '10.100.0.1' : '10.101.0.1',
        clientCount: 60_000,
        maxConcurrent: 2_000_000,
        seed: o.seed + i * 7919,
        onReset: (r) => resets.push(r),
        ...(s.clientRttMs === undefined ? {} : { clientRttMs: s.clientRttMs }),
        ...(s.close === undefined ? {} : { close: s.close }),
        ...(s.idleShare === undefined ? {} : { idleShare: s.idleShare }),
        ...(s.idleGapS === undefined ? {} : { idleGapS: s.idleGapS }),
      });
      const ws: WorldSwitch = { opts: s, sw, traffic, source: `127.0.0.${i + 2}`, resets };
      sw.directflowEnabled = true;
      sw.mirror = (p) => this.mirror(ws, p);
      if (s.mirrorReplies === true) sw.replyMirror = (p, from) => this.mirrorReply(ws, p, from);
      sw.replyMirrorFin = s.mirrorReplies === true && s.mirrorReplyFinRst === true;
      sw.replyMirrorRst = s.mirrorReplies === true && s.mirrorReplyFinRst === true;
      this.switches.push(ws);
    });
  }

  get now(): number {
    return this.clock.now();
  }

  sw(name: string): WorldSwitch {
    const s = this.switches.find((x) => x.opts.name === name);
    if (s === undefined) throw new Error(`no switch ${name}`);
    return s;
  }

  private mirror(ws: WorldSwitch, p: SimPacket): void {
    const ev: FlowEvent = {
      outerSrc: ws.source,
      outerDst: '127.0.0.1',
      encap: 'erspan1',
      greKey: null,
      sessionId: null,
      vlan: null,
      family: p.src.includes(':') ? 6 : 4,
      src: p.src,
      dst: p.dst,
      sport: p.sport,
      dport: p.dport,
      flags: p.flags,
      tuple: tupleOf({
        family: p.src.includes(':') ? 6 : 4,
        src: p.src,
        dst: p.dst,
        sport: p.sport,
        dport: p.dport,
      }),
      at: this.clock.now(),
    };
    this.clock.after(this.o.mirrorDelayMs, () => this.controller?.onEvent(ev));
  }

  /**
   * A server's SYN-ACK, copied by the reply session after the server's answer time and the mirror's latency.
   */
  private mirrorReply(ws: WorldSwitch, p: SimPacket, from: ReplySource): void {
    const family = p.src.includes(':') ? 6 : 4;
    const erspan2 = (ws.opts.replyEncap ?? 'erspan2') === 'erspan2';
    const port = erspan2 ? portIndexOf(from.port) : undefined;
    const ev: FlowEvent = {
      outerSrc: ws.source,
      outerDst: '127.0.0.1',
      encap: erspan2 ? 'erspan2' : 'erspan1',
      greKey: null,
      sessionId: erspan2 ? 2 : null,
      vlan: null,
      family,
      src: p.src,
      dst: p.dst,
      sport: p.sport,
      dport: p.dport,
      flags: p.flags,
      tuple: tupleOf({ family, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport }),
      at: this.clock.now(),
      srcMac: from.mac,
      ...(port === undefined ? {} : { port }),
    };
    this.clock.after((ws.opts.replyDelayMs ?? 0.2) + this.o.mirrorDelayMs, () =>
      this.controller?.onEvent(ev),
    );
  }

  /**
   * Opens `n` connections now (before any change): with `lifetime`, or as found open in the traffic's steady
   * state.
   */
  openLive(n: number, lifetime: LifetimeDistribution | 'steady-state'): void {
    for (let i = 0; i < n; i++) {
      const s = this.switches[i % this.switches.length] as WorldSwitch;
      s.traffic.open(lifetime);
    }
  }

  startTraffic(): void {
    for (const s of this.switches) s.traffic.start();
  }

  stopTraffic(): void {
    for (const s of this.switches) s.traffic.stop();
  }

  /**
   * The configuration file lists the switches in reverse order (a restart after an edit): set before
   * startController.
   */
  reverseConfigOrder = false;

  config(): FlowpinConfig {
    const c = this.o.controller;
    if (c === undefined) throw new Error('this world has no controller');
    const switches = this.reverseConfigOrder ? [...this.switches].reverse() : this.switches;
    return readConfig(
      Reader.fromObject('scenario', {
        pinMode: c.pinMode,
        settleMs: c.settleMs,
        barrierTimeoutMs: c.barrierTimeoutMs,
        resyncIntervalS: c.resyncIntervalS ?? 5,
        retryMaxMs: 2000,
        persistIntervalS: c.persistIntervalS ?? 1,
        resolveQueue: c.resolveQueue ?? 500_000,
        flowTable: { maxFlows: c.maxFlows ?? 4_000_000, maxAgeS: 7200 },
        pinIdleTimeoutS: c.pinIdleTimeoutS ?? 300,
        ...(c.windowFlows === undefined ? {} : { consent: { windowFlows: c.windowFlows } }),
        mirror: { udp: [] },
        switches: switches.map((s) => ({
          name: s.opts.name,
          adapter: 'sim',
          mirrorSources: [s.source],
          pinTableSize: s.opts.pinCapacity,
          vips: s.opts.vips.map((v) => ({ address: v.address, nexthops: v.nexthops })),
          // The world's traffic starts with it: no connection is older than its clock's start
          // (unless traffic ran before flowpin: then nothing is claimed, as an operator could not).
          ...(c.connectionsSince === 'unstated' ? {} : { connectionsSince: WORLD_EPOCH }),
          // What the switch mirrors, as its operator would state it.
          mirrorEnds:
            s.opts.mirrorFinRst === true
              ? s.opts.mirrorReplies === true && s.opts.mirrorReplyFinRst === true
                ? 'both-ways'
                : 'client-side'
              : 'syn-only',
          ...(s.opts.mirrorReplies === true ? { mirrorReplies: true } : {}),
          ...(s.opts.resolution === undefined ? {} : { resolution: s.opts.resolution }),
          ...(s.opts.replyTimeoutMs === undefined ? {} : { replyTimeoutMs: s.opts.replyTimeoutMs }),
        })),
      }),
    );
  }

  /** Starts a controller (a new process, as far as flowpin can tell: only the store is shared). */
  async startController(): Promise<Controller> {
    const c = this.o.controller;
    if (c === undefined) throw new Error('this world has no controller');
    // The simulator's adapters are made at once (callers may reach them before start-up ends).
    const inner =
      this.o.adapter === 'gnmi'
        ? await Promise.all(this.switches.map((s) => this.gnmiAdapter(s)))
        : this.switches.map((s) => new SimAdapter(s.sw, { lookup: s.opts.lookup ?? 'exact' }));
    this.adapters = new Map(
      this.switches.map((s, i) => [
        s.opts.name,
        new SlowAdapter(inner[i] as SwitchAdapter, {
          name: s.opts.name,
          now: this.clock.now,
          schedule: (ms, fn) => this.clock.after(ms, fn),
          latencyMs: this.o.latencyMs,
        }),
      ]),
    );
    this.store =
      c.store === 'memory'
        ? new MemoryStateStore(this.disk, (ms, fn) => this.clock.after(ms, fn))
        : c.store?.();
    const controller = new Controller({
      config: this.config(),
      adapters: this.adapters,
      logger: pino({ level: 'silent' }),
      clock: this.vclock,
      listen: false,
      ...(this.store ? { store: this.store } : {}),
      onCounted: (rec, id, why) => {
        if (id !== '') this.counted.set(`${rec.switch}|${id}`, { change: rec.id, why });
        this.changes.set(rec.id, rec);
      },
    });
    await this.settle(controller.start(), 60_000);
    // Mirrored frames reach the controller from here on (it listens once its switches are connected).
    this.controller = controller;
    const down = this.downtime.at(-1);
    if (down !== undefined && down.to === Infinity) down.to = this.now;
    return controller;
  }

  /** Stops the controller; a kill leaves no chance to write state, and its switch calls never complete. */
  async stopController(kind: 'graceful' | 'kill'): Promise<void> {
    const c = this.controller;
    if (c === undefined) return;
    this.snapshotChanges();
    this.controller = undefined;
    this.downtime.push({ from: kind === 'kill' ? this.now - this.killGraceMs : this.now, to: Infinity });
    if (kind === 'graceful') await this.settle(c.stop(), 60_000);
    else {
      for (const a of this.adapters.values()) a.kill();
      if (this.store instanceof MemoryStateStore) this.store.kill();
      c.kill();
    }
  }

  private snapshotChanges(): void {
    for (const cm of this.controller?.changes.values() ?? [])
      for (const r of cm.records) this.changes.set(r.id, { ...r });
  }

  private readonly gnmiTargets = new Map<string, { server: GnmiServer; address: string }>();

  /** The simulator's gNMI target of a switch and its address, once started (adapter: 'gnmi'). */
  gnmiTarget(name: string): { server: GnmiServer; address: string } | undefined {
    return this.gnmiTargets.get(name);
  }

  /** flowpin's gNMI adapter toward the simulator's gNMI target of a switch (started once). */
  private async gnmiAdapter(s: WorldSwitch): Promise<SwitchAdapter> {
    let target = this.gnmiTargets.get(s.opts.name);
    if (target === undefined) {
      // The target samples and scans on the world's clock, as a device does on its own time.
      const clock = {
        now: () => this.clock.now(),
        every: (ms: number, fn: () => void) => this.clock.every(ms, fn),
      };
      const server = new GnmiServer(s.sw, {
        host: '127.0.0.1',
        port: 0,
        username: 'admin',
        password: 'flowpin',
        minSampleMs: 10,
        clock,
      });
      target = { server, address: (await server.start()).address };
      this.gnmiTargets.set(s.opts.name, target);
    }
    const address = target.address;
    // Counters are streamed at the product's default sample interval (gnmi.sampleIntervalMs).
    return new GnmiAdapter({
      switchName: s.opts.name,
      address,
      insecure: true,
      username: 'admin',
      password: 'flowpin',
      timeoutMs: 30_000,
      ingressInterfaces: ['Ethernet47'],
      groupProgramDelayMs: s.opts.programDelayMs + 50,
      now: this.clock.now,
      pinTableSize: s.opts.pinCapacity,
      pinTable: { component: 'Chip0', resource: 'policy-forwarding-rules' },
    });
  }

  /** Lets the controller run: a few turns of the event loop with time standing still. */
  private async turn(): Promise<void> {
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    // Real calls (gNMI) are answered before time moves on, within a bound of real time.
    const end = Date.now() + 30_000;
    while ([...this.adapters.values()].some((a) => a.inFlight > 0) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1));
      for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    }
  }

  /** Moves time forward by `ms`, in steps, letting the controller work between them. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    const step = this.o.stepMs ?? 1;
    let sample = 0;
    while (this.now < end) {
      this.clock.advanceTo(Math.min(end, this.now + step));
      await this.turn();
      if (++sample % 10 === 0) this.samplePins();
    }
    this.samplePins();
    this.snapshotChanges();
  }

  /** Moves time until `p` settles (or `maxMs` passes: then it throws). */
  async settle<T>(p: Promise<T>, maxMs: number): Promise<T> {
    let done = false;
    const out = p.finally(() => (done = true));
    out.catch(() => undefined);
    const end = this.now + maxMs;
    await this.turn();
    while (!done) {
      if (this.now >= end) throw new Error(`still waiting after ${maxMs} ms of simulated time`);
      this.clock.advanceTo(this.now + (this.o.stepMs ?? 1));
      await this.turn();
      this.samplePins();
    }
    this.snapshotChanges();
    return out;
  }

  private samplePins(): void {
    let n = 0;
    for (const s of this.switches) n += s.sw.pins.programmed;
    if (n > this.pinPeak) this.pinPeak = n;
  }

  /** Whether flowpin could have seen a SYN sent at `at` (a controller ran when it arrived). */
  seen(at: number): boolean {
    const arrives = at + this.o.mirrorDelayMs;
    if (this.o.controller === undefined) return false;
    return !this.downtime.some((d) => arrives >= d.from && arrives <= d.to);
  }

  /**
   * The promise, checked: each reset connection is counted by flowpin, or unseen (its SYN
   * arrived while no controller ran), or it broke although protected.
   */
  audit(): {
    broken: number;
    brokenProtected: number;
    uncounted: number;
    unseen: number;
    counted: number;
    unseenBeyondEstimate: number;
    details: string[];
  } {
    this.snapshotChanges();
    const out = {
      broken: 0,
      brokenProtected: 0,
      uncounted: 0,
      unseen: 0,
      counted: 0,
      unseenBeyondEstimate: 0,
      details: [] as string[],
    };
    const changes = [...this.changes.values()].filter((c) => c.sentAt !== undefined);
    /** Resets of connections flowpin could not see, by the change that moved them (or '' for none). */
    const unseenBy = new Map<string, number>();
    for (const s of this.switches) {
      for (const r of s.resets) {
        out.broken++;
        const id = flowId({
          family: r.src.includes(':') ? 6 : 4,
          src: r.src,
          dst: r.dst,
          sport: r.sport,
          dport: r.dport,
        });
        if (!this.seen(r.openedAt)) {
          out.unseen++;
          const by = this.movedBy(changes, s.opts.name, r)?.id ?? '';
          unseenBy.set(by, (unseenBy.get(by) ?? 0) + 1);
          continue;
        }
        if (this.counted.has(`${s.opts.name}|${id}`)) {
          out.counted++;
          continue;
        }
        out.uncounted++;
        // The change that moved it: the last one on its VIP whose group write came before the reset.
        const c = this.movedBy(changes, s.opts.name, r);
        if (c !== undefined && c.heldAt !== undefined && r.openedAt + this.o.mirrorDelayMs < c.heldAt) {
          out.brokenProtected++;
          if (out.details.length < 10)
            out.details.push(
              `${id} opened ${r.openedAt} on ${r.server}, reset ${r.at} at ${r.reached ?? 'nowhere'}; change ${c.id} held ${c.heldAt}, sent ${c.sentAt}; ${this.knowledge(s, r)}`,
            );
        } else if (out.details.length < 10)
          out.details.push(
            `uncounted ${id} opened ${r.openedAt} on ${r.server}, reset ${r.at} at ${r.reached ?? 'nowhere'}; change ${c?.id ?? 'none'} held ${c?.heldAt ?? '-'} sent ${c?.sentAt ?? '-'} effective ${c?.effectiveAt ?? '-'}`,
          );
      }
    }
    // Unseen resets are covered by the estimate (`unseen`) of the change that moved them, up to it.
    for (const [by, n] of unseenBy) {
      const estimate = by === '' ? 0 : (this.changes.get(by)?.unseen ?? 0);
      if (n > estimate) {
        out.unseenBeyondEstimate += n - estimate;
        if (out.details.length < 10)
          out.details.push(
            `${n} resets of connections flowpin could not see, moved by ${by === '' ? 'no change' : by}, whose estimate was ${estimate}`,
          );
      }
    }
    return out;
  }

  /**
   * The change that moved a reset connection: the last one on its VIP whose group write came before the
   * reset.
   */
  private movedBy(changes: ChangeRecord[], sw: string, r: ResetRecord): ChangeRecord | undefined {
    return changes
      .filter((x) => x.switch === sw && x.vip === r.dst && (x.sentAt as number) <= r.at)
      .sort((a, b) => (b.sentAt as number) - (a.sentAt as number))[0];
  }

  /** What the running controller and the switch know of a flow (for failure messages). */
  private knowledge(s: WorldSwitch, r: ResetRecord): string {
    const c = this.controller;
    const family: 4 | 6 = r.src.includes(':') ? 6 : 4;
    const f = { family, src: r.src, dst: r.dst, sport: r.sport, dport: r.dport };
    const rt = c?.runtimes.get(s.opts.name);
    if (c === undefined || rt === undefined) return 'no controller';
    const key = flowKey(rt.id, tupleOf(f));
    const nh = c.flowTable.nexthopOf(key);
    const want = rt.reconciler.desired.get(flowId(f));
    const pin = s.sw.pins.get(pinName(f));
    return `controller: flow ${nh === undefined ? 'unknown' : nh === 0 ? 'unresolved' : (c.registry.ref(nh)?.nexthop ?? '?')}, pin wanted ${want ? `${want.nexthop} (${want.reason})` : 'no'}; switch pin ${pin ? `${pin.nexthop ?? '-'} ${pin.status}` : 'none'}`;
  }

  async close(): Promise<void> {
    this.stopTraffic();
    const c = this.controller;
    this.controller = undefined;
    if (c) await this.settle(c.stop(), 60_000).catch(() => undefined);
    for (const t of this.gnmiTargets.values()) await t.server.stop();
    this.gnmiTargets.clear();
  }
}
