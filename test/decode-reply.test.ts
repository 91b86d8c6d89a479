// The receiver's side of observation: a mirrored server reply (SYN-ACK) keeps the mirrored
// frame's source MAC and the port the ERSPAN header names (ERSPAN II Index; ERSPAN III
// platform sub-header Port ID/Index, platform ids 0x1 and 0x3), through the worker's batch
// format too; frames hand-built and crafted by scapy (an independent implementation).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { BatchWriter, readBatch } from '../mirror-receiver/event-batch.js';
import { isSynAck, toFlowEvent, type FlowEvent } from '../mirror-receiver/flow-event.js';
import { reverseTuple, tupleOf } from '../mirror-receiver/tuple.js';
import { erspanType1, erspanType2 } from '../switch-sim/mirror.js';
import { erspan2, ethernet, gre, tcpPacket } from '../lib/frames.js';
import { haveScapy, skipUnless, systemPython } from './helpers/tools.js';

const SYN_ACK = 0x12;
const reply = (): Buffer =>
  tcpPacket('192.0.2.80', '10.20.0.1', { sport: 443, dport: 40000, flags: SYN_ACK });

function decode(grePayload: Buffer): FlowEvent {
  const d = new MirrorDecoder();
  const r = d.decodeGrePayload(grePayload, '198.51.100.7', '203.0.113.1');
  assert.equal(r, OK, `decode result ${r}`);
  return toFlowEvent(d.view, 1);
}

/** ERSPAN III header with frame type 0 and an 8-byte platform sub-header of the given words. */
function erspan3Sub(w1: number, w2: number, payload: Buffer): Buffer {
  const hdr = Buffer.alloc(20);
  hdr.writeUInt16BE(0x2000, 0);
  hdr.writeUInt16BE(5, 2);
  hdr.writeUInt32BE(0x12345678, 4);
  hdr.writeUInt16BE(0, 8);
  hdr.writeUInt16BE(1, 10);
  hdr.writeUInt32BE(w1 >>> 0, 12);
  hdr.writeUInt32BE(w2 >>> 0, 16);
  return Buffer.concat([hdr, payload]);
}

describe('mirrored server replies', () => {
  test(
    'ERSPAN II: the source MAC and the Index field (20 bits) are kept; the flow is the reverse tuple',
    { timeout: 10_000 },
    () => {
      const ev = decode(
        gre({ protocol: 0x88be, sequence: 1 }, erspan2(9, ethernet({ ethertype: 0x0800 }, reply()))),
      );
      assert.equal(ev.encap, 'erspan2');
      assert.equal(ev.srcMac, '00:1c:73:00:00:02');
      assert.equal(ev.port, 7);
      assert.ok(isSynAck(ev.flags));
      assert.equal(
        reverseTuple(ev.tuple),
        tupleOf({ family: 4, src: '10.20.0.1', dst: '192.0.2.80', sport: 40000, dport: 443 }),
      );
      // The full 20 bits, not the reserved ones above them.
      const big = erspan2(9, ethernet({ ethertype: 0x0800 }, reply()));
      big.writeUInt32BE((0xfff00000 | 0xabcde) >>> 0, 4);
      assert.equal(decode(gre({ protocol: 0x88be, sequence: 1 }, big)).port, 0xabcde);
    },
  );

  test('ERSPAN I (no sequence number) keeps the MAC and names no port', { timeout: 10_000 }, () => {
    const ev = decode(gre({ protocol: 0x88be }, ethernet({ ethertype: 0x0800 }, reply())));
    assert.equal(ev.encap, 'erspan1');
    assert.equal(ev.srcMac, '00:1c:73:00:00:02');
    assert.equal(ev.port, undefined);
  });

  test(
    'ERSPAN III platform sub-header: Platf ID 0x1 names the port in its second word, 0x3 in the low 14 bits of its first; others none',
    { timeout: 10_000 },
    () => {
      const frame = ethernet({ ethertype: 0x0800 }, reply());
      const g = (b: Buffer): Buffer => gre({ protocol: 0x22eb, sequence: 1 }, b);
      assert.equal(decode(g(erspan3Sub((0x1 << 26) | 0x123, 0x00012345, frame))).port, 0x12345);
      assert.equal(decode(g(erspan3Sub((0x3 << 26) | (0x5 << 14) | 0x2abc, 0xdeadbeef, frame))).port, 0x2abc);
      assert.equal(decode(g(erspan3Sub((0x4 << 26) | 0x77, 0x77, frame))).port, undefined);
      assert.equal(decode(g(erspan3Sub((0x1 << 26) | 0x123, 7, frame))).srcMac, '00:1c:73:00:00:02');
    },
  );

  test('a SYN without ACK, or a SYN-ACK with RST, is no reply', { timeout: 10_000 }, () => {
    assert.equal(isSynAck(0x02), false);
    assert.equal(isSynAck(0x16), false);
    assert.equal(isSynAck(0x12), true);
    assert.equal(isSynAck(0x1a), true);
  });

  test(
    'the worker batch format carries the MAC and the port (and their absence)',
    { timeout: 10_000 },
    () => {
      const d = new MirrorDecoder();
      const w = new BatchWriter(4);
      assert.equal(
        d.decodeGrePayload(
          gre({ protocol: 0x88be, sequence: 1 }, erspan2(9, ethernet({ ethertype: 0x0800 }, reply()))),
          '198.51.100.7',
          '203.0.113.1',
        ),
        OK,
      );
      w.add(d.view, 5);
      assert.equal(d.decodeGrePayload(gre({ protocol: 0x0800 }, reply()), '198.51.100.7', '203.0.113.1'), OK);
      w.add(d.view, 6);
      const out: FlowEvent[] = [];
      readBatch(
        w.take(new Float64Array(1)),
        (t) => t,
        (ev) => out.push(ev),
      );
      assert.equal(out.length, 2);
      assert.equal(out[0]?.srcMac, '00:1c:73:00:00:02');
      assert.equal(out[0]?.port, 7);
      assert.equal(out[0]?.flags, SYN_ACK);
      assert.equal(out[1]?.srcMac, undefined);
      assert.equal(out[1]?.port, undefined);
    },
  );

  test(
    "the simulator's reply session frames (ERSPAN II with the port index, type I) decode to the server's MAC and port",
    { timeout: 10_000 },
    () => {
      const pkt = {
        src: '192.0.2.80',
        dst: '10.20.0.1',
        sport: 443,
        dport: 40000,
        protocol: 6,
        flags: SYN_ACK,
        bytes: 74,
      };
      const ev2 = decode(
        erspanType2(pkt, { srcMac: '02:00:0a:00:01:03', portIndex: 0x54321, sessionId: 2, seq: 9 }),
      );
      assert.equal(ev2.encap, 'erspan2');
      assert.equal(ev2.sessionId, 2);
      assert.equal(ev2.srcMac, '02:00:0a:00:01:03');
      assert.equal(ev2.port, 0x54321);
      assert.ok(isSynAck(ev2.flags));
      const ev1 = decode(erspanType1(pkt, '02:00:0a:00:01:03'));
      assert.equal(ev1.encap, 'erspan1');
      assert.equal(ev1.srcMac, '02:00:0a:00:01:03');
      assert.equal(ev1.port, undefined);
    },
  );

  test('IPv6: the reverse tuple of a reply is the client-to-VIP flow', { timeout: 10_000 }, () => {
    const t = tupleOf({ family: 6, src: '2001:db8:5::10', dst: '2001:db8:c::1', sport: 443, dport: 50000 });
    assert.equal(
      reverseTuple(t),
      tupleOf({ family: 6, src: '2001:db8:c::1', dst: '2001:db8:5::10', sport: 50000, dport: 443 }),
    );
  });

  test(
    'scapy-crafted replies (ERSPAN II with index, ERSPAN III with platform sub-headers 0x1 and 0x3) decode to the same MAC and port',
    { timeout: 30_000, skip: skipUnless(haveScapy(), 'python3-scapy') },
    () => {
      const script = `
from scapy.all import Ether, IP, TCP, GRE, raw
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
inner = Ether(src="02:00:0a:00:01:02", dst="00:1c:73:00:00:99") / IP(src="192.0.2.80", dst="10.20.0.1") / TCP(sport=443, dport=40000, flags="SA")
frames = [
  GRE(seqnum_present=1, sequence_number=1, proto=0x88be) / ERSPAN_II(ver=1, session_id=9, index=654321) / inner,
  GRE(seqnum_present=1, sequence_number=1, proto=0x22eb) / ERSPAN_III(ver=2, session_id=9, o=1) / ERSPAN_PlatformSpecific(platf_id=1, info1=17, info2=4242) / inner,
  GRE(seqnum_present=1, sequence_number=1, proto=0x22eb) / ERSPAN_III(ver=2, session_id=9, o=1) / ERSPAN_PlatformSpecific(platf_id=3, info1=(9 << 14) | 1234, info2=99) / inner,
]
for f in frames:
  print(raw(f).hex())
`;
      const r = spawnSync(systemPython, ['-c', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 3);
      const evs = lines.map((h) => decode(Buffer.from(h, 'hex')));
      for (const ev of evs) {
        assert.equal(ev.srcMac, '02:00:0a:00:01:02');
        assert.ok(isSynAck(ev.flags));
        assert.equal(ev.src, '192.0.2.80');
      }
      assert.deepEqual(
        evs.map((e) => e.port),
        [654321, 4242, 1234],
      );
    },
  );
});
