// Time as the controller sees it: `now()` in milliseconds and timers, injected so that the
// change protocol runs on wall time in production and on the simulator's virtual clock in
// the scenario runner and tests (where time moves while the controller waits on a switch).

export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a handle for cancel(). */
  schedule(ms: number, fn: () => void): unknown;
  cancel(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule: (ms, fn) => setTimeout(fn, Math.max(0, ms)),
  cancel: (h) => clearTimeout(h as NodeJS.Timeout),
};

export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.schedule(ms, resolve));
}

export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/** Waits for `p` at most `ms`; rejects with DeadlineError naming `what()` past it. */
export async function withDeadline<T>(
  clock: Clock,
  p: Promise<T>,
  ms: number,
  what: () => string,
): Promise<T> {
  let handle: unknown;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        handle = clock.schedule(Math.max(0, ms), () => reject(new DeadlineError(`timed out ${what()}`)));
      }),
    ]);
  } finally {
    clock.cancel(handle);
  }
}

/**
 * Resolves when `cond()` holds, checked whenever `wake` fires; rejects with DeadlineError at
 * `deadline` (clock time). `wake` registers a listener and returns its removal.
 */
export function until(
  clock: Clock,
  cond: () => boolean,
  wake: (fn: () => void) => () => void,
  deadline: number,
  what: () => string,
): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let off = (): void => undefined;
    // No deadline (Infinity): no timer (a timer that long would fire at once).
    const handle = Number.isFinite(deadline)
      ? clock.schedule(Math.max(0, deadline - clock.now()), () => {
          off();
          reject(new DeadlineError(`timed out ${what()}`));
        })
      : undefined;
    off = wake(() => {
      if (!cond()) return;
      off();
      if (handle !== undefined) clock.cancel(handle);
      resolve();
    });
  });
}
