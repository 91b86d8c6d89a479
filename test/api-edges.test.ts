// The API's edges: token roles (read, operator) checked before the body is read, the failure
// limit per address (429), no token in the logs (a real pino logger writing to a file), strict
// body types, every error in the documented shape (404, 408, 413, 414, 431, router errors)
// without echoing oversized input, no CORS headers, /docs served locally, the OpenAPI document
// listing every route with its schemas, pin states as the README names them, and the start
// command's hint.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { buildApp, type AppDeps } from '../controller/api/app.js';
import { listen } from '../controller/api/listen.js';
import { startHint } from '../cli/start.js';
import { Bed, NH, VIP } from './helpers/bed.js';

const OP = 'operator-token-7f3a9c';
const RD = 'read-token-51e2b8';
const NHURL = (nh: string) => `/api/v1/switches/sw1/vips/${VIP}/nexthops/${nh}`;
let bed: Bed | undefined;
let dir = '';

const controller = () => (bed as Bed).controller as NonNullable<Bed['controller']>;
const make = (over: Partial<AppDeps> = {}) =>
  buildApp({ controller: controller(), token: OP, logger: pino({ level: 'silent' }), ...over });

/** The documented error shape: error and message strings, field a string if present, nothing else. */
export function assertErrorShape(r: { statusCode: number; body: string }): void {
  const b = JSON.parse(r.body) as Record<string, unknown>;
  assert.equal(typeof b['error'], 'string', r.body);
  assert.equal(typeof b['message'], 'string', r.body);
  if ('field' in b) assert.equal(typeof b['field'], 'string');
  if ('detail' in b) assert.equal(typeof b['detail'], 'object');
  for (const k of Object.keys(b))
    assert.ok(['error', 'message', 'field', 'detail'].includes(k), `unexpected key ${k}`);
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'flowpin-api-'));
  bed = await Bed.create({ pinMode: 'on-change', adapter: 'sim' });
  await bed.run(30);
});
after(async () => {
  await bed?.close();
  rmSync(dir, { recursive: true, force: true });
});

test(
  'roles: reads open without read tokens; with one, reads need a token; changes need operator (403 for read)',
  { timeout: 60_000 },
  async () => {
    const open = await make();
    try {
      assert.equal((await open.inject({ url: '/api/v1/switches' })).statusCode, 200);
    } finally {
      await open.close();
    }
    const app = await make({ auth: { tokens: [{ role: 'read', token: RD }], readsNeedToken: true } });
    try {
      const noToken = await app.inject({ url: '/api/v1/switches' });
      assert.equal(noToken.statusCode, 401);
      assertErrorShape(noToken);
      assert.equal(
        (await app.inject({ url: '/api/v1/switches', headers: { authorization: `Bearer ${RD}` } }))
          .statusCode,
        200,
      );
      assert.equal(
        (await app.inject({ url: '/api/v1/flows?limit=1', headers: { authorization: `Bearer ${OP}` } }))
          .statusCode,
        200,
      );
      assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'probes stay open');
      const readDrain = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[0] as string)}/drain`,
        headers: { authorization: `Bearer ${RD}` },
        payload: { dryRun: true },
      });
      assert.equal(readDrain.statusCode, 403);
      assert.equal(readDrain.json<{ error: string }>().error, 'forbidden');
      const opDrain = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[0] as string)}/drain`,
        headers: { authorization: `bearer ${OP}` },
        payload: { dryRun: true },
      });
      assert.equal(opDrain.statusCode, 200, opDrain.body);
      // A token that is a prefix or an extension of the right one is wrong.
      for (const t of [OP.slice(0, -1), `${OP}x`, '', ' '])
        assert.equal(
          (
            await app.inject({
              method: 'POST',
              url: `${NHURL(NH[0] as string)}/drain`,
              headers: { authorization: `Bearer ${t}` },
              payload: { dryRun: true },
            })
          ).statusCode,
          401,
        );
    } finally {
      await app.close();
    }
  },
);

test(
  'auth before validation: a bad body without a token is 401, not 400; malformed JSON too',
  { timeout: 60_000 },
  async () => {
    const app = await make();
    try {
      const r = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[0] as string)}/drain`,
        payload: { dryRun: 'yes', junk: 1 },
      });
      assert.equal(r.statusCode, 401);
      const j = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[0] as string)}/drain`,
        headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
        payload: '{"dryRun":',
      });
      assert.equal(j.statusCode, 401);
      const withToken = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[0] as string)}/drain`,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${OP}` },
        payload: '{"dryRun":',
      });
      assert.equal(withToken.statusCode, 400);
      assertErrorShape(withToken);
    } finally {
      await app.close();
    }
  },
);

test(
  'failed authentication is limited per token tried and per address: a stale token does not lock out the right one from a shared address',
  { timeout: 60_000 },
  async () => {
    const app = await make({ authLimit: { maxFailures: 3, maxAddressFailures: 6, windowMs: 60_000 } });
    try {
      const drain = (token: string, remoteAddress: string) =>
        app.inject({
          method: 'POST',
          url: `${NHURL(NH[0] as string)}/drain`,
          remoteAddress,
          headers: { authorization: `Bearer ${token}` },
          payload: { dryRun: true },
        });
      // One user's script repeats a stale token from the bastion: that token is limited, everywhere...
      for (let i = 0; i < 3; i++) assert.equal((await drain('stale', '198.51.100.7')).statusCode, 401);
      const limited = await drain('stale', '198.51.100.7');
      assert.equal(limited.statusCode, 429);
      assertErrorShape(limited);
      assert.match(
        limited.json<{ message: string }>().message,
        /this token failed too many times; retry in \d+ s/,
      );
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      assert.equal(
        (await drain('stale', '198.51.100.9')).statusCode,
        429,
        'the token, not only the address, is limited',
      );
      // ...while the right token from the same address still works.
      assert.equal(
        (await drain(OP, '198.51.100.7')).statusCode,
        200,
        'the right token from the shared address is not refused',
      );
      // Guessing (a new token each time) from one address meets the address bound: then the address is
      // refused, right token or not.
      for (let i = 0; i < 3; i++) assert.equal((await drain(`guess-${i}`, '198.51.100.7')).statusCode, 401);
      const guessed = await drain(OP, '198.51.100.7');
      assert.equal(guessed.statusCode, 429);
      assert.match(
        guessed.json<{ message: string }>().message,
        /too many failed authentications from this address/,
      );
      assert.equal((await drain(OP, '198.51.100.8')).statusCode, 200, 'another address is not limited');
    } finally {
      await app.close();
    }
  },
);

test(
  'address filters that are no address are 400s naming the parameter; a 415 says to send application/json',
  { timeout: 60_000 },
  async () => {
    const app = await make();
    try {
      for (const [url, field] of [
        ['/api/v1/flows?client=abc', 'querystring.client'],
        ['/api/v1/pins?vip=abc', 'querystring.vip'],
        ['/api/v1/flows?nexthop=10.0.1', 'querystring.nexthop'],
      ] as const) {
        const r = await app.inject({ url });
        assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
        assertErrorShape(r);
        assert.equal(r.json<{ field: string }>().field, field);
      }
      assert.equal((await app.inject({ url: '/api/v1/flows?client=203.0.113.9' })).statusCode, 200);
      const t = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[0] as string)}/drain`,
        headers: { authorization: `Bearer ${OP}`, 'content-type': 'text/plain' },
        payload: 'dryRun',
      });
      assert.equal(t.statusCode, 415);
      assert.match(t.json<{ message: string }>().message, /Content-Type: application\/json/);
    } finally {
      await app.close();
    }
  },
);

test(
  'tokens never reach the log: requests with known tokens through a real pino logger',
  { timeout: 60_000 },
  async () => {
    const file = path.join(dir, 'api.log');
    const dest = pino.destination({ dest: file, sync: true });
    const app = await make({
      logger: pino({ level: 'trace' }, dest),
      auth: { tokens: [{ role: 'read', token: RD }], readsNeedToken: true },
    });
    try {
      const wrong = 'wrong-token-d41d8c';
      for (const t of [OP, RD, wrong]) {
        await app.inject({
          method: 'POST',
          url: `${NHURL(NH[0] as string)}/drain`,
          headers: { authorization: `Bearer ${t}` },
          payload: { dryRun: 'no' },
        });
        await app.inject({
          method: 'POST',
          url: `${NHURL('not-an-ip')}/drain`,
          headers: { authorization: `Bearer ${t}` },
          payload: {},
        });
        await app.inject({ url: `/api/v1/flows?limit=1`, headers: { authorization: `Bearer ${t}` } });
        await app.inject({ url: '/nope', headers: { authorization: `Bearer ${t}` } });
      }
    } finally {
      await app.close();
      dest.flushSync();
    }
    const text = readFileSync(file, 'utf8');
    assert.match(text, /API authentication failed/, 'the failures were logged (so the log is the real one)');
    for (const t of [OP, RD, 'wrong-token-d41d8c'])
      assert.equal(text.includes(t), false, `token ${t} found in the log`);
  },
);

test(
  'strict body and query types: no string booleans, no null-to-0, exact numbers in the query',
  { timeout: 60_000 },
  async () => {
    const app = await make();
    try {
      const post = (body: unknown) =>
        app.inject({
          method: 'POST',
          url: `${NHURL(NH[0] as string)}/drain`,
          headers: { authorization: `Bearer ${OP}`, 'content-type': 'application/json' },
          payload: JSON.stringify(body),
        });
      for (const [body, field] of [
        [{ dryRun: 'true' }, 'body.dryRun'],
        [{ dryRun: 1 }, 'body.dryRun'],
        [{ dryRun: null }, 'body.dryRun'],
        [{ deadlineSeconds: null, dryRun: true }, 'body.deadlineSeconds'],
        [{ deadlineSeconds: '5', dryRun: true }, 'body.deadlineSeconds'],
        [{ acceptRisk: 'false', dryRun: true }, 'body.acceptRisk'],
        [{ dryRun: true, extra: 1 }, 'body.extra'],
      ] as const) {
        const r = await post(body);
        assert.equal(r.statusCode, 400, JSON.stringify(body));
        assertErrorShape(r);
        assert.equal(r.json<{ field: string }>().field, field, JSON.stringify(body));
      }
      assert.equal((await post({ dryRun: true, deadlineSeconds: 5 })).statusCode, 200);
      for (const q of [
        'limit=abc',
        'limit=5.5',
        'limit=0',
        'limit=1e3',
        'offset=-1',
        'limit=',
        'bogus=1',
        'limit=1&limit=2',
      ]) {
        const r = await app.inject({ url: `/api/v1/flows?${q}` });
        assert.equal(r.statusCode, 400, q);
        assertErrorShape(r);
      }
      assert.equal((await app.inject({ url: '/api/v1/flows?limit=7' })).json<{ limit: number }>().limit, 7);
      const force = await app.inject({
        method: 'DELETE',
        url: `${NHURL(NH[0] as string)}?force=1`,
        headers: { authorization: `Bearer ${OP}` },
      });
      assert.equal(force.statusCode, 400);
      assert.equal(force.json<{ field: string }>().field, 'querystring.force');
      const undrain = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[0] as string)}/undrain`,
        headers: { authorization: `Bearer ${OP}` },
        payload: { acceptRisk: 'yes' },
      });
      assert.equal(undrain.json<{ field: string }>().field, 'body.acceptRisk');
    } finally {
      await app.close();
    }
  },
);

test(
  'errors in the documented shape without echoing oversized input: 404, 413, 414, router errors; no CORS',
  { timeout: 60_000 },
  async () => {
    const app = await make();
    try {
      const long = 'a'.repeat(5000);
      const check = (r: LightMyRequestResponse, status: number) => {
        assert.equal(r.statusCode, status, r.body);
        assertErrorShape(r);
        assert.ok(r.body.length < 600, `body of ${r.body.length} characters`);
        assert.equal(r.body.includes('a'.repeat(200)), false, 'the long input is not echoed');
      };
      check(await app.inject({ url: `/nope/${long}` }), 404);
      check(await app.inject({ url: `/api/v1/switches/${long}/vips` }), 414);
      check(
        await app.inject({
          method: 'POST',
          url: `${NHURL(long)}/drain`,
          headers: { authorization: `Bearer ${OP}` },
          payload: {},
        }),
        414,
      );
      check(
        await app.inject({
          method: 'POST',
          url: `${NHURL(NH[0] as string)}/drain`,
          headers: { authorization: `Bearer ${OP}`, 'content-type': 'application/json' },
          payload: JSON.stringify({ dryRun: true, pad: long.repeat(40) }),
        }),
        413,
      );
      check(
        await app.inject({
          method: 'POST',
          url: `${NHURL(NH[0] as string)}/drain`,
          headers: { authorization: `Bearer ${OP}`, 'content-type': 'application/json' },
          payload: `{"${long}`,
        }),
        400,
      );
      check(
        await app.inject({
          method: 'POST',
          url: `/api/v1/switches/sw1/vips/${VIP}/nexthops`,
          headers: { authorization: `Bearer ${OP}` },
          payload: { address: long },
        }),
        400,
      );
      check(
        await app.inject({
          method: 'POST',
          url: `${NHURL(NH[0] as string)}/drain`,
          headers: { authorization: `Bearer ${OP}`, 'content-type': 'text/plain' },
          payload: long,
        }),
        415,
      );
      check(
        await app.inject({
          method: 'POST',
          url: `${NHURL(NH[0] as string)}/drain`,
          headers: { authorization: `Bearer ${OP}`, 'content-type': 'application/xml' },
          payload: long,
        }),
        415,
      );
      const pre = await app.inject({
        method: 'OPTIONS',
        url: '/api/v1/switches',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      check(pre, 404);
      const get = await app.inject({ url: '/api/v1/switches', headers: { origin: 'https://evil.example' } });
      assert.equal(
        Object.keys(get.headers).some((h) => h.startsWith('access-control-')),
        false,
        'no CORS headers',
      );
    } finally {
      await app.close();
    }
  },
);

/** Sends raw bytes to a listener and returns what comes back before the server closes. */
function raw(port: number, data: string, holdMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, holdMs);
    s.on('connect', () => s.write(data));
    s.on('data', (d) => (got += d.toString()));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      if (got === '') reject(e);
      else resolve(got);
    });
  });
}

test(
  'through a real listener: 431 for oversized headers, 408 for a request too slow, both in the error shape',
  { timeout: 60_000 },
  async () => {
    const app = await make({ auth: { tokens: [], readsNeedToken: false, requestTimeoutMs: 300 } });
    const base = await listen(app, '127.0.0.1', 0);
    const port = Number(new URL(base).port);
    try {
      const body = (resp: string) =>
        JSON.parse(resp.slice(resp.indexOf('\r\n\r\n') + 4)) as { error: string; message: string };
      const big = await raw(
        port,
        `GET /api/v1/switches HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
        5000,
      );
      assert.match(big, /^HTTP\/1\.1 431 /);
      assert.equal(body(big).error, 'headers-too-large');
      assert.equal(big.includes('bbbbbbbbbb'), false);
      const longUrl = await raw(port, `GET /${'u'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 5000);
      assert.match(longUrl, /^HTTP\/1\.1 431 /);
      const slow = await raw(port, 'GET /api/v1/switches HTTP/1.1\r\nHost: x\r\n', 8000);
      assert.match(slow, /^HTTP\/1\.1 408 /);
      assert.equal(body(slow).error, 'request-timeout');
    } finally {
      await app.close();
    }
  },
);

test(
  'the API document: every route with its schemas, operator routes marked; /docs served from the package',
  { timeout: 60_000 },
  async () => {
    const app = await make();
    try {
      const doc = (await app.inject({ url: '/openapi.json' })).json<{
        openapi: string;
        paths: Record<
          string,
          Record<
            string,
            {
              parameters?: { name: string; in: string }[];
              requestBody?: { content: Record<string, { schema: unknown }> };
              responses: Record<string, unknown>;
              security?: unknown[];
            }
          >
        >;
      }>();
      assert.match(doc.openapi, /^3\./);
      // Every route fastify serves (apart from the document's own pages and the dashboard's files).
      const routes: { url: string; method: string }[] = [];
      const stack: string[] = [];
      for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
        const m = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
        if (m === null) continue;
        stack.length = (m[1] ?? '').length / 4;
        const url = stack.join('') + (m[2] ?? '');
        stack.push(m[2] ?? '');
        for (const method of (m[3] ?? '').split(', '))
          if (method !== '' && method !== 'HEAD') routes.push({ url, method });
      }
      const api = routes.filter(
        (r) => r.url.startsWith('/api/') || ['/healthz', '/readyz', '/metrics'].includes(r.url),
      );
      assert.ok(api.length >= 12, `routes seen: ${api.length}`);
      for (const r of api) {
        const p = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
        const op = doc.paths[p]?.[r.method.toLowerCase()];
        assert.ok(op, `${r.method} ${p} is in the document`);
        for (const name of [...r.url.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]))
          assert.ok(
            op.parameters?.some((x) => x.name === name && x.in === 'path'),
            `${p}: path parameter ${name}`,
          );
        if (r.method === 'POST')
          assert.ok(op.requestBody?.content['application/json']?.schema, `${p}: body schema`);
        if (r.url.startsWith('/api/v1/') && r.url !== '/api/v1/events')
          assert.ok(
            (op.responses['400'] && op.responses['200'] !== undefined) || op.responses['202'] !== undefined,
            `${p}: responses`,
          );
        assert.equal(
          op.security !== undefined,
          r.method !== 'GET',
          `${r.method} ${p}: marked as needing the token exactly when it changes something`,
        );
      }
      const ui = await app.inject({ url: '/docs/' });
      assert.equal(ui.statusCode, 200);
      assert.match(ui.body, /swagger/i);
      assert.doesNotMatch(ui.body, /<script[^>]+src="https?:/, 'no script from a CDN');
      assert.equal((await app.inject({ url: '/docs/static/swagger-ui-bundle.js' })).statusCode, 200);
      assert.ok([200, 302].includes((await app.inject({ url: '/docs' })).statusCode));
    } finally {
      await app.close();
    }
  },
);

test(
  'pins by state as the README names them: pending, installed, failed; desired is pending and installed',
  { timeout: 60_000 },
  async () => {
    const app = await make();
    try {
      // A drain pins the nexthop's live flows.
      const drain = await app.inject({
        method: 'POST',
        url: `${NHURL(NH[3] as string)}/drain`,
        headers: { authorization: `Bearer ${OP}` },
        payload: { maxAtRisk: 'unbounded' },
      });
      assert.equal(drain.statusCode, 202, drain.body);
      const totals: Record<string, number> = {};
      for (const state of ['pending', 'installed', 'failed', 'desired']) {
        const r = await app.inject({ url: `/api/v1/pins?state=${state}&limit=1000` });
        assert.equal(r.statusCode, 200, state);
        const body = r.json<{ total: number; pins: { state: string }[] }>();
        totals[state] = body.total;
        if (state !== 'desired')
          assert.ok(
            body.pins.every((p) => p.state === state),
            state,
          );
        else assert.ok(body.pins.every((p) => p.state === 'pending' || p.state === 'installed'));
      }
      assert.ok((totals['desired'] ?? 0) > 0, 'the drain made pins');
      assert.equal((totals['pending'] ?? 0) + (totals['installed'] ?? 0), totals['desired']);
      assert.equal((await app.inject({ url: '/api/v1/pins?state=programmed' })).statusCode, 400);
    } finally {
      await app.close();
    }
  },
);

test(
  'flows by VIP and nexthop come most recently seen first, like all flows',
  { timeout: 60_000 },
  async () => {
    const app = await make();
    try {
      for (const url of [
        `/api/v1/flows?vip=${VIP}&nexthop=${NH[0] as string}&limit=1000`,
        '/api/v1/flows?limit=1000',
      ]) {
        const flows = (await app.inject({ url })).json<{ flows: { lastSeen: number }[] }>().flows;
        assert.ok(flows.length > 1, url);
        for (let i = 1; i < flows.length; i++)
          assert.ok(
            (flows[i - 1]?.lastSeen ?? 0) >= (flows[i]?.lastSeen ?? 0),
            `${url}: ${i}: ${flows[i - 1]?.lastSeen} < ${flows[i]?.lastSeen}`,
          );
      }
    } finally {
      await app.close();
    }
  },
);

test('the start hint works as pasted: the generated token itself, or $FLOWPIN_TOKEN when it came from there', () => {
  const generated = startHint('http://127.0.0.1:8080', 'sim1', VIP, NH[1] as string, 'abc123');
  assert.match(generated, /-H 'Authorization: Bearer abc123'/);
  assert.doesNotMatch(generated, /\$FLOWPIN_TOKEN/);
  assert.match(
    startHint('http://127.0.0.1:8080', 'sim1', VIP, NH[1] as string, undefined),
    /"Authorization: Bearer \$FLOWPIN_TOKEN"/,
  );
});
