// The HTTP API through inject(): switches, VIPs, drains with dry run and deadline, add,
// undrain, delete, flows and pins with filters and paging, health, readiness, metrics,
// OpenAPI, and clear errors (400 with the field, 401, 404, 409). One test goes through a
// real listener end to end.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../controller/api/app.js';
import { listen } from '../controller/api/listen.js';
import { Bed, FIFTH, NH, VIP } from './helpers/bed.js';

const TOKEN = 'api-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
let bed: Bed | undefined;
let app: FastifyInstance | undefined;

const get = async (url: string): Promise<{ status: number; body: Record<string, unknown>; text: string }> => {
  const r = await (app as FastifyInstance).inject({ method: 'GET', url });
  return {
    status: r.statusCode,
    body: String(r.headers['content-type']).includes('json') ? r.json<Record<string, unknown>>() : {},
    text: r.body,
  };
};
const post = async (url: string, payload?: unknown, headers: Record<string, string> = auth) => {
  const r = await (app as FastifyInstance).inject({
    method: 'POST',
    url,
    payload: payload as object,
    headers,
  });
  return { status: r.statusCode, body: r.json<Record<string, unknown>>() };
};
const NHURL = (nh: string) => `/api/v1/switches/sw1/vips/${VIP}/nexthops/${nh}`;

before(async () => {
  bed = await Bed.create({ pinMode: 'on-change', mirrorFinRst: true, adapter: 'sim' });
  await bed.run(90);
  app = await buildApp({ controller: bed.controller as NonNullable<Bed['controller']>, token: TOKEN });
});
after(async () => {
  await app?.close();
  await bed?.close();
});

describe('API', () => {
  test('health, readiness and metrics', async () => {
    assert.deepEqual((await get('/healthz')).body, { ok: true });
    const ready = await get('/readyz');
    assert.equal(ready.status, 200);
    assert.equal((ready.body as { ready: boolean }).ready, true);
    const metrics = (await get('/metrics')).text;
    assert.match(metrics, /# TYPE flowpin_mirror_events_total counter/);
    assert.match(metrics, /flowpin_mirror_events_total\{switch="sw1",kind="syn"\} \d+/);
    assert.match(metrics, /flowpin_flows\{switch="sw1"\} \d+/);
  });

  test('switches and VIPs with nexthop states and tracked flows', async () => {
    const sw = await get('/api/v1/switches');
    assert.equal((sw.body as { switches: { name: string; adapter: string }[] }).switches[0]?.adapter, 'sim');
    const vips = (await get('/api/v1/switches/sw1/vips')).body as {
      vips: {
        address: string;
        nexthops: { address: string; state: string; tracked: number; pinned: number }[];
      }[];
    };
    const nhs = vips.vips[0]?.nexthops ?? [];
    assert.deepEqual(
      nhs.map((n) => n.address),
      NH,
    );
    assert.ok(nhs.every((n) => n.state === 'active' && n.tracked > 0 && n.pinned === 0));
    const missing = await get('/api/v1/switches/nope/vips');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, {
      error: 'not-found',
      message: "no switch named 'nope'",
      detail: { switch: 'nope' },
    });
  });

  test('mutating calls need the token', async () => {
    assert.equal((await post(`${NHURL(NH[0] as string)}/drain`, { dryRun: true }, {})).status, 401);
    const wrong = await post(
      `${NHURL(NH[0] as string)}/drain`,
      { dryRun: true },
      { authorization: 'Bearer nope' },
    );
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body['error'], 'unauthorized');
  });

  test('bad input is a 400 naming the field; unknown nexthop 404', async () => {
    const bad = await post(`${NHURL(NH[0] as string)}/drain`, { deadlineSeconds: 'soon' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body['field'], 'body.deadlineSeconds');
    const extra = await post(`${NHURL(NH[0] as string)}/drain`, { dryrun: true });
    assert.equal(extra.status, 400);
    const badIp = await post(`/api/v1/switches/sw1/vips/${VIP}/nexthops/not-an-ip/drain`, {});
    assert.equal(badIp.status, 400);
    assert.equal(badIp.body['field'], 'nexthop');
    assert.equal((await post(`${NHURL('10.9.9.9')}/drain`, {})).status, 404);
    const noAddress = await post(`/api/v1/switches/sw1/vips/${VIP}/nexthops`, {});
    assert.equal(noAddress.status, 400);
    assert.equal(noAddress.body['field'], 'body.address');
  });

  test('drain: dry run, the real drain, a conflicting second drain, then completion', async () => {
    const nh = NH[1] as string;
    const dry = await post(`${NHURL(nh)}/drain`, { dryRun: true });
    assert.equal(dry.status, 200);
    assert.equal(dry.body['dryRun'], true);
    assert.ok((dry.body['flowsToPin'] as number) > 0);
    assert.equal(dry.body['freeEntries'], 1500);
    assert.equal(dry.body['atRisk'], 0);
    // Consent given (a change under traffic may put connections in its window: test/consent.test.ts).
    const drain = await post(`${NHURL(nh)}/drain`, { deadlineSeconds: 3600, maxAtRisk: 'unbounded' });
    assert.equal(drain.status, 202);
    assert.equal(drain.body['phase'], 'applied');
    assert.equal(drain.body['pinned'], dry.body['flowsToPin']);
    const again = await post(`${NHURL(nh)}/drain`, {});
    assert.equal(again.status, 409);
    const vips = (await get('/api/v1/switches/sw1/vips')).body as {
      vips: { nexthops: { address: string; state: string; pinned: number }[] }[];
    };
    const v = vips.vips[0]?.nexthops.find((n) => n.address === nh);
    assert.equal(v?.state, 'draining');
    assert.ok((v?.pinned ?? 0) > 0);
    const del = await (app as FastifyInstance).inject({ method: 'DELETE', url: NHURL(nh), headers: auth });
    assert.equal(del.statusCode, 409, 'pinned flows remain');
    const pins = (await get(`/api/v1/pins?vip=${VIP}&nexthop=${nh}&state=installed&limit=5`)).body as {
      total: number;
      pins: { nexthop: string; state: string }[];
    };
    assert.equal(pins.pins.length, 5);
    assert.ok(pins.total >= 5);
    assert.ok(pins.pins.every((p) => p.nexthop === nh && p.state === 'installed'));
    // Traffic goes on; the drained nexthop's connections end, their pins go, the drain completes.
    await (bed as Bed).run(1300, 5000, 60);
    const changes = (await get('/api/v1/switches/sw1/changes')).body as {
      changes: { id: string; phase: string; remaining: number }[];
    };
    const rec = changes.changes.find((c) => c.id === drain.body['id']);
    assert.equal(rec?.phase, 'drained');
    assert.equal(rec?.remaining, 0);
    const state = (
      (await get('/api/v1/switches/sw1/vips')).body as {
        vips: { nexthops: { address: string; state: string }[] }[];
      }
    ).vips[0]?.nexthops.find((n) => n.address === nh);
    assert.equal(state?.state, 'drained');
    assert.equal((bed as Bed).traffic.counters.reset, 0);
  });

  test('undrain, add (with dry run) and delete', async () => {
    const nh = NH[1] as string;
    const und = await post(`${NHURL(nh)}/undrain`, { maxAtRisk: 'unbounded' });
    assert.equal(und.status, 200);
    assert.deepEqual(und.body, { address: nh, state: 'active' });
    assert.deepEqual((bed as Bed).sim.sw.vips.get(VIP)?.group.members(), [NH[0], NH[2], NH[3], nh]);
    const dry = await post(`/api/v1/switches/sw1/vips/${VIP}/nexthops`, { address: FIFTH, dryRun: true });
    assert.equal(dry.status, 200);
    assert.equal(dry.body['dryRun'], true);
    const add = await post(`/api/v1/switches/sw1/vips/${VIP}/nexthops`, {
      address: FIFTH,
      maxAtRisk: 'unbounded',
    });
    assert.equal(add.status, 201);
    assert.equal(add.body['phase'], 'complete');
    assert.equal(
      (await post(`/api/v1/switches/sw1/vips/${VIP}/nexthops`, { address: FIFTH, maxAtRisk: 'unbounded' }))
        .status,
      409,
    );
    const inGroup = await (app as FastifyInstance).inject({
      method: 'DELETE',
      url: NHURL(FIFTH),
      headers: auth,
    });
    assert.equal(inGroup.statusCode, 409);
    // Forcing does not remove a member the switch still routes to: it must be drained first.
    const forced = await (app as FastifyInstance).inject({
      method: 'DELETE',
      url: `${NHURL(FIFTH)}?maxAtRisk=unbounded`,
      headers: auth,
    });
    assert.equal(forced.statusCode, 409);
    assert.ok((bed as Bed).sim.sw.vips.get(VIP)?.group.members().includes(FIFTH));
  });

  test('flows: filters by nexthop and client, paging', async () => {
    await (bed as Bed).run(20);
    const all = (await get('/api/v1/flows?limit=3')).body as {
      total: number;
      flows: { src: string; nexthop: string; switch: string }[];
    };
    assert.equal(all.flows.length, 3);
    assert.ok(all.total > 3);
    const client = all.flows[0]?.src as string;
    const byClient = (await get(`/api/v1/flows?client=${client}`)).body as { flows: { src: string }[] };
    assert.ok(byClient.flows.length >= 1 && byClient.flows.every((f) => f.src === client));
    const byNh = (await get(`/api/v1/flows?switch=sw1&vip=${VIP}&nexthop=${NH[0]}&limit=1000`)).body as {
      total: number;
      flows: { nexthop: string }[];
    };
    assert.ok(byNh.total > 0 && byNh.flows.every((f) => f.nexthop === NH[0]));
    const page2 = (await get('/api/v1/flows?limit=2&offset=2')).body as { flows: unknown[] };
    assert.equal(page2.flows.length, 2);
    assert.equal((await get('/api/v1/flows?limit=0')).status, 400);
  });

  test('OpenAPI describes the routes from their schemas', async () => {
    const doc = (await get('/openapi.json')).body as {
      openapi: string;
      paths: Record<string, Record<string, { summary?: string; security?: unknown[] }>>;
    };
    assert.equal(doc.openapi, '3.0.3');
    const drain = doc.paths['/api/v1/switches/{switch}/vips/{vip}/nexthops/{nexthop}/drain']?.['post'];
    assert.match(drain?.summary ?? '', /Drain a nexthop/);
    assert.ok(drain?.security, 'marked as needing the token');
    assert.ok(doc.paths['/api/v1/flows']?.['get']);
  });
});

test('end to end through a real listener', async () => {
  const real = await buildApp({
    controller: (bed as Bed).controller as NonNullable<Bed['controller']>,
    token: TOKEN,
  });
  const base = await listen(real, '127.0.0.1', 0);
  try {
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    const dry = await fetch(`${base}${NHURL(NH[3] as string)}/drain`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ dryRun: true }),
    });
    assert.equal(dry.status, 200);
    assert.equal(((await dry.json()) as { dryRun: boolean }).dryRun, true);
    const flows = (await (await fetch(`${base}/api/v1/flows?limit=1`)).json()) as { flows: unknown[] };
    assert.equal(flows.flows.length, 1);
  } finally {
    await real.close();
  }
});
