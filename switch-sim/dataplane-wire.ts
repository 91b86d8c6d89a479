// The wire format of the simulator's dataplane endpoint, shared by the simulator and the
// external load process: UDP datagrams on loopback, each a batch of TCP segments (IPv4
// 5-tuples and flags) the load sends through the switch, answered by one datagram with the
// outcome of each (opened, ok, closed, reset, lost) and the nexthop it reached.
//
// Request:  magic 'FD' (u16) | version 1 (u8) | type 1 (u8) | batch id (u32) | count (u16)
//           then `count` records of 14 bytes: src (u32) dst (u32) sport (u16) dport (u16) flags (u8) 0 (u8)
// Reply:    magic 'FD' | version 1 | type 2 | batch id | count | `count` records of 6 bytes:
//           outcome (u8) via (u8) nexthop (u32, 0 when none)

export const DP_MAGIC = 0x4644;
export const DP_VERSION = 1;
export const DP_HEADER = 10;
export const DP_REQ_RECORD = 14;
export const DP_REPLY_RECORD = 6;
/** Records per datagram at most (a request of 14 + 64 * 14 = 906 bytes). */
export const DP_MAX_BATCH = 64;

export const OUTCOMES = ['opened', 'ok', 'closed', 'reset', 'lost'] as const;
export type DpOutcome = (typeof OUTCOMES)[number];
export const VIAS = ['pin', 'ecmp', 'drop', 'no-route'] as const;
export type DpVia = (typeof VIAS)[number];

export interface DpSegment {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  flags: number;
}

export interface DpResult {
  outcome: DpOutcome;
  via: DpVia;
  /** IPv4 address as a number, 0 when the segment reached no server. */
  nexthop: number;
}

export const ipv4ToInt = (a: string): number =>
  a.split('.').reduce((n, o) => ((n << 8) | (Number(o) & 255)) >>> 0, 0);
export const intToIpv4 = (n: number): string =>
  [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export function encodeRequest(batch: number, segs: readonly DpSegment[]): Buffer {
  if (segs.length > DP_MAX_BATCH) throw new RangeError(`at most ${DP_MAX_BATCH} segments a datagram`);
  const b = Buffer.alloc(DP_HEADER + segs.length * DP_REQ_RECORD);
  b.writeUInt16BE(DP_MAGIC, 0);
  b.writeUInt8(DP_VERSION, 2);
  b.writeUInt8(1, 3);
  b.writeUInt32BE(batch >>> 0, 4);
  b.writeUInt16BE(segs.length, 8);
  segs.forEach((s, i) => {
    const o = DP_HEADER + i * DP_REQ_RECORD;
    b.writeUInt32BE(s.src >>> 0, o);
    b.writeUInt32BE(s.dst >>> 0, o + 4);
    b.writeUInt16BE(s.sport, o + 8);
    b.writeUInt16BE(s.dport, o + 10);
    b.writeUInt8(s.flags & 0xff, o + 12);
  });
  return b;
}

/** The segments of a request, or undefined if the datagram is not one. */
export function decodeRequest(b: Buffer): { batch: number; segs: DpSegment[] } | undefined {
  if (
    b.length < DP_HEADER ||
    b.readUInt16BE(0) !== DP_MAGIC ||
    b.readUInt8(2) !== DP_VERSION ||
    b.readUInt8(3) !== 1
  )
    return undefined;
  const count = b.readUInt16BE(8);
  if (count > DP_MAX_BATCH || b.length !== DP_HEADER + count * DP_REQ_RECORD) return undefined;
  const segs: DpSegment[] = [];
  for (let i = 0; i < count; i++) {
    const o = DP_HEADER + i * DP_REQ_RECORD;
    segs.push({
      src: b.readUInt32BE(o),
      dst: b.readUInt32BE(o + 4),
      sport: b.readUInt16BE(o + 8),
      dport: b.readUInt16BE(o + 10),
      flags: b.readUInt8(o + 12),
    });
  }
  return { batch: b.readUInt32BE(4), segs };
}

export function encodeReply(batch: number, results: readonly DpResult[]): Buffer {
  const b = Buffer.alloc(DP_HEADER + results.length * DP_REPLY_RECORD);
  b.writeUInt16BE(DP_MAGIC, 0);
  b.writeUInt8(DP_VERSION, 2);
  b.writeUInt8(2, 3);
  b.writeUInt32BE(batch >>> 0, 4);
  b.writeUInt16BE(results.length, 8);
  results.forEach((r, i) => {
    const o = DP_HEADER + i * DP_REPLY_RECORD;
    b.writeUInt8(OUTCOMES.indexOf(r.outcome), o);
    b.writeUInt8(VIAS.indexOf(r.via), o + 1);
    b.writeUInt32BE(r.nexthop >>> 0, o + 2);
  });
  return b;
}

export function decodeReply(b: Buffer): { batch: number; results: DpResult[] } | undefined {
  if (
    b.length < DP_HEADER ||
    b.readUInt16BE(0) !== DP_MAGIC ||
    b.readUInt8(2) !== DP_VERSION ||
    b.readUInt8(3) !== 2
  )
    return undefined;
  const count = b.readUInt16BE(8);
  if (b.length !== DP_HEADER + count * DP_REPLY_RECORD) return undefined;
  const results: DpResult[] = [];
  for (let i = 0; i < count; i++) {
    const o = DP_HEADER + i * DP_REPLY_RECORD;
    const outcome = OUTCOMES[b.readUInt8(o)];
    const via = VIAS[b.readUInt8(o + 1)];
    if (outcome === undefined || via === undefined) return undefined;
    results.push({ outcome, via, nexthop: b.readUInt32BE(o + 2) });
  }
  return { batch: b.readUInt32BE(4), results };
}
