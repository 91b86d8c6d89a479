// The dashboard's server side: GET / serves the built page and its bundle (everything local),
// and GET /api/v1/events streams snapshots to every open page from one timer: with several
// pages open, snapshots are built once per tick, not once per page, and the timer stops when
// the last page goes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../controller/api/app.js';
import type { EventHub } from '../controller/api/events.js';
import { listen } from '../controller/api/listen.js';
import { Bed, NH, VIP } from './helpers/bed.js';
import { until } from './helpers/demo.js';

interface Snap {
  at: number;
  ready: boolean;
  switches: {
    name: string;
    pins: { capacity: number };
    vips: { address: string; nexthops: { address: string; state: string; tracked: number }[] }[];
    changes: unknown[];
  }[];
  simulator: { opened: number; closed: number; reset: number; active: number } | null;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<never>((_r, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref()),
  ]);

/** Reads server-sent snapshots from a stream until aborted. */
function reader(url: string, into: Snap[]): AbortController {
  const ac = new AbortController();
  void (async () => {
    const res = await fetch(url, { signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    let buf = '';
    const dec = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = /^data: (.*)$/m.exec(ev)?.[1];
        if (/^event: snapshot$/m.test(ev) && data !== undefined) into.push(JSON.parse(data) as Snap);
      }
    }
  })().catch((err: unknown) => {
    if (!ac.signal.aborted) throw err;
  });
  return ac;
}

test('dashboard files and server-sent snapshots from one timer', { timeout: 60_000 }, async () => {
  const bed = await Bed.create({ pinMode: 'on-change', adapter: 'sim' });
  let hub: EventHub | undefined;
  let streams: AbortController[] = [];
  const counters = { opened: 10, closed: 2, reset: 0, active: 8 };
  const app = await buildApp({
    controller: bed.controller as NonNullable<Bed['controller']>,
    token: 't',
    eventIntervalMs: 100,
    simulator: () => counters,
    onEventHub: (h) => (hub = h),
  });
  try {
    await bed.run(60);
    const base = await listen(app, '127.0.0.1', 0);

    // The page and its bundle, served locally; no remote script or style.
    const index = await fetch(`${base}/`);
    assert.equal(index.status, 200);
    const html = await index.text();
    assert.match(html, /<script type="module" src="\/app\.js"><\/script>/);
    assert.doesNotMatch(html, /https?:\/\//);
    const js = await fetch(`${base}/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.ok((await js.text()).length > 5000, 'the bundle has Preact and the page in it');
    assert.equal((await fetch(`${base}/style.css`)).status, 200);

    // Three pages open: each gets the same snapshots, built once per tick.
    const pages: Snap[][] = [[], [], []];
    assert.equal(hub?.clients, 0);
    streams = pages.map((p) => reader(`${base}/api/v1/events`, p));
    await until(() => hub?.clients === 3, 5000, 'three pages connected');
    const builtAt = hub?.built ?? 0;
    const t0 = Date.now();
    await until(() => pages.every((p) => p.length >= 12), 10_000, 'a dozen snapshots on every page');
    const ticks = (Date.now() - t0) / 100;
    const built = (hub?.built ?? 0) - builtAt;
    assert.ok(
      built <= ticks + 2,
      `${built} snapshots built in ${ticks} ticks for three pages: one per tick expected`,
    );
    const shared = (pages[0] ?? []).slice(1, -1).map((x) => x.at);
    assert.ok(
      shared.some((at) => pages.every((p) => p.some((x) => x.at === at))),
      'every page receives the same snapshot of a tick',
    );

    const s = pages[0]?.[pages[0].length - 1] as Snap;
    assert.equal(s.ready, true);
    assert.equal(s.switches[0]?.name, 'sw1');
    assert.equal(s.switches[0]?.pins.capacity, 1500);
    assert.deepEqual(
      s.switches[0]?.vips[0]?.nexthops.map((n) => n.address),
      NH,
    );
    assert.equal(s.switches[0]?.vips[0]?.address, VIP);
    assert.ok(s.switches[0]?.vips[0]?.nexthops.every((n) => n.state === 'active' && n.tracked > 0));
    assert.deepEqual(s.simulator, counters);

    // A change shows in the next snapshots.
    const drain = await app.inject({
      method: 'POST',
      url: `/api/v1/switches/sw1/vips/${VIP}/nexthops/${NH[1]}/drain`,
      headers: { authorization: 'Bearer t' },
      payload: { maxAtRisk: 'unbounded' },
    });
    assert.equal(drain.statusCode, 202, drain.body);
    await until(
      () =>
        pages[1]?.at(-1)?.switches[0]?.vips[0]?.nexthops.find((n) => n.address === NH[1])?.state ===
        'draining',
      5000,
      'the drain in a snapshot',
    );
    assert.equal(pages[1]?.at(-1)?.switches[0]?.changes.length, 1);

    // The last page gone: the timer stops.
    for (const a of streams) a.abort();
    await until(() => hub?.clients === 0, 5000, 'pages disconnected');
    const after = hub?.built ?? 0;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(hub?.built, after, 'no snapshot built with no page open');

    // A page still open does not keep the server from closing.
    const late: Snap[] = [];
    streams = [reader(`${base}/api/v1/events`, late)];
    await until(() => late.length > 0, 5000, 'a late page');
    await withTimeout(app.close(), 5000, 'closing with a page open');
    assert.equal(hub?.clients, 0);
  } finally {
    for (const a of streams) a.abort();
    await app.close();
    await bed.close();
  }
});
