// The receiver's worker thread: owns the GRE-in-UDP mirror sockets and their decoder,
// so that reading and decoding never wait for the controller's resolve, pin or API work on the
// main thread. Decoded segments go to the main thread in batches (event-batch.ts), each with
// a snapshot of the counters, so the main thread's status always matches the events it has
// delivered. If the main thread falls more than MAX_IN_FLIGHT batches behind, further events
// are counted as backlog drops instead of queueing without bound.

import { parentPort, workerData } from 'node:worker_threads';
import { MirrorDecoder } from './decoder.js';
import { DROP_REASONS, OK } from './drop-reasons.js';
import { BatchWriter } from './event-batch.js';
import { GreUdpSource } from './sources/gre-udp.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('receiver-worker.js runs as a worker thread');
const setup = workerData as WorkerSetup;
/** Batches the main thread has taken off the queue (written by the main thread). */
const consumed = new Int32Array(setup.consumed);

const BATCH = 512;
const MIN_BATCH = 64;
const MAX_AGE_MS = 1;
const MAX_IN_FLIGHT = 2048;

const decoder = new MirrorDecoder();
const counters = decoder.counters;
const batch = new BatchWriter(BATCH);
let posted = 0;
let backlogDrops = 0;
let pendingFrames = 0;
let firstPendingAt = 0;
let scheduled = false;
let timer: NodeJS.Timeout | undefined;
const sources: { stop(): void | Promise<void> }[] = [];

/** frames, decoded, backlog drops, then one count per drop reason (index = result code). */
function snapshot(): Float64Array {
  const s = new Float64Array(3 + DROP_REASONS.length + 1);
  s[0] = counters.frames;
  s[1] = counters.decoded;
  s[2] = backlogDrops;
  const byReason = counters.droppedByCode();
  for (let i = 1; i < byReason.length; i++) s[3 + i] = byReason[i] ?? 0;
  return s;
}

function flush(): void {
  scheduled = false;
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  if (pendingFrames === 0) return;
  pendingFrames = 0;
  const msg = batch.take(snapshot());
  posted++;
  port?.postMessage(msg, [msg.buffer]);
}

function tick(): void {
  scheduled = false;
  if (pendingFrames === 0) return;
  if (batch.count >= MIN_BATCH || Date.now() - firstPendingAt >= MAX_AGE_MS) flush();
  else if (timer === undefined) timer = setTimeout(flush, MAX_AGE_MS);
}

function onResult(result: number, at: number): void {
  if (pendingFrames++ === 0) firstPendingAt = at;
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
  if (!scheduled) {
    scheduled = true;
    setImmediate(tick);
  }
}

function reply(r: WorkerReply): void {
  port?.postMessage(r);
}

async function handle(req: WorkerRequest): Promise<void> {
  try {
    if (req.type === 'listen-udp') {
      const source = new GreUdpSource(req.options, (payload, outerSrc, outerDst) => {
        onResult(decoder.decodeGrePayload(payload, outerSrc, outerDst), Date.now());
      });
      const bound = await source.start();
      sources.push(source);
      reply({ type: 'reply', id: req.id, ok: true, bound, receiveBufferBytes: source.receiveBufferBytes() });
    } else {
      for (const s of sources.splice(0)) await s.stop();
      flush();
      reply({ type: 'reply', id: req.id, ok: true });
    }
  } catch (err) {
    reply({ type: 'reply', id: req.id, ok: false, message: err instanceof Error ? err.message : String(err) });
  }
}

port.on('message', (req: WorkerRequest) => void handle(req));
