// Consent beyond drains and additions: putting a drained nexthop back moves connections like
// an addition and is refused with its dry run unless the risk is accepted; a removal that
// would drop the pins of connections still on the nexthop is refused with what it would lose;
// in `always` mode a pin table nearly full is a risk of its own (new connections soon go
// unpinned), in the 409 and in readiness. A real controller and the simulator, through the API.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];

function world(pinMode: 'always' | 'on-change', pinCapacity = 5000): World {
  return new World({
    switches: [{ name: 'sw1', vips: [{ address: VIP, nexthops: NH, port: 443 }], spares: ['10.0.1.5'], ecmpMode: 'resilient', pinCapacity, programDelayMs: 10, rate: 100, lifetime: { kind: 'fixed', s: 600 } }],
    latencyMs: 2, mirrorDelayMs: 1, packetIntervalMs: 1000, seed: 33, controller: { pinMode, settleMs: 20, barrierTimeoutMs: 5000, resyncIntervalS: 3600 },
  });
}

interface ErrorBody {
  message: string;
  detail: { report: Record<string, unknown> & { dryRun: boolean } };
}

async function withApi(w: World, fn: (call: (method: 'POST' | 'DELETE', url: string, body?: unknown) => Promise<{ statusCode: number; body: string; json: <T>() => T }>) => Promise<void>): Promise<void> {
  const c = w.controller;
  assert.ok(c);
  const app = await buildApp({ controller: c, token: 't', logger: pino({ level: 'silent' }) });
  try {
    await fn((method, url, body) => w.settle(app.inject({ method, url, headers: { authorization: 'Bearer t', ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { payload: JSON.stringify(body) }) }), 10_000));
  } finally {
    await app.close();
  }
}

test('undrain and removal need consent where connections are at risk; the 409 carries the report', { timeout: 60_000 }, async () => {
  const w = world('on-change');
  try {
    await w.startController();
    w.startTraffic();
    await w.advance(12_000);
    await withApi(w, async (call) => {
      const nh = (a: string, tail = '') => `/api/v1/switches/sw1/vips/${VIP}/nexthops/${a}${tail}`;
      const drained = await call('POST', nh(NH[1] as string, '/drain'), { acceptRisk: true });
      assert.equal(drained.statusCode, 202, drained.body);
      await w.advance(2000);
      // Putting it back moves connections onto it: with traffic, some arrive in the change window.
      const refused = await call('POST', nh(NH[1] as string, '/undrain'), {});
      assert.equal(refused.statusCode, 409, refused.body);
      const body = refused.json<ErrorBody>();
      assert.match(body.message, /^putting back 10\.0\.1\.2 puts connections at risk: .*about \d+ new connections expected in the \d+ ms change window/);
      assert.equal(body.detail.report.dryRun, true);
      assert.ok((body.detail.report['expectedWindowFlows'] as number) > 0);
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), [NH[0], NH[2]], 'nothing changed');
      const empty = await call('POST', nh(NH[1] as string, '/undrain'));
      assert.equal(empty.statusCode, 409, 'no body is no consent');
      const back = await call('POST', nh(NH[1] as string, '/undrain'), { acceptRisk: true });
      assert.equal(back.statusCode, 200, back.body);
      assert.equal(back.json<{ state: string }>().state, 'active');
      assert.deepEqual([...(w.sw('sw1').sw.vips.get(VIP)?.group.members() ?? [])].sort(), NH);

      // Removal: drain 10.0.1.3 (its connections pinned), then forget it while pins remain.
      const d3 = await call('POST', nh(NH[2] as string, '/drain'), { acceptRisk: true });
      assert.equal(d3.statusCode, 202, d3.body);
      await w.advance(1000);
      const pinned = w.controller?.runtime('sw1').pinnedOn(VIP, NH[2] as string) ?? 0;
      assert.ok(pinned > 0, 'the drained nexthop holds pinned connections');
      const rm = await call('DELETE', nh(NH[2] as string));
      assert.equal(rm.statusCode, 409, rm.body);
      const rb = rm.json<ErrorBody>();
      assert.match(rb.message, /removing 10\.0\.1\.3 puts connections at risk: \d+ pinned connections on it lose their pins/);
      assert.equal(rb.detail.report['pinnedLeft'], pinned);
      assert.equal(w.controller?.runtime('sw1').pinnedOn(VIP, NH[2] as string), pinned, 'no pin removed');
      const ok = await call('DELETE', `${nh(NH[2] as string)}?acceptRisk=true`);
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal(ok.json<{ pinnedLeft: number }>().pinnedLeft, pinned);
    });
  } finally {
    await w.close();
  }
});

for (const mode of ['always', 'on-change'] as const) {
  test(`a pin table nearly full is a risk of its own in always mode only (here: ${mode}), in the 409 and in readiness`, { timeout: 60_000 }, async () => {
    const w = world(mode, 4000);
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(8000);
      const c = w.controller;
      assert.ok(c);
      // Other owners take the table but for 2 % of it: nearly full, not full.
      const table = w.sw('sw1').sw.pins;
      table.reserved = table.capacity - table.programmed - Math.floor(table.capacity * 0.02);
      await w.settle(c.periodic(), 5000);
      const r = c.readiness();
      assert.equal(r.switches[0]?.pins.table, 'nearly-full', JSON.stringify(r.switches[0]?.pins));
      const line = r.reasons.find((x) => x.includes('pin table nearly full'));
      assert.ok(line !== undefined, JSON.stringify(r.reasons));
      assert.equal(/always mode, new connections will soon go unpinned/.test(line), mode === 'always', line);
      await withApi(w, async (call) => {
        const res = await call('POST', `/api/v1/switches/sw1/vips/${VIP}/nexthops/${NH[0] as string}/drain`, {});
        assert.equal(res.statusCode, 409, res.body);
        const body = res.json<ErrorBody & { detail: { report: { pinTable: { table: string; pinMode: string } } } }>();
        assert.equal(/the pin table is nearly-full \(\d+ of \d+ entries free\) in always mode/.test(body.message), mode === 'always', body.message);
        assert.deepEqual({ table: body.detail.report.pinTable.table, pinMode: body.detail.report.pinTable.pinMode }, { table: 'nearly-full', pinMode: mode });
        const add = await call('POST', `/api/v1/switches/sw1/vips/${VIP}/nexthops`, { address: '10.0.1.5' });
        assert.equal(add.statusCode, 409);
        assert.equal(/in always mode: new connections will soon go unpinned/.test(add.json<ErrorBody>().message), mode === 'always');
        assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'nothing changed');
      });
    } finally {
      await w.close();
    }
  });
}
