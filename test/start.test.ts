// The quick start as a user runs it: `flowpin start` (the embedded default) comes up with
// the simulator and live traffic, answers the README's API calls, and a drain and an
// addition made through the real API reset no connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { flowpinBin } from './helpers/tools.js';

interface Change {
  id: string;
  heldAt: number;
  sentAt?: number;
  windowFlows: number;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('flowpin start: demo up, drain and add through the API, zero resets', async () => {
  const child = spawn(
    process.execPath,
    [
      flowpinBin,
      'start',
      '--no-state',
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
      '--rate',
      '80',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FLOWPIN_TOKEN: 'start-test', FLOWPIN_LOG_LEVEL: 'warn' },
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await until(() => /counters http:\S+\/counters/.test(out), 15_000, `startup (stderr: ${err})`);
    const api = /API (http:\S+)/.exec(out)?.[1] as string;
    const counters = /counters (http:\S+)\/counters/.exec(out)?.[1] as string;
    const auth = { authorization: 'Bearer start-test', 'content-type': 'application/json' };
    const nh = (a: string) => `${api}/api/v1/switches/sim1/vips/192.0.2.80/nexthops${a}`;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await fetch(`${api}/readyz`)).status, 200);
    // The demo's few change-window connections need no consent (consent.windowFlows): the README's drain, as
    // it is.
    const drain = await fetch(nh('/10.0.1.2/drain'), { method: 'POST', headers: auth, body: '{}' });
    assert.equal(drain.status, 202, await drain.clone().text());
    const drained = (await drain.json()) as Change & { phase: string };
    assert.equal(drained.phase, 'applied');
    await new Promise((r) => setTimeout(r, 1500));
    const add = await fetch(nh(''), {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ address: '10.0.1.5' }),
    });
    assert.equal(add.status, 201, await add.clone().text());
    const added = (await add.json()) as Change;
    await new Promise((r) => setTimeout(r, 2500));
    const c = (await (await fetch(`${counters}/counters`)).json()) as {
      connections: { opened: number; reset: number };
      vips: { members: string[] }[];
      recentResets: { openedAt: number; at: number }[];
    };
    assert.ok(c.connections.opened > 300, `only ${c.connections.opened} connections`);
    assert.ok(c.recentResets.length === c.connections.reset, 'every reset is listed');
    assert.deepEqual(c.vips[0]?.members, ['10.0.1.1', '10.0.1.3', '10.0.1.4', '10.0.1.5']);
    const vips = (await (await fetch(`${api}/api/v1/switches/sim1/vips`)).json()) as {
      vips: { nexthops: { address: string; state: string; pinned: number }[] }[];
    };
    const drainedNh = vips.vips[0]?.nexthops.find((n) => n.address === '10.0.1.2');
    assert.equal(drainedNh?.state, 'draining');
    assert.ok((drainedNh?.pinned ?? 0) > 0);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, err);
    await until(
      () => /event loop was held up at most \d+ ms/.test(out),
      5000,
      `the simulator's report (output: ${out})`,
    );
    const held = Number(/event loop was held up at most (\d+) ms/.exec(out)?.[1]);
    const allowance = 20 + held;
    // flowpin keeps every connection whose SYN it saw before a change's hold. A connection
    // opened in a change window (after the hold, before the group change took effect and the
    // settle time passed) may break: the change record counts those as windowFlows, never
    // fewer than break. The simulator (its own process) stamps a connection with its clock,
    // which follows wall time in 20 ms ticks and trails it by as much as the simulator's
    // process was held up: the allowance, as the simulator reports it when it stops.
    const changes = [drained, added].map((x) => ({ ...x, sentAt: x.sentAt ?? Infinity }));
    for (const r of c.recentResets) {
      const by = changes.filter((x) => x.sentAt <= r.at + allowance).sort((a, b) => b.sentAt - a.sentAt)[0];
      assert.ok(by !== undefined, `a reset with no change before it: ${JSON.stringify(r)}`);
      assert.ok(
        r.openedAt >= by.heldAt - allowance,
        `a connection opened before the hold of ${by.id} was reset: ${JSON.stringify(r)}`,
      );
    }
    for (const x of changes) {
      const inWindow = c.recentResets.filter(
        (r) =>
          changes.filter((y) => y.sentAt <= r.at + allowance).sort((a, b) => b.sentAt - a.sentAt)[0]?.id ===
          x.id,
      ).length;
      assert.ok(
        inWindow <= x.windowFlows,
        `${inWindow} resets in the window of ${x.id}, which counted ${x.windowFlows} window flows`,
      );
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
