// Consent: a drain or an addition that would put connections at risk (here: connections
// expected in the change window under 200 SYN/s; a full table) is refused through the API
// with the dry-run report, and goes ahead when the request accepts the risk explicitly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import type { ChangeRecord } from '../controller/changes.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];

test('a change that puts connections at risk needs acceptRisk; the 409 carries the report', { timeout: 60_000 }, async () => {
  const w = new World({
    switches: [{ name: 'sw1', vips: [{ address: VIP, nexthops: NH, port: 443 }], spares: ['10.0.1.5'], ecmpMode: 'resilient', pinCapacity: 5000, programDelayMs: 10, rate: 200, lifetime: { kind: 'fixed', s: 600 } }],
    latencyMs: 2, mirrorDelayMs: 1, packetIntervalMs: 1000, seed: 21, controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 5000, resyncIntervalS: 3600 },
  });
  try {
    await w.startController();
    w.startTraffic();
    await w.advance(12_000);
    const c = w.controller;
    assert.ok(c);
    const app = await buildApp({ controller: c, token: 't', logger: pino({ level: 'silent' }) });
    try {
      const post = (url: string, body: unknown) => w.settle(app.inject({ method: 'POST', url, headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, payload: JSON.stringify(body) }), 10_000);
      const drainUrl = `/api/v1/switches/sw1/vips/${VIP}/nexthops/${NH[1] as string}/drain`;
      const refused = await post(drainUrl, {});
      assert.equal(refused.statusCode, 409);
      const body = refused.json<{ message: string; detail: { report: { expectedWindowFlows: number; dryRun: boolean } } }>();
      assert.match(body.message, /puts connections at risk: about \d+ new connections expected in the \d+ ms change window at [\d.]+ SYN\/s\. Send "acceptRisk": true/);
      assert.ok(body.detail.report.dryRun && body.detail.report.expectedWindowFlows > 0);
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'nothing changed');
      const accepted = await post(drainUrl, { acceptRisk: true });
      assert.equal(accepted.statusCode, 202, accepted.body);
      assert.equal(accepted.json<ChangeRecord>().phase, 'applied');
      // A full table: at risk by reason, refused likewise.
      const table = w.sw('sw1').sw.pins;
      table.reserved = table.capacity;
      await w.settle(c.periodic(), 5000);
      const addUrl = `/api/v1/switches/sw1/vips/${VIP}/nexthops`;
      const full = await post(addUrl, { address: '10.0.1.5' });
      assert.equal(full.statusCode, 409);
      assert.match(full.json<{ message: string }>().message, /live connections at risk \(table-full \d+/);
    } finally {
      await app.close();
    }
  } finally {
    await w.close();
  }
});
