// Fault: the mirror socket's receive buffer overflows. A sender process bursts GRE-in-UDP
// mirrored SYNs at a controller whose mirror socket has a tiny receive buffer (a few datagrams),
// faster than one thread reads them (bursts repeated, at most five, until the kernel drops
// some): the kernel's drops must show in
// the metrics (per source) and make the switch's mirror `dropping` and flowpin not ready (a
// change then needs consent); once a window passes with no new loss, it is ready again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordFigures } from '../reliability/figures.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import pino from 'pino';
import { Controller } from '../controller/controller.js';
import { readConfig } from '../controller/config.js';
import { Reader } from '../lib/validate.js';
import { SimAdapter } from '../switch-adapters/sim/adapter.js';
import { repoRoot } from './helpers/tools.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const senderBin = path.join(repoRoot, 'dist/bench/mirror-sender.js');

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not in time: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function metric(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

test(
  'a receive buffer that overflows: drops in the metrics, the mirror dropping and flowpin not ready, then ready again',
  { timeout: 60_000 },
  async () => {
    const { sw } = testSwitch();
    const config = readConfig(
      Reader.fromObject('drops.yaml', {
        mirror: { udp: [{ host: '127.0.0.1', port: 0, receiveBufferBytes: 4096 }] },
        switches: [
          {
            name: 'sw1',
            adapter: 'sim',
            mirrorSources: ['127.0.0.1'],
            vips: [{ address: VIP, nexthops: NEXTHOPS }],
          },
        ],
      }),
    );
    const windowMs = 1500;
    const controller = new Controller({
      config,
      adapters: new Map([['sw1', new SimAdapter(sw)]]),
      logger: pino({ level: 'silent' }),
      loops: false,
      mirrorLossWindowMs: windowMs,
    });
    await controller.start();
    try {
      const port = controller.listening[0]?.port;
      assert.ok(port !== undefined && port > 0);
      const source = `gre-udp:127.0.0.1:${port}`;
      const before = controller.readiness();
      assert.equal(before.ready, true, JSON.stringify(before));
      assert.equal(before.switches[0]?.mirror.dropped, 0);
      const st0 = controller.receiver.status();
      assert.ok(
        (st0.sockets[0]?.receiveBufferBytes ?? 0) < 64 * 1024,
        `a small buffer granted: ${JSON.stringify(st0.sockets)}`,
      );
      assert.equal(st0.sockets[0]?.requestedBufferBytes, 4096);

      // Bounded bursts, sent as fast as the sender can, until the kernel has dropped some.
      let sent = 0;
      for (let burst = 0; burst < 5 && (controller.receiver.status().socketDrops ?? 0) === 0; burst++) {
        const count = 30_000;
        const child = spawn(process.execPath, [senderBin, String(port), String(count), '0'], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        const [code] = (await once(child, 'exit')) as [number | null];
        assert.equal(code, 0);
        sent += (JSON.parse(out.trim()) as { sent: number }).sent;
        await until(
          'every frame received or counted dropped',
          () => {
            const st = controller.receiver.status();
            return st.frames + (st.socketDrops ?? 0) >= sent;
          },
          20_000,
        );
      }

      const st = controller.receiver.status();
      const drops = st.socketDrops ?? 0;
      assert.ok(drops > 0, `the kernel dropped frames: ${JSON.stringify(st)}`);
      assert.equal(st.frames + drops, sent, 'every frame received or counted');
      const text = await controller.metrics.registry.metrics();
      assert.equal(
        metric(text, 'flowpin_mirror_socket_drops_total', `source="${source}"`),
        drops,
        text
          .split('\n')
          .filter((l: string) => l.includes('mirror_socket'))
          .join('\n'),
      );
      assert.equal(
        metric(text, 'flowpin_mirror_receive_buffer_bytes', `source="${source}",kind="requested"`),
        4096,
      );

      const degraded = controller.readiness();
      assert.equal(degraded.ready, false);
      const m = degraded.switches[0]?.mirror;
      assert.equal(m?.state, 'dropping', JSON.stringify(m));
      assert.equal(m?.dropped, drops);
      assert.match(m?.why ?? '', new RegExp(`lost before decoding \\(${source}: ${drops}`));

      // No new loss for a window: trusted again.
      await until(
        'ready again after a window without loss',
        () => controller.readiness().ready,
        windowMs * 4 + 5000,
      );
      assert.equal(controller.readiness().switches[0]?.mirror.state, 'ok');
      assert.equal(controller.readiness().switches[0]?.mirror.dropped, drops, 'the count stays');
      recordFigures({
        fault: 'a receive buffer that overflows (a 4 KiB socket buffer, a burst from a sender process)',
        test: 'test/mirror-drops.test.ts',
        outcome:
          'every frame decoded or counted as a kernel drop (metric and readiness), the mirror dropping and the switch not ready, then ready again after a window without loss',
        inputs: sent,
        dropsCounted: drops,
        figures: { 'frames sent': sent, 'frames decoded': st.frames, 'kernel drops counted': drops },
      });
    } finally {
      await controller.stop();
    }
  },
);

test('mirror.udp[].receiveBufferBytes: 32 MiB unless configured, a bad value names its key', () => {
  const doc = (udp: unknown[]): unknown => ({
    mirror: { udp },
    switches: [
      {
        name: 'sw1',
        adapter: 'sim',
        mirrorSources: ['127.0.0.1'],
        vips: [{ address: VIP, nexthops: NEXTHOPS }],
      },
    ],
  });
  assert.equal(
    readConfig(Reader.fromObject('f.yaml', doc([{ host: '127.0.0.1', port: 4754 }]))).mirror.udp[0]
      ?.receiveBufferBytes,
    32 * 1024 * 1024,
  );
  assert.equal(
    readConfig(
      Reader.fromObject('f.yaml', doc([{ host: '127.0.0.1', port: 4754, receiveBufferBytes: 1 << 20 }])),
    ).mirror.udp[0]?.receiveBufferBytes,
    1 << 20,
  );
  assert.throws(
    () => readConfig(Reader.fromObject('f.yaml', doc([{ port: 4754, receiveBufferBytes: 0 }]))),
    /f\.yaml.*receiveBufferBytes/,
  );
  assert.throws(
    () => readConfig(Reader.fromObject('f.yaml', doc([{ port: 4754, receiveBufferBytes: '32M' }]))),
    /f\.yaml.*receiveBufferBytes/,
  );
});
