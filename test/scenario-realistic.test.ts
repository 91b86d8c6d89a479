// `flowpin scenario` with the realistic traffic model, on the virtual clock at small sizes:
// heavy-tailed lifetimes with half-closing clients and idle connections, a mirror without
// FIN/RST, traffic before flowpin starts (its dry run counts what it never saw, and a change
// needs consent for it), and a pin table shared with other owners (the dry run's free room
// is the switch's). For each, flowpin's promise: no protected connection reset, every reset
// covered by the change records. Also the measures the figures rest on: the live connections
// a group change moves, as the switch counts them, and the steady-state lifetimes of the
// connections open when a run starts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS, optionsOf } from '../cli/help.js';
import { scenarioOptions } from '../cli/scenario.js';
import { runScenario, type ScenarioOptions, type ScenarioResult } from '../cli/scenario/runner.js';
import { VirtualClock } from '../switch-sim/clock.js';
import { Rng, steadyStateRemaining } from '../switch-sim/rng.js';
import { SimSwitch } from '../switch-sim/sim-switch.js';
import { TrafficGenerator } from '../switch-sim/traffic.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
const SMALL: ScenarioOptions = {
  live: 300,
  rate: 50,
  latencyMs: 5,
  programDelayMs: 50,
  table: 1500,
  changes: ['drain', 'add'],
  seed: 7,
  settleMs: 20,
  gapMs: 2000,
  lifetimes: 'realistic',
};

/** flowpin's promise, with the run in the message. */
function promiseKept(r: ScenarioResult): void {
  const why = JSON.stringify(r);
  assert.equal(r.brokenProtected, 0, `protected resets: ${why}`);
  assert.equal(r.uncounted, 0, `uncounted resets: ${why}`);
  assert.equal(r.resetsCounted, r.broken, why);
}

test('scenario: every option its help lists is one it takes; realistic flags read', () => {
  const scenario = COMMANDS.find((c) => c.name === 'scenario');
  assert.ok(scenario);
  const values: Record<string, string> = {
    '--lifetimes': 'realistic',
    '--mirror-ends': 'client-side',
    '--max-at-risk': '5',
    '--changes': 'drain',
    '--configs': 'on-change',
    '--adapter': 'sim',
    '--resolution': 'lookup',
    '--lookup': 'exact',
    '--live': '10',
  };
  for (const [spec] of optionsOf(scenario)) {
    const flag = spec.split(' ')[0] as string;
    const placeholder = spec.split(' ')[1];
    const args =
      placeholder === undefined ? [flag] : [flag, values[flag] ?? (placeholder === 'F' ? '0.1' : '100')];
    assert.doesNotThrow(() => scenarioOptions(args), spec);
  }
  const { opts } = scenarioOptions([
    '--lifetimes',
    'realistic',
    '--half-close-share',
    '0.1',
    '--idle-share',
    '0.05',
    '--preexisting-s',
    '30',
    '--shared-table',
    '1000',
    '--mirror-ends',
    'both-ways',
    '--table',
    '1500',
    '--max-at-risk',
    '40',
  ]);
  assert.deepEqual(
    {
      l: opts.lifetimes,
      h: opts.halfCloseShare,
      i: opts.idleShare,
      p: opts.preexistingS,
      s: opts.sharedTable,
      m: opts.mirrorEnds,
      t: opts.table,
      b: opts.maxAtRisk,
    },
    { l: 'realistic', h: 0.1, i: 0.05, p: 30, s: 1000, m: 'both-ways', t: 1500, b: 40 },
  );
  assert.throws(() => scenarioOptions(['--mirror-ends', 'fin-rst']), /--mirror-ends/);
  assert.throws(() => scenarioOptions(['--lifetimes', 'heavy']), /--lifetimes/);
});

test(
  'the switch counts the live connections a group change moves: a drain moves those on the drained server',
  { timeout: 10_000 },
  () => {
    const clock = new VirtualClock(0);
    const sw = new SimSwitch({
      hostname: 's',
      hashSeed: 3,
      ecmpMode: 'resilient',
      bucketCount: 64,
      pinCapacity: 1500,
      uplink: { interface: 'Ethernet47', nexthop: '10.0.0.254', prefixes: ['10.100.0.0/16'] },
      mirrorFinRst: false,
      programDelayMs: 50,
      now: clock.now,
    });
    sw.addVip(VIP, NH);
    const traffic = new TrafficGenerator(sw, clock, {
      connectionsPerSecond: 1,
      lifetime: { kind: 'fixed', s: 3600 },
      packetIntervalMs: 1000,
      targets: [{ vip: VIP, port: 443 }],
      clientBase: '10.100.0.1',
      clientCount: 5000,
      maxConcurrent: 10_000,
      seed: 11,
    });
    for (let i = 0; i < 400; i++) traffic.open();
    const onB = traffic.liveConnections().filter((c) => c.server === NH[1]).length;
    assert.ok(onB > 50, `${onB} connections on ${NH[1]}`);
    sw.groupRemove(VIP, NH[1] as string);
    assert.equal(traffic.moves.length, 0, 'not in forwarding before its programming delay');
    clock.advanceTo(60);
    assert.equal(sw.programmedMembers(VIP).length, 3);
    assert.deepEqual(
      traffic.moves.map((m) => ({ op: m.op, nexthop: m.nexthop, live: m.live, moved: m.moved })),
      [{ op: 'remove', nexthop: NH[1], live: 400, moved: onB }],
    );
    // An addition moves the connections on the buckets the new member takes; a pin would keep them, not
    // change the count.
    sw.groupAdd(VIP, '10.0.1.5');
    clock.advanceTo(120);
    sw.programmedMembers(VIP);
    const add = traffic.moves[1];
    assert.ok(add !== undefined && add.moved > 0 && add.moved < 400 - onB, JSON.stringify(add));
    // Connections already moved by the drain (their server out of the group) are not moved again.
    const stillOnB = traffic.liveConnections().filter((c) => c.server === NH[1]).length;
    assert.equal(stillOnB, onB);
  },
);

test('steady-state lifetimes: what is left of a lifetime, long-lived connections the more likely', () => {
  const fixed = steadyStateRemaining({ kind: 'fixed', s: 100 }, new Rng(1));
  const xs = Array.from({ length: 4000 }, () => fixed());
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(xs.every((x) => x >= 1 && x <= 100_000));
  assert.ok(Math.abs(mean - 50_000) < 3000, `mean remaining of a fixed 100 s: ${mean} ms`);
  // The demo's model: 5 % of new connections live 300 s or more, but most of those open at a moment do.
  const heavy = steadyStateRemaining(
    { kind: 'heavy-tail', medianS: 5, sigma: 1, longShare: 0.05, longMinS: 300, alpha: 1.1, maxS: 14_400 },
    new Rng(2),
  );
  const long = Array.from({ length: 4000 }, () => heavy()).filter((x) => x > 60_000).length / 4000;
  assert.ok(long > 0.6, `share with more than 60 s left: ${long}`);
});

test(
  'realistic lifetimes, half-closing clients and idle connections, FIN/RST mirrored both ways: no protected reset, every reset counted, a pin per moved connection',
  { timeout: 60_000 },
  async () => {
    const r = await runScenario('on-change', {
      ...SMALL,
      halfCloseShare: 0.2,
      idleShare: 0.05,
      idleGapS: 30,
      serverCloseShare: 0.1,
      mirrorEnds: 'both-ways',
    });
    promiseKept(r);
    assert.equal(r.changes.length, 2);
    for (const c of r.changes) {
      assert.equal(c.refused, null, JSON.stringify(c));
      assert.ok(c.movedLive > 20, `moved: ${JSON.stringify(c)}`);
      // The pins go to moved connections (and the change window's): not to ended ones.
      assert.ok(
        c.pins >= c.movedLive * 0.8 && c.pins <= c.movedLive * 1.15 + c.windowFlows,
        `pins against moved live connections: ${JSON.stringify(c)}`,
      );
      assert.ok(c.pins - c.pinsOnLive <= 3, `pins on connections that had ended: ${JSON.stringify(c)}`);
    }
  },
);

test(
  'a mirror without FIN or RST (syn-only): no protected reset, every reset counted',
  { timeout: 60_000 },
  async () => {
    const r = await runScenario('on-change', {
      ...SMALL,
      halfCloseShare: 0.2,
      idleShare: 0.05,
      idleGapS: 30,
      mirrorEnds: 'syn-only',
    });
    promiseKept(r);
    for (const c of r.changes)
      assert.ok(c.refused === null && c.pins >= c.movedLive * 0.8, JSON.stringify(c));
  },
);

test(
  'connections older than flowpin: the dry run counts them unseen (nothing claims their age), a change needs consent for them; with a bound it goes ahead, every reset covered',
  { timeout: 60_000 },
  async () => {
    const base: ScenarioOptions = { ...SMALL, changes: ['drain'], preexistingS: 5, mirrorEnds: 'both-ways' };
    const refused = await runScenario('on-change', { ...base, maxAtRisk: 0 });
    const c0 = refused.changes[0];
    assert.ok(c0?.dryRun !== undefined, JSON.stringify(refused));
    assert.ok(c0.dryRun.warming && c0.dryRun.unseen > 0, JSON.stringify(c0));
    // More than 5 s of traffic could bring: the configuration does not say since when connections exist.
    assert.ok(c0.dryRun.unseen > base.rate * 5, `unseen ${c0.dryRun.unseen}`);
    assert.match(c0.refused ?? '', /unseen \d+/);
    assert.equal(refused.broken, 0, 'a refused drain moves nothing');

    const bound = c0.dryRun.total * 2;
    const r = await runScenario('on-change', { ...base, maxAtRisk: bound });
    promiseKept(r);
    const c = r.changes[0];
    assert.ok(c !== undefined && c.refused === null && c.unseen > 0, JSON.stringify(c));
    assert.ok(r.unseen > 0, `resets of connections flowpin never saw: ${JSON.stringify(r)}`);
  },
);

test(
  "a pin table shared with other owners: the dry run's free room is the switch's, what does not fit is counted table-full",
  { timeout: 60_000 },
  async () => {
    const r = await runScenario('on-change', {
      ...SMALL,
      changes: ['drain'],
      sharedTable: 1450,
      mirrorEnds: 'both-ways',
    });
    promiseKept(r);
    const c = r.changes[0];
    assert.ok(c?.dryRun !== undefined, JSON.stringify(r));
    assert.ok(
      c.dryRun.freeEntries <= 50,
      `free entries ${c.dryRun.freeEntries} of a table of 1,500 with 1,450 held by others`,
    );
    assert.ok(
      c.dryRun.tableFull > 0 &&
        c.dryRun.tableFull === Math.max(0, c.dryRun.flowsToPin - c.dryRun.freeEntries),
      JSON.stringify(c.dryRun),
    );
    assert.ok(c.atRisk >= c.dryRun.tableFull - 5 && c.pins <= 50, JSON.stringify(c));
    assert.ok(r.broken > 0, 'connections that did not fit were reset, and counted');
  },
);
