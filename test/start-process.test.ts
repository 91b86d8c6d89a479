// `flowpin start` runs the switch simulator and its traffic in a child process of its own
// (the controller in the parent): the simulator's flags reach the child, SIGINT or SIGTERM to
// flowpin stops both, and a simulator that dies takes the demo down with it (non-zero exit)
// instead of leaving a controller "ready" in front of no switch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { flowpinBin } from './helpers/tools.js';
import { until } from './helpers/demo.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function start(extra: string[]) {
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
      ...extra,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FLOWPIN_TOKEN: 'proc-test', FLOWPIN_LOG_LEVEL: 'warn' },
    },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>;
  return { child, exit, out: () => out };
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(
    `flowpin start: the simulator in its own process with the flags given; ${signal} stops both`,
    { timeout: 60_000 },
    async () => {
      const s = start(['--rate', '40', '--seed', '7']);
      let simPid = 0;
      try {
        simPid = Number(
          await until(
            () => /simulator \(process (\d+)\)/.exec(s.out())?.[1],
            20_000,
            `startup (output: ${s.out()})`,
          ),
        );
        const api = /API (http:\S+)/.exec(s.out())?.[1] as string;
        assert.notEqual(simPid, s.child.pid, 'a process of its own');
        const status = readFileSync(`/proc/${simPid}/status`, 'utf8');
        assert.equal(/PPid:\s+(\d+)/.exec(status)?.[1], String(s.child.pid), 'a child of flowpin');
        const argv = readFileSync(`/proc/${simPid}/cmdline`, 'utf8').split('\0');
        assert.ok(argv.includes('sim') && argv.includes('--ipc'), argv.join(' '));
        assert.deepEqual(argv.slice(argv.indexOf('--rate'), argv.indexOf('--rate') + 2), ['--rate', '40']);
        assert.match(s.out(), /traffic\s+40 connections\/s/);
        // The controller sees the simulator's traffic (mirror across the process boundary) and its counters.
        await until(async () => (await fetch(`${api}/readyz`)).status === 200, 20_000, 'ready');
        await until(
          async () =>
            (((await (await fetch(`${api}/api/v1/switches`)).json()) as { switches: { flows: number }[] })
              .switches[0]?.flows ?? 0) > 0,
          20_000,
          'flows learned from the mirror',
        );
        s.child.kill(signal);
        const [code] = await s.exit;
        assert.equal(code, 0, s.out());
        await until(() => !alive(simPid), 10_000, 'the simulator to stop');
      } finally {
        if (s.child.exitCode === null) s.child.kill('SIGKILL');
        if (simPid > 0 && alive(simPid)) process.kill(simPid, 'SIGKILL');
      }
    },
  );
}

test(
  'flowpin start: a simulator that dies stops the demo (exit 1, saying why)',
  { timeout: 60_000 },
  async () => {
    const s = start(['--rate', '20']);
    let simPid = 0;
    try {
      simPid = Number(
        await until(
          () => /simulator \(process (\d+)\)/.exec(s.out())?.[1],
          20_000,
          `startup (output: ${s.out()})`,
        ),
      );
      process.kill(simPid, 'SIGKILL');
      const [code] = await s.exit;
      assert.equal(code, 1, s.out());
      assert.match(s.out(), /the simulator exited \(SIGKILL\)/);
    } finally {
      if (s.child.exitCode === null) s.child.kill('SIGKILL');
      if (simPid > 0 && alive(simPid)) process.kill(simPid, 'SIGKILL');
    }
  },
);
