// Exponential backoff: the delay before retry number `failures` (1 for the first), doubling
// from `minMs` up to `maxMs`. One formula for every retry loop toward a switch.

export function backoffMs(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
}
