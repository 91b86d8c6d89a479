// The README's quick start, as a new user follows it: `flowpin start` in a process of its own
// (the simulator's clock sped up 10 times with the documented `--speed`, so that 10 simulated
// minutes of traffic, enough to fill the flow table with ended connections, pass in 60 s;
// faster, the change windows hold more new connections than the demo's 20 a second ever
// brings: an addition on a switch that cannot say which flows it moves pins every live one,
// and at 20 times the window's flows no longer fit the 1,500-entry table;
// ports chosen by the system so that the test can run beside others), then the README's curl
// calls, read from the README itself and sent as the same HTTP requests with the same bodies
// and headers, in the same order. Throughout: readiness green, the pin table never full; at
// the end no connection opened before a change reset across it, and every reset (the
// simulator's log) a connection of a change window, counted in that change's windowFlows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from './helpers/demo.js';
import { quickStart } from '../bench/readme-quickstart.js';
import { flowpinBin, repoRoot } from './helpers/tools.js';

test('the README quick start parses into its calls', () => {
  const { token, calls } = quickStart(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'));
  assert.ok(token.length > 0, 'a token');
  const posts = calls.filter((c) => c.method === 'POST');
  assert.ok(
    posts.some((c) => c.url.pathname.endsWith('/drain') && c.body?.includes('dryRun') === true),
    'a dry run',
  );
  assert.ok(
    posts.some((c) => c.url.pathname.endsWith('/drain') && c.body?.includes('dryRun') !== true),
    'a drain',
  );
  assert.ok(
    posts.some((c) => c.url.pathname.endsWith('/nexthops')),
    'an addition',
  );
  for (const c of posts) assert.equal(c.headers['authorization'], `Bearer ${token}`, c.line);
});

test(
  'the README quick start, as written, under 10 simulated minutes of traffic: no connection of before a change reset, window resets counted, readiness green, pin table never full',
  { timeout: 280_000 },
  async () => {
    const { token, calls } = quickStart(readFileSync(path.join(repoRoot, 'README.md'), 'utf8'));
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-quickstart-'));
    const child = spawn(
      process.execPath,
      [
        flowpinBin,
        'start',
        '--api-port',
        '0',
        '--eapi-port',
        '0',
        '--gnmi-port',
        '0',
        '--status-port',
        '0',
        '--mirror',
        '127.0.0.1:0',
        '--speed',
        '10',
        '--reset-log',
        path.join(dir, 'resets.jsonl'),
        '--state-file',
        path.join(dir, 'state.json'),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, FLOWPIN_TOKEN: token, FLOWPIN_LOG_LEVEL: 'warn' },
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exit = once(child, 'exit');
    const samples = { notReady: [] as string[], pinPeak: 0, capacity: 0, tableFull: [] as string[] };
    let sampling = true;
    let sampler: Promise<void> | undefined;
    try {
      const api = await until(
        () => /API (http:\S+)/.exec(out)?.[1],
        60_000,
        `flowpin start (output: ${out})`,
      );
      const counters = await until(
        () => /counters (http:\S+\/counters)/.exec(out)?.[1],
        10_000,
        'the simulator counters',
      );
      await until(async () => (await fetch(`${api}/readyz`)).status === 200, 60_000, 'ready');
      sampler = (async () => {
        while (sampling) {
          const r = await fetch(`${api}/readyz`).catch(() => undefined);
          const body = r === undefined ? 'no answer' : await r.text();
          if (r?.status !== 200)
            samples.notReady.push(`${new Date().toISOString()} ${r?.status ?? '-'} ${body.slice(0, 300)}`);
          if (/table full/i.test(body)) samples.tableFull.push(body.slice(0, 300));
          const c = (await (await fetch(counters)).json().catch(() => undefined)) as
            { pins: { capacity: number; programmed: number } } | undefined;
          if (c !== undefined) {
            samples.pinPeak = Math.max(samples.pinPeak, c.pins.programmed);
            samples.capacity = c.pins.capacity;
          }
          await new Promise((res) => setTimeout(res, 250));
        }
      })();
      // 60 s at 10 times: 10 simulated minutes of traffic; the flow table holds ended connections by now.
      await new Promise((res) => setTimeout(res, 60_000));
      const answers: string[] = [];
      const calledAt = new Map<string, number>();
      for (const c of calls) {
        if (c.url.port === '8881') continue; // the simulator's counters: read below
        const url = new URL(c.url.pathname + c.url.search, api);
        if (c.method === 'POST' && c.body?.includes('dryRun') !== true)
          calledAt.set(url.pathname.endsWith('/drain') ? '10.0.1.2' : '10.0.1.5', Date.now());
        const r = await fetch(url, {
          method: c.method,
          headers: c.headers,
          ...(c.body === undefined ? {} : { body: c.body }),
        });
        const text = await r.text();
        answers.push(`${c.method} ${url.pathname} ${c.body ?? ''} -> ${r.status} ${text.slice(0, 400)}`);
        assert.ok(r.status >= 200 && r.status < 300, `${c.line}\n-> ${r.status} ${text}`);
      }
      // Both changes in the switch's group (a drain then tracks its connections for as long as they live:
      // hours of simulated time for some), then 30 s more (5 simulated minutes) of traffic across them.
      await until(
        async () => {
          const ch = (await (await fetch(`${api}/api/v1/switches/sim1/changes`)).json()) as {
            changes: { phase: string }[];
          };
          return (
            ch.changes.length > 0 && ch.changes.every((x) => x.phase !== 'queued' && x.phase !== 'pending')
          );
        },
        120_000,
        'the changes to be applied',
        1000,
      );
      await new Promise((res) => setTimeout(res, 30_000));
      sampling = false;
      await sampler;
      const c = (await (await fetch(counters)).json()) as {
        connections: { reset: number; opened: number };
        recentResets: unknown[];
        groupChanges: { at: number; wallAt: number; op: string; nexthop: string }[];
      };
      const changesText = await (await fetch(`${api}/api/v1/switches/sim1/changes`)).text();
      const why = `\n${answers.join('\n')}\nchanges: ${changesText.slice(0, 2000)}\nrecent resets: ${JSON.stringify(c.recentResets.slice(0, 5))}`;
      assert.ok(c.connections.opened > 5000, `traffic ran (${c.connections.opened} opened)`);
      // No connection opened before a change was called is reset across it: the promise. Connections
      // that opened in a change's sub-second window may be (their pins come as their servers are
      // learnt): each is counted in that change's windowFlows. The simulator's clock runs 10 times
      // faster; its log of group changes gives both clocks, so the calls are placed on its clock.
      const resets = readFileSync(path.join(dir, 'resets.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { server: string; reached: string; openedAt: number });
      const changes = (
        JSON.parse(changesText) as {
          changes: { kind: string; nexthop: string; windowFlows: number | null }[];
        }
      ).changes;
      for (const [nexthop, wall] of calledAt) {
        const g = c.groupChanges.find((x) => x.nexthop === nexthop);
        assert.ok(g, `the group change of ${nexthop}`);
        const simCall = g.at - (g.wallAt - wall) * 10;
        const crossed = resets.filter((r) =>
          nexthop === '10.0.1.5' ? r.reached === nexthop : r.server === nexthop,
        );
        const before = crossed.filter((r) => r.openedAt < simCall);
        assert.deepEqual(
          before,
          [],
          `connections opened before the change of ${nexthop} was called were reset${why}`,
        );
        const rec = changes.find((x) => x.nexthop === nexthop);
        assert.ok(
          crossed.length <= (rec?.windowFlows ?? 0),
          `${crossed.length} connections of the change window of ${nexthop} reset, ${rec?.windowFlows ?? 'no'} counted${why}`,
        );
      }
      const counted = resets.filter((r) => r.server === '10.0.1.2' || r.reached === '10.0.1.5').length;
      assert.equal(c.connections.reset, counted, `every reset crossed a change${why}`);
      process.stdout.write(
        `# quick start: ${c.connections.reset} connections reset, all opened in a change window and counted (${changes.map((x) => `${x.kind} windowFlows ${x.windowFlows ?? '-'}`).join(', ')})\n`,
      );
      assert.deepEqual(samples.notReady, [], `readiness not green${why}`);
      assert.deepEqual(samples.tableFull, [], 'the pin table reported full');
      assert.ok(
        samples.pinPeak < samples.capacity,
        `pins peaked at ${samples.pinPeak} of ${samples.capacity}`,
      );
    } finally {
      sampling = false;
      await sampler?.catch(() => undefined);
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
