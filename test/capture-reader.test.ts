// CaptureReader: classic pcap and pcapng written byte by byte (both byte orders, both pcap
// timestamp precisions, per-interface link types, timestamp resolutions and offsets, EPB, SPB,
// obsolete PB, blocks to skip), fed in random chunks and cut anywhere: every whole record
// comes out with its bytes, link type and time; a cut inside a record is counted, never thrown.
// Seed: FC_SEED=<n> reproduces a run (each test prints its seed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CaptureReader } from '../mirror-receiver/sources/capture-reader.js';
import { classicPcap, pcapng, type BlockSpec, type Built, type IfaceSpec } from './helpers/captures.js';

const seed =
  process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : Math.floor(Math.random() * 2 ** 31);

interface Got {
  data: Buffer;
  linkType: number;
  atMs: number;
}

function readAll(file: Buffer, cuts: number[]): { got: Got[]; reader: CaptureReader } {
  const got: Got[] = [];
  const reader = new CaptureReader((buf, off, end, linkType, atMs) => {
    got.push({ data: Buffer.from(buf.subarray(off, end)), linkType, atMs });
  });
  let prev = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < file.length).sort((a, b) => a - b), file.length]) {
    reader.push(file.subarray(prev, c));
    prev = c;
  }
  reader.end();
  return { got, reader };
}

const frameBytes = fc.uint8Array({ minLength: 0, maxLength: 90 }).map((a) => Buffer.from(a));

const classicArb = fc
  .record({
    le: fc.boolean(),
    nano: fc.boolean(),
    linkType: fc.constantFrom(1, 101, 113, 276),
    frames: fc.array(
      fc.record({
        data: frameBytes,
        sec: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        frac: fc.integer({ min: 0, max: 999_999 }),
      }),
      { maxLength: 12 },
    ),
  })
  .map((s) => classicPcap(s));

const ifaceArb: fc.Arbitrary<IfaceSpec> = fc.record(
  {
    linkType: fc.constantFrom(1, 101, 113, 228, 229, 276),
    snapLen: fc.constantFrom(0, 40, 65535),
    tsresol: fc.constantFrom(3, 6, 9, 0x80 | 10, 0x80 | 20),
    tsoffset: fc.integer({ min: -1000, max: 2_000_000_000 }),
  },
  { requiredKeys: ['linkType'] },
);

const pcapngArb = fc
  .record({
    le: fc.boolean(),
    ifaces: fc.array(ifaceArb, { minLength: 1, maxLength: 3 }),
    later: fc.array(ifaceArb, { minLength: 1, maxLength: 2 }),
    picks: fc.array(fc.tuple(fc.nat(20), fc.nat(), frameBytes, fc.bigInt({ min: 0n, max: 2n ** 62n })), {
      maxLength: 14,
    }),
  })
  .map(({ le, ifaces, later, picks }) => {
    const blocks: BlockSpec[] = [];
    let current = ifaces;
    for (const [kind, n, data, ts] of picks) {
      if (kind < 8) blocks.push({ kind: 'epb', iface: n % current.length, ts, data });
      else if (kind < 11) blocks.push({ kind: 'pb', iface: n % current.length, ts, data });
      else if (kind < 15) blocks.push({ kind: 'spb', data });
      else if (kind < 19)
        blocks.push({ kind: 'skip', type: [4, 5, 0x0bad, 0x40000bad][n % 4] as number, body: data });
      else {
        blocks.push({ kind: 'section', ifaces: later });
        current = later;
      }
    }
    return pcapng(le, ifaces, blocks);
  });

function check(built: Built, cuts: number[], cutAt: number): void {
  const file = built.file.subarray(0, cutAt);
  const { got, reader } = readAll(file, cuts);
  const expectedCount = built.packets.filter((p) => p.end <= cutAt).length;
  // Records come out in order, as written, up to the cut; skipped blocks count toward boundaries only.
  assert.ok(got.length <= built.packets.length);
  for (let i = 0; i < got.length; i++) {
    const want = built.packets[i];
    const g = got[i] as Got;
    assert.ok(want !== undefined);
    assert.deepEqual(g.data, want.data, `record ${i} bytes`);
    assert.equal(g.linkType, want.linkType, `record ${i} link type`);
    assert.ok(
      Math.abs(g.atMs - want.atMs) <= Math.max(1e-3, Math.abs(want.atMs) * 1e-15),
      `record ${i} time ${g.atMs} != ${want.atMs}`,
    );
  }
  const atBoundary = cutAt === 0 || built.boundaries.includes(cutAt);
  assert.equal(reader.stats.error, undefined, 'a well-formed capture never stops the reader');
  assert.equal(reader.stats.truncated, atBoundary ? 0 : 1, `truncated at ${cutAt}`);
  assert.equal(got.length, expectedCount);
  assert.equal(reader.stats.records, got.length);
}

test('classic pcap, either byte order and precision, any chunking, cut anywhere', (t) => {
  t.diagnostic(`seed ${seed}`);
  fc.assert(
    fc.property(classicArb, fc.array(fc.nat(), { maxLength: 6 }), fc.nat(), (built, cuts, cut) => {
      check(
        built,
        cuts.map((c) => c % (built.file.length + 1)),
        cut % (built.file.length + 1),
      );
    }),
    { seed, numRuns: 300 },
  );
});

test('pcapng, either byte order, per-interface link type and time resolution, any chunking, cut anywhere', (t) => {
  t.diagnostic(`seed ${seed}`);
  fc.assert(
    fc.property(pcapngArb, fc.array(fc.nat(), { maxLength: 6 }), fc.nat(), (built, cuts, cut) => {
      check(
        built,
        cuts.map((c) => c % (built.file.length + 1)),
        cut % (built.file.length + 1),
      );
    }),
    { seed, numRuns: 300 },
  );
});

test('pcapng: an SPB takes the snap length of interface 0 and the time of the latest EPB', () => {
  const data = Buffer.alloc(100, 7);
  const b = pcapng(
    false,
    [{ linkType: 101, snapLen: 60, tsresol: 9 }],
    [
      { kind: 'spb', data },
      { kind: 'epb', iface: 0, ts: 1_700_000_000_123_456_789n, data: data.subarray(0, 50) },
      { kind: 'spb', data },
    ],
  );
  const { got, reader } = readAll(b.file, [13, 14, 200]);
  assert.deepEqual(
    got.map((g) => [g.data.length, g.linkType]),
    [
      [60, 101],
      [50, 101],
      [60, 101],
    ],
  );
  assert.equal(got[0]?.atMs, 0);
  assert.ok(Math.abs((got[1]?.atMs ?? 0) - 1_700_000_000_123.456789) < 1e-3);
  assert.equal(got[2]?.atMs, got[1]?.atMs);
  assert.equal(reader.stats.format, 'pcapng');
});

test('pcapng: a packet block naming an unknown interface or overrunning its block is skipped and counted', () => {
  const good = pcapng(
    true,
    [{ linkType: 1 }],
    [
      { kind: 'epb', iface: 0, ts: 5n, data: Buffer.alloc(20, 1) },
      { kind: 'epb', iface: 0, ts: 6n, data: Buffer.alloc(20, 2) },
    ],
  );
  const file = Buffer.from(good.file);
  const firstEpb = good.boundaries[1] as number;
  file.writeUInt32LE(3, firstEpb + 8); // interface 3 was never described
  const { got, reader } = readAll(file, []);
  assert.equal(got.length, 1);
  assert.equal(got[0]?.data[0], 2);
  assert.equal(reader.stats.malformed, 1);
  const secondEpb = good.boundaries[2] as number;
  const file2 = Buffer.from(good.file);
  file2.writeUInt32LE(1000, secondEpb + 20); // captured length beyond the block
  const r2 = readAll(file2, []);
  assert.equal(r2.got.length, 1);
  assert.equal(r2.reader.stats.malformed, 1);
});

test('input that is not a capture, or lengths that cannot be, stop the reader with a reason', () => {
  assert.match(
    readAll(Buffer.from('GET / HTTP/1.1\r\n'), []).reader.stats.error ?? '',
    /not a pcap or pcapng capture \(magic 0x20544547\)/,
  );
  const c = classicPcap({
    le: true,
    nano: false,
    linkType: 1,
    frames: [{ data: Buffer.alloc(10), sec: 1, frac: 0 }],
  });
  const bad = Buffer.from(c.file);
  bad.writeUInt32LE(0x7fffffff, 24 + 8);
  const r = readAll(bad, [30]);
  assert.match(r.reader.stats.error ?? '', /packet record of 2147483647 bytes/);
  assert.equal(r.got.length, 0);
  const ng = pcapng(true, [{ linkType: 1 }], []);
  const badNg = Buffer.from(ng.file);
  badNg.writeUInt32LE(13, 4); // SHB length not a multiple of 4
  assert.match(readAll(badNg, []).reader.stats.error ?? '', /pcapng block length 13 is impossible/);
  const badBom = Buffer.from(ng.file);
  badBom.writeUInt32LE(0x12345678, 8);
  assert.match(readAll(badBom, []).reader.stats.error ?? '', /byte-order magic/);
});

test('random bytes after a valid header never throw', (t) => {
  t.diagnostic(`seed ${seed}`);
  const heads = [
    classicPcap({ le: true, nano: false, linkType: 1, frames: [] }).file,
    classicPcap({ le: false, nano: true, linkType: 1, frames: [] }).file,
    pcapng(true, [{ linkType: 1 }], []).file,
    pcapng(false, [{ linkType: 1 }], []).file,
  ];
  fc.assert(
    fc.property(
      fc.nat(3),
      fc.uint8Array({ maxLength: 400 }),
      fc.array(fc.nat(400), { maxLength: 5 }),
      (h, tail, cuts) => {
        const file = Buffer.concat([heads[h] as Buffer, tail]);
        const { got, reader } = readAll(file, cuts);
        assert.equal(reader.stats.records, got.length);
        assert.ok(reader.stats.truncated === 0 || reader.stats.truncated === 1);
      },
    ),
    { seed, numRuns: 500 },
  );
});
