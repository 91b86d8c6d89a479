// Waiting on a condition with a deadline, for tests, benchmarks and tools that watch
// something outside their own process (a kernel, a child process).

/** Polls `cond` every 100 ms until it holds or the deadline passes (then throws `what`). */
export async function until(what: string, timeoutMs: number, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
