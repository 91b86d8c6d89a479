// Start-up: each switch comes up within its own deadline, so one whose first resync keeps
// failing never keeps the others from starting; a change resumed after a restart writes its
// group change only once flowpin listens to the mirror again, so what it breaks is counted;
// while a switch is not connected yet (its groups not read), every change of it is refused
// (503), through the API as through the change manager: nothing is written blind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import type { ChangeRecord } from '../controller/changes.js';
import { FlowpinError } from '../controller/errors.js';
import { World } from '../cli/scenario/world.js';
import { changeWorld, WORLD_NH as NH, WORLD_VIP as VIP } from './helpers/world.js';
import { SwitchTimeoutError } from '../switch-adapters/errors.js';
import type { InstalledPin } from '../switch-adapters/contract.js';

const VIP3 = '198.51.100.10';
const NH3 = ['10.0.3.1', '10.0.3.2', '10.0.3.3', '10.0.3.4'];

test(
  'a switch whose pin listing times out at start does not keep the controller, or any other switch, from starting',
  { timeout: 120_000 },
  async () => {
    const w = new World({
      switches: [
        {
          name: 'sw1',
          vips: [{ address: VIP, nexthops: NH, port: 443 }],
          spares: [],
          ecmpMode: 'resilient',
          pinCapacity: 10_000,
          programDelayMs: 5,
          rate: 1,
          lifetime: { kind: 'fixed', s: 3600 },
        },
        {
          name: 'sw2',
          vips: [{ address: VIP3, nexthops: NH3, port: 443 }],
          spares: [],
          ecmpMode: 'resilient',
          pinCapacity: 10_000,
          programDelayMs: 5,
          rate: 1,
          lifetime: { kind: 'fixed', s: 3600 },
        },
      ],
      latencyMs: 5,
      mirrorDelayMs: 1,
      packetIntervalMs: 1000,
      seed: 9,
      controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 3000, store: 'memory' },
    });
    try {
      const t0 = w.now;
      const starting = w.startController();
      // sw1 accepts the connection and answers group reads, but listing its pins times out (a busy switch).
      const a = w.adapters.get('sw1');
      assert.ok(a);
      a.listPins = () =>
        new Promise<InstalledPin[]>((_, reject) =>
          w.clock.after(5, () => reject(new SwitchTimeoutError('sw1', 'list: no answer in time'))),
        );
      let failure: unknown;
      await starting.catch((err: unknown) => (failure = err));
      assert.equal(
        failure,
        undefined,
        `the controller did not start within ${w.now - t0} ms of simulated time: ${String(failure)}`,
      );
      assert.ok(w.now - t0 < 5000, `start took ${w.now - t0} ms`);
    } finally {
      await w.close();
    }
  },
);

test(
  'a drain resumed after a kill writes its group change only once flowpin listens again, and counts what it breaks',
  { timeout: 120_000 },
  async () => {
    const w = changeWorld({
      seed: 13,
      sw: { pinCapacity: 100_000, programDelayMs: 10, pinProgramDelayMs: 200, rate: 3000 },
      controller: { barrierTimeoutMs: 5000 },
    });
    try {
      await w.startController();
      w.openLive(2000, { kind: 'fixed', s: 3600 });
      w.startTraffic();
      await w.advance(1500);
      const cm = w.controller?.changeManager('sw1');
      assert.ok(cm);
      const p = cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' });
      p.catch(() => undefined);
      await w.advance(60);
      const id = cm.records.at(-1)?.id;
      assert.equal(cm.records.at(-1)?.sentAt, undefined, 'killed before the group write');
      await w.stopController('kill');
      await w.advance(200);
      const processStarted = w.now;
      await w.startController();
      const listening = w.now;
      const resumedNow = w.controller?.changeManager('sw1').records.find((r) => r.id === id);
      assert.equal(
        resumedNow?.sentAt,
        undefined,
        'the resumed drain does not write its group change before flowpin listens',
      );
      await w.advance(3000);
      const resumed = w.controller?.changeManager('sw1').records.find((r) => r.id === id) as ChangeRecord;
      assert.ok(
        resumed.sentAt !== undefined && resumed.sentAt >= listening,
        `group write sent ${String(resumed.sentAt)}, mirror listened from ${listening} (process started ${processStarted})`,
      );
      const a = w.audit();
      assert.equal(a.brokenProtected, 0, a.details.join('\n'));
      assert.equal(a.uncounted, 0, a.details.join('\n'));
    } finally {
      await w.close();
    }
  },
);

test(
  'while a switch is not connected yet, drains, additions and removals of it are refused (503), never written blind; once connected, they are checked against its group',
  { timeout: 120_000 },
  async () => {
    const w = changeWorld({
      seed: 17,
      sw: { spares: ['10.0.1.5'], rate: 20 },
      controller: { barrierTimeoutMs: 2000 },
    });
    try {
      const starting = w.startController();
      // The switch refuses connections for the first 8 s: flowpin starts, and keeps trying in the background.
      const a = w.adapters.get('sw1');
      assert.ok(a);
      a.faults.downUntil = w.now + 8000;
      await starting;
      const c = w.controller;
      assert.ok(c);
      const rt = c.runtime('sw1');
      assert.equal(rt.connected, false);
      w.startTraffic();
      await w.advance(500);
      const cm = c.changeManager('sw1');
      const blind = (err: unknown): boolean =>
        err instanceof FlowpinError && err.status === 503 && /sw1 is not connected yet/.test(err.message);
      // The removal of a member that is in the group (flowpin has not read it yet): refused, not `removed:
      // true`.
      assert.throws(() => cm.remove(VIP, NH[1] as string), blind);
      await assert.rejects(w.settle(cm.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }), 5000), blind);
      await assert.rejects(w.settle(cm.add(VIP, '10.0.1.5', { maxAtRisk: 'unbounded' }), 5000), blind);
      const app = await buildApp({ controller: c, token: 't', logger: pino({ level: 'silent' }) });
      try {
        const del = await w.settle(
          app.inject({
            method: 'DELETE',
            url: `/api/v1/switches/sw1/vips/${VIP}/nexthops/${NH[1] as string}`,
            headers: { authorization: 'Bearer t' },
          }),
          5000,
        );
        assert.equal(del.statusCode, 503, del.body);
        assert.match(del.body, /not connected yet/);
      } finally {
        await app.close();
      }
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'the group is as it was');
      // The switch answers again: connected in the background, and the same removal is judged against its
      // group.
      for (let i = 0; i < 40 && !rt.connected; i++) await w.advance(500);
      assert.equal(rt.connected, true, 'connected once the switch answers');
      assert.throws(
        () => cm.remove(VIP, NH[1] as string),
        (err: unknown) =>
          err instanceof FlowpinError && err.status === 409 && /still in the ECMP group/.test(err.message),
      );
      assert.ok(
        c
          .changeManager('sw1')
          .vip(VIP)
          .nexthops.has(NH[1] as string),
        'the member is still known',
      );
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH);
    } finally {
      await w.close();
    }
  },
);
