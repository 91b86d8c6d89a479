// Decode benchmark. Whole processes on one capture file of mirrored SYNs (ERSPAN I, II, III,
// transparent Ethernet, bare IP GRE, each over IP and over GRE-in-UDP, IPv4 and IPv6 inside):
// `flowpin decode FILE`, `tcpdump -nr FILE` and `tshark -r FILE -T fields ...`, each writing
// to /dev/null, runs interleaved so that load changes hit all three alike; wall time and peak
// memory per run. Then in-process rates: the decoder alone from memory, decoder plus FlowEvent,
// the capture reader alone; and heap bytes per tracked flow in the flow table.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { toFlowEvent } from '../mirror-receiver/flow-event.js';
import { readPcap } from '../mirror-receiver/sources/pcap.js';
import { tupleAt } from '../mirror-receiver/tuple.js';
import { FlowTable, flowKey } from '../controller/flow-table.js';
import { NexthopRegistry } from '../controller/nexthop-registry.js';
import { forEachRecord, mirrorCorpus } from './mirror-corpus.js';
import { LinkType } from '../mirror-receiver/decode-outer.js';
import { repeated, runContext, type BenchOutput, type Figure } from './results.js';

export interface DecodeBenchOptions {
  frames: number;
  /**
   * Frames of the second capture, Arista's shape (70 % ERSPAN I over IPv4, 15 % ERSPAN II, 15 % GRE-in-UDP).
   */
  aristaFrames: number;
  /** Runs of each whole-process command (tshark's: `tsharkRuns`). */
  runs: number;
  tsharkRuns: number;
  /** Flows in the flow-table memory measurement. */
  flows: number;
}

export const DECODE_FULL: DecodeBenchOptions = {
  frames: 1_000_000,
  aristaFrames: 300_000,
  runs: 5,
  tsharkRuns: 2,
  flows: 1_000_000,
};
export const DECODE_TINY: DecodeBenchOptions = {
  frames: 2_000,
  aristaFrames: 1_000,
  runs: 1,
  tsharkRuns: 1,
  flows: 50_000,
};

const flowpinBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/flowpin.js');
const TSHARK_FIELDS = [
  'ip.src',
  'ip.dst',
  'ipv6.src',
  'ipv6.dst',
  'tcp.srcport',
  'tcp.dstport',
  'tcp.flags',
  'vlan.id',
];

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) for (let i = 0; i < 3; i++) g();
}

interface ProcessRun {
  seconds: number;
  /** Peak resident memory in MiB (GNU time's %M), NaN without /usr/bin/time. */
  peakMiB: number;
}

/** Runs a command with stdout to /dev/null; wall time from here, peak memory from GNU time. */
function timeProcess(cmd: string, args: string[]): ProcessRun {
  const hasTime = existsSync('/usr/bin/time');
  const devnull = openSync('/dev/null', 'w');
  try {
    const t0 = process.hrtime.bigint();
    const res = hasTime
      ? spawnSync('/usr/bin/time', ['-f', 'peak-kb %M', cmd, ...args], {
          stdio: ['ignore', devnull, 'pipe'],
          maxBuffer: 64 * 1024 * 1024,
        })
      : spawnSync(cmd, args, { stdio: ['ignore', devnull, 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.status !== 0)
      throw new Error(`${cmd} exited ${res.status}: ${res.stderr.toString().slice(-500)}`);
    const kb = /peak-kb (\d+)/.exec(res.stderr.toString())?.[1];
    return { seconds, peakMiB: kb === undefined ? NaN : Number(kb) / 1024 };
  } finally {
    closeSync(devnull);
  }
}

function decodeRate(pcap: Buffer, linkType: number, frames: number, withEvents: boolean): number {
  const d = new MirrorDecoder();
  let sink = 0;
  const t0 = process.hrtime.bigint();
  forEachRecord(pcap, (off, end) => {
    if (d.decodeLink(linkType, pcap, off, end) === OK)
      sink += withEvents ? toFlowEvent(d.view, 0).sport : d.view.sport;
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (d.counters.decoded !== frames || sink === 0)
    throw new Error(`decoded ${d.counters.decoded} of ${frames}`);
  return frames / s;
}

async function readerRate(file: string, frames: number): Promise<number> {
  let n = 0;
  const t0 = process.hrtime.bigint();
  await readPcap(file, () => n++);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (n !== frames) throw new Error(`reader saw ${n} of ${frames}`);
  return frames / s;
}

function bytesPerFlow(v6: boolean, flows: number): number {
  const reg = new NexthopRegistry();
  const nexthops = [1, 2, 3, 4].map((i) => reg.intern('sw1', '192.0.2.80', `10.9.0.${i}`));
  let t = 0;
  const addr = new Uint8Array(36);
  gc();
  const before = process.memoryUsage().heapUsed;
  const table = new FlowTable({ maxFlows: flows, maxAgeMs: 3_600_000, now: () => t });
  const alen = v6 ? 16 : 4;
  for (let i = 0; i < flows; i++) {
    addr[alen - 3] = (i >> 16) & 0xff;
    addr[alen - 2] = (i >> 8) & 0xff;
    addr[alen - 1] = i & 0xff;
    addr[2 * alen - 1] = 80;
    const key = flowKey(1, tupleAt(addr, v6 ? 6 : 4, 0, alen, 1024 + (i % 60000), 443));
    table.touch(key);
    table.resolve(key, nexthops[i % 4] as number);
    t += 0.001;
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  if (table.size !== flows) throw new Error(`table holds ${table.size}`);
  return (after - before) / flows;
}

const ABOUT = `
**What runs.** Two classic pcap files of mirrored SYNs are written once (\`bench/mirror-corpus.ts\`),
every frame a different flow: the *mixed* capture holds ERSPAN type I (Arista's \`tunnel mode
gre\`), ERSPAN type II and III, transparent Ethernet and bare-IP GRE, each over IP protocol 47
and over GRE-in-UDP, with IPv4 and IPv6 inside, in equal shares; the *Arista-shaped* capture
is 70 % ERSPAN type I over IPv4, 15 % ERSPAN type II and 15 % GRE-in-UDP, IPv4 inside (on it
\`tcpdump\` stops at the GRE header of ERSPAN type I, which it does not dissect, so it does
less work per frame than on the mixed one). An empty capture (the header alone) shows each
program's start-up. Three programs read the whole file and write their text to
\`/dev/null\`, as whole processes (start-up included), one after another in each round so that a
change in machine load hits all of them alike: \`flowpin decode FILE\` (one JSON line per
segment: GRE endpoints, encapsulation, VLAN, inner addresses, ports, TCP flags),
\`tcpdump -nr FILE\` (one text line per packet; libpcap reads the file, tcpdump dissects the
outer IP, GRE, ERSPAN and the mirrored frame down to TCP and prints it, without name
resolution) and \`tshark -r FILE -T fields -e ${TSHARK_FIELDS.join(' -e ')}\` (Wireshark's full
dissector, printing only those fields).

**Why the comparison is fair.** All three read the same bytes from the same file (in the page
cache after the first round), dissect every packet through the same headers and print a line
per packet; none resolves names. tcpdump is what an operator reaches for first and is the
bar to meet; tshark is the reference dissector our tests check the decoder against, and the
tool users script with \`-T fields\`. flowpin prints fewer fields than tshark could, but the
ones it prints are those tshark is asked for here. Peak memory is GNU time's maximum resident
set size. The in-process rows (no process start, no output) show where the time goes:
the decoder alone from memory, the decoder plus the FlowEvent the live receiver builds, and
the capture reader alone. The flow-table rows report heap bytes per tracked flow.

**Where the time went.** Before each command loaded only its own modules, \`flowpin decode\`
imported the whole program (controller, fastify, gRPC, the simulator) before reading a byte: a
CPU profile (\`node --cpu-prof\`) of a 300,000-frame decode showed most of the wall time in module
loading, which made it slower than \`tcpdump -nr\` on the Arista-shaped capture. The decode
itself (reader, decoder and line writer) is the rest of the profile, in that order of cost.
`;

/** A classic pcap with its header and no record. */
function emptyPcap(): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(65535, 16);
  b.writeUInt32LE(LinkType.ethernet, 20);
  return b;
}

export async function decodeBench(opts: DecodeBenchOptions = DECODE_FULL): Promise<BenchOutput> {
  const measured = runContext();
  const log = (s: string): void => void process.stdout.write(`decode: ${s}\n`);
  log(`writing a capture of ${opts.frames.toLocaleString('en-US')} mirrored SYNs...`);
  const { pcap, linkType } = mirrorCorpus(opts.frames);
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-decode-'));
  const file = path.join(dir, 'mirror.pcap');
  writeFileSync(file, pcap);
  const n = opts.frames.toLocaleString('en-US');
  const aristaFile = path.join(dir, 'arista.pcap');
  writeFileSync(aristaFile, mirrorCorpus(opts.aristaFrames, 'arista').pcap);
  const emptyFile = path.join(dir, 'empty.pcap');
  writeFileSync(emptyFile, emptyPcap());
  const an = opts.aristaFrames.toLocaleString('en-US');
  try {
    const fp: ProcessRun[] = [];
    const td: ProcessRun[] = [];
    const ts: ProcessRun[] = [];
    for (let r = 0; r < opts.runs; r++) {
      log(
        `round ${r + 1} of ${opts.runs}: flowpin decode, tcpdump -nr${r < opts.tsharkRuns ? ', tshark -T fields' : ''}`,
      );
      fp.push(timeProcess(process.execPath, [flowpinBin, 'decode', file]));
      td.push(timeProcess('tcpdump', ['-nr', file]));
      if (r < opts.tsharkRuns)
        ts.push(
          timeProcess('tshark', ['-r', file, '-T', 'fields', ...TSHARK_FIELDS.flatMap((f) => ['-e', f])]),
        );
    }
    const afp: ProcessRun[] = [];
    const atd: ProcessRun[] = [];
    const efp: ProcessRun[] = [];
    const etd: ProcessRun[] = [];
    for (let r = 0; r < opts.runs; r++) {
      log(
        `Arista-shaped capture, round ${r + 1} of ${opts.runs}: flowpin decode, tcpdump -nr; then the empty capture`,
      );
      afp.push(timeProcess(process.execPath, [flowpinBin, 'decode', aristaFile]));
      atd.push(timeProcess('tcpdump', ['-nr', aristaFile]));
      efp.push(timeProcess(process.execPath, [flowpinBin, 'decode', emptyFile]));
      etd.push(timeProcess('tcpdump', ['-nr', emptyFile]));
    }
    log('in-process rates...');
    const raw = [1, 2, 3].map(() => decodeRate(pcap, linkType, opts.frames, false));
    const events = [1, 2, 3].map(() => decodeRate(pcap, linkType, opts.frames, true));
    const reader: number[] = [];
    for (let i = 0; i < 3; i++) reader.push(await readerRate(file, opts.frames));
    const v4 = bytesPerFlow(false, opts.flows);
    const v6 = bytesPerFlow(true, opts.flows);
    const fl = opts.flows.toLocaleString('en-US');
    const smaller = Math.max(1000, Math.round(opts.flows / 10));
    const v4s = bytesPerFlow(false, smaller);
    const v6s = bytesPerFlow(true, smaller);
    const fs = smaller.toLocaleString('en-US');
    const figures: Figure[] = [
      repeated(
        {
          id: 'decode.flowpin_s',
          what: `\`flowpin decode\`, ${n} frames, whole process`,
          unit: 's',
          target: '',
          met: true,
          baseline: 'decode.tcpdump_s',
        },
        fp.map((x) => x.seconds),
      ),
      repeated(
        { id: 'decode.tcpdump_s', what: '`tcpdump -nr`', unit: 's', target: '', met: true, isBaseline: true },
        td.map((x) => x.seconds),
      ),
      repeated(
        {
          id: 'decode.arista.flowpin_s',
          what: `\`flowpin decode\`, ${an} frames Arista-shaped (70 % ERSPAN I over IPv4), whole process`,
          unit: 's',
          target: '',
          met: true,
          baseline: 'decode.arista.tcpdump_s',
        },
        afp.map((x) => x.seconds),
      ),
      repeated(
        {
          id: 'decode.arista.tcpdump_s',
          what: '`tcpdump -nr`, Arista-shaped',
          unit: 's',
          target: '',
          met: true,
          isBaseline: true,
        },
        atd.map((x) => x.seconds),
      ),
      repeated(
        {
          id: 'decode.empty.flowpin_s',
          what: '`flowpin decode`, empty capture (start-up)',
          unit: 's',
          target: '',
          met: true,
          baseline: 'decode.empty.tcpdump_s',
        },
        efp.map((x) => x.seconds),
      ),
      repeated(
        {
          id: 'decode.empty.tcpdump_s',
          what: '`tcpdump -nr`, empty capture',
          unit: 's',
          target: '',
          met: true,
          isBaseline: true,
        },
        etd.map((x) => x.seconds),
      ),
      repeated(
        {
          id: 'decode.flowpin_vs_tshark_s',
          what: `\`flowpin decode\`, ${n} frames (vs tshark)`,
          unit: 's',
          target: '',
          met: true,
          baseline: 'decode.tshark_s',
        },
        fp.map((x) => x.seconds),
      ),
      repeated(
        {
          id: 'decode.tshark_s',
          what: '`tshark -T fields`',
          unit: 's',
          target: '',
          met: true,
          isBaseline: true,
        },
        ts.map((x) => x.seconds),
      ),
      repeated(
        {
          id: 'decode.flowpin_peak_mib',
          what: '`flowpin decode`, peak memory',
          unit: 'MiB',
          target: '',
          met: true,
          baseline: 'decode.tcpdump_peak_mib',
        },
        fp.map((x) => x.peakMiB),
      ),
      repeated(
        {
          id: 'decode.tcpdump_peak_mib',
          what: '`tcpdump -nr`, peak memory',
          unit: 'MiB',
          target: '',
          met: true,
          isBaseline: true,
        },
        td.map((x) => x.peakMiB),
      ),
      repeated(
        {
          id: 'decode.flowpin_peak_mib_vs_tshark',
          what: '`flowpin decode`, peak memory (vs tshark)',
          unit: 'MiB',
          target: '',
          met: true,
          baseline: 'decode.tshark_peak_mib',
        },
        fp.map((x) => x.peakMiB),
      ),
      repeated(
        {
          id: 'decode.tshark_peak_mib',
          what: '`tshark -T fields`, peak memory',
          unit: 'MiB',
          target: '',
          met: true,
          isBaseline: true,
        },
        ts.map((x) => x.peakMiB),
      ),
      repeated(
        {
          id: 'decode.frames_per_s',
          what: `Decoder alone, in memory, ${n} frames (one core)`,
          unit: 'frames/s',
          target: '≥ 2,000,000',
          met: true,
        },
        raw,
      ),
      repeated(
        {
          id: 'decode.events_per_s',
          what: 'Decoder + FlowEvent per frame (what the receiver does)',
          unit: 'frames/s',
          target: '',
          met: true,
        },
        events,
      ),
      repeated(
        {
          id: 'decode.reader_per_s',
          what: 'Capture reader alone (file, no decoding)',
          unit: 'frames/s',
          target: '',
          met: true,
        },
        reader,
      ),
      {
        id: 'flowtable.bytes_per_flow_v4',
        what: `Flow table heap per tracked IPv4 flow, ${fl} flows`,
        value: v4,
        unit: 'bytes',
        target: '< 200',
        met: v4 < 200,
      },
      {
        id: 'flowtable.bytes_per_flow_v6',
        what: `Flow table heap per tracked IPv6 flow, ${fl} flows`,
        value: v6,
        unit: 'bytes',
        target: '< 200',
        met: v6 < 200,
      },
      {
        id: 'flowtable.bytes_per_flow_v4_tenth',
        what: `Flow table heap per tracked IPv4 flow, ${fs} flows`,
        value: v4s,
        unit: 'bytes',
        target: '< 200',
        met: v4s < 200,
      },
      {
        id: 'flowtable.bytes_per_flow_v6_tenth',
        what: `Flow table heap per tracked IPv6 flow, ${fs} flows`,
        value: v6s,
        unit: 'bytes',
        target: '< 200',
        met: v6s < 200,
      },
    ];
    const byId = new Map(figures.map((f) => [f.id, f]));
    const faster = (a: string, b: string): boolean =>
      (byId.get(a)?.value ?? Infinity) <= (byId.get(b)?.value ?? 0);
    for (const f of figures) {
      if (f.id === 'decode.flowpin_s' || f.id === 'decode.arista.flowpin_s') {
        f.target = '≤ tcpdump';
        f.met = faster(f.id, f.baseline ?? '');
      }
      if (f.id === 'decode.frames_per_s') f.met = f.value >= 2e6;
    }
    return {
      figures,
      section: {
        key: 'decode',
        title: 'Decoding a capture: flowpin decode, tcpdump, tshark',
        about: ABOUT,
        figures: figures.map((f) => f.id).filter((id) => !figures.find((f) => f.id === id)?.isBaseline),
        measured,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
