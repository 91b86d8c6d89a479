// A seeded plan of faults for the randomized high-availability test: each step injects one
// fault (the switch's owner killed, the owner stopped past its lease and woken, one of etcd's
// three members stopped and started again, the owner partitioned from etcd past its lease and
// healed) and asks changes at random times around it. Pure: the same seed and kinds give the
// same plan; which nexthop each change takes is drawn at run time from the same generator (the
// group's state decides what can be drained or added).

import { Rng } from '../../switch-sim/rng.js';

export const HA_FAULTS = ['kill', 'stop', 'etcd-member', 'partition'] as const;
export type HaFault = (typeof HA_FAULTS)[number];

export interface HaStep {
  step: number;
  fault: HaFault;
  /** A change asked before the fault (in flight when it hits), this long before it (ms). */
  changeBeforeMs: number | undefined;
  /** A change asked after the fault, this long after it (ms), while the switch may have no owner. */
  changeAfterMs: number | undefined;
  /** stop: how long past the lease's TTL the owner stays stopped (ms). */
  stopPastTtlMs: number;
  /** etcd-member: which member (0-2), and how long it stays down (ms). */
  member: number;
  memberDownMs: number;
  /** partition: how long past the lease's TTL the owner stays cut from etcd before it is healed (ms). */
  cutPastTtlMs: number;
}

/**
 * `count` steps of the fault `kinds` (all by default): every kind once where the count allows, the rest
 * drawn at random, in an order drawn from the seed.
 */
export function haSchedule(rng: Rng, count: number, kinds: readonly HaFault[] = HA_FAULTS): HaStep[] {
  const steps: HaStep[] = [];
  for (let i = 0; i < count; i++) {
    const fault = (i < kinds.length ? kinds[i] : kinds[rng.int(0, kinds.length - 1)]) as HaFault;
    const when = rng.int(0, 2); // 0: before, 1: after, 2: both
    steps.push({
      step: i + 1,
      fault,
      changeBeforeMs: when !== 1 ? rng.int(0, 1500) : undefined,
      changeAfterMs: when !== 0 ? rng.int(0, 3000) : undefined,
      stopPastTtlMs: rng.int(1000, 3000),
      member: rng.int(0, 2),
      memberDownMs: rng.int(2000, 6000),
      cutPastTtlMs: rng.int(0, 4000),
    });
  }
  // Shuffled so that the order of the kinds varies with the seed too.
  for (let i = steps.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [steps[i], steps[j]] = [steps[j] as HaStep, steps[i] as HaStep];
  }
  return steps.map((s, i) => ({ ...s, step: i + 1 }));
}
