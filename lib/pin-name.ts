// flowpin's name for a flow's pin on a switch (DirectFlow flow names: the eAPI adapter, the
// simulator's in-process adapter and the scenario runner's audit all use it), and back. Under
// high availability the name ends in the writer's epoch (`-e<epoch>`), the one place a DirectFlow
// switch keeps who wrote a flow (it has no fencing token: docs/fencing.md); a name without it is
// epoch 0, as every name written without high availability.

import { canonicalIp } from './addr.js';
import type { FlowSpec } from './flow.js';

export const PIN_NAME_PREFIX = 'fp-';

/**
 * Deterministic DirectFlow flow name of a flow, e.g. fp-10_1_2_3-40000-192_0_2_80-443; written
 * by an owner of epoch N > 0 (high availability), fp-10_1_2_3-40000-192_0_2_80-443-e7.
 */
export function pinName(f: FlowSpec, epoch?: bigint): string {
  const a = (s: string): string => s.replace(/[.:]/g, '_');
  const base = `${PIN_NAME_PREFIX}${a(f.src)}-${f.sport}-${a(f.dst)}-${f.dport}`;
  return epoch === undefined || epoch === 0n ? base : `${base}-e${epoch}`;
}

/** The flow a pin name stands for and the epoch that wrote it (0 without), or undefined if not flowpin's. */
export function parsePinName(name: string): { flow: FlowSpec; epoch: bigint } | undefined {
  const m = /^fp-([0-9a-fA-F_]+)-(\d+)-([0-9a-fA-F_]+)-(\d+)(?:-e(\d{1,20}))?$/.exec(name);
  if (!m) return undefined;
  const addr = (s: string): string | undefined => {
    const v4 = s.split('_');
    try {
      return canonicalIp(
        v4.length === 4 && v4.every((p) => /^\d+$/.test(p)) ? v4.join('.') : s.replace(/_/g, ':'),
      );
    } catch {
      return undefined;
    }
  };
  const src = addr(m[1] as string);
  const dst = addr(m[3] as string);
  if (src === undefined || dst === undefined) return undefined;
  return {
    flow: { family: src.includes(':') ? 6 : 4, src, dst, sport: Number(m[2]), dport: Number(m[4]) },
    epoch: m[5] === undefined ? 0n : BigInt(m[5]),
  };
}

/** The flow a pin name stands for, or undefined if the name is not one of flowpin's. */
export function flowOfPinName(name: string): FlowSpec | undefined {
  return parsePinName(name)?.flow;
}
