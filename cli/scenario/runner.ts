// `flowpin scenario`: one traffic pattern against several configurations, on the simulator
// with a virtual clock. Each configuration gets the same switch, the same long-lived
// connections and the same new-connection arrivals (same seed), then the same changes (a
// drain of one member, then an addition of a spare) while traffic runs:
//   mod-n, resilient  the switch alone (hash-mod-N or resilient ECMP), no controller;
//   prototype         one look-up call and one configuration call per SYN, serially, at
//                     the switch's latency (the prototype's algorithm);
//   always, on-change flowpin, in its two pin modes.
// It reports, per configuration, connections broken, broken although protected, the
// change-window and at-risk counts, the pin table's peak, pin writes, the time from each
// change's call to its application (simulated) and the wall time the change took, and the
// process's memory (RSS and heap high-water marks sampled along the run) so that growth with
// the number of live connections shows. Per change: its dry run's figures, the pins it spent
// against the live connections its group write moved (as the switch measured them), and
// whether its bound refused it. The traffic is the simulator's model: fixed (long-lived
// connections and lognormal arrivals) or realistic (the demo's heavy-tailed lifetimes),
// with half-closing clients, idle connections, traffic before flowpin starts, a pin table
// shared with other owners and what the switch mirrors of each connection's end as options.

import { canonicalIp } from '../../lib/addr.js';
import type { ChangeRecord, DryRunReport, MaxAtRisk } from '../../controller/changes.js';
import { FlowpinError } from '../../controller/errors.js';
import { Reader } from '../../lib/validate.js';
import { readScenario } from '../../switch-sim/scenario.js';
import { pinName } from '../../lib/pin-name.js';
import type { LifetimeDistribution } from '../../switch-sim/rng.js';
import type { SimPacket } from '../../switch-sim/sim-switch.js';
import type { LiveConnection } from '../../switch-sim/traffic.js';
import { valueOf } from '../../controller/metrics.js';
import { DEMO_DEFAULTS } from '../sim.js';
import { World } from './world.js';

export const CONFIGS = ['mod-n', 'resilient', 'prototype', 'always', 'on-change'] as const;
export type ScenarioConfig = (typeof CONFIGS)[number];
export type ChangeStep = 'drain' | 'add';

export interface ScenarioOptions {
  live: number;
  rate: number;
  latencyMs: number;
  programDelayMs: number;
  table: number;
  changes: ChangeStep[];
  seed: number;
  settleMs: number;
  /** Time between changes, and after the last one until the end (ms). */
  gapMs: number;
  /** How flowpin learns each flow's server: look-up (default), the mirrored replies, or both. */
  resolution?: 'lookup' | 'observe' | 'both';
  /** The switch's look-up: exact (default), none (no look-up call), or wrong-hash (a wrong model). */
  lookup?: 'exact' | 'none' | 'wrong-hash';
  /** The client's round trip (ms): its handshake ACK follows the SYN by this much. */
  clientRttMs?: number;
  /** The adapter flowpin drives: the simulator's own (default), or gNMI to the simulator's gNMI target. */
  adapter?: 'sim' | 'gnmi';
  /**
   * Lifetimes: `fixed` (default): the live connections last two hours, new ones about 30 s
   * (lognormal); `realistic`: the model `flowpin start` runs (heavy-tailed: most short, some for
   * hours), the live connections as found open in its steady state.
   */
  lifetimes?: 'fixed' | 'realistic';
  /**
   * Share of connections the client half-closes (its FIN first, the server still sending for `halfCloseS`).
   */
  halfCloseShare?: number;
  halfCloseS?: number;
  /** Share of connections the server closes first, and of those reset by either side. */
  serverCloseShare?: number;
  rstShare?: number;
  /** Share of connections idle for long stretches: one packet every `idleGapS`. */
  idleShare?: number;
  idleGapS?: number;
  /**
   * Traffic before flowpin starts (s): connections it never saw open; the configuration then does not say
   * since when connections exist.
   */
  preexistingS?: number;
  /**
   * What the switch mirrors of connections' ends: SYNs only (default), the clients' FIN/RST (client-side), or
   * FIN/RST both ways (the reply session too).
   */
  mirrorEnds?: 'syn-only' | 'client-side' | 'both-ways';
  /** Pin table entries held by other owners (the table is shared). */
  sharedTable?: number;
  /**
   * The bound each change consents to (`maxAtRisk`); unbounded unless given (the scenario measures what
   * changes cost).
   */
  maxAtRisk?: MaxAtRisk;
}

/** One change of a run, as flowpin reported and the switch measured it. */
export interface ChangeFigures {
  step: ChangeStep;
  /** The dry run just before the call (flowpin only). */
  dryRun?: {
    flowsToPin: number;
    freeEntries: number;
    tableFull: number;
    unseen: number;
    warming: boolean;
    total: number;
  };
  /** Why the change did not go ahead (refused by its bound, or stopped before its group write), or null. */
  refused: string | null;
  /**
   * Pins the change spent: those wanted for it (its moved flows, and flows seen in its window)
   * and programmed when it returned, a settle time after it took effect; the live connections
   * its group write moved (the switch's count when it took effect); pins per moved connection.
   */
  pins: number;
  /** Of those pins, the ones on connections still open then (the rest pin connections that had ended). */
  pinsOnLive: number;
  movedLive: number;
  pinsPerMovedLive: number;
  /**
   * The record's `pinned`: every programmed pin the change relied on (for an addition, those of earlier
   * changes on the VIP too).
   */
  recordPinned: number;
  atRisk: number;
  windowFlows: number;
  unseen: number;
}

export interface ScenarioResult {
  config: ScenarioConfig;
  live: number;
  opened: number;
  broken: number;
  brokenProtected: number;
  windowFlows: number;
  atRisk: number;
  pinPeak: number;
  pinWrites: number;
  changeApplyMs: number[];
  /** Wall time of each change, call to applied (flowpin) or the switch's own change (others), ms. */
  changeWallMs: number[];
  /** Highest RSS and heap in use sampled during the run (after open, after each change, at the end), MiB. */
  rssMiB: number;
  heapMiB: number;
  virtualS: number;
  wallS: number;
  /** Resets neither counted nor unseen (0 when flowpin keeps its promise). */
  uncounted: number;
  resolution: 'lookup' | 'observe' | 'both';
  /** Switch API calls per 1,000 new connections: all of them, and the look-ups alone. */
  callsPer1000: number;
  lookupsPer1000: number;
  /** Look-up answers that differed from the server that answered (both). */
  disagreements: number;
  /** Time from a SYN reaching flowpin to its server being known, p50 and p99 (ms). */
  synToServerP50Ms: number;
  synToServerP99Ms: number;
  /** Connections alive when the first change was called. */
  liveAtChange: number;
  /** Pins the changes spent per live connection they moved (all changes: pins / moved live connections). */
  pinsPerMovedLive: number;
  /**
   * Resets the simulator saw; those the change records cover (counted at risk or in a window
   * by flow, or of connections flowpin could not see, within the moving change's `unseen`
   * estimate); and those flowpin could not have seen (opened before it started or while down).
   */
  resetsSeen: number;
  resetsCounted: number;
  unseen: number;
  changes: ChangeFigures[];
}

export const DEFAULT_SCENARIO: ScenarioOptions = {
  live: 2000,
  rate: 200,
  latencyMs: 5,
  programDelayMs: 50,
  table: 200_000,
  changes: ['drain', 'add'],
  seed: 1,
  settleMs: 20,
  gapMs: 4000,
};

const VIP = '192.0.2.80';
const MEMBERS = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
const SPARE = '10.0.1.5';
const LIVE: LifetimeDistribution = { kind: 'fixed', s: 7200 };
const NEW: LifetimeDistribution = { kind: 'lognormal', medianS: 30, sigma: 1.2, maxS: 3600 };
/**
 * The realistic model: the lifetimes `flowpin start` gives its traffic (its defaults read as it reads them).
 */
export const REALISTIC: LifetimeDistribution = readScenario(
  Reader.fromObject('(flowpin start defaults)', DEMO_DEFAULTS),
).traffic.lifetime;

export async function runScenario(config: ScenarioConfig, o: ScenarioOptions): Promise<ScenarioResult> {
  const wall = performance.now();
  const flowpin = config === 'always' || config === 'on-change';
  const resolution = o.resolution ?? 'lookup';
  const mirror = o.mirrorEnds ?? 'syn-only';
  const realistic = o.lifetimes === 'realistic';
  const preMs = (o.preexistingS ?? 0) * 1000;
  const close = {
    halfCloseShare: o.halfCloseShare ?? 0,
    halfCloseS: o.halfCloseS ?? 2,
    serverCloseShare: o.serverCloseShare ?? 0,
    rstShare: o.rstShare ?? 0,
    serverRstShare: 0,
  };
  const world = new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: VIP, nexthops: MEMBERS, port: 443 }],
        spares: [SPARE],
        ecmpMode: config === 'mod-n' ? 'mod-n' : 'resilient',
        pinCapacity: o.table,
        programDelayMs: o.programDelayMs,
        rate: o.rate,
        lifetime: realistic ? REALISTIC : NEW,
        reservedPinEntries: o.sharedTable ?? 0,
        resolution,
        mirrorReplies: resolution !== 'lookup' || mirror === 'both-ways',
        mirrorFinRst: mirror !== 'syn-only',
        mirrorReplyFinRst: mirror === 'both-ways',
        lookup: o.lookup ?? 'exact',
        ...(o.clientRttMs === undefined ? {} : { clientRttMs: o.clientRttMs }),
        close,
        idleShare: o.idleShare ?? 0,
        idleGapS: o.idleGapS ?? 600,
      },
    ],
    latencyMs: o.latencyMs,
    mirrorDelayMs: 1,
    packetIntervalMs: 2000,
    seed: o.seed,
    adapter: o.adapter ?? 'sim',
    // The live connections open at once: the look-up queue is sized to take them all, as an
    // operator sizes resolveQueue for the bursts the VIPs see (else they are shed, and counted).
    // Where traffic ran before flowpin, its operator cannot say since when: nothing is claimed.
    ...(flowpin
      ? {
          controller: {
            pinMode: config,
            settleMs: o.settleMs,
            barrierTimeoutMs: 30_000,
            resolveQueue: Math.max(500_000, Math.ceil(o.live * 1.1)),
            ...(preMs > 0 ? { connectionsSince: 'unstated' as const } : {}),
          },
        }
      : {}),
  });
  const s = world.sw('sw1');
  const start = world.now;
  let pinWrites = 0;
  const synToServer: number[] = [];
  const liveLifetime = realistic ? ('steady-state' as const) : LIVE;
  if (preMs > 0) {
    // Traffic before flowpin starts: what it carries is opened where no controller sees it.
    world.downtime.push({ from: world.now, to: Infinity });
    world.openLive(o.live, liveLifetime);
    world.startTraffic();
    await world.advance(preMs);
  }
  if (flowpin) {
    await world.startController();
    world.controller?.runtime('sw1').watch((r) => {
      if (r.nexthop !== undefined && r.synAt !== undefined) synToServer.push(world.now - r.synAt);
    });
  }
  const proto = config === 'prototype' ? new SerialPinner(world, o.latencyMs) : undefined;
  if (proto) s.sw.mirror = (p) => world.clock.after(1, () => proto.syn(p));
  const memory = { rss: 0, heap: 0 };
  const sample = (): void => {
    const m = process.memoryUsage();
    memory.rss = Math.max(memory.rss, m.rss);
    memory.heap = Math.max(memory.heap, m.heapUsed);
  };
  if (preMs === 0) {
    world.openLive(o.live, liveLifetime);
    world.startTraffic();
  } else {
    const down = world.downtime.at(-1);
    if (down !== undefined && down.to === Infinity) down.to = world.now;
  }
  // Let the controller take in the live connections before the first change.
  await world.advance(Math.max(2000, o.gapMs / 2));
  sample();
  const applyMs: number[] = [];
  const wallMs: number[] = [];
  const changes: ChangeFigures[] = [];
  const liveAtChange = s.traffic.counters.active;
  for (const step of o.changes) {
    const called = world.now;
    const nh = step === 'drain' ? (MEMBERS[1] as string) : SPARE;
    const op = step === 'drain' ? 'remove' : 'add';
    const movesBefore = s.traffic.moves.length;
    const figures: ChangeFigures = {
      step,
      refused: null,
      pins: 0,
      pinsOnLive: 0,
      movedLive: 0,
      pinsPerMovedLive: 0,
      recordPinned: 0,
      atRisk: 0,
      windowFlows: 0,
      unseen: 0,
    };
    if (flowpin) {
      const cm = world.controller?.changeManager('sw1');
      if (cm === undefined) throw new Error('no controller');
      const dry = (await world.settle(
        step === 'drain' ? cm.drain(VIP, nh, { dryRun: true }) : cm.add(VIP, nh, { dryRun: true }),
        120_000,
      )) as DryRunReport;
      figures.dryRun = {
        flowsToPin: dry.flowsToPin,
        freeEntries: dry.freeEntries,
        tableFull: dry.atRiskBy['table-full'],
        unseen: dry.unseen,
        warming: dry.warming,
        total: dry.figures.total,
      };
      const w0 = performance.now();
      // The scenario measures what a change costs: it consents to any cost unless given a bound.
      const consent = { maxAtRisk: o.maxAtRisk ?? ('unbounded' as const) };
      try {
        const rec = (await world.settle(
          step === 'drain' ? cm.drain(VIP, nh, consent) : cm.add(VIP, nh, consent),
          120_000,
        )) as ChangeRecord;
        applyMs.push((rec.appliedAt ?? world.now) - called);
        const own = ownPins(world, rec.id, s.traffic.liveConnections());
        Object.assign(figures, {
          pins: own.pins,
          pinsOnLive: own.onLive,
          recordPinned: rec.pinned ?? 0,
          atRisk: rec.atRisk ?? 0,
          windowFlows: rec.windowFlows ?? 0,
          unseen: rec.unseen ?? 0,
        });
      } catch (err) {
        // Refused by its bound, or stopped before its group write: flowpin's answer, recorded.
        if (!(err instanceof FlowpinError)) throw err;
        figures.refused = err.message;
        applyMs.push(world.now - called);
      }
      wallMs.push(round1(performance.now() - w0));
    } else {
      // The switch alone, or the prototype: the change is made on the switch at once.
      const w0 = performance.now();
      if (step === 'drain') s.sw.groupRemove(VIP, nh);
      else s.sw.groupAdd(VIP, nh);
      wallMs.push(round1(performance.now() - w0));
      applyMs.push(0);
    }
    sample();
    await world.advance(o.gapMs);
    // The live connections the group write moved, as the switch counted them when it took effect.
    figures.movedLive = s.traffic.moves
      .slice(movesBefore)
      .filter((m) => m.vip === VIP && m.op === op && m.nexthop === nh)
      .reduce((n, m) => n + m.moved, 0);
    figures.pinsPerMovedLive = figures.movedLive === 0 ? 0 : round2(figures.pins / figures.movedLive);
    changes.push(figures);
  }
  world.stopTraffic();
  sample();
  const audit = world.audit();
  if (process.env['FLOWPIN_SCENARIO_DEBUG'] !== undefined)
    for (const d of audit.details) process.stderr.write(`${config}: ${d}\n`);
  const virtualS = (world.now - start) / 1000;
  const stats = world.adapters.get('sw1')?.stats;
  if (flowpin) pinWrites = stats?.pinWrites ?? 0;
  const opened = Math.max(1, s.traffic.counters.opened);
  const disagreements =
    world.controller === undefined
      ? 0
      : await valueOf(world.controller.metrics.disagreements, { switch: 'sw1' });
  if (proto) pinWrites = proto.writes;
  await world.close();
  const pinned = changes.reduce((n, c) => n + c.pins, 0);
  const moved = changes.reduce((n, c) => n + c.movedLive, 0);
  return {
    config,
    live: o.live,
    opened: s.traffic.counters.opened,
    broken: audit.broken,
    // Without flowpin nothing is protected: every reset counts in `broken` alone.
    brokenProtected: flowpin ? audit.brokenProtected : 0,
    windowFlows: changes.reduce((n, c) => n + c.windowFlows, 0),
    atRisk: changes.reduce((n, c) => n + c.atRisk, 0),
    pinPeak: world.pinPeak,
    pinWrites,
    changeApplyMs: applyMs,
    changeWallMs: wallMs,
    rssMiB: Math.round(memory.rss / 1048576),
    heapMiB: Math.round(memory.heap / 1048576),
    virtualS: Math.round(virtualS * 1000) / 1000,
    wallS: Math.round((performance.now() - wall) / 10) / 100,
    // Resets neither counted by flow nor within the moving change's estimate of what flowpin could not see.
    uncounted: flowpin ? audit.uncounted + audit.unseenBeyondEstimate : audit.broken,
    resolution,
    callsPer1000: flowpin ? round2(((stats?.calls ?? 0) * 1000) / opened) : 0,
    lookupsPer1000: flowpin ? round2(((stats?.byCall['resolve'] ?? 0) * 1000) / opened) : 0,
    disagreements,
    synToServerP50Ms: quantile(synToServer, 0.5),
    synToServerP99Ms: quantile(synToServer, 0.99),
    liveAtChange,
    pinsPerMovedLive: moved === 0 ? 0 : round2(pinned / moved),
    resetsSeen: audit.broken,
    resetsCounted: flowpin ? audit.counted + audit.unseen - audit.unseenBeyondEstimate : 0,
    unseen: flowpin ? audit.unseen : audit.broken,
    changes,
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * Pins wanted for change `id` and programmed on the switch now, and those of them on a connection open now.
 */
function ownPins(world: World, id: string, live: LiveConnection[]): { pins: number; onLive: number } {
  const r = world.controller?.runtime('sw1').reconciler;
  if (r === undefined) return { pins: 0, onLive: 0 };
  const open = new Set(live.map((c) => `${c.src}|${c.sport}|${c.dst}|${c.dport}`));
  let pins = 0;
  let onLive = 0;
  for (const [flow, p] of r.desired) {
    if (p.reason !== id || !r.isProgrammed(flow, p.nexthop)) continue;
    pins++;
    if (open.has(`${canonicalIp(p.flow.src)}|${p.flow.sport}|${canonicalIp(p.flow.dst)}|${p.flow.dport}`))
      onLive++;
  }
  return { pins, onLive };
}

/** The q-quantile of `xs` (ms, two decimals); 0 for none. */
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return round2(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** The prototype: for each SYN, one look-up call then one configuration call, one SYN at a time. */
class SerialPinner {
  private readonly queue: SimPacket[] = [];
  private busy = false;
  writes = 0;

  constructor(
    private readonly world: World,
    private readonly latencyMs: number,
  ) {}

  syn(p: SimPacket): void {
    if ((p.flags & 0x02) === 0 || (p.flags & 0x10) !== 0) return;
    this.queue.push(p);
    if (!this.busy) this.next();
  }

  private next(): void {
    const p = this.queue.shift();
    if (p === undefined) {
      this.busy = false;
      return;
    }
    this.busy = true;
    const { sw } = this.world.sw('sw1');
    const clock = this.world.clock;
    // Look-up: the switch answers half-way through the round trip.
    clock.after(this.latencyMs / 2, () => {
      const nh = sw.ecmpNexthop(p.src, p.dst, 6, p.sport, p.dport);
      clock.after(this.latencyMs / 2, () => {
        if (nh === undefined) return this.next();
        // Configuration: the flow is written half-way through the second round trip.
        clock.after(this.latencyMs / 2, () => {
          sw.pins.upsert(
            pinName({ family: 4, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport }),
            {
              source: 'directflow',
              match: { family: 4, src: p.src, dst: p.dst, protocol: 6, sport: p.sport, dport: p.dport },
              nexthop: canonicalIp(nh),
              idleTimeoutS: 300,
              hardTimeoutS: 0,
              persistent: false,
              priority: 0,
            },
            clock.now(),
          );
          this.writes++;
          clock.after(this.latencyMs / 2, () => this.next());
        });
      });
    });
  }
}
