// The rule counters of flowpin's policy, kept current by a Subscribe STREAM with a SAMPLE
// subscription to `rules/rule/state` (gNMI 3.5.1.5.2: sent once per sample interval), so the
// controller can age pins from `matched-pkts`. A broken stream is re-established with
// exponential backoff; until it has synced again its samples are not trusted. A counter that
// goes backwards (the device restarted) is taken as it is: the controller sees a change and
// restarts the pin's idle timer; nothing is removed for it.

import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { PathElem, SubscribeRequest, SubscribeResponse } from '../../proto/gnmi.js';
import { parseRuleNotifications, type RuleState } from './openconfig.js';
import type { GnmiTransport } from './transport.js';

export interface RuleSample extends RuleState {
  /** When the sample arrived (the adapter's clock). */
  at: number;
  /** Number of the stream message that carried it (increasing). */
  tick: number;
  /**
   * The timestamp of the notification that carried it: one sample's notifications share it
   * (the rule's leaves may be spread over several), a new one starts the next sample.
   */
  ts: string;
}

export interface CounterStreamOptions {
  sampleIntervalMs: number;
  /** Backoff bounds for re-subscribing, ms. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  now: () => number;
  onError?: (err: unknown) => void;
}

export class CounterStream {
  private stream: ClientDuplexStream<SubscribeRequest, SubscribeResponse> | undefined;
  private readonly samples = new Map<number, RuleSample>();
  private synced = false;
  /** Messages received, over all streams: a sample with a higher tick is newer. */
  tick = 0;
  private closed = true;
  private backoffMs = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly stats = { subscribes: 0, breaks: 0, samples: 0, backwards: 0 };

  constructor(
    private readonly transport: GnmiTransport,
    private readonly rules: readonly PathElem[],
    private readonly o: CounterStreamOptions,
  ) {}

  start(): void {
    if (!this.closed) return;
    this.closed = false;
    this.open();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.stream?.cancel();
    this.stream = undefined;
    this.synced = false;
  }

  /** The stream is up and has sent its first complete sample. */
  get healthy(): boolean {
    return this.synced && !this.closed;
  }

  /** The latest sample of a rule, if the stream is healthy and has one. */
  sample(seq: number): RuleSample | undefined {
    return this.healthy ? this.samples.get(seq) : undefined;
  }

  forget(seq: number): void {
    this.samples.delete(seq);
  }

  private open(): void {
    if (this.closed) return;
    this.stats.subscribes++;
    this.synced = false;
    const s = this.transport.subscribe();
    this.stream = s;
    let done = false;
    const broken = (err?: unknown): void => {
      if (done) return;
      done = true;
      if (this.stream === s) this.stream = undefined;
      this.synced = false;
      if (this.closed) return;
      this.stats.breaks++;
      if (err !== undefined) this.o.onError?.(err);
      this.backoffMs = Math.min(
        this.o.maxBackoffMs ?? 10_000,
        Math.max(this.o.minBackoffMs ?? 100, this.backoffMs * 2),
      );
      const wait = this.backoffMs * (0.5 + Math.random() / 2);
      this.timer = setTimeout(() => this.open(), wait);
    };
    s.on('data', (m: SubscribeResponse) => {
      if (m.sync_response === true) {
        this.synced = true;
        this.backoffMs = 0;
        return;
      }
      if (m.update === undefined || m.update === null) return;
      const at = this.o.now();
      const tick = ++this.tick;
      const ts = String(m.update.timestamp ?? '');
      for (const r of parseRuleNotifications([m.update], this.rules).values()) {
        // Samples are updated in place: a table of every rule rewritten each interval would
        // otherwise be garbage the collector finds only after promoting it.
        let s = this.samples.get(r.seq);
        if (s === undefined) {
          s = { seq: r.seq, applied: r.applied, at, tick, ts };
          this.samples.set(r.seq, s);
        } else if (s.ts !== ts) s.applied = r.applied;
        // One sample may span notifications (3.5.2.1): a leaf absent from this one says nothing.
        else if (r.applied) s.applied = true;
        if (r.packets !== undefined) {
          if (s.packets !== undefined && r.packets < s.packets) this.stats.backwards++;
          s.packets = r.packets;
        }
        if (r.octets !== undefined) s.octets = r.octets;
        s.at = at;
        s.tick = tick;
        s.ts = ts;
        this.stats.samples++;
      }
    });
    s.on('error', (err) => broken(err));
    s.on('end', () => broken());
    s.write({
      subscribe: {
        prefix: { elem: [...this.rules] },
        subscription: [
          {
            path: { elem: [{ name: 'rule', key: { 'sequence-id': '*' } }, { name: 'state' }] },
            mode: 'SAMPLE',
            sample_interval: String(BigInt(Math.round(this.o.sampleIntervalMs)) * 1_000_000n),
          },
        ],
        mode: 'STREAM',
        encoding: 'JSON_IETF',
      },
    });
  }
}
