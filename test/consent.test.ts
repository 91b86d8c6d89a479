// Consent with a bound: a change goes ahead only where what it may cost is within the bound
// the caller states (`maxAtRisk`), checked on its dry run and again right before its group
// write, in the change manager (any caller), through the API as through the manager. A few
// connections expected in the change window need no consent (consent.windowFlows); more do. A
// full table, connections flowpin may never have seen, a mirror it cannot trust: each counts
// against the bound, with the dry run in the 409. `acceptRisk` is refused with what replaced
// it. Removal and undrain likewise; a second drain past the VIP's maxUnavailable is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import type { ChangeRecord, DryRunReport } from '../controller/changes.js';
import { FlowpinError } from '../controller/errors.js';
import { World, type WorldOptions } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3'];

function world(rate: number, over: Partial<WorldOptions> = {}, pinCapacity = 5000): World {
  return new World({
    switches: [
      {
        name: 'sw1',
        vips: [{ address: VIP, nexthops: NH, port: 443 }],
        spares: ['10.0.1.5'],
        ecmpMode: 'resilient',
        pinCapacity,
        programDelayMs: 10,
        rate,
        lifetime: { kind: 'fixed', s: 600 },
      },
    ],
    latencyMs: 2,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed: 21,
    controller: {
      pinMode: 'on-change',
      settleMs: 20,
      barrierTimeoutMs: 5000,
      resyncIntervalS: 3600,
      windowFlows: 10,
    },
    ...over,
  });
}

interface Refusal {
  message: string;
  detail: { report: DryRunReport; figures: { total: number } };
}

async function withApi(
  w: World,
  fn: (
    call: (
      method: 'POST' | 'DELETE',
      url: string,
      body?: unknown,
    ) => Promise<{ statusCode: number; body: string; json: <T>() => T }>,
  ) => Promise<void>,
): Promise<void> {
  const c = w.controller;
  assert.ok(c);
  const app = await buildApp({ controller: c, token: 't', logger: pino({ level: 'silent' }) });
  try {
    await fn((method, url, body) =>
      w.settle(
        app.inject({
          method,
          url,
          headers: {
            authorization: 'Bearer t',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
        }),
        10_000,
      ),
    );
  } finally {
    await app.close();
  }
}

const nhUrl = (a: string, tail = ''): string => `/api/v1/switches/sw1/vips/${VIP}/nexthops/${a}${tail}`;

test(
  'a few connections in the change window need no consent; more need a bound at least the figures, and the 409 says which',
  { timeout: 90_000 },
  async () => {
    // Catches: window flows counted against the bound whatever their number (every change refused);
    // window flows never counted (no consent at any rate); a bound taken without checking it.
    const quiet = world(20);
    try {
      await quiet.startController();
      quiet.startTraffic();
      await quiet.advance(8000);
      await withApi(quiet, async (call) => {
        const dry = (
          await call('POST', nhUrl(NH[1] as string, '/drain'), { dryRun: true })
        ).json<DryRunReport>();
        assert.ok(
          dry.expectedWindowFlows <= dry.windowThreshold,
          `${dry.expectedWindowFlows} window connections expected at 20/s`,
        );
        assert.equal(dry.figures.total, 0, JSON.stringify(dry.figures));
        const ok = await call('POST', nhUrl(NH[1] as string, '/drain'), {});
        assert.equal(ok.statusCode, 202, ok.body);
        assert.equal(ok.json<ChangeRecord>().maxAtRisk, 0);
      });
    } finally {
      await quiet.close();
    }
    const busy = world(2000);
    try {
      await busy.startController();
      busy.startTraffic();
      await busy.advance(8000);
      await withApi(busy, async (call) => {
        const refused = await call('POST', nhUrl(NH[1] as string, '/drain'), {});
        assert.equal(refused.statusCode, 409, refused.body);
        const body = refused.json<Refusal>();
        const need = body.detail.figures.total;
        assert.ok(
          body.detail.report.expectedWindowFlows > body.detail.report.windowThreshold && need > 0,
          JSON.stringify(body.detail.figures),
        );
        assert.match(
          body.message,
          new RegExp(
            `change window ${body.detail.report.expectedWindowFlows} \\(expected\\)\\), more than the bound of 0\\. Give a bound \\(maxAtRisk\\) of at least ${need}`,
          ),
        );
        assert.deepEqual(busy.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'nothing changed');
        const low = await call('POST', nhUrl(NH[1] as string, '/drain'), {
          maxAtRisk: Math.max(0, need - Math.max(1, Math.ceil(need / 2))),
        });
        assert.equal(low.statusCode, 409, 'a bound below the figures is refused too');
        const ok = await call('POST', nhUrl(NH[1] as string, '/drain'), { maxAtRisk: need * 2 });
        assert.equal(ok.statusCode, 202, ok.body);
        const rec = ok.json<ChangeRecord>();
        assert.ok(
          rec.checked !== undefined && rec.checked.total <= need * 2,
          `checked again before the group write: ${JSON.stringify(rec.checked)}`,
        );
        const old = await call('POST', nhUrl(NH[2] as string, '/drain'), { acceptRisk: true });
        assert.equal(old.statusCode, 400);
        assert.match(
          old.json<{ message: string; field: string }>().message,
          /acceptRisk \(and force\) were replaced by maxAtRisk/,
        );
      });
    } finally {
      await busy.close();
    }
  },
);

test(
  'a full table counts against the bound; the bound is checked again right before the group write, and a change past it stops there',
  { timeout: 90_000 },
  async () => {
    // Catches: the dry run's free room taken from the configured size rather than the switch's
    // report (shared with other owners); a bound checked only when the call is made.
    const w = world(200, {}, 3000);
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(10_000);
      const c = w.controller;
      assert.ok(c);
      const table = w.sw('sw1').sw.pins;
      // Other owners hold all but 20 entries: the switch reports it, the configured size does not.
      table.reserved = table.capacity - 20;
      await withApi(w, async (call) => {
        const dry = (
          await call('POST', nhUrl(NH[1] as string, '/drain'), { dryRun: true })
        ).json<DryRunReport>();
        assert.ok(dry.freeEntries <= 20, `free room as the switch reports it: ${dry.freeEntries}`);
        assert.ok(
          dry.atRiskBy['table-full'] > 0 && dry.atRiskBy['table-full'] === dry.flowsToPin - dry.freeEntries,
          JSON.stringify(dry),
        );
        const refused = await call('POST', nhUrl(NH[1] as string, '/drain'), { maxAtRisk: 1 });
        assert.equal(refused.statusCode, 409);
        assert.match(refused.json<Refusal>().message, /table-full \d+/);
      });
      table.reserved = 0;
      await w.settle(c.periodic(), 5000);
      // The call passes with a small bound (room again); the table fills while the change runs: it stops
      // before its group write.
      const cm = c.changeManager('sw1');
      const p = cm.drain(VIP, NH[1] as string, { maxAtRisk: 5 });
      p.catch(() => undefined);
      for (let i = 0; i < 200 && cm.records.at(-1)?.phase !== 'pending'; i++) await w.advance(1);
      table.reserved = table.capacity;
      await assert.rejects(
        w.settle(p, 20_000),
        (err: unknown) =>
          err instanceof FlowpinError &&
          err.status === 409 &&
          /stopped before its group write: \d+ connections may be lost \(table-full \d+/.test(err.message),
      );
      const rec = cm.records.at(-1);
      assert.equal(rec?.phase, 'failed');
      assert.ok((rec?.checked?.total ?? 0) > 5, JSON.stringify(rec?.checked));
      assert.equal(rec?.sentAt, undefined, 'no group write');
      assert.deepEqual(w.sw('sw1').sw.vips.get(VIP)?.group.members(), NH, 'nothing changed');
      assert.equal(
        [...c.runtime('sw1').reconciler.desired.values()].filter((x) => x.reason === rec?.id).length,
        0,
        'its pins are dropped',
      );
    } finally {
      await w.close();
    }
  },
);

test(
  'connections older than flowpin: warming, the dry run bounds them with its basis, and a change needs consent for them; the manager checks it for any caller',
  { timeout: 90_000 },
  async () => {
    // Catches: a dry run that says "at risk 0" 20 s after start while connections older than flowpin live on.
    const w = world(100);
    try {
      // The traffic runs 20 s before flowpin starts watching: the world's configuration knows no
      // connectionsSince for it.
      w.openLive(400, { kind: 'fixed', s: 600 });
      w.startTraffic();
      await w.advance(20_000);
      await w.startController();
      const c = w.controller;
      assert.ok(c);
      // Not from the world's epoch: the controller cannot know when the traffic began.
      await w.advance(6000);
      const r = c.readiness();
      assert.equal(r.switches[0]?.watch.warming, true);
      assert.ok(
        r.reasons.some((x) => /warming: flowpin has not watched/.test(x)),
        JSON.stringify(r.reasons),
      );
      const cm = c.changeManager('sw1');
      const dry = (await w.settle(cm.drain(VIP, NH[1] as string, { dryRun: true }), 5000)) as DryRunReport;
      assert.ok(
        dry.unseen > 0 && dry.warming,
        JSON.stringify({ unseen: dry.unseen, basis: dry.unseenBasis }),
      );
      assert.match(dry.unseenBasis, /upper bound: .* before flowpin started watching/);
      await assert.rejects(
        w.settle(cm.drain(VIP, NH[1] as string, {}), 5000),
        (err: unknown) =>
          err instanceof FlowpinError &&
          err.status === 409 &&
          /unseen \d+ \(an upper bound\)/.test(err.message),
      );
      const rec = (await w.settle(
        cm.drain(VIP, NH[1] as string, { maxAtRisk: dry.figures.total + 50 }),
        10_000,
      )) as ChangeRecord;
      assert.equal(rec.phase, 'applied');
      assert.ok(rec.unseen !== null && rec.unseen > 0, 'the record keeps the estimate');
    } finally {
      await w.close();
    }
  },
);

test(
  'undrain and removal: consent for what they cost; a second drain past maxUnavailable is refused',
  { timeout: 90_000 },
  async () => {
    const w = world(100);
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(10_000);
      await withApi(w, async (call) => {
        const drained = await call('POST', nhUrl(NH[1] as string, '/drain'), { maxAtRisk: 'unbounded' });
        assert.equal(drained.statusCode, 202, drained.body);
        // maxUnavailable 1 (the default): a second member may not go out while the first is.
        const second = await call('POST', nhUrl(NH[2] as string, '/drain'), { maxAtRisk: 'unbounded' });
        assert.equal(second.statusCode, 409, second.body);
        assert.match(
          second.json<{ message: string }>().message,
          /10\.0\.1\.2 is already out of 192\.0\.2\.80 \(draining or drained\); maxUnavailable for it is 1/,
        );
        // Removing it while its connections are left loses them: refused below their number, with what is
        // left.
        const left = w.controller?.runtime('sw1').leftOn(VIP, NH[1] as string);
        assert.ok(left !== undefined && left.live + left.unknown > 0, JSON.stringify(left));
        const dry = await call('DELETE', `${nhUrl(NH[1] as string)}?dryRun=true`);
        assert.equal(dry.statusCode, 200);
        assert.equal(dry.json<{ removed: boolean; left: { live: number } }>().removed, false);
        const rm = await call('DELETE', nhUrl(NH[1] as string));
        assert.equal(rm.statusCode, 409, rm.body);
        assert.match(
          rm.json<{ message: string }>().message,
          /removing 10\.0\.1\.2 loses \d+ connections still on it \(\d+ live, \d+ unknown; \d+ pinned\)/,
        );
        const old = await call('DELETE', `${nhUrl(NH[1] as string)}?force=true`);
        assert.equal(old.statusCode, 400, 'force was replaced by maxAtRisk');
        // Putting it back goes through the protocol like an addition, with its own bound.
        const back = await call('POST', nhUrl(NH[1] as string, '/undrain'), { maxAtRisk: 'unbounded' });
        assert.equal(back.statusCode, 200, back.body);
        assert.deepEqual([...(w.sw('sw1').sw.vips.get(VIP)?.group.members() ?? [])].sort(), NH);
        const now = await call('POST', nhUrl(NH[2] as string, '/drain'), { maxAtRisk: 'unbounded' });
        assert.equal(now.statusCode, 202, 'with the first back, the second may go');
      });
    } finally {
      await w.close();
    }
  },
);
