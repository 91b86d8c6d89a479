// Text forms of IPv4 and IPv6 addresses read straight from a buffer, and back.
// IPv6 text follows RFC 5952 (lower case, longest zero run compressed), as tshark prints it.
// The one address library of flowpin: the decoder, the adapters, the simulator and the
// controller all read and write addresses through it.

import { isIPv6 } from 'node:net';

export function ipv4At(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

export function ipv6At(buf: Uint8Array, off: number): string {
  const words = new Array<number>(8);
  for (let i = 0; i < 8; i++) words[i] = ((buf[off + 2 * i] ?? 0) << 8) | (buf[off + 2 * i + 1] ?? 0);
  // Longest run of zero words, at least two long; the first such run wins a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // IPv4-mapped addresses keep their dotted tail, as RFC 5952 section 5 recommends.
  if (bestStart === 0 && bestLen === 5 && words[5] === 0xffff) {
    return `::ffff:${ipv4At(buf, off + 12)}`;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += (words[i] ?? 0).toString(16);
  }
  return out;
}

export function ipAt(buf: Uint8Array, off: number, family: 4 | 6): string {
  return family === 4 ? ipv4At(buf, off) : ipv6At(buf, off);
}

/**
 * A dotted-quad IPv4 address as a 32-bit unsigned number, or -1 if the text is not one. It
 * accepts exactly what Node's isIPv4 accepts (four decimal parts 0-255, no leading zeros), in
 * one pass without allocating: it sits on the per-packet path of the simulator and of tupleOf.
 */
export function ipv4Value(text: string): number {
  const n = text.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (++digits > 3) return -1;
    } else return -1;
  }
  return parts === 4 ? value : -1;
}

/** Bytes of an address in text form; throws on text that is not an IP address. */
export function parseIp(text: string): { family: 4 | 6; bytes: Uint8Array } {
  const v4 = ipv4Value(text);
  if (v4 >= 0) {
    return { family: 4, bytes: Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff) };
  }
  // Node's isIPv6 accepts a zone id (fe80::1%eth0); its text is not part of the address.
  if (!isIPv6(text) || text.includes('%')) throw new Error(`not an IP address: ${text}`);
  const bytes = new Uint8Array(16);
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const toWords = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const v4 = group.split('.').map((p) => Number(p));
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        out.push(parseInt(group, 16));
      }
    }
    return out;
  };
  const hw = toWords(head);
  const tw = toWords(tail);
  const words = [...hw, ...new Array<number>(8 - hw.length - tw.length).fill(0), ...tw];
  words.forEach((w, i) => {
    bytes[2 * i] = w >> 8;
    bytes[2 * i + 1] = w & 0xff;
  });
  return { family: 6, bytes };
}

/** Canonical text of an address (IPv6 compressed per RFC 5952). */
export function canonicalIp(text: string): string {
  const { family, bytes } = parseIp(text);
  return ipAt(bytes, 0, family);
}
