// Decode benchmark: frames per second on one core over an in-memory pcap of 1 M mirrored
// SYNs in mixed encapsulations, the same through pcap-parser's stream path, and heap bytes
// per tracked flow for 1 M flows in the flow table.

import { Readable } from 'node:stream';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { toFlowEvent } from '../mirror-receiver/flow-event.js';
import { readPcap } from '../mirror-receiver/sources/pcap.js';
import { tupleAt } from '../mirror-receiver/tuple.js';
import { FlowTable, flowKey } from '../controller/flow-table.js';
import { NexthopRegistry } from '../controller/nexthop-registry.js';
import { forEachRecord, mirrorCorpus } from './mirror-corpus.js';
import type { Figure } from './results.js';

const FRAMES = 1_000_000;
const FLOWS = 1_000_000;

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with --expose-gc (npm run bench does)');
  for (let i = 0; i < 3; i++) g();
}

function bestOf(runs: number, fn: () => number): number {
  let best = 0;
  for (let i = 0; i < runs; i++) best = Math.max(best, fn());
  return best;
}

function decodeRate(pcap: Buffer, linkType: number, withEvents: boolean): number {
  const d = new MirrorDecoder();
  let sink = 0;
  const t0 = process.hrtime.bigint();
  forEachRecord(pcap, (off, end) => {
    if (d.decodeLink(linkType, pcap, off, end) === OK) {
      if (withEvents) sink += toFlowEvent(d.view, 0).sport;
      else sink += d.view.sport;
    }
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (d.counters.decoded !== FRAMES || sink === 0) throw new Error(`decoded ${d.counters.decoded} of ${FRAMES}`);
  return FRAMES / s;
}

async function streamRate(pcap: Buffer): Promise<number> {
  const d = new MirrorDecoder();
  const chunks: Buffer[] = [];
  for (let off = 0; off < pcap.length; off += 65536) chunks.push(pcap.subarray(off, Math.min(pcap.length, off + 65536)));
  const t0 = process.hrtime.bigint();
  await readPcap(Readable.from(chunks), (buf, off, end, linkType) => {
    d.decodeLink(linkType, buf, off, end);
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (d.counters.decoded !== FRAMES) throw new Error(`stream decoded ${d.counters.decoded}`);
  return FRAMES / s;
}

function bytesPerFlow(v6: boolean): number {
  const reg = new NexthopRegistry();
  const nexthops = [1, 2, 3, 4].map((i) => reg.intern('sw1', '192.0.2.80', `10.9.0.${i}`));
  let t = 0;
  const addr = new Uint8Array(36);
  gc();
  const before = process.memoryUsage().heapUsed;
  const table = new FlowTable({ maxFlows: FLOWS, maxAgeMs: 3_600_000, now: () => t });
  const alen = v6 ? 16 : 4;
  for (let i = 0; i < FLOWS; i++) {
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
  if (table.size !== FLOWS) throw new Error(`table holds ${table.size}`);
  return (after - before) / FLOWS;
}

export async function decodeBench(): Promise<Figure[]> {
  process.stdout.write(`decode: building an in-memory pcap of ${FRAMES.toLocaleString('en-US')} mirrored SYNs...\n`);
  const { pcap, linkType } = mirrorCorpus(FRAMES);
  process.stdout.write(`decode: ${(pcap.length / 2 ** 20).toFixed(0)} MiB; measuring (best of 5)\n`);
  decodeRate(pcap, linkType, false);
  const raw = bestOf(5, () => decodeRate(pcap, linkType, false));
  const events = bestOf(5, () => decodeRate(pcap, linkType, true));
  const stream = await streamRate(pcap);
  const v4 = bytesPerFlow(false);
  const v6 = bytesPerFlow(true);
  return [
    { id: 'decode.frames_per_s', what: 'Decode, in-memory pcap of 1 M mirrored SYNs, mixed encapsulations (one core)', value: raw, unit: 'frames/s', target: '≥ 2,000,000', met: raw >= 2e6 },
    { id: 'decode.events_per_s', what: 'Decode + FlowEvent per frame (what the receiver does)', value: events, unit: 'frames/s', target: '', met: true },
    { id: 'decode.pcap_stream_per_s', what: 'Decode through pcap-parser from a stream (`flowpin decode`)', value: stream, unit: 'frames/s', target: '', met: true },
    { id: 'flowtable.bytes_per_flow_v4', what: 'Flow table heap per tracked IPv4 flow, 1 M flows', value: v4, unit: 'bytes', target: '< 200', met: v4 < 200 },
    { id: 'flowtable.bytes_per_flow_v6', what: 'Flow table heap per tracked IPv6 flow, 1 M flows', value: v6, unit: 'bytes', target: '< 200', met: v6 < 200 },
  ];
}
