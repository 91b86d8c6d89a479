// The simulated switch's mirror session: each mirrored packet becomes a real GRE frame in
// Arista's "tunnel mode gre" format (ERSPAN type I: GRE protocol 0x88BE, no sequence
// number, then the mirrored Ethernet frame), sent over GRE-in-UDP to a collector on
// loopback, or over a raw IP socket (protocol 47) when running as root. The reply session
// (servers' SYN-ACKs) sends the server's MAC as the frame's source, in type I or in ERSPAN
// type II with the port index (draft-foschiano-erspan-03, section 4.2: version 1, VLAN, COS,
// En, T, session id, then 12 reserved bits and the 20-bit Index).

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { parseIp } from '../lib/addr.js';
import { loadRawSocket, type RawModule } from '../mirror-receiver/sources/raw-gre.js';
import type { SimPacket } from './sim-switch.js';

const GRE_HEADER = Buffer.from([0x00, 0x00, 0x88, 0xbe]);
const SWITCH_MAC = [0x00, 0x1c, 0x73, 0x00, 0x00, 0x99];
const NEXTHOP_MAC = [0x00, 0x1c, 0x73, 0x00, 0x00, 0x01];

function checksum(buf: Buffer, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (buf[i] ?? 0) * 256 + (buf[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The GRE packet (GRE header onward) that mirrors `pkt`: ERSPAN type I around Ethernet/IP/TCP. */
export function erspanType1(pkt: SimPacket, srcMac?: string): Buffer {
  const frame = ethernetFrame(pkt, srcMac === undefined ? SWITCH_MAC : macBytes(srcMac));
  const buf = Buffer.alloc(4 + frame.length);
  GRE_HEADER.copy(buf, 0);
  frame.copy(buf, 4);
  return buf;
}

/** ERSPAN type II (GRE with sequence number, protocol 0x88BE, 8-byte header) around the frame. */
export function erspanType2(
  pkt: SimPacket,
  o: { srcMac: string; portIndex: number; sessionId: number; seq: number },
): Buffer {
  const frame = ethernetFrame(pkt, macBytes(o.srcMac));
  const buf = Buffer.alloc(8 + 8 + frame.length);
  buf.writeUInt16BE(0x1000, 0);
  buf.writeUInt16BE(0x88be, 2);
  buf.writeUInt32BE(o.seq >>> 0, 4);
  buf.writeUInt16BE(0x1000, 8);
  buf.writeUInt16BE(o.sessionId & 0x03ff, 10);
  buf.writeUInt32BE(o.portIndex & 0x000fffff, 12);
  frame.copy(buf, 16);
  return buf;
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16) & 0xff);
}

/** The mirrored Ethernet frame of `pkt` (to the next hop's MAC, from `srcMac`). */
function ethernetFrame(pkt: SimPacket, srcMac: number[]): Buffer {
  const src = parseIp(pkt.src);
  const dst = parseIp(pkt.dst);
  const v6 = src.family === 6;
  const ipLen = v6 ? 40 : 20;
  const tcpLen = 20;
  const buf = Buffer.alloc(14 + ipLen + tcpLen);
  let o = 0;
  buf.set(NEXTHOP_MAC, o);
  buf.set(srcMac, o + 6);
  buf.writeUInt16BE(v6 ? 0x86dd : 0x0800, o + 12);
  o += 14;
  if (v6) {
    buf.writeUInt32BE(0x60000000, o);
    buf.writeUInt16BE(tcpLen, o + 4);
    buf[o + 6] = 6;
    buf[o + 7] = 64;
    buf.set(src.bytes, o + 8);
    buf.set(dst.bytes, o + 24);
  } else {
    buf[o] = 0x45;
    buf.writeUInt16BE(ipLen + tcpLen, o + 2);
    buf[o + 8] = 64;
    buf[o + 9] = 6;
    buf.set(src.bytes, o + 12);
    buf.set(dst.bytes, o + 16);
    buf.writeUInt16BE(checksum(buf, o, o + 20), o + 10);
  }
  o += ipLen;
  buf.writeUInt16BE(pkt.sport, o);
  buf.writeUInt16BE(pkt.dport, o + 2);
  buf.writeUInt32BE(0x10000000, o + 4);
  buf[o + 12] = 0x50;
  buf[o + 13] = pkt.flags;
  buf.writeUInt16BE(65535, o + 14);
  return buf;
}

export interface MirrorTarget {
  /** Collector address (flowpin's mirror-receiver). */
  host: string;
  /** UDP port for GRE-in-UDP; ignored for raw. */
  port: number;
  /** 'udp' (GRE-in-UDP, unprivileged) or 'raw' (IP protocol 47, root). */
  transport: 'udp' | 'raw';
  /** Source address to bind, so the collector sees the switch's address (loopback range). */
  sourceAddress?: string;
  /** More collectors on `host` (UDP only), each sent every frame: one more monitor session each. */
  alsoPorts?: readonly number[];
  /** More collectors on other hosts (UDP only), sent from the address the route gives. */
  alsoTo?: readonly { host: string; port: number }[];
}

export class MirrorSender {
  sent = 0;
  errors = 0;
  private udp: Socket | undefined;
  private readonly also: Socket[] = [];
  private raw: ReturnType<RawModule['createSocket']> | undefined;

  constructor(private readonly target: MirrorTarget) {}

  async start(): Promise<void> {
    if (this.target.transport === 'raw') {
      const raw = loadRawSocket();
      this.raw = raw.createSocket({
        addressFamily: isIPv6(this.target.host) ? raw.AddressFamily.IPv6 : raw.AddressFamily.IPv4,
        protocol: 47,
      });
      this.raw.on('error', () => this.errors++);
      return;
    }
    this.udp = await this.session(this.target.port);
    for (const port of this.target.alsoPorts ?? []) this.also.push(await this.session(port));
    for (const to of this.target.alsoTo ?? []) this.also.push(await this.session(to.port, to.host));
  }

  private async session(port: number, host?: string): Promise<Socket> {
    const udp = createSocket(isIPv6(host ?? this.target.host) ? 'udp6' : 'udp4');
    udp.on('error', () => this.errors++);
    const bindAddr = host === undefined ? this.target.sourceAddress : undefined;
    await new Promise<void>((resolve) =>
      udp.bind(bindAddr === undefined ? {} : { address: bindAddr, port: 0 }, () => resolve()),
    );
    // Connected: each send skips the address look-up (most of a send's cost at thousands a second).
    await new Promise<void>((resolve) => udp.connect(port, host ?? this.target.host, () => resolve()));
    return udp;
  }

  private seq = 0;

  send(pkt: SimPacket): void {
    this.sendFrame(erspanType1(pkt));
  }

  /** A server's SYN-ACK from the reply session: ERSPAN II with the port index, or type I (MAC only). */
  sendReply(
    pkt: SimPacket,
    from: { mac: string; portIndex: number | undefined },
    encap: 'erspan1' | 'erspan2',
    sessionId = 2,
  ): void {
    if (encap === 'erspan2' && from.portIndex !== undefined)
      this.sendFrame(
        erspanType2(pkt, { srcMac: from.mac, portIndex: from.portIndex, sessionId, seq: ++this.seq }),
      );
    else this.sendFrame(erspanType1(pkt, from.mac));
  }

  private sendFrame(frame: Buffer): void {
    const done = (err: Error | null): void => {
      if (err) this.errors++;
      else this.sent++;
    };
    if (this.udp) {
      this.udp.send(frame, done);
      for (const s of this.also) s.send(frame, (err) => err && this.errors++);
    } else if (this.raw) this.raw.send(frame, 0, frame.length, this.target.host, (err) => done(err));
  }

  stop(): void {
    this.udp?.close();
    this.udp = undefined;
    for (const s of this.also.splice(0)) s.close();
    this.raw?.close();
    this.raw = undefined;
  }
}
