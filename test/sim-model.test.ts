// The switch simulator reproduces the problem flowpin solves, exactly as the bucket model
// predicts: draining a nexthop breaks every live connection on it, adding one breaks the
// connections in the moved buckets, and hash-mod-N breaks more. Pins override ECMP,
// expire when idle and are refused when the table is full.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../switch-sim/clock.js';
import { ResilientGroup } from '../switch-sim/ecmp-group.js';
import { SimSwitch, type SimSwitchOptions } from '../switch-sim/sim-switch.js';
import { TrafficGenerator, type TrafficOptions } from '../switch-sim/traffic.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
const FIFTH = '10.0.1.5';

function makeSwitch(clock: VirtualClock, over: Partial<SimSwitchOptions> = {}): SimSwitch {
  const sw = new SimSwitch({
    hostname: 'sim1',
    hashSeed: 0x5eed,
    ecmpMode: 'resilient',
    bucketCount: 64,
    pinCapacity: 1500,
    uplink: { interface: 'Ethernet47', nexthop: '10.0.0.254', prefixes: ['10.100.0.0/16'] },
    mirrorFinRst: false,
    now: clock.now,
    ...over,
  });
  sw.addVip(VIP, NH);
  return sw;
}

const trafficOptions: TrafficOptions = {
  connectionsPerSecond: 40,
  lifetime: { kind: 'lognormal', medianS: 120, sigma: 1, maxS: 3600 },
  packetIntervalMs: 2000,
  targets: [{ vip: VIP, port: 443 }],
  clientBase: '10.100.0.1',
  clientCount: 5000,
  maxConcurrent: 100_000,
  seed: 42,
};

/** Runs traffic for `warmS`, returns the generator with traffic still flowing. */
function warm(sw: SimSwitch, clock: VirtualClock, warmS = 120): TrafficGenerator {
  const gen = new TrafficGenerator(sw, clock, trafficOptions);
  gen.start();
  clock.advance(warmS * 1000);
  return gen;
}

describe('resilient ECMP group', () => {
  test("removal hands only the removed member's buckets to the others, evenly", () => {
    const g = new ResilientGroup(64, NH);
    const before = [...g.table()];
    g.remove('10.0.1.2');
    const after = g.table();
    before.forEach((m, i) => {
      if (m !== '10.0.1.2') assert.equal(after[i], m, `bucket ${i} moved`);
      else assert.notEqual(after[i], '10.0.1.2');
    });
    const shares = [...g.shares().values()];
    assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `uneven: ${shares.join(',')}`);
  });

  test('addition takes buckets evenly from the others and nothing else moves', () => {
    const g = new ResilientGroup(64, NH);
    const before = [...g.table()];
    const preview = g.previewAdd(FIFTH);
    g.add(FIFTH);
    const after = g.table();
    const moved = before.map((m, i) => (after[i] !== m ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(moved, preview);
    assert.equal(moved.length, Math.floor(64 / 5));
    for (const i of moved) assert.equal(after[i], FIFTH);
    const shares = [...g.shares().values()];
    assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `uneven: ${shares.join(',')}`);
  });
});

describe('the problem, without flowpin', () => {
  test('draining one of four nexthops breaks every live connection on it, and only those', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock);
    const gen = warm(sw, clock);
    const live = gen.liveConnections();
    const onDrained = live.filter((c) => c.server === NH[1]).length;
    assert.ok(onDrained > 200, `only ${onDrained} live connections on the drained nexthop`);
    const resetBefore = gen.counters.reset;
    assert.equal(resetBefore, 0, 'no resets before any change');
    sw.groupRemove(VIP, NH[1] as string);
    gen.stop();
    clock.advance(3_600_000 + 10_000);
    assert.equal(gen.counters.active, 0);
    assert.equal(gen.counters.reset, onDrained);
    assert.equal(gen.counters.closedCleanly + gen.counters.reset, gen.counters.opened);
  });

  test('adding a fifth nexthop breaks the live connections in the moved buckets', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock);
    const gen = warm(sw, clock);
    const group = sw.vips.get(VIP)?.group as ResilientGroup;
    const moved = new Set(group.previewAdd(FIFTH));
    const predicted = gen
      .liveConnections()
      .filter((c) => moved.has(group.bucketOf(sw.hashOf(c.src, c.dst, 6, c.sport, c.dport)))).length;
    assert.ok(predicted > 100, `only ${predicted} connections in moved buckets`);
    const live = gen.liveConnections().length;
    sw.groupAdd(VIP, FIFTH);
    gen.stop();
    clock.advance(3_610_000);
    assert.equal(gen.counters.reset, predicted);
    // Roughly the moved share of live connections (12 of 64 buckets).
    assert.ok(Math.abs(predicted / live - 12 / 64) < 0.06, `moved share ${predicted / live}`);
  });

  test('plain hash-mod-N breaks more than resilient ECMP on the same traffic', () => {
    const runDrain = (ecmpMode: 'resilient' | 'mod-n') => {
      const clock = new VirtualClock();
      const sw = makeSwitch(clock, { ecmpMode });
      const gen = warm(sw, clock);
      const live = gen.liveConnections();
      sw.groupRemove(VIP, NH[1] as string);
      const predicted = live.filter(
        (c) => sw.ecmpNexthop(c.src, c.dst, 6, c.sport, c.dport) !== c.server,
      ).length;
      gen.stop();
      clock.advance(3_610_000);
      return { reset: gen.counters.reset, predicted, live: live.length };
    };
    const resilient = runDrain('resilient');
    const modN = runDrain('mod-n');
    assert.equal(modN.reset, modN.predicted);
    assert.equal(resilient.reset, resilient.predicted);
    assert.ok(modN.reset > 2 * resilient.reset, `mod-N ${modN.reset} vs resilient ${resilient.reset}`);
    // mod-N from 4 to 3 members keeps only flows whose h%4 and h%3 pick the same member: about 3/4 move.
    assert.ok(modN.reset / modN.live > 0.6, `mod-N broke ${modN.reset} of ${modN.live}`);
  });
});

describe('mirror session', () => {
  test('SYNs are mirrored; FIN and RST only when mirrorFinRst is set; data never', () => {
    for (const mirrorFinRst of [false, true]) {
      const clock = new VirtualClock();
      const sw = makeSwitch(clock, { mirrorFinRst });
      const seen: number[] = [];
      sw.mirror = (p) => seen.push(p.flags);
      const gen = new TrafficGenerator(sw, clock, { ...trafficOptions, lifetime: { kind: 'fixed', s: 10 } });
      for (let i = 0; i < 20; i++) gen.open();
      clock.advance(20_000);
      assert.equal(gen.counters.closedCleanly, 20);
      assert.equal(seen.filter((f) => f === 0x02).length, 20, 'every SYN');
      assert.equal(seen.filter((f) => (f & 0x01) !== 0).length, mirrorFinRst ? 20 : 0, 'FINs');
      assert.equal(seen.length, mirrorFinRst ? 40 : 20, 'no data segments');
    }
  });
});

describe('pin table', () => {
  const pinFor = (
    c: { src: string; dst: string; sport: number; dport: number },
    nexthop: string,
    idle = 300,
  ) => ({
    source: 'directflow' as const,
    match: { family: 4 as const, src: c.src, dst: c.dst, protocol: 6, sport: c.sport, dport: c.dport },
    nexthop,
    idleTimeoutS: idle,
    hardTimeoutS: 0,
    persistent: false,
    priority: 0,
  });

  test('pins override ECMP: pinned connections survive a drain', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock);
    sw.directflowEnabled = true;
    const gen = warm(sw, clock);
    const onDrained = gen.liveConnections().filter((c) => c.server === NH[1]);
    onDrained.forEach((c, i) => sw.pins.upsert(`pin${i}`, pinFor(c, c.server), clock.now()));
    sw.groupRemove(VIP, NH[1] as string);
    gen.stop();
    clock.advance(3_610_000);
    assert.equal(gen.counters.reset, 0);
    assert.ok(sw.counters.viaPin > onDrained.length, 'packets went through the pins');
  });

  test('pins expire after their idle time, and packets refresh them', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock);
    sw.directflowEnabled = true;
    const flow = { src: '10.100.0.9', dst: VIP, sport: 5555, dport: 443 };
    const other = NH.find(
      (n) => n !== sw.ecmpNexthop(flow.src, flow.dst, 6, flow.sport, flow.dport),
    ) as string;
    sw.pins.upsert('p', pinFor(flow, other, 10), clock.now());
    const pkt = { ...flow, protocol: 6, flags: 0x10, bytes: 100 };
    clock.advance(9_000);
    assert.equal(sw.deliver(pkt).nexthop, other, 'pinned at 9 s');
    clock.advance(9_000);
    assert.equal(sw.deliver(pkt).nexthop, other, 'refreshed by the packet at 9 s');
    clock.advance(10_000);
    const d = sw.deliver(pkt);
    assert.equal(d.via, 'ecmp', 'idle for 10 s: expired');
    assert.equal(sw.pins.get('p')?.status, 'idle-timeout');
    assert.equal(sw.pins.get('p')?.packets, 2);
    assert.equal(sw.pins.programmed, 0);
  });

  test('a full table refuses pins, and frees room when one times out', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock, { pinCapacity: 3 });
    sw.directflowEnabled = true;
    for (let i = 0; i < 4; i++)
      sw.pins.upsert(
        `p${i}`,
        pinFor(
          { src: '10.100.0.1', dst: VIP, sport: 1000 + i, dport: 443 },
          NH[0] as string,
          i === 0 ? 5 : 300,
        ),
        clock.now(),
      );
    assert.equal(sw.pins.programmed, 3);
    assert.equal(sw.pins.get('p3')?.status, 'table-full');
    assert.equal(
      sw.deliver({ src: '10.100.0.1', dst: VIP, sport: 1003, dport: 443, protocol: 6, flags: 0x10, bytes: 1 })
        .via,
      'ecmp',
    );
    clock.advance(6_000);
    sw.pins.expire(clock.now());
    assert.equal(sw.pins.programmed, 2);
    sw.pins.upsert(
      'p3',
      pinFor({ src: '10.100.0.1', dst: VIP, sport: 1003, dport: 443 }, NH[0] as string),
      clock.now(),
    );
    assert.equal(sw.pins.get('p3')?.status, 'programmed');
  });

  test('pins do nothing while DirectFlow is shut down', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock);
    const flow = { src: '10.100.0.9', dst: VIP, sport: 5555, dport: 443 };
    const other = NH.find(
      (n) => n !== sw.ecmpNexthop(flow.src, flow.dst, 6, flow.sport, flow.dport),
    ) as string;
    sw.pins.upsert('p', pinFor(flow, other), clock.now());
    assert.equal(sw.deliver({ ...flow, protocol: 6, flags: 0x10, bytes: 1 }).via, 'ecmp');
    sw.directflowEnabled = true;
    assert.equal(sw.deliver({ ...flow, protocol: 6, flags: 0x10, bytes: 1 }).nexthop, other);
  });

  test('with a programming delay, pins and group changes reach forwarding only after it, in order', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock, { programDelayMs: 50 });
    sw.directflowEnabled = true;
    const flow = { src: '10.100.0.9', dst: VIP, sport: 5555, dport: 443 };
    const pkt = { ...flow, protocol: 6, flags: 0x10, bytes: 1 };
    const first = sw.ecmpNexthop(flow.src, flow.dst, 6, flow.sport, flow.dport) as string;
    sw.pins.upsert('p', pinFor(flow, first), clock.now());
    sw.groupRemove(VIP, first);
    assert.equal(sw.pins.get('p')?.status, 'pending');
    assert.deepEqual(sw.programmedMembers(VIP), NH, 'the removal is configured, not yet programmed');
    assert.ok(!sw.vips.get(VIP)?.group.members().includes(first));
    clock.advance(49);
    assert.equal(sw.deliver(pkt).via, 'ecmp', 'the pending pin does not forward');
    assert.equal(sw.deliver(pkt).nexthop, first, 'the old group still forwards');
    clock.advance(1);
    assert.equal(sw.pins.get('p')?.status, 'programmed');
    assert.ok(!sw.programmedMembers(VIP).includes(first));
    assert.equal(sw.deliver(pkt).via, 'pin');
    assert.equal(sw.deliver(pkt).nexthop, first);
  });

  test('entries of other owners share the table', () => {
    const clock = new VirtualClock();
    const sw = makeSwitch(clock, { pinCapacity: 3, reservedPinEntries: 2 });
    assert.equal(sw.pins.free, 1);
    sw.pins.upsert(
      'a',
      pinFor({ src: '10.100.0.1', dst: VIP, sport: 1, dport: 443 }, NH[0] as string),
      clock.now(),
    );
    sw.pins.upsert(
      'b',
      pinFor({ src: '10.100.0.1', dst: VIP, sport: 2, dport: 443 }, NH[0] as string),
      clock.now(),
    );
    assert.equal(sw.pins.get('a')?.status, 'programmed');
    assert.equal(sw.pins.get('b')?.status, 'table-full');
    assert.equal(sw.pins.free, 0);
  });
});
