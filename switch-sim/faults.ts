// Injectable faults for the simulator's management interfaces: added latency, error
// replies, requests left unanswered (the client times out), requests carried out whose
// reply is lost, and dropped connections.
// Counts ("the next N requests") make tests exact; rates use a seeded generator.

import { Rng } from './rng.js';

export interface FaultPlan {
  /** Added to every request, ms. */
  latencyMs: number;
  /** The next N requests get an error reply. */
  failNext: number;
  /** Fraction of requests that get an error reply. */
  failRate: number;
  /** The next N requests are never answered (the connection is closed after `hangMs`). */
  hangNext: number;
  hangMs: number;
  /** The next N requests have their connection dropped without a reply. */
  dropNext: number;
  /**
   * The next N requests are carried out, but their reply never comes (the connection is
   * closed after `hangMs`): the client times out on a change the device made.
   */
  lostReplyNext: number;
  /** Fraction of requests whose connection is dropped. */
  dropRate: number;
}

export type FaultAction = 'ok' | 'fail' | 'hang' | 'drop' | 'lost-reply';

export const NO_FAULTS: FaultPlan = {
  latencyMs: 0,
  failNext: 0,
  failRate: 0,
  hangNext: 0,
  hangMs: 30_000,
  dropNext: 0,
  dropRate: 0,
  lostReplyNext: 0,
};

export class FaultInjector {
  private plan: FaultPlan = { ...NO_FAULTS };
  private readonly rng: Rng;
  readonly injected: Record<Exclude<FaultAction, 'ok'>, number> = {
    fail: 0,
    hang: 0,
    drop: 0,
    'lost-reply': 0,
  };

  constructor(seed = 7) {
    this.rng = new Rng(seed);
  }

  get current(): Readonly<FaultPlan> {
    return this.plan;
  }

  /** Changes part of the plan; validates every field given. */
  set(change: Partial<FaultPlan>): void {
    for (const [k, v] of Object.entries(change)) {
      if (!(k in NO_FAULTS)) throw new RangeError(`unknown fault setting ${k}`);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new RangeError(`fault setting ${k} must be a non-negative number`);
      if ((k === 'failRate' || k === 'dropRate') && v > 1) throw new RangeError(`${k} must be at most 1`);
    }
    this.plan = { ...this.plan, ...change };
  }

  clear(): void {
    this.plan = { ...NO_FAULTS };
  }

  /** What to do with the next request. */
  next(): FaultAction {
    const p = this.plan;
    let action: FaultAction = 'ok';
    if (p.dropNext > 0) {
      p.dropNext--;
      action = 'drop';
    } else if (p.lostReplyNext > 0) {
      p.lostReplyNext--;
      action = 'lost-reply';
    } else if (p.hangNext > 0) {
      p.hangNext--;
      action = 'hang';
    } else if (p.failNext > 0) {
      p.failNext--;
      action = 'fail';
    } else if (p.dropRate > 0 && this.rng.next() < p.dropRate) action = 'drop';
    else if (p.failRate > 0 && this.rng.next() < p.failRate) action = 'fail';
    if (action !== 'ok') this.injected[action]++;
    return action;
  }
}

export const delay = (ms: number): Promise<void> =>
  ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
