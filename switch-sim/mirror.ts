// The simulated switch's mirror session: each mirrored packet becomes a real GRE frame in
// Arista's "tunnel mode gre" format (ERSPAN type I: GRE protocol 0x88BE, no sequence
// number, then the mirrored Ethernet frame), sent over GRE-in-UDP to a collector on
// loopback, or over a raw IP socket (protocol 47) when running as root.

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { parseIp } from '../mirror-receiver/addr.js';
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
export function erspanType1(pkt: SimPacket): Buffer {
  const src = parseIp(pkt.src);
  const dst = parseIp(pkt.dst);
  const v6 = src.family === 6;
  const ipLen = v6 ? 40 : 20;
  const tcpLen = 20;
  const buf = Buffer.alloc(4 + 14 + ipLen + tcpLen);
  GRE_HEADER.copy(buf, 0);
  let o = 4;
  buf.set(NEXTHOP_MAC, o);
  buf.set(SWITCH_MAC, o + 6);
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
}

export class MirrorSender {
  sent = 0;
  errors = 0;
  private udp: Socket | undefined;
  private raw: ReturnType<RawModule['createSocket']> | undefined;

  constructor(private readonly target: MirrorTarget) {}

  async start(): Promise<void> {
    if (this.target.transport === 'raw') {
      const raw = loadRawSocket();
      this.raw = raw.createSocket({ addressFamily: isIPv6(this.target.host) ? raw.AddressFamily.IPv6 : raw.AddressFamily.IPv4, protocol: 47 });
      this.raw.on('error', () => this.errors++);
      return;
    }
    const udp = createSocket(isIPv6(this.target.host) ? 'udp6' : 'udp4');
    udp.on('error', () => this.errors++);
    const bindAddr = this.target.sourceAddress;
    await new Promise<void>((resolve) => udp.bind(bindAddr === undefined ? {} : { address: bindAddr, port: 0 }, () => resolve()));
    this.udp = udp;
  }

  send(pkt: SimPacket): void {
    const frame = erspanType1(pkt);
    const done = (err: Error | null): void => {
      if (err) this.errors++;
      else this.sent++;
    };
    if (this.udp) this.udp.send(frame, this.target.port, this.target.host, done);
    else if (this.raw) this.raw.send(frame, 0, frame.length, this.target.host, (err) => done(err));
  }

  stop(): void {
    this.udp?.close();
    this.udp = undefined;
    this.raw?.close();
    this.raw = undefined;
  }
}
