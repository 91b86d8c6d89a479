// The GRE-in-UDP source over loopback: datagrams from a real UDP socket become FlowEvents;
// junk is counted, and a sink that throws neither stops the receiver nor goes uncounted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import type { FlowEvent } from '../mirror-receiver/flow-event.js';
import * as f from '../lib/frames.js';

async function sendAll(port: number, datagrams: Buffer[]): Promise<void> {
  const s = createSocket('udp4');
  for (const d of datagrams)
    await new Promise<void>((resolve, reject) =>
      s.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
  s.close();
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('GRE-in-UDP datagrams become flow events with the sender as switch', async () => {
  const events: FlowEvent[] = [];
  let calls = 0;
  const receiver = new MirrorReceiver(
    (ev) => {
      calls++;
      if (ev.sport === 666) throw new Error('sink failure');
      events.push(ev);
    },
    () => 1234,
  );
  const { port } = await receiver.listenUdp({ host: '127.0.0.1', port: 0 });
  try {
    const syn = (sport: number) =>
      f.gre(
        { protocol: 0x88be },
        f.ethernet(
          { ethertype: 0x0800 },
          f.tcpPacket('10.1.1.1', '192.0.2.5', { sport, dport: 80, flags: 2 }),
        ),
      );
    await sendAll(port, [syn(1000), Buffer.from('not gre'), syn(666), syn(1001)]);
    await until(() => receiver.status().frames === 4);
    assert.deepEqual(
      events.map((e) => [e.outerSrc, e.src, e.sport, e.at]),
      [
        ['127.0.0.1', '10.1.1.1', 1000, 1234],
        ['127.0.0.1', '10.1.1.1', 1001, 1234],
      ],
    );
    const st = receiver.status();
    assert.equal(calls, 3);
    assert.equal(st.decoded, 3);
    assert.equal(st.sinkErrors, 1);
    assert.deepEqual(st.dropped, { 'bad-gre-header': 1 });
    assert.deepEqual(st.listening, [`gre-udp:127.0.0.1:${port}`]);
  } finally {
    await receiver.stop();
  }
  assert.deepEqual(receiver.status().listening, []);
});

test('a port already in use is a clear error', async () => {
  const first = new MirrorReceiver(() => undefined);
  const { port } = await first.listenUdp({ host: '127.0.0.1', port: 0 });
  try {
    const second = new MirrorReceiver(() => undefined);
    await assert.rejects(
      second.listenUdp({ host: '127.0.0.1', port }),
      /cannot listen for GRE-in-UDP on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
    );
  } finally {
    await first.stop();
  }
});
