// Property tests over the API (fast-check): random methods, paths, query strings, headers and
// bodies never give a 500 or a crash, never change state without a valid operator token, and
// every error body has the documented shape. The seed is printed; FLOWPIN_SEED=<seed> replays it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import pino from 'pino';
import { buildApp } from '../controller/api/app.js';
import { Bed, NH, VIP } from './helpers/bed.js';

const OP = 'prop-operator-token';
const RD = 'prop-read-token';
const seed =
  process.env['FLOWPIN_SEED'] !== undefined ? Number(process.env['FLOWPIN_SEED']) : Date.now() % 2 ** 31;
let bed: Bed | undefined;
let app: FastifyInstance | undefined;

before(async () => {
  console.log(`api-property seed ${seed} (FLOWPIN_SEED=${seed} replays it)`);
  bed = await Bed.create({ pinMode: 'on-change', adapter: 'sim' });
  await bed.run(20);
  app = await buildApp({
    controller: bed.controller as NonNullable<Bed['controller']>,
    token: OP,
    auth: { tokens: [{ role: 'read', token: RD }], readsNeedToken: true },
    authLimit: { maxFailures: 1e9, windowMs: 1000 },
    logger: pino({ level: 'silent' }),
  });
});
after(async () => {
  await app?.close();
  await bed?.close();
});

/** What a change would alter: the switch's group, the controller's pins and change records. */
function state(): string {
  const b = bed as Bed;
  const c = b.controller as NonNullable<Bed['controller']>;
  return JSON.stringify({
    members: b.sim.sw.vips.get(VIP)?.group.members(),
    pins: c.pins({}, 0, 1e9).total,
    changes: c.changeManager('sw1').records.length,
    states: [...NH].map((n) => c.changeManager('sw1').stateOf(c.runtime('sw1').vips.get(VIP) as never, n)),
  });
}

const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    '0',
    '1',
    '-1',
    '5.5',
    'true',
    'false',
    'null',
    '1e3',
    'NaN',
    ' ',
    '%',
    '..',
    'a'.repeat(300),
  ),
);
const seg = fc
  .oneof(
    fc.constantFrom(
      'sw1',
      'nope',
      VIP,
      ...NH,
      '10.0.1.5',
      '::1',
      '0.0.0.0',
      '::ffff:10.0.1.1',
      '10.0.1.1%eth0',
      'not-an-ip',
    ),
    text,
  )
  .map((s) => encodeURIComponent(s));
const routePath = fc.oneof(
  fc.tuple(seg, seg, seg).map(([s, v, n]) => `/api/v1/switches/${s}/vips/${v}/nexthops/${n}/drain`),
  fc.tuple(seg, seg, seg).map(([s, v, n]) => `/api/v1/switches/${s}/vips/${v}/nexthops/${n}/undrain`),
  fc.tuple(seg, seg, seg).map(([s, v, n]) => `/api/v1/switches/${s}/vips/${v}/nexthops/${n}`),
  fc.tuple(seg, seg).map(([s, v]) => `/api/v1/switches/${s}/vips/${v}/nexthops`),
  seg.map((s) => `/api/v1/switches/${s}/vips`),
  seg.map((s) => `/api/v1/switches/${s}/changes`),
  fc.constantFrom(
    '/api/v1/switches',
    '/api/v1/flows',
    '/api/v1/pins',
    '/healthz',
    '/readyz',
    '/metrics',
    '/openapi.json',
    '/',
    '/docs',
    '/api',
    '/api/v1',
    '//api/v1/switches',
    '/api/v1/switches/',
  ),
  fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
);
const query = fc
  .dictionary(
    fc.oneof(
      fc.constantFrom('limit', 'offset', 'state', 'force', 'vip', 'nexthop', 'client', 'switch', 'dryRun'),
      fc.string({ maxLength: 6 }),
    ),
    text,
    { maxKeys: 4 },
  )
  .map((q) =>
    Object.entries(q)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&'),
  );
const body = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        dryRun: fc.jsonValue({ maxDepth: 1 }),
        deadlineSeconds: fc.jsonValue({ maxDepth: 1 }),
        acceptRisk: fc.jsonValue({ maxDepth: 1 }),
        address: fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom(...NH, '10.0.1.5')),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 40 }),
);
const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=utf-8',
  'multipart/form-data',
  '',
);
const method = fc.constantFrom<InjectOptions['method']>(
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'HEAD',
);

/** Changes that would go through with an operator token: real nexthops, bodies that accept the risk. */
const nhUrl = (n: string) => `/api/v1/switches/sw1/vips/${VIP}/nexthops/${n}`;
const realChange = fc.record({
  method: fc.constantFrom<InjectOptions['method']>('POST', 'DELETE'),
  path: fc.constantFrom(
    ...NH.flatMap((n) => [`${nhUrl(n)}/drain`, `${nhUrl(n)}/undrain`, nhUrl(n)]),
    `/api/v1/switches/sw1/vips/${VIP}/nexthops`,
  ),
  query: fc.constantFrom('', 'maxAtRisk=unbounded'),
  body: fc.constantFrom(
    undefined,
    '{"maxAtRisk":"unbounded"}',
    '{"address":"10.0.1.5","maxAtRisk":"unbounded"}',
    '{}',
    '{"deadlineSeconds":0,"maxAtRisk":"unbounded"}',
  ),
  contentType: fc.constantFrom(undefined, 'application/json'),
});

function request(auth: fc.Arbitrary<string | undefined>) {
  const extra = fc.dictionary(fc.constantFrom('x-forwarded-for', 'origin', 'accept', 'x-a'), text, {
    maxKeys: 2,
  });
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ method, path: routePath, query, body, contentType, auth, extra }) },
    {
      weight: 1,
      arbitrary: fc.tuple(realChange, auth, extra).map(([r, a, e]) => ({ ...r, auth: a, extra: e })),
    },
  );
}

type Req = {
  method: InjectOptions['method'];
  path: string;
  query: string;
  body: string | undefined;
  contentType: string | undefined;
  auth: string | undefined;
  extra: Record<string, string>;
};

async function send(r: Req) {
  // The event stream never ends by itself; every other route is fair game.
  const path = r.path.startsWith('/api/v1/events') ? '/api/v1/switches' : r.path;
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(r.extra).map(([k, v]) => [k, v.replace(/[^\x20-\x7e]/g, '')])),
  };
  if (r.auth !== undefined) headers['authorization'] = r.auth;
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  const res = await (app as FastifyInstance).inject({
    method: r.method,
    url: `${path}${r.query === '' ? '' : `?${r.query}`}`,
    headers,
    ...(r.body === undefined ? {} : { payload: r.body }),
  });
  assert.notEqual(res.statusCode, 500, `${r.method} ${path}: ${res.body.slice(0, 300)}`);
  assert.ok(res.statusCode < 500 || res.statusCode === 503, `${r.method} ${path}: ${res.statusCode}`);
  if (res.statusCode >= 400 && r.method !== 'HEAD') {
    const b = res.json<Record<string, unknown>>();
    assert.equal(typeof b['error'], 'string', res.body.slice(0, 300));
    assert.equal(typeof b['message'], 'string', res.body.slice(0, 300));
    for (const k of Object.keys(b))
      assert.ok(['error', 'message', 'field', 'detail'].includes(k), `unexpected key ${k}`);
    assert.ok(
      res.body.length < 2000 || b['detail'] !== undefined,
      `error body of ${res.body.length} characters`,
    );
  }
  return res;
}

test(
  'without a valid operator token: no 500, errors in the documented shape, no state change',
  { timeout: 240_000 },
  async () => {
    const auth = fc.constantFrom(
      undefined,
      'Bearer wrong',
      `Bearer ${RD}`,
      `Basic ${Buffer.from(`x:${OP}`).toString('base64')}`,
      `Bearer ${OP}x`,
      `${OP}`,
      'Bearer',
      '',
    );
    const before0 = state();
    await fc.assert(
      fc.asyncProperty(request(auth), async (r) => {
        const s = state();
        await send(r);
        assert.equal(state(), s, 'state changed without an operator token');
      }),
      { seed, numRuns: 400 },
    );
    assert.equal(state(), before0);
  },
);

test(
  'with the operator token, on switches that do not exist: no 500, errors in the documented shape, no state change',
  { timeout: 240_000 },
  async () => {
    const before0 = state();
    const notSw1 = request(fc.constant(`Bearer ${OP}`)).filter((r) => !/\/switches\/sw1(\/|$)/.test(r.path));
    await fc.assert(
      fc.asyncProperty(notSw1, async (r) => {
        await send(r);
      }),
      { seed: seed + 1, numRuns: 300 },
    );
    assert.equal(state(), before0);
  },
);
