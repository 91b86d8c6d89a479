// Traffic generator: clients open TCP connections to the VIPs at a set rate; each lives for
// a random (long-tailed) time, sends a packet through the switch at intervals, and closes
// with FIN. A connection whose packet reaches a server that does not hold it is reset.
// Counters: opened, closed cleanly, reset; every loop is bounded by the clock it runs on.

import { canonicalIp, parseIp, ipAt } from '../mirror-receiver/addr.js';
import type { VirtualClock } from './clock.js';
import { Rng, sampleLifetimeMs, type LifetimeDistribution } from './rng.js';
import { TCP, type SimPacket, type SimSwitch } from './sim-switch.js';

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
}

interface Conn {
  readonly id: number;
  readonly pkt: SimPacket;
  readonly openedAt: number;
  readonly endAt: number;
  /** The server that accepted the SYN. */
  server: string | undefined;
  done: boolean;
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
  /** Simulated time of the reset, and of the SYN. */
  at: number;
  openedAt: number;
}

export class TrafficGenerator {
  /** The last resets, oldest first (at most 100). */
  readonly recentResets: ResetRecord[] = [];
  readonly counters: TrafficCounters = { opened: 0, closedCleanly: 0, reset: 0, failed: 0, refused: 0, active: 0, packets: 0 };
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

  /** Opens one connection now (with its own lifetime, if given); returns it as seen by the server, or undefined if it failed. */
  open(lifetime?: LifetimeDistribution): LiveConnection | undefined {
    if (this.live.size >= this.options.maxConcurrent) {
      this.counters.refused++;
      return undefined;
    }
    const target = this.options.targets[this.rng.int(0, this.options.targets.length - 1)] as { vip: string; port: number };
    const src = this.clientAddress(this.rng.int(0, this.options.clientCount - 1));
    let sport = this.rng.int(1024, 65535);
    const dst = canonicalIp(target.vip);
    for (let tries = 0; this.usedPorts.has(`${src}|${sport}|${dst}|${target.port}`) && tries < 100; tries++) sport = this.rng.int(1024, 65535);
    const key = `${src}|${sport}|${dst}|${target.port}`;
    const pkt: SimPacket = { src, dst, sport, dport: target.port, protocol: TCP, flags: 0x02, bytes: 74 };
    const now = this.clock.now();
    const conn: Conn = { id: this.nextId++, pkt, openedAt: now, endAt: now + sampleLifetimeMs(lifetime ?? this.options.lifetime, this.rng), server: undefined, done: false };
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
    if (rtt !== undefined && now + rtt < conn.endAt) this.clock.at(now + rtt, () => this.send(conn, false));
    else this.scheduleNextPacket(conn, now);
    return { src, dst, sport, dport: target.port, server: d.nexthop as string };
  }

  /** Connections alive now, with the server that holds each. */
  liveConnections(): LiveConnection[] {
    return [...this.live.values()].map((c) => ({ src: c.pkt.src, dst: c.pkt.dst, sport: c.pkt.sport, dport: c.pkt.dport, server: c.server as string }));
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

  private scheduleNextPacket(conn: Conn, now: number): void {
    const next = now + this.options.packetIntervalMs * (0.5 + this.rng.next());
    if (next >= conn.endAt) this.clock.at(conn.endAt, () => this.send(conn, true));
    else this.clock.at(next, () => this.send(conn, false));
  }

  private send(conn: Conn, fin: boolean): void {
    if (conn.done) return;
    const pkt: SimPacket = { ...conn.pkt, flags: fin ? 0x11 : 0x10, bytes: fin ? 66 : 1200 };
    const d = this.sw.deliver(pkt);
    this.counters.packets++;
    if (d.outcome === 'reset' || d.outcome === 'lost') {
      // The client sees a RST (or its packets vanish and it times out): the connection is broken.
      if (conn.server !== undefined) this.sw.servers.get(conn.server)?.forget(`${pkt.src}|${pkt.sport}|${pkt.dst}|${pkt.dport}`);
      this.counters.reset++;
      const record: ResetRecord = { src: pkt.src, sport: pkt.sport, dst: pkt.dst, dport: pkt.dport, server: conn.server ?? '', reached: d.nexthop ?? null, at: this.clock.now(), openedAt: conn.openedAt };
      this.recentResets.push(record);
      this.options.onReset?.(record);
      if (this.recentResets.length > 100) this.recentResets.shift();
      this.finish(conn);
      return;
    }
    if (fin) {
      this.counters.closedCleanly++;
      this.finish(conn);
      return;
    }
    this.scheduleNextPacket(conn, this.clock.now());
  }

  private finish(conn: Conn): void {
    conn.done = true;
    this.live.delete(conn.id);
    this.usedPorts.delete(`${conn.pkt.src}|${conn.pkt.sport}|${conn.pkt.dst}|${conn.pkt.dport}`);
    this.counters.active = this.live.size;
  }
}
