// The simulated switch's saved configuration: each VIP's group members, as a switch keeps its
// configuration across a restart (`write memory`). `flowpin start` gives its simulator a file,
// so that a restart of the demo finds the switch as the last run left it (a drained server
// still out, an added one still in). Pins are not kept: like DirectFlow's non-persistent
// flows, they are gone after the switch restarts, and flowpin installs again what it needs.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { SimSwitch } from './sim-switch.js';

interface Saved {
  version: 1;
  groups: Record<string, string[]>;
}

/** Writes the switch's groups to `file` (atomically). */
export function saveSwitch(sw: SimSwitch, file: string): void {
  const groups: Record<string, string[]> = {};
  for (const v of sw.vips.values()) groups[v.address] = [...v.group.members()];
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ version: 1, groups } satisfies Saved));
  renameSync(tmp, file);
}

/** Puts back the groups saved in `file`, where it exists; returns the VIPs restored. */
export function loadSwitch(sw: SimSwitch, file: string): string[] {
  if (!existsSync(file)) return [];
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<Saved>;
  if (saved.version !== 1 || typeof saved.groups !== 'object' || saved.groups === null)
    throw new Error(`${file} is not a saved simulator configuration (version 1)`);
  const restored: string[] = [];
  for (const [vip, members] of Object.entries(saved.groups)) {
    const v = sw.vips.get(vip);
    if (v === undefined || !Array.isArray(members) || members.length === 0) continue;
    const want = new Set(members);
    // Additions first: a group never goes empty on the way.
    for (const m of want) if (!v.group.members().includes(m)) sw.groupAdd(vip, m);
    for (const m of [...v.group.members()]) if (!want.has(m)) sw.groupRemove(vip, m);
    restored.push(vip);
  }
  return restored;
}
