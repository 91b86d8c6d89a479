// The simulator's TCP model and mirror settings: a close takes a FIN each way and the final
// ACK (which crosses the switch toward the VIP like any client segment); a half-closed client
// keeps ACKing while its server still sends, so a pin that ends on the first FIN breaks it;
// server FINs and RSTs leave on the server's port, seen only by the reply session and only
// where it matches them; idle connections send hours apart; heavy-tailed lifetimes; and the
// scenario runner's new flags and figures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../switch-sim/clock.js';
import { Rng, sampleLifetimeMs } from '../switch-sim/rng.js';
import { SimServer } from '../switch-sim/servers.js';
import { SimSwitch, type SimPacket } from '../switch-sim/sim-switch.js';
import { TrafficGenerator, type TrafficOptions } from '../switch-sim/traffic.js';
import { runScenario } from '../cli/scenario/runner.js';
import { scenarioFromArgs } from '../cli/sim.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

function world(mirrorFinRst: boolean) {
  const clock = new VirtualClock(0);
  const sw = new SimSwitch({
    hostname: 's',
    hashSeed: 1,
    ecmpMode: 'resilient',
    bucketCount: 64,
    pinCapacity: 1500,
    uplink: { interface: 'Ethernet47', nexthop: '10.0.0.254', prefixes: ['10.100.0.0/16'] },
    mirrorFinRst,
    now: clock.now,
  });
  sw.addVip(VIP, NH);
  const client: SimPacket[] = [];
  const replies: SimPacket[] = [];
  sw.mirror = (p) => client.push(p);
  sw.replyMirror = (p) => replies.push(p);
  return { clock, sw, client, replies };
}

const base: TrafficOptions = {
  connectionsPerSecond: 50,
  lifetime: { kind: 'fixed', s: 10 },
  packetIntervalMs: 500,
  clientRttMs: 20,
  targets: [{ vip: VIP, port: 443 }],
  clientBase: '10.100.0.1',
  clientCount: 5000,
  maxConcurrent: 100_000,
  seed: 5,
};

test('server state: the client FIN half-closes, the server FIN and the final ACK end it; RST ends it; a stray RST is not answered', () => {
  const s = new SimServer('10.0.1.1');
  assert.equal(s.receive('c', 0x02), 'opened');
  assert.equal(s.receive('c', 0x11), 'ok', 'half-closed: the server may still send');
  assert.equal(s.receive('c', 0x10), 'ok', 'the client ACKs data after its FIN');
  assert.ok(s.fin('c'));
  assert.equal(s.receive('c', 0x10), 'closed', 'the final ACK');
  assert.equal(s.receive('c', 0x10), 'reset', 'gone: a stray segment is answered with RST');
  s.receive('d', 0x02);
  assert.ok(s.fin('d'), 'the server closes first');
  assert.equal(s.receive('d', 0x11), 'closed', 'the client FIN after the server FIN ends it');
  s.receive('e', 0x02);
  assert.equal(s.receive('e', 0x14), 'closed');
  assert.equal(s.receive('x', 0x14), 'ok', 'never answer a RST');
  assert.equal(s.resetsSent, 1);
});

test("closes: both FINs and the final ACK; FIN/RST mirrored on the client side only with mirrorFinRst, the servers' only where the reply session matches them", () => {
  for (const finRst of [false, true]) {
    for (const replyFinRst of [false, true]) {
      const w = world(finRst);
      w.sw.replyMirrorFin = replyFinRst;
      w.sw.replyMirrorRst = replyFinRst;
      const gen = new TrafficGenerator(w.sw, w.clock, {
        ...base,
        close: {
          halfCloseShare: 0.3,
          halfCloseS: 2,
          serverCloseShare: 0.2,
          rstShare: 0.1,
          serverRstShare: 0.1,
        },
      });
      gen.start();
      w.clock.advance(20_000);
      gen.stop();
      w.clock.advance(15_000);
      const c = gen.counters;
      assert.equal(c.active, 0);
      assert.equal(c.reset, 0, 'nothing moved: no reset');
      assert.equal(c.closedCleanly + c.serverReset, c.opened);
      assert.ok(c.halfClosed > 0 && c.serverClosed > 0 && c.serverReset > 0, JSON.stringify(c));
      for (const s of w.sw.servers.values())
        assert.equal(s.connectionCount, 0, 'every server-side connection ended');
      const clientFin = w.client.filter((p) => (p.flags & 0x01) !== 0).length;
      const clientRst = w.client.filter((p) => (p.flags & 0x04) !== 0).length;
      assert.equal(
        clientFin > 0 && clientRst > 0,
        finRst,
        `client FIN/RST mirrored: ${clientFin}/${clientRst}`,
      );
      const serverFin = w.replies.filter((p) => p.flags === 0x11).length;
      const serverRst = w.replies.filter((p) => p.flags === 0x04).length;
      assert.equal(
        serverFin > 0 && serverRst > 0,
        replyFinRst,
        `server FIN/RST mirrored: ${serverFin}/${serverRst}`,
      );
      assert.equal(w.replies.filter((p) => p.flags === 0x12).length, c.opened, 'every SYN-ACK');
      for (const p of w.replies) assert.equal(p.src, VIP, 'replies come from the VIP');
    }
  }
});

test('a half-closed client keeps ACKing through the switch: if its pin ends on its FIN, a drain resets it', () => {
  const w = world(true);
  const gen = new TrafficGenerator(w.sw, w.clock, {
    ...base,
    connectionsPerSecond: 20,
    close: { halfCloseShare: 1, halfCloseS: 5, serverCloseShare: 0, rstShare: 0, serverRstShare: 0 },
  });
  // A controller that pins every connection and drops the pin at the first FIN it sees.
  w.sw.directflowEnabled = true;
  const name = (p: SimPacket): string => `${p.src}:${p.sport}`;
  w.sw.mirror = (p) => {
    if (p.flags === 0x02) {
      const nh = w.sw.ecmpNexthop(p.src, p.dst, 6, p.sport, p.dport);
      w.sw.pins.upsert(
        name(p),
        {
          source: 'directflow',
          match: { src: p.src, dst: p.dst, protocol: 6, sport: p.sport, dport: p.dport },
          ...(nh === undefined ? {} : { nexthop: nh }),
          idleTimeoutS: 0,
          hardTimeoutS: 0,
          persistent: true,
          priority: 1,
        },
        w.clock.now(),
      );
    } else if ((p.flags & 0x01) !== 0) w.sw.pins.remove(name(p));
  };
  gen.start();
  w.clock.advance(9_000);
  gen.stop();
  const halfClosed = gen.counters.halfClosed;
  assert.ok(halfClosed > 0);
  w.sw.groupRemove(VIP, '10.0.1.2');
  w.clock.advance(20_000);
  assert.ok(
    gen.counters.reset > 0,
    `half-closed connections of 10.0.1.2 lost their pins at their FIN and were reset (${JSON.stringify(gen.counters)})`,
  );
  for (const r of gen.recentResets) assert.equal(r.server, '10.0.1.2');
});

test('idle connections send one packet per idle gap and stay open', () => {
  const w = world(false);
  w.sw.directflowEnabled = true;
  const gen = new TrafficGenerator(w.sw, w.clock, {
    ...base,
    connectionsPerSecond: 5,
    idleShare: 1,
    idleGapS: 600,
  });
  gen.start();
  w.clock.advance(1_000);
  gen.stop();
  const live = gen.liveConnections();
  assert.ok(live.length > 0);
  const packets0 = gen.counters.packets;
  w.clock.advance(60_000);
  assert.ok(gen.counters.packets - packets0 <= live.length, 'at most one packet each in a minute: idle');
  assert.equal(gen.counters.active, live.length, 'still open');
});

test('heavy-tail lifetimes: most short, a share long-lived up to hours', () => {
  const rng = new Rng(9);
  const d = {
    kind: 'heavy-tail' as const,
    medianS: 5,
    sigma: 1,
    longShare: 0.05,
    longMinS: 300,
    alpha: 1.1,
    maxS: 4 * 3600,
  };
  const xs = Array.from({ length: 20_000 }, () => sampleLifetimeMs(d, rng) / 1000).sort((a, b) => a - b);
  const median = xs[xs.length >> 1] as number;
  assert.ok(median > 3 && median < 8, `median ${median}`);
  const long = xs.filter((x) => x >= 300).length / xs.length;
  assert.ok(long > 0.04 && long < 0.06, `long share ${long}`);
  assert.ok((xs.at(-1) as number) > 3600, 'some for hours');
});

test("flowpin start's defaults: FIN and RST mirrored both ways, the realistic traffic model; a scenario file still wins", () => {
  const { scenario } = scenarioFromArgs([], 'start');
  assert.equal(scenario.switch.mirrorFinRst, true);
  assert.deepEqual(
    [scenario.mirror.replies, scenario.mirror.replyRst, scenario.mirror.replyFin],
    [true, true, true],
  );
  assert.equal(scenario.traffic.lifetime.kind, 'heavy-tail');
  assert.ok(scenario.traffic.close.halfCloseShare > 0 && scenario.traffic.idleShare > 0);
  const sim = scenarioFromArgs([], 'sim').scenario;
  assert.equal(sim.switch.mirrorFinRst, false, '`flowpin sim` keeps its own defaults');
  const syn = scenarioFromArgs(
    ['--mirror-mode', 'syn-only', '--speed', '20', '--table', '1500', '--reserved-entries', '300'],
    'start',
  );
  assert.deepEqual(
    [
      syn.scenario.switch.mirrorFinRst,
      syn.scenario.mirror.replies,
      syn.run.speed,
      syn.scenario.switch.pinCapacity,
      syn.scenario.switch.reservedPinEntries,
    ],
    [false, false, 20, 1500, 300],
  );
});

test(
  'scenario: connections older than flowpin are unseen, not protected; pins per live connection and counted resets are reported',
  { timeout: 120_000 },
  async () => {
    const r = await runScenario('resilient', {
      live: 300,
      rate: 50,
      latencyMs: 5,
      programDelayMs: 50,
      table: 1500,
      changes: ['drain'],
      seed: 3,
      settleMs: 20,
      gapMs: 2000,
      preexistingS: 5,
      mirrorEnds: 'both-ways',
      lifetimes: 'realistic',
      halfCloseShare: 0.2,
    });
    assert.ok(r.broken > 0 && r.unseen === r.broken && r.resetsCounted === 0, JSON.stringify(r));
    const f = await runScenario('on-change', {
      live: 300,
      rate: 50,
      latencyMs: 5,
      programDelayMs: 50,
      table: 1500,
      changes: ['drain'],
      seed: 3,
      settleMs: 20,
      gapMs: 2000,
      mirrorEnds: 'both-ways',
      lifetimes: 'realistic',
      halfCloseShare: 0.2,
    });
    assert.ok(f.liveAtChange > 300 && f.pinsPerMovedLive > 0, JSON.stringify(f));
    assert.equal(f.resetsSeen, f.broken);
  },
);
