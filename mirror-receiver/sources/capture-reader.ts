// CaptureReader: a push parser for classic pcap and pcapng captures. Chunks of any size go in
// (a file read, a pipe, stdin); every whole packet record is handed out as offsets into the
// chunk it arrived in (no copy), and only a record that straddles two chunks is copied once.
// Nothing in the input makes it throw: a capture that ends inside a record counts it as
// truncated, a malformed pcapng packet block is skipped and counted, and an input that
// cannot be parsed on (unknown magic, impossible length) stops it with `error` set.
//
// Formats:
// - classic pcap, draft-ietf-opsawg-pcap ("PCAP Capture File Format"): section 4, the file
//   header (magic 0xA1B2C3D4 for microsecond, 0xA1B23C4D for nanosecond timestamps, in the
//   writer's byte order; LinkType in the low 16 bits of its field, as libpcap's LT_LINKTYPE);
//   section 5, the packet record (seconds, fraction, captured length, original length).
// - pcapng, draft-ietf-opsawg-pcapng ("PCAP Now Generic (pcapng) Capture File Format"):
//   section 3.1, the block layout (type, total length, body, total length again; lengths
//   are multiples of 4); 4.1 Section Header Block (byte-order magic 0x1A2B3C4D decides the
//   byte order of the whole section; a new SHB forgets the interfaces); 4.2 Interface
//   Description Block (link type and snap length per interface; options if_tsresol (9): a
//   negative power of 10, or of 2 when the top bit is set, default 10^-6; if_tsoffset (14):
//   seconds added to every timestamp); 4.3 Enhanced Packet Block (interface id, 64-bit
//   timestamp in the interface's units, captured and original lengths); 4.4 Simple Packet
//   Block (interface 0, no timestamp, captured length = min(original length, snap length,
//   what the block holds)); the obsolete Packet Block (type 2, appendix of the draft) is read
//   like an EPB. Every other block type is skipped.

/** Receives each packet record: its bytes are `buf[off, end)`, valid only during the call. */
export type CaptureFrameHandler = (
  buf: Buffer,
  off: number,
  end: number,
  linkType: number,
  capturedAtMs: number,
) => void;

export interface CaptureStats {
  /** 'pcap', 'pcapng', or 'unknown' before the first bytes were recognised. */
  format: 'pcap' | 'pcapng' | 'unknown';
  /** Packet records handed out. */
  records: number;
  /** 1 when the input ended inside a record (a cut capture), else 0. */
  truncated: number;
  /** pcapng packet blocks skipped because they contradict themselves or name no interface. */
  malformed: number;
  /** pcapng blocks of other types (statistics, name resolution, custom) skipped. */
  skippedBlocks: number;
  /** Why reading stopped before the end of the input, if it did. */
  error?: string;
}

/** Largest classic pcap record and pcapng block accepted; beyond it the length is taken as corrupt. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BOM = 0x1a2b3c4d;
const BT_IDB = 1;
const BT_PB = 2;
const BT_SPB = 3;
const BT_EPB = 6;
const OPT_ENDOFOPT = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

interface Iface {
  linkType: number;
  snapLen: number;
  /** Timestamp units per millisecond. */
  unitsPerMs: number;
  offsetMs: number;
}

const enum Fmt {
  unknown,
  pcap,
  pcapng,
}

export class CaptureReader {
  readonly stats: CaptureStats = {
    format: 'unknown',
    records: 0,
    truncated: 0,
    malformed: 0,
    skippedBlocks: 0,
  };
  private fmt = Fmt.unknown;
  private stopped = false;
  /** Bytes of a record that started in an earlier chunk. */
  private carry: Buffer = Buffer.alloc(0);
  private carryLen = 0;
  // classic pcap
  private pcapHeaderDone = false;
  private le = true;
  private linkType = -1;
  private maxRecord = 262144;
  private fracPerMs = 1000;
  // pcapng
  private sectionLe = true;
  private sectionReadable = false;
  private ifaces: Iface[] = [];
  private lastAtMs = 0;

  constructor(private readonly onFrame: CaptureFrameHandler) {}

  /** The link type of a classic pcap, or of the first pcapng interface; -1 before it is known. */
  get firstLinkType(): number {
    return this.fmt === Fmt.pcapng ? (this.ifaces[0]?.linkType ?? -1) : this.linkType;
  }

  /** True once a whole file header (pcap) or Section Header Block (pcapng) was read. */
  get headerSeen(): boolean {
    return this.fmt === Fmt.pcap ? this.pcapHeaderDone : this.fmt === Fmt.pcapng && this.sectionSeen;
  }

  private sectionSeen = false;

  /** Parses a chunk; whole records in it are handed out in place. */
  push(chunk: Buffer): void {
    if (this.stopped) return;
    let pos = 0;
    const len = chunk.length;
    while (this.carryLen > 0) {
      const size = this.sizeAt(this.carry, 0, this.carryLen);
      if (size < 0) return;
      if (this.carryLen < size) {
        // Take what is missing, then ask again: a header made whole tells the record's full size.
        if (pos === len) return;
        const take = Math.min(size - this.carryLen, len - pos);
        this.appendCarry(chunk, pos, take);
        pos += take;
        continue;
      }
      this.carryLen = 0;
      this.consume(this.carry, 0, size);
      if (this.stopped) return;
    }
    const rest = this.run(chunk, pos, len);
    if (!this.stopped && rest < len) this.appendCarry(chunk, rest, len - rest);
  }

  /** Marks the end of the input; a partial record left over is counted as truncated. */
  end(): CaptureStats {
    if (!this.stopped && this.carryLen > 0) this.stats.truncated = 1;
    this.carryLen = 0;
    this.stopped = true;
    return this.stats;
  }

  private stop(error: string): number {
    this.stopped = true;
    this.stats.error = error;
    return -1;
  }

  private appendCarry(src: Buffer, from: number, n: number): void {
    if (this.carryLen + n > this.carry.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.carryLen + n, this.carry.length * 2, 4096));
      this.carry.copy(grown, 0, 0, this.carryLen);
      this.carry = grown;
    }
    src.copy(this.carry, this.carryLen, from, from + n);
    this.carryLen += n;
  }

  /**
   * Size of the record (file header, packet record or block) at `off`, or the bytes needed
   * to learn it when fewer than that are available; -1 after stopping on a corrupt length.
   */
  private sizeAt(buf: Buffer, off: number, avail: number): number {
    if (this.fmt === Fmt.unknown) {
      if (avail < 4) return 4;
      this.detect(buf.readUInt32LE(off));
      if (this.stopped) return -1;
    }
    if (this.fmt === Fmt.pcap) {
      if (!this.pcapHeaderDone) return 24;
      if (avail < 16) return 16;
      const incl = this.le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
      if (incl > this.maxRecord)
        return this.stop(`packet record of ${incl} bytes (over ${this.maxRecord}): corrupt capture`);
      return 16 + incl;
    }
    return this.blockSizeAt(buf, off, avail);
  }

  private detect(magicLe: number): void {
    switch (magicLe) {
      case PCAP_MAGIC_US:
      case PCAP_MAGIC_NS:
        this.fmt = Fmt.pcap;
        this.le = true;
        break;
      case 0xd4c3b2a1:
      case 0x4d3cb2a1:
        this.fmt = Fmt.pcap;
        this.le = false;
        break;
      case PCAPNG_SHB:
        this.fmt = Fmt.pcapng;
        break;
      default:
        this.stop(`not a pcap or pcapng capture (magic 0x${magicLe.toString(16).padStart(8, '0')})`);
        return;
    }
    this.stats.format = this.fmt === Fmt.pcap ? 'pcap' : 'pcapng';
  }

  /** Handles one whole record from the carry buffer. */
  private consume(buf: Buffer, off: number, size: number): void {
    if (this.fmt === Fmt.pcap) {
      if (!this.pcapHeaderDone) this.pcapHeader(buf, off);
      else this.run(buf, off, off + size);
    } else {
      this.block(buf, off, size);
    }
  }

  /** Parses whole records in `buf[off, end)`; returns where the first incomplete one starts. */
  private run(buf: Buffer, off: number, end: number): number {
    if (this.fmt === Fmt.pcap && this.pcapHeaderDone) return this.pcapRecords(buf, off, end);
    while (!this.stopped) {
      const avail = end - off;
      if (avail === 0) return off;
      const size = this.sizeAt(buf, off, avail);
      if (size < 0) return end;
      if (size > avail) return off;
      this.consume(buf, off, size);
      off += size;
      if (this.fmt === Fmt.pcap && this.pcapHeaderDone) return this.pcapRecords(buf, off, end);
    }
    return end;
  }

  // ---- classic pcap ----

  private pcapHeader(buf: Buffer, off: number): void {
    const magic = buf.readUInt32LE(off);
    const rd = (o: number): number => (this.le ? buf.readUInt32LE(off + o) : buf.readUInt32BE(off + o));
    this.fracPerMs = magic === PCAP_MAGIC_NS || magic === 0x4d3cb2a1 ? 1e6 : 1000;
    const snapLen = rd(16);
    this.maxRecord = Math.min(MAX_RECORD_BYTES, Math.max(262144, snapLen));
    this.linkType = rd(20) & 0xffff;
    this.pcapHeaderDone = true;
  }

  /** The hot loop: every whole packet record in `buf[off, end)`, in place. */
  private pcapRecords(buf: Buffer, off: number, end: number): number {
    const le = this.le;
    const linkType = this.linkType;
    const fracPerMs = this.fracPerMs;
    const max = this.maxRecord;
    const onFrame = this.onFrame;
    let records = 0;
    while (end - off >= 16) {
      const incl = le ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8);
      if (incl > max) {
        this.stats.records += records;
        this.stop(`packet record of ${incl} bytes (over ${max}): corrupt capture`);
        return end;
      }
      const data = off + 16;
      if (end - data < incl) break;
      const sec = le ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
      const frac = le ? buf.readUInt32LE(off + 4) : buf.readUInt32BE(off + 4);
      records++;
      onFrame(buf, data, data + incl, linkType, sec * 1000 + frac / fracPerMs);
      off = data + incl;
    }
    this.stats.records += records;
    return off;
  }

  // ---- pcapng ----

  private u32(buf: Buffer, off: number): number {
    return this.sectionLe ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
  }

  private u16(buf: Buffer, off: number): number {
    return this.sectionLe ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
  }

  private blockSizeAt(buf: Buffer, off: number, avail: number): number {
    if (avail < 8) return 8;
    // The SHB's type reads the same in both byte orders; its byte-order magic says which.
    if (buf.readUInt32LE(off) === PCAPNG_SHB) {
      if (avail < 12) return 12;
      const bomLe = buf.readUInt32LE(off + 8);
      if (bomLe === PCAPNG_BOM) this.sectionLe = true;
      else if (buf.readUInt32BE(off + 8) === PCAPNG_BOM) this.sectionLe = false;
      else return this.stop('pcapng section header with a bad byte-order magic');
    } else if (!this.sectionSeen) {
      return this.stop('pcapng block before any section header');
    }
    const total = this.u32(buf, off + 4);
    if (total < 12 || total % 4 !== 0 || total > MAX_RECORD_BYTES)
      return this.stop(`pcapng block length ${total} is impossible: corrupt capture`);
    return total;
  }

  /** One whole block at `buf[off, off + size)`. */
  private block(buf: Buffer, off: number, size: number): void {
    const type = this.u32(buf, off);
    if (type === PCAPNG_SHB) {
      this.sectionSeen = true;
      this.ifaces = [];
      // Version 1.x is what this reader knows; a section of another major version is skipped whole.
      this.sectionReadable = size >= 28 && this.u16(buf, off + 12) === 1;
      if (!this.sectionReadable) this.stats.skippedBlocks++;
      return;
    }
    if (!this.sectionReadable) {
      this.stats.skippedBlocks++;
      return;
    }
    switch (type) {
      case BT_EPB:
      case BT_PB:
        this.packetBlock(buf, off, size, type === BT_PB);
        return;
      case BT_SPB:
        this.simplePacket(buf, off, size);
        return;
      case BT_IDB:
        this.interfaceBlock(buf, off, size);
        return;
      default:
        this.stats.skippedBlocks++;
    }
  }

  private interfaceBlock(buf: Buffer, off: number, size: number): void {
    if (size < 20) {
      this.stats.malformed++;
      // The interface still takes its number, so later ids keep pointing at the right ones.
      this.ifaces.push({ linkType: -1, snapLen: 0, unitsPerMs: 1000, offsetMs: 0 });
      return;
    }
    const iface: Iface = {
      linkType: this.u16(buf, off + 8),
      snapLen: this.u32(buf, off + 12),
      unitsPerMs: 1000,
      offsetMs: 0,
    };
    const end = off + size - 4;
    let pos = off + 16;
    while (end - pos >= 4) {
      const code = this.u16(buf, pos);
      const len = this.u16(buf, pos + 2);
      if (code === OPT_ENDOFOPT || end - pos - 4 < len) break;
      if (code === OPT_IF_TSRESOL && len >= 1) {
        const v = buf[pos + 4] as number;
        const perSecond = (v & 0x80) !== 0 ? 2 ** (v & 0x7f) : 10 ** v;
        iface.unitsPerMs = perSecond / 1000;
      } else if (code === OPT_IF_TSOFFSET && len >= 8) {
        const lo = this.sectionLe ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 8);
        const hi = this.sectionLe ? buf.readInt32LE(pos + 8) : buf.readInt32BE(pos + 4);
        iface.offsetMs = (hi * 4294967296 + lo) * 1000;
      }
      pos += 4 + ((len + 3) & ~3);
    }
    this.ifaces.push(iface);
  }

  private packetBlock(buf: Buffer, off: number, size: number, obsolete: boolean): void {
    if (size < 32) {
      this.stats.malformed++;
      return;
    }
    const ifId = obsolete ? this.u16(buf, off + 8) : this.u32(buf, off + 8);
    const iface = this.ifaces[ifId];
    const capLen = this.u32(buf, off + 20);
    if (iface === undefined || iface.linkType < 0 || capLen > size - 32) {
      this.stats.malformed++;
      return;
    }
    const hi = this.u32(buf, off + 12);
    const lo = this.u32(buf, off + 16);
    const at = (hi * 4294967296 + lo) / iface.unitsPerMs + iface.offsetMs;
    this.lastAtMs = at;
    this.stats.records++;
    this.onFrame(buf, off + 28, off + 28 + capLen, iface.linkType, at);
  }

  /** SPB: no timestamp; the time of the latest timestamped record stands in (0 before any). */
  private simplePacket(buf: Buffer, off: number, size: number): void {
    const iface = this.ifaces[0];
    if (size < 16 || iface === undefined || iface.linkType < 0) {
      this.stats.malformed++;
      return;
    }
    const origLen = this.u32(buf, off + 8);
    let capLen = Math.min(origLen, size - 16);
    if (iface.snapLen > 0) capLen = Math.min(capLen, iface.snapLen);
    this.stats.records++;
    this.onFrame(buf, off + 12, off + 12 + capLen, iface.linkType, this.lastAtMs);
  }
}
