// Traffic generator: clients open TCP connections to the VIPs at a set rate; each lives for
// a random (long-tailed) time and sends a packet through the switch at intervals (idle ones
// hours apart). A connection ends as TCP ends one, each FIN or RST from the side that sends
// it: the client closes and the server answers with its FIN (the common case); the client
// half-closes and keeps ACKing while the server still sends, then the server closes; the
// server closes first; either side resets. Client segments (the final ACK after the server's
// FIN included) cross the switch toward the VIP; server segments leave on the server's port,
// seen only by the reply mirror. A connection whose segment reaches a server that does not
// hold it is reset. Counters: opened, closed cleanly, reset; every loop is bounded by the
// clock it runs on. Each group change that reaches forwarding is recorded with the live
// connections it moved (those whose ECMP choice was their server and no longer is).

import { canonicalIp, parseIp, ipAt } from '../lib/addr.js';
import type { VirtualClock } from './clock.js';
import { Rng, sampleLifetimeMs, steadyStateRemaining, type LifetimeDistribution } from './rng.js';
import { TCP, type ForwardingChange, type SimPacket, type SimSwitch } from './sim-switch.js';

export interface TrafficOptions {
  /** New connections per second, over all VIPs. */
  connectionsPerSecond: number;
  lifetime: LifetimeDistribution;
  /** Interval between a connection's packets, ms. */
  packetIntervalMs: number;
  /**
   * The client's round-trip time (ms): its handshake ACK, the first packet after the SYN,
   * reaches the switch this long after the SYN. Absent: the first packet comes at the interval.
   */
  clientRttMs?: number;
  /** Destinations: VIP address and port. */
  targets: { vip: string; port: number }[];
  /** Client addresses are drawn from this prefix base (first address) and size. */
  clientBase: string;
  clientCount: number;
  /** Most connections alive at once; new ones are refused past it (counted). */
  maxConcurrent: number;
  seed: number;
  /** Called with every reset connection (the recent list keeps only the last ones). */
  onReset?: (r: ResetRecord) => void;
  /** How connections end (shares of all; the rest: the client closes first). */
  close?: {
    halfCloseShare: number;
    halfCloseS: number;
    serverCloseShare: number;
    rstShare: number;
    serverRstShare: number;
  };
  /** A share of connections that stay open idle, one packet every `idleGapS`. */
  idleShare?: number;
  idleGapS?: number;
}

/** How a connection ends. */
type CloseStyle = 'client' | 'half' | 'server' | 'rst' | 'server-rst';

interface Conn {
  readonly id: number;
  readonly pkt: SimPacket;
  readonly openedAt: number;
  readonly endAt: number;
  /** The server that accepted the SYN. */
  server: string | undefined;
  done: boolean;
  /** A packet of it went through a pin. */
  pinned: boolean;
  style: CloseStyle;
  /** Idle: its packets come `idleGapS` apart. */
  idle: boolean;
  /** The client has sent its FIN (half-closed): it only ACKs from now on. */
  finSent: boolean;
  /** The flow's ECMP hash (what a group change moves is read from it). */
  readonly hash: number;
}

/** A group change as it reached forwarding, with the live connections of its VIP then and those it moved. */
export interface GroupMove extends ForwardingChange {
  /** Simulated time it took effect. */
  effectiveAt: number;
  live: number;
  moved: number;
}

export interface TrafficCounters {
  opened: number;
  closedCleanly: number;
  reset: number;
  /** Connections whose SYN found no route or was dropped. */
  failed: number;
  refused: number;
  active: number;
  packets: number;
  /** Connections the client half-closed, and those the server closed or reset first. */
  halfClosed: number;
  serverClosed: number;
  serverReset: number;
  /**
   * Final ACKs that reached another server: the client is in TIME-WAIT (not broken), the server's side times
   * out.
   */
  lastAckLost: number;
}

export interface LiveConnection {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  server: string;
}

export interface ResetRecord {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** The server that accepted the SYN, and where the packet that broke it went. */
  server: string;
  reached: string | null;
  /** How that packet was forwarded, and whether the connection ever had a programmed pin. */
  via: 'pin' | 'ecmp' | 'drop' | 'no-route';
  pinned: boolean;
  /** Simulated time of the reset, and of the SYN. */
  at: number;
  openedAt: number;
}

export class TrafficGenerator {
  /** The last resets, oldest first (at most 100). */
  readonly recentResets: ResetRecord[] = [];
  /** The last group changes as they reached forwarding, oldest first (at most 1,000). */
  readonly moves: GroupMove[] = [];
  readonly counters: TrafficCounters = {
    opened: 0,
    closedCleanly: 0,
    reset: 0,
    failed: 0,
    refused: 0,
    active: 0,
    packets: 0,
    halfClosed: 0,
    serverClosed: 0,
    serverReset: 0,
    lastAckLost: 0,
  };
  private readonly live = new Map<number, Conn>();
  private readonly rng: Rng;
  private readonly clientBytes: Uint8Array;
  private readonly clientFamily: 4 | 6;
  private nextId = 1;
  private running = false;
  private readonly usedPorts = new Set<string>();

  constructor(
    private readonly sw: SimSwitch,
    private readonly clock: VirtualClock,
    private readonly options: TrafficOptions,
  ) {
    if (!(options.connectionsPerSecond > 0)) throw new RangeError('connectionsPerSecond must be positive');
    if (options.targets.length === 0) throw new RangeError('traffic needs at least one target VIP');
    this.rng = new Rng(options.seed);
    const base = parseIp(options.clientBase);
    this.clientBytes = base.bytes;
    this.clientFamily = base.family;
    let before: Conn[] = [];
    let live = 0;
    sw.watchForwarding({
      before: (change, group) => {
        // The live connections of the VIP that the group in use sends to their server.
        before = [];
        live = 0;
        for (const c of this.live.values()) {
          if (c.pkt.dst !== change.vip) continue;
          live++;
          if (group.pick(c.hash) === c.server) before.push(c);
        }
      },
      after: (change, group) => {
        let moved = 0;
        for (const c of before) if (group.pick(c.hash) !== c.server) moved++;
        before = [];
        this.moves.push({ ...change, effectiveAt: this.clock.now(), live, moved });
        if (this.moves.length > 1000) this.moves.shift();
      },
    });
  }

  /** Starts opening connections (at the configured rate) from the clock's current time. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.scheduleNextOpen();
  }

  /** Stops opening connections; live ones carry on until they end. */
  stop(): void {
    this.running = false;
  }

  /**
   * Opens one connection now, with its own lifetime if given; `steady-state`: as one found open
   * at a random moment of the traffic's steady state (what is left of a lifetime of the
   * configured model, long-lived ones the more likely). Returns it as seen by the server, or
   * undefined if it failed.
   */
  open(lifetime?: LifetimeDistribution | 'steady-state'): LiveConnection | undefined {
    if (this.live.size >= this.options.maxConcurrent) {
      this.counters.refused++;
      return undefined;
    }
    const target = this.options.targets[this.rng.int(0, this.options.targets.length - 1)] as {
      vip: string;
      port: number;
    };
    const src = this.clientAddress(this.rng.int(0, this.options.clientCount - 1));
    let sport = this.rng.int(1024, 65535);
    const dst = canonicalIp(target.vip);
    for (let tries = 0; this.usedPorts.has(`${src}|${sport}|${dst}|${target.port}`) && tries < 100; tries++)
      sport = this.rng.int(1024, 65535);
    const key = `${src}|${sport}|${dst}|${target.port}`;
    const pkt: SimPacket = { src, dst, sport, dport: target.port, protocol: TCP, flags: 0x02, bytes: 74 };
    const now = this.clock.now();
    const idle = this.rng.next() < (this.options.idleShare ?? 0);
    const gapMs = (this.options.idleGapS ?? 600) * 1000;
    const life =
      lifetime === 'steady-state'
        ? this.remaining()
        : sampleLifetimeMs(lifetime ?? this.options.lifetime, this.rng);
    const hash = this.sw.hashOf(src, dst, TCP, sport, target.port);
    const conn: Conn = {
      id: this.nextId++,
      pkt,
      openedAt: now,
      endAt: now + (idle ? Math.max(life, 3 * gapMs) : life),
      server: undefined,
      done: false,
      pinned: false,
      style: this.closeStyle(),
      idle,
      finSent: false,
      hash,
    };
    const d = this.sw.deliver(pkt);
    this.counters.packets++;
    if (d.outcome !== 'opened') {
      this.counters.failed++;
      return undefined;
    }
    conn.server = d.nexthop;
    this.usedPorts.add(key);
    this.live.set(conn.id, conn);
    this.counters.opened++;
    this.counters.active = this.live.size;
    const rtt = this.options.clientRttMs;
    if (rtt !== undefined && now + rtt < conn.endAt) this.clock.at(now + rtt, () => this.data(conn));
    else this.scheduleNextPacket(conn, now);
    return { src, dst, sport, dport: target.port, server: d.nexthop as string };
  }

  private remainingSampler: (() => number) | undefined;

  /** What is left of a lifetime of a connection open in the steady state. */
  private remaining(): number {
    this.remainingSampler ??= steadyStateRemaining(this.options.lifetime, this.rng);
    return this.remainingSampler();
  }

  /** Connections alive now, with the server that holds each. */
  liveConnections(): LiveConnection[] {
    return [...this.live.values()].map((c) => ({
      src: c.pkt.src,
      dst: c.pkt.dst,
      sport: c.pkt.sport,
      dport: c.pkt.dport,
      server: c.server as string,
    }));
  }

  private clientAddress(i: number): string {
    const b = Uint8Array.from(this.clientBytes);
    let carry = i;
    for (let k = b.length - 1; k >= 0 && carry > 0; k--) {
      const v = (b[k] ?? 0) + (carry & 0xff);
      b[k] = v & 0xff;
      carry = (carry >>> 8) + (v >> 8);
    }
    return ipAt(b, 0, this.clientFamily);
  }

  private scheduleNextOpen(): void {
    if (!this.running) return;
    // Poisson arrivals at the configured rate.
    const gap = -Math.log(1 - this.rng.next()) * (1000 / this.options.connectionsPerSecond);
    this.clock.after(gap, () => {
      if (!this.running) return;
      this.open();
      this.scheduleNextOpen();
    });
  }

  private closeStyle(): CloseStyle {
    const c = this.options.close;
    if (c === undefined) return 'client';
    let x = this.rng.next();
    for (const [style, share] of [
      ['half', c.halfCloseShare],
      ['server', c.serverCloseShare],
      ['rst', c.rstShare],
      ['server-rst', c.serverRstShare],
    ] as const) {
      if (x < share) return style;
      x -= share;
    }
    return 'client';
  }

  private get rttMs(): number {
    return this.options.clientRttMs ?? 0;
  }

  private scheduleNextPacket(conn: Conn, now: number): void {
    const interval = conn.idle ? (this.options.idleGapS ?? 600) * 1000 : this.options.packetIntervalMs;
    const next = now + interval * (0.5 + this.rng.next());
    // A half-closing client sends its FIN this long before the server is done sending.
    const halfAt = conn.endAt - (this.options.close?.halfCloseS ?? 0) * 1000;
    if (conn.style === 'half' && !conn.finSent && next >= halfAt)
      this.clock.at(Math.max(now, halfAt), () => this.halfClose(conn));
    else if (next >= conn.endAt) this.clock.at(conn.endAt, () => this.end(conn));
    else this.clock.at(next, () => this.data(conn));
  }

  /**
   * The client half-closes: its FIN crosses the switch, the server keeps sending, the client keeps ACKing.
   */
  private halfClose(conn: Conn): void {
    if (conn.done) return;
    conn.finSent = true;
    this.counters.halfClosed++;
    if (this.send(conn, 0x11, false)) this.scheduleNextPacket(conn, this.clock.now());
  }

  /** The end of the connection's life, in its style. */
  private end(conn: Conn): void {
    if (conn.done) return;
    const server = conn.server ?? '';
    switch (conn.style) {
      case 'client':
      case 'half':
        // The client's FIN (unless sent already), the server's FIN, then the client's final ACK.
        if (!conn.finSent && !this.send(conn, 0x11, false)) return;
        conn.finSent = true;
        this.sw.serverSend(conn.pkt, server, 'fin');
        this.clock.at(this.clock.now() + this.rttMs, () => this.finalAck(conn));
        return;
      case 'server':
        // The server closes first; the client answers with its FIN, which ends it at the server.
        this.counters.serverClosed++;
        this.sw.serverSend(conn.pkt, server, 'fin');
        this.clock.at(this.clock.now() + this.rttMs, () => this.send(conn, 0x11, true));
        return;
      case 'rst':
        this.send(conn, 0x14, true);
        return;
      case 'server-rst':
        this.counters.serverReset++;
        this.sw.serverSend(conn.pkt, server, 'rst');
        this.finish(conn);
        return;
    }
  }

  /**
   * The client's ACK of the server's FIN: it ends the connection; where it goes another way, the client does
   * not notice.
   */
  private finalAck(conn: Conn): void {
    if (conn.done) return;
    const d = this.sw.deliver({ ...conn.pkt, flags: 0x10, bytes: 54 });
    this.counters.packets++;
    if (d.outcome === 'reset' || d.outcome === 'lost') {
      this.counters.lastAckLost++;
      if (conn.server !== undefined)
        this.sw.servers
          .get(conn.server)
          ?.forget(`${conn.pkt.src}|${conn.pkt.sport}|${conn.pkt.dst}|${conn.pkt.dport}`);
    }
    this.counters.closedCleanly++;
    this.finish(conn);
  }

  /**
   * One client segment through the switch. Returns whether the connection lives on; it ends
   * here when the segment is reset or lost, or when `last` (a FIN after the server's, a RST).
   */
  private send(conn: Conn, flags: number, last: boolean): boolean {
    if (conn.done) return false;
    const pkt: SimPacket = { ...conn.pkt, flags, bytes: flags === 0x10 && !conn.finSent ? 1200 : 54 };
    const d = this.sw.deliver(pkt);
    this.counters.packets++;
    if (d.via === 'pin') conn.pinned = true;
    if (d.outcome === 'reset' || d.outcome === 'lost') {
      // The client sees a RST (or its packets vanish and it times out): the connection is broken.
      if (conn.server !== undefined)
        this.sw.servers.get(conn.server)?.forget(`${pkt.src}|${pkt.sport}|${pkt.dst}|${pkt.dport}`);
      this.counters.reset++;
      const record: ResetRecord = {
        src: pkt.src,
        sport: pkt.sport,
        dst: pkt.dst,
        dport: pkt.dport,
        server: conn.server ?? '',
        reached: d.nexthop ?? null,
        via: d.via,
        pinned: conn.pinned || this.sw.pins.programmedFor({ ...pkt }),
        at: this.clock.now(),
        openedAt: conn.openedAt,
      };
      this.recentResets.push(record);
      this.options.onReset?.(record);
      if (this.recentResets.length > 100) this.recentResets.shift();
      this.finish(conn);
      return false;
    }
    if (last) {
      this.counters.closedCleanly++;
      this.finish(conn);
      return false;
    }
    return true;
  }

  private data(conn: Conn): void {
    if (this.send(conn, 0x10, false)) this.scheduleNextPacket(conn, this.clock.now());
  }

  private finish(conn: Conn): void {
    conn.done = true;
    this.live.delete(conn.id);
    this.usedPorts.delete(`${conn.pkt.src}|${conn.pkt.sport}|${conn.pkt.dst}|${conn.pkt.dport}`);
    this.counters.active = this.live.size;
  }
}
