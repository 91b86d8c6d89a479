// The simulator's dataplane endpoint for a load that runs in a process of its own: it takes
// batches of TCP segments over UDP (dataplane-wire.ts), forwards each through the switch
// model as a client packet would cross it (pins, ECMP, mirror sessions, servers), and
// answers with each segment's outcome. It keeps the connections it saw open (which server
// accepted each SYN, when, whether a pin ever carried it) and writes every connection that
// breaks to the reset log. A close takes both FINs: the client's FIN reaches the server,
// which answers with its own at once (seen by the reply mirror), and the client's final ACK
// ends the connection. Bounded: at most `maxConnections` tracked (older ones dropped
// from tracking, counted), datagrams of at most DP_MAX_BATCH segments.

import { createSocket, type Socket } from 'node:dgram';
import type { RealTimeDriver } from './clock.js';
import { decodeRequest, encodeReply, intToIpv4, ipv4ToInt, type DpResult } from './dataplane-wire.js';
import type { ResetLog } from './reset-log.js';
import { TCP, type SimPacket, type SimSwitch } from './sim-switch.js';

interface DpConn {
  server: string;
  openedAt: number;
  pinned: boolean;
  /** Both FINs sent: what is left is the client's final ACK. */
  closing: boolean;
}

export interface DataplaneCounters {
  datagrams: number;
  segments: number;
  opened: number;
  closedCleanly: number;
  reset: number;
  failed: number;
  active: number;
  untracked: number;
  /**
   * Final ACKs that reached another server (the client is in TIME-WAIT: not a broken connection; the server's
   * side times out).
   */
  lastAckLost: number;
}

export class DataplaneServer {
  private socket: Socket | undefined;
  private readonly conns = new Map<string, DpConn>();
  readonly counters: DataplaneCounters = {
    datagrams: 0,
    segments: 0,
    opened: 0,
    closedCleanly: 0,
    reset: 0,
    failed: 0,
    active: 0,
    untracked: 0,
    lastAckLost: 0,
  };

  constructor(
    private readonly sw: SimSwitch,
    private readonly o: { resetLog?: ResetLog; driver?: RealTimeDriver; maxConnections?: number },
  ) {}

  async start(host: string, port: number): Promise<string> {
    const s = createSocket({
      type: host.includes(':') ? 'udp6' : 'udp4',
      recvBufferSize: 8 << 20,
      sendBufferSize: 8 << 20,
    });
    s.on('message', (msg, rinfo) => {
      const req = decodeRequest(msg);
      if (req === undefined) return;
      this.o.driver?.catchUp();
      const results = req.segs.map((seg) => this.segment(seg.src, seg.dst, seg.sport, seg.dport, seg.flags));
      s.send(encodeReply(req.batch, results), rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, host, () => resolve());
    });
    this.socket = s;
    const a = s.address();
    return `${host}:${a.port}`;
  }

  /** One client segment through the switch. */
  segment(srcN: number, dstN: number, sport: number, dport: number, flags: number): DpResult {
    this.counters.segments++;
    const src = intToIpv4(srcN);
    const dst = intToIpv4(dstN);
    const pkt: SimPacket = { src, dst, sport, dport, protocol: TCP, flags, bytes: flags & 0x02 ? 74 : 1200 };
    const d = this.sw.deliver(pkt);
    const key = `${src}|${sport}|${dst}|${dport}`;
    const result: DpResult = {
      outcome: d.outcome,
      via: d.via,
      nexthop: d.nexthop === undefined ? 0 : ipv4ToInt(d.nexthop),
    };
    const syn = (flags & 0x02) !== 0 && (flags & 0x10) === 0;
    if (syn) {
      if (d.outcome === 'opened' && d.nexthop !== undefined) {
        if (this.conns.size >= (this.o.maxConnections ?? 2_000_000)) {
          const oldest = this.conns.keys().next().value;
          if (oldest !== undefined) this.conns.delete(oldest);
          this.counters.untracked++;
        }
        this.conns.set(key, {
          server: d.nexthop,
          openedAt: Date.now(),
          pinned: d.via === 'pin',
          closing: false,
        });
        this.counters.opened++;
      } else this.counters.failed++;
      this.counters.active = this.conns.size;
      return result;
    }
    const c = this.conns.get(key);
    if (c === undefined) return result;
    if (d.via === 'pin') c.pinned = true;
    if (c.closing && (d.outcome === 'reset' || d.outcome === 'lost')) {
      this.sw.servers.get(c.server)?.forget(key);
      this.conns.delete(key);
      this.counters.lastAckLost++;
    } else if (d.outcome === 'reset' || d.outcome === 'lost') {
      // The client gets a RST (or its packets vanish): the connection is broken; the server that held it
      // gives up too.
      this.sw.servers.get(c.server)?.forget(key);
      this.conns.delete(key);
      this.counters.reset++;
      const pinned = c.pinned || this.sw.pins.programmedFor({ src, dst, protocol: TCP, sport, dport });
      this.o.resetLog?.write({
        src,
        sport,
        dst,
        dport,
        server: c.server,
        reached: d.nexthop ?? null,
        via: d.via,
        pinned,
        openedAt: c.openedAt,
        at: Date.now(),
      });
    } else if (d.outcome === 'closed' || (flags & 0x04) !== 0) {
      this.conns.delete(key);
      this.counters.closedCleanly++;
    } else if ((flags & 0x01) !== 0 && d.nexthop === c.server) {
      // The client's FIN reached its server, which answers with its own FIN at once (reply mirror); the
      // client's final ACK ends it.
      this.sw.serverSend(pkt, c.server, 'fin');
      c.closing = true;
    }
    this.counters.active = this.conns.size;
    return result;
  }

  /**
   * Connections open on each server, as the dataplane tracks them: `live` those not closing, `closing` those
   * with both FINs sent (only the client's final ACK is left; a final ACK that reaches another server is no
   * broken connection, `lastAckLost`).
   */
  byServer(): { live: Record<string, number>; closing: Record<string, number> } {
    const live: Record<string, number> = {};
    const closing: Record<string, number> = {};
    for (const c of this.conns.values()) {
      const into = c.closing ? closing : live;
      into[c.server] = (into[c.server] ?? 0) + 1;
    }
    return { live, closing };
  }

  async stop(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
