// The torture runner's judgement of change records against the simulator's resets
// (torture/truth.ts), on made-up runs: each kind of violation is found, a truthful record
// passes, and the journal's loss window is measured from the SYNs a restart would not know.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResetLine } from '../switch-sim/reset-log.js';
import {
  attribute,
  judge,
  journalLoss,
  MIRROR_MARGIN_MS,
  type RecordView,
  type Watched,
} from '../torture/truth.js';

const T = 1_000_000;
const reset = (o: Partial<ResetLine>): ResetLine => ({
  src: '10.100.0.1',
  sport: 1000,
  dst: '192.0.2.80',
  dport: 443,
  server: '10.0.1.2',
  reached: '10.0.1.3',
  via: 'ecmp',
  pinned: false,
  openedAt: T - 5000,
  at: T + 500,
  ...o,
});
const drain = (o: Partial<Watched> = {}): Watched => ({
  id: 'c1',
  kind: 'drain',
  vip: '192.0.2.80',
  nexthop: '10.0.1.2',
  callAt: T,
  status: 202,
  seen: {},
  ...o,
});
const rec = (o: Partial<RecordView> = {}): RecordView => ({
  id: 'c1',
  kind: 'drain',
  phase: 'complete',
  vip: '192.0.2.80',
  nexthop: '10.0.1.2',
  pinned: 10,
  atRisk: 0,
  windowFlows: 0,
  heldAt: T + 100,
  sentAt: T + 200,
  appliedAt: T + 250,
  effectiveAt: T + 260,
  ...o,
});

test('a pinned connection opened before the barrier and reset is protected; an unpinned one must be counted at risk', () => {
  const rs = [reset({ pinned: true }), reset({ sport: 1001 })];
  const j = judge(drain(), rec(), rs, [], undefined);
  assert.equal(j.protected, 1);
  assert.equal(j.seenUnpinned, 1);
  assert.equal(j.uncounted, 2);
  assert.match(j.false.join(), /atRisk 0, 1 connections seen before the barrier/);
  const counted = judge(
    drain(),
    rec({ atRisk: 1, windowFlows: 1 }),
    [reset({ sport: 1001 }), reset({ sport: 1002, openedAt: T + 150 })],
    [],
    undefined,
  );
  assert.deepEqual(
    [counted.uncounted, counted.window, counted.false.length],
    [0, 1, 0],
    JSON.stringify(counted),
  );
});

test('window flows: a connection opened within the mirror margin of the hold counts in the window, not as protected', () => {
  const j = judge(
    drain(),
    rec({ windowFlows: 0 }),
    [reset({ pinned: true, openedAt: T + 100 - MIRROR_MARGIN_MS + 1 })],
    [],
    undefined,
  );
  assert.deepEqual([j.protected, j.window], [0, 1]);
  assert.match(j.false.join(), /windowFlows 0, 1 connections opened in the window/);
});

test('opened while the controller was down: blind, and uncounted unless the record estimates the gap', () => {
  const down = [{ from: T - 6000, to: T - 4000 }];
  const j = judge(drain(), rec(), [reset({ openedAt: T - 5000 })], down, undefined);
  assert.deepEqual([j.blind, j.protected, j.uncounted], [1, 0, 1]);
  assert.equal(
    judge(drain(), rec({ gap: { flows: 3 } }), [reset({ openedAt: T - 5000 })], down, undefined).uncounted,
    0,
  );
});

test('false records: complete with live connections, pinned far from the switch, resumed with figures it did not measure, applied dated after a restart, a window across a kill given figures', () => {
  assert.match(
    judge(
      drain({ atFinal: { at: T + 900, phase: 'complete', live: 8, pins: 76 } }),
      rec(),
      [],
      [],
      undefined,
    ).false.join(),
    /complete with 8 live connections/,
  );
  assert.equal(
    judge(
      drain({ atFinal: { at: T + 900, phase: 'complete', live: 8, pins: 76 } }),
      rec({ deadlineReached: true }),
      [],
      [],
      undefined,
    ).false.length,
    0,
    'a deadline that says so is not false',
  );
  assert.match(
    judge(
      drain({ pinsAtEffective: 691, pinsSampledAt: T + 300 }),
      rec({ pinned: 101 }),
      [],
      [],
      undefined,
    ).false.join(),
    /pinned 101 \(\+0 late\), the switch had 691/,
  );
  // The switch's counts when the write reached forwarding bound it: every open connection's pin, at most
  // every pin (some of connections already closed).
  const atWrite = { pinsAtWrite: 671, openPinsAtWrite: 300 };
  assert.equal(judge(drain(atWrite), rec({ pinned: 342 }), [], [], undefined).false.length, 0);
  assert.match(
    judge(drain(atWrite), rec({ pinned: 101 }), [], [], undefined).false.join(),
    /pinned 101 \(\+0 late\), the switch had 300 pins toward 10.0.1.2 of connections still open/,
  );
  // Pins found only after the write left may have been there at the effect: with them, the open ones are met.
  assert.equal(
    judge(drain(atWrite), rec({ pinned: 101, pinnedLate: 250 }), [], [], undefined).false.length,
    0,
  );
  assert.match(
    judge(drain(atWrite), rec({ pinned: 900 }), [], [], undefined).false.join(),
    /pinned 900, the switch had 671 pins/,
  );
  assert.match(
    judge(
      drain(),
      rec({ resumed: true, pinned: 0 }),
      [reset({ openedAt: T + 150 })],
      [],
      undefined,
    ).false.join(),
    /resumed complete with pinned 0/,
  );
  const down = [{ from: T + 220, to: T + 5000 }];
  assert.match(
    judge(
      drain({ groupWriteAt: T + 210 }),
      rec({ resumed: true, appliedAt: T + 5100 }),
      [],
      down,
      undefined,
    ).false.join(),
    /dated after the restart/,
  );
  // Killed after the switch accepted the group write, before the record saw it take effect: the window ran
  // across the kill.
  const across = rec({
    resumed: true,
    phase: 'deadline-passed',
    appliedAt: undefined,
    effectiveAt: undefined,
  });
  assert.match(
    judge(drain({ groupWriteAt: T + 210 }), across, [], down, undefined).false.join(),
    /windowFlows 0, pinned 10 for a window that ran across the kill/,
  );
  assert.deepEqual(
    judge(
      drain({ groupWriteAt: T + 210 }),
      { ...across, windowFlows: null, pinned: null, unseen: 1 },
      [reset({ openedAt: T + 300 })],
      down,
      undefined,
    ).false,
    [],
    'null: not measured, and said so',
  );
  assert.deepEqual(
    judge(drain({ groupWriteAt: T + 210 }), rec({ resumed: true, effectiveAt: T + 215 }), [], down, undefined)
      .false,
    [],
    'effective before the kill: measured',
  );
  assert.match(judge(drain(), undefined, [], [], undefined).false.join(), /record is gone/);
  assert.equal(
    judge(drain({ status: 0 }), undefined, [], [], undefined).false.length,
    0,
    'a call never answered promised nothing',
  );
});

test('with the list of counted flows, a reset is uncounted when its flow is not on it', () => {
  const j = judge(
    drain(),
    rec({ atRisk: 5 }),
    [reset({}), reset({ sport: 1001 })],
    [],
    new Set(['10.100.0.1:1000->192.0.2.80:443']),
  );
  assert.equal(j.uncounted, 1);
});

test('attribution: a drain owns the resets of its server, an addition those that reached its member; others are unattributed', () => {
  const d = drain();
  const a: Watched = {
    id: 'c2',
    kind: 'add',
    vip: '192.0.2.80',
    nexthop: '10.0.1.5',
    callAt: T + 1000,
    status: 201,
    seen: {},
  };
  const { by, unattributed } = attribute(
    [
      reset({}),
      reset({ server: '10.0.1.1', reached: '10.0.1.5', at: T + 1500 }),
      reset({ server: '10.0.1.4', at: T + 1500 }),
    ],
    [d, a],
  );
  assert.equal(by.get(d)?.length, 1);
  assert.equal(by.get(a)?.length, 1);
  assert.equal(unattributed.length, 1);
});

test('journal loss: from the earliest SYN after the snapshot that a restart would not restore', () => {
  const syns = [
    { t: 100, flow: 'a' },
    { t: 200, flow: 'b' },
    { t: 300, flow: 'c' },
    { t: 400, flow: 'd' },
  ];
  assert.deepEqual(journalLoss(syns, new Set(['a', 'b']), 50, 420), {
    lossWindowMs: 120,
    missing: 2,
    lastSentMs: 20,
    lastRestoredMs: 220,
  });
  assert.equal(journalLoss(syns, new Set(['a', 'b', 'c', 'd']), 50, 420).lossWindowMs, 0);
  assert.equal(
    journalLoss(syns, new Set(['b', 'c', 'd']), 150, 420).missing,
    0,
    "SYNs before the snapshot are not the journal's",
  );
});
