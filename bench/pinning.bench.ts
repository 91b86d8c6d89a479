// Pinning benchmark: SYN-to-pin latency (p50/p99) and sustained pins per second through
// flowpin's pipeline (batched resolve, batched pins) against the simulator's real eAPI over
// HTTP with 1 ms and 10 ms added per request, and in the same run the prototype's serial
// algorithm (per SYN: one look-up call, then one configuration call) against the same
// endpoint. The switch runs in its own process; events enter the controller directly
// (decoding is measured in decode.bench).

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Controller } from '../controller/controller.js';
import { valueOf } from '../controller/metrics.js';
import { readConfig } from '../controller/config.js';
import { Reader } from '../lib/validate.js';
import type { FlowEvent } from '../mirror-receiver/flow-event.js';
import { tupleOf } from '../mirror-receiver/tuple.js';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import type { EapiSettings } from '../switch-adapters/arista-eapi/kind.js';
import {
  DIRECTFLOW_PREAMBLE,
  loadBalanceCommand,
  parseOutputInterface,
  pinCommands,
} from '../switch-adapters/arista-eapi/directflow.js';
import { EapiTransport } from '../switch-adapters/arista-eapi/transport.js';
import type { Figure } from './results.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];

interface Bed {
  url: string;
  child: ChildProcess;
}

/**
 * The simulated switch in its own process (`flowpin sim`), as a real switch is its own box:
 * its eAPI work does not share the controller's CPU. Latency is added through its fault API.
 */
async function bed(latencyMs: number): Promise<Bed> {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-'));
  const file = path.join(dir, 'sim.yaml');
  writeFileSync(
    file,
    [
      'switch: { pinCapacity: 1000000, uplink: { prefixes: [10.64.0.0/10] } }',
      `vips: [{ address: ${VIP}, nexthops: [${NH.join(', ')}] }]`,
      'traffic: { enabled: false }',
      'mirror: { enabled: false }',
      'gnmi: { enabled: false }',
      'eapi: { port: 0, username: admin, password: pw }',
      'status: { port: 0 }',
      '',
    ].join('\n'),
  );
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/flowpin.js');
  const child = spawn(process.execPath, [bin, 'sim', '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 10_000;
  while (!/counters (http:\S+)\/counters/.test(out)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`flowpin sim did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  rmSync(dir, { recursive: true, force: true });
  const url = /eAPI +(http:\S+)/.exec(out)?.[1] as string;
  const status = /counters (http:\S+)\/counters/.exec(out)?.[1] as string;
  const res = await fetch(`${status}/faults/eapi`, { method: 'PUT', body: JSON.stringify({ latencyMs }) });
  if (res.status !== 200) throw new Error(`cannot set the eAPI latency: ${await res.text()}`);
  return { url, child };
}

async function stopBed(b: Bed): Promise<void> {
  b.child.kill('SIGTERM');
  if (b.child.exitCode === null) await once(b.child, 'exit');
}

let flowNo = 0;
function nextFlow(): { src: string; sport: number } {
  const i = flowNo++;
  return { src: `10.${64 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`, sport: 1024 + (i % 60000) };
}

function segment(src: string, sport: number, flags: number): FlowEvent {
  return {
    outerSrc: '127.0.0.2',
    outerDst: '127.0.0.1',
    encap: 'erspan1',
    greKey: null,
    sessionId: null,
    vlan: null,
    family: 4,
    src,
    dst: VIP,
    sport,
    dport: 443,
    flags,
    tuple: tupleOf({ family: 4, src, dst: VIP, sport, dport: 443 }),
    at: Date.now(),
  };
}

const synEvent = (src: string, sport: number): FlowEvent => segment(src, sport, 0x02);
const finEvent = (src: string, sport: number): FlowEvent => segment(src, sport, 0x11);

/** Connections open at a time in the throughput run. */
const WINDOW = 1000;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/** flowpin: a burst for throughput, then a steady offered rate for latency. */
async function flowpinRun(
  b: Bed,
  BURST: number,
): Promise<{ pinsPerS: number; p50: number; p99: number; offered: number }> {
  const config = readConfig(
    Reader.fromObject('bench', {
      pinMode: 'always',
      resyncIntervalS: 3600,
      mirror: { udp: [] },
      resolveQueue: 1_000_000,
      flowTable: { maxFlows: 2_000_000 },
      switches: [
        {
          name: 'sw1',
          mirrorSources: ['127.0.0.2'],
          pinTableSize: 10_000_000,
          eapi: {
            url: b.url,
            username: 'admin',
            password: 'pw',
            maxConcurrent: 4,
            resolveBatchSize: 500,
            pinBatchSize: 200,
            groupTemplate: 'static-ecmp',
          },
          vips: [{ address: VIP, nexthops: NH }],
        },
      ],
    }),
  );
  const eapi = config.switches[0]?.settings as EapiSettings | undefined;
  if (eapi === undefined) throw new Error('no switch');
  const adapter = new AristaEapiAdapter({
    switchName: 'sw1',
    url: eapi.url,
    username: 'admin',
    password: 'pw',
    maxConcurrent: 4,
    resolveBatchSize: 500,
    pinBatchSize: 200,
    pinTableSize: 10_000_000,
    groupTemplate: { kind: 'static-ecmp' },
  });
  // SYN to pin: from the SYN handed to the controller to the switch's answer that the pin is
  // programmed: the read-back with the write, or (once the table lists more than the
  // adapter's readBackLimit) the controller's timed read-back. Each connection then ends (a
  // FIN), so its pin is removed and the switch holds what a DirectFlow table can (hundreds to
  // a few thousand entries), not every pin of the run.
  const latencies: number[] = [];
  const sentAt = new Map<string, number>();
  const ended = new Set<string>();
  let send = (_e: FlowEvent): void => undefined;
  const programmedNow = (src: string, sport: number): void => {
    const key = `${src}:${sport}`;
    const t = sentAt.get(key);
    if (t !== undefined) {
      latencies.push(Date.now() - t);
      sentAt.delete(key);
    }
    if (ended.has(key)) return;
    ended.add(key);
    setImmediate(() => {
      send(finEvent(src, sport));
      refill();
    });
  };
  let refill = (): void => undefined;
  const install = adapter.installPins.bind(adapter);
  adapter.installPins = async (pins) => {
    const out = await install(pins);
    out.forEach((o, i) => {
      const p = pins[i];
      if (p !== undefined && o.ok && o.programmed === true) programmedNow(p.flow.src, p.flow.sport);
    });
    return out;
  };
  const list = adapter.listPins.bind(adapter);
  adapter.listPins = async () => {
    const out = await list();
    for (const p of out) if (p.programmed) programmedNow(p.flow.src, p.flow.sport);
    return out;
  };
  const c = new Controller({
    config,
    adapters: new Map([['sw1', adapter]]),
    logger: pino({ level: 'silent' }),
    listen: false,
  });
  send = (e) => c.onEvent(e);
  await c.start();
  const installed = (): Promise<number> => valueOf(c.metrics.pinsInstalled, { switch: 'sw1' });
  const waitFor = async (n: number, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while ((await installed()) < n) {
      if (Date.now() > end) throw new Error(`only ${await installed()} of ${n} pins after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  // Warm up (ingress and via caches, connections).
  for (let i = 0; i < 200; i++) {
    const f = nextFlow();
    c.onEvent(synEvent(f.src, f.sport));
  }
  await waitFor(200, 30_000);
  // Throughput: a burst, fed in slices so the event loop keeps receiving and sending.
  const base = await installed();
  // Throughput: BURST connections through a pool of WINDOW open at a time (a new one as each
  // pinned one ends), as a switch's table holds them: WINDOW fits the DirectFlow table of a
  // 7050X (about 1,500 entries) with room for the pins being removed.
  const t0 = Date.now();
  let toSend = BURST;
  const sendOne = (): void => {
    if (toSend <= 0) return;
    toSend--;
    const f = nextFlow();
    c.onEvent(synEvent(f.src, f.sport));
  };
  refill = sendOne;
  for (let i = 0; i < Math.min(WINDOW, BURST); i++) sendOne();
  await waitFor(base + BURST, 300_000);
  refill = () => undefined;
  const pinsPerS = BURST / ((Date.now() - t0) / 1000);
  // Latency: a steady offered rate well below the throughput, every 5 ms.
  const offered = Math.min(5000, Math.floor(pinsPerS / 4));
  const before = await installed();
  latencies.length = 0;
  const duration = BURST < 30_000 ? 1000 : 3000;
  const perTick = Math.max(1, Math.round(offered / 200));
  const start = Date.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      for (let k = 0; k < perTick; k++) {
        const f = nextFlow();
        sentAt.set(`${f.src}:${f.sport}`, now);
        c.onEvent(synEvent(f.src, f.sport));
        sent++;
      }
      if (now - start >= duration) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  await waitFor(before + sent, 60_000);
  await c.stop();
  return {
    pinsPerS,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    offered: Math.round(sent / (duration / 1000)),
  };
}

/** The prototype's algorithm: per SYN, one look-up call then one configuration call, serially. */
async function baselineRun(b: Bed, n: number): Promise<{ pinsPerS: number; p50: number; p99: number }> {
  const t = new EapiTransport({
    switchName: 'baseline',
    url: b.url,
    username: 'admin',
    password: 'pw',
    maxConcurrent: 1,
  });
  const routeOf = new Map(
    (await t.runCmds([`show ip route ${VIP}`])).ok ? NH.map((nh, i) => [`Ethernet${i + 1}`, nh]) : [],
  );
  const times: number[] = [];
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const f = nextFlow();
    const spec = { family: 4 as const, src: f.src, dst: VIP, sport: f.sport, dport: 443 };
    const s = Date.now();
    const lb = await t.runCmds(['enable', loadBalanceCommand(spec, 'Ethernet47')], 'text');
    const iface = lb.ok ? parseOutputInterface(lb.results[1]?.['output']) : undefined;
    const nh = iface === undefined ? undefined : routeOf.get(iface);
    if (nh === undefined) throw new Error('baseline could not resolve a flow');
    const r = await t.runCmds([
      ...DIRECTFLOW_PREAMBLE,
      ...pinCommands({ flow: spec, nexthop: nh, idleTimeoutS: 300 }),
    ]);
    if (!r.ok) throw new Error('baseline pin refused');
    times.push(Date.now() - s);
  }
  const pinsPerS = n / ((Date.now() - t0) / 1000);
  t.close();
  return { pinsPerS, p50: pct(times, 50), p99: pct(times, 99) };
}

export interface PinningSize {
  /** SYNs of the throughput burst. */
  burst: number;
  /** Serial baseline SYNs at +1 ms and +10 ms. */
  baseline: [number, number];
}

export const PINNING_FULL: PinningSize = { burst: 30_000, baseline: [1000, 300] };
export const PINNING_TINY: PinningSize = { burst: 2_000, baseline: [50, 20] };

export async function pinningBench(size: PinningSize = PINNING_FULL): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const latency of [1, 10]) {
    const b = await bed(latency);
    try {
      process.stdout.write(`pinning: eAPI +${latency} ms: baseline (serial, 2 calls per SYN)...\n`);
      const base = await baselineRun(b, latency === 1 ? size.baseline[0] : size.baseline[1]);
      process.stdout.write(
        `pinning: eAPI +${latency} ms: flowpin (${size.burst.toLocaleString('en-US')} connections, ${WINDOW.toLocaleString('en-US')} open at a time, then a steady rate)...\n`,
      );
      const fp = await flowpinRun(b, size.burst);
      const ratio = fp.pinsPerS / base.pinsPerS;
      const tag = `${latency}ms`;
      figures.push(
        {
          id: `pinning.${tag}.flowpin_pins_per_s`,
          what: `Sustained pins/s, flowpin, eAPI +${latency} ms`,
          value: fp.pinsPerS,
          unit: 'pins/s',
          target: '',
          met: true,
        },
        {
          id: `pinning.${tag}.baseline_pins_per_s`,
          what: `Pins/s, serial baseline (prototype), eAPI +${latency} ms`,
          value: base.pinsPerS,
          unit: 'pins/s',
          target: '',
          met: true,
        },
        {
          id: `pinning.${tag}.speedup`,
          what: `flowpin / baseline throughput, eAPI +${latency} ms`,
          value: ratio,
          unit: 'x',
          target: latency === 10 ? '≥ 50' : '',
          met: latency !== 10 || ratio >= 50,
        },
        {
          id: `pinning.${tag}.flowpin_p50_ms`,
          what: `SYN-to-pin p50, flowpin at ${fp.offered.toLocaleString('en-US')} SYN/s (to programmed, read back), eAPI +${latency} ms`,
          value: fp.p50,
          unit: 'ms',
          target: '',
          met: true,
        },
        {
          id: `pinning.${tag}.flowpin_p99_ms`,
          what: `SYN-to-pin p99, flowpin at ${fp.offered.toLocaleString('en-US')} SYN/s (to programmed, read back), eAPI +${latency} ms`,
          value: fp.p99,
          unit: 'ms',
          target: '',
          met: true,
        },
        {
          id: `pinning.${tag}.baseline_p50_ms`,
          what: `SYN-to-pin p50, baseline (unloaded; to configuration accepted, never read back), eAPI +${latency} ms`,
          value: base.p50,
          unit: 'ms',
          target: '',
          met: true,
        },
        {
          id: `pinning.${tag}.baseline_p99_ms`,
          what: `SYN-to-pin p99, baseline (unloaded; to configuration accepted, never read back), eAPI +${latency} ms`,
          value: base.p99,
          unit: 'ms',
          target: '',
          met: true,
        },
      );
    } finally {
      await stopBed(b);
    }
  }
  return figures;
}
