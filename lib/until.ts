// Waiting on a condition with a deadline, for tests, benchmarks and tools that watch
// something outside their own process (a kernel, a child process).

/** Polls `cond` every 100 ms until it holds or the deadline passes (then throws `what`). */
export async function until(
  what: string,
  timeoutMs: number,
  cond: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Polls `get` every `everyMs` until it gives a value (not undefined or false), which it returns; throws
 * `what` past `ms`.
 */
export async function waitFor<T>(
  get: () => T | undefined | false | Promise<T | undefined | false>,
  ms: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
