// The dashboard's layout and colours in a real browser (Debian's chromium through
// playwright-core, a fresh profile) against `flowpin start` in `always` mode with a small pin
// table that fills: at 1280 px and on a phone (390 px), no table cell is clipped by its panel
// and the page never scrolls sideways, change ids stay on one line at 1280 px; the full pin
// table is drawn red and failed pins are said as a fault, not beside "in sync"; the Add field
// refuses an address already there and empties once used; no request fails (favicon included).
// Screenshots of both widths go to test-results/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, startDemo, until } from './helpers/demo.js';
import { repoRoot, skipUnless } from './helpers/tools.js';

const shots = path.join(repoRoot, 'test-results');
const VIP = '192.0.2.80';

/** Runs in the page: every table cell and row header outside its panel's box, and sideways scrolling. */
const CLIPPED = `(() => {
  const out = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1) out.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
  for (const panel of document.querySelectorAll('section.panel')) {
    const p = panel.getBoundingClientRect();
    if (panel.scrollWidth > panel.clientWidth + 1) out.push((panel.getAttribute('aria-labelledby') || 'panel') + ' overflows: ' + panel.scrollWidth + ' > ' + panel.clientWidth);
    for (const cell of panel.querySelectorAll('td, th')) {
      const r = cell.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.right > p.right + 0.5 || r.left < p.left - 0.5) out.push('clipped: ' + cell.textContent.trim().slice(0, 40) + ' (' + Math.round(r.left) + '..' + Math.round(r.right) + ' outside ' + Math.round(p.left) + '..' + Math.round(p.right) + ')');
    }
  }
  return out;
})()`;

async function layoutAt(
  context: BrowserContext,
  url: string,
  width: number,
  height: number,
  name: string,
  failed: string[],
): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(url);
  await page.getByTestId('live').filter({ hasText: /live/ }).waitFor({ timeout: 15_000 });
  await page.getByTestId('history').waitFor({ timeout: 15_000 });
  const clipped = await page.evaluate<string[]>(CLIPPED);
  assert.deepEqual(clipped, [], `${name}: nothing clipped`);
  await page.screenshot({ path: path.join(shots, `dashboard-${name}.png`), fullPage: true });
  return page;
}

test(
  'dashboard layout at 1280 px and on a phone; colours by meaning; the Add field; no failed request',
  { skip: skipUnless(haveChromium(), 'chromium'), timeout: 180_000 },
  async () => {
    mkdirSync(shots, { recursive: true });
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-layout-'));
    const scenario = path.join(dir, 'sim.yaml');
    writeFileSync(scenario, 'switch:\n  pinCapacity: 900\n');
    // A table that fills within seconds of traffic (every flow pinned), not before the demo is ready.
    const demo = await startDemo('layout-test', [
      '--pin-mode',
      'always',
      '--config',
      scenario,
      '--rate',
      '120',
    ]);
    let context: BrowserContext | undefined;
    try {
      // Changes in the history: a drain to its deadline (one member out at a time: maxUnavailable 1), and an
      // addition.
      const post = (p: string, body: unknown) =>
        fetch(`${demo.api}/api/v1/switches/sim1/vips/${VIP}/nexthops${p}`, {
          method: 'POST',
          headers: { authorization: 'Bearer layout-test', 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      assert.equal(
        (await post('/10.0.1.2/drain', { maxAtRisk: 'unbounded', deadlineSeconds: 1 })).status,
        202,
      );
      assert.equal((await post('', { address: '10.0.1.5', maxAtRisk: 'unbounded' })).status, 201);
      // The table fills (every flow pinned, 900 entries at 120 connections/s): the page must show it full.
      await until(
        async () =>
          (
            (await (await fetch(`${demo.api}/api/v1/switches`)).json()) as {
              switches: { pins: { table: string } }[];
            }
          ).switches[0]?.pins.table === 'full',
        60_000,
        'a full pin table',
      );

      context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        headless: true,
      });
      const failed: string[] = [];
      const wide = await layoutAt(context, `${demo.api}/`, 1280, 800, '1280', failed);
      // Ids on one line at 1280 px.
      for (const code of await wide.locator('[data-testid="history"] .change-id code').all()) {
        const box = await code.boundingBox();
        const line = await code.evaluate(
          (el) =>
            parseFloat(
              (
                globalThis as unknown as { getComputedStyle(e: unknown): { fontSize: string } }
              ).getComputedStyle(el).fontSize,
            ) * 1.25,
        );
        assert.ok(box !== null && box.height <= line * 1.6, `an id wraps: ${box?.height ?? '?'} px high`);
      }
      // Colours by meaning: the full table red; failed pins a fault, apart from the writes' state.
      const card = wide.getByTestId('switch-sim1');
      await card.locator('.bar-full').waitFor({ timeout: 15_000 });
      assert.equal(
        await card
          .locator('[data-testid="pin-bar"] > span')
          .evaluate(
            (el) =>
              (
                globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }
              ).getComputedStyle(el).backgroundColor,
          ),
        'rgb(164, 14, 38)',
      );
      await until(
        async () => (await card.getByTestId('failed-pins').innerText()) !== 'none',
        30_000,
        'failed pins on a full table',
      );
      assert.match(
        await card.getByTestId('failed-pins').innerText(),
        /^\d+ pins the switch refused or had no room for: their connections are not kept$/,
      );
      assert.equal(await card.getByTestId('failed-pins').getAttribute('class'), 'bad');
      assert.doesNotMatch(await card.getByTestId('resync').innerText(), /in sync|failed/);
      // The Add field: an address already there is refused on the spot; a new one empties the field.
      const add = card.getByTestId(`add-${VIP}`);
      await add.fill('10.0.1.1');
      assert.equal(await card.getByRole('button', { name: 'Add…' }).isDisabled(), true);
      await card.getByText(`10.0.1.1 is already a nexthop of ${VIP}`).waitFor({ timeout: 5_000 });
      await add.fill('10.0.1.6');
      await card.getByRole('button', { name: 'Add…' }).click();
      await wide.getByTestId('change-panel').waitFor({ timeout: 10_000 });
      assert.equal(await add.inputValue(), '', 'the field is emptied once used');
      assert.equal(await add.getAttribute('placeholder'), 'an IPv4 address');

      await layoutAt(context, `${demo.api}/`, 390, 844, 'phone', failed);
      assert.deepEqual(failed, [], 'no request failed (favicon included)');
    } finally {
      await context?.close();
      const code = await demo.stop();
      rmSync(dir, { recursive: true, force: true });
      assert.equal(code, 0, demo.output());
    }
  },
);
