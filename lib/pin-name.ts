// flowpin's name for a flow's pin on a switch (DirectFlow flow names: the eAPI adapter, the
// simulator's in-process adapter and the scenario runner's audit all use it), and back.

import { canonicalIp } from './addr.js';
import type { FlowSpec } from './flow.js';

export const PIN_NAME_PREFIX = 'fp-';

/** Deterministic DirectFlow flow name of a flow, e.g. fp-10_1_2_3-40000-192_0_2_80-443. */
export function pinName(f: FlowSpec): string {
  const a = (s: string): string => s.replace(/[.:]/g, '_');
  return `${PIN_NAME_PREFIX}${a(f.src)}-${f.sport}-${a(f.dst)}-${f.dport}`;
}

/** The flow a pin name stands for, or undefined if the name is not one of flowpin's. */
export function flowOfPinName(name: string): FlowSpec | undefined {
  const m = /^fp-([0-9a-fA-F_]+)-(\d+)-([0-9a-fA-F_]+)-(\d+)$/.exec(name);
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
  return { family: src.includes(':') ? 6 : 4, src, dst, sport: Number(m[2]), dport: Number(m[4]) };
}
