// Capture files written byte by byte for reader tests, independently of the reader: classic
// pcap in either byte order with microsecond or nanosecond timestamps, and pcapng (SHB, IDB
// with if_tsresol/if_tsoffset, EPB, SPB, obsolete PB, and blocks a reader must skip) in either
// byte order. Each packet's expected bytes, link type and time in ms come back with the file.

export interface Packet {
  data: Buffer;
  linkType: number;
  /** Capture time in ms (an SPB has none: the latest timestamped packet's, or 0). */
  atMs: number;
  /** File offset where the packet's record or block ends. */
  end: number;
}

export interface Built {
  file: Buffer;
  packets: Packet[];
  /** Offsets where each record or block ends (the places a cut leaves no partial record). */
  boundaries: number[];
}

class Out {
  parts: Buffer[] = [];
  length = 0;
  boundaries: number[] = [];
  constructor(readonly le: boolean) {}
  u16(v: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return b;
  }
  u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    return b;
  }
  push(...bs: Buffer[]): void {
    for (const b of bs) {
      this.parts.push(b);
      this.length += b.length;
    }
    this.boundaries.push(this.length);
  }
}

export interface PcapSpec {
  le: boolean;
  nano: boolean;
  linkType: number;
  snapLen?: number;
  frames: { data: Buffer; sec: number; frac: number }[];
}

export function classicPcap(spec: PcapSpec): Built {
  const o = new Out(spec.le);
  const magic = spec.nano ? 0xa1b23c4d : 0xa1b2c3d4;
  o.push(
    o.u32(magic),
    o.u16(2),
    o.u16(4),
    o.u32(0),
    o.u32(0),
    o.u32(spec.snapLen ?? 262144),
    o.u32(spec.linkType),
  );
  const packets: Packet[] = [];
  for (const f of spec.frames) {
    o.push(Buffer.concat([o.u32(f.sec), o.u32(f.frac), o.u32(f.data.length), o.u32(f.data.length), f.data]));
    packets.push({
      data: f.data,
      linkType: spec.linkType,
      atMs: f.sec * 1000 + f.frac / (spec.nano ? 1e6 : 1000),
      end: o.length,
    });
  }
  return { file: Buffer.concat(o.parts), packets, boundaries: o.boundaries };
}

export interface IfaceSpec {
  linkType: number;
  snapLen?: number;
  /** if_tsresol byte; absent means microseconds. */
  tsresol?: number;
  /** if_tsoffset in seconds. */
  tsoffset?: number;
}

export type BlockSpec =
  | { kind: 'epb' | 'pb'; iface: number; ts: bigint; data: Buffer; origLen?: number }
  | { kind: 'spb'; data: Buffer; origLen?: number }
  | { kind: 'skip'; type: number; body: Buffer }
  | { kind: 'section'; ifaces: IfaceSpec[] };

const pad4 = (b: Buffer): Buffer =>
  b.length % 4 === 0 ? b : Buffer.concat([b, Buffer.alloc(4 - (b.length % 4))]);

function unitsPerSecond(tsresol: number | undefined): number {
  if (tsresol === undefined) return 1e6;
  return (tsresol & 0x80) !== 0 ? 2 ** (tsresol & 0x7f) : 10 ** tsresol;
}

/** A pcapng file: a first section with `ifaces`, then `blocks` (a 'section' block starts a new one). */
export function pcapng(le: boolean, ifaces: IfaceSpec[], blocks: BlockSpec[]): Built {
  const o = new Out(le);
  const packets: Packet[] = [];
  const block = (type: number, body: Buffer): void => {
    const b = pad4(body);
    const total = 12 + b.length;
    o.push(Buffer.concat([o.u32(type), o.u32(total), b, o.u32(total)]));
  };
  let current: IfaceSpec[] = [];
  let lastAt = 0;
  const section = (list: IfaceSpec[]): void => {
    const shb = Buffer.concat([
      o.u32(0x1a2b3c4d),
      o.u16(1),
      o.u16(0),
      Buffer.alloc(8, 0xff),
      o.u16(1),
      o.u16(5),
      pad4(Buffer.from('flow.')),
      o.u16(0),
      o.u16(0),
    ]);
    block(0x0a0d0d0a, shb);
    for (const i of list) {
      const opts: Buffer[] = [];
      if (i.tsresol !== undefined) opts.push(o.u16(9), o.u16(1), pad4(Buffer.from([i.tsresol])));
      if (i.tsoffset !== undefined) {
        const v = Buffer.alloc(8);
        if (le) v.writeBigInt64LE(BigInt(i.tsoffset));
        else v.writeBigInt64BE(BigInt(i.tsoffset));
        opts.push(o.u16(14), o.u16(8), v);
      }
      opts.push(o.u16(2), o.u16(3), pad4(Buffer.from('lo0')));
      opts.push(o.u16(0), o.u16(0));
      block(1, Buffer.concat([o.u16(i.linkType), o.u16(0), o.u32(i.snapLen ?? 0), ...opts]));
    }
    current = list;
  };
  section(ifaces);
  for (const b of blocks) {
    if (b.kind === 'section') {
      section(b.ifaces);
    } else if (b.kind === 'skip') {
      block(b.type, b.body);
    } else if (b.kind === 'spb') {
      const i = current[0] as IfaceSpec;
      block(3, Buffer.concat([o.u32(b.origLen ?? b.data.length), b.data]));
      const snap = i.snapLen ?? 0;
      const cap = snap > 0 ? Math.min(b.data.length, snap) : b.data.length;
      packets.push({ data: b.data.subarray(0, cap), linkType: i.linkType, atMs: lastAt, end: o.length });
    } else {
      const i = current[b.iface] as IfaceSpec;
      const hi = Number(b.ts >> 32n);
      const lo = Number(b.ts & 0xffffffffn);
      const head = b.kind === 'epb' ? o.u32(b.iface) : Buffer.concat([o.u16(b.iface), o.u16(0)]);
      const comment =
        b.kind === 'epb'
          ? Buffer.concat([o.u16(1), o.u16(2), pad4(Buffer.from('hi')), o.u16(0), o.u16(0)])
          : Buffer.alloc(0);
      block(
        b.kind === 'epb' ? 6 : 2,
        Buffer.concat([
          head,
          o.u32(hi),
          o.u32(lo),
          o.u32(b.data.length),
          o.u32(b.origLen ?? b.data.length),
          pad4(b.data),
          comment,
        ]),
      );
      const ups = unitsPerSecond(i.tsresol);
      lastAt = Number(b.ts) / (ups / 1000) + (i.tsoffset ?? 0) * 1000;
      packets.push({ data: b.data, linkType: i.linkType, atMs: lastAt, end: o.length });
    }
  }
  return { file: Buffer.concat(o.parts), packets, boundaries: o.boundaries };
}
