// Model-based randomized test of the change protocol: random sequences of drains, undrains,
// additions and removals on several VIPs of two switches, graceful and kill restarts, switch
// faults (latency spikes, errors, a pin batch failing part-way, a full table, a programming
// delay, the switch down for a while) and SYN bursts, with time moving throughout. After
// every step: no connection flowpin protected was reset, and every reset connection is
// counted (at risk or in a change window) or was never seen by flowpin. The seed is printed;
// FLOWPIN_SEED=<seed> replays a failing run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FlowpinError } from '../controller/errors.js';
import { World } from '../cli/scenario/world.js';

const SW1 = {
  vips: [
    { address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'], port: 443 },
    { address: '192.0.2.81', nexthops: ['10.0.2.1', '10.0.2.2', '10.0.2.3'], port: 80 },
  ],
  spares: ['10.0.1.5', '10.0.2.4'],
};
const SW2 = {
  vips: [{ address: '198.51.100.10', nexthops: ['10.0.3.1', '10.0.3.2', '10.0.3.3', '10.0.3.4'], port: 443 }],
  spares: ['10.0.3.5'],
};

interface Real {
  world: World;
  pending: Promise<unknown>[];
  errors: string[];
}

type Cmd = fc.AsyncCommand<object, Real>;

function check(r: Real, where: string): void {
  const a = r.world.audit();
  assert.deepEqual(r.errors, [], `unexpected errors after ${where}`);
  // No change went past its group write with figures over the bound its caller gave.
  for (const c of r.world.changes.values()) {
    if (c.sentAt === undefined || c.resumed === true) continue;
    assert.ok(
      c.checked !== undefined,
      `change ${c.id} wrote its group without checking its bound (after ${where})`,
    );
    if (c.maxAtRisk !== 'unbounded')
      assert.ok(
        c.checked.uncountable === null && c.checked.total <= c.maxAtRisk,
        `change ${c.id} went ahead with ${c.checked.total} at risk over its bound ${c.maxAtRisk} (after ${where})`,
      );
  }
  // No nexthop reads drained while a live or unknown connection of it remains.
  for (const rt of r.world.controller?.runtimes.values() ?? []) {
    const cm = r.world.controller?.changeManager(rt.name);
    for (const rec of cm?.records ?? []) {
      if (rec.kind !== 'drain' || rec.phase !== 'drained' || rec.error !== undefined) continue;
      const vip = rt.vips.get(rec.vip);
      if (vip === undefined || vip.members.has(rec.nexthop) || !vip.nexthops.has(rec.nexthop)) continue;
      const left = rt.leftOn(rec.vip, rec.nexthop);
      assert.equal(
        left.live + left.unknown,
        0,
        `${rec.nexthop} on ${rec.vip} reads drained with ${left.live} live and ${left.unknown} unknown connections left (after ${where})`,
      );
    }
  }
  // No fault here refuses a single pin, sheds SYNs or leaves one unresolved; a change must
  // never take effect before its pins are programmed (the barrier waits for them).
  for (const c of r.world.changes.values()) {
    assert.equal(
      c.atRiskBy['not-programmed'],
      0,
      `change ${c.id} took effect with pins not programmed (after ${where})`,
    );
    assert.equal(
      c.atRiskBy.refused + c.atRiskBy.shed + c.atRiskBy.unresolved,
      0,
      `change ${c.id} counted ${JSON.stringify(c.atRiskBy)} (after ${where})`,
    );
  }
  assert.equal(
    a.brokenProtected,
    0,
    `protected connections reset after ${where}: ${a.details.join('; ')} (controller down: ${JSON.stringify(r.world.downtime)})`,
  );
  assert.equal(a.uncounted, 0, `resets neither counted nor unseen after ${where}: ${a.details.join('; ')}`);
  // The programmed count kept as the installed view changes is the count a scan gives.
  for (const rt of r.world.controller?.runtimes.values() ?? []) {
    const scanned = [...rt.reconciler.installed.values()].filter((v) => v.programmed).length;
    assert.equal(
      rt.reconciler.programmedCount(),
      scanned,
      `programmed pins of ${rt.name} miscounted after ${where}`,
    );
  }
}

/**
 * Starts a change without waiting for it (others may start meanwhile); 409/503 answers are expected outcomes.
 */
function start(r: Real, what: string, fn: () => Promise<unknown>): void {
  let p: Promise<unknown>;
  try {
    p = fn();
  } catch (err) {
    if (!(err instanceof FlowpinError)) r.errors.push(`${what}: ${String(err)}`);
    return;
  }
  r.pending.push(
    p.catch((err: unknown) => {
      if (!(err instanceof FlowpinError))
        r.errors.push(`${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }),
  );
}

const cmd = (name: string, run: (r: Real) => Promise<void> | void): Cmd => ({
  check: () => true,
  async run(_m, r) {
    await run(r);
    await r.world.advance(50);
    check(r, name);
  },
  toString: () => name,
});

const swName = fc.constantFrom('sw1', 'sw2');
/** The bound a caller gives: none (0), small, large, or any. */
const bound = fc.constantFrom<number | 'unbounded'>(0, 3, 40, 'unbounded', 'unbounded');
/** A drain's deadline: none, or short enough to pass with connections left. */
const deadline = fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined });
const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length] as T;

function changeCommands(): fc.Arbitrary<Cmd>[] {
  const drain = fc.tuple(swName, fc.nat(), fc.nat(), bound, deadline).map(([s, v, n, b, d]) =>
    cmd(`drain(${s},${v},${n},${b},${d ?? '-'})`, (r) => {
      const c = r.world.controller;
      if (c === undefined) return;
      const vip = pick(c.runtime(s).vips.size > 0 ? [...c.runtime(s).vips.values()] : [], v);
      const members = [...vip.members];
      start(r, 'drain', () =>
        c.changeManager(s).drain(vip.address, pick(members, n), {
          maxAtRisk: b,
          ...(d === undefined ? {} : { deadlineSeconds: d }),
        }),
      );
    }),
  );
  const add = fc.tuple(swName, fc.nat(), fc.nat(), bound).map(([s, v, n, b]) =>
    cmd(`add(${s},${v},${n},${b})`, (r) => {
      const c = r.world.controller;
      if (c === undefined) return;
      const vip = pick([...c.runtime(s).vips.values()], v);
      const spares = [...r.world.sw(s).sw.servers.keys()].filter(
        (a) =>
          !vip.members.has(a) &&
          a.startsWith(
            pick([...vip.nexthops], 0)
              .split('.')
              .slice(0, 3)
              .join('.'),
          ),
      );
      if (spares.length === 0) return;
      start(r, 'add', () => c.changeManager(s).add(vip.address, pick(spares, n), { maxAtRisk: b }));
    }),
  );
  const undrain = fc.tuple(swName, fc.nat(), fc.nat()).map(([s, v, n]) =>
    cmd(`undrain(${s},${v},${n})`, (r) => {
      const c = r.world.controller;
      if (c === undefined) return;
      const vip = pick([...c.runtime(s).vips.values()], v);
      const out = [...vip.nexthops].filter((a) => !vip.members.has(a));
      if (out.length === 0) return;
      start(r, 'undrain', () =>
        c.changeManager(s).undrain(vip.address, pick(out, n), { maxAtRisk: 'unbounded' }),
      );
    }),
  );
  const remove = fc.tuple(swName, fc.nat(), fc.nat(), fc.boolean()).map(([s, v, n, force]) =>
    cmd(`remove(${s},${v},${n},${force})`, (r) => {
      const c = r.world.controller;
      if (c === undefined) return;
      const vip = pick([...c.runtime(s).vips.values()], v);
      start(r, 'remove', () =>
        Promise.resolve().then(() =>
          c
            .changeManager(s)
            .remove(vip.address, pick([...vip.nexthops], n), { maxAtRisk: force ? 'unbounded' : 0 }),
        ),
      );
    }),
  );
  return [drain, add, undrain, remove];
}

function worldCommands(): fc.Arbitrary<Cmd>[] {
  const advance = fc
    .integer({ min: 100, max: 3000 })
    .map((ms) => cmd(`advance(${ms})`, (r) => r.world.advance(ms)));
  // A restart: graceful or a kill, after a short or a long time down (connections opened meanwhile go
  // unseen),
  // sometimes with the switches listed in another order in the configuration.
  const restart = fc
    .tuple(
      fc.constantFrom<'graceful' | 'kill'>('graceful', 'kill'),
      fc.constantFrom(0, 300, 8000),
      fc.boolean(),
    )
    .map(([kind, downMs, reorder]) =>
      cmd(`restart(${kind},${downMs},${reorder ? 'reordered' : 'same order'})`, async (r) => {
        await r.world.stopController(kind);
        await r.world.advance(downMs);
        // The new process runs its own copies of the unfinished changes; the old calls are gone.
        r.pending = [];
        if (reorder) r.world.reverseConfigOrder = !r.world.reverseConfigOrder;
        await r.world.startController();
      }),
    );
  const fault = fc
    .tuple(swName, fc.constantFrom('spike', 'errors', 'partial', 'full', 'delay', 'down'))
    .map(([s, kind]) =>
      cmd(`fault(${s},${kind})`, (r) => {
        const a = r.world.adapters.get(s);
        const sim = r.world.sw(s).sw;
        const now = r.world.now;
        if (a === undefined) return;
        switch (kind) {
          case 'spike':
            a.faults.spikeUntil = now + 1000;
            a.faults.spikeMs = 300;
            break;
          case 'errors':
            a.faults.failNext = 3;
            break;
          case 'partial':
            a.faults.partialInstallAt = 2;
            break;
          case 'full':
            // Other owners take the table for a while.
            sim.pins.reserved = sim.pins.capacity;
            r.world.clock.after(2000, () => (sim.pins.reserved = 0));
            break;
          case 'delay':
            sim.programDelayMs = sim.programDelayMs === 0 ? 40 : 0;
            break;
          case 'down':
            a.faults.downUntil = now + 1500;
            break;
        }
      }),
    );
  const burst = fc.tuple(swName, fc.integer({ min: 10, max: 300 })).map(([s, n]) =>
    cmd(`burst(${s},${n})`, (r) => {
      const t = r.world.sw(s).traffic;
      for (let i = 0; i < n; i++) t.open({ kind: 'fixed', s: 600 });
    }),
  );
  return [advance, restart, fault, burst];
}

test(
  'change protocol, model-based: no protected connection is reset, every reset is counted',
  { timeout: 300_000 },
  async () => {
    const seed =
      process.env['FLOWPIN_SEED'] !== undefined ? Number(process.env['FLOWPIN_SEED']) : Date.now() % 2 ** 31;
    const runs = Number(process.env['FLOWPIN_MODEL_RUNS'] ?? 12);
    console.log(`change-model seed ${seed} (replay: FLOWPIN_SEED=${seed}), ${runs} runs`);
    await fc.assert(
      fc.asyncProperty(
        fc.commands([...changeCommands(), ...changeCommands(), ...worldCommands()], { maxCommands: 25 }),
        fc.integer({ min: 0, max: 1000 }),
        async (cmds, worldSeed) => {
          const world = new World({
            switches: [
              {
                name: 'sw1',
                ...SW1,
                ecmpMode: 'resilient',
                pinCapacity: 2000,
                programDelayMs: 5,
                pinProgramDelayMs: 40,
                rate: 60,
                lifetime: { kind: 'lognormal', medianS: 20, sigma: 1, maxS: 600 },
                mirrorFinRst: true,
              },
              {
                name: 'sw2',
                ...SW2,
                ecmpMode: 'resilient',
                pinCapacity: 2000,
                programDelayMs: 0,
                rate: 40,
                lifetime: { kind: 'lognormal', medianS: 20, sigma: 1, maxS: 600 },
              },
            ],
            latencyMs: 3,
            mirrorDelayMs: 1,
            packetIntervalMs: 1000,
            seed: worldSeed,
            controller: {
              pinMode: 'on-change',
              settleMs: 10,
              barrierTimeoutMs: 5000,
              persistIntervalS: 2,
              store: 'memory',
            },
          });
          const real: Real = { world, pending: [], errors: [] };
          await world.startController();
          world.openLive(300, { kind: 'fixed', s: 600 });
          world.startTraffic();
          await world.advance(1500);
          try {
            await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
            // Let every change finish, then every live connection send again, and check once more.
            await world.settle(Promise.all(real.pending), 120_000);
            world.stopTraffic();
            await world.advance(2500);
            check(real, 'the end');
            const recs = [...world.changes.values()];
            const a = world.audit();
            console.log(
              `  run: ${[...cmds].length} steps, changes ${recs.filter((c) => c.appliedAt !== undefined).length} applied / ${recs.filter((c) => c.phase === 'failed').length} failed / ${recs.filter((c) => c.deadlinePassedAt !== undefined).length} deadline passed, resets ${a.broken} (counted ${a.counted}, unseen ${a.unseen}), window ${recs.reduce((n, c) => n + (c.windowFlows ?? 0), 0)}, at risk ${recs.reduce((n, c) => n + (c.atRisk ?? 0), 0)}`,
            );
          } catch (err) {
            console.log(`  failed: ${err instanceof Error ? err.message : String(err)}`);
            throw err;
          } finally {
            await world.close();
          }
        },
      ),
      { seed, numRuns: runs, interruptAfterTimeLimit: 200_000, endOnFailure: true },
    );
  },
);
