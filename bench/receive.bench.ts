// Receive benchmark: a sender process (bench/mirror-sender.ts) sends GRE-in-UDP mirrored SYNs
// over loopback to a MirrorReceiver in this process (socket read with the default reader, the
// native recvmmsg one where built, and decoded in its worker; FlowEvents delivered to a counting
// sink on the main thread), at a paced rate and then as fast as it can. Per run: frames the
// sender handed to the kernel, frames decoded, the kernel's drops for the socket, frames
// unaccounted for (sent - received - kernel drops), the rate decoded and decoded frames per
// second of this process's CPU time (worker and main thread together: what one core must do).
// Baselines for the CPU figure: a bare Node dgram socket, and a bare native recvmmsg socket, in
// this process, that only count the same datagrams from the same sender (no decoding, no
// events): the most a receiver built on either can reach on this machine now.

import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import { loadNativeReader } from '../mirror-receiver/native/addon.js';
import { NativeSocket } from '../mirror-receiver/sources/native-socket.js';
import { mirrorDatagrams } from './mirror-sender.js';
import { repeated, runContext, type BenchOutput, type Figure } from './results.js';

export interface ReceiveBenchOptions {
  /** Offered rate of the paced runs, frames/s. */
  rate: number;
  /** Seconds of sending per run. */
  seconds: number;
  runs: number;
  /** Frames of the as-fast-as-possible runs. */
  floodFrames: number;
  /** Offered rate of the runs with the C sender (sendmmsg), frames/s. */
  nativeRate: number;
}

export const RECEIVE_FULL: ReceiveBenchOptions = {
  rate: 200_000,
  seconds: 3,
  runs: 3,
  floodFrames: 600_000,
  nativeRate: 250_000,
};
export const RECEIVE_TINY: ReceiveBenchOptions = {
  rate: 5_000,
  seconds: 0.4,
  runs: 1,
  floodFrames: 2_000,
  nativeRate: 10_000,
};

const here = path.dirname(fileURLToPath(import.meta.url));
const senderBin = path.resolve(here, 'mirror-sender.js');
/** dist/bench/receive.bench.js -> bench/native/blast.c */
const blastSource = path.resolve(here, '../../bench/native/blast.c');

/** The C sender (bench/native/blast.c), compiled into `dir` with the templates it sends; or why not. */
function buildBlast(dir: string): { bin: string; templates: string } | { error: string } {
  const bin = path.join(dir, 'blast');
  const cc = spawnSync('cc', ['-O2', '-o', bin, blastSource], { encoding: 'utf8' });
  if (cc.error !== undefined || cc.status !== 0)
    return { error: `cc could not build ${blastSource}: ${cc.error?.message ?? cc.stderr}` };
  const parts: Buffer[] = [];
  for (const d of mirrorDatagrams(4096)) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(d.length);
    parts.push(len, d);
  }
  const templates = path.join(dir, 'templates.bin');
  writeFileSync(templates, Buffer.concat(parts));
  return { bin, templates };
}

type Sender = (port: number, count: number, rate: number) => Promise<{ sent: number; seconds: number }>;

/** A sender process: its stdout's last line is {"sent":N,"seconds":S,...}. */
async function runSender(cmd: string, args: string[]): Promise<{ sent: number; seconds: number }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`mirror sender ${cmd} exited ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as { sent: number; seconds: number };
}

interface RunResult {
  sent: number;
  senderSeconds: number;
  frames: number;
  decoded: number;
  socketDrops: number;
  unexplained: number;
  decodedPerS: number;
  decodedPerCpuS: number;
  receiveBufferBytes: number;
  reader: string;
}

const send: Sender = (port, count, rate) =>
  runSender(process.execPath, [senderBin, String(port), String(count), String(rate)]);

/** Waits until `count()` reaches `sent` or stops moving; datagrams counted per CPU-second since `cpu0`. */
async function countedPerCpuS(count: () => number, sent: number, cpu0: NodeJS.CpuUsage): Promise<number> {
  const deadline = Date.now() + 5000;
  let last = -1;
  while (count() < sent && count() !== last && Date.now() < deadline) {
    last = count();
    await new Promise((r) => setTimeout(r, 50));
  }
  const cpu = process.cpuUsage(cpu0);
  return count() / ((cpu.user + cpu.system) / 1e6);
}

/** The native reader's ceiling: a bare recvmmsg socket counting datagrams (null where it is not built). */
async function nativeFloorRun(count: number, rate: number): Promise<number | null> {
  const loaded = loadNativeReader();
  if ('error' in loaded) return null;
  let n = 0;
  const socket = new NativeSocket(
    loaded.reader,
    { kind: 'udp', family: 4, host: '127.0.0.1', port: 0, protocol: 0, receiveBufferBytes: 32 * 1024 * 1024 },
    () => n++,
    () => undefined,
  );
  const { port } = socket.open();
  try {
    const cpu0 = process.cpuUsage();
    const { sent } = await send(port, count, rate);
    return await countedPerCpuS(() => n, sent, cpu0);
  } finally {
    socket.close();
  }
}

/** The baseline: a bare dgram socket counting datagrams; datagrams counted per CPU-second. */
async function floorRun(count: number, rate: number): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.setRecvBufferSize(32 * 1024 * 1024);
  let n = 0;
  socket.on('message', () => n++);
  try {
    const cpu0 = process.cpuUsage();
    const { sent } = await send(socket.address().port, count, rate);
    return await countedPerCpuS(() => n, sent, cpu0);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

async function oneRun(count: number, rate: number, sender: Sender = send): Promise<RunResult> {
  let events = 0;
  const receiver = new MirrorReceiver(() => {
    events++;
  });
  // The receive buffer flowpin asks for by default (32 MiB; granted up to net.core.rmem_max).
  const { port } = await receiver.listenUdp({ host: '127.0.0.1', port: 0 });
  try {
    const cpu0 = process.cpuUsage();
    const { sent, seconds } = await sender(port, count, rate);
    // Wait until every sent frame is received or counted as dropped by the kernel (bounded).
    const deadline = Date.now() + 10_000;
    let st = receiver.status();
    let lastFrames = -1;
    let stableSince = Date.now();
    while (st.frames + (st.socketDrops ?? 0) < sent && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      st = receiver.status();
      if (st.frames !== lastFrames) {
        lastFrames = st.frames;
        stableSince = Date.now();
      } else if (Date.now() - stableSince > 1000) break;
    }
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    const socketDrops = st.socketDrops ?? 0;
    if (events !== st.decoded)
      throw new Error(`sink saw ${events} events, status says ${st.decoded} decoded`);
    return {
      sent,
      senderSeconds: seconds,
      frames: st.frames,
      decoded: st.decoded,
      socketDrops,
      unexplained: sent - st.frames - socketDrops,
      decodedPerS: st.decoded / seconds,
      decodedPerCpuS: st.decoded / cpuS,
      receiveBufferBytes: st.sockets[0]?.receiveBufferBytes ?? 0,
      reader: st.sockets[0]?.reader ?? '?',
    };
  } finally {
    await receiver.stop();
  }
}

const ABOUT = `
**What runs.** A separate sender process (\`bench/mirror-sender.ts\`, Node's \`dgram\` on a
connected socket) sends GRE-in-UDP datagrams over loopback, each one mirrored SYN (ERSPAN I,
ERSPAN II and bare-IP GRE; IPv4 and IPv6 inside) of a different flow, to a \`MirrorReceiver\`
listening on 127.0.0.1 with the receive buffer and the reader flowpin uses by default (32 MiB,
set with \`SO_RCVBUFFORCE\` where the process may, else \`SO_RCVBUF\` capped by
\`net.core.rmem_max\`, reported above as Linux reports it, doubled; the native \`recvmmsg\`
reader where it is built, \`mirror-receiver/native/\`). The receiver reads and decodes in its
worker thread and delivers batches of FlowEvents to a sink on the main thread that counts
them. First the sender is paced to the target rate for a few seconds; then it sends as fast
as it can. Node's \`dgram\` sender reaches about 145,000 datagrams per second here (one system
call and one callback per datagram), so the same datagrams are also sent by a C sender
(\`bench/native/blast.c\`, compiled by the benchmark with \`cc\`: \`sendmmsg\`, 64 datagrams per
system call), paced at 250,000 per second and then as fast as it can: those rows show the
rate the receiver decodes when the sender is not the limit, and the target applies to them.

**How to read it.** *Sent* is what the sender handed to the kernel; *received* what the
receiver counted; *kernel drops* the \`drops\` column of \`/proc/net/udp\` for the receiver's
socket (the receive buffer was full); *unexplained* is sent − received − kernel drops, which
must be 0. *Decoded per CPU-second* divides the frames decoded by the CPU time of the whole
receiving process (worker, main thread and the sink, user and system time), so it is what one
core sustains however the two cores are shared. The sender shares the machine's two cores with
the receiver (and the kernel's loopback work runs in the sender's system calls), so on a loaded
machine the sender, not the receiver, can limit the rate reached, and a receiver thread that is
not scheduled for a while lets the kernel queue overflow: those drops are counted, never
unexplained.

**Baselines and why they are fair.** The paced rows stand beside the offered rate of the same
run: the receiver keeps up when decoded equals offered and drops nothing. The per-CPU-second
rows stand beside a bare Node \`dgram\` socket in the same process, with the same receive
buffer, counting the datagrams of the same sender and doing nothing else, run right after
each receiver run: no decoding, no worker, no events; that is the most any receiver built on
Node's \`dgram\` can do (each datagram costs a \`recvmsg\` system call, a Buffer and an
address object). The row of a bare native \`recvmmsg\` socket (the reader flowpin uses, with
its 1 ms hold, counting only, no worker) stands beside the same dgram socket: it is the
ceiling of the reader itself, so the distance from it to the decoded row is what decoding,
the worker and the events cost.

**What was tried** (receiver against the same sender, 400,000 frames as fast as the sender
can, load average about 2 on the two cores, per CPU-second of the receiving process): Node's
\`dgram\` in the worker (before): 157-185k, the bare dgram socket 205-276k; a CPU profile put
most of the rest in Node's native receive path and the garbage collection of the
per-datagram Buffer and address object. The native reader reading each wake-up to the end
(\`recvmmsg\`, 128 slots, no hold): 205-233k; the bare native socket 290-360k, where the
kernel's time (0.75-0.95 s of system time for the 400,000) dominated: the receiver emptied
the socket every 4 datagrams on average, one thread wake-up each. Holding the poll 1 ms after
a read that emptied the socket (a libuv timer restarts it; the kernel queues meanwhile): the
receiver's system time for the same 400,000 fell from 1.0-1.2 s to 0.4 s and the receiver
reached 330k (the bare native socket with the same hold: 1.15-1.24 M, so decoding, the
worker's batches and the main thread's FlowEvents are now most of the cost). A SYN waits at most that 1 ms more, within the worker's own 1 ms batching. A
worker-to-main message costs 26 µs with a 96 KiB buffer transferred (batches of up to 1,024
frames): under 0.03 µs a frame, so a shared-memory ring would save nothing measurable.
`;

export async function receiveBench(opts: ReceiveBenchOptions = RECEIVE_FULL): Promise<BenchOutput> {
  const measured = runContext();
  const paced: RunResult[] = [];
  const flood: RunResult[] = [];
  const floorPaced: number[] = [];
  const floorFlood: number[] = [];
  const nativePaced: number[] = [];
  const nativeFlood: number[] = [];
  const readers = new Set<string>();
  const count = Math.round(opts.rate * opts.seconds);
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-receive-'));
  const blast = buildBlast(dir);
  const blastSend: Sender | undefined =
    'error' in blast
      ? undefined
      : (port, n, rate) =>
          runSender(blast.bin, [blast.templates, '127.0.0.1', String(port), String(n), String(rate)]);
  if ('error' in blast)
    process.stdout.write(`receive: no C sender (${blast.error}); its rows are left out\n`);
  const cPaced: RunResult[] = [];
  const cFlood: RunResult[] = [];
  const cCount = Math.round(opts.nativeRate * opts.seconds);
  for (let r = 0; r < opts.runs; r++) {
    process.stdout.write(
      `receive: run ${r + 1} of ${opts.runs}: ${count.toLocaleString('en-US')} frames paced at ${opts.rate.toLocaleString('en-US')}/s, then ${opts.floodFrames.toLocaleString('en-US')} as fast as the sender can\n`,
    );
    paced.push(await oneRun(count, opts.rate));
    floorPaced.push(await floorRun(count, opts.rate));
    const np = await nativeFloorRun(count, opts.rate);
    if (np !== null) nativePaced.push(np);
    flood.push(await oneRun(opts.floodFrames, 0));
    floorFlood.push(await floorRun(opts.floodFrames, 0));
    const nf = await nativeFloorRun(opts.floodFrames, 0);
    if (nf !== null) nativeFlood.push(nf);
    if (blastSend !== undefined) {
      cPaced.push(await oneRun(cCount, opts.nativeRate, blastSend));
      cFlood.push(await oneRun(opts.floodFrames, 0, blastSend));
    }
    for (const x of [...paced, ...flood, ...cPaced, ...cFlood]) readers.add(x.reader);
  }
  rmSync(dir, { recursive: true, force: true });
  const cRate = opts.nativeRate.toLocaleString('en-US');
  const cFigures: Figure[] =
    blastSend === undefined
      ? []
      : [
          repeated(
            {
              id: 'receive.c_paced.offered_per_s',
              what: `Offered rate (C sender, sendmmsg, paced at ${cRate}/s)`,
              unit: 'frames/s',
              target: '',
              met: true,
              isBaseline: true,
            },
            cPaced.map((r) => r.sent / r.senderSeconds),
          ),
          repeated(
            {
              id: 'receive.c_paced.decoded_per_s',
              what: `Decoded per second, C sender paced at ${cRate}/s`,
              unit: 'frames/s',
              target: '≥ 200,000',
              met: true,
              baseline: 'receive.c_paced.offered_per_s',
            },
            cPaced.map((r) => r.decodedPerS),
          ),
          repeated(
            {
              id: 'receive.c_paced.kernel_drops',
              what: `Kernel socket drops, C sender paced at ${cRate}/s`,
              unit: 'frames',
              target: '',
              met: true,
            },
            cPaced.map((r) => r.socketDrops),
          ),
          repeated(
            {
              id: 'receive.c_paced.decoded_per_cpu_s',
              what: `Decoded per CPU-second of the receiving process, C sender paced at ${cRate}/s`,
              unit: 'frames/s',
              target: '',
              met: true,
            },
            cPaced.map((r) => r.decodedPerCpuS),
          ),
          repeated(
            {
              id: 'receive.c_flood.offered_per_s',
              what: 'Offered rate (C sender as fast as it can)',
              unit: 'frames/s',
              target: '',
              met: true,
              isBaseline: true,
            },
            cFlood.map((r) => r.sent / r.senderSeconds),
          ),
          repeated(
            {
              id: 'receive.c_flood.decoded_per_s',
              what: 'Decoded per second, C sender as fast as it can',
              unit: 'frames/s',
              target: '',
              met: true,
              baseline: 'receive.c_flood.offered_per_s',
            },
            cFlood.map((r) => r.decodedPerS),
          ),
          repeated(
            {
              id: 'receive.c_flood.kernel_drops',
              what: 'Kernel socket drops, C sender as fast as it can',
              unit: 'frames',
              target: '',
              met: true,
            },
            cFlood.map((r) => r.socketDrops),
          ),
        ];
  const rate = opts.rate.toLocaleString('en-US');
  const unexplained = [...paced, ...flood, ...cPaced, ...cFlood].reduce(
    (a, r) => a + Math.abs(r.unexplained),
    0,
  );
  const figures: Figure[] = [
    repeated(
      {
        id: 'receive.paced.offered_per_s',
        what: `Offered rate (sender, paced at ${rate}/s)`,
        unit: 'frames/s',
        target: '',
        met: true,
        isBaseline: true,
      },
      paced.map((r) => r.sent / r.senderSeconds),
    ),
    repeated(
      {
        id: 'receive.paced.decoded_per_s',
        what: `Decoded, paced at ${rate}/s`,
        unit: 'frames/s',
        target: '',
        met: true,
        baseline: 'receive.paced.offered_per_s',
      },
      paced.map((r) => r.decodedPerS),
    ),
    repeated(
      {
        id: 'receive.paced.kernel_drops',
        what: `Kernel socket drops, paced at ${rate}/s`,
        unit: 'frames',
        target: '',
        met: true,
      },
      paced.map((r) => r.socketDrops),
    ),
    repeated(
      {
        id: 'receive.paced.decoded_per_cpu_s',
        what: `Decoded per CPU-second of the receiving process, paced at ${rate}/s`,
        unit: 'frames/s',
        target: '≥ 200,000',
        met: true,
        baseline: 'receive.paced.dgram_per_cpu_s',
      },
      paced.map((r) => r.decodedPerCpuS),
    ),
    ...(nativePaced.length === 0
      ? []
      : [
          repeated(
            {
              id: 'receive.paced.recvmmsg_per_cpu_s',
              what: `Bare native recvmmsg socket, counting only, per CPU-second, paced at ${rate}/s`,
              unit: 'datagrams/s',
              target: '',
              met: true,
              baseline: 'receive.paced.dgram_per_cpu_s',
            },
            nativePaced,
          ),
        ]),
    repeated(
      {
        id: 'receive.paced.dgram_per_cpu_s',
        what: `Bare Node dgram socket, counting only, per CPU-second, paced at ${rate}/s`,
        unit: 'datagrams/s',
        target: '',
        met: true,
        isBaseline: true,
      },
      floorPaced,
    ),
    repeated(
      {
        id: 'receive.flood.offered_per_s',
        what: 'Offered rate (sender as fast as it can)',
        unit: 'frames/s',
        target: '',
        met: true,
        isBaseline: true,
      },
      flood.map((r) => r.sent / r.senderSeconds),
    ),
    repeated(
      {
        id: 'receive.flood.decoded_per_s',
        what: 'Decoded, sender as fast as it can',
        unit: 'frames/s',
        target: '',
        met: true,
        baseline: 'receive.flood.offered_per_s',
      },
      flood.map((r) => r.decodedPerS),
    ),
    repeated(
      {
        id: 'receive.flood.kernel_drops',
        what: 'Kernel socket drops, sender as fast as it can',
        unit: 'frames',
        target: '',
        met: true,
      },
      flood.map((r) => r.socketDrops),
    ),
    repeated(
      {
        id: 'receive.flood.decoded_per_cpu_s',
        what: 'Decoded per CPU-second of the receiving process, sender as fast as it can',
        unit: 'frames/s',
        target: '≥ 200,000',
        met: true,
        baseline: 'receive.flood.dgram_per_cpu_s',
      },
      flood.map((r) => r.decodedPerCpuS),
    ),
    ...(nativeFlood.length === 0
      ? []
      : [
          repeated(
            {
              id: 'receive.flood.recvmmsg_per_cpu_s',
              what: 'Bare native recvmmsg socket, counting only, per CPU-second, sender as fast as it can',
              unit: 'datagrams/s',
              target: '',
              met: true,
              baseline: 'receive.flood.dgram_per_cpu_s',
            },
            nativeFlood,
          ),
        ]),
    repeated(
      {
        id: 'receive.flood.dgram_per_cpu_s',
        what: 'Bare Node dgram socket, counting only, per CPU-second, sender as fast as it can',
        unit: 'datagrams/s',
        target: '',
        met: true,
        isBaseline: true,
      },
      floorFlood,
    ),
    repeated(
      {
        id: 'receive.receive_buffer_bytes',
        what: 'Receive buffer granted by the kernel (32 MiB asked; Linux reports twice the usable size; SO_RCVBUFFORCE where the process may, else capped by net.core.rmem_max)',
        unit: 'bytes',
        target: '',
        met: true,
      },
      paced.map((r) => r.receiveBufferBytes),
    ),
    ...cFigures,
    {
      id: 'receive.unexplained',
      what: 'Frames unaccounted for (sent − received − kernel drops), all runs',
      value: unexplained,
      unit: 'frames',
      target: '= 0',
      met: unexplained === 0,
    },
  ];
  for (const f of figures) if (f.target === '≥ 200,000') f.met = f.value >= 200_000;
  const about = `\nThe receiver read its socket with: ${[...readers].join(', ')}${readers.has('recvmmsg') ? ' (the native reader)' : ' (the native reader is not built here)'}.\n${ABOUT}`;
  return {
    figures,
    section: {
      key: 'receive',
      title: 'Receiving mirrored frames over loopback',
      about,
      figures: figures.filter((f) => f.isBaseline !== true).map((f) => f.id),
      measured,
    },
  };
}

export type { RunResult as ReceiveRunResult };
