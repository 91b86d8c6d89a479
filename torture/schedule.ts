// The torture runner's plan: which fault each run injects and when, drawn from a seed so
// that a schedule replays (`--seed`). Named phases are those of the controller's change
// log lines (`{"msg":"change phase","phase":P}`) and of FLOWPIN_CRASH_AT.

import { Rng } from '../switch-sim/rng.js';

export const PHASES = ['pending', 'held', 'sending', 'sent', 'applied', 'effective'] as const;
export type Phase = (typeof PHASES)[number];

export const FAULTS = [
  'none',
  'kill-random',
  'kill-phase',
  'stop',
  'queued-kill',
  'disk-full',
  'corrupt',
  'eapi-fault',
] as const;
export type Fault = (typeof FAULTS)[number];

export const DAMAGE = ['truncate', 'garbage', 'bad-record', 'bad-header'] as const;
export type Damage = (typeof DAMAGE)[number];

export interface RunPlan {
  run: number;
  seed: number;
  fault: Fault;
  kind: 'drain' | 'add';
  /** kill-random, stop, queued-kill: ms after the call. */
  delayMs: number;
  phase?: Phase;
  damage?: Damage;
  /** stop: how long the controller stays stopped. */
  stopMs: number;
}

/**
 * `count` runs over the faults asked for (all by default), cycling through them, details drawn from the seed.
 */
export function schedule(seed: number, count: number, faults: readonly Fault[] = FAULTS): RunPlan[] {
  const rng = new Rng(seed);
  const plans: RunPlan[] = [];
  for (let i = 0; i < count; i++) {
    const fault = faults[i % faults.length] as Fault;
    const kind = rng.next() < 0.5 ? 'drain' : 'add';
    const plan: RunPlan = {
      run: i + 1,
      seed: (seed * 1000 + i + 1) >>> 0,
      fault,
      kind,
      delayMs: rng.int(0, 1500),
      stopMs: rng.int(5000, 8000),
    };
    if (fault === 'kill-phase')
      plan.phase = PHASES[Math.floor(i / faults.length + rng.int(0, PHASES.length - 1)) % PHASES.length];
    if (fault === 'corrupt') plan.damage = DAMAGE[rng.int(0, DAMAGE.length - 1)];
    if (fault === 'queued-kill') plan.delayMs = rng.int(50, 400);
    if (fault === 'stop' || fault === 'disk-full' || fault === 'queued-kill') plan.kind = 'drain';
    plans.push(plan);
  }
  return plans;
}
