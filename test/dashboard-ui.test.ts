// The dashboard in a real browser (Debian's chromium through playwright-core) against a
// running `flowpin start`: the overview shows the controller's data, a drain started from the
// page shows its dry run, then its progress, then the drained state, and a flow search finds a
// known client. Screenshots go to test-results/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, startDemo, until, type Demo } from './helpers/demo.js';
import { repoRoot, skipUnless } from './helpers/tools.js';

const shots = path.join(repoRoot, 'test-results');
const VIP = '192.0.2.80';

interface Nh {
  address: string;
  state: string;
  tracked: number;
  pinned: number;
  inGroup: boolean;
}

async function nexthops(demo: Demo): Promise<Nh[]> {
  const v = (await (await fetch(`${demo.api}/api/v1/switches/sim1/vips`)).json()) as {
    vips: { nexthops: Nh[] }[];
  };
  return v.vips[0]?.nexthops ?? [];
}

const cell = (page: Page, nh: string, col: number) =>
  page.locator(`[data-testid="vip-${VIP}"] tr[data-nexthop="${nh}"] td`).nth(col);

test(
  'dashboard in chromium: overview, a drain from the page, flow search',
  { skip: skipUnless(haveChromium(), 'chromium'), timeout: 180_000 },
  async () => {
    mkdirSync(shots, { recursive: true });
    const demo = await startDemo('ui-test');
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${demo.api}/`);

      // Overview: the switch, its adapter health, the pin table, every nexthop with its state
      // and flows as the API reports them, and the simulator's counters.
      await page.getByTestId('live').filter({ hasText: 'live · ready' }).waitFor({ timeout: 15_000 });
      const card = page.getByTestId('switch-sim1');
      assert.match(await card.locator('h2').innerText(), /sim1\s+arista-eapi/);
      assert.equal(await card.getByTestId('health').innerText(), 'healthy');
      assert.match(await card.getByTestId('pin-table').innerText(), /^\d+ programmed, \d+ free of 1500$/);
      const api = await nexthops(demo);
      assert.equal(api.length, 4);
      for (const n of api) {
        assert.equal(await cell(page, n.address, 0).innerText(), n.state);
        const shown = Number(await cell(page, n.address, 2).innerText());
        // The page updates every second: its count is within a few seconds' flows of the API's.
        assert.ok(
          shown > 0 && Math.abs(shown - n.tracked) < n.tracked,
          `${n.address}: page ${shown}, API ${n.tracked}`,
        );
      }
      const opened = await until(
        async () => {
          const v = Number(await page.getByTestId('sim-opened').innerText());
          return v > 0 ? v : undefined;
        },
        10_000,
        'simulator counters',
      );
      assert.ok(opened > 0);
      // The demo mirrors FIN and RST both ways: the page says how connections are tracked.
      await until(
        async () => /^FIN and RST both ways/.test(await page.getByTestId('liveness').innerText()),
        30_000,
        'connection ends seen both ways',
      );
      await page.screenshot({ path: path.join(shots, 'dashboard-overview.png'), fullPage: true });

      // A drain: read-only without the token; with it, the dry run first, then confirmation.
      await page.getByTestId('token').fill(demo.token);
      await page.getByRole('button', { name: 'Use token' }).click();
      assert.equal(await page.evaluate('sessionStorage.getItem("flowpin.token")'), 'ui-test');
      assert.equal(await page.evaluate('localStorage.length + document.cookie.length'), 0);
      await page.getByRole('button', { name: 'Drain 10.0.1.2' }).click();
      const dry = page.getByTestId('dry-run');
      await dry.waitFor({ timeout: 10_000 });
      const dryText = await dry.innerText();
      assert.match(dryText, /Flows to pin\s+\d+/);
      assert.match(dryText, /Programmable room\s+\d+ free entries/);
      assert.match(dryText, /Flows at risk\s+\d+/);
      // Nothing changed yet: the dry run left the nexthop in the group.
      assert.equal((await nexthops(demo)).find((n) => n.address === '10.0.1.2')?.inGroup, true);
      await page.screenshot({ path: path.join(shots, 'dashboard-dry-run.png'), fullPage: true });

      // The bound: the dry run's figures offered, the operator's to change; a bound that is not a number
      // stops the confirmation.
      const bound = page.getByTestId('max-at-risk');
      assert.match(await bound.inputValue(), /^(\d+|unbounded)$/);
      const offered = await bound.inputValue();
      await bound.fill('many');
      assert.equal(await page.getByTestId('confirm').isDisabled(), true, 'no confirmation without a bound');
      await bound.fill(offered);
      await page.getByTestId('deadline').fill('6');
      await page.getByTestId('confirm').click();
      await page.getByTestId('change-status').waitFor({ timeout: 30_000 });
      await until(
        async () => (await page.getByTestId('nexthop-state').innerText()) === 'draining',
        10_000,
        'draining on the page',
      );
      const panel = page.getByTestId('change-panel');
      const nowApi = (await nexthops(demo)).find((n) => n.address === '10.0.1.2');
      assert.equal(nowApi?.inGroup, false);
      // The page may still show a snapshot from before the group write (draining already, no progress yet):
      // the next one has it.
      await until(
        async () =>
          (await panel.getByTestId('progress-left').count()) > 0 &&
          Number(await panel.getByTestId('progress-left').innerText()) > 0,
        10_000,
        'the drain pinned the live flows of 10.0.1.2',
      );
      await until(
        async () =>
          ((await panel.locator('.chart polyline').getAttribute('points'))?.split(' ').length ?? 0) >= 3,
        10_000,
        'a progress line of three samples',
      );
      await page.screenshot({ path: path.join(shots, 'dashboard-drain-progress.png'), fullPage: true });
      // Another tab, opened after the drain began, shows the same progress from the server: chart, what is
      // left, deadline.
      const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await other.goto(`${demo.api}/`);
      const drain = other.getByTestId('drain-10.0.1.2');
      await drain.waitFor({ timeout: 15_000 });
      await until(
        async () =>
          ((await drain.locator('.chart polyline').getAttribute('points'))?.split(' ').length ?? 0) >= 2,
        10_000,
        "the server's history in a new tab",
      );
      assert.match(
        await drain.getByTestId('drain-left').innerText(),
        /^\d+ live and \d+ unknown connections left$/,
      );
      assert.match(await drain.getByTestId('drain-deadline').innerText(), /^(in \d+ s \(|passed at )/);
      await other.close();
      // Its 6 s deadline: drained if no connection is left by then, deadline-passed (with what is left)
      // otherwise: never drained with connections left.
      const final = await until(
        async () => {
          const t = await page.getByTestId('nexthop-state').innerText();
          return t === 'drained' || t === 'deadline-passed' ? t : undefined;
        },
        30_000,
        'drained or deadline-passed on the page',
      );
      assert.equal((await nexthops(demo)).find((n) => n.address === '10.0.1.2')?.state, final);
      assert.equal(await cell(page, '10.0.1.2', 0).innerText(), final);
      const history = await page.getByTestId('history').innerText();
      assert.match(
        history,
        new RegExp(`drain \\S+\\s+sim1\\s+192\\.0\\.2\\.80\\s+10\\.0\\.1\\.2\\s+${final}`),
      );
      await page.screenshot({ path: path.join(shots, 'dashboard-drained.png'), fullPage: true });

      // Flow search: a client the controller tracks is found, and only its flows are listed.
      const known = (
        (await (await fetch(`${demo.api}/api/v1/flows?limit=1&vip=${VIP}`)).json()) as {
          flows: { src: string; sport: number }[];
        }
      ).flows[0];
      assert.ok(known !== undefined);
      await page.getByTestId('flows-client').fill(known.src);
      await page.getByTestId('flows-search').click();
      await page.getByTestId('flows-total').waitFor({ timeout: 10_000 });
      const rows = await page.getByTestId('flows-table').locator('tbody tr td:nth-child(2)').allInnerTexts();
      assert.ok(rows.length >= 1, 'the known client is listed');
      for (const r of rows) assert.equal(r.split(':')[0], known.src);
      assert.ok(
        rows.includes(`${known.src}:${known.sport}`) ||
          Number((await page.getByTestId('flows-total').innerText()).split(' ')[0]) > rows.length,
      );
      await page.screenshot({ path: path.join(shots, 'dashboard-flows.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      const code = await demo.stop();
      assert.equal(code, 0, demo.output());
    }
  },
);
