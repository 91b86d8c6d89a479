// RecordWriter: the bytes `flowpin decode` writes for a decoded frame are exactly
// JSON.stringify(decodeRecord(view)) + '\n', for random frames: IPv4 and IPv6 addresses with
// zero runs (RFC 5952 compression, IPv4-mapped), VLANs, every flags byte, every encapsulation,
// and outer addresses given as text by a socket. FC_SEED=<n> reproduces a run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { LinkType } from '../mirror-receiver/decode-outer.js';
import { decodeRecord } from '../mirror-receiver/flow-event.js';
import { RecordWriter } from '../mirror-receiver/record-writer.js';
import { ipv6At } from '../lib/addr.js';
import * as f from '../lib/frames.js';

const seed =
  process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Math.floor(Math.random() * 2 ** 31);

/** IPv6 addresses rich in zero words, so that every compression case comes up. */
const v6 = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  })
  .chain((w) =>
    fc.boolean().map((mapped) => {
      const words = mapped ? [0, 0, 0, 0, 0, 0xffff, w[6] as number, w[7] as number] : w;
      const b = Buffer.alloc(16);
      words.forEach((x, i) => b.writeUInt16BE(x, 2 * i));
      return ipv6At(b, 0);
    }),
  );
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));

const frame = fc.record({
  inner6: fc.boolean(),
  outer6: fc.boolean(),
  a4: fc.array(v4, { minLength: 4, maxLength: 4 }),
  a6: fc.array(v6, { minLength: 4, maxLength: 4 }),
  encap: fc.constantFrom('erspan1', 'erspan2', 'erspan3', 'teb', 'ip'),
  vlans: fc.array(fc.integer({ min: 0, max: 4095 }), { maxLength: 2 }),
  sport: fc.integer({ min: 0, max: 65535 }),
  dport: fc.integer({ min: 0, max: 65535 }),
  flags: fc.integer({ min: 0, max: 255 }),
  udp: fc.boolean(),
});

test('written lines equal JSON.stringify of the decoded record, byte for byte', (t) => {
  t.diagnostic(`seed ${seed}`);
  const d = new MirrorDecoder();
  const w = new RecordWriter(4096);
  fc.assert(
    fc.property(frame, (c) => {
      const [is, id] = c.inner6
        ? [c.a6[0] as string, c.a6[1] as string]
        : [c.a4[0] as string, c.a4[1] as string];
      const [os, od] = c.outer6
        ? [c.a6[2] as string, c.a6[3] as string]
        : [c.a4[2] as string, c.a4[3] as string];
      const inner = f.tcpPacket(is, id, { sport: c.sport, dport: c.dport, flags: c.flags });
      const eth = f.ethernet({ ethertype: c.inner6 ? 0x86dd : 0x0800, vlans: c.vlans }, inner);
      const g =
        c.encap === 'erspan1'
          ? f.gre({ protocol: 0x88be }, eth)
          : c.encap === 'erspan2'
            ? f.gre({ protocol: 0x88be, sequence: 1 }, f.erspan2(3, eth))
            : c.encap === 'erspan3'
              ? f.gre({ protocol: 0x22eb, sequence: 1 }, f.erspan3(3, eth))
              : c.encap === 'teb'
                ? f.gre({ protocol: 0x6558 }, eth)
                : f.gre({ protocol: c.inner6 ? 0x86dd : 0x0800 }, inner);
      const outer = f.outerEthernet(
        c.udp ? f.outerIp(os, od, 17, f.udp(1, 4754, g)) : f.outerIp(os, od, 47, g),
      );
      assert.equal(d.decodeLink(LinkType.ethernet, outer), OK);
      w.reset();
      w.write(d.view);
      assert.equal(w.bytes().toString('latin1'), JSON.stringify(decodeRecord(d.view)) + '\n');
      // The same frame from a socket that gives the outer addresses as text.
      assert.equal(d.decodeGrePayload(g, os, od), OK);
      w.reset();
      w.write(d.view);
      assert.equal(w.bytes().toString('latin1'), JSON.stringify(decodeRecord(d.view)) + '\n');
    }),
    { seed, numRuns: 2000 },
  );
});

test('the writer reports full before a line could overrun its buffer', () => {
  const d = new MirrorDecoder();
  const w = new RecordWriter(2048);
  const inner = f.tcpPacket(
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe',
    { sport: 65535, dport: 65535, flags: 255 },
  );
  const outer = f.outerEthernet(
    f.outerIp(
      'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd',
      'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc',
      47,
      f.gre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x86dd, vlans: [4095, 4095] }, inner)),
    ),
  );
  assert.equal(d.decodeLink(LinkType.ethernet, outer), OK);
  const line = JSON.stringify(decodeRecord(d.view)) + '\n';
  let lines = 0;
  while (!w.full) {
    w.write(d.view);
    lines++;
  }
  assert.ok(lines >= 4);
  assert.equal(w.bytes().toString('latin1'), line.repeat(lines));
  assert.ok(w.length <= w.buf.length);
});
