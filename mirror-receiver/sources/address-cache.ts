// Text of the source addresses the native reader reports, cached per address: mirrored
// frames come from a few switches, so one string per switch is made, never one per datagram.
// Records are those of native/recvmmsg.c: uint32 words in host order, the family in word 2 and
// the address bytes at byte 16. The text is what Node's dgram gives in rinfo.address (IPv6 as
// RFC 5952, IPv4-mapped with a dotted tail: addr.ts), so configured mirrorSources match either reader.

import { ipv4At, ipv6At } from '../../lib/addr.js';

/** Past this many distinct addresses the cache starts again (a bound, never reached by a few switches). */
const LIMIT = 4096;

export class AddressCache {
  private readonly v4 = new Map<number, string>();
  private v6: { w0: number; w1: number; w2: number; w3: number; text: string }[] = [];

  /** The source address of record `rec` (words of `meta`, bytes of `bytes`: the same memory). */
  text(meta: Uint32Array, bytes: Uint8Array, rec: number): string {
    const w = rec * 8;
    const family = meta[w + 2];
    if (family === 4) {
      const key = meta[w + 4] as number;
      let s = this.v4.get(key);
      if (s === undefined) {
        if (this.v4.size >= LIMIT) this.v4.clear();
        s = ipv4At(bytes, rec * 32 + 16);
        this.v4.set(key, s);
      }
      return s;
    }
    if (family === 6) {
      const w0 = meta[w + 4] as number;
      const w1 = meta[w + 5] as number;
      const w2 = meta[w + 6] as number;
      const w3 = meta[w + 7] as number;
      const list = this.v6;
      for (let i = 0; i < list.length; i++) {
        const e = list[i] as (typeof list)[number];
        if (e.w3 === w3 && e.w2 === w2 && e.w1 === w1 && e.w0 === w0) return e.text;
      }
      // A few switches: a short list searched linearly; bounded all the same.
      if (list.length >= 64) this.v6 = [];
      const text = ipv6At(bytes, rec * 32 + 16);
      this.v6.push({ w0, w1, w2, w3, text });
      return text;
    }
    return '';
  }
}
