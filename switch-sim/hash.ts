// The simulator's ECMP hash: a seeded 32-bit hash of a flow's tuple (addresses, ports) and
// IP protocol, mixed like MurmurHash3. Deterministic for a seed, so tests can predict it.

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Hash of a tuple string (see mirror-receiver/tuple.ts) with the IP protocol. */
export function flowHash(tuple: string, protocol: number, seed: number): number {
  let h = seed | 0;
  let i = 0;
  for (; i + 4 <= tuple.length; i += 4) {
    h = mix(
      h,
      tuple.charCodeAt(i) |
        (tuple.charCodeAt(i + 1) << 8) |
        (tuple.charCodeAt(i + 2) << 16) |
        (tuple.charCodeAt(i + 3) << 24),
    );
  }
  let tail = protocol & 0xff;
  for (let s = 8; i < tuple.length; i++, s += 8) tail |= tuple.charCodeAt(i) << s;
  h = mix(h, tail);
  h ^= tuple.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
