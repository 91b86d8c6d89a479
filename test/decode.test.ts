// Decoder unit tests: one frame per encapsulation and per drop reason, built byte by byte.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK, reasonName } from '../mirror-receiver/drop-reasons.js';
import { LinkType } from '../mirror-receiver/decode-outer.js';
import { decodeRecord, toFlowEvent } from '../mirror-receiver/flow-event.js';
import { parseTuple } from '../mirror-receiver/tuple.js';
import * as f from '../lib/frames.js';

const SYN = 0x02;
const inner4 = (flags = SYN) => f.tcpPacket('10.1.2.3', '192.0.2.10', { sport: 40000, dport: 443, flags });
const inner6 = (flags = SYN) =>
  f.tcpPacket('2001:db8::1', '2001:db8:ffff::10', { sport: 51000, dport: 80, flags });

function decodeEth(frame: Buffer): { code: number; d: MirrorDecoder } {
  const d = new MirrorDecoder();
  const code = d.decodeLink(LinkType.ethernet, frame);
  return { code, d };
}

function viaGre(
  greSpec: f.GreSpec,
  payload: Buffer,
  outer: [string, string] = ['172.16.0.1', '172.16.0.2'],
): Buffer {
  return f.outerEthernet(f.outerIp(outer[0], outer[1], 47, f.gre(greSpec, payload)));
}

function expectDecoded(frame: Buffer) {
  const { code, d } = decodeEth(frame);
  assert.equal(code, OK, code === OK ? '' : `dropped as ${reasonName(code)}`);
  return decodeRecord(d.view);
}

function expectDropped(frame: Buffer, reason: string, link: number = LinkType.ethernet) {
  const d = new MirrorDecoder();
  const code = d.decodeLink(link, frame);
  assert.notEqual(code, OK, 'frame decoded but should be dropped');
  assert.equal(reasonName(code), reason);
  assert.deepEqual(d.counters.summary().dropped, { [reason]: 1 });
}

describe('encapsulations', () => {
  test('ERSPAN type I (Arista tunnel mode gre): 0x88BE without sequence, Ethernet right after GRE', () => {
    const rec = expectDecoded(viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800 }, inner4())));
    assert.deepEqual(rec, {
      outerSrc: '172.16.0.1',
      outerDst: '172.16.0.2',
      encap: 'erspan1',
      vlan: null,
      src: '10.1.2.3',
      dst: '192.0.2.10',
      sport: 40000,
      dport: 443,
      flags: ['SYN'],
    });
  });

  test('ERSPAN type II: 0x88BE with sequence and an 8-byte header keeps the session id', () => {
    const { code, d } = decodeEth(
      viaGre({ protocol: 0x88be, sequence: 77 }, f.erspan2(513, f.ethernet({ ethertype: 0x0800 }, inner4()))),
    );
    assert.equal(code, OK);
    assert.equal(decodeRecord(d.view).encap, 'erspan2');
    assert.equal(toFlowEvent(d.view, 0).sessionId, 513);
  });

  test('ERSPAN type III with and without the platform sub-header', () => {
    for (const subHeader of [false, true]) {
      const { code, d } = decodeEth(
        viaGre(
          { protocol: 0x22eb, sequence: 1 },
          f.erspan3(1023, f.ethernet({ ethertype: 0x86dd }, inner6()), { subHeader }),
        ),
      );
      assert.equal(code, OK, `subHeader=${subHeader}`);
      const rec = decodeRecord(d.view);
      assert.equal(rec.encap, 'erspan3');
      assert.equal(rec.src, '2001:db8::1');
      assert.equal(rec.dport, 80);
      assert.equal(toFlowEvent(d.view, 0).sessionId, 1023);
    }
  });

  test('ERSPAN type III frame type 2 carries a bare IP packet', () => {
    const rec = expectDecoded(viaGre({ protocol: 0x22eb }, f.erspan3(5, inner4(), { frameType: 2 })));
    assert.equal(rec.src, '10.1.2.3');
    assert.equal(rec.encap, 'erspan3');
  });

  test('transparent Ethernet bridging 0x6558', () => {
    assert.equal(
      expectDecoded(viaGre({ protocol: 0x6558 }, f.ethernet({ ethertype: 0x0800 }, inner4()))).encap,
      'teb',
    );
  });

  test('bare inner IPv4 (0x0800) and IPv6 (0x86DD)', () => {
    const r4 = expectDecoded(viaGre({ protocol: 0x0800 }, inner4()));
    assert.equal(r4.encap, 'ip');
    assert.equal(r4.dst, '192.0.2.10');
    const r6 = expectDecoded(viaGre({ protocol: 0x86dd }, inner6()));
    assert.equal(r6.encap, 'ip');
    assert.equal(r6.dst, '2001:db8:ffff::10');
  });

  test('every combination of the GRE checksum, key and sequence flags', () => {
    for (let bits = 0; bits < 8; bits++) {
      const spec: f.GreSpec = { protocol: 0x6558 };
      if (bits & 1) spec.checksum = true;
      if (bits & 2) spec.key = 0xfeedbeef;
      if (bits & 4) spec.sequence = 12345;
      const { code, d } = decodeEth(viaGre(spec, f.ethernet({ ethertype: 0x0800 }, inner4())));
      assert.equal(code, OK, `flags ${bits}`);
      assert.equal(toFlowEvent(d.view, 0).greKey, bits & 2 ? 0xfeedbeef : null);
      assert.equal(d.view.sport, 40000);
    }
  });

  test('outer IPv6 carrying GRE', () => {
    const rec = expectDecoded(
      viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800 }, inner4()), [
        '2001:db8:1::1',
        '2001:db8:2::2',
      ]),
    );
    assert.equal(rec.outerSrc, '2001:db8:1::1');
    assert.equal(rec.outerDst, '2001:db8:2::2');
  });

  test('GRE-in-UDP (RFC 8086, port 4754) in a capture', () => {
    const frame = f.outerEthernet(
      f.outerIp(
        '198.51.100.1',
        '198.51.100.2',
        17,
        f.udp(33333, 4754, f.gre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800 }, inner4()))),
      ),
    );
    const rec = expectDecoded(frame);
    assert.equal(rec.outerSrc, '198.51.100.1');
    assert.equal(rec.encap, 'erspan1');
  });

  test('GRE payload from a socket, with outer addresses given as text', () => {
    const d = new MirrorDecoder();
    const code = d.decodeGrePayload(
      f.gre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800 }, inner4())),
      '127.0.0.5',
      '127.0.0.1',
    );
    assert.equal(code, OK);
    const ev = toFlowEvent(d.view, 42);
    assert.equal(ev.outerSrc, '127.0.0.5');
    assert.equal(ev.at, 42);
    assert.deepEqual(parseTuple(ev.tuple), {
      family: 4,
      src: '10.1.2.3',
      dst: '192.0.2.10',
      sport: 40000,
      dport: 443,
    });
  });

  test('raw IP packet entry (raw IPv4 socket delivers the outer header)', () => {
    const d = new MirrorDecoder();
    const pkt = f.outerIp(
      '127.0.0.9',
      '127.0.0.1',
      47,
      f.gre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800 }, inner4())),
    );
    assert.equal(d.decodeIpPacket(pkt), OK);
    assert.equal(decodeRecord(d.view).outerSrc, '127.0.0.9');
  });
});

describe('mirrored Ethernet', () => {
  test('one 802.1Q tag gives the VLAN id', () => {
    assert.equal(
      expectDecoded(viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800, vlans: [100] }, inner4())))
        .vlan,
      100,
    );
  });

  test('QinQ (802.1ad then 802.1Q) reports the outermost VLAN', () => {
    assert.equal(
      expectDecoded(
        viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800, vlans: [300, 42] }, inner4())),
      ).vlan,
      300,
    );
  });

  test('three tags are too many', () => {
    expectDropped(
      viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800, vlans: [1, 2, 3] }, inner4())),
      'too-many-vlan-tags',
    );
  });

  test('Arista timestamp header (64- and 48-bit) before the real EtherType, also with a tag', () => {
    for (const arista of ['ts64', 'ts48'] as const) {
      const rec = expectDecoded(
        viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800, arista, vlans: [7] }, inner4())),
      );
      assert.equal(rec.vlan, 7);
      assert.equal(rec.sport, 40000);
    }
  });

  test('an Arista header of unknown version is dropped', () => {
    const frame = viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800, arista: 'ts64' }, inner4()));
    // The version field sits 14+16 bytes into the outer frame... find it by pattern instead.
    const at = frame.indexOf(Buffer.from([0xd2, 0x8b, 0x00, 0x01, 0x00, 0x10]));
    frame[at + 5] = 0x30;
    expectDropped(frame, 'bad-arista-header');
  });
});

describe('inner IP and TCP', () => {
  test('IPv4 with options', () => {
    const pkt = f.ipv4(
      { src: '10.9.9.9', dst: '10.8.8.8', protocol: 6, options: [0x94, 0x04, 0, 0, 0x01, 0x01, 0x01, 0x00] },
      f.tcp({ sport: 1, dport: 2, flags: 0x12 }),
    );
    const rec = expectDecoded(viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800 }, pkt)));
    assert.equal(rec.src, '10.9.9.9');
    assert.deepEqual(rec.flags, ['SYN', 'ACK']);
  });

  test('IPv6 with hop-by-hop, routing, destination options and a first fragment', () => {
    const pkt = f.ipv6(
      {
        src: 'fe80::1',
        dst: '2001:db8::abcd',
        protocol: 6,
        ext: [{ type: 0 }, { type: 43 }, { type: 60 }, { type: 44, moreFragments: true }],
      },
      f.tcp({ sport: 9, dport: 10, flags: 0x02 }),
    );
    const rec = expectDecoded(viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x86dd }, pkt)));
    assert.equal(rec.dst, '2001:db8::abcd');
    assert.equal(rec.sport, 9);
  });

  test('non-first fragments are skipped, IPv4 and IPv6', () => {
    const v4 = f.ipv4(
      { src: '10.0.0.1', dst: '10.0.0.2', protocol: 6, fragOffset: 3 },
      f.tcp({ sport: 1, dport: 2, flags: 2 }),
    );
    expectDropped(viaGre({ protocol: 0x0800 }, v4), 'ip-fragment');
    const v6 = f.ipv6(
      { src: '::1', dst: '::2', protocol: 6, ext: [{ type: 44, fragOffset: 10 }] },
      f.tcp({ sport: 1, dport: 2, flags: 2 }),
    );
    expectDropped(viaGre({ protocol: 0x86dd }, v6), 'ip-fragment');
  });

  test('non-TCP is skipped', () => {
    expectDropped(
      viaGre(
        { protocol: 0x0800 },
        f.ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17 }, f.udp(1, 2, Buffer.alloc(4))),
      ),
      'not-tcp',
    );
  });

  test('all eight TCP flags by name, in order', () => {
    const rec = expectDecoded(viaGre({ protocol: 0x0800 }, inner4(0xff)));
    assert.deepEqual(rec.flags, ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR']);
  });

  test('Ethernet padding after a short IPv4 packet is ignored', () => {
    const frame = Buffer.concat([viaGre({ protocol: 0x0800 }, inner4()), Buffer.alloc(12, 0xee)]);
    assert.equal(expectDecoded(frame).sport, 40000);
  });
});

describe('drops, by reason', () => {
  const good = () => viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0800 }, inner4()));

  test('truncation at every layer is counted, never thrown', () => {
    const frame = good();
    const seen = new Set<string>();
    for (let len = 0; len < frame.length; len++) {
      const d = new MirrorDecoder();
      const code = d.decodeLink(LinkType.ethernet, frame.subarray(0, len));
      assert.notEqual(code, OK, `decoded a frame cut at ${len}`);
      seen.add(reasonName(code));
    }
    // A truncated outer IP header counts as truncated; inside, the outer total length points past the
    // capture.
    for (const r of [
      'truncated-link',
      'truncated-outer-ip',
      'truncated-gre',
      'truncated-ethernet',
      'truncated-ip',
      'truncated-tcp',
    ]) {
      assert.ok(seen.has(r), `no cut gave ${r}: ${[...seen].join(',')}`);
    }
  });

  test('unknown GRE protocol, GRE version 1, routing flag', () => {
    expectDropped(viaGre({ protocol: 0x1234 }, Buffer.alloc(40)), 'unknown-gre-protocol');
    const v1 = good();
    const greAt = 14 + 20;
    v1[greAt + 1] = 0x01;
    expectDropped(v1, 'bad-gre-header');
    const routed = good();
    routed[greAt] = 0x40;
    expectDropped(routed, 'bad-gre-header');
  });

  test('wrong ERSPAN version nibble', () => {
    const frame = viaGre(
      { protocol: 0x88be, sequence: 1 },
      f.erspan2(1, f.ethernet({ ethertype: 0x0800 }, inner4())),
    );
    frame[14 + 20 + 8] = 0x20;
    expectDropped(frame, 'bad-erspan-header');
  });

  test('outer packet that is not GRE, not IP, or a fragment', () => {
    expectDropped(
      f.outerEthernet(f.outerIp('10.0.0.1', '10.0.0.2', 6, f.tcp({ sport: 1, dport: 2, flags: 2 }))),
      'not-gre',
    );
    expectDropped(
      f.outerEthernet(f.outerIp('10.0.0.1', '10.0.0.2', 17, f.udp(1, 53, Buffer.alloc(10)))),
      'not-gre',
    );
    expectDropped(f.ethernet({ ethertype: 0x0806 }, Buffer.alloc(28)), 'not-ip');
    const frag = f.outerEthernet(
      f.ipv4(
        { src: '10.0.0.1', dst: '10.0.0.2', protocol: 47, moreFragments: true },
        f.gre({ protocol: 0x0800 }, inner4()),
      ),
    );
    expectDropped(frag, 'outer-fragment');
  });

  test('bad IP header lengths and an unknown inner EtherType', () => {
    const frame = good();
    frame[14] = 0x43; // outer IHL 3
    expectDropped(frame, 'bad-outer-ip');
    expectDropped(
      viaGre({ protocol: 0x88be }, f.ethernet({ ethertype: 0x0806 }, Buffer.alloc(28))),
      'unknown-ethertype',
    );
    const badInner = viaGre({ protocol: 0x0800 }, inner4());
    badInner[14 + 20 + 4] = 0x52; // inner version 5
    expectDropped(badInner, 'bad-ip-header');
  });

  test('TCP data offset below 5', () => {
    const frame = viaGre({ protocol: 0x0800 }, inner4());
    frame[14 + 20 + 4 + 20 + 12] = 0x40;
    expectDropped(frame, 'bad-tcp-header');
  });

  test('unknown link type', () => {
    expectDropped(good(), 'unknown-link-type', 147);
  });
});

describe('link types', () => {
  const ipPkt = () => f.outerIp('10.0.0.1', '10.0.0.2', 47, f.gre({ protocol: 0x0800 }, inner4()));

  test('raw IP, Linux cooked v1 and v2', () => {
    for (const [link, frame] of [
      [LinkType.raw, ipPkt()],
      [LinkType.ipv4, ipPkt()],
      [
        LinkType.linuxSll,
        Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00]), ipPkt()]),
      ],
      [
        LinkType.linuxSll2,
        Buffer.concat([
          Buffer.from([0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]),
          ipPkt(),
        ]),
      ],
    ] as const) {
      const d = new MirrorDecoder();
      assert.equal(d.decodeLink(link, frame), OK, `link type ${link}`);
      assert.equal(decodeRecord(d.view).outerSrc, '10.0.0.1');
    }
  });
});
