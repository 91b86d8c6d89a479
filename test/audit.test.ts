// The audit of changes, in the simulated world through the API: each change records who asked
// (the name of the token the call carried, the client's address), the consent given and the
// dry-run figures it was checked against (and again before its group write); a cancel records
// who cancelled. The record says so through the API, in the state store (across a kill), and
// every operator call is a log line with the token's name, the address and the answer, the
// token itself never.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import type { ChangeRecord } from '../controller/changes.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];

test(
  'a change records who asked, from where, with what consent and after which dry run; a cancel who cancelled; operator calls are logged',
  { timeout: 120_000 },
  async () => {
    // Catches: a change with no record of its caller; the address of the proxy or of nobody; the
    // consent's figures lost once the change ran; the token (not its name) in the log.
    const w = new World({
      switches: [
        {
          name: 'sw1',
          vips: [{ address: VIP, nexthops: NH, port: 443 }],
          spares: ['10.0.1.5'],
          ecmpMode: 'resilient',
          pinCapacity: 5000,
          programDelayMs: 10,
          rate: 100,
          lifetime: { kind: 'fixed', s: 600 },
        },
      ],
      latencyMs: 2,
      mirrorDelayMs: 1,
      packetIntervalMs: 1000,
      seed: 29,
      controller: {
        pinMode: 'on-change',
        settleMs: 2000,
        barrierTimeoutMs: 20_000,
        resyncIntervalS: 3600,
        store: 'memory',
      },
    });
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n'))
          if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(8000);
      const c = w.controller;
      assert.ok(c);
      const app = await buildApp({
        controller: c,
        token: undefined,
        auth: {
          tokens: [
            { role: 'operator', token: 'secret-alice', name: 'alice' },
            { role: 'operator', token: 'secret-bob', name: 'bob' },
          ],
          readsNeedToken: false,
        },
        logger: pino({ level: 'info' }, sink),
      });
      try {
        const call = (who: string, from: string, method: 'GET' | 'POST', url: string, body?: unknown) =>
          w.settle(
            app.inject({
              method,
              url,
              remoteAddress: from,
              headers: {
                authorization: `Bearer secret-${who}`,
                ...(body === undefined ? {} : { 'content-type': 'application/json' }),
              },
              ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
            }),
            30_000,
          );
        const drain = await call(
          'alice',
          '198.51.100.7',
          'POST',
          `/api/v1/switches/sw1/vips/${VIP}/nexthops/${NH[1] as string}/drain`,
          { maxAtRisk: 1000 },
        );
        assert.equal(drain.statusCode, 202, drain.body);
        const rec = drain.json<ChangeRecord>();
        assert.deepEqual(rec.requestedBy, { token: 'alice', client: '198.51.100.7' });
        assert.equal(rec.maxAtRisk, 1000);
        assert.ok(
          rec.dryRunFigures !== undefined &&
            rec.dryRunFigures.total <= 1000 &&
            rec.dryRunFigures.total > 0 &&
            rec.checked !== undefined,
          JSON.stringify(rec),
        );
        const got = (
          await call('bob', '198.51.100.8', 'GET', `/api/v1/switches/sw1/changes/${rec.id}`)
        ).json<ChangeRecord>();
        assert.deepEqual(
          [got.requestedBy, got.maxAtRisk, got.dryRunFigures],
          [rec.requestedBy, 1000, rec.dryRunFigures],
        );

        // A cancel records its caller too; a refused call is logged like any other.
        const adding = call('alice', '198.51.100.7', 'POST', `/api/v1/switches/sw1/vips/${VIP}/nexthops`, {
          address: '10.0.1.5',
          maxAtRisk: 'unbounded',
        });
        for (let i = 0; i < 2000 && c.changeManager('sw1').records.at(-1)?.kind !== 'add'; i++)
          await w.advance(1);
        const add = c.changeManager('sw1').records.at(-1) as ChangeRecord;
        const cancelled = await call(
          'bob',
          '203.0.113.9',
          'POST',
          `/api/v1/switches/sw1/changes/${add.id}/cancel`,
        );
        assert.equal(cancelled.statusCode, 200, cancelled.body);
        assert.deepEqual(
          [cancelled.json<ChangeRecord>().requestedBy, cancelled.json<ChangeRecord>().cancelledBy],
          [
            { token: 'alice', client: '198.51.100.7' },
            { token: 'bob', client: '203.0.113.9' },
          ],
        );
        assert.equal((await adding).statusCode, 409);
        assert.equal(
          (await call('bob', '203.0.113.9', 'POST', `/api/v1/switches/sw1/changes/${rec.id}/cancel`))
            .statusCode,
          409,
        );

        // One line per operator call as it is answered (the cancelled addition's own call ends before its
        // cancel is answered).
        const audit = lines
          .filter((l) => l['audit'] === true)
          .map(
            (l) =>
              `${String(l['token'])} ${String(l['client'])} ${String(l['method'])} ${String(l['url'])
                .replace(/\/api\/v1\/switches\/sw1\//, '')
                .replace(/[^/]*-(drain|add)-[^/]*/, 'ID')} ${String(l['status'])}`,
          );
        assert.deepEqual(audit, [
          `alice 198.51.100.7 POST vips/${VIP}/nexthops/${NH[1] as string}/drain 202`,
          `alice 198.51.100.7 POST vips/${VIP}/nexthops 409`,
          'bob 203.0.113.9 POST changes/ID/cancel 200',
          'bob 203.0.113.9 POST changes/ID/cancel 409',
        ]);
        assert.ok(!JSON.stringify(lines).includes('secret-'), 'no token in the log');
      } finally {
        await app.close();
      }
      // In the state store, as written: a killed controller's successor has it.
      await w.stopController('kill');
      await w.startController();
      const kept = w.controller?.changeManager('sw1').records ?? [];
      assert.deepEqual(
        kept.map((r) => [r.kind, r.requestedBy?.token, r.cancelledBy?.token, r.dryRunFigures === undefined]),
        [
          ['drain', 'alice', undefined, false],
          ['add', 'alice', 'bob', false],
        ],
      );
    } finally {
      await w.close();
    }
  },
);
