// Rendezvous (highest random weight) hashing: each switch goes to the live member whose hash of
// (member, switch) is highest. When a member joins or leaves, only the switches it wins or
// held move; every instance computes the same answer from the same member list.
// Thaler and Ravishankar, "Using name-based mappings to increase hit rates", IEEE/ACM ToN 1998.

import { createHash } from 'node:crypto';

const weight = (member: string, sw: string): bigint =>
  createHash('sha256').update(member).update('\0').update(sw).digest().readBigUInt64BE(0);

/** The member that should own `sw` among `members` (undefined for none). */
export function rendezvousOwner(sw: string, members: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestW = -1n;
  for (const m of members) {
    const w = weight(m, sw);
    if (w > bestW || (w === bestW && best !== undefined && m < best)) {
      best = m;
      bestW = w;
    }
  }
  return best;
}
