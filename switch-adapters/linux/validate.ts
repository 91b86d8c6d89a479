// Checks for every name and address the adapter puts on an `ip` or `nft` command line. They
// reach argv only (no shell), but `ip -batch` and `nft -f` read words from text, so a value
// with a space or a quote could add a word or a statement: each must pass here first.

import { isIP } from 'node:net';
import { canonicalIp } from '../../lib/addr.js';

/** Linux interface names: 1-15 bytes, no '/', whitespace, ':' or quotes (dev_valid_name). */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
/** nft table/chain/map names as this adapter makes them. */
const NFT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

export function checkIfname(name: string): string {
  if (!IFNAME.test(name) || name === '.' || name === '..')
    throw new Error(`'${name}' is not a valid interface name`);
  return name;
}

export function checkNftName(name: string): string {
  if (!NFT_NAME.test(name))
    throw new Error(
      `'${name}' is not a valid nft name (letter first, then letters, digits, '_', at most 32)`,
    );
  return name;
}

const canonical = new Map<string, string>();

/** A canonical IP address, or an error naming the value. (Remembered: look-ups check every flow's two.) */
export function checkIp(addr: string): string {
  const known = canonical.get(addr);
  if (known !== undefined) return known;
  if (isIP(addr) === 0) throw new Error(`'${addr}' is not an IP address`);
  const c = canonicalIp(addr);
  if (canonical.size >= 200_000) canonical.clear();
  canonical.set(addr, c);
  return c;
}

export function checkPort(p: number): number {
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`'${p}' is not a port`);
  return p;
}

export const familyOf = (addr: string): 4 | 6 => (isIP(addr) === 6 ? 6 : 4);
