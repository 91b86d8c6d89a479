// RecordWriter: writes the JSON line `flowpin decode` prints for a decoded frame straight into
// an output buffer, byte by byte from the FrameView, with no string per field. Its output is
// exactly `JSON.stringify(decodeRecord(view)) + '\n'` (flow-event.ts), addresses as addr.ts
// prints them (IPv6 per RFC 5952); tests hold the two to each other.

import { ENCAP_NAMES, flagNames, type FrameView } from './frame-view.js';

const enc = (s: string): Uint8Array => Buffer.from(s, 'latin1');

const K_OUTER_SRC = enc('{"outerSrc":');
const K_OUTER_DST = enc(',"outerDst":');
const K_ENCAP = enc(',"encap":');
const K_VLAN = enc(',"vlan":');
const K_SRC = enc(',"src":');
const K_DST = enc(',"dst":');
const K_SPORT = enc(',"sport":');
const K_DPORT = enc(',"dport":');
const K_FLAGS = enc(',"flags":');
const NULL = enc('null');
const ENCAPS = ENCAP_NAMES.map((n) => enc(JSON.stringify(n)));
/** `["SYN","ACK"]}\n` for every flags byte, the line's tail included. */
const FLAG_TAILS = Array.from({ length: 256 }, (_, i) => enc(`${JSON.stringify(flagNames(i))}}\n`));
const HEX = enc('0123456789abcdef');
/** Decimal text of 0..255, three bytes each, and its length. */
const DEC3 = new Uint8Array(256 * 3);
const DEC3_LEN = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  const s = String(i);
  DEC3_LEN[i] = s.length;
  for (let k = 0; k < s.length; k++) DEC3[i * 3 + k] = s.charCodeAt(k);
}
/** The longest line: two IPv6 outer and inner addresses, all flags, a VLAN. */
const MAX_LINE = 512;

export class RecordWriter {
  /** Output bytes so far are `buf[0, length)`. */
  buf: Buffer;
  length = 0;

  constructor(capacity = 1 << 20) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, 4 * MAX_LINE));
  }

  /** True when fewer than one line's worth of room is left: flush before the next write. */
  get full(): boolean {
    return this.buf.length - this.length < MAX_LINE;
  }

  /** The bytes written so far; valid until the next write after `reset`. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }

  /** Appends the line of a decoded view. The caller keeps room (see `full`). */
  write(view: FrameView): void {
    const src = view.buf;
    let p = this.put(K_OUTER_SRC, this.length);
    p =
      view.outerFamily === 0
        ? this.text(view.outerSrcText, p)
        : this.addr(src, view.outerSrcOff, view.outerFamily, p);
    p = this.put(K_OUTER_DST, p);
    p =
      view.outerFamily === 0
        ? this.text(view.outerDstText, p)
        : this.addr(src, view.outerDstOff, view.outerFamily, p);
    p = this.put(K_ENCAP, p);
    p = this.put(ENCAPS[view.encap] as Uint8Array, p);
    p = this.put(K_VLAN, p);
    p = view.vlan < 0 ? this.put(NULL, p) : this.uint(view.vlan, p);
    p = this.put(K_SRC, p);
    p = this.addr(src, view.srcOff, view.family, p);
    p = this.put(K_DST, p);
    p = this.addr(src, view.dstOff, view.family, p);
    p = this.put(K_SPORT, p);
    p = this.uint(view.sport, p);
    p = this.put(K_DPORT, p);
    p = this.uint(view.dport, p);
    p = this.put(K_FLAGS, p);
    this.length = this.put(FLAG_TAILS[view.flags & 0xff] as Uint8Array, p);
  }

  private put(bytes: Uint8Array, p: number): number {
    const out = this.buf;
    for (let i = 0; i < bytes.length; i++) out[p + i] = bytes[i] as number;
    return p + bytes.length;
  }

  /** A JSON string of text from a socket (an address); rare, so JSON.stringify does the quoting. */
  private text(s: string, p: number): number {
    const q = JSON.stringify(s);
    if (q.length > 64) return this.put(enc('"?"'), p);
    return p + this.buf.write(q, p, 'utf8');
  }

  private uint(v: number, p: number): number {
    const out = this.buf;
    if (v < 10) {
      out[p] = 48 + v;
      return p + 1;
    }
    let digits = 0;
    for (let t = v; t > 0; t = Math.floor(t / 10)) digits++;
    for (let i = digits - 1, t = v; i >= 0; i--, t = Math.floor(t / 10)) out[p + i] = 48 + (t % 10);
    return p + digits;
  }

  private addr(src: Buffer, off: number, family: 4 | 6, p: number): number {
    const out = this.buf;
    out[p++] = 0x22;
    p = family === 4 ? this.ipv4(src, off, p) : this.ipv6(src, off, p);
    out[p] = 0x22;
    return p + 1;
  }

  private ipv4(src: Buffer, off: number, p: number): number {
    const out = this.buf;
    for (let i = 0; i < 4; i++) {
      if (i > 0) out[p++] = 0x2e;
      const b = src[off + i] as number;
      const n = DEC3_LEN[b] as number;
      for (let k = 0; k < n; k++) out[p++] = DEC3[b * 3 + k] as number;
    }
    return p;
  }

  /** RFC 5952 text, the same choices as addr.ts ipv6At. */
  private ipv6(src: Buffer, off: number, p: number): number {
    const out = this.buf;
    let bestStart = -1;
    let bestLen = 1;
    for (let i = 0; i < 8;) {
      if (src[off + 2 * i] !== 0 || src[off + 2 * i + 1] !== 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && src[off + 2 * j] === 0 && src[off + 2 * j + 1] === 0) j++;
      if (j - i > bestLen) {
        bestStart = i;
        bestLen = j - i;
      }
      i = j;
    }
    if (bestStart === 0 && bestLen === 5 && src[off + 10] === 0xff && src[off + 11] === 0xff) {
      for (const c of [0x3a, 0x3a, 0x66, 0x66, 0x66, 0x66, 0x3a]) out[p++] = c;
      return this.ipv4(src, off + 12, p);
    }
    let afterColon = true;
    for (let i = 0; i < 8; i++) {
      if (i === bestStart) {
        out[p++] = 0x3a;
        out[p++] = 0x3a;
        afterColon = true;
        i += bestLen - 1;
        continue;
      }
      if (!afterColon) out[p++] = 0x3a;
      afterColon = false;
      const w = ((src[off + 2 * i] as number) << 8) | (src[off + 2 * i + 1] as number);
      let started = false;
      for (let shift = 12; shift >= 0; shift -= 4) {
        const nib = (w >> shift) & 0xf;
        if (nib === 0 && !started && shift > 0) continue;
        started = true;
        out[p++] = HEX[nib] as number;
      }
    }
    return p;
  }
}
