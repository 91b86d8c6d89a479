// The dashboard's overview details, flow search filters and detail, the token prompt at a
// change and the drain estimate, in Debian's chromium against a running `flowpin start` on a
// laptop-sized window. The page's figures are checked against the API's. Screenshots go to
// test-results/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, startDemo, until, type Demo } from './helpers/demo.js';
import { repoRoot, skipUnless } from './helpers/tools.js';

const shots = path.join(repoRoot, 'test-results');
const VIP = '192.0.2.80';
const NH = '10.0.1.3';

interface Row {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  nexthop: string | null;
  pinned: boolean;
}

const api = async <T>(demo: Demo, p: string, init?: RequestInit): Promise<T> =>
  (await (await fetch(`${demo.api}${p}`, init)).json()) as T;

/** The estimate of the draining nexthop in the first server-sent snapshot. */
async function snapshotEstimate(demo: Demo): Promise<{ earliestS: number; pinned: number } | undefined> {
  const ac = new AbortController();
  const res = await fetch(`${demo.api}/api/v1/events`, { signal: ac.signal });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let text = '';
  try {
    while (!/\n\n/.test(text.slice(text.indexOf('data: ')))) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  } finally {
    ac.abort();
  }
  const data = /data: (.*)\n/.exec(text)?.[1] ?? '{}';
  const snap = JSON.parse(data) as {
    switches: {
      vips: {
        address: string;
        nexthops: { address: string; estimate?: { earliestS: number; pinned: number } }[];
      }[];
    }[];
  };
  return snap.switches[0]?.vips.find((v) => v.address === VIP)?.nexthops.find((n) => n.address === NH)
    ?.estimate;
}

/** Runs in the page: fields without a label, and text below 4.5:1 against its background. */
const A11Y_CHECK = `(() => {
  const out = [];
  for (const el of document.querySelectorAll('input, select, button, meter')) {
    const named = el.labels?.length > 0 || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent.trim() !== '');
    if (!named) out.push('unlabelled ' + el.outerHTML.slice(0, 80));
  }
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bg = (el) => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '')) continue;
    if (el.closest('svg') || el.getClientRects().length === 0) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push('contrast ' + ratio.toFixed(2) + ' ' + el.tagName + ' ' + el.textContent.trim().slice(0, 40));
  }
  return out;
})()`;

test(
  'dashboard in chromium: overview health, flow filters and detail, token prompt, drain estimate, removed',
  { skip: skipUnless(haveChromium(), 'chromium'), timeout: 180_000 },
  async () => {
    mkdirSync(shots, { recursive: true });
    const demo = await startDemo('features-test');
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${demo.api}/`);
      await page.getByTestId('live').filter({ hasText: 'live · ready' }).waitFor({ timeout: 15_000 });

      // Overview: mirror health per switch, pin sync, the receiver's counters; read-only without a token.
      const card = page.getByTestId('switch-sim1');
      assert.match(
        await card.getByTestId('mirror-health').innerText(),
        /^ok: \d+\.\d\/s SYN \(usual \d+\.\d\/s\), last SYN [\d.]+ s ago$/,
      );
      assert.match(
        await card.getByTestId('resync').innerText(),
        /^(up to date: every pin wanted was sent|being written)$/,
      );
      assert.equal(await card.getByTestId('failed-pins').innerText(), 'none');
      const frames = await until(
        async () => {
          const n = Number(await page.getByTestId('mirror-frames').innerText());
          return n > 0 ? n : undefined;
        },
        10_000,
        'mirror frames on the page',
      );
      assert.ok(frames > 0);
      assert.match(await page.getByTestId('mirror-socket-drops').innerText(), /^(0|unknown)$/);
      assert.equal(await page.getByTestId('mirror-decode-drops').innerText(), '0');
      assert.match(await page.locator('form.token [role="status"]').innerText(), /no token: read only/);

      // Flow search by client address and port, then one flow's detail.
      // A flow resolved already (the newest may still be waiting for its look-up).
      const known = (await api<{ flows: Row[] }>(demo, `/api/v1/flows?limit=50&vip=${VIP}`)).flows.find(
        (f) => f.nexthop !== null,
      );
      assert.ok(known);
      await page.getByTestId('flows-client').fill(known.src);
      await page.getByTestId('flows-port').fill(String(known.sport));
      await page.getByTestId('flows-search').click();
      await page
        .getByTestId('flows-total')
        .filter({ hasText: /^1 flows/ })
        .waitFor({ timeout: 10_000 });
      assert.deepEqual(
        await page.getByTestId('flows-table').locator('tbody tr td:nth-child(2)').allInnerTexts(),
        [`${known.src}:${known.sport}`],
      );
      await page.getByRole('button', { name: `Detail of ${known.src}:${known.sport}` }).click();
      const detail = page.getByTestId('flow-detail');
      await detail.waitFor({ timeout: 10_000 });
      assert.equal(await detail.getByTestId('detail-nexthop').innerText(), known.nexthop ?? 'unresolved');
      assert.match(
        await detail.getByTestId('detail-learned').innerText(),
        /^look-up: the arista-eapi adapter's look-up/,
      );
      assert.equal(await detail.getByTestId('detail-pin').innerText(), 'none');
      assert.match(await detail.getByTestId('detail-idle').innerText(), /^— /);
      await page.screenshot({ path: path.join(shots, 'dashboard-flow-detail.png'), fullPage: true });
      await page.getByRole('button', { name: 'Close the detail' }).click();

      // Pinned filter before any change (pins on change only): nothing pinned.
      await page.getByTestId('flows-client').fill('');
      await page.getByTestId('flows-port').fill('');
      await page.getByTestId('flows-pinned').selectOption('true');
      await page.getByTestId('flows-search').click();
      await page
        .getByTestId('flows-total')
        .filter({ hasText: /^0 flows$/ })
        .waitFor({ timeout: 10_000 });

      // A drain without a token in the tab: the page asks for it; a wrong one is refused and nothing changes.
      await page.getByRole('button', { name: `Drain ${NH}` }).click();
      const ask = page.getByTestId('change-token');
      await ask.waitFor({ timeout: 5_000 });
      assert.equal(await page.getByTestId('use-token').isDisabled(), true, 'nothing to send without a token');
      assert.equal(await page.getByTestId('dry-run').count(), 0, 'no dry run without a token');
      await ask.fill('not-the-token');
      await page.getByTestId('use-token').click();
      await page
        .locator('.ask-token [role="alert"]')
        .filter({ hasText: /bearer token/ })
        .waitFor({ timeout: 10_000 });
      const stillIn = await api<{ vips: { nexthops: { address: string; inGroup: boolean }[] }[] }>(
        demo,
        '/api/v1/switches/sim1/vips',
      );
      assert.equal(
        stillIn.vips[0]?.nexthops.find((n) => n.address === NH)?.inGroup,
        true,
        'a refused token changed nothing',
      );
      assert.equal(
        await page.evaluate('sessionStorage.getItem("flowpin.token")'),
        null,
        'a refused token is not kept',
      );
      assert.match(await page.locator('form.token [role="status"]').innerText(), /no token: read only/);
      await page.screenshot({ path: path.join(shots, 'dashboard-token-prompt.png'), fullPage: true });
      await page.getByTestId('change-token').fill(demo.token);
      await page.getByTestId('use-token').click();
      await page.getByTestId('dry-run').waitFor({ timeout: 10_000 });
      assert.match(
        await page.locator('form.token [role="status"]').innerText(),
        /token set: changes allowed/,
      );
      await page.getByTestId('deadline').fill('20');
      await page.getByTestId('confirm').click();
      await page.getByTestId('change-status').waitFor({ timeout: 30_000 });
      assert.equal(await page.evaluate('sessionStorage.getItem("flowpin.token")'), demo.token);
      assert.equal(
        await page.evaluate('localStorage.length + document.cookie.length'),
        0,
        'the token is kept in the tab only',
      );

      // Progress: the estimate from the flows left, as the server computes it.
      const eta = await until(
        async () => {
          const t = await page.getByTestId('drain-eta').innerText();
          return /^Zero in about \d+ s$/.test(t) ? t : undefined;
        },
        15_000,
        'a drain estimate on the page',
      );
      const shownEta = Number(/(\d+) s/.exec(eta)?.[1]);
      const earliestText = await page.getByTestId('eta-earliest').innerText();
      const m = /^([\d.]+) s, if the (\d+) flows left send nothing more$/.exec(earliestText);
      assert.ok(m, earliestText);
      const earliest = Number(m[1]);
      assert.ok(earliest > 0 && earliest <= 300, `earliest ${earliest} s within the 300 s idle timeout`);
      assert.ok(shownEta >= Math.floor(earliest), 'the estimate is no sooner than the earliest');
      const server = await snapshotEstimate(demo);
      assert.ok(server, 'the snapshot carries the estimate of the draining nexthop');
      assert.ok(
        Math.abs(server.earliestS - earliest) <= 5,
        `page ${earliest} s, server ${server.earliestS} s`,
      );
      assert.match(await page.getByTestId('eta-ages').innerText(), /^median [\d.]+ s, oldest [\d.]+ s$/);
      await page.locator('.eta details summary').click();
      assert.match(await page.locator('.eta details p').innerText(), /idle timeout \(300 s\)/);
      await page.screenshot({ path: path.join(shots, 'dashboard-drain-estimate.png'), fullPage: true });

      // The pinned filter now lists the drained nexthop's pinned flows; a pinned flow's detail.
      await page.getByTestId('flows-search').click();
      await until(
        async () => Number((await page.getByTestId('flows-total').innerText()).split(' ')[0]) > 0,
        10_000,
        'pinned flows listed',
      );
      const pinnedNh = await page
        .getByTestId('flows-table')
        .locator('tbody tr td:nth-child(4)')
        .allInnerTexts();
      assert.ok(pinnedNh.length > 0 && pinnedNh.every((n) => n === NH), pinnedNh.join(','));
      assert.ok(
        (await page.getByTestId('flows-table').locator('tbody tr td:nth-child(5)').allInnerTexts()).every(
          (p) => p === 'yes',
        ),
      );
      await page.getByTestId('flows-table').locator('tbody tr').first().getByRole('button').click();
      await page.getByTestId('flow-detail').waitFor({ timeout: 10_000 });
      assert.match(await page.getByTestId('detail-pin').innerText(), /^(programmed|pending)/);

      // Past its deadline (or drained), then removed through the API with consent for what is left: the page
      // keeps showing it, as removed.
      await until(
        async () =>
          ['drained', 'deadline-passed'].includes(await page.getByTestId('nexthop-state').innerText()),
        60_000,
        'drained or deadline-passed on the page',
      );
      const del = await fetch(
        `${demo.api}/api/v1/switches/sim1/vips/${VIP}/nexthops/${NH}?maxAtRisk=unbounded`,
        { method: 'DELETE', headers: { authorization: `Bearer ${demo.token}` } },
      );
      assert.equal(del.status, 200, await del.text());
      const row = page.locator(`[data-testid="vip-${VIP}"] tr[data-nexthop="${NH}"] td`).first();
      await until(async () => (await row.innerText()) === 'removed', 10_000, 'removed on the page');
      await page.screenshot({ path: path.join(shots, 'dashboard-removed.png'), fullPage: true });

      // Accessible markup: every field has a label, text contrast at least 4.5:1 (WCAG 2 AA).
      const a11y = await page.evaluate<string[]>(A11Y_CHECK);
      assert.deepEqual(a11y, []);

      // Another tab (a new browser context) has no token: read only.
      const other = await browser.newPage();
      await other.goto(`${demo.api}/`);
      await other.getByTestId('live').filter({ hasText: /^live/ }).waitFor({ timeout: 15_000 });
      assert.match(await other.locator('form.token [role="status"]').innerText(), /no token: read only/);
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      const code = await demo.stop();
      assert.equal(code, 0, demo.output());
    }
  },
);
