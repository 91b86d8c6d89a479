// Receive benchmark: a sender process (bench/mirror-sender.ts) sends GRE-in-UDP mirrored SYNs
// over loopback to a MirrorReceiver in this process (socket read and decode in its worker,
// FlowEvents delivered to a counting sink on the main thread), at a paced rate and then as
// fast as it can. Per run: frames the sender handed to the kernel, frames decoded, the
// kernel's drops for the socket, frames unaccounted for (sent - received - kernel drops), the
// rate decoded and decoded frames per second of this process's CPU time (worker and main
// thread together: what one core must do).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import { repeated, runContext, type BenchOutput, type Figure } from './results.js';

export interface ReceiveBenchOptions {
  /** Offered rate of the paced runs, frames/s. */
  rate: number;
  /** Seconds of sending per run. */
  seconds: number;
  runs: number;
  /** Frames of the as-fast-as-possible runs. */
  floodFrames: number;
}

export const RECEIVE_FULL: ReceiveBenchOptions = { rate: 200_000, seconds: 3, runs: 3, floodFrames: 600_000 };
export const RECEIVE_TINY: ReceiveBenchOptions = { rate: 5_000, seconds: 0.4, runs: 1, floodFrames: 2_000 };

const senderBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'mirror-sender.js');

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
}

async function oneRun(count: number, rate: number): Promise<RunResult> {
  let events = 0;
  const receiver = new MirrorReceiver(() => {
    events++;
  });
  const { port } = await receiver.listenUdp({ host: '127.0.0.1', port: 0, receiveBufferBytes: 4 * 1024 * 1024 });
  try {
    const cpu0 = process.cpuUsage();
    const child = spawn(process.execPath, [senderBin, String(port), String(count), String(rate)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`mirror sender exited ${code}`);
    const { sent, seconds } = JSON.parse(out.trim()) as { sent: number; seconds: number };
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
    if (events !== st.decoded) throw new Error(`sink saw ${events} events, status says ${st.decoded} decoded`);
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
    };
  } finally {
    await receiver.stop();
  }
}

const ABOUT = `
**What runs.** A separate sender process (\`bench/mirror-sender.ts\`, Node's \`dgram\` on a
connected socket) sends GRE-in-UDP datagrams over loopback, each one mirrored SYN (ERSPAN I,
ERSPAN II and bare-IP GRE; IPv4 and IPv6 inside) of a different flow, to a \`MirrorReceiver\`
listening on 127.0.0.1 with a 4 MiB receive buffer, as the controller configures it. The
receiver reads and decodes in its worker thread and delivers batches of FlowEvents to a sink on
the main thread that counts them. First the sender is paced to the target rate for a few
seconds; then it sends as fast as it can.

**How to read it.** *Sent* is what the sender handed to the kernel; *received* what the
receiver counted; *kernel drops* the \`drops\` column of \`/proc/net/udp\` for the receiver's
socket (the receive buffer was full); *unexplained* is sent − received − kernel drops, which
must be 0. *Decoded per CPU-second* divides the frames decoded by the CPU time of the whole
receiving process (worker, main thread and the sink), so it is what one core sustains however
the two cores are shared. The baseline for the paced rows is the offered rate of the same run:
the receiver keeps up when decoded equals offered and drops nothing. The sender shares the
machine's two cores with the receiver (and the kernel's loopback work runs in the sender's
system calls), so on a loaded machine the sender, not the receiver, can limit the rate reached.
`;

export async function receiveBench(opts: ReceiveBenchOptions = RECEIVE_FULL): Promise<BenchOutput> {
  const measured = runContext();
  const paced: RunResult[] = [];
  const flood: RunResult[] = [];
  const count = Math.round(opts.rate * opts.seconds);
  for (let r = 0; r < opts.runs; r++) {
    process.stdout.write(`receive: run ${r + 1} of ${opts.runs}: ${count.toLocaleString('en-US')} frames paced at ${opts.rate.toLocaleString('en-US')}/s, then ${opts.floodFrames.toLocaleString('en-US')} as fast as the sender can\n`);
    paced.push(await oneRun(count, opts.rate));
    flood.push(await oneRun(opts.floodFrames, 0));
  }
  const rate = opts.rate.toLocaleString('en-US');
  const unexplained = [...paced, ...flood].reduce((a, r) => a + Math.abs(r.unexplained), 0);
  const figures: Figure[] = [
    repeated({ id: 'receive.paced.offered_per_s', what: `Offered rate (sender, paced at ${rate}/s)`, unit: 'frames/s', target: '', met: true, isBaseline: true }, paced.map((r) => r.sent / r.senderSeconds)),
    repeated({ id: 'receive.paced.decoded_per_s', what: `Decoded, paced at ${rate}/s`, unit: 'frames/s', target: '', met: true, baseline: 'receive.paced.offered_per_s' }, paced.map((r) => r.decodedPerS)),
    repeated({ id: 'receive.paced.kernel_drops', what: `Kernel socket drops, paced at ${rate}/s`, unit: 'frames', target: '', met: true }, paced.map((r) => r.socketDrops)),
    repeated({ id: 'receive.paced.decoded_per_cpu_s', what: `Decoded per CPU-second of the receiving process, paced at ${rate}/s`, unit: 'frames/s', target: '≥ 200,000', met: true }, paced.map((r) => r.decodedPerCpuS)),
    repeated({ id: 'receive.flood.offered_per_s', what: 'Offered rate (sender as fast as it can)', unit: 'frames/s', target: '', met: true, isBaseline: true }, flood.map((r) => r.sent / r.senderSeconds)),
    repeated({ id: 'receive.flood.decoded_per_s', what: 'Decoded, sender as fast as it can', unit: 'frames/s', target: '', met: true, baseline: 'receive.flood.offered_per_s' }, flood.map((r) => r.decodedPerS)),
    repeated({ id: 'receive.flood.kernel_drops', what: 'Kernel socket drops, sender as fast as it can', unit: 'frames', target: '', met: true }, flood.map((r) => r.socketDrops)),
    repeated({ id: 'receive.flood.decoded_per_cpu_s', what: 'Decoded per CPU-second of the receiving process, sender as fast as it can', unit: 'frames/s', target: '≥ 200,000', met: true }, flood.map((r) => r.decodedPerCpuS)),
    { id: 'receive.unexplained', what: 'Frames unaccounted for (sent − received − kernel drops), all runs', value: unexplained, unit: 'frames', target: '= 0', met: unexplained === 0 },
  ];
  for (const f of figures) if (f.target === '≥ 200,000') f.met = f.value >= 200_000;
  return { figures, section: { key: 'receive', title: 'Receiving mirrored frames over loopback', about: ABOUT, figures: figures.filter((f) => f.isBaseline !== true).map((f) => f.id), measured } };
}

export type { RunResult as ReceiveRunResult };
