// Runs async jobs one at a time, in the order they were given: each starts once every job
// given before it has settled. A failed job fails its own caller only; the queue goes on.

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  /** Jobs given and not yet settled (the running one included). */
  get length(): number {
    return this.queued;
  }

  run<T>(job: () => Promise<T> | T): Promise<T> {
    this.queued++;
    const run = this.tail.then(job).finally(() => this.queued--);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every job given so far has settled. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
