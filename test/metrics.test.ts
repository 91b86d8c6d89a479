// /metrics on prom-client against a running controller and the simulated eAPI switch: the
// exposition's content type, SYN-to-pin and switch call latency histograms, per-nexthop
// gauges that agree with the controller's own counts, failed switch calls counted, and the
// process and event-loop metrics; every metric the example Grafana dashboard queries exists.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { register } from 'prom-client';
import { buildApp } from '../controller/api/app.js';
import { Bed, NH, VIP } from './helpers/bed.js';
import { repoRoot } from './helpers/tools.js';

let bed: Bed | undefined;
let app: FastifyInstance | undefined;

before(async () => {
  bed = await Bed.create({ pinMode: 'always', mirrorFinRst: true });
  await bed.run(30);
  app = await buildApp({
    controller: bed.controller as NonNullable<Bed['controller']>,
    token: 'metrics-token',
  });
});
after(async () => {
  await app?.close();
  await bed?.close();
});

const scrape = async (): Promise<{ type: string; text: string }> => {
  const r = await (app as FastifyInstance).inject({ method: 'GET', url: '/metrics' });
  assert.equal(r.statusCode, 200);
  return { type: String(r.headers['content-type']), text: r.body };
};

/** The value of one series, by its exact name and labels as prom-client writes them. */
const series = (text: string, name: string, labels: Record<string, string>): number | undefined => {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !(want.length === 0 && line.startsWith(`${name} `))) continue;
    const inner = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = inner === '' ? [] : inner.split(',');
    if (got.length === want.length && want.every((w) => got.includes(w)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
};

test(
  '/metrics: prom-client exposition with flowpin, process and event-loop metrics',
  { timeout: 60_000 },
  async () => {
    const { type, text } = await scrape();
    assert.equal(type, register.contentType);
    assert.match(text, /# TYPE flowpin_syn_to_pin_seconds histogram/);
    assert.match(text, /# TYPE flowpin_pins_installed_total counter/);
    assert.match(text, /# TYPE process_cpu_user_seconds_total counter/);
    assert.match(text, /# TYPE nodejs_eventloop_lag_seconds gauge/);
    const c = bed?.controller;
    assert.ok(c);
    const installed = series(text, 'flowpin_pins_installed_total', { switch: 'sw1' }) ?? 0;
    assert.ok(installed > 0, 'pins were installed');
    assert.equal(
      series(text, 'flowpin_syn_to_pin_seconds_count', { switch: 'sw1' }),
      installed,
      'every installed pin observed once from its SYN',
    );
    assert.ok(
      (series(text, 'flowpin_switch_call_seconds_count', {
        switch: 'sw1',
        adapter: 'arista-eapi',
        operation: 'installPins',
      }) ?? 0) > 0,
      'installPins calls timed',
    );
    assert.ok(
      (series(text, 'flowpin_switch_call_seconds_count', {
        switch: 'sw1',
        adapter: 'arista-eapi',
        operation: 'listPins',
      }) ?? 0) > 0,
      'listPins calls timed',
    );
    for (const line of text.split('\n'))
      if (line.startsWith('flowpin_switch_call_seconds_count{'))
        assert.match(
          line,
          /operation="(connect|resolve|installPins|removePins|listPins|removeStrays|readPins|pinTableUsage|groupMembers|groupProgrammed|addGroupMember|removeGroupMember|movedByAdd|close)"/,
        );
  },
);

test(
  '/metrics: per-nexthop gauges agree with the controller, pin table gauges with its status',
  { timeout: 60_000 },
  async () => {
    const c = bed?.controller;
    assert.ok(c);
    await bed?.settle();
    const { text } = await scrape();
    const rt = c.runtime('sw1');
    let flows = 0;
    for (const nh of NH) {
      const f = series(text, 'flowpin_nexthop_flows', { switch: 'sw1', vip: VIP, nexthop: nh });
      const p = series(text, 'flowpin_nexthop_pins', { switch: 'sw1', vip: VIP, nexthop: nh });
      assert.equal(f, rt.flowsOn(VIP, nh).length, `tracked flows on ${nh}`);
      assert.equal(p, rt.pinnedOn(VIP, nh), `pins on ${nh}`);
      flows += f ?? 0;
    }
    assert.ok(flows > 0);
    const status = c.status(rt);
    assert.equal(
      series(text, 'flowpin_pin_table_entries', { switch: 'sw1', kind: 'capacity' }),
      status.pins.capacity,
    );
    assert.equal(
      series(text, 'flowpin_pin_table_entries', { switch: 'sw1', kind: 'programmed' }),
      status.pins.installed,
    );
    assert.equal(
      series(text, 'flowpin_pin_table_entries', { switch: 'sw1', kind: 'free' }),
      status.pins.free,
    );
    assert.equal(series(text, 'flowpin_flows', { switch: 'sw1' }), status.flows);
  },
);

test('/metrics: a switch call that fails is counted by operation', { timeout: 60_000 }, async () => {
  const eapi = bed?.sim.eapi;
  assert.ok(eapi && bed);
  const before =
    series((await scrape()).text, 'flowpin_switch_call_errors_total', {
      switch: 'sw1',
      adapter: 'arista-eapi',
      operation: 'installPins',
    }) ?? 0;
  eapi.faults.set({ failNext: 3 });
  await bed.run(5);
  eapi.faults.set({ failNext: 0 });
  const text = (await scrape()).text;
  let failed = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('flowpin_switch_call_errors_total{'))
      failed += Number(line.slice(line.lastIndexOf(' ') + 1));
  assert.ok(failed >= 1, 'failed calls counted');
  assert.ok(failed - before >= 1);
  await bed.settle();
});

test('the example Grafana dashboard queries only metrics flowpin serves', { timeout: 60_000 }, async () => {
  const dash = JSON.parse(readFileSync(path.join(repoRoot, 'docs', 'grafana', 'flowpin.json'), 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
    templating: { list: { definition: string }[] };
  };
  const exprs = [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dash.templating.list.map((v) => v.definition),
  ];
  const names = new Set(
    exprs.flatMap((e) =>
      [...e.matchAll(/\b((?:flowpin|process|nodejs)_[a-z0-9_]+)/g)].map((m) =>
        (m[1] as string).replace(/_(bucket|count|sum)$/, ''),
      ),
    ),
  );
  assert.ok(names.size >= 20, [...names].join(' '));
  const { text } = await scrape();
  const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  for (const n of names)
    assert.ok(served.has(n), `${n} is queried by docs/grafana/flowpin.json but not served at /metrics`);
});
