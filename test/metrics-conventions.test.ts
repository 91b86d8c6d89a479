// /metrics by the Prometheus conventions: `promtool check metrics` (Debian's prometheus
// package) on the exposition of a live controller over a real listener; flowpin_build_info;
// every closed label value's series present at zero before its first event (changes in progress
// by kind and phase included); connections left per drain only while it is tracked; counters read
// at scrape time (the mirror's drops) never go down when the count behind them restarts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { buildApp } from '../controller/api/app.js';
import { listen } from '../controller/api/listen.js';
import { ScrapeCounter } from '../controller/metrics.js';
import { AT_RISK, EVENT_KINDS, RECONCILE_ERRORS, UNKNOWN_SERVER } from '../controller/metrics-series.js';
import type { ChangeRecord } from '../controller/changes.js';
import { Bed, NH, VIP } from './helpers/bed.js';

const NH_DRAINED = NH[2] as string;
import { have, repoRoot, skipUnless } from './helpers/tools.js';

let bed: Bed | undefined;
let app: FastifyInstance | undefined;
let url = '';

before(async () => {
  bed = await Bed.create({ pinMode: 'on-change', adapter: 'sim' });
  app = await buildApp({
    controller: bed.controller as NonNullable<Bed['controller']>,
    token: 'metrics-token',
  });
  url = await listen(app, '127.0.0.1', 0);
});
after(async () => {
  await app?.close();
  await bed?.close();
});

const scrape = async (): Promise<string> => {
  const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(r.status, 200);
  return r.text();
};

const has = (text: string, name: string, labels: Record<string, string>): number | undefined => {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const got = line.slice(name.length + 1, line.lastIndexOf('}')).split(',');
    if (got.length === want.length && want.every((w) => got.includes(w)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
};

test(
  'promtool check metrics passes on the live exposition, before and after traffic',
  {
    timeout: 60_000,
    skip: skipUnless(have('promtool', ['--version']), 'promtool (Debian package prometheus)'),
  },
  async () => {
    for (const phase of ['idle', 'after traffic']) {
      if (phase !== 'idle') await bed?.run(20);
      const text = await scrape();
      const r = spawnSync('promtool', ['check', 'metrics'], {
        input: text,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(r.status, 0, `${phase}: promtool says:\n${r.stdout}${r.stderr}`);
      assert.equal(
        `${r.stdout}${r.stderr}`.trim(),
        '',
        `${phase}: promtool has remarks:\n${r.stdout}${r.stderr}`,
      );
    }
  },
);

test(
  'flowpin_build_info: 1, with the package version, the Node.js version and a commit',
  { timeout: 30_000 },
  async () => {
    const text = await scrape();
    const line = text.split('\n').find((l) => l.startsWith('flowpin_build_info{'));
    assert.ok(line, 'flowpin_build_info is exported');
    const version = (
      JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
    ).version;
    assert.match(line, new RegExp(`version="${version.replace(/\./g, '\\.')}"`));
    assert.match(line, new RegExp(`node_version="${process.version.replace(/\./g, '\\.')}"`));
    assert.match(line, /commit="([0-9a-f]{40}|unknown)"/);
    assert.match(line, / 1$/);
    assert.match(text, /# TYPE flowpin_build_info gauge/);
  },
);

test(
  'every closed label value has its series from the first scrape; drops are _total counters',
  { timeout: 30_000 },
  async () => {
    const text = await scrape();
    for (const why of AT_RISK)
      assert.notEqual(
        has(text, 'flowpin_connections_at_risk_total', { switch: 'sw1', why }),
        undefined,
        `at risk ${why}`,
      );
    for (const kind of EVENT_KINDS)
      assert.notEqual(
        has(text, 'flowpin_mirror_events_total', { switch: 'sw1', kind }),
        undefined,
        `events ${kind}`,
      );
    for (const error of RECONCILE_ERRORS)
      assert.notEqual(
        has(text, 'flowpin_reconcile_failures_total', { switch: 'sw1', error }),
        undefined,
        `reconcile ${error}`,
      );
    for (const reason of UNKNOWN_SERVER)
      assert.equal(
        has(text, 'flowpin_reply_unknown_server_total', { switch: 'sw1', reason }),
        0,
        `unknown server ${reason}`,
      );
    assert.equal(has(text, 'flowpin_server_resets_total', { switch: 'sw1', vip: VIP }), 0);
    assert.notEqual(
      has(text, 'flowpin_switch_call_errors_total', {
        switch: 'sw1',
        adapter: 'sim',
        operation: 'installPins',
      }),
      undefined,
    );
    assert.notEqual(has(text, 'flowpin_syn_to_pin_seconds_bucket', { switch: 'sw1', le: '+Inf' }), undefined);
    assert.match(text, /# TYPE flowpin_mirror_backlog_drops_total counter/);
    assert.match(text, /# TYPE flowpin_mirror_socket_drops_total counter/);
    assert.doesNotMatch(text, /^flowpin_mirror_(socket|backlog)_drops[ {]/m, 'the old gauge names are gone');
  },
);

test(
  'changes in progress by kind and phase from the first scrape; connections left per drain while it is tracked; promtool passes with them',
  { timeout: 120_000 },
  async () => {
    // Catches: a change gauge with no series until the first change (alerts on absent() fire on a quiet
    // switch);
    // a per-drain series left behind once its drain ended (labels growing without bound).
    assert.ok(bed);
    const first = await scrape();
    for (const kind of ['drain', 'add'])
      for (const phase of ['queued', 'pending', 'applied', 'deadline-passed'])
        assert.equal(
          has(first, 'flowpin_changes_in_progress', { switch: 'sw1', kind, phase }),
          0,
          `${kind} ${phase}`,
        );
    await bed.run(10);
    const cm = bed.controller?.changeManager('sw1');
    assert.ok(cm);
    const rec = (await bed.during(
      cm.drain(VIP, NH_DRAINED, { maxAtRisk: 'unbounded', deadlineSeconds: 3600 }),
    )) as ChangeRecord;
    cm.track();
    const during = await scrape();
    assert.equal(
      has(during, 'flowpin_changes_in_progress', { switch: 'sw1', kind: 'drain', phase: 'applied' }),
      1,
    );
    const left = has(during, 'flowpin_change_connections_left', {
      switch: 'sw1',
      vip: VIP,
      nexthop: NH_DRAINED,
    });
    assert.equal(left, cm.get(rec.id)?.remaining, "the drain's connections left, as its record says");
    assert.ok((left ?? 0) > 0, 'connections are left on the drained nexthop');
    if (have('promtool', ['--version'])) {
      const r = spawnSync('promtool', ['check', 'metrics'], {
        input: during,
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(`${r.status ?? ''} ${r.stdout}${r.stderr}`.trim(), '0', 'promtool with a drain tracked');
    }
    // Its connections end: the drain is drained and its series is gone.
    await bed.drainTraffic();
    await bed.controller?.periodic();
    assert.equal(cm.get(rec.id)?.phase, 'drained');
    const after = await scrape();
    assert.equal(
      has(after, 'flowpin_change_connections_left', { switch: 'sw1', vip: VIP, nexthop: NH_DRAINED }),
      undefined,
    );
    assert.equal(
      has(after, 'flowpin_changes_in_progress', { switch: 'sw1', kind: 'drain', phase: 'applied' }),
      0,
    );
  },
);

test(
  'a counter read at scrape time never goes down: a reopened socket starting again from 0 adds its count',
  { timeout: 10_000 },
  async () => {
    const registry = new Registry();
    const c = new ScrapeCounter(registry, 'test_drops_total', 'drops', ['source']);
    let rows = [{ labels: { source: 'a' }, value: 5 }];
    c.collect(() => rows);
    const value = async (): Promise<number> =>
      (await c.counter.get()).values.find((v) => v.labels.source === 'a')?.value ?? NaN;
    assert.equal(await value(), 5);
    rows = [{ labels: { source: 'a' }, value: 7 }];
    assert.equal(await value(), 7);
    // The socket is reopened: the closed one keeps its last count beside the new one's.
    rows = [
      { labels: { source: 'a' }, value: 7 },
      { labels: { source: 'a' }, value: 0 },
    ];
    assert.equal(await value(), 7);
    rows = [
      { labels: { source: 'a' }, value: 7 },
      { labels: { source: 'a' }, value: 3 },
    ];
    assert.equal(await value(), 10);
    // A count behind it that restarts from zero alone (the old one forgotten): what it counts now is added.
    rows = [{ labels: { source: 'a' }, value: 2 }];
    assert.equal(await value(), 12);
    rows = [{ labels: { source: 'a' }, value: 4 }];
    assert.equal(await value(), 14);
  },
);
