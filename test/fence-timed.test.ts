// Timed fencing, for switch kinds that keep no fencing token (eAPI, the simulator): the
// reconciler starts no write once its fence's validUntil (less the margin) has passed, on the
// controller's clock (the simulator's virtual clock here), and says why (FenceExpiredError,
// flowpin_fence_refusals_total{reason="expired"}); each pin's name carries the epoch that wrote
// it, existing names staying readable (epoch 0); the simulated switch counts a stale write that
// lands after a newer epoch's first write, and the audit after a takeover reports it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quietWorld } from './helpers/quiet-world.js';
import { FenceAudit } from '../controller/fence-audit.js';
import { FenceExpiredError } from '../switch-adapters/fence.js';
import { valueOf } from '../controller/metrics.js';
import { parsePinName, pinName } from '../lib/pin-name.js';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import type { FlowSpec, PinRule, SwitchAdapter } from '../switch-adapters/contract.js';
import { SimAdapter } from '../switch-adapters/sim/adapter.js';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { testSwitch, VIP as SIM_VIP, NEXTHOPS as SIM_NH } from './helpers/sim.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

test('pin names carry the epoch; names without one read as epoch 0', () => {
  const f: FlowSpec = { family: 4, src: '10.1.2.3', dst: '192.0.2.80', sport: 40000, dport: 443 };
  const v6: FlowSpec = { family: 6, src: '2001:db8::1', dst: '2001:db8::80', sport: 1, dport: 443 };
  assert.equal(pinName(f), 'fp-10_1_2_3-40000-192_0_2_80-443');
  assert.equal(pinName(f, 0n), pinName(f));
  assert.equal(pinName(f, 7n), 'fp-10_1_2_3-40000-192_0_2_80-443-e7');
  assert.deepEqual(parsePinName(pinName(f)), { flow: f, epoch: 0n });
  assert.deepEqual(parsePinName(pinName(v6, 18446744073709551615n)), {
    flow: v6,
    epoch: 18446744073709551615n,
  });
  assert.equal(parsePinName('fp-10_1_2_3-40000-192_0_2_80-443-x7'), undefined);
});

test(
  'the reconciler starts no write past validUntil (less the margin), and writes again under a renewed fence',
  { timeout: 60_000 },
  async () => {
    const w = quietWorld(11);
    try {
      await w.startController();
      const c = w.controller;
      assert.ok(c);
      const r = c.runtime('sw1').reconciler;
      const sw = w.sw('sw1').sw;
      const flow = (i: number): FlowSpec => ({
        family: 4,
        src: `10.100.0.${i}`,
        dst: VIP,
        sport: 40000 + i,
        dport: 443,
      });
      const names = (i: number): string[] =>
        sw.pins
          .all()
          .filter((e) => e.match.src === `10.100.0.${i}`)
          .map((e) => e.name);
      c.setFence('sw1', { epoch: 3n, validUntil: w.now + 5000 });
      r.want({ flow: flow(1), nexthop: NH[0] as string, reason: 'test', since: w.now });
      await w.advance(300);
      assert.deepEqual(names(1), [pinName(flow(1), 3n)], 'written with the epoch in its name');
      // Within the margin (1 s) of validUntil: no write starts.
      await w.advance(4000);
      const expired = async (): Promise<number> =>
        valueOf(c.metrics.fenceRefusals, { switch: 'sw1', reason: 'expired' });
      assert.equal(await expired(), 0);
      r.want({ flow: flow(2), nexthop: NH[1] as string, reason: 'test', since: w.now });
      await w.advance(300);
      assert.deepEqual(names(2), [], 'nothing written past validUntil less the margin');
      assert.match(r.blocked ?? '', /fence is valid until/);
      assert.ok((await expired()) >= 1, 'counted as a fence refusal');
      assert.ok(
        (await valueOf(c.metrics.reconcileFailures, { switch: 'sw1', error: 'FenceExpiredError' })) >= 1,
      );
      // The lease renewed: writes resume.
      c.setFence('sw1', { epoch: 3n, validUntil: w.now + 5000 });
      await w.advance(300);
      assert.deepEqual(names(2), [pinName(flow(2), 3n)]);
      // Without a fence (no HA), names are as they always were.
      c.setFence('sw1', undefined);
      r.want({ flow: flow(3), nexthop: NH[2] as string, reason: 'test', since: w.now });
      await w.advance(300);
      assert.deepEqual(names(3), [pinName(flow(3))]);
    } finally {
      await w.close();
    }
  },
);

const simPin = (i: number, nh = SIM_NH[0] as string): PinRule => ({
  flow: { family: 4, src: `10.100.1.${i}`, dst: SIM_VIP, sport: 30000 + i, dport: 443 },
  nexthop: nh,
  idleTimeoutS: 300,
});

test('the simulator counts a stale write landing after a newer epoch; the audit after the takeover reports it', async () => {
  const { sw } = testSwitch({ pinCapacity: 100 });
  const old: SwitchAdapter = new SimAdapter(sw);
  const now: SwitchAdapter = new SimAdapter(sw);
  await old.connect();
  await old.installPins([simPin(1)], { epoch: 3n });
  // A newer owner takes over: its audit lists what it finds; then it writes (and rewrites pin 1).
  const audit = await FenceAudit.takeover(now, 5n, [SIM_VIP]);
  await now.installPins([simPin(2), simPin(1, SIM_NH[1])], { epoch: 5n });
  assert.deepEqual(
    sw.pins
      .all()
      .map((e) => e.name)
      .sort(),
    [pinName(simPin(1).flow, 5n), pinName(simPin(2).flow, 5n)].sort(),
    'the rewritten pin has one name, the newer epoch',
  );
  assert.equal(sw.pins.epochs.staleLanded, 0);
  let report = await audit.check();
  assert.deepEqual([report.ahead.length, report.staleAfterTakeover.length], [0, 0]);
  // The old owner writes late (past its fence, on purpose): it lands, and is counted.
  await old.installPins([simPin(3)], { epoch: 3n });
  assert.equal(sw.pins.epochs.staleLanded, 1);
  assert.equal(sw.pins.epochs.stale[0]?.epoch, 3n);
  report = await audit.check();
  assert.deepEqual(
    report.staleAfterTakeover.map((p) => p.name),
    [pinName(simPin(3).flow, 3n)],
  );
  // And the old owner's own audit sees a newer epoch's pins: it is the stale one.
  const oldAudit = await FenceAudit.takeover(old, 3n, [SIM_VIP]);
  assert.equal((await oldAudit.check()).ahead.length, 2);
  // A group written behind the new owner's back is reported.
  await old.removeGroupMember(SIM_VIP, SIM_NH[3] as string, { epoch: 3n });
  assert.deepEqual(
    (await audit.check()).groupsChanged.map((g) => g.vip),
    [SIM_VIP],
  );
});

test(
  'eAPI: flows named with the writer epoch over the wire, renamed at a newer epoch, counted when stale',
  { timeout: 30_000 },
  async () => {
    const { sw } = testSwitch({ pinCapacity: 100 });
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
    const { url } = await server.start();
    const make = (): SwitchAdapter =>
      new AristaEapiAdapter({ switchName: 'sw1', url, username: 'admin', password: 'pw', timeoutMs: 5000 });
    const old = make();
    const now = make();
    try {
      await old.connect();
      await now.connect();
      assert.equal(old.capabilities.fencing, 'timed');
      assert.equal((await old.installPins([simPin(1)], { epoch: 3n }))[0]?.ok, true);
      assert.deepEqual(
        sw.pins.all().map((e) => e.name),
        [pinName(simPin(1).flow, 3n)],
      );
      const listed = await now.listPins();
      assert.equal(listed[0]?.epoch, 3n);
      // The newer owner rewrites the pin: one flow, under its epoch's name.
      await now.installPins([simPin(1, SIM_NH[1])], { epoch: 5n });
      assert.deepEqual(
        sw.pins.all().map((e) => `${e.name}>${e.nexthop}`),
        [`${pinName(simPin(1).flow, 5n)}>${SIM_NH[1]}`],
      );
      assert.equal(sw.pins.epochs.staleLanded, 0);
      // A stale write (epoch 3 after epoch 5's first write) lands (the switch keeps no token): counted.
      await old.installPins([simPin(2)], { epoch: 3n });
      assert.equal(sw.pins.epochs.staleLanded, 1);
      // Removal finds the pin under its epoch's name.
      await now.listPins();
      await now.removePins([simPin(1).flow, simPin(2).flow], { epoch: 5n });
      assert.deepEqual(sw.pins.all(), []);
    } finally {
      await old.close();
      await now.close();
      await server.stop();
    }
  },
);

test(
  'eAPI: a write whose fence expires while it waits for a connection is not sent (checked as it leaves)',
  { timeout: 30_000 },
  async () => {
    const { sw } = testSwitch({ pinCapacity: 100 });
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
    const { url } = await server.start();
    // One connection: a write waits behind a slow read, as it would behind a pause of the process.
    const a = new AristaEapiAdapter({
      switchName: 'sw1',
      url,
      username: 'admin',
      password: 'pw',
      timeoutMs: 10_000,
      maxConcurrent: 1,
    });
    try {
      await a.connect();
      server.faults.set({ latencyMs: 300 });
      let expired = false;
      let checks = 0;
      const validUntil = Date.now() + 60_000;
      const check = (): void => {
        checks++;
        if (expired) throw new FenceExpiredError('sw1', 4n, validUntil, Date.now());
      };
      const reading = a.listPins();
      // Valid when the write starts; expired (the process paused, say) before the connection is free.
      const writing = a.installPins([simPin(7)], { epoch: 4n, validUntil, check });
      expired = true;
      await reading;
      await assert.rejects(writing, FenceExpiredError);
      assert.equal(checks, 1, 'checked once, when the request had its connection');
      assert.deepEqual(sw.pins.all(), [], 'nothing landed');
      assert.equal(
        server.commandLog.filter((c) => c.startsWith('flow ')).length,
        0,
        'the switch never saw the write',
      );
      // A live fence writes over the same transport.
      server.faults.set({ latencyMs: 0 });
      const outcomes = await a.installPins([simPin(7)], { epoch: 4n, validUntil: Infinity, check: () => {} });
      assert.equal(outcomes[0]?.ok, true);
      assert.deepEqual(
        sw.pins.all().map((e) => e.name),
        [pinName(simPin(7).flow, 4n)],
      );
    } finally {
      await a.close();
      await server.stop();
    }
  },
);
