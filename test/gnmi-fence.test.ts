// gNMI master arbitration as the fence of a switch's writes: every Set of a fenced adapter
// carries its epoch as the election id, a takeover sends an empty Set with the new id, and
// the simulator's target refuses a lower id with PERMISSION_DENIED, so a stale owner's pin,
// removal and group writes change nothing (gnmi-master-arbitration.md 3.2). A Set without the
// extension is accepted, as 3.2 says, and counted by the target.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { World } from '../cli/scenario/world.js';
import { valueOf } from '../controller/metrics.js';
import { GnmiAdapter } from '../switch-adapters/gnmi/adapter.js';
import { masterArbitration, uint128 } from '../switch-adapters/gnmi/arbitration.js';
import type { FlowSpec, PinRule } from '../switch-adapters/contract.js';
import { SwitchFencedError } from '../switch-adapters/fence.js';
import { MasterArbiter } from '../switch-sim/gnmi/arbiter.js';
import { GnmiServer } from '../switch-sim/gnmi/server.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const flow = (i: number): FlowSpec => ({
  family: 4,
  src: `10.100.0.${i}`,
  dst: VIP,
  sport: 20000 + i,
  dport: 443,
});
const pin = (i: number, nh = NEXTHOPS[0] as string): PinRule => ({
  flow: flow(i),
  nexthop: nh,
  idleTimeoutS: 300,
});

test('the election id is a Uint128 of the epoch, in the default role unless one is given', () => {
  const e = masterArbitration(5n);
  assert.equal(e.master_arbitration?.role, undefined);
  assert.deepEqual(masterArbitration(5n, 'flowpin').master_arbitration?.role, { id: 'flowpin' });
  assert.equal(uint128(e.master_arbitration?.election_id), 5n);
  assert.equal(
    uint128(masterArbitration((1n << 64n) - 1n).master_arbitration?.election_id),
    (1n << 64n) - 1n,
  );
  assert.throws(() => masterArbitration(1n << 64n), RangeError);
});

test('the target arbitrates per role (spec 2): another role has its own master', () => {
  const arb = new MasterArbiter();
  arb.check([masterArbitration(5n)]);
  arb.check([masterArbitration(3n, 'other')]);
  arb.check([masterArbitration(5n)]);
  assert.throws(() => arb.check([masterArbitration(4n)]), /lower than the master's 5/);
  assert.throws(() => arb.check([masterArbitration(2n, 'other')]), /lower than the master's 3/);
  assert.equal(arb.staleRefused, 2);
});

test(
  'a stale owner (lower epoch) after a newer one: every write refused PERMISSION_DENIED, nothing changed',
  { timeout: 30_000 },
  async () => {
    const { sw } = testSwitch({ pinCapacity: 100 });
    const server = new GnmiServer(sw, { host: '127.0.0.1', port: 0, minSampleMs: 10 });
    const { address } = await server.start();
    const make = (): GnmiAdapter =>
      new GnmiAdapter({
        switchName: 'sw1',
        address,
        insecure: true,
        ingressInterfaces: ['Ethernet47'],
        sampleIntervalMs: 1000,
        timeoutMs: 5000,
      });
    const old = make();
    const now = make();
    try {
      await old.connect();
      await old.fenceTakeover({ epoch: 3n });
      await old.installPins([pin(1)], { epoch: 3n });
      assert.equal(server.arbiter.highest.get(''), 3n);
      // A newer owner takes over, with its empty Set, and writes.
      await now.connect();
      const setsBefore = server.stats.set;
      await now.fenceTakeover({ epoch: 5n });
      // (connect's Set above went before the takeover, without a fence: accepted per 3.2, counted.)
      const unarbitrated = server.arbiter.unarbitrated;
      assert.equal(server.stats.set, setsBefore + 1, 'the takeover is one (empty) Set');
      assert.equal(server.arbiter.highest.get(''), 5n);
      await now.installPins([pin(2, NEXTHOPS[1])], { epoch: 5n });
      const before = {
        pins: sw.pins
          .all()
          .map((e) => `${e.name}>${e.nexthop}`)
          .sort(),
        group: await now.groupMembers(VIP),
      };
      // The old owner goes on writing: pins, removals, group.
      const refused = server.arbiter.staleRefused;
      await assert.rejects(
        old.installPins([pin(3)], { epoch: 3n }),
        (e: Error) =>
          e instanceof SwitchFencedError && /PERMISSION_DENIED|lower than the master's 5/.test(e.message),
      );
      await assert.rejects(old.removePins([flow(1)], { epoch: 3n }), SwitchFencedError);
      await assert.rejects(
        old.removeGroupMember(VIP, NEXTHOPS[0] as string, { epoch: 3n }),
        SwitchFencedError,
      );
      await assert.rejects(old.addGroupMember(VIP, '10.0.1.9', { epoch: 3n }), SwitchFencedError);
      await assert.rejects(old.fenceTakeover({ epoch: 4n }), SwitchFencedError);
      assert.equal(server.arbiter.staleRefused, refused + 5);
      assert.equal(server.arbiter.staleLanded, 0);
      const after = {
        pins: sw.pins
          .all()
          .map((e) => `${e.name}>${e.nexthop}`)
          .sort(),
        group: await now.groupMembers(VIP),
      };
      assert.deepEqual(after, before, 'nothing of the stale owner landed');
      // The new owner's writes go on.
      await now.removePins([flow(1)], { epoch: 5n });
      assert.equal(
        server.arbiter.unarbitrated,
        unarbitrated,
        'every Set since the takeover carried the extension',
      );
    } finally {
      await old.close();
      await now.close();
      await server.stop();
    }
  },
);

test(
  'a Set without arbitration is accepted (spec 3.2) and counted; an extension without election_id is INVALID_ARGUMENT',
  { timeout: 30_000 },
  async () => {
    const { sw } = testSwitch({ pinCapacity: 100 });
    const server = new GnmiServer(sw, { host: '127.0.0.1', port: 0, minSampleMs: 10 });
    const { address } = await server.start();
    const a = new GnmiAdapter({
      switchName: 'sw1',
      address,
      insecure: true,
      ingressInterfaces: ['Ethernet47'],
      sampleIntervalMs: 1000,
      timeoutMs: 5000,
    });
    try {
      await a.connect();
      await a.fenceTakeover({ epoch: 2n });
      const plain = new GnmiAdapter({
        switchName: 'sw1',
        address,
        insecure: true,
        ingressInterfaces: ['Ethernet47'],
        sampleIntervalMs: 1000,
        timeoutMs: 5000,
      });
      await plain.connect();
      await plain.installPins([pin(7)]);
      assert.equal(
        server.arbiter.unarbitrated >= 2,
        true,
        'connect and install without arbitration were counted',
      );
      await plain.close();
      await assert.rejects(
        a.transport.set({ extension: [{ master_arbitration: { role: { id: '' } } }] }),
        /election_id/,
      );
    } finally {
      await a.close();
      await server.stop();
    }
  },
);

test(
  "the reconciler's writes carry its fence to a gNMI target; once a newer owner takes over, they are refused and counted",
  { timeout: 60_000 },
  async () => {
    const nh = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
    const w = new World({
      switches: [
        {
          name: 'sw1',
          vips: [{ address: VIP, nexthops: nh, port: 443 }],
          spares: [],
          ecmpMode: 'resilient',
          pinCapacity: 1000,
          programDelayMs: 0,
          rate: 0.001,
          lifetime: { kind: 'fixed', s: 3600 },
        },
      ],
      adapter: 'gnmi',
      latencyMs: 2,
      mirrorDelayMs: 1,
      packetIntervalMs: 1000,
      seed: 7,
      controller: {
        pinMode: 'on-change',
        settleMs: 20,
        barrierTimeoutMs: 3000,
        store: 'memory',
        resyncIntervalS: 3600,
      },
    });
    let other: GnmiAdapter | undefined;
    try {
      await w.startController();
      const c = w.controller;
      const target = w.gnmiTarget('sw1');
      assert.ok(c && target);
      const r = c.runtime('sw1').reconciler;
      // The takeover reads the switch again (a resync): time moves while it does.
      const takeover = c.fenceTakeover('sw1', { epoch: 5n });
      await w.advance(500);
      await takeover;
      assert.equal(target.server.arbiter.highest.get(''), 5n, 'the takeover Set made the controller master');
      const unarbitrated = target.server.arbiter.unarbitrated;
      const rules = (): number => w.sw('sw1').sw.pins.all().length;
      r.want({ flow: flow(1), nexthop: nh[0] as string, reason: 'test', since: w.now });
      await w.advance(500);
      assert.equal(rules(), 1);
      assert.equal(
        target.server.arbiter.unarbitrated,
        unarbitrated,
        "every Set of the reconciler's carried the election id",
      );
      // A newer owner takes the switch; this controller's next write is refused as stale.
      other = new GnmiAdapter({
        switchName: 'sw1',
        address: target.address,
        insecure: true,
        username: 'admin',
        password: 'flowpin',
        ingressInterfaces: ['Ethernet47'],
        timeoutMs: 5000,
      });
      await other.fenceTakeover({ epoch: 7n });
      r.want({ flow: flow(2), nexthop: nh[1] as string, reason: 'test', since: w.now });
      await w.advance(500);
      assert.equal(rules(), 1, 'nothing of the stale owner landed');
      assert.match(r.blocked ?? '', /refused as stale/);
      assert.ok((await valueOf(c.metrics.fenceRefusals, { switch: 'sw1', reason: 'stale' })) >= 1);
      assert.equal(target.server.arbiter.staleLanded, 0);
      // Its own lease renewed (the same epoch) does not unblock it: it would only be refused again.
      const refused = target.server.arbiter.staleRefused;
      c.setFence('sw1', { epoch: 5n });
      await w.advance(300);
      assert.match(r.blocked ?? '', /refused as stale/);
      assert.equal(target.server.arbiter.staleRefused, refused);
    } finally {
      await other?.close();
      await w.close();
    }
  },
);
