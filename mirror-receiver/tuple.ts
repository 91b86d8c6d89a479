// Compact binary form of a TCP flow's addresses and ports: a latin1 string of the source
// address, destination address, source port and destination port bytes (12 characters for
// IPv4, 36 for IPv6). It is cheap to build from a frame, small as a Map key, and reversible.

import { ipAt, ipv4Value, parseIp } from '../lib/addr.js';

export interface FlowTuple {
  family: 4 | 6;
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

const scratch: number[] = new Array<number>(36).fill(0);

/** The tuple of the addresses at `srcOff`/`dstOff` of `buf` and the given ports. */
export function tupleAt(
  buf: Uint8Array,
  family: 4 | 6,
  srcOff: number,
  dstOff: number,
  sport: number,
  dport: number,
): string {
  if (family === 4) {
    return String.fromCharCode(
      buf[srcOff] as number,
      buf[srcOff + 1] as number,
      buf[srcOff + 2] as number,
      buf[srcOff + 3] as number,
      buf[dstOff] as number,
      buf[dstOff + 1] as number,
      buf[dstOff + 2] as number,
      buf[dstOff + 3] as number,
      sport >> 8,
      sport & 0xff,
      dport >> 8,
      dport & 0xff,
    );
  }
  for (let i = 0; i < 16; i++) {
    scratch[i] = buf[srcOff + i] as number;
    scratch[16 + i] = buf[dstOff + i] as number;
  }
  scratch[32] = sport >> 8;
  scratch[33] = sport & 0xff;
  scratch[34] = dport >> 8;
  scratch[35] = dport & 0xff;
  return String.fromCharCode.apply(null, scratch);
}

/** The tuple of a flow given in text form; throws on addresses that are not IP or differ in family. */
export function tupleOf(flow: FlowTuple): string {
  const s4 = ipv4Value(flow.src);
  const d4 = s4 < 0 ? -1 : ipv4Value(flow.dst);
  if (d4 >= 0) {
    return String.fromCharCode(
      s4 >>> 24,
      (s4 >>> 16) & 0xff,
      (s4 >>> 8) & 0xff,
      s4 & 0xff,
      d4 >>> 24,
      (d4 >>> 16) & 0xff,
      (d4 >>> 8) & 0xff,
      d4 & 0xff,
      flow.sport >> 8,
      flow.sport & 0xff,
      flow.dport >> 8,
      flow.dport & 0xff,
    );
  }
  const s = parseIp(flow.src);
  const d = parseIp(flow.dst);
  if (s.family !== d.family) throw new Error(`address families differ: ${flow.src} and ${flow.dst}`);
  const bytes = new Uint8Array(s.bytes.length * 2);
  bytes.set(s.bytes, 0);
  bytes.set(d.bytes, s.bytes.length);
  return tupleAt(bytes, s.family, 0, s.bytes.length, flow.sport, flow.dport);
}

/** The flow a tuple stands for. */
export function parseTuple(tuple: string, offset = 0): FlowTuple {
  const len = tuple.length - offset;
  if (len !== 12 && len !== 36) throw new Error(`not a flow tuple (length ${len})`);
  const family = len === 12 ? 4 : 6;
  const alen = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i++) bytes[i] = tuple.charCodeAt(offset + i);
  return {
    family,
    src: ipAt(bytes, 0, family),
    dst: ipAt(bytes, alen, family),
    sport: ((bytes[2 * alen] as number) << 8) | (bytes[2 * alen + 1] as number),
    dport: ((bytes[2 * alen + 2] as number) << 8) | (bytes[2 * alen + 3] as number),
  };
}

/** The tuple of the opposite direction (a reply's tuple gives the flow it answers). */
export function reverseTuple(tuple: string, offset = 0): string {
  const len = tuple.length - offset;
  const alen = len === 12 ? 4 : len === 36 ? 16 : -1;
  if (alen < 0) throw new Error(`not a flow tuple (length ${len})`);
  const a = offset;
  const b = a + alen;
  const p = b + alen;
  return tuple.slice(b, p) + tuple.slice(a, b) + tuple.slice(p + 2, p + 4) + tuple.slice(p, p + 2);
}
