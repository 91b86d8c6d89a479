// The change protocol, one behaviour at a time, with time moving while the controller works:
// switch latency, pin and group programming delays, traffic during the barrier and the
// group change, faults, kills. Each test names the defect it exists to catch.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord, DryRunReport } from '../controller/changes.js';
import { FlowpinError } from '../controller/errors.js';
import { World, type WorldOptions, type WorldSwitchOptions } from '../cli/scenario/world.js';
import { flowId } from '../switch-adapters/contract.js';
import { specOf } from '../controller/switch-runtime.js';
import { pinName } from '../lib/pin-name.js';
import { measured } from './helpers/measured.js';

const VIP = '192.0.2.80';
const VIP2 = '192.0.2.81';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
const NH2 = ['10.0.2.1', '10.0.2.2', '10.0.2.3'];
const SPARE = '10.0.1.5';

function sw(over: Partial<WorldSwitchOptions> = {}): WorldSwitchOptions {
  return {
    name: 'sw1',
    vips: [
      { address: VIP, nexthops: NH, port: 443 },
      { address: VIP2, nexthops: NH2, port: 80 },
    ],
    spares: [SPARE],
    ecmpMode: 'resilient',
    pinCapacity: 100_000,
    programDelayMs: 10,
    pinProgramDelayMs: 50,
    rate: 1000,
    lifetime: { kind: 'lognormal', medianS: 30, sigma: 1, maxS: 600 },
    ...over,
  };
}

async function world(
  over: Partial<WorldOptions> = {},
  swOver: Partial<WorldSwitchOptions> = {},
  live = 2000,
): Promise<World> {
  const w = new World({
    switches: [sw(swOver)],
    latencyMs: 5,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed: 11,
    controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 5000, store: 'memory' },
    ...over,
  });
  await w.startController();
  w.openLive(live, { kind: 'fixed', s: 3600 });
  w.startTraffic();
  await w.advance(1500);
  return w;
}

const cm = (w: World, name = 'sw1') => {
  const c = w.controller?.changeManager(name);
  assert.ok(c);
  return c;
};

/** Every reset was counted by flowpin or unseen, none protected; after every live connection sent again. */
async function assertPromiseKept(w: World): Promise<ReturnType<World['audit']>> {
  await w.advance(2500);
  const a = w.audit();
  assert.equal(a.brokenProtected, 0, a.details.join('\n'));
  assert.equal(a.uncounted, 0, a.details.join('\n'));
  return a;
}

describe('change protocol', () => {
  test(
    'a drain under load applies within the settle time and a few round trips, and breaks nothing it saw before the hold',
    { timeout: 60_000 },
    async () => {
      // Catches: a barrier that waits for the resolver to be idle (it never is at this rate); a pin
      // policy that does not pin flows resolved to a draining nexthop; no hold during the group write.
      const w = await world({}, { rate: 3000 });
      try {
        const onNh = w.controller?.runtime('sw1').flowsOn(VIP, NH[1] as string).length ?? 0;
        const rec = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          10_000,
        )) as ChangeRecord;
        assert.equal(rec.phase, 'applied');
        const took = (rec.appliedAt as number) - rec.startedAt;
        assert.ok(took < 20 + 50 + 20 * 5 + 200, `the drain took ${took} ms of switch time to apply`);
        assert.ok(
          measured(rec.pinned) >= onNh,
          `${measured(rec.pinned)} pins programmed for ${onNh} flows on the nexthop`,
        );
        assert.equal(measured(rec.atRisk), 0);
        assert.ok(
          (rec.effectiveAt as number) >= (rec.appliedAt as number) + 10,
          'effective only once the switch reports it in forwarding',
        );
        assert.ok(
          !w
            .sw('sw1')
            .sw.programmedMembers(VIP)
            .includes(NH[1] as string),
        );
        const a = await assertPromiseKept(w);
        assert.ok(
          a.broken <= measured(rec.windowFlows),
          `${a.broken} resets, ${measured(rec.windowFlows)} window flows counted`,
        );
      } finally {
        await w.close();
      }
    },
  );

  test(
    'an addition under load pins the flows the new member takes over before it joins',
    { timeout: 60_000 },
    async () => {
      // Catches: an addition whose pending phase never pins newly resolved flows.
      const w = await world({}, { rate: 3000 });
      try {
        const rec = (await w.settle(
          cm(w).add(VIP, SPARE, { maxAtRisk: 'unbounded' }),
          10_000,
        )) as ChangeRecord;
        assert.equal(rec.phase, 'complete');
        assert.ok(measured(rec.pinned) > 50, `only ${measured(rec.pinned)} pins`);
        assert.equal(measured(rec.atRisk), 0);
        const a = await assertPromiseKept(w);
        assert.ok(a.broken <= measured(rec.windowFlows));
        assert.ok(
          w.sw('sw1').sw.servers.get(SPARE)?.connectionCount ?? 0 > 0,
          'the new member takes new connections',
        );
      } finally {
        await w.close();
      }
    },
  );

  test(
    'one change per VIP at a time; changes of one switch run in turn, each visible while queued',
    { timeout: 60_000 },
    async () => {
      // Catches: two pending changes on one VIP; a shared hold released by the first change while the second
      // writes.
      const w = await world({}, { programDelayMs: 40 });
      try {
        const first = cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' });
        await w.advance(1);
        await assert.rejects(
          cm(w).drain(VIP, NH[2] as string, { maxAtRisk: 'unbounded' }),
          (err: unknown) => err instanceof FlowpinError && err.status === 409,
        );
        const second = cm(w).drain(VIP2, NH2[0] as string, { maxAtRisk: 'unbounded' });
        // Recorded once its bound is checked (a dry run), then queued behind the first.
        for (let i = 0; i < 50 && cm(w).records.find((r) => r.vip === VIP2) === undefined; i++)
          await w.advance(1);
        const queued = cm(w).records.find((r) => r.vip === VIP2);
        assert.equal(queued?.phase, 'queued', 'the second change waits for the first');
        const [a, b] = (await w.settle(Promise.all([first, second]), 20_000)) as ChangeRecord[];
        assert.ok(
          (b?.startedAt ?? 0) >= (a?.appliedAt ?? Infinity),
          'the second started after the first was applied',
        );
        await assertPromiseKept(w);
      } finally {
        await w.close();
      }
    },
  );

  test(
    'a group write the switch refuses fails the change, releases resolution and removes its pins',
    { timeout: 60_000 },
    async () => {
      // Catches: release() outside finally (resolution stays held); pins of a failed change left wanted.
      const w = await world();
      try {
        const adapter = w.adapters.get('sw1');
        assert.ok(adapter);
        adapter.faults.refuseGroupWrites = true;
        await assert.rejects(
          w.settle(cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }), 30_000),
          (err: unknown) => err instanceof FlowpinError && err.status === 503,
        );
        const rec = cm(w).records.at(-1);
        assert.equal(rec?.phase, 'failed');
        const rt = w.controller?.runtime('sw1');
        assert.ok(rt);
        assert.equal(
          [...rt.reconciler.desired.values()].filter((p) => p.reason === rec?.id).length,
          0,
          'no pin of the failed change is wanted',
        );
        assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'the group is as it was');
        adapter.faults.refuseGroupWrites = false;
        const seqBefore = rt.seq;
        await w.advance(6000);
        assert.ok(rt.seq > seqBefore && rt.queue.length < 50, 'new SYNs are resolved again');
        assert.equal(w.sw('sw1').sw.pins.size, 0, "the failed change's pins are gone from the switch");
        const again = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          10_000,
        )) as ChangeRecord;
        assert.equal(again.phase, 'applied');
        await assertPromiseKept(w);
      } finally {
        await w.close();
      }
    },
  );

  test(
    'a pin the switch refuses is dropped and counted at risk, by reason',
    { timeout: 60_000 },
    async () => {
      // Catches: a refused pin neither dropped nor counted.
      const w = await world();
      try {
        const adapter = w.adapters.get('sw1');
        assert.ok(adapter);
        adapter.faults.refuseNext = 5;
        const rec = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          10_000,
        )) as ChangeRecord;
        assert.equal(rec.atRiskBy.refused, 5);
        assert.equal(w.controller?.runtime('sw1').reconciler.failed.size, 5);
        assert.match(
          (await w.controller?.metrics.registry.metrics()) ?? '',
          /flowpin_connections_at_risk_total\{switch="sw1",why="refused"\} 5/,
        );
        const a = await assertPromiseKept(w);
        assert.ok(a.counted >= 1, 'the refused flows broke, and were counted');
      } finally {
        await w.close();
      }
    },
  );

  test(
    'a switch that lost its pins while unreachable gets them back (a failed round resyncs)',
    { timeout: 60_000 },
    async () => {
      // Catches: no full resync after a failed round (the periodic resync is far off here).
      const w = await world({
        controller: {
          pinMode: 'on-change',
          settleMs: 20,
          barrierTimeoutMs: 5000,
          store: 'memory',
          resyncIntervalS: 3600,
        },
      });
      try {
        const rec = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          10_000,
        )) as ChangeRecord;
        assert.equal(rec.phase, 'applied');
        const s = w.sw('sw1').sw;
        const adapter = w.adapters.get('sw1');
        assert.ok(adapter);
        // The switch reboots: its pins are gone, and it does not answer for a while; an addition
        // meanwhile makes a round fail. The retry must read the switch again, not trust its view.
        for (const e of s.pins.all()) s.pins.remove(e.name);
        adapter.faults.downUntil = w.now + 300;
        const add = (await w.settle(
          cm(w).add(VIP, SPARE, { maxAtRisk: 'unbounded' }),
          10_000,
        )) as ChangeRecord;
        assert.equal(add.phase, 'complete');
        await w.advance(1000);
        const rt = w.controller?.runtime('sw1');
        assert.ok(rt);
        // Every pin the drain still wants is on the switch again, and programmed.
        const drainPins = [...rt.reconciler.desired.values()].filter((p) => p.reason === rec.id);
        assert.ok(drainPins.length > 100, `${drainPins.length} drain pins wanted`);
        const missing = drainPins.filter((p) => s.pins.get(pinName(p.flow))?.status !== 'programmed');
        assert.equal(
          missing.length,
          0,
          `${missing.length} of ${drainPins.length} drain pins not back on the switch`,
        );
      } finally {
        await w.close();
      }
    },
  );

  test(
    'a short table pins the most recently seen flows first, and the dry run said how many would not fit',
    { timeout: 60_000 },
    async () => {
      // Catches: pinning the oldest flows first; a dry run that ignores existing pins or the switch's real
      // free room.
      const w = await world({}, { pinCapacity: 400, reservedPinEntries: 100 }, 1200);
      try {
        const rt = w.controller?.runtime('sw1');
        assert.ok(rt);
        const before = rt.flowsOn(VIP, NH[1] as string);
        const dry = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { dryRun: true }),
          5000,
        )) as DryRunReport;
        assert.equal(dry.freeEntries, 300, 'capacity less the entries of other owners');
        assert.ok(dry.flowsToPin > 300);
        assert.equal(dry.atRiskBy['table-full'], dry.flowsToPin - 300);
        const rec = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          10_000,
        )) as ChangeRecord;
        assert.equal(measured(rec.pinned), 300);
        assert.ok(
          Math.abs(rec.atRiskBy['table-full'] - dry.atRiskBy['table-full']) <= dry.flowsToPin * 0.05 + 5,
        );
        // Of the flows there when the drain was asked for, the ones seen last got the room.
        const flows = before.map((k) => ({ k, seen: w.controller?.flowTable.entry(k)?.lastSeen ?? 0 }));
        const pinned = flows.filter((f) => rt.reconciler.isProgrammed(flowId(specOf(f.k))));
        const unpinned = flows.filter((f) => !rt.reconciler.isProgrammed(flowId(specOf(f.k))));
        const oldestPinned = Math.min(...pinned.map((f) => f.seen));
        const newestUnpinned = Math.max(...unpinned.map((f) => f.seen));
        assert.ok(oldestPinned >= newestUnpinned, 'pins went to the flows seen last');
        // A second dry run counts the pins already programmed.
        const dry2 = (await w.settle(cm(w).add(VIP, SPARE, { dryRun: true }), 5000)) as DryRunReport;
        assert.equal(dry2.freeEntries, 0);
        await assertPromiseKept(w);
      } finally {
        await w.close();
      }
    },
  );

  for (const when of [
    'before its pins reach the switch',
    'before the group write',
    'after the group write',
  ] as const) {
    test(
      `a drain killed ${when} is resumed after a restart and breaks nothing seen before the kill`,
      { timeout: 60_000 },
      async () => {
        // Catches: a resumed change that does not re-pin, or that is never applied.
        const w = await world({}, { programDelayMs: 10, pinProgramDelayMs: 200 });
        try {
          const adapter = w.adapters.get('sw1');
          assert.ok(adapter);
          if (when === 'before its pins reach the switch') {
            // The switch is slow to answer: the record is on disk, the pins not yet on the switch.
            adapter.faults.spikeUntil = w.now + 1000;
            adapter.faults.spikeMs = 400;
          }
          const p = cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' });
          p.catch(() => undefined);
          if (when === 'after the group write') await w.settle(p, 10_000);
          else await w.advance(60);
          if (when === 'before its pins reach the switch')
            assert.equal(w.sw('sw1').sw.pins.size, 0, 'no pin reached the switch yet');
          const rec = cm(w).records.at(-1);
          assert.equal(rec?.sentAt === undefined, when !== 'after the group write');
          await w.stopController('kill');
          await w.advance(200);
          await w.startController();
          await w.advance(2000);
          const resumed = cm(w).records.find((r) => r.id === rec?.id);
          assert.equal(resumed?.phase, 'applied', `resumed drain is ${resumed?.phase ?? 'missing'}`);
          assert.ok(
            !w
              .sw('sw1')
              .sw.vips.get(VIP)
              ?.group.members()
              .includes(NH[1] as string),
            'the nexthop left the group',
          );
          await assertPromiseKept(w);
        } finally {
          await w.close();
        }
      },
    );
  }

  test("a switch that is down never delays another switch's drain", { timeout: 60_000 }, async () => {
    const w = new World({
      switches: [
        sw({ name: 'sw1', lifetime: { kind: 'fixed', s: 2 }, mirrorFinRst: true }),
        sw({ name: 'sw2', lifetime: { kind: 'fixed', s: 2 }, mirrorFinRst: true }),
      ],
      latencyMs: 5,
      mirrorDelayMs: 1,
      packetIntervalMs: 500,
      seed: 3,
      controller: {
        pinMode: 'on-change',
        settleMs: 20,
        barrierTimeoutMs: 3000,
        store: 'memory',
        pinIdleTimeoutS: 3,
      },
    });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(1500);
      const down = w.adapters.get('sw1');
      assert.ok(down);
      down.faults.downUntil = Infinity;
      const rec = (await w.settle(
        cm(w, 'sw2').drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
        10_000,
      )) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      // Its flows end (FIN mirrored; the client's FIN alone is a half-close, and the pins idle out);
      // the tracking loop completes the drain while sw1 stays down.
      await w.advance(12_000);
      assert.equal(cm(w, 'sw2').records.find((r) => r.id === rec.id)?.phase, 'drained');
      assert.equal(w.controller?.readiness().ready, false, 'sw1 is down: not ready');
    } finally {
      await w.close();
    }
  });

  test('refused credentials stop the retries and show in readiness', { timeout: 60_000 }, async () => {
    const w = await world();
    try {
      const adapter = w.adapters.get('sw1');
      assert.ok(adapter);
      adapter.faults.authFailUntil = Infinity;
      await w.advance(1000);
      const calls = adapter.stats.calls;
      await w.advance(3000);
      assert.ok(
        adapter.stats.calls - calls <= 4,
        `${adapter.stats.calls - calls} calls while credentials are refused`,
      );
      const r = w.controller?.readiness();
      assert.equal(r?.ready, false);
      assert.match(`${r?.switches[0]?.blocked ?? ''} ${r?.switches[0]?.lastError ?? ''}`, /Unauthorized/);
    } finally {
      await w.close();
    }
  });
});

test(
  'the dry run counts the pins already programmed (always mode pins every flow)',
  { timeout: 60_000 },
  async () => {
    // Catches: a dry run that ignores existing pins.
    const w = await world(
      { controller: { pinMode: 'always', settleMs: 20, barrierTimeoutMs: 5000, store: 'memory' } },
      { rate: 200 },
      400,
    );
    try {
      await w.advance(500);
      const onNh = w.controller?.runtime('sw1').flowsOn(VIP, NH[1] as string).length ?? 0;
      const dry = (await w.settle(cm(w).drain(VIP, NH[1] as string, { dryRun: true }), 5000)) as DryRunReport;
      assert.ok(dry.alreadyPinned >= onNh - 5, `${dry.alreadyPinned} of ${onNh} counted as pinned`);
      assert.ok(dry.flowsToPin <= 5, `${dry.flowsToPin} flows to pin although every flow has its pin`);
    } finally {
      await w.close();
    }
  },
);

test(
  'a group changed on the switch by someone else is taken as it is, never written back outside a change',
  { timeout: 60_000 },
  async () => {
    const w = await world();
    try {
      const rec = (await w.settle(
        cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
        10_000,
      )) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      // An operator puts the server back by hand.
      w.sw('sw1').sw.groupAdd(VIP, NH[1] as string);
      await w.advance(6000);
      assert.ok(
        w
          .sw('sw1')
          .sw.vips.get(VIP)
          ?.group.members()
          .includes(NH[1] as string),
        'flowpin did not remove it again',
      );
      assert.ok(
        w.controller
          ?.runtime('sw1')
          .vips.get(VIP)
          ?.members.has(NH[1] as string),
        'flowpin sees it in the group',
      );
      assert.match(
        (await w.controller?.metrics.registry.metrics()) ?? '',
        /flowpin_group_drift_total\{switch="sw1"\} 1/,
      );
    } finally {
      await w.close();
    }
  },
);
