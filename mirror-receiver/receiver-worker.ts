// The receiver's worker thread: owns the UDP mirror sockets (GRE-in-UDP and VXLAN, read with
// the native recvmmsg reader where it is built, else Node's dgram: sources/udp-reader.ts) and
// their decoder, so that reading and decoding never wait for the controller's resolve, pin or API
// work on the main thread. Decoded segments go to the main thread in batches (event-batch.ts),
// each with a snapshot of the counters, so the main thread's status always matches the events
// it has delivered. A batch is posted when it is full or when its first frame is MAX_AGE_MS
// old, whichever comes first: at high rates few, full batches (a posted batch costs tens of
// microseconds, see BENCHMARKS.md), at low rates a SYN waits at most MAX_AGE_MS. If the main
// thread falls more than MAX_IN_FLIGHT batches behind, further events are counted as backlog
// drops instead of queueing without bound.

import { parentPort, workerData } from 'node:worker_threads';
import { MirrorDecoder } from './decoder.js';
import { DROP_REASONS, OK } from './drop-reasons.js';
import { BatchWriter } from './event-batch.js';
import { udpReaderSource, type UdpReaderSource } from './sources/udp-reader.js';
import { rawGreNativeSource } from './sources/raw-gre-native.js';
import {
  COUNTER_TRUNCATED,
  COUNTERS,
  type SourceErrorMessage,
  type WorkerReply,
  type WorkerRequest,
  type WorkerSetup,
} from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('receiver-worker.js runs as a worker thread');
const setup = workerData as WorkerSetup;
/** Batches the main thread has taken off the queue (written by the main thread). */
const consumed = new Int32Array(setup.consumed);

const BATCH = 1024;
const MAX_AGE_MS = 1;
/** 1024 batches of 1024 events: about 5 s of a 200k/s mirror with the main thread stalled. */
const MAX_IN_FLIGHT = 1024;

const decoder = new MirrorDecoder();
const counters = decoder.counters;
const batch = new BatchWriter(BATCH);
let posted = 0;
let backlogDrops = 0;
let pendingFrames = 0;
let timer: NodeJS.Timeout | undefined;
const sources: UdpReaderSource[] = [];
/** Truncated datagrams of sources already stopped. */
let truncatedBefore = 0;

/** The layout of worker-protocol.ts (COUNTERS). */
function snapshot(): Float64Array {
  const s = new Float64Array(COUNTERS);
  s[0] = counters.frames;
  s[1] = counters.decoded;
  s[2] = backlogDrops;
  const byReason = counters.droppedByCode();
  for (let i = 1; i < byReason.length && i <= DROP_REASONS.length; i++) s[3 + i] = byReason[i] ?? 0;
  let truncated = truncatedBefore;
  for (const src of sources) truncated += src.truncated();
  s[COUNTER_TRUNCATED] = truncated;
  return s;
}

function flush(): void {
  if (pendingFrames === 0) return;
  pendingFrames = 0;
  const msg = batch.take(snapshot());
  posted++;
  port?.postMessage(msg, [msg.buffer]);
}

/** The age timer: posts what is pending; the next frame starts a new one. */
function onAge(): void {
  timer = undefined;
  flush();
}

function onResult(result: number, at: number): void {
  pendingFrames++;
  if (result === OK) {
    if (posted - Atomics.load(consumed, 0) >= MAX_IN_FLIGHT) backlogDrops++;
    else {
      batch.add(decoder.view, at);
      if (batch.full) {
        flush();
        return;
      }
    }
  }
  // A timer already running was started by an earlier frame of this batch (or the previous
  // one, posted since): either way it fires within MAX_AGE_MS of this frame.
  timer ??= setTimeout(onAge, MAX_AGE_MS);
}

function reply(r: WorkerReply): void {
  port?.postMessage(r);
}

function sourceError(err: Error): void {
  const msg: SourceErrorMessage = { type: 'source-error', message: err.message };
  port?.postMessage(msg);
}

async function handle(req: WorkerRequest): Promise<void> {
  try {
    if (req.type === 'listen-udp') {
      const source =
        req.options.encap === 'vxlan'
          ? udpReaderSource(
              req.options,
              (buf, off, end, outerSrc, outerDst, at) =>
                onResult(decoder.decodeVxlanPayload(buf, outerSrc, outerDst, off, end), at),
              sourceError,
            )
          : udpReaderSource(
              req.options,
              (buf, off, end, outerSrc, outerDst, at) =>
                onResult(decoder.decodeGrePayload(buf, outerSrc, outerDst, off, end), at),
              sourceError,
            );
      const bound = await source.start();
      sources.push(source);
      reply({
        type: 'reply',
        id: req.id,
        ok: true,
        bound,
        receiveBuffer: source.receiveBuffer(),
        reader: source.reader,
        ...(source.note === undefined ? {} : { readerNote: source.note }),
      });
    } else if (req.type === 'listen-raw') {
      // IPv4 raw sockets deliver the outer IP header; IPv6 ones the GRE packet and the sender (raw(7)).
      const source =
        req.options.family === 4
          ? rawGreNativeSource(
              req.options,
              (buf, off, end, _src, at) => onResult(decoder.decodeIpPacket(buf, off, end), at),
              sourceError,
            )
          : rawGreNativeSource(
              req.options,
              (buf, off, end, src, at) => onResult(decoder.decodeGrePayload(buf, src, '::', off, end), at),
              sourceError,
            );
      await source.start();
      sources.push(source);
      reply({
        type: 'reply',
        id: req.id,
        ok: true,
        receiveBuffer: source.receiveBuffer(),
        reader: 'recvmmsg',
      });
    } else {
      for (const s of sources.splice(0)) {
        await s.stop();
        truncatedBefore += s.truncated();
      }
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      flush();
      reply({ type: 'reply', id: req.id, ok: true });
    }
  } catch (err) {
    reply({
      type: 'reply',
      id: req.id,
      ok: false,
      message: err instanceof Error ? err.message : String(err),
    });
  }
}

port.on('message', (req: WorkerRequest) => void handle(req));
