// Property tests: random and mutated frames never throw out of the decoder, and every frame
// is either decoded or counted under exactly one drop reason.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { DROP_REASONS, OK } from '../mirror-receiver/drop-reasons.js';
import { LinkType } from '../mirror-receiver/decode-outer.js';
import { decodeRecord, toFlowEvent } from '../mirror-receiver/flow-event.js';
import * as f from '../lib/frames.js';

const LINKS = [LinkType.ethernet, LinkType.raw, LinkType.linuxSll, LinkType.linuxSll2, 0, 147];

function checkAccounting(d: MirrorDecoder, frames: number): void {
  const s = d.counters.summary();
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  assert.equal(s.frames, frames);
  assert.equal(s.decoded + dropped, frames, 'every frame decoded or dropped exactly once');
  for (const reason of Object.keys(s.dropped))
    assert.ok((DROP_REASONS as readonly string[]).includes(reason), reason);
}

/** A valid mirrored frame from random choices of encapsulation, tags and addresses. */
const validFrame = fc
  .record({
    encap: fc.constantFrom('erspan1', 'erspan2', 'erspan3', 'teb', 'ip'),
    v6: fc.boolean(),
    outerV6: fc.boolean(),
    udp: fc.boolean(),
    vlans: fc.array(fc.integer({ min: 0, max: 4095 }), { maxLength: 2 }),
    arista: fc.constantFrom(undefined, 'ts64', 'ts48'),
    key: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
    checksum: fc.boolean(),
    seq: fc.boolean(),
    sport: fc.integer({ min: 0, max: 65535 }),
    dport: fc.integer({ min: 0, max: 65535 }),
    flags: fc.integer({ min: 0, max: 255 }),
  })
  .map((c) => {
    const inner = f.tcpPacket(c.v6 ? '2001:db8::5' : '10.5.5.5', c.v6 ? '2001:db8::6' : '10.6.6.6', {
      sport: c.sport,
      dport: c.dport,
      flags: c.flags,
    });
    const eth = () =>
      f.ethernet({ ethertype: c.v6 ? 0x86dd : 0x0800, vlans: c.vlans, arista: c.arista }, inner);
    let greSpec: f.GreSpec;
    let payload: Buffer;
    switch (c.encap) {
      case 'erspan1':
        greSpec = { protocol: 0x88be };
        payload = eth();
        break;
      case 'erspan2':
        greSpec = { protocol: 0x88be, sequence: 9 };
        payload = f.erspan2(3, eth());
        break;
      case 'erspan3':
        greSpec = { protocol: 0x22eb, sequence: c.seq ? 1 : undefined };
        payload = f.erspan3(4, eth(), { subHeader: c.checksum });
        break;
      case 'teb':
        greSpec = { protocol: 0x6558, sequence: c.seq ? 1 : undefined };
        payload = eth();
        break;
      default:
        greSpec = { protocol: c.v6 ? 0x86dd : 0x0800, sequence: c.seq ? 1 : undefined };
        payload = inner;
    }
    if (c.key !== undefined) greSpec.key = c.key;
    if (c.checksum) greSpec.checksum = true;
    const g = f.gre(greSpec, payload);
    const [os, od] = c.outerV6 ? ['2001:db8:a::1', '2001:db8:a::2'] : ['192.0.2.1', '192.0.2.2'];
    const outer = c.udp ? f.outerIp(os, od, 17, f.udp(1000, 4754, g)) : f.outerIp(os, od, 47, g);
    return { frame: f.outerEthernet(outer), c };
  });

test('valid frames of every shape decode to what was built', () => {
  fc.assert(
    fc.property(validFrame, ({ frame, c }) => {
      const d = new MirrorDecoder();
      assert.equal(d.decodeLink(LinkType.ethernet, frame), OK);
      const rec = decodeRecord(d.view);
      assert.equal(rec.encap, c.encap);
      assert.equal(rec.sport, c.sport);
      assert.equal(rec.dport, c.dport);
      assert.equal(d.view.flags, c.flags);
      assert.equal(rec.vlan, c.encap !== 'ip' && c.vlans.length > 0 ? c.vlans[0] : null);
      assert.equal(toFlowEvent(d.view, 0).greKey, c.key ?? null);
    }),
    { numRuns: 500 },
  );
});

test('random bytes under any link type never throw and are counted once', () => {
  fc.assert(
    fc.property(fc.constantFrom(...LINKS), fc.uint8Array({ maxLength: 200 }), (link, bytes) => {
      const d = new MirrorDecoder();
      d.decodeLink(link, Buffer.from(bytes));
      checkAccounting(d, 1);
    }),
    { numRuns: 3000 },
  );
});

test('mutated and truncated valid frames never throw and are counted once', () => {
  fc.assert(
    fc.property(
      validFrame,
      fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.nat(),
      ({ frame }, mutations, cut) => {
        const buf = Buffer.from(frame);
        for (const m of mutations) buf[m.at % buf.length] = m.value;
        const d = new MirrorDecoder();
        d.decodeLink(LinkType.ethernet, buf);
        d.decodeLink(LinkType.ethernet, buf.subarray(0, cut % (buf.length + 1)));
        d.decodeGrePayload(buf.subarray(14 + 20), '1.1.1.1', '2.2.2.2');
        d.decodeIpPacket(buf.subarray(14));
        checkAccounting(d, 4);
      },
    ),
    { numRuns: 3000 },
  );
});

test('a decoded frame reads nothing past the end of its slice', () => {
  // Decode a frame cut out of a larger buffer whose tail holds valid-looking bytes: the
  // decoder must stop at the slice end, not read the neighbour.
  fc.assert(
    fc.property(validFrame, fc.nat(), ({ frame }, cut) => {
      const len = cut % frame.length;
      const big = Buffer.concat([frame.subarray(0, len), frame.subarray(len)]);
      const d = new MirrorDecoder();
      const viaSlice = d.decodeLink(LinkType.ethernet, big, 0, len);
      const e = new MirrorDecoder();
      const viaCopy = e.decodeLink(LinkType.ethernet, Buffer.from(frame.subarray(0, len)));
      assert.equal(viaSlice, viaCopy);
    }),
    { numRuns: 1000 },
  );
});
