// The assembled simulator: mirrored SYNs reach flowpin's receiver as ERSPAN type I frames
// (GRE-in-UDP in-process, raw GRE in a test namespace), `flowpin sim` prints its endpoints
// and serves counters, and scenario files are validated with errors that name the key.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { VirtualClock } from '../switch-sim/clock.js';
import { readScenario } from '../switch-sim/scenario.js';
import { startSimulator } from '../switch-sim/run.js';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import type { FlowEvent } from '../mirror-receiver/flow-event.js';
import { Reader, ConfigError } from '../lib/validate.js';
import { TestNetns } from './helpers/netns.js';
import { flowpinBin, have, isRoot, skipUnless } from './helpers/tools.js';

const scenario = (over: Record<string, unknown> = {}) =>
  readScenario(
    Reader.fromObject('test', {
      eapi: { port: 0 },
      gnmi: { port: 0 },
      status: { port: 0 },
      traffic: { seed: 3 },
      ...over,
    }),
  );

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('simulator mirror session', () => {
  test('every SYN the switch sees reaches the receiver as ERSPAN type I from the switch address', async () => {
    const events: FlowEvent[] = [];
    const receiver = new MirrorReceiver((e) => events.push(e));
    const { port } = await receiver.listenUdp({ host: '127.0.0.1', port: 0 });
    const clock = new VirtualClock(0);
    const sim = await startSimulator(
      scenario({ mirror: { port, sourceAddress: '127.0.0.2' }, traffic: { enabled: false } }),
      { clock },
    );
    try {
      const { TrafficGenerator } = await import('../switch-sim/traffic.js');
      const gen = new TrafficGenerator(sim.sw, clock, {
        connectionsPerSecond: 1,
        lifetime: { kind: 'fixed', s: 60 },
        packetIntervalMs: 1000,
        targets: [
          { vip: '192.0.2.80', port: 443 },
          { vip: '192.0.2.80', port: 80 },
        ],
        clientBase: '10.100.0.1',
        clientCount: 500,
        maxConcurrent: 1000,
        seed: 9,
      });
      const opened = Array.from({ length: 200 }, () => gen.open()).filter((c) => c !== undefined);
      assert.equal(opened.length, 200);
      await until(() => events.length === 200);
      assert.ok(events.every((e) => e.encap === 'erspan1' && e.outerSrc === '127.0.0.2' && e.flags === 0x02));
      const key = (c: { src: string; sport: number; dst: string; dport: number }) =>
        `${c.src}:${c.sport}>${c.dst}:${c.dport}`;
      assert.deepEqual(new Set(events.map(key)), new Set(opened.map(key)));
      // Data packets are not mirrored.
      clock.advance(5_000);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(events.length, 200);
      assert.equal(sim.counters().mirror.sent, 200);
    } finally {
      await sim.stop();
      await receiver.stop();
    }
  });

  test(
    'raw GRE mirror: `flowpin sim --mirror-raw` to `flowpin receive --raw` in a namespace',
    { skip: skipUnless(isRoot() && have('ip', ['-V']), 'root or iproute2') },
    async () => {
      const ns = new TestNetns();
      const kids: ChildProcess[] = [];
      try {
        const rx = ns.spawn(process.execPath, [flowpinBin, 'receive', '--raw', '--port', '0']);
        kids.push(rx);
        let out = '';
        rx.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        let err = '';
        rx.stderr?.on('data', (d: Buffer) => (err += d.toString()));
        await until(() => /raw GRE socket/.test(err), 10_000);
        const sim = ns.spawn(process.execPath, [
          flowpinBin,
          'sim',
          '--mirror-raw',
          '--mirror',
          '127.0.0.1:0',
          '--rate',
          '200',
          '--eapi-port',
          '0',
          '--gnmi-port',
          '0',
          '--status-port',
          '0',
        ]);
        kids.push(sim);
        await until(() => out.split('\n').filter((l) => l.includes('"erspan1"')).length >= 20, 10_000);
        const first = JSON.parse(out.split('\n')[0] ?? '{}') as {
          outerSrc: string;
          dst: string;
          dport: number;
          flags: string[];
        };
        assert.equal(first.dst, '192.0.2.80');
        assert.equal(first.dport, 443);
        assert.deepEqual(first.flags, ['SYN']);
        assert.equal(first.outerSrc, '127.0.0.1');
      } finally {
        for (const k of kids) {
          if (k.exitCode === null) {
            k.kill('SIGKILL');
            await once(k, 'exit');
          }
        }
        ns.remove();
      }
    },
  );
});

describe('flowpin sim command', () => {
  test('prints its endpoints, serves counters and fault control, and stops on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        flowpinBin,
        'sim',
        '--eapi-port',
        '0',
        '--gnmi-port',
        '0',
        '--status-port',
        '0',
        '--mirror',
        '127.0.0.1:9',
        '--rate',
        '50',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(() => /counters http:\/\/127\.0\.0\.1:\d+\/counters/.test(out), 10_000);
      assert.match(out, /eAPI {5}http:\/\/127\.0\.0\.1:\d+\/command-api/);
      assert.match(out, /gNMI {5}127\.0\.0\.1:\d+/);
      const status = /counters (http:\/\/\S+)\/counters/.exec(out)?.[1] as string;
      await new Promise((r) => setTimeout(r, 300));
      const counters = (await (await fetch(`${status}/counters`)).json()) as {
        connections: { opened: number };
        vips: { members: string[] }[];
      };
      assert.ok(counters.connections.opened > 0, 'traffic is flowing');
      assert.equal(counters.vips[0]?.members.length, 4);
      const put = await fetch(`${status}/faults/eapi`, {
        method: 'PUT',
        body: JSON.stringify({ latencyMs: 5 }),
      });
      assert.equal(put.status, 200);
      const bad = await fetch(`${status}/faults/eapi`, {
        method: 'PUT',
        body: JSON.stringify({ latencyMs: -1 }),
      });
      assert.equal(bad.status, 400);
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0);
      assert.match(out, /stopped; connections opened \d+/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('a bad scenario file fails with the file and key named, exit status 2', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-sim-'));
    try {
      const file = path.join(dir, 'sim.yaml');
      writeFileSync(file, 'traffic:\n  connectionsPerSecond: -5\n');
      const child = spawn(process.execPath, [flowpinBin, 'sim', '--config', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 2);
      assert.match(
        err,
        new RegExp(`${file.replace(/[.]/g, '\\.')}: traffic\\.connectionsPerSecond: must be at least`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scenario validation', () => {
  const bad = (doc: unknown, pattern: RegExp) =>
    assert.throws(
      () => readScenario(Reader.fromObject('s.yaml', doc)),
      (e: Error) => e instanceof ConfigError && pattern.test(e.message),
    );

  test('defaults give a working scenario', () => {
    const s = scenario();
    assert.equal(s.switch.pinCapacity, 1500);
    assert.deepEqual(s.vips[0]?.nexthops, ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4']);
    assert.ok(Object.isFrozen(s.switch));
  });

  test('errors name the key', () => {
    bad(
      { vips: [{ address: '192.0.2.1', nexthops: ['10.0.0.1', 'nope'] }] },
      /s\.yaml: vips\[0\]\.nexthops\[1\]: must be an IP address/,
    );
    bad({ switch: { ecmpMode: 'hash' } }, /switch\.ecmpMode: must be one of resilient, mod-n/);
    bad({ switch: { bucketCount: 1.5 } }, /switch\.bucketCount: must be a whole number/);
    bad(
      { traffic: { lifetime: { kind: 'pareto', alpha: 0 } } },
      /traffic\.lifetime\.alpha: must be at least/,
    );
    bad({ mirror: { transport: 'tcp' } }, /mirror\.transport: must be one of udp, raw/);
    bad({ gnmi: { prot: 1 } }, /gnmi\.prot: is not a known setting/);
    bad(
      { vips: [{ address: '192.0.2.1', nexthops: ['10.0.1.5'] }] },
      /spareServers: 10\.0\.1\.5 is already a nexthop/,
    );
  });
});
