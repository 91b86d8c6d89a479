// IP prefixes: parse "A/len" and test membership (the simulator's routing table, the eAPI
// adapter's reading of the switch's routes).

import { parseIp } from './addr.js';

export interface Prefix {
  readonly text: string;
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly length: number;
}

export function parsePrefix(text: string): Prefix {
  const [addr = '', len] = text.split('/');
  const ip = parseIp(addr);
  const max = ip.family === 4 ? 32 : 128;
  const length = len === undefined ? max : Number(len);
  if (!Number.isInteger(length) || length < 0 || length > max)
    throw new Error(`bad prefix length in ${text}`);
  return { text: `${addr}/${length}`, family: ip.family, bytes: ip.bytes, length };
}

export function prefixContains(p: Prefix, address: string): boolean {
  let ip: { family: 4 | 6; bytes: Uint8Array };
  try {
    ip = parseIp(address);
  } catch {
    return false;
  }
  if (ip.family !== p.family) return false;
  let bits = p.length;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip.bytes[i] ?? 0) & mask) !== ((p.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}
