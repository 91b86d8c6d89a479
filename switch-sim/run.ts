// Assembles a running simulator from a scenario: the switch model, its traffic, the mirror
// session toward flowpin, and the eAPI, gNMI and status endpoints. Real time by default;
// with a VirtualClock the caller advances time itself.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RealTimeDriver, VirtualClock } from './clock.js';
import { DataplaneServer, type DataplaneCounters } from './dataplane.js';
import { ResetLog } from './reset-log.js';
import { EapiServer } from './eapi/server.js';
import type { FaultInjector } from './faults.js';
import { GnmiServer } from './gnmi/server.js';
import { MirrorSender } from './mirror.js';
import type { Scenario } from './scenario.js';
import { portIndexOf, SimSwitch } from './sim-switch.js';
import { StatusServer } from './status-server.js';
import { TrafficGenerator, type GroupMove, type ResetRecord } from './traffic.js';

export interface RunningSimulator {
  readonly sw: SimSwitch;
  readonly clock: VirtualClock;
  readonly traffic: TrafficGenerator | undefined;
  readonly mirror: MirrorSender | undefined;
  readonly eapi: EapiServer | undefined;
  readonly gnmi: GnmiServer | undefined;
  readonly dataplane: DataplaneServer | undefined;
  readonly endpoints: { eapi?: string; gnmi?: string; status?: string; mirror?: string; dataplane?: string };
  counters(): SimCounters;
  stop(): Promise<void>;
}

export interface SimCounters {
  connections: { opened: number; closedCleanly: number; reset: number; failed: number; active: number };
  recentResets: ResetRecord[];
  pins: { capacity: number; programmed: number; configured: number; directflowEnabled: boolean };
  switch: { packets: number; viaPin: number; viaEcmp: number; dropped: number; mirrored: number };
  mirror: { sent: number; errors: number };
  vips: { address: string; members: string[]; kind: string }[];
  servers: { address: string; interface: string; connections: number; resetsSent: number }[];
  /** Programmed pins by the nexthop they send to. */
  pinsByNexthop: Record<string, number>;
  /** The last group changes the switch accepted. */
  groupChanges: SimSwitch['groupChanges'];
  /**
   * The last group changes as they reached forwarding, with the live connections of the VIP then and those
   * each moved (the simulator's own traffic).
   */
  groupMoves: GroupMove[];
  /** The external load's segments and connections (dataplane endpoint), where it runs. */
  dataplane?: DataplaneCounters & {
    liveByServer: Record<string, number>;
    closingByServer: Record<string, number>;
    resetLogged: number;
  };
  /** How late the simulator's own event loop ran (ms): what it adds to every answer it gives. */
  eventLoop: { maxMs: number; p99Ms: number; meanMs: number };
  /**
   * The epochs in the pin names written (high availability): the highest, and the writes of a lower
   * epoch that landed after a higher epoch's first write (stale writes).
   */
  epochs: { highest: string; staleLanded: number; lastWriteAt: Record<string, number> };
  /** The gNMI target's master arbitration: Sets refused as stale, stale Sets applied (must stay 0). */
  gnmi?: { staleRefused: number; staleLanded: number; highest: Record<string, string> };
}

export interface SimulatorOptions {
  clock?: VirtualClock;
  realTime?: boolean;
  holdTraffic?: boolean;
  /** Serve the dataplane endpoint for an external load (UDP, loopback). */
  dataplane?: { host: string; port: number };
  /** Write one JSON line per reset connection to this file. */
  resetLog?: string;
  /**
   * The simulated clock runs this many times wall time (real time only): 20 makes 10 simulated minutes pass
   * in 30 s.
   */
  speed?: number;
}

/**
 * Starts a simulator. `holdTraffic` leaves the traffic generator stopped (start it with
 * `traffic.start()`), e.g. until the collector of the mirrored SYNs listens.
 */
export async function startSimulator(
  scenario: Scenario,
  opts: SimulatorOptions = {},
): Promise<RunningSimulator> {
  const clock = opts.clock ?? new VirtualClock(Date.now());
  const sw = new SimSwitch({
    ...scenario.switch,
    uplink: { ...scenario.switch.uplink, prefixes: [...scenario.switch.uplink.prefixes] },
    now: clock.now,
  });
  for (const v of scenario.vips) sw.addVip(v.address, [...v.nexthops]);
  for (const s of scenario.spareServers) sw.addServer(s);
  const endpoints: RunningSimulator['endpoints'] = {};
  const stops: (() => Promise<void> | void)[] = [];

  let mirror: MirrorSender | undefined;
  let eapi: EapiServer | undefined;
  let gnmi: GnmiServer | undefined;
  let traffic: TrafficGenerator | undefined;
  let dataplane: DataplaneServer | undefined;
  const realTime = opts.realTime ?? opts.clock === undefined;
  const driver = realTime ? new RealTimeDriver(clock, 20, opts.speed ?? 1) : undefined;
  const resetLog = opts.resetLog === undefined ? undefined : new ResetLog(opts.resetLog);
  if (resetLog) stops.push(() => resetLog.close());
  try {
    if (scenario.mirror.enabled) {
      const m = new MirrorSender(scenario.mirror);
      await m.start();
      mirror = m;
      sw.mirror = (pkt) => m.send(pkt);
      const encap = scenario.mirror.replyEncap;
      if (scenario.mirror.replies)
        sw.replyMirror = (pkt, from) =>
          m.sendReply(pkt, { mac: from.mac, portIndex: portIndexOf(from.port) }, encap);
      sw.replyMirrorRst = scenario.mirror.replies && scenario.mirror.replyRst;
      sw.replyMirrorFin = scenario.mirror.replies && scenario.mirror.replyFin;
      stops.push(() => m.stop());
      endpoints.mirror = `${scenario.mirror.transport === 'udp' ? 'gre-in-udp' : 'raw gre'} to ${scenario.mirror.host}${scenario.mirror.transport === 'udp' ? `:${[scenario.mirror.port, ...scenario.mirror.alsoPorts].join(',')}` : ''}`;
    }
    if (scenario.eapi.enabled) {
      const e = new EapiServer(sw, scenario.eapi);
      endpoints.eapi = (await e.start()).url;
      eapi = e;
      stops.push(() => e.stop());
    }
    if (scenario.gnmi.enabled) {
      const g = new GnmiServer(sw, {
        host: scenario.gnmi.host,
        port: scenario.gnmi.port,
        ...(scenario.gnmi.username === undefined
          ? {}
          : { username: scenario.gnmi.username, password: scenario.gnmi.password ?? '' }),
      });
      endpoints.gnmi = (await g.start()).address;
      gnmi = g;
      stops.push(() => g.stop());
    }
    if (opts.dataplane !== undefined) {
      const d = new DataplaneServer(sw, { ...(resetLog ? { resetLog } : {}), ...(driver ? { driver } : {}) });
      endpoints.dataplane = await d.start(opts.dataplane.host, opts.dataplane.port);
      dataplane = d;
      stops.push(() => d.stop());
    }
    if (scenario.traffic.enabled) {
      const onReset =
        resetLog === undefined
          ? undefined
          : (r: ResetRecord): void =>
              resetLog.write({
                src: r.src,
                sport: r.sport,
                dst: r.dst,
                dport: r.dport,
                server: r.server,
                reached: r.reached,
                via: r.via,
                pinned: r.pinned,
                openedAt: r.openedAt,
                at: r.at,
              });
      traffic = new TrafficGenerator(sw, clock, {
        ...scenario.traffic,
        targets: scenario.vips.map((v) => ({ vip: v.address, port: v.port })),
        ...(onReset ? { onReset } : {}),
      });
      if (!opts.holdTraffic) traffic.start();
      const t = traffic;
      stops.push(() => t.stop());
    }
  } catch (err) {
    for (const s of stops.reverse()) await s();
    throw err;
  }
  const conn = traffic?.counters ?? dataplane?.counters;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  stops.push(() => void loop.disable());
  const counters = (): SimCounters => ({
    connections: {
      opened: conn?.opened ?? 0,
      closedCleanly: conn?.closedCleanly ?? 0,
      reset: conn?.reset ?? 0,
      failed: conn?.failed ?? 0,
      active: conn?.active ?? 0,
    },
    recentResets: [...(traffic?.recentResets ?? [])],
    pins: {
      capacity: sw.pins.capacity,
      programmed: sw.pins.programmed,
      configured: sw.pins.size,
      directflowEnabled: sw.directflowEnabled,
    },
    switch: { ...sw.counters },
    mirror: { sent: mirror?.sent ?? 0, errors: mirror?.errors ?? 0 },
    vips: [...sw.vips.values()].map((v) => ({
      address: v.address,
      members: [...v.group.members()],
      kind: v.group.kind,
    })),
    servers: [...sw.servers.values()].map((s) => ({
      address: s.address,
      interface: sw.interfaces.get(s.address) ?? '',
      connections: s.connectionCount,
      resetsSent: s.resetsSent,
    })),
    pinsByNexthop: sw.pins.programmedByNexthop(),
    groupChanges: [...sw.groupChanges],
    groupMoves: [...(traffic?.moves ?? [])],
    epochs: {
      highest: String(sw.pins.epochs.highest),
      staleLanded: sw.pins.epochs.staleLanded,
      lastWriteAt: Object.fromEntries([...sw.pins.epochs.lastWallAt].map(([e, at]) => [String(e), at])),
    },
    ...(gnmi
      ? {
          gnmi: {
            staleRefused: gnmi.arbiter.staleRefused,
            staleLanded: gnmi.arbiter.staleLanded,
            highest: Object.fromEntries([...gnmi.arbiter.highest].map(([r, id]) => [r, String(id)])),
          },
        }
      : {}),
    eventLoop: {
      maxMs: Math.round(loop.max / 1e6),
      p99Ms: Math.round(loop.percentile(99) / 1e6),
      meanMs: Math.round(loop.mean / 1e5) / 10,
    },
    ...(dataplane
      ? {
          dataplane: {
            ...dataplane.counters,
            ...byServerCounts(dataplane),
            resetLogged: resetLog?.written ?? 0,
          },
        }
      : {}),
  });
  if (scenario.status.enabled) {
    const faults: Record<string, FaultInjector> = {};
    if (eapi) faults['eapi'] = eapi.faults;
    if (gnmi) faults['gnmi'] = gnmi.faults;
    const st = new StatusServer({ counters, faults });
    try {
      endpoints.status = await st.start(scenario.status.host, scenario.status.port);
    } catch (err) {
      for (const s of stops.reverse()) await s();
      throw err;
    }
    stops.push(() => st.stop());
  }
  driver?.start();
  return {
    sw,
    clock,
    traffic,
    dataplane,
    mirror,
    eapi,
    gnmi,
    endpoints,
    counters,
    async stop() {
      driver?.stop();
      for (const s of stops.reverse()) await s();
    },
  };
}

/** The dataplane's open connections per server, live and closing, from one walk of them. */
function byServerCounts(dataplane: DataplaneServer): {
  liveByServer: Record<string, number>;
  closingByServer: Record<string, number>;
} {
  const { live, closing } = dataplane.byServer();
  return { liveByServer: live, closingByServer: closing };
}
