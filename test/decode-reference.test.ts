// Reference check: captures crafted by scapy and dissected by tshark give the same flows,
// outer addresses, VLAN and flags as `flowpin decode`, frame for frame.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TCP_FLAG_NAMES } from '../mirror-receiver/frame-view.js';
import { fixture, flowpinBin, have, haveScapy, run, skipUnless, systemPython } from './helpers/tools.js';

const skip = skipUnless(have('tshark') && haveScapy(), 'tshark or python3-scapy');

interface Expected {
  outerSrc: string;
  outerDst: string;
  vlan: number | null;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: string[];
}

/** tshark's view of every GRE-carried TCP segment, in frame order. */
function tsharkView(pcap: string): Expected[] {
  const fields = [
    'frame.protocols',
    'ip.src',
    'ip.dst',
    'ipv6.src',
    'ipv6.dst',
    'tcp.srcport',
    'tcp.dstport',
    'tcp.flags',
    'vlan.id',
    'ieee8021ad.id',
  ];
  const out = run('tshark', [
    '-o',
    'ip.defragment:FALSE',
    '-o',
    'ipv6.defragment:FALSE',
    '-r',
    pcap,
    '-T',
    'fields',
    '-E',
    'separator=|',
    ...fields.flatMap((f) => ['-e', f]),
  ]);
  const rows: Expected[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [
      protocols = '',
      ip4s = '',
      ip4d = '',
      ip6s = '',
      ip6d = '',
      sport = '',
      dport = '',
      flags = '',
      vlan = '',
      qinq = '',
    ] = line.split('|');
    const layers = protocols.split(':');
    if (!layers.includes('gre') || !layers.includes('tcp')) continue;
    // Addresses come per family in protocol order: the first IP layer is outer, the last inner.
    const lists = { ip: [ip4s.split(','), ip4d.split(',')], ipv6: [ip6s.split(','), ip6d.split(',')] };
    const next = { ip: 0, ipv6: 0 };
    const addrs: [string, string][] = [];
    for (const l of layers) {
      if (l !== 'ip' && l !== 'ipv6') continue;
      const i = next[l]++;
      addrs.push([lists[l][0]?.[i] ?? '?', lists[l][1]?.[i] ?? '?']);
    }
    const outer = addrs[0] as [string, string];
    const inner = addrs[addrs.length - 1] as [string, string];
    const flagByte = parseInt(flags, 16) & 0xff;
    const outermostVlan = qinq !== '' ? qinq.split(',')[0] : vlan !== '' ? vlan.split(',')[0] : undefined;
    rows.push({
      outerSrc: outer[0],
      outerDst: outer[1],
      vlan: outermostVlan === undefined ? null : Number(outermostVlan),
      src: inner[0],
      dst: inner[1],
      sport: Number(sport),
      dport: Number(dport),
      flags: TCP_FLAG_NAMES.filter((_, i) => (flagByte & (1 << i)) !== 0),
    });
  }
  return rows;
}

test('flowpin decode agrees with tshark on scapy-crafted captures', { skip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ref-'));
  try {
    const pcap = path.join(dir, 'mirror.pcap');
    run(systemPython, [fixture('craft_mirror.py'), pcap]);
    const expected = tsharkView(pcap);
    assert.ok(expected.length >= 50, `tshark saw only ${expected.length} GRE-carried TCP segments`);

    const res = spawnSync(process.execPath, [flowpinBin, 'decode', pcap]);
    assert.equal(res.status, 0, res.stderr.toString());
    const lines = res.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), [
        'outerSrc',
        'outerDst',
        'encap',
        'vlan',
        'src',
        'dst',
        'sport',
        'dport',
        'flags',
      ]);
    }
    const got = lines.map(({ encap: _e, ...rest }) => rest);
    assert.deepEqual(got, expected);

    // Every encapsulation is represented in the capture.
    assert.deepEqual(
      new Set(lines.map((l) => l['encap'])),
      new Set(['erspan1', 'erspan2', 'erspan3', 'teb', 'ip']),
    );

    const summary = JSON.parse(res.stderr.toString().trim().split('\n').pop() ?? '{}') as {
      frames: number;
      decoded: number;
      dropped: Record<string, number>;
    };
    assert.equal(summary.decoded, expected.length);
    assert.deepEqual(summary.dropped, { 'not-tcp': 1, 'ip-fragment': 1, 'not-gre': 1 });
    assert.equal(summary.frames, expected.length + 3);

    // The same through stdin, as `tcpdump -U -w - | flowpin decode -` would feed it.
    const viaStdin = spawnSync(process.execPath, [flowpinBin, 'decode', '-'], { input: readFileSync(pcap) });
    assert.equal(viaStdin.status, 0);
    assert.equal(viaStdin.stdout.toString(), res.stdout.toString());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('flowpin decode exits non-zero only when the file cannot be read', () => {
  const missing = spawnSync(process.execPath, [flowpinBin, 'decode', '/nonexistent/x.pcap']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr.toString(), /cannot read pcap/);
  // A pcapng section header with no interfaces or packets is a capture of nothing.
  const pcapng = Buffer.from('0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000', 'hex');
  const emptyNg = spawnSync(process.execPath, [flowpinBin, 'decode', '-'], { input: pcapng });
  assert.equal(emptyNg.status, 0, emptyNg.stderr.toString());
  assert.equal(emptyNg.stdout.toString(), '');
  assert.match(emptyNg.stderr.toString(), /"frames":0,.*"format":"pcapng"/);
  const notPcap = spawnSync(process.execPath, [flowpinBin, 'decode', '-'], {
    input: Buffer.from('this is not a capture'),
  });
  assert.notEqual(notPcap.status, 0);
  assert.match(notPcap.stderr.toString(), /not a pcap or pcapng capture/);
  const short = spawnSync(process.execPath, [flowpinBin, 'decode', '-'], {
    input: Buffer.from('d4c3b2a1', 'hex'),
  });
  assert.notEqual(short.status, 0);
  assert.match(short.stderr.toString(), /before a complete pcap header/);
  const empty = spawnSync(process.execPath, [flowpinBin, 'decode', '-'], { input: Buffer.alloc(0) });
  assert.notEqual(empty.status, 0);
});
