// Pins wanted while a round installs (the flows a drain pins as they come) are taken up by an
// install worker that has no chunk of the round left, while the other's chunk is still on its
// way: not after the round's last chunk is answered and a new round has begun.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../controller/clock.js';
import { controllerMetrics } from '../controller/metrics.js';
import { Reconciler } from '../controller/reconciler.js';
import { flowId, type FenceToken, type PinOutcome, type PinRule } from '../switch-adapters/contract.js';
import { SimAdapter } from '../switch-adapters/sim/adapter.js';
import { NEXTHOPS, testSwitch, VIP } from './helpers/sim.js';

async function eventually(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Call {
  ids: string[];
  release: () => void;
  answered: boolean;
}

/** A reconciler on the simulator whose installs are held until the test releases them. */
function gated(): { r: Reconciler; calls: Call[] } {
  const { sw } = testSwitch({ pinCapacity: 1000 });
  const sim = new SimAdapter(sw);
  // Installs of two pins a request, each answered when the test releases it.
  const calls: Call[] = [];
  const capabilities = { ...sim.capabilities, pinBatchSize: 2 };
  const adapter = new Proxy(sim, {
    get(target, prop, receiver) {
      if (prop === 'capabilities') return capabilities;
      if (prop === 'installPins')
        return async (pins: PinRule[], fence?: FenceToken): Promise<PinOutcome[]> => {
          const call: Call = {
            ids: pins.map((p) => flowId(p.flow)),
            release: () => undefined,
            answered: false,
          };
          const gate = new Promise<void>((r) => (call.release = r));
          calls.push(call);
          await gate;
          const out = await target.installPins(pins, fence);
          call.answered = true;
          return out;
        };
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const r = new Reconciler({
    switchName: 'sw1',
    adapter,
    metrics: controllerMetrics(),
    idleTimeoutS: 300,
    clock: systemClock,
  });
  return { r, calls };
}

test(
  'a pin wanted during a round is sent by the idle install worker while the other chunk is in flight',
  { timeout: 30_000 },
  async () => {
    const { r, calls } = gated();
    const flow = (i: number) => ({
      family: 4 as const,
      src: `10.100.2.${i + 1}`,
      dst: VIP,
      sport: 42000 + i,
      dport: 443,
    });
    try {
      // The first round lists the switch (no install); the pins' round follows.
      await r.resync();
      for (let i = 0; i < 5; i++)
        r.want({ flow: flow(i), nexthop: NEXTHOPS[0] as string, reason: 'test', since: 0 });
      await eventually(() => calls.length === 2, 'two chunks of the round in flight');
      const late = flowId(flow(9));
      r.want({ flow: flow(9), nexthop: NEXTHOPS[0] as string, reason: 'test', since: 0 });
      calls[0]?.release();
      await eventually(() => calls.length === 3, "the round's third chunk sent");
      assert.ok(!(calls[2]?.ids.includes(late) ?? true), "the third chunk is the round's own");
      calls[1]?.release();
      // The worker whose chunk was answered has none of the round left: it takes up the late pin
      // while the third chunk is still unanswered.
      await eventually(() => calls.length === 4, 'the late pin sent beside the last chunk');
      assert.deepEqual(calls[3]?.ids, [late]);
      assert.equal(calls[2]?.answered, false, 'sent while the round still had a chunk on its way');
      for (const c of calls) c.release();
      const ids = [...Array.from({ length: 5 }, (_, i) => flowId(flow(i))), late];
      await eventually(() => {
        for (const c of calls) c.release();
        return r.settled(ids);
      }, 'every pin programmed');
    } finally {
      for (const c of calls) c.release();
      r.stop();
    }
  },
);

test(
  'pins taken up during a round go out two requests at a time, as the round began',
  { timeout: 30_000 },
  async () => {
    const { r, calls } = gated();
    const flow = (i: number) => ({
      family: 4 as const,
      src: `10.100.3.${i + 1}`,
      dst: VIP,
      sport: 43000 + i,
      dport: 443,
    });
    try {
      await r.resync();
      r.want({ flow: flow(0), nexthop: NEXTHOPS[0] as string, reason: 'test', since: 0 });
      await eventually(() => calls.length === 1, "the round's one chunk in flight");
      for (let i = 1; i <= 4; i++)
        r.want({ flow: flow(i), nexthop: NEXTHOPS[0] as string, reason: 'test', since: 0 });
      calls[0]?.release();
      await eventually(() => calls.length === 3, 'two chunks of the pins taken up in flight at once');
      assert.equal(calls[1]?.answered, false);
      assert.equal(calls[2]?.answered, false);
      const ids = Array.from({ length: 5 }, (_, i) => flowId(flow(i)));
      await eventually(() => {
        for (const c of calls) c.release();
        return r.settled(ids);
      }, 'every pin programmed');
    } finally {
      for (const c of calls) c.release();
      r.stop();
    }
  },
);
