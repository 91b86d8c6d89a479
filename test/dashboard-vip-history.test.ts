// The per-VIP view of the last hour in a real browser (Debian's chromium through playwright-core)
// against a running `flowpin start`: the server samples each VIP's tracked and pinned
// connections every 10 s (GET .../vips/:vip/history), the page draws them as two lines with the
// figures now, and a drain's pins show on the pinned line once sampled; the change's row says who
// asked for it and the bound they gave. Screenshot in test-results/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, startDemo, until } from './helpers/demo.js';
import { repoRoot, skipUnless } from './helpers/tools.js';

const shots = path.join(repoRoot, 'test-results');
const VIP = '192.0.2.80';

interface History {
  intervalS: number;
  spanS: number;
  now: { t: number; live: number; pinned: number };
  samples: { t: number; live: number; pinned: number }[];
}

test(
  "dashboard: each VIP's tracked and pinned connections over the last hour, sampled by the server",
  { skip: skipUnless(haveChromium(), 'chromium'), timeout: 180_000 },
  async () => {
    mkdirSync(shots, { recursive: true });
    const demo = await startDemo('vip-history');
    let browser: Browser | undefined;
    try {
      const history = async (): Promise<History> =>
        (await (await fetch(`${demo.api}/api/v1/switches/sim1/vips/${VIP}/history`)).json()) as History;
      assert.equal((await fetch(`${demo.api}/api/v1/switches/sim1/vips/192.0.2.99/history`)).status, 404);
      assert.equal((await fetch(`${demo.api}/api/v1/switches/sim1/vips/nope/history`)).status, 400);
      const first = await until(
        async () => {
          const h = await history();
          return h.samples.length >= 2 ? h : undefined;
        },
        40_000,
        'two samples of the VIP',
      );
      assert.deepEqual([first.intervalS, first.spanS], [10, 3600]);
      assert.ok(
        first.now.live > 0 && first.samples.every((s) => s.t <= first.now.t && s.t > first.now.t - 3_600_000),
        JSON.stringify(first),
      );
      assert.ok(
        first.samples.some((s) => s.live > 0),
        'tracked connections sampled',
      );

      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${demo.api}/`);
      const chart = page.getByTestId(`vip-chart-${VIP}`);
      await chart.locator('svg').waitFor({ timeout: 15_000 });
      assert.ok(Number(await chart.getAttribute('data-samples')) >= 2);
      const pointsOf = async (line: string): Promise<[number, number][]> =>
        ((await chart.getByTestId(line).getAttribute('points')) ?? '')
          .split(' ')
          .filter((p) => p !== '')
          .map((p) => p.split(',').map(Number) as [number, number]);
      const live = await pointsOf('vip-live-line');
      assert.ok(live.length >= 3, `the samples and now: ${live.length} points`);
      assert.ok(
        live.every(
          ([x, y], i) =>
            Number.isFinite(x) && Number.isFinite(y) && (i === 0 || x >= (live[i - 1]?.[0] ?? 0)),
        ),
        'in time order',
      );
      assert.ok(Number(await chart.getByTestId('vip-live').innerText()) > 0);
      // On-change mode: nothing pinned before a change.
      assert.equal(Number(await chart.getByTestId('vip-pinned').innerText()), 0);

      // A drain pins its nexthop's connections: the next samples show them on the pinned line.
      const drain = await fetch(`${demo.api}/api/v1/switches/sim1/vips/${VIP}/nexthops/10.0.1.2/drain`, {
        method: 'POST',
        headers: { authorization: 'Bearer vip-history', 'content-type': 'application/json' },
        body: JSON.stringify({ maxAtRisk: 'unbounded', deadlineSeconds: 600 }),
      });
      assert.equal(drain.status, 202);
      const id = ((await drain.json()) as { id: string }).id;
      await until(
        async () => (await history()).samples.some((s) => s.pinned > 0),
        30_000,
        'a sample with pins',
      );
      await until(
        async () => {
          const pinned = await pointsOf('vip-pinned-line');
          const base = Math.max(...pinned.map(([, y]) => y));
          return (
            pinned.slice(0, -1).some(([, y]) => y < base) &&
            Number(await chart.getByTestId('vip-pinned').innerText()) > 0
          );
        },
        30_000,
        'the pinned line rising on the page',
      );
      assert.match(
        await chart.locator('figcaption').innerText(),
        /tracked \d+ and\s+pinned \d+ now; \d+ samples over \d+ min \(one every 10 s\)/,
      );
      // The change in the history says who asked for it and the bound they gave; the address and figures on
      // hover.
      const audit = page.getByTestId(`audit-${id}`);
      assert.equal(await audit.innerText(), 'api.token, ≤ unbounded');
      assert.match(
        (await audit.getAttribute('title')) ?? '',
        /^asked by token api\.token from 127\.0\.0\.1\nconsent: maxAtRisk unbounded\ndry run: \d+ \(at risk \d+, never seen \d+, window \d+(, not counted)?\)\nbefore the group write: \d+ /,
      );
      await page.screenshot({ path: path.join(shots, 'dashboard-vip-history.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      const code = await demo.stop();
      assert.equal(code, 0, demo.output());
    }
  },
);
