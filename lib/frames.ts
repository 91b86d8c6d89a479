// Hand-built mirrored frames for decoder tests and the receive benchmarks' senders: every
// header is written byte by byte here, independently of the decoder, so a test fails if
// either side misreads the wire format.

import { parseIp } from './addr.js';

export const concat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);

const u16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
const u32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const ip = (a: string): number[] => Array.from(parseIp(a).bytes);

export interface TcpSpec {
  sport: number;
  dport: number;
  flags: number;
  /** TCP option bytes (padded to 4). */
  options?: number[];
}

export function tcp(spec: TcpSpec): Buffer {
  const opts = [...(spec.options ?? [])];
  while (opts.length % 4 !== 0) opts.push(0);
  const doff = 5 + opts.length / 4;
  return Buffer.from([
    ...u16(spec.sport),
    ...u16(spec.dport),
    ...u32(0x01020304),
    ...u32(0),
    (doff << 4) & 0xf0,
    spec.flags,
    ...u16(65535),
    0,
    0,
    0,
    0,
    ...opts,
  ]);
}

export interface Ipv4Spec {
  src: string;
  dst: string;
  protocol: number;
  options?: number[];
  fragOffset?: number;
  moreFragments?: boolean;
}

export function ipv4(spec: Ipv4Spec, payload: Uint8Array): Buffer {
  const opts = [...(spec.options ?? [])];
  while (opts.length % 4 !== 0) opts.push(0);
  const ihl = 5 + opts.length / 4;
  const total = ihl * 4 + payload.length;
  const frag = ((spec.moreFragments ? 1 : 0) << 13) | (spec.fragOffset ?? 0);
  const hdr = [
    0x40 | ihl,
    0,
    ...u16(total),
    ...u16(0x1234),
    ...u16(frag),
    64,
    spec.protocol,
    0,
    0,
    ...ip(spec.src),
    ...ip(spec.dst),
    ...opts,
  ];
  let sum = 0;
  for (let i = 0; i < hdr.length; i += 2) sum += ((hdr[i] ?? 0) << 8) | (hdr[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  const ck = ~sum & 0xffff;
  hdr[10] = ck >> 8;
  hdr[11] = ck & 0xff;
  return concat(Buffer.from(hdr), payload);
}

export interface Ipv6Ext {
  /** 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options. */
  type: 0 | 43 | 44 | 60;
  fragOffset?: number;
  moreFragments?: boolean;
}

export function ipv6(
  spec: { src: string; dst: string; protocol: number; ext?: Ipv6Ext[] },
  payload: Uint8Array,
): Buffer {
  const exts = spec.ext ?? [];
  const parts: Buffer[] = [];
  exts.forEach((e, i) => {
    const next = i + 1 < exts.length ? (exts[i + 1] as Ipv6Ext).type : spec.protocol;
    if (e.type === 44) {
      const word = ((e.fragOffset ?? 0) << 3) | (e.moreFragments ? 1 : 0);
      parts.push(Buffer.from([next, 0, ...u16(word), ...u32(0xabcd)]));
    } else if (e.type === 43) {
      // Type 4 segment routing header with one segment: 8 + 16 bytes, hdr ext len 2.
      parts.push(Buffer.from([next, 2, 4, 0, 0, 0, 0, 0, ...ip('2001:db8::99')]));
    } else {
      // Options header of 16 bytes (hdr ext len 1): PadN filling it.
      parts.push(Buffer.from([next, 1, 1, 12, ...new Array<number>(12).fill(0)]));
    }
  });
  const ext = concat(...parts);
  const first = exts.length > 0 ? (exts[0] as Ipv6Ext).type : spec.protocol;
  const hdr = Buffer.from([
    0x60,
    0,
    0,
    0,
    ...u16(ext.length + payload.length),
    first,
    64,
    ...ip(spec.src),
    ...ip(spec.dst),
  ]);
  return concat(hdr, ext, payload);
}

export function ethernet(
  spec: { vlans?: number[]; vlanTpids?: number[]; arista?: 'ts64' | 'ts48'; ethertype: number },
  payload: Uint8Array,
): Buffer {
  const bytes = [0x00, 0x1c, 0x73, 0x00, 0x00, 0x01, 0x00, 0x1c, 0x73, 0x00, 0x00, 0x02];
  if (spec.arista === 'ts64')
    bytes.push(0xd2, 0x8b, 0x00, 0x01, 0x00, 0x10, ...u32(1700000000), ...u32(123456789));
  if (spec.arista === 'ts48') bytes.push(0xd2, 0x8b, 0x00, 0x01, 0x00, 0x20, ...u16(1000), ...u32(123456789));
  (spec.vlans ?? []).forEach((vid, i) =>
    bytes.push(
      ...u16(spec.vlanTpids?.[i] ?? (i === 0 && (spec.vlans?.length ?? 0) > 1 ? 0x88a8 : 0x8100)),
      ...u16(vid),
    ),
  );
  bytes.push(...u16(spec.ethertype));
  return concat(Buffer.from(bytes), payload);
}

export interface GreSpec {
  protocol: number;
  checksum?: boolean;
  key?: number;
  sequence?: number;
}

export function gre(spec: GreSpec, payload: Uint8Array): Buffer {
  let flags = 0;
  const extra: number[] = [];
  if (spec.checksum) {
    flags |= 0x8000;
    extra.push(0, 0, 0, 0);
  }
  if (spec.key !== undefined) {
    flags |= 0x2000;
    extra.push(...u32(spec.key));
  }
  if (spec.sequence !== undefined) {
    flags |= 0x1000;
    extra.push(...u32(spec.sequence));
  }
  return concat(Buffer.from([...u16(flags), ...u16(spec.protocol), ...extra]), payload);
}

/** ERSPAN type II header (8 bytes): version 1, VLAN, session id, index. */
export function erspan2(sessionId: number, payload: Uint8Array): Buffer {
  return concat(Buffer.from([0x10, 0x00, (sessionId >> 8) & 0x03, sessionId & 0xff, 0, 0, 0, 7]), payload);
}

/** ERSPAN type III header (12 bytes), frame type 0 (Ethernet) or 2 (IP), optional 8-byte sub-header. */
export function erspan3(
  sessionId: number,
  payload: Uint8Array,
  opts: { subHeader?: boolean; frameType?: number } = {},
): Buffer {
  const last = ((opts.frameType ?? 0) << 10) | (opts.subHeader ? 1 : 0);
  const hdr = [
    0x20,
    0x00,
    (sessionId >> 8) & 0x03,
    sessionId & 0xff,
    ...u32(0xdeadbeef),
    ...u16(0),
    ...u16(last),
  ];
  if (opts.subHeader) hdr.push(...u32(0x01020304), ...u32(0x05060708));
  return concat(Buffer.from(hdr), payload);
}

export function udp(sport: number, dport: number, payload: Uint8Array): Buffer {
  return concat(Buffer.from([...u16(sport), ...u16(dport), ...u16(8 + payload.length), 0, 0]), payload);
}

/** A TCP segment of the given flow as IPv4 or IPv6, by the address family. */
export function tcpPacket(src: string, dst: string, t: TcpSpec): Buffer {
  const seg = tcp(t);
  return src.includes(':') ? ipv6({ src, dst, protocol: 6 }, seg) : ipv4({ src, dst, protocol: 6 }, seg);
}

/** An outer IP packet (family from the addresses) carrying `payload` as `protocol`. */
export function outerIp(src: string, dst: string, protocol: number, payload: Uint8Array): Buffer {
  return src.includes(':') ? ipv6({ src, dst, protocol }, payload) : ipv4({ src, dst, protocol }, payload);
}

/** An outer Ethernet frame around an outer IP packet. */
export function outerEthernet(ipPacket: Buffer): Buffer {
  return ethernet({ ethertype: (ipPacket[0] ?? 0) >> 4 === 6 ? 0x86dd : 0x0800 }, ipPacket);
}

/** A classic pcap file (microsecond timestamps) of the given frames. */
export function pcapFile(linkType: number, frames: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(linkType, 20);
  const parts: Buffer[] = [header];
  frames.forEach((f, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1700000000 + i, 0);
    rec.writeUInt32LE(i % 1000000, 4);
    rec.writeUInt32LE(f.length, 8);
    rec.writeUInt32LE(f.length, 12);
    parts.push(rec, f);
  });
  return Buffer.concat(parts);
}
