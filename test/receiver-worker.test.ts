// The receiver's worker path: events that crossed from the worker in batches carry every field
// the in-thread decoder gives; the worker keeps reading while the main thread is busy, and
// every frame sent is either received or counted by the kernel as dropped; the kernel's
// per-socket drop count is read from /proc/net/udp for a socket that does not read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { toFlowEvent, type FlowEvent } from '../mirror-receiver/flow-event.js';
import { procNetAddress, udpSocketDrops } from '../mirror-receiver/socket-drops.js';
import { mirrorDatagrams, vxlanDatagrams } from '../bench/mirror-sender.js';
import { repoRoot, skipUnless } from './helpers/tools.js';
import * as f from '../lib/frames.js';

const senderBin = path.join(repoRoot, 'dist/bench/mirror-sender.js');

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function sendAll(port: number, datagrams: Buffer[]): Promise<void> {
  const s = createSocket('udp4');
  for (const d of datagrams)
    await new Promise<void>((resolve, reject) =>
      s.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  s.close();
}

test(
  'events from the worker carry the same fields as the in-thread decoder gives',
  { timeout: 30_000 },
  async () => {
    const payloads = [
      ...mirrorDatagrams(12),
      f.gre(
        { protocol: 0x6558, key: 0xfffffffe },
        f.ethernet(
          { ethertype: 0x86dd, vlans: [4095, 7] },
          f.tcpPacket('::ffff:10.1.2.3', '2001:db8::', { sport: 0, dport: 65535, flags: 0xff }),
        ),
      ),
      f.gre(
        { protocol: 0x22eb, sequence: 3 },
        f.erspan3(
          1023,
          f.ethernet(
            { ethertype: 0x0800, vlans: [0] },
            f.tcpPacket('0.0.0.0', '255.255.255.255', { sport: 1, dport: 2, flags: 0x11 }),
          ),
          { subHeader: true },
        ),
      ),
    ];
    const got: FlowEvent[] = [];
    const receiver = new MirrorReceiver((ev) => got.push(ev));
    const { port } = await receiver.listenUdp({ host: '127.0.0.1', port: 0 });
    try {
      await sendAll(port, payloads);
      await until(() => receiver.status().frames === payloads.length);
    } finally {
      await receiver.stop();
    }
    const d = new MirrorDecoder();
    const want = payloads.map((p) => {
      assert.equal(d.decodeGrePayload(p, '127.0.0.1', '127.0.0.1'), OK);
      return toFlowEvent(d.view, 0);
    });
    assert.equal(got.length, want.length);
    got.forEach((g, i) => {
      assert.ok(Math.abs(g.at - Date.now()) < 60_000, 'stamped with the wall clock');
      assert.deepEqual({ ...g, at: 0 }, want[i], `event ${i}`);
    });
    const st = receiver.status();
    assert.equal(st.decoded, payloads.length);
    assert.equal(st.backlogDrops, 0);
  },
);

test(
  'the worker reads while the main thread is busy; every frame is received or a counted kernel drop',
  { timeout: 60_000 },
  async () => {
    let events = 0;
    const receiver = new MirrorReceiver(() => events++);
    // A small buffer: what the kernel can queue is far less than what is sent while this thread spins.
    const { port } = await receiver.listenUdp({ host: '127.0.0.1', port: 0, receiveBufferBytes: 64 * 1024 });
    try {
      const count = 20_000;
      const child = spawn(process.execPath, [senderBin, String(port), String(count), '40000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      // Busy for longer than the sender needs: nothing on this thread reads the socket meanwhile.
      const busyUntil = Date.now() + 1500;
      while (Date.now() < busyUntil) {
        /* spinning on purpose */
      }
      const framesAfterSpin = receiver.status().frames;
      await once(child, 'exit');
      const { sent } = JSON.parse(out) as { sent: number };
      assert.equal(sent, count);
      await until(() => {
        const st = receiver.status();
        return st.frames + (st.socketDrops ?? 0) >= sent;
      }, 20_000);
      const st = receiver.status();
      assert.notEqual(st.socketDrops, null, '/proc/net/udp has the socket');
      assert.equal(st.frames + (st.socketDrops ?? 0), sent, 'no frame unaccounted for');
      assert.equal(st.decoded, st.frames);
      assert.equal(events + st.backlogDrops, st.decoded);
      // The status seen right after the spin had no batch delivered yet; the worker had read on.
      assert.equal(framesAfterSpin, 0);
      assert.ok(
        st.frames > 2000,
        `only ${st.frames} frames received: the worker did not read while the main thread was busy`,
      );
      assert.ok((st.sockets[0]?.receiveBufferBytes ?? 0) > 0);
    } finally {
      await receiver.stop();
    }
  },
);

test(
  'VXLAN opened by address is read in the worker too: same events as the in-thread decoder, read while the main thread is busy',
  { timeout: 60_000 },
  async () => {
    const got: FlowEvent[] = [];
    const receiver = new MirrorReceiver((ev) => got.push(ev));
    // A small buffer (about a hundred datagrams): read on the main thread, the spin below would lose most.
    const { port } = await receiver.listenVxlan({
      host: '127.0.0.1',
      port: 0,
      receiveBufferBytes: 64 * 1024,
    });
    try {
      assert.deepEqual(receiver.status().listening, [`vxlan:127.0.0.1:${port}`]);
      const count = 2000;
      const child = spawn(
        process.execPath,
        [senderBin, String(port), String(count), '2000', '127.0.0.1', 'vxlan'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      // Busy until the sender has sent everything and exited (a zombie: nothing here can reap it).
      const exited = (): boolean => {
        try {
          return / Z /.test(readFileSync(`/proc/${child.pid ?? 0}/stat`, 'latin1'));
        } catch {
          return true;
        }
      };
      const busyUntil = Date.now() + 30_000;
      while (!exited() && Date.now() < busyUntil) {
        /* spinning on purpose: nothing on this thread reads meanwhile */
      }
      assert.ok(exited(), 'the sender finished while this thread was busy');
      if (child.exitCode === null) await once(child, 'exit');
      const { sent } = JSON.parse(out) as { sent: number };
      assert.equal(sent, count);
      await until(() => {
        const st = receiver.status();
        return st.frames + (st.socketDrops ?? 0) >= sent;
      }, 20_000);
      const st = receiver.status();
      assert.equal(st.frames + (st.socketDrops ?? 0), sent, 'no frame unaccounted for');
      assert.ok(
        st.frames > count * 0.5,
        `only ${st.frames} of ${count} frames received: the VXLAN socket was not read while the main thread was busy`,
      );
      assert.equal(st.sockets[0]?.source, `vxlan:127.0.0.1:${port}`);
      assert.equal(st.sockets[0]?.requestedBufferBytes, 64 * 1024);
      // Every event received is the one the in-thread decoder gives for the datagram sent.
      const d = new MirrorDecoder();
      const want = new Map(
        vxlanDatagrams(count).map((p) => {
          assert.equal(d.decodeVxlanPayload(p, '127.0.0.1', '127.0.0.1'), OK);
          const ev = toFlowEvent(d.view, 0);
          return [ev.tuple, ev] as const;
        }),
      );
      assert.equal(got.length, st.decoded);
      for (const g of got) assert.deepEqual({ ...g, at: 0 }, want.get(g.tuple));
    } finally {
      await receiver.stop();
    }
  },
);

const havePython = spawnSync('/usr/bin/python3', ['-c', 'import socket'], { stdio: 'ignore' }).status === 0;

test(
  'kernel drops of a socket that does not read are read from /proc/net/udp',
  { timeout: 30_000, skip: skipUnless(havePython, 'python3') },
  async () => {
    assert.equal(procNetAddress('127.0.0.1', 4754), '0100007F:1292');
    assert.equal(procNetAddress('::1', 80), '00000000000000000000000001000000:0050');
    const child = spawn(
      '/usr/bin/python3',
      [
        '-c',
        'import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,4096)\ns.bind(("127.0.0.1",0))\nprint(s.getsockname()[1],flush=True)\ntime.sleep(20)',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const port = Number(line.toString().trim());
      assert.equal(udpSocketDrops('127.0.0.1', port), 0);
      await sendAll(port, mirrorDatagrams(500));
      const drops = udpSocketDrops('127.0.0.1', port) ?? -1;
      assert.ok(drops > 0 && drops < 500, `drops ${drops}`);
      assert.equal(udpSocketDrops('127.0.0.1', port === 1 ? 2 : 1), null, 'no socket there');
    } finally {
      child.kill('SIGKILL');
    }
  },
);
