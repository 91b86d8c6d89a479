// The fence of a switch's writes under high availability: the owner's epoch (it only grows from
// one owner to the next) travels with every write, and each kind of switch either refuses a
// write of a lower epoch than one it has seen (`refused`: gNMI master arbitration, the Linux
// adapter's nft fence element) or cannot, and is bounded by timing (`timed`: the writer stops
// starting writes at `validUntil`, before its lease can expire and a new owner take over; eAPI,
// the simulator). See docs/fencing.md.

import { SwitchError } from './errors.js';

/** How a switch kind keeps a stale owner's writes off the switch. */
export type FenceKind = 'refused' | 'timed';

/** What the owner of a switch writes with. */
export interface FenceToken {
  /** The owner's epoch: larger for every new owner of the switch (a non-negative integer, < 2^64). */
  readonly epoch: bigint;
  /**
   * The time (ms, on the controller's clock: wall time in production) after which the owner must
   * start no write: its lease can have expired and a new owner taken the switch. Absent: no bound.
   */
  readonly validUntil?: number;
  /**
   * Throws FenceExpiredError once a write may no longer leave (the writer's current fence, less
   * its margin). Timed kinds call it again at the moment a request is handed to its connection:
   * a write checked before the process was paused (SIGSTOP) and sent after it woke is refused
   * there, not only when the write started.
   */
  readonly check?: () => void;
}

/** Largest epoch a fence carries (64 bits: the nft fence element and DirectFlow names hold no more). */
export const MAX_EPOCH = (1n << 64n) - 1n;

/** Checks a token's epoch is within 0..2^64-1. */
export function checkEpoch(epoch: bigint): bigint {
  if (epoch < 0n || epoch > MAX_EPOCH) throw new RangeError(`fence epoch ${epoch} is outside 0..2^64-1`);
  return epoch;
}

/** The switch refused a write as stale: a newer owner (a higher epoch) has written to it. */
export class SwitchFencedError extends SwitchError {
  override readonly name = 'SwitchFencedError';
  readonly retryable = false;
  constructor(
    switchName: string,
    readonly epoch: bigint,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(switchName, `write of epoch ${epoch} refused as stale: ${detail}`, options);
  }
}

/**
 * The writer refused to start a write itself: its fence's `validUntil` (less the margin) has
 * passed, so its ownership may have ended. Nothing was sent to the switch.
 */
export class FenceExpiredError extends SwitchError {
  override readonly name = 'FenceExpiredError';
  readonly retryable = false;
  constructor(
    switchName: string,
    readonly epoch: bigint,
    readonly validUntil: number,
    readonly now: number,
  ) {
    super(
      switchName,
      `write of epoch ${epoch} not started: the fence is valid until ${validUntil}, now ${now} (within the margin)`,
    );
  }
}
