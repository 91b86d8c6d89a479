// A scenario World with one switch and almost no traffic, for tests that drive the reconciler
// or a change by hand: the change tests' defaults (world.ts) with 20 ms of switch latency, pins
// programmed at once, a new connection every 1,000 s, and resyncs out of the way.

import type { World } from '../../cli/scenario/world.js';
import { changeWorld, WORLD_NH, WORLD_VIP } from './world.js';

export const QUIET_VIP = WORLD_VIP;
export const QUIET_NH = WORLD_NH;

export function quietWorld(seed: number): World {
  return changeWorld({
    seed,
    latencyMs: 20,
    sw: { programDelayMs: 0, rate: 0.001 },
    controller: { resyncIntervalS: 3600 },
  });
}
