// The quick start as a user runs it: `flowpin start` (the embedded default) comes up with
// the simulator and live traffic, answers the README's API calls, and a drain and an
// addition made through the real API reset no connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { flowpinBin } from './helpers/tools.js';

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('flowpin start: demo up, drain and add through the API, zero resets', async () => {
  const child = spawn(process.execPath, [flowpinBin, 'start', '--api-port', '0', '--eapi-port', '0', '--gnmi-port', '0', '--status-port', '0', '--mirror', '127.0.0.1:0', '--rate', '80'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FLOWPIN_TOKEN: 'start-test', FLOWPIN_LOG_LEVEL: 'warn' },
  });
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
    const drain = await fetch(nh('/10.0.1.2/drain'), { method: 'POST', headers: auth, body: '{}' });
    assert.equal(drain.status, 202);
    assert.equal(((await drain.json()) as { phase: string }).phase, 'applied');
    await new Promise((r) => setTimeout(r, 1500));
    const add = await fetch(nh(''), { method: 'POST', headers: auth, body: JSON.stringify({ address: '10.0.1.5' }) });
    assert.equal(add.status, 201);
    await new Promise((r) => setTimeout(r, 2500));
    const c = (await (await fetch(`${counters}/counters`)).json()) as { connections: { opened: number; reset: number }; vips: { members: string[] }[] };
    assert.ok(c.connections.opened > 300, `only ${c.connections.opened} connections`);
    assert.equal(c.connections.reset, 0);
    assert.deepEqual(c.vips[0]?.members, ['10.0.1.1', '10.0.1.3', '10.0.1.4', '10.0.1.5']);
    const vips = (await (await fetch(`${api}/api/v1/switches/sim1/vips`)).json()) as { vips: { nexthops: { address: string; state: string; pinned: number }[] }[] };
    const drained = vips.vips[0]?.nexthops.find((n) => n.address === '10.0.1.2');
    assert.equal(drained?.state, 'draining');
    assert.ok((drained?.pinned ?? 0) > 0);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, err);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
