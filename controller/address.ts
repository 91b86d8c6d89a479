// The one parser for every address that reaches a switch (VIPs, nexthops): text in, the
// canonical form out, or an error that names the field. Zone ids are refused (a switch
// address has none); IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address it maps;
// unspecified, multicast, loopback and link-local addresses are refused.

import { isIP } from 'node:net';
import { canonicalIp, parseIp } from '../lib/addr.js';

export class AddressError extends Error {
  override readonly name = 'AddressError';
}

/** The canonical text of a unicast host address, or an AddressError saying what is wrong with it. */
export function hostAddress(text: string): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64)
    throw new AddressError(`'${String(text).slice(0, 64)}' is not an IP address`);
  if (text.includes('%')) throw new AddressError(`'${text}' has a zone id; a switch address has none`);
  if (isIP(text) === 0) throw new AddressError(`'${text}' is not an IP address`);
  const { family, bytes } = parseIp(text);
  let b = bytes;
  let fam = family;
  if (family === 6 && bytes.slice(0, 10).every((x) => x === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    b = bytes.slice(12);
    fam = 4;
  }
  const canon = canonicalIp(fam === 4 ? Array.from(b).join('.') : text);
  if (fam === 4) {
    const [a = 0, c = 0] = b;
    if (b.every((x) => x === 0)) throw new AddressError(`'${text}' is the unspecified address`);
    if (a === 127) throw new AddressError(`'${text}' is a loopback address`);
    if (a >= 224 && a <= 239) throw new AddressError(`'${text}' is a multicast address`);
    if (a === 255 && b.every((x) => x === 255)) throw new AddressError(`'${text}' is the broadcast address`);
    if (a === 169 && c === 254) throw new AddressError(`'${text}' is a link-local address`);
  } else {
    if (b.every((x) => x === 0)) throw new AddressError(`'${text}' is the unspecified address`);
    if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1)
      throw new AddressError(`'${text}' is the loopback address`);
    if (b[0] === 0xff) throw new AddressError(`'${text}' is a multicast address`);
    if (b[0] === 0xfe && ((b[1] ?? 0) & 0xc0) === 0x80)
      throw new AddressError(`'${text}' is a link-local address`);
  }
  return canon;
}

export const familyOf = (canon: string): 4 | 6 => (canon.includes(':') ? 6 : 4);
