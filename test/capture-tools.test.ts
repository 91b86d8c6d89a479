// Captures written by the tools users have: `tcpdump -w` (classic pcap, micro- and
// nanosecond), `editcap -F pcapng` and `tshark -F pcapng` (pcapng, with if_tsresol), and
// `mergecap` of an Ethernet and a raw-IP capture (pcapng with two interfaces of different link
// types). Each must read back as the same packets at the same times, and `flowpin decode`
// must print the same records as for the original classic pcap.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readPcap } from '../mirror-receiver/sources/pcap.js';
import { mirrorCorpus, forEachRecord } from '../bench/mirror-corpus.js';
import { flowpinBin, have, run, skipUnless } from './helpers/tools.js';
import * as f from '../lib/frames.js';

const skip = skipUnless(
  have('tcpdump') && have('tshark') && have('editcap', ['-h']) && have('mergecap', ['-h']),
  'tcpdump, tshark, editcap or mergecap',
);

interface Pkt {
  hex: string;
  linkType: number;
  atMs: number;
}

async function packets(file: string): Promise<Pkt[]> {
  const out: Pkt[] = [];
  await readPcap(file, (buf, off, end, linkType, atMs) =>
    out.push({ hex: buf.toString('hex', off, end), linkType, atMs }),
  );
  return out;
}

function decode(file: string): { lines: string[]; summary: Record<string, unknown> } {
  const res = spawnSync(process.execPath, [flowpinBin, 'decode', file], { maxBuffer: 64 * 1024 * 1024 });
  assert.equal(res.status, 0, res.stderr.toString());
  return {
    lines: res.stdout
      .toString()
      .split('\n')
      .filter((l) => l !== ''),
    summary: JSON.parse(res.stderr.toString().trim().split('\n').pop() ?? '{}') as Record<string, unknown>,
  };
}

const sameTime = (a: number, b: number): boolean => Math.abs(a - b) < 1e-3;

test(
  'tcpdump, editcap, tshark and mergecap captures read back exactly',
  { skip, timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-cap-'));
    try {
      const p = (n: string): string => path.join(dir, n);
      const { pcap } = mirrorCorpus(500);
      writeFileSync(p('orig.pcap'), pcap);
      // The same frames without their Ethernet header, as a raw-IP (LINKTYPE_RAW, 101) capture, a second
      // later.
      const raw: Buffer[] = [];
      forEachRecord(pcap, (off, end) => raw.push(pcap.subarray(off + 14, end)));
      const rawFile = f.pcapFile(101, raw.slice(0, 50));
      writeFileSync(p('raw.pcap'), rawFile);

      run('tcpdump', ['-r', p('orig.pcap'), '-w', p('tcpdump.pcap')]);
      run('tcpdump', ['--time-stamp-precision=nano', '-r', p('orig.pcap'), '-w', p('tcpdump-ns.pcap')]);
      run('editcap', ['-F', 'pcapng', p('orig.pcap'), p('editcap.pcapng')]);
      run('editcap', ['-F', 'pcapng', p('tcpdump-ns.pcap'), p('editcap-ns.pcapng')]);
      run('tshark', ['-r', p('orig.pcap'), '-F', 'pcapng', '-w', p('tshark.pcapng')]);
      run('mergecap', ['-F', 'pcapng', '-w', p('merged.pcapng'), p('orig.pcap'), p('raw.pcap')]);

      const orig = await packets(p('orig.pcap'));
      assert.equal(orig.length, 500);
      // The nanosecond pcap and the pcapng files really are what they should be.
      assert.equal(readFileSync(p('tcpdump-ns.pcap')).readUInt32LE(0), 0xa1b23c4d);
      for (const n of ['editcap.pcapng', 'editcap-ns.pcapng', 'tshark.pcapng', 'merged.pcapng'])
        assert.equal(readFileSync(p(n)).readUInt32LE(0), 0x0a0d0d0a, n);

      for (const n of [
        'tcpdump.pcap',
        'tcpdump-ns.pcap',
        'editcap.pcapng',
        'editcap-ns.pcapng',
        'tshark.pcapng',
      ]) {
        const got = await packets(p(n));
        assert.equal(got.length, orig.length, n);
        got.forEach((g, i) => {
          const o = orig[i] as Pkt;
          assert.equal(g.hex, o.hex, `${n} packet ${i}`);
          assert.equal(g.linkType, 1, `${n} packet ${i}`);
          assert.ok(sameTime(g.atMs, o.atMs), `${n} packet ${i}: ${g.atMs} != ${o.atMs}`);
        });
      }

      // Two interfaces: every packet keeps its own interface's link type.
      const merged = await packets(p('merged.pcapng'));
      const rawPkts = await packets(p('raw.pcap'));
      const key = (x: Pkt): string => `${x.linkType}:${x.atMs.toFixed(3)}:${x.hex}`;
      assert.deepEqual(merged.map(key).sort(), [...orig, ...rawPkts].map(key).sort());
      assert.deepEqual(new Set(merged.map((x) => x.linkType)), new Set([1, 101]));

      // flowpin decode prints the very same records for every form of the capture.
      const want = decode(p('orig.pcap'));
      assert.equal(want.lines.length, 500);
      for (const n of [
        'tcpdump.pcap',
        'tcpdump-ns.pcap',
        'editcap.pcapng',
        'editcap-ns.pcapng',
        'tshark.pcapng',
      ]) {
        const got = decode(p(n));
        assert.deepEqual(got.lines, want.lines, n);
        assert.equal(
          (got.summary['capture'] as { format: string }).format,
          n.endsWith('.pcapng') ? 'pcapng' : 'pcap',
        );
      }
      const rawLines = decode(p('raw.pcap')).lines;
      assert.equal(rawLines.length, 50);
      assert.deepEqual(decode(p('merged.pcapng')).lines.sort(), [...want.lines, ...rawLines].sort());

      // A capture cut mid-record: the whole records before the cut, and the cut counted.
      const cut = readFileSync(p('editcap.pcapng')).subarray(0, 20_000);
      const res = spawnSync(process.execPath, [flowpinBin, 'decode', '-'], { input: cut });
      assert.equal(res.status, 0, res.stderr.toString());
      const lines = res.stdout
        .toString()
        .split('\n')
        .filter((l) => l !== '');
      assert.deepEqual(lines, want.lines.slice(0, lines.length));
      assert.ok(lines.length > 50);
      assert.match(res.stderr.toString(), /"truncated":1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
