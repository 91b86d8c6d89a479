// The controller: mirror events in, pins out. It owns the flow table and the nexthop
// registry, one SwitchRuntime and ChangeManager per switch, the mirror receiver, the
// periodic work (each switch's resync and drain tracking on its own loop with a deadline,
// so a switch that is down or slow never delays another; purging aged flows; persisting
// state through the state store), and the read models the API serves. Time and timers come
// from the injected clock.

import type { Logger } from 'pino';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import { MirrorLossMonitor } from '../mirror-receiver/loss-monitor.js';
import type { FlowEvent } from '../mirror-receiver/flow-event.js';
import { parseTuple, reverseTuple } from '../mirror-receiver/tuple.js';
import type { FenceToken, SwitchAdapter } from '../switch-adapters/contract.js';
import { ServerIdentityMap } from './server-identity.js';
import { checkCapabilities } from './capability-check.js';
import { ChangeManager, type ChangeOptions, type ChangeRecord } from './changes.js';
import { isActive } from './change-record.js';
import { sleep, systemClock, withDeadline, type Clock } from './clock.js';
import type { FlowpinConfig, SwitchConfig } from './config.js';
import { FlowpinError, notFound } from './errors.js';
import { SwitchUnsupportedError } from '../switch-adapters/errors.js';
import { specOf } from './flow-spec.js';
import type { WatchRecord } from './watch.js';
import { FlowTable, flowKey, switchIdOfKey, UNRESOLVED } from './flow-table.js';
import { controllerMetrics, ScrapeGauge, type ControllerMetrics } from './metrics.js';
import { collectChangeGauges, collectNexthopGauges } from './metrics-gauges.js';
import { timedAdapter } from './timed-adapter.js';
import { NexthopRegistry } from './nexthop-registry.js';
import { SAMPLE_EVERY_MS, VipHistory, type VipSample } from './vip-history.js';
import {
  FileStateStore,
  loadState,
  removeLeftovers,
  type JournalEntry,
  type LoadedState,
  type StateStore,
} from './state-store.js';
import { SwitchRuntime, type MirrorHealth } from './switch-runtime.js';
import type { ProtocolPoint } from './changes.js';

export interface ControllerDeps {
  config: FlowpinConfig;
  adapters: ReadonlyMap<string, SwitchAdapter>;
  logger: Logger;
  /** Time and timers; wall time unless given (the scenario runner passes a virtual clock). */
  clock?: Clock;
  /** Where state goes; a file store at `config.stateFile` unless given. */
  store?: StateStore;
  /** Start the mirror sources of the configuration (off in tests that feed events directly). */
  listen?: boolean;
  /** Start the periodic loops (off where the caller drives periodic() itself). */
  loops?: boolean;
  /** Called with every flow counted at risk or in a change window. */
  onCounted?: ChangeOptions['onCounted'];
  /** How long a lost mirror frame keeps the mirror `dropping` (10 s unless given; tests shorten it). */
  mirrorLossWindowMs?: number;
  /**
   * Each protocol point a change reaches, after the controller logged it (fault-injection runs kill the
   * process here).
   */
  onChangePoint?: (rec: ChangeRecord, point: ProtocolPoint) => void;
  /** Makes the adapter of a switch a reload adds (without it, switches cannot be added). */
  createAdapter?: (s: SwitchConfig) => SwitchAdapter;
}

export interface SwitchStatus {
  name: string;
  adapter: string;
  connected: boolean;
  inSync: boolean;
  reconcileFailures: number;
  /** An error retrying cannot mend (auth, refused configuration): writes stop until the next resync. */
  blocked: string | null;
  /** The switch's mirror: flowpin protects only what it sees. */
  mirror: MirrorHealth;
  lastError: string | null;
  queue: number;
  flows: number;
  /**
   * `table`: `full` (no free entry: a new pin cannot be programmed), `nearly-full` (under 5 % free), or `ok`.
   */
  pins: {
    desired: number;
    installed: number;
    failed: number;
    capacity: number;
    free: number;
    table: 'ok' | 'nearly-full' | 'full';
    /**
     * Pins found on the switch at a start without its flow state, adopted as tracked connections of unknown
     * liveness.
     */
    adopted: number;
  };
  /**
   * What flowpin has watched of the mirror: `warming` while some of the last connection lifetime was not
   * watched.
   */
  watch: { warming: boolean; unwatchedS: number; lifetimeS: number };
  /** Share of SYNs shed (the look-ups could not keep up) over the last rate window. */
  shedShare: number;
  /** Under high availability: who owns the switch (writes it), its epoch, this instance's last takeover. */
  ha?: SwitchOwnership;
}

/** A switch's ownership under high availability, as this instance knows it. */
export interface SwitchOwnership {
  /** This instance owns the switch: it writes its pins and group and runs its changes. */
  owned: boolean;
  /** The owner's name and API address (null while no instance owns it, or it is not known yet). */
  owner: string | null;
  ownerApi: string | null;
  /** The owner's epoch (0: never owned). */
  epoch: number;
  /** When this instance last took the switch (ms), null if never. */
  lastTakeoverAt: number | null;
  /** Where the takeover is: fencing, reading, waiting for the mirror, resuming, done (null: not owned). */
  takeover: string | null;
}

/** What the controller asks of high availability: which switches it may write, and who owns the others. */
export interface HaView {
  owns(sw: string): boolean;
  ownership(sw: string): SwitchOwnership;
  /** The refusal of a change on a switch this instance does not own (421, naming the owner). */
  notOwner(sw: string): FlowpinError;
}

/** Process memory and the configured bounds that hold it. */
export interface MemoryStatus {
  rssBytes: number;
  heapUsedBytes: number;
  /** Tracked flows and their bound (`flowTable.maxFlows`). */
  flows: number;
  maxFlows: number;
  /** Mirror events waiting for their look-up, and their bound (`resolveQueue` per switch). */
  queued: number;
  maxQueued: number;
}

export interface FlowView {
  switch: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  nexthop: string | null;
  pinned: boolean;
  lastSeen: number;
}

export class Controller {
  readonly metrics: ControllerMetrics = controllerMetrics();
  readonly flowTable: FlowTable;
  readonly registry = new NexthopRegistry();
  /** Per VIP, connections tracked and pins wanted over the last hour (the dashboard's charts). */
  readonly vipHistory = new VipHistory();
  readonly runtimes = new Map<string, SwitchRuntime>();
  readonly changes = new Map<string, ChangeManager>();
  readonly receiver: MirrorReceiver;
  /** Mirror frames lost before decoding (socket and backlog drops), for every switch's mirror health. */
  readonly mirrorLoss: MirrorLossMonitor;
  readonly now: () => number;
  readonly clock: Clock;
  readonly store: StateStore | undefined;
  /**
   * Where the mirror receiver listens, once started, and what it reads there (GRE-in-UDP, or VXLAN on port
   * 4789).
   */
  readonly listening: { address: string; port: number; encap: 'GRE-in-UDP' | 'VXLAN' }[] = [];
  private readonly bySource = new Map<string, SwitchRuntime>();
  private readonly byGreKey = new Map<number, SwitchRuntime>();
  private readonly bySession = new Map<number, SwitchRuntime>();
  private readonly byId = new Map<number, SwitchRuntime>();
  private readonly timers: unknown[] = [];
  private readonly log: Logger;
  private unknownSwitch = 0;
  /** The outer source of the last mirrored frame that matched no switch. */
  private unknownSource = '';
  private stateDirty = false;
  private stopped = false;
  /** Killed: nothing more is written anywhere. */
  private killed = false;
  private readonly periodicRunning = new Set<string>();
  private flowSave: Promise<unknown> | undefined;
  /** The running configuration: the one given, or the last a reload took. */
  private cfg: FlowpinConfig;
  /** The id the next switch added gets (ids are never reused within a run: flow keys carry them). */
  private nextId = 1;
  /** Started: switches added from now on are connected at once. */
  private started = false;
  /** Switches whose changes resume once the mirror is listened to. */
  private readonly toResume: SwitchRuntime[] = [];
  /** The last time the saved state shows flowpin watching (before this start); null without saved state. */
  private downSince: number | null = null;
  /** Saved flows that could not be placed (their switch is no longer configured), at the last start. */
  unplaced = 0;
  private listeningNow = false;
  /** Why state cannot be written (checked at start, and on every failed write); null when it can. */
  private stateError: string | null = null;
  private stateErrorFrom: 'changes' | 'journal' | 'flows' | undefined;
  private stateFailures = 0;
  private stateLoggedAt = -Infinity;
  /** Saved change records of switches no longer configured: written back as they were. */
  private savedForeign: Record<string, ChangeRecord[]> = {};
  /** Resolved flows not yet in the store's journal. */
  private journal: JournalEntry[] = [];
  private journalTimer: unknown;
  private journalWrite: Promise<void> = Promise.resolve();
  /**
   * When the oldest flow not yet cut into a journal commit was seen; commits in flight; the head of the last
   * durable commit.
   */
  private journalPendingSince: number | undefined;
  private journalInFlight = 0;
  private journalDurableAt = 0;
  /** High availability, when configured: only owned switches are written and run changes. */
  private ha: HaView | undefined;

  constructor(private readonly deps: ControllerDeps) {
    const cfg = deps.config;
    this.cfg = cfg;
    this.clock = deps.clock ?? systemClock;
    const clock = this.clock;
    this.now = () => clock.now();
    this.store = deps.store ?? (cfg.stateFile === undefined ? undefined : new FileStateStore(cfg.stateFile));
    this.log = deps.logger;
    // A flow pushed out of a full table is one flowpin saw and can no longer keep: its VIP's
    // changes count it at risk.
    this.flowTable = new FlowTable({
      maxFlows: cfg.flowTable.maxFlows,
      maxAgeMs: cfg.flowTable.maxAgeS * 1000,
      now: this.now,
      onEvict: (key, nh) => this.byId.get(switchIdOfKey(key))?.forgetFlow(key, nh),
      // Not seen for the connection lifetime: taken as ended, and its pin goes.
      onExpire: (key) => this.byId.get(switchIdOfKey(key))?.agedOut(key),
    });
    this.receiver = new MirrorReceiver(
      (ev) => this.onEvent(ev),
      this.now,
      (err) => this.log.warn({ err }, 'mirror source error'),
    );
    this.mirrorLoss = new MirrorLossMonitor(() => this.receiver.status(), this.now, deps.mirrorLossWindowMs);
    checkCapabilities(cfg, deps.adapters);
    cfg.switches.forEach((s, i) => {
      const given = deps.adapters.get(s.name);
      if (given === undefined) throw new Error(`no adapter for switch ${s.name}`);
      this.addRuntime(s, given, i + 1);
    });
    this.nextId = cfg.switches.length + 1;
    this.metrics.flows.collect(() =>
      [...this.runtimes.values()].map((rt) => ({ labels: { switch: rt.name }, value: this.countFlows(rt) })),
    );
    this.metrics.pins.collect(() =>
      [...this.runtimes.values()].flatMap((rt) => [
        { labels: { switch: rt.name, state: 'desired' }, value: rt.reconciler.desired.size },
        { labels: { switch: rt.name, state: 'installed' }, value: rt.reconciler.programmedCount() },
        { labels: { switch: rt.name, state: 'failed' }, value: rt.reconciler.failed.size },
      ]),
    );
    collectNexthopGauges(this.metrics, () => this.runtimes.values());
    collectChangeGauges(this.metrics, () =>
      [...this.changes].map(([name, cm]) => ({ switch: name, active: () => cm.active() })),
    );
    // Sources are those configured (a closed set); a socket whose count is unknown is not shown.
    this.metrics.mirrorSocketDrops.collect(() =>
      this.receiver
        .status()
        .sockets.flatMap((s) => (s.drops === null ? [] : [{ labels: { source: s.source }, value: s.drops }])),
    );
    this.metrics.mirrorReceiveBuffer.collect(() =>
      this.receiver.status().sockets.flatMap((s) => [
        { labels: { source: s.source, kind: 'granted' }, value: s.receiveBufferBytes },
        { labels: { source: s.source, kind: 'requested' }, value: s.requestedBufferBytes },
      ]),
    );
    this.metrics.mirrorBacklogDrops.collect(() => [
      { labels: {}, value: this.receiver.status().backlogDrops },
    ]);
    new ScrapeGauge(
      this.metrics.registry,
      'flowpin_memory_bytes',
      'Process memory by kind (rss, heap_used); bounded by flowTable.maxFlows and resolveQueue',
      ['kind'],
    ).collect(() => {
      const m = process.memoryUsage();
      return [
        { labels: { kind: 'rss' }, value: m.rss },
        { labels: { kind: 'heap_used' }, value: m.heapUsed },
      ];
    });
    new ScrapeGauge(
      this.metrics.registry,
      'flowpin_flow_table_max',
      'The bound on tracked flows (flowTable.maxFlows)',
      [],
    ).collect(() => [{ labels: {}, value: cfg.flowTable.maxFlows }]);
  }

  /** One switch's runtime and change manager, found by its mirror sources, GRE key or session id. */
  private addRuntime(s: SwitchConfig, given: SwitchAdapter, id: number): SwitchRuntime {
    const cfg = this.cfg;
    const adapter = timedAdapter(given, s.name, this.metrics);
    const rt = new SwitchRuntime({
      name: s.name,
      id,
      adapter,
      vips: s.vips.map((v) => ({ address: v.address, nexthops: [...v.nexthops] })),
      flowTable: this.flowTable,
      registry: this.registry,
      metrics: this.metrics,
      pinMode: cfg.pinMode,
      pinIdleTimeoutS: cfg.pinIdleTimeoutS,
      queueCapacity: cfg.resolveQueue,
      maxShed: cfg.flowTable.maxFlows,
      retryMaxMs: cfg.retryMaxMs,
      clock: this.clock,
      mirrorSilenceS: cfg.mirror.silenceS,
      mirrorCollapseRatio: cfg.mirror.collapseRatio,
      mirrorLoss: () => this.mirrorLoss.sample(),
      resolution: s.resolution,
      replyTimeoutMs: s.replyTimeoutMs,
      identityRefreshS: s.identityRefreshS,
      log: this.log,
      lifetimeMs: cfg.flowTable.maxAgeS * 1000,
      ...(s.connectionsSince === undefined ? {} : { knownEmptyBefore: s.connectionsSince }),
      mirrorEnds: s.mirrorEnds,
      ...(s.resolution === 'lookup' ? {} : { identity: new ServerIdentityMap(s.servers) }),
    });
    this.runtimes.set(s.name, rt);
    this.byId.set(rt.id, rt);
    this.changes.set(
      s.name,
      new ChangeManager(rt, {
        settleMs: cfg.settleMs,
        barrierTimeoutMs: cfg.barrierTimeoutMs,
        metrics: this.metrics,
        persist: () => this.persistChanges(),
        flowsDurable: () => this.syncJournal(),
        windowThreshold: cfg.consent.windowFlows,
        lifetimeS: cfg.flowTable.maxAgeS,
        // As configured now: a reload may change it.
        maxUnavailable: (vip) =>
          this.cfg.switches.find((x) => x.name === s.name)?.vips.find((v) => v.address === vip)
            ?.maxUnavailable ?? 1,
        onPoint: (rec, point) => this.changePoint(rec, point),
        ...(this.deps.onCounted ? { onCounted: this.deps.onCounted } : {}),
      }),
    );
    rt.watch((r) => {
      if (r.nexthop === undefined || this.store === undefined) return;
      this.journal.push({ switchName: rt.name, vip: r.vip, nexthop: r.nexthop, key: r.key });
      this.journalSoon();
    });
    for (const a of s.mirrorSources) this.bySource.set(a, rt);
    if (s.greKey !== undefined) this.byGreKey.set(s.greKey, rt);
    if (s.sessionId !== undefined) this.bySession.set(s.sessionId, rt);
    return rt;
  }

  /**
   * Runs under high availability (before start): a switch's changes resume only when this instance
   * takes it, its resync and drain tracking run only while it is owned, and only owned switches'
   * change records are written.
   */
  setHa(view: HaView): void {
    this.ha = view;
  }

  /** Whether this instance writes `sw` (always, without high availability). */
  owns(sw: string): boolean {
    return this.ha === undefined || this.ha.owns(sw);
  }

  /** The running configuration (a reload replaces it whole: reload.ts). */
  get config(): FlowpinConfig {
    return this.cfg;
  }

  /**
   * Takes a new configuration whose switches this controller runs now (reload.ts applies the switches first).
   */
  setConfig(next: FlowpinConfig): void {
    this.cfg = next;
  }

  /**
   * The adapter of a switch a reload adds, made as at start (the controller must have been given the means).
   */
  makeAdapter(s: SwitchConfig): SwitchAdapter {
    const make = this.deps.createAdapter;
    if (make === undefined) throw new Error('this flowpin cannot make adapters for new switches');
    return make(s);
  }

  /**
   * A switch a reload added: its adapter made by makeAdapter, its change records kept from an
   * earlier run taken back (they resume once it is connected), connected in the background.
   */
  addSwitch(s: SwitchConfig, adapter: SwitchAdapter): SwitchRuntime {
    if (this.runtimes.has(s.name)) throw new FlowpinError('conflict', `switch ${s.name} is running already`);
    const rt = this.addRuntime(s, adapter, this.nextId++);
    const saved = this.savedForeign[s.name];
    if (saved !== undefined) {
      (this.changes.get(s.name) as ChangeManager).adopt(saved);
      delete this.savedForeign[s.name];
    }
    if (this.started) {
      rt.watchLedger.begin(undefined);
      rt.adoptPinsAsFlows = true;
      if (this.deps.loops ?? true)
        this.every(
          this.cfg.resyncIntervalS * 1000,
          () => void this.periodicSwitch(rt),
          () => this.runtimes.get(rt.name) === rt,
        );
      void this.connect(rt);
    }
    return rt;
  }

  /**
   * A switch a reload removed (none of its changes in flight: the caller checked). Its pins stay
   * on the switch as at a stop; its change records stay in the state as they are; the flows it
   * tracked are forgotten; its loops end.
   */
  removeSwitch(name: string): void {
    const rt = this.runtime(name);
    const cm = this.changes.get(name) as ChangeManager;
    const active = cm.active();
    if (active.length > 0)
      throw new FlowpinError(
        'conflict',
        `switch ${name} has ${active.length} changes in flight (${active.map((r) => r.id).join(', ')})`,
      );
    this.runtimes.delete(name);
    this.changes.delete(name);
    this.byId.delete(rt.id);
    for (const map of [this.bySource, this.byGreKey, this.bySession] as Map<unknown, SwitchRuntime>[])
      for (const [k, v] of map) if (v === rt) map.delete(k);
    this.savedForeign[name] = cm.records.map((r) => ({ ...r }));
    cm.stop();
    rt.stop();
    const keys: string[] = [];
    for (const key of this.flowTable.keys()) if (switchIdOfKey(key) === rt.id) keys.push(key);
    for (const key of keys) this.flowTable.end(key);
    this.metrics.ready.remove({ switch: name });
    rt.adapter
      .close()
      .catch((err: unknown) =>
        this.log.warn(
          { switch: name, err: err instanceof Error ? err.message : String(err) },
          'closing a removed switch failed',
        ),
      );
  }

  /**
   * Loads saved state, connects to the switches (retrying in the background), starts listening and the
   * periodic work.
   */
  async start(): Promise<void> {
    const cfg = this.cfg;
    if (this.store instanceof FileStateStore) {
      const left = removeLeftovers(this.store.where);
      if (left.length > 0)
        this.log.warn({ files: left }, 'removed temporary state files a killed process left');
    }
    // Read and checked whole before anything else: a state file that is not what flowpin wrote stops the
    // start (StateError).
    const saved = this.store === undefined ? undefined : loadState(this.store);
    if (saved) {
      this.downSince =
        Math.max(
          saved.journalUntil ?? 0,
          ...Object.values(saved.watch).flatMap((w) => w.watched.map((i) => i.to)),
          0,
        ) || null;
      // The change records first: kept from now on, whatever happens to the switches.
      for (const [name, list] of Object.entries(saved.changes)) {
        const cm = this.changes.get(name);
        if (cm !== undefined) cm.adopt(list);
        else if (list.some(isActive))
          this.log.warn(
            { switch: name, changes: list.length },
            'saved changes of a switch no longer configured: kept in the state file, not resumed',
          );
      }
      this.savedForeign = Object.fromEntries(
        Object.entries(saved.changes).filter(([name]) => !this.changes.has(name)),
      );
      this.restoreFlows(saved);
    }
    // The flows restored are written again at once, keyed by each switch's place in this
    // configuration (a reordered one changes it), before anything new is journaled: a journal
    // line of this run never meets a snapshot key of the last.
    if (saved !== undefined && saved.flows.length > 0) await this.persist().catch(() => undefined);
    // The state must be writable before flowpin promises anything across a restart.
    await this.persistChanges().catch(() => undefined);
    if (this.deps.listen ?? true) {
      for (const u of cfg.mirror.udp) {
        const b = await this.receiver.listenUdp({
          host: u.host,
          port: u.port,
          receiveBufferBytes: u.receiveBufferBytes,
          reader: u.reader,
        });
        const sock = this.receiver.status().sockets.find((s) => s.source.endsWith(`:${b.address}:${b.port}`));
        const encap = sock?.source.startsWith('vxlan:') === true ? 'VXLAN' : 'GRE-in-UDP';
        this.listening.push({ ...b, encap });
        this.log.info(
          {
            address: b.address,
            port: b.port,
            receiveBufferBytes: sock?.receiveBufferBytes,
            reader: sock?.reader,
          },
          `listening for ${encap} mirror frames`,
        );
        if (sock?.readerNote !== undefined)
          this.log.warn(
            { address: b.address, port: b.port, reader: sock.reader },
            `mirror socket read with Node dgram (slower): ${sock.readerNote}`,
          );
        // Linux grants twice the request, capped at net.core.rmem_max: half the grant is what was honoured.
        if (sock !== undefined && sock.receiveBufferBytes / 2 < u.receiveBufferBytes) {
          this.log.warn(
            {
              address: b.address,
              port: b.port,
              requested: u.receiveBufferBytes,
              granted: sock.receiveBufferBytes,
            },
            `the kernel capped the mirror socket's receive buffer (net.core.rmem_max); raise it with: sysctl -w net.core.rmem_max=${u.receiveBufferBytes}`,
          );
        }
      }
      if (cfg.mirror.raw) {
        await this.receiver.listenRaw({ family: 4 });
        const raw = this.receiver.status().sockets.find((s) => s.source === 'raw-gre:ipv4');
        this.log.info({ reader: raw?.reader }, 'listening for GRE on a raw socket');
        if (raw?.readerNote !== undefined)
          this.log.warn(
            { reader: raw.reader },
            `raw GRE socket read on the main thread with the raw-socket addon: ${raw.readerNote}`,
          );
      }
    }
    // Watching begins as the mirror is listened to (before the switches are connected: SYNs seen
    // meanwhile wait for their look-up); what was watched before a restart comes from the state.
    for (const rt of this.runtimes.values()) rt.watchLedger.begin(saved?.watch[rt.name]);
    // A switch without flow state (none saved, or discarded as unreadable): the connections behind
    // the pins it holds are no longer known, and the pins are adopted as connections of unknown liveness.
    for (const rt of this.runtimes.values())
      rt.adoptPinsAsFlows =
        saved?.watch[rt.name] === undefined && !(saved?.flows ?? []).some((g) => g.switchName === rt.name);
    // Each switch is brought up within its own deadline: one that is slow or down never holds the others.
    await Promise.all([...this.runtimes.values()].map((rt) => this.connect(rt)));
    if (this.deps.loops ?? true) {
      for (const rt of this.runtimes.values())
        this.every(
          cfg.resyncIntervalS * 1000,
          () => void this.periodicSwitch(rt),
          () => this.runtimes.get(rt.name) === rt,
        );
      // Drains tracked (and their progress sampled) every second; deadlines kept to the second.
      this.every(1000, () => this.trackAll());
      this.every(cfg.resyncIntervalS * 1000, () => this.flowTable.purgeStale());
      if (this.store !== undefined) this.every(cfg.persistIntervalS * 1000, () => this.persistIfDirty());
      // Lost frames are noticed within a second even when nobody asks for readiness.
      this.every(1000, () => {
        this.mirrorLoss.sample();
      });
      this.sampleVips();
      this.every(SAMPLE_EVERY_MS, () => this.sampleVips());
    }
    // Changes left in progress resume only now, with the mirror listened to: a resumed change
    // must see the SYNs that arrive while it runs.
    this.listeningNow = true;
    this.started = true;
    for (const rt of this.toResume.splice(0)) this.resume(rt);
  }

  private resume(rt: SwitchRuntime): void {
    (this.changes.get(rt.name) as ChangeManager)
      .resume(this.downSince)
      .catch((err: unknown) =>
        this.log.error(
          { switch: rt.name, err: err instanceof Error ? err.message : String(err) },
          'resuming changes failed',
        ),
      );
  }

  /**
   * A sample of every VIP's connections: tracked (live or unknown) and pinned (taken every SAMPLE_EVERY_MS by
   * the loops).
   */
  sampleVips(): void {
    this.vipHistory.record(
      this.now(),
      [...this.runtimes.values()].flatMap((rt) =>
        [...this.vipsNow(rt)].map(([vip, n]) => ({ switch: rt.name, vip, ...n })),
      ),
    );
  }

  /**
   * Each VIP's connections now, as its history samples them: tracked on its nexthops, and pins wanted (one
   * pass over the pins).
   */
  vipsNow(rt: SwitchRuntime): Map<string, Omit<VipSample, 't'>> {
    const out = new Map<string, Omit<VipSample, 't'>>();
    for (const v of rt.vips.values()) {
      let live = 0;
      for (const nh of v.nexthops) {
        const id = this.registry.find(rt.name, v.address, nh);
        if (id !== undefined) live += this.flowTable.countOn(id);
      }
      out.set(v.address, { live, pinned: 0 });
    }
    for (const p of rt.reconciler.desired.values()) {
      const n = out.get(p.flow.dst);
      if (n !== undefined) n.pinned++;
    }
    return out;
  }

  /** Tracks every switch's drains; a record that changed is written. */
  private trackAll(): void {
    let changed = false;
    for (const [name, cm] of this.changes) if (this.owns(name) && cm.track()) changed = true;
    if (changed) this.persistChanges().catch((err: unknown) => this.stateFailed(err));
  }

  /**
   * A change reached a point of its protocol: logged; a fault-injection run (FLOWPIN_CRASH_AT) may kill the
   * process here.
   */
  private changePoint(rec: ChangeRecord, point: ProtocolPoint): void {
    this.log.info(
      {
        change: rec.id,
        switch: rec.switch,
        vip: rec.vip,
        nexthop: rec.nexthop,
        kind: rec.kind,
        phase: point,
      },
      'change phase',
    );
    this.deps.onChangePoint?.(rec, point);
  }

  /**
   * Stops: writes the state (changes and tracked flows) and closes the switches; without a kill, nothing is
   * lost.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) this.clock.cancel(t);
    if (this.journalTimer !== undefined) this.clock.cancel(this.journalTimer);
    await this.receiver.stop();
    for (const cm of this.changes.values()) cm.stop();
    for (const rt of this.runtimes.values()) rt.stop();
    try {
      // Nothing moves the flow table now: flows still waiting for their look-up are written too.
      await this.persist(true);
    } finally {
      await Promise.all([...this.runtimes.values()].map((rt) => rt.adapter.close()));
    }
  }

  /** Stops at once, writing nothing (as a killed process would); for crash tests. */
  kill(): void {
    this.killed = true;
    this.stopped = true;
    if (this.journalTimer !== undefined) this.clock.cancel(this.journalTimer);
    for (const t of this.timers) this.clock.cancel(t);
    void this.receiver.stop();
    for (const rt of this.runtimes.values()) rt.stop();
  }

  /** One resync and tracking pass over every switch at once, each with its own deadline. */
  async periodic(): Promise<void> {
    this.flowTable.purgeStale();
    await Promise.all([...this.runtimes.values()].map((rt) => this.periodicSwitch(rt)));
    this.trackAll();
    this.stateDirty = true;
  }

  /** A switch's resync and drain tracking; bounded by a deadline, never waits on another switch. */
  private async periodicSwitch(rt: SwitchRuntime): Promise<void> {
    if (!rt.connected || this.periodicRunning.has(rt.name) || this.stopped || !this.owns(rt.name)) return;
    this.periodicRunning.add(rt.name);
    try {
      await withDeadline(
        this.clock,
        rt.reconciler.resync(),
        this.cfg.barrierTimeoutMs,
        () => `resyncing ${rt.name}`,
      );
    } catch (err) {
      this.log.warn(
        { err: err instanceof Error ? err.message : String(err), switch: rt.name },
        'resync failed',
      );
    } finally {
      this.periodicRunning.delete(rt.name);
    }
    this.stateDirty = true;
  }

  /** A decoded mirror event: find its switch, hand it over, count what happened. */
  onEvent(ev: FlowEvent): void {
    const rt =
      (ev.greKey !== null ? this.byGreKey.get(ev.greKey) : undefined) ??
      (ev.sessionId !== null ? this.bySession.get(ev.sessionId) : undefined) ??
      this.bySource.get(ev.outerSrc);
    if (rt === undefined) {
      this.unknownSwitch++;
      this.unknownSource = ev.outerSrc;
      this.metrics.events.inc({ switch: 'unknown', kind: 'unknown-switch' });
      return;
    }
    if (ev.at > rt.lastFrameAt) rt.lastFrameAt = ev.at;
    const what = rt.onSegment(ev.tuple, ev.dst, ev.flags, { src: ev.src, srcMac: ev.srcMac, port: ev.port });
    this.metrics.events.inc({ switch: rt.name, kind: what });
    if (what === 'shed') this.metrics.shed.inc({ switch: rt.name });
    if (what === 'syn' || what === 'end' || what === 'half-close') this.stateDirty = true;
    if ((what === 'syn' || what === 'end' || what === 'half-close') && this.store !== undefined) {
      // Journaled when seen, before its look-up (and when it half-closes or ends): a kill loses only the last
      // group commit.
      const fromServer = rt.vips.has(ev.src);
      const key =
        what !== 'syn' && fromServer ? flowKey(rt.id, reverseTuple(ev.tuple)) : flowKey(rt.id, ev.tuple);
      this.journal.push({
        switchName: rt.name,
        vip: '',
        nexthop: '',
        key,
        ...(what === 'end'
          ? { ended: true }
          : what === 'half-close'
            ? { half: fromServer ? 'server' : 'client' }
            : {}),
      });
      this.journalSoon();
    }
  }

  runtime(name: string): SwitchRuntime {
    const rt = this.runtimes.get(name);
    if (rt === undefined) throw notFound(`no switch named '${name}'`, { switch: name });
    return rt;
  }

  /**
   * Under high availability, the fence a switch's writes carry from now on (its owner's epoch and
   * lease deadline), set by whoever holds the switch's ownership; undefined: none (no HA).
   */
  setFence(name: string, token: FenceToken | undefined): void {
    this.runtime(name).reconciler.setFence(token);
  }

  /** A new owner takes a switch: fences it with `token` and reads it again (Reconciler.takeover). */
  fenceTakeover(name: string, token: FenceToken): Promise<void> {
    return this.runtime(name).reconciler.takeover(token);
  }

  changeManager(name: string): ChangeManager {
    this.runtime(name);
    return this.changes.get(name) as ChangeManager;
  }

  /** The switch's change manager, for its changes: under high availability only on its owner (else 421). */
  ownedChanges(name: string): ChangeManager {
    const cm = this.changeManager(name);
    if (this.ha !== undefined && !this.ha.owns(name)) throw this.ha.notOwner(name);
    return cm;
  }

  /**
   * Ready: every switch connected, its last writes and look-ups succeeded. (Work in progress
   * is not a failure: `inSync` says whether every wanted pin is written yet.)
   */
  readiness(): {
    ready: boolean;
    switches: SwitchStatus[];
    stateError: string | null;
    reasons: string[];
    memory: MemoryStatus;
  } {
    const switches = [...this.runtimes.values()].map((rt) => this.status(rt));
    // A full pin table cannot protect the next connection; state that cannot be written is lost at the next
    // restart.
    const maxShed = this.cfg.readiness.maxShedShare;
    // A switch another instance owns is not written here: its write state says nothing of this instance.
    const ok = (s: SwitchStatus): boolean =>
      s.connected &&
      s.mirror.state === 'ok' &&
      (s.ha?.owned === false ||
        (s.reconcileFailures === 0 &&
          s.blocked === null &&
          s.lastError === null &&
          s.pins.table !== 'full')) &&
      s.shedShare <= maxShed;
    return {
      ready: !this.stopped && this.stateError === null && switches.every(ok),
      switches,
      stateError: this.stateError,
      reasons: this.reasons(switches),
      memory: this.memory(),
    };
  }

  /** Why flowpin is not ready, or what it will soon fail to keep, one line each (empty when all is well). */
  private reasons(switches: SwitchStatus[]): string[] {
    const out: string[] = [];
    if (this.stopped) out.push('stopping');
    if (this.stateError !== null) out.push(this.stateError);
    if (this.unknownSwitch > 0)
      out.push(
        `${this.unknownSwitch} mirrored frames came from a source no switch is configured for (the last from ${this.unknownSource}): check each switch's mirrorSources, greKey or sessionId`,
      );
    for (const s of switches) {
      if (!s.connected)
        out.push(`${s.name}: not connected${s.lastError === null ? '' : ` (${s.lastError})`}`);
      else if (s.lastError !== null) out.push(`${s.name}: ${s.lastError}`);
      if (s.blocked !== null && s.ha?.owned !== false) out.push(`${s.name}: writes blocked (${s.blocked})`);
      if (s.mirror.state !== 'ok')
        out.push(`${s.name}: mirror ${s.mirror.state}${s.mirror.why === null ? '' : ` (${s.mirror.why})`}`);
      if (s.shedShare > this.cfg.readiness.maxShedShare)
        out.push(
          `${s.name}: ${Math.round(s.shedShare * 1000) / 10} % of SYNs shed lately (the switch's look-ups cannot keep up; over readiness.maxShedShare ${this.cfg.readiness.maxShedShare}): changes count them at risk`,
        );
      if (s.mirror.liveness === 'syn-only')
        out.push(
          `${s.name}: liveness syn-only: the mirror shows no FIN or RST, so connections are taken as open until ${this.cfg.flowTable.maxAgeS} s after they were last seen (mirror FIN and RST to track them exactly)`,
        );
      // Not a failure: a change then counts (and needs consent for) the connections flowpin may not have
      // seen.
      if (s.watch.warming)
        out.push(
          `${s.name}: warming: flowpin has not watched ${s.watch.unwatchedS} s of the last ${s.watch.lifetimeS} s connection lifetime; changes count the connections it may not have seen`,
        );
      const always = this.runtimes.get(s.name)?.pinMode === 'always';
      // In always mode every new connection takes an entry: nearly full is the warning before new connections
      // go unpinned.
      if (s.pins.table === 'full')
        out.push(
          `${s.name}: pin table full (0 of ${s.pins.capacity} entries free): new connections cannot be pinned`,
        );
      else if (s.pins.table === 'nearly-full')
        out.push(
          `${s.name}: pin table nearly full (${s.pins.free} of ${s.pins.capacity} entries free)${always ? ': in always mode, new connections will soon go unpinned' : ''}`,
        );
    }
    return out;
  }

  /** Process memory beside the configured bounds that hold it (tracked flows, queued look-ups). */
  memory(): MemoryStatus {
    const m = process.memoryUsage();
    const cfg = this.cfg;
    let queued = 0;
    for (const rt of this.runtimes.values()) queued += rt.queue.length;
    return {
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      flows: this.flowTable.size,
      maxFlows: cfg.flowTable.maxFlows,
      queued,
      maxQueued: cfg.resolveQueue * this.runtimes.size,
    };
  }

  status(rt: SwitchRuntime): SwitchStatus {
    const r = rt.reconciler;
    const free = r.freeEntries();
    return {
      name: rt.name,
      adapter: rt.adapter.kind,
      connected: rt.connected,
      inSync: r.inSync,
      reconcileFailures: r.failures,
      blocked: r.blocked ?? null,
      mirror: rt.mirrorHealth(),
      lastError: r.lastError ?? rt.lastResolveError ?? this.adapterProblems(rt),
      queue: rt.queue.length,
      flows: this.countFlows(rt),
      pins: {
        desired: r.desired.size,
        installed: r.programmedCount(),
        failed: r.failed.size,
        capacity: r.tableCapacity,
        free,
        table: free === 0 ? 'full' : free < r.tableCapacity * 0.05 ? 'nearly-full' : 'ok',
        adopted: rt.adoptedFlows,
      },
      watch: {
        warming: rt.watchLedger.warming(),
        unwatchedS: Math.round(rt.watchLedger.unwatched().reduce((n, g) => n + g.to - g.from, 0) / 1000),
        lifetimeS: this.cfg.flowTable.maxAgeS,
      },
      shedShare: rt.mirror.shedShare,
      ...(this.ha === undefined ? {} : { ha: this.ha.ownership(rt.name) }),
    };
  }

  /** What a connected adapter says it cannot answer for now (joined), or null. */
  private adapterProblems(rt: SwitchRuntime): string | null {
    const p = rt.connected ? rt.adapter.problems() : [];
    return p.length === 0 ? null : p.join('; ');
  }

  /** How long a pin lasts without packets, and a tracked flow without being seen (seconds). */
  get timeouts(): { pinIdleS: number; flowMaxAgeS: number } {
    return { pinIdleS: this.cfg.pinIdleTimeoutS, flowMaxAgeS: this.cfg.flowTable.maxAgeS };
  }

  /**
   * Flows, most recently seen first (by `lastSeen`: the table's own order also counts a
   * look-up's answer as use), filtered and paged.
   */
  flows(
    filter: {
      switch?: string;
      vip?: string;
      nexthop?: string;
      client?: string;
      port?: number;
      pinned?: boolean;
    },
    offset: number,
    limit: number,
  ): { total: number; items: FlowView[] } {
    const rts = filter.switch === undefined ? [...this.runtimes.values()] : [this.runtime(filter.switch)];
    const ids = new Set(rts.map((r) => r.id));
    let keys: Iterable<string>;
    if (filter.nexthop !== undefined && filter.vip !== undefined)
      keys = rts.flatMap((r) => r.flowsOn(filter.vip as string, filter.nexthop as string));
    else keys = this.flowTable.keys();
    const found: string[] = [];
    const seen: number[] = [];
    for (const key of keys) {
      const rt = this.byId.get(switchIdOfKey(key));
      if (rt === undefined || !ids.has(rt.id)) continue;
      const e = this.flowTable.entry(key);
      if (e === undefined) continue;
      const ref = e.nexthopId === UNRESOLVED ? undefined : this.registry.ref(e.nexthopId);
      if (filter.vip !== undefined && e.dst !== filter.vip) continue;
      if (filter.nexthop !== undefined && ref?.nexthop !== filter.nexthop) continue;
      if (filter.client !== undefined && e.src !== filter.client) continue;
      if (filter.port !== undefined && e.sport !== filter.port) continue;
      if (filter.pinned !== undefined && rt.reconciler.has(e) !== filter.pinned) continue;
      found.push(key);
      seen.push(e.lastSeen);
    }
    const order = Uint32Array.from(found.keys()).sort((a, b) => (seen[b] ?? 0) - (seen[a] ?? 0));
    const items: FlowView[] = [];
    for (const i of order.subarray(Math.min(offset, order.length), Math.min(offset + limit, order.length))) {
      const key = found[i] as string;
      const rt = this.byId.get(switchIdOfKey(key));
      const e = this.flowTable.entry(key);
      if (rt === undefined || e === undefined) continue;
      const ref = e.nexthopId === UNRESOLVED ? undefined : this.registry.ref(e.nexthopId);
      // The time the order was made by (entry() derives it from the age left, read anew at each call).
      items.push({
        switch: rt.name,
        src: e.src,
        dst: e.dst,
        sport: e.sport,
        dport: e.dport,
        nexthop: ref?.nexthop ?? null,
        pinned: rt.reconciler.has(e),
        lastSeen: seen[i] ?? e.lastSeen,
      });
    }
    return { total: found.length, items };
  }

  /** Pins wanted, installed or failed, filtered and paged. */
  pins(
    filter: {
      switch?: string;
      vip?: string;
      nexthop?: string;
      client?: string;
      state?: 'desired' | 'installed' | 'failed';
    },
    offset: number,
    limit: number,
  ) {
    const rts = filter.switch === undefined ? [...this.runtimes.values()] : [this.runtime(filter.switch)];
    const rows: {
      switch: string;
      src: string;
      dst: string;
      sport: number;
      dport: number;
      nexthop: string;
      state: 'pending' | 'installed' | 'failed';
      reason: string;
    }[] = [];
    for (const rt of rts) {
      const r = rt.reconciler;
      const add = (
        f: { src: string; dst: string; sport: number; dport: number },
        nexthop: string,
        state: 'pending' | 'installed' | 'failed',
        reason: string,
      ): void => {
        if (filter.vip !== undefined && f.dst !== filter.vip) return;
        if (filter.nexthop !== undefined && nexthop !== filter.nexthop) return;
        if (filter.client !== undefined && f.src !== filter.client) return;
        rows.push({
          switch: rt.name,
          src: f.src,
          dst: f.dst,
          sport: f.sport,
          dport: f.dport,
          nexthop,
          state,
          reason,
        });
      };
      if (filter.state !== 'failed') {
        for (const [id, p] of r.desired) {
          const inst = r.installed.get(id);
          const state = inst?.programmed && inst.nexthop === p.nexthop ? 'installed' : 'pending';
          if (filter.state === 'installed' && state !== 'installed') continue;
          add(p.flow, p.nexthop, state, p.reason);
        }
      }
      if (filter.state === undefined || filter.state === 'failed')
        for (const f of r.failed.values()) add(f.flow, f.nexthop, 'failed', `${f.why}: ${f.detail}`);
    }
    return { total: rows.length, items: rows.slice(offset, offset + limit) };
  }

  /**
   * A flow was added to the journal: committed within JOURNAL_MS. The timer can fire late when
   * the event loop is busy (a burst of frames); the next flow added then cuts the commit itself,
   * so that the commit never waits on the timer alone.
   */
  private journalSoon(): void {
    if (this.killed) return;
    const now = this.now();
    this.journalPendingSince ??= now;
    if (now - this.journalPendingSince >= JOURNAL_MS) {
      if (this.journalTimer !== undefined) this.clock.cancel(this.journalTimer);
      this.journalTimer = undefined;
      void this.syncJournal().catch(() => undefined);
      return;
    }
    if (this.journalTimer !== undefined) return;
    this.journalTimer = this.clock.schedule(JOURNAL_MS, () => {
      this.journalTimer = undefined;
      void this.syncJournal().catch(() => undefined);
    });
  }

  /**
   * Up to when every flow seen is durable in the journal: now when nothing waits to be written,
   * else the head of the last durable commit. The watch record saved with the change log ends
   * here, so a restart counts anything seen after it in its gap (unseen), not as watched.
   */
  journalSafeUntil(): number {
    if (this.store === undefined) return this.now();
    return this.journal.length === 0 && this.journalInFlight === 0 ? this.now() : this.journalDurableAt;
  }

  /**
   * A durable write failed: not ready from now on (until a write of the same kind succeeds),
   * logged at most once every LOG_EVERY_MS with the count of failures since.
   */
  private stateFailed(err: unknown, from: 'changes' | 'journal' | 'flows' = 'changes'): void {
    const what =
      from === 'changes' ? 'the change log' : from === 'journal' ? 'the flow journal' : 'the flow snapshot';
    this.stateError = `cannot write ${what} (${this.store?.where ?? ''}): ${err instanceof Error ? err.message : String(err)}`;
    this.stateErrorFrom = from;
    this.stateFailures++;
    const now = this.now();
    if (now - this.stateLoggedAt < LOG_EVERY_MS) return;
    this.log.error(
      { err: this.stateError, failuresSinceLastLog: this.stateFailures },
      'state not writable: not ready, changes refused',
    );
    this.stateLoggedAt = now;
    this.stateFailures = 0;
  }

  /** Changes are refused while the state cannot be written: a restart would not know of them (507). */
  stateWritable(): void {
    if (this.stateError !== null)
      throw new FlowpinError(
        'state-unwritable',
        `${this.stateError}: changes are refused until flowpin can write its state again`,
        { stateError: this.stateError },
      );
  }

  /**
   * Writes the resolved flows not yet journaled; resolves once every flow resolved before the call is
   * durable.
   */
  syncJournal(): Promise<void> {
    const store = this.store;
    if (store === undefined || this.killed) return Promise.resolve();
    const batch = this.journal;
    this.journal = [];
    const at = this.now();
    const oldest = this.journalPendingSince ?? at;
    this.journalPendingSince = undefined;
    this.journalInFlight++;
    const run = this.journalWrite
      .then(() => (batch.length === 0 ? undefined : store.appendFlows(batch, at)))
      .then(
        () => {
          this.journalInFlight--;
          this.journalDurableAt = Math.max(this.journalDurableAt, at);
          if (batch.length > 0) this.metrics.journalLag.observe(Math.max(0, this.now() - oldest) / 1000);
          if (this.stateErrorFrom === 'journal') this.stateError = null;
        },
        (err: unknown) => {
          this.journalInFlight--;
          this.stateFailed(err, 'journal');
          throw new FlowpinError(
            'state-unwritable',
            `cannot write the flow journal (${store.where}.journal): ${err instanceof Error ? err.message : String(err)}`,
            undefined,
            { cause: err },
          );
        },
      );
    this.journalWrite = run.catch(() => undefined);
    return run;
  }

  /** Writes the change records durably (write-ahead: before any group change is sent). */
  persistChanges(): Promise<void> {
    this.stateDirty = true;
    if (this.store === undefined || this.killed) return Promise.resolve();
    const changes: Record<string, ChangeRecord[]> = this.ha === undefined ? { ...this.savedForeign } : {};
    const watch: Record<string, WatchRecord> = {};
    for (const [name, cm] of this.changes) {
      // Under high availability a switch's change log is its owner's alone (etcd refuses the others).
      if (!this.owns(name)) continue;
      // Progress histories of the last few records only: the log is written on every phase of every change.
      const keep = new Set(cm.records.slice(-10).map((r) => r.id));
      changes[name] = cm.records.map((r) => {
        const { progress, ...rest } = r;
        return {
          ...rest,
          atRiskBy: { ...r.atRiskBy },
          ...(progress !== undefined && keep.has(r.id) ? { progress: [...progress] } : {}),
        };
      });
      const rt = this.runtimes.get(name);
      if (rt?.watchLedger.watching === true) watch[name] = rt.watchLedger.record(this.journalSafeUntil());
    }
    const write = this.store.saveChanges({ changes, watch });
    // The first failed durable write makes flowpin not ready at once; the next good one clears it.
    return write.then(
      () => {
        if (this.stateError !== null && this.stateErrorFrom === 'changes') this.stateError = null;
      },
      (err: unknown) => {
        // Under high availability a switch lost meanwhile: its records are its next owner's now; the
        // state itself is writable.
        if (err instanceof Error && err.name === 'StaleOwnerError')
          throw new FlowpinError('switch-unavailable', err.message, undefined, { cause: err });
        this.stateFailed(err, 'changes');
        throw new FlowpinError(
          'state-unwritable',
          `cannot write the change log (${this.store?.where ?? ''}.changes): ${err instanceof Error ? err.message : String(err)}`,
          undefined,
          { cause: err },
        );
      },
    );
  }

  /**
   * Writes the change records and the tracked flows (periodically, on SIGTERM, and on stop).
   * `withUnresolved`: also the flows still waiting for their look-up (only once nothing moves
   * the flow table: the walk over it is not safe across turns of the event loop otherwise).
   */
  async persist(withUnresolved = false): Promise<void> {
    const store = this.store;
    if (store === undefined || this.killed) return;
    this.stateDirty = false;
    const started = this.clock.now();
    const t0 = performance.now();
    await this.persistChanges();
    const table = this.flowTable;
    const registry = this.registry;
    const unresolved = new Map<number, string[]>();
    if (withUnresolved) {
      for (const key of table.keys()) {
        if (table.nexthopOf(key) !== UNRESOLVED) continue;
        const sw = switchIdOfKey(key);
        const list = unresolved.get(sw);
        if (list) list.push(key);
        else unresolved.set(sw, [key]);
      }
    }
    const names = new Map([...this.runtimes.values()].map((rt) => [rt.id, rt.name]));
    const n = await store.saveFlows(
      {
        *groups() {
          for (const [id, keys] of table.indexed()) {
            const ref = registry.ref(id);
            if (ref !== undefined)
              yield { switchName: ref.switchName, vip: ref.vip, nexthop: ref.nexthop, keys };
          }
          // Seen, not resolved yet: no VIP or nexthop; looked up again after the restart.
          for (const [sw, keys] of unresolved)
            yield { switchName: names.get(sw) ?? '', vip: '', nexthop: '', keys };
        },
        live: (key) => table.has(key),
        halfClosedBy: (key) => table.halfClosedBy(key) ?? null,
      },
      started,
    );
    this.metrics.persistSeconds.observe({}, (performance.now() - t0) / 1000);
    this.log.debug({ flows: n }, 'state written');
  }

  private persistIfDirty(): void {
    if (!this.stateDirty || this.flowSave !== undefined) return;
    this.flowSave = this.persist()
      .then(() => {
        if (this.stateErrorFrom === 'flows') this.stateError = null;
      })
      .catch((err: unknown) => {
        this.stateDirty = true;
        if (!(err instanceof FlowpinError)) this.stateFailed(err, 'flows');
      })
      .finally(() => (this.flowSave = undefined));
  }

  /**
   * Puts the saved flows back. A flow is placed by its switch's name (the group it was saved
   * in), not by the id in its key: switch ids follow the order of the configuration file, which
   * may change between runs. Flows of a switch no longer configured, or of a VIP it no longer
   * has, are counted and logged.
   */
  private restoreFlows(saved: LoadedState): void {
    let n = 0;
    let unplaced = 0;
    const missing = new Set<string>();
    // Saved newest first per nexthop: restore oldest first, so the LRU order ends as it was.
    for (const g of saved.flows) {
      const rt = this.runtimes.get(g.switchName);
      if (rt === undefined || (g.vip !== '' && !rt.vips.has(g.vip))) {
        unplaced += g.keys.length;
        missing.add(rt === undefined ? `switch ${g.switchName}` : `VIP ${g.vip} of ${g.switchName}`);
        continue;
      }
      const id = g.nexthop === '' ? UNRESOLVED : this.registry.intern(g.switchName, g.vip, g.nexthop);
      for (const saved_ of g.keys) {
        if (saved.ended.has(saved_)) continue;
        const key = flowKey(rt.id, saved_.slice(2));
        if (!rt.vips.has(specOf(key).dst)) {
          unplaced++;
          continue;
        }
        const fresh = this.flowTable.touch(key);
        if (id !== UNRESOLVED) this.flowTable.resolve(key, id);
        rt.markRestored(key);
        // Half-closed when written: it still ends at the other side's FIN, not at one more of the same.
        const half = saved.halfClosed.get(saved_);
        if (half !== undefined && this.flowTable.halfClosedBy(key) === null) this.flowTable.fin(key, half);
        if (fresh) n++;
      }
    }
    // Seen but not resolved when written (no later line resolved them): looked up again.
    for (const g of saved.flows) {
      const rt = this.runtimes.get(g.switchName);
      if (rt === undefined || g.nexthop !== '') continue;
      for (const saved_ of g.keys) {
        const key = flowKey(rt.id, saved_.slice(2));
        if (!saved.ended.has(saved_) && this.flowTable.nexthopOf(key) === UNRESOLVED) rt.lookUpAgain(key);
      }
    }
    this.unplaced = unplaced;
    this.log.info({ flows: n }, 'restored tracked flows');
    if (unplaced > 0)
      this.log.warn(
        { flows: unplaced, of: [...missing].slice(0, 10) },
        'saved flows of switches or VIPs no longer configured: not restored',
      );
  }

  /**
   * Connects a switch; if it does not answer, keeps trying in the background (the controller reports not
   * ready).
   */
  private async connect(rt: SwitchRuntime): Promise<void> {
    try {
      await withDeadline(
        this.clock,
        this.bringUp(rt),
        this.cfg.barrierTimeoutMs,
        () => `connecting to ${rt.name}`,
      );
    } catch (err) {
      if (rt.connected) {
        // Connected, but its first resync is slow: it goes on in the background.
        this.log.warn(
          { switch: rt.name, err: err instanceof Error ? err.message : String(err) },
          'switch slow to list its pins; going on',
        );
        return;
      }
      rt.lastResolveError = err instanceof Error ? err.message : String(err);
      if (err instanceof SwitchUnsupportedError) {
        // The switch cannot be driven as configured: retrying cannot mend it; the status says why until a
        // restart.
        this.log.error(
          { switch: rt.name, err: rt.lastResolveError },
          'switch cannot be driven as configured; not retrying: fix what the error names and restart flowpin',
        );
        return;
      }
      this.log.warn(
        { switch: rt.name, err: rt.lastResolveError },
        'switch not connected; retrying in the background',
      );
      void this.connectLater(rt);
    }
  }

  private async connectLater(rt: SwitchRuntime): Promise<void> {
    // Until connected, stopped, or removed by a reload.
    const wanted = (): boolean => !this.stopped && this.runtimes.get(rt.name) === rt;
    for (let attempt = 2; wanted() && !rt.connected; attempt++) {
      await sleep(this.clock, Math.min(this.cfg.retryMaxMs, 250 * 2 ** Math.min(attempt, 7)));
      if (!wanted()) return;
      try {
        await this.bringUp(rt);
      } catch (err) {
        rt.lastResolveError = err instanceof Error ? err.message : String(err);
        if (err instanceof SwitchUnsupportedError) {
          this.log.error(
            { switch: rt.name, err: rt.lastResolveError },
            'switch cannot be driven as configured; not retrying: fix what the error names and restart flowpin',
          );
          return;
        }
      }
    }
  }

  private async bringUp(rt: SwitchRuntime): Promise<void> {
    // The changes resume once the groups are read: whatever happens to the first resync, they resume.
    const resume = (): void => {
      // Under high availability a switch's changes resume at its takeover (controller/ha/takeover.ts).
      if (this.ha !== undefined) return;
      if (this.listeningNow) this.resume(rt);
      else this.toResume.push(rt);
    };
    await rt.start(resume);
    rt.lastResolveError = undefined;
    this.log.info({ switch: rt.name, adapter: rt.adapter.kind }, 'switch connected');
    if (this.cfg.pinMode === 'always') this.pinAllResolved(rt);
  }

  /** After a restart in `always` mode: every tracked flow gets its pin back. */
  private pinAllResolved(rt: SwitchRuntime): void {
    const now = this.now();
    for (const key of this.flowTable.keys()) {
      if (switchIdOfKey(key) !== rt.id) continue;
      const ref = this.registry.ref(this.flowTable.nexthopOf(key) ?? UNRESOLVED);
      if (ref === undefined) continue;
      const t = parseTuple(key, 2);
      rt.reconciler.want({
        flow: { family: t.family, src: t.src, dst: t.dst, sport: t.sport, dport: t.dport },
        nexthop: ref.nexthop,
        reason: 'always',
        since: now,
      });
    }
  }

  /** Resolved flows of a switch, from the nexthop index (cheap: no walk over the flows). */
  private countFlows(rt: SwitchRuntime): number {
    let n = 0;
    for (const v of rt.vips.values()) {
      for (const nh of v.nexthops) {
        const id = this.registry.find(rt.name, v.address, nh);
        if (id !== undefined) n += this.flowTable.countOn(id);
      }
    }
    return n;
  }

  /** Runs `fn` every `ms` until the controller stops (or `alive` says no more). */
  private every(ms: number, fn: () => void, alive: () => boolean = () => true): void {
    const tick = (): void => {
      if (this.stopped || !alive()) return;
      fn();
      this.timers.push(unref(this.clock.schedule(ms, tick)));
      if (this.timers.length > 64) this.timers.splice(0, this.timers.length - 64);
    };
    this.timers.push(unref(this.clock.schedule(ms, tick)));
  }
}

/** Resolved flows reach the journal within this time (a group commit). */
const JOURNAL_MS = 20;
/** A failing state write is logged at most this often. */
const LOG_EVERY_MS = 10_000;

/** Periodic timers do not keep the process alive. */
function unref(handle: unknown): unknown {
  (handle as { unref?: () => void } | undefined)?.unref?.();
  return handle;
}
