// The look-up side of a switch: the bounded queue of flows waiting for their nexthop and the
// loop that asks the adapter in batches (a bounded number in flight), retrying with backoff
// when the switch fails. Every queued flow carries the sequence number of the event that
// brought it, so a change can wait for every event up to its mark. Holds pause the start of
// new look-ups while a group change is applied; each change holds with its own token, so one
// change's release never ends another's hold. What an answer means is the owner's business
// (`onAnswers`): this module only asks and hands answers on, in batch order.

import type { FlowSpec, SwitchAdapter } from '../switch-adapters/contract.js';
import { isSwitchError } from '../switch-adapters/errors.js';
import { backoffMs } from '../lib/backoff.js';
import type { Clock } from './clock.js';
import { ResolveQueue, type Pending } from './resolve-queue.js';

export interface ResolverOptions {
  adapter: SwitchAdapter;
  clock: Clock;
  capacity: number;
  concurrency: number;
  retryMaxMs: number;
  /** The flow still needs (or, `both`, still wants a comparing) answer. */
  wanted: (p: Pending) => boolean;
  flowOf: (key: string) => FlowSpec;
  /**
   * Answers of one batch, in order: the nexthop of each flow asked (undefined: the switch could not tell),
   * and whether an addition in progress moves it.
   */
  onAnswers: (
    asked: Pending[],
    nexthops: (string | undefined)[],
    movedByAdd: (boolean | undefined)[],
  ) => void;
  /** Where an addition is in progress, whether it moves each answered flow (undefined where not known). */
  predictMoves: (flows: FlowSpec[], nexthops: (string | undefined)[]) => Promise<(boolean | undefined)[]>;
  onFailure: (err: unknown, batch: Pending[]) => void;
  /** A batch ended (answered or failed). */
  onProgress: () => void;
  /** Look-ups start only once the switch is connected (SYNs seen before wait in the queue). */
  ready: () => boolean;
}

export class Resolver {
  readonly queue: ResolveQueue;
  private inFlight = 0;
  private readonly holds = new Set<string>();
  /** Bumped by every hold: a batch sent before it answers for a group that may have changed. */
  private holdGen = 0;
  private failures = 0;
  private retryTimer: unknown;
  private stopped = false;
  lastError: string | undefined;

  constructor(private readonly o: ResolverOptions) {
    this.queue = new ResolveQueue(o.capacity);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== undefined) this.o.clock.cancel(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Queues a flow for its look-up (asked once pump() runs); false when the queue is full (shed). */
  push(p: Pending): boolean {
    return this.queue.push(p);
  }

  /** Puts flows back in sequence order (their reply did not come; they are looked up after all). */
  requeue(ps: Pending[]): void {
    if (ps.length > 0) this.queue.requeue(ps);
    this.pump();
  }

  get busy(): number {
    return this.inFlight;
  }

  get held(): boolean {
    return this.holds.size > 0;
  }

  /**
   * Holds the start of new look-ups for `token`. Batches in flight are not waited for: their
   * answers may come after the group write and reflect either group, so they are not applied;
   * those flows are asked again after the release.
   */
  hold(token: string): void {
    this.holds.add(token);
    this.holdGen++;
  }

  release(token: string): void {
    this.holds.delete(token);
    this.pump();
  }

  /** Starts look-up batches while there is work and room in flight. */
  pump(): void {
    if (!this.o.ready()) return;
    while (
      !this.stopped &&
      this.holds.size === 0 &&
      this.retryTimer === undefined &&
      this.inFlight < this.o.concurrency &&
      this.queue.length > 0
    ) {
      const batch = this.queue.take(this.o.adapter.capabilities.resolveBatchSize, this.o.wanted);
      if (batch.length === 0) continue;
      this.inFlight++;
      void this.ask(batch).finally(() => {
        this.inFlight--;
        this.o.onProgress();
        this.pump();
      });
    }
  }

  private async ask(batch: Pending[]): Promise<void> {
    // Wanted when taken; an answer by other means since (a reply) is still asked, and its answer compared.
    const asked = batch;
    const flows = asked.map((p) => this.o.flowOf(p.key));
    const gen = this.holdGen;
    let nexthops: (string | undefined)[];
    try {
      nexthops = asked.length === 0 ? [] : await this.o.adapter.resolve(flows);
    } catch (err) {
      this.failures++;
      this.lastError = err instanceof Error ? err.message : String(err);
      this.queue.requeue(batch);
      this.o.onFailure(err, batch);
      // Retrying soon cannot mend refused credentials or a refused command: wait the longest.
      const hopeless = isSwitchError(err) && !err.retryable;
      const delay = hopeless ? this.o.retryMaxMs : backoffMs(this.failures, 100, this.o.retryMaxMs);
      this.retryTimer = this.o.clock.schedule(delay, () => {
        this.retryTimer = undefined;
        this.pump();
      });
      return;
    }
    this.failures = 0;
    this.lastError = undefined;
    if (gen !== this.holdGen) {
      // A hold began while the switch answered: the answers may reflect a group changed since. Asked again.
      this.queue.requeue(batch);
      return;
    }
    const moved = await this.o.predictMoves(flows, nexthops);
    this.o.onAnswers(asked, nexthops, moved);
    this.queue.finish(batch);
  }
}
