// An in-memory pcap of N mirrored SYNs, for the decode benchmark: a few dozen template frames,
// copied and patched so every frame is a different flow. Two mixes: `mixed`, every
// encapsulation flowpin decodes in equal shares (ERSPAN I, II, III, transparent Ethernet, bare
// IP; over IP protocol 47 and GRE-in-UDP; IPv4 and IPv6 inside), and `arista`, the shape an
// Arista switch sends: 70 % ERSPAN type I over IPv4 (`tunnel mode gre`), 15 % ERSPAN type II,
// 15 % GRE-in-UDP, IPv4 inside.

import * as f from '../lib/frames.js';
import { LinkType } from '../mirror-receiver/decode-outer.js';

interface Template {
  frame: Buffer;
  /** Offset of the inner source address's last byte and of the inner source port. */
  srcLast: number;
  sport: number;
}

export type CorpusMix = 'mixed' | 'arista';

const innerFor = (v6: boolean): Buffer =>
  f.tcpPacket(v6 ? '2001:db8:c::1' : '10.20.30.1', v6 ? '2001:db8:5::10' : '192.0.2.80', {
    sport: 0xabcd,
    dport: 443,
    flags: 0x02,
    options: [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7],
  });

function template(make: (inner: Buffer, v6: boolean) => Buffer, v6: boolean, udp: boolean): Template {
  const inner = innerFor(v6);
  const g = make(inner, v6);
  const frame = f.outerEthernet(
    udp
      ? f.outerIp('198.51.100.1', '203.0.113.9', 17, f.udp(50000, 4754, g))
      : f.outerIp('198.51.100.1', '203.0.113.9', 47, g),
  );
  const innerAt = frame.length - inner.length;
  const tcpAt = innerAt + (v6 ? 40 : 20);
  return { frame, srcLast: innerAt + (v6 ? 8 + 15 : 12 + 3), sport: tcpAt };
}

const erspan1 = (inner: Buffer, v6: boolean): Buffer =>
  f.gre({ protocol: 0x88be }, f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800 }, inner));
const erspan2 = (inner: Buffer, v6: boolean): Buffer =>
  f.gre(
    { protocol: 0x88be, sequence: 1 },
    f.erspan2(5, f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800 }, inner)),
  );

function templates(mix: CorpusMix): Template[] {
  if (mix === 'arista') {
    // 20 slots in turn: 14 ERSPAN I over IP protocol 47, 3 ERSPAN II, 3 GRE-in-UDP (ERSPAN I inside).
    const out: Template[] = [];
    for (let i = 0; i < 20; i++)
      out.push(
        i < 14
          ? template(erspan1, false, false)
          : i < 17
            ? template(erspan2, false, false)
            : template(erspan1, false, true),
      );
    return out;
  }
  const out: Template[] = [];
  const shapes: [string, (inner: Buffer, v6: boolean) => Buffer][] = [
    ['erspan1', erspan1],
    [
      'erspan1-vlan',
      (inner, v6) =>
        f.gre({ protocol: 0x88be }, f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800, vlans: [120] }, inner)),
    ],
    [
      'erspan1-arista-ts',
      (inner, v6) =>
        f.gre({ protocol: 0x88be }, f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800, arista: 'ts64' }, inner)),
    ],
    ['erspan2', erspan2],
    [
      'erspan3',
      (inner, v6) =>
        f.gre(
          { protocol: 0x22eb, sequence: 1 },
          f.erspan3(6, f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800, vlans: [10, 20] }, inner), {
            subHeader: true,
          }),
        ),
    ],
    [
      'teb-key',
      (inner, v6) =>
        f.gre({ protocol: 0x6558, key: 9 }, f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800 }, inner)),
    ],
    ['ip', (inner, v6) => f.gre({ protocol: v6 ? 0x86dd : 0x0800 }, inner)],
  ];
  for (const [, make] of shapes)
    for (const v6 of [false, false, false, true])
      for (const udp of [false, true]) out.push(template(make, v6, udp));
  return out;
}

/** A classic pcap (Ethernet link type) of `n` SYNs, each a distinct flow, in the mix asked for. */
export function mirrorCorpus(
  n: number,
  mix: CorpusMix = 'mixed',
): { pcap: Buffer; linkType: number; frames: number } {
  const ts = templates(mix);
  let total = 24;
  for (let i = 0; i < n; i++) total += 16 + (ts[i % ts.length] as Template).frame.length;
  const pcap = Buffer.allocUnsafe(total);
  pcap.writeUInt32LE(0xa1b2c3d4, 0);
  pcap.writeUInt16LE(2, 4);
  pcap.writeUInt16LE(4, 6);
  pcap.writeInt32LE(0, 8);
  pcap.writeUInt32LE(0, 12);
  pcap.writeUInt32LE(65535, 16);
  pcap.writeUInt32LE(LinkType.ethernet, 20);
  let off = 24;
  for (let i = 0; i < n; i++) {
    const t = ts[i % ts.length] as Template;
    const len = t.frame.length;
    pcap.writeUInt32LE(1700000000 + Math.floor(i / 100000), off);
    pcap.writeUInt32LE(i % 100000, off + 4);
    pcap.writeUInt32LE(len, off + 8);
    pcap.writeUInt32LE(len, off + 12);
    off += 16;
    t.frame.copy(pcap, off);
    pcap[off + t.srcLast] = i & 0xff;
    pcap[off + t.srcLast - 1] = (i >> 8) & 0xff;
    pcap.writeUInt16BE(1024 + (((i >> 16) & 0xffff) % 64000), off + t.sport);
    off += len;
  }
  return { pcap, linkType: LinkType.ethernet, frames: n };
}

/** Calls `fn(offset, end)` for every record of an in-memory classic little-endian pcap. */
export function forEachRecord(pcap: Buffer, fn: (off: number, end: number) => void): void {
  let off = 24;
  while (off + 16 <= pcap.length) {
    const len = pcap.readUInt32LE(off + 8);
    off += 16;
    fn(off, off + len);
    off += len;
  }
}
