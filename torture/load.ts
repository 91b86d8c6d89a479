// `flowpin load`: the external load of the torture runner, a process of its own. It opens TCP
// connections toward a VIP at a set rate through the simulator's dataplane endpoint
// (switch-sim/dataplane-wire.ts, UDP on loopback): a SYN, a data segment every interval,
// a FIN at the end of a lifetime drawn from a lognormal of seconds, answered by the server's
// FIN, then the final ACK. A connection whose
// segment is answered `reset` or `lost` is broken and sends no more. Segments are batched
// per tick. It logs the SYNs it sent (one JSON line per tick: wall time and "src:sport"
// of each) and prints a summary line at the end. Bounded: by --duration-s and
// --max-connections in what it opens, by --finish-s in how long it waits for the open ones.

import { createSocket } from 'node:dgram';
import { createWriteStream, type WriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { VirtualClock } from '../switch-sim/clock.js';
import {
  DP_MAX_BATCH,
  decodeReply,
  encodeRequest,
  intToIpv4,
  ipv4ToInt,
  type DpResult,
  type DpSegment,
} from '../switch-sim/dataplane-wire.js';
import { Rng, sampleLifetimeMs } from '../switch-sim/rng.js';

export const LOAD_USAGE = `usage: flowpin load --dataplane HOST:PORT [--vip ADDR:PORT] [--rate N] [--duration-s S]
                   [--lifetime-median-s S] [--lifetime-sigma X] [--lifetime-max-s S] [--interval-ms N]
                   [--clients BASE/BITS] [--seed N] [--log FILE] [--finish-s S] [--max-connections N]`;

export interface LoadOptions {
  dataplane: { host: string; port: number };
  vip: string;
  port: number;
  rate: number;
  durationS: number;
  lifetime: { medianS: number; sigma: number; maxS: number };
  intervalMs: number;
  clientBase: number;
  clientCount: number;
  seed: number;
  log?: string;
  finishS: number;
  maxConnections: number;
}

export interface LoadSummary {
  opened: number;
  failed: number;
  closed: number;
  reset: number;
  unanswered: number;
  segments: number;
  abandoned: number;
  firstSynAt: number;
  lastSynAt: number;
}

interface Conn {
  src: number;
  sport: number;
  endAt: number;
  done: boolean;
  closing: boolean;
}

const TICK_MS = 5;
const REPLY_TIMEOUT_MS = 10_000;

export async function runLoad(o: LoadOptions, stopSignal: Promise<unknown>): Promise<LoadSummary> {
  const rng = new Rng(o.seed);
  const clock = new VirtualClock(Date.now());
  const sock = createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  const log: WriteStream | undefined =
    o.log === undefined ? undefined : createWriteStream(o.log, { flags: 'a' });
  const s: LoadSummary = {
    opened: 0,
    failed: 0,
    closed: 0,
    reset: 0,
    unanswered: 0,
    segments: 0,
    abandoned: 0,
    firstSynAt: 0,
    lastSynAt: 0,
  };
  const dst = ipv4ToInt(o.vip);
  const live = new Set<string>();
  const open = new Set<Conn>();
  let outbox: { seg: DpSegment; cb: (r: DpResult | undefined) => void }[] = [];
  const waiting = new Map<number, { at: number; cbs: ((r: DpResult | undefined) => void)[] }>();
  let batchId = 1;
  sock.on('message', (msg) => {
    const rep = decodeReply(msg);
    if (rep === undefined) return;
    const w = waiting.get(rep.batch);
    if (w === undefined) return;
    waiting.delete(rep.batch);
    w.cbs.forEach((cb, i) => cb(rep.results[i]));
  });
  const send = (seg: DpSegment, cb: (r: DpResult | undefined) => void): void => {
    outbox.push({ seg, cb });
  };
  const flush = (): void => {
    while (outbox.length > 0) {
      const part = outbox.slice(0, DP_MAX_BATCH);
      outbox = outbox.slice(part.length);
      const id = batchId++;
      waiting.set(id, { at: Date.now(), cbs: part.map((p) => p.cb) });
      s.segments += part.length;
      sock.send(
        encodeRequest(
          id,
          part.map((p) => p.seg),
        ),
        o.dataplane.port,
        o.dataplane.host,
      );
    }
    const now = Date.now();
    for (const [id, w] of waiting) {
      if (now - w.at < REPLY_TIMEOUT_MS) break;
      waiting.delete(id);
      for (const cb of w.cbs) cb(undefined);
    }
  };
  const finish = (c: Conn): void => {
    c.done = true;
    open.delete(c);
    live.delete(`${c.src}:${c.sport}`);
  };
  const next = (c: Conn): void => {
    const t = clock.now() + o.intervalMs * (0.5 + rng.next());
    if (t >= c.endAt) clock.at(c.endAt, () => segment(c, 0x11));
    else clock.at(t, () => segment(c, 0x10));
  };
  const segment = (c: Conn, flags: number): void => {
    if (c.done) return;
    send({ src: c.src, dst, sport: c.sport, dport: o.port, flags }, (r) => {
      if (c.done) return;
      if (r === undefined) {
        // No answer (a datagram lost on loopback, or a simulator too slow): the connection carries on; a
        // close is done.
        s.unanswered++;
        if (c.closing || flags === 0x11) {
          s.closed++;
          finish(c);
        } else next(c);
        return;
      }
      if (flags === 0x10 && c.closing) {
        // The final ACK after the server's FIN: closed, wherever it went (a client in TIME-WAIT ignores a
        // RST).
        s.closed++;
        finish(c);
      } else if (r.outcome === 'reset' || r.outcome === 'lost') {
        s.reset++;
        finish(c);
      } else if (flags === 0x11) {
        // The server answered our FIN with its own: the final ACK follows after the round trip.
        c.closing = true;
        clock.at(clock.now() + 1, () => segment(c, 0x10));
      } else next(c);
    });
  };
  const started = Date.now();
  const endAt = started + o.durationS * 1000;
  let credit = 0;
  let last = started;
  let stopping = false;
  void stopSignal.then(() => (stopping = true));
  const openOne = (synBatch: string[]): void => {
    let src = 0;
    let sport = 0;
    for (let tries = 0; tries < 100; tries++) {
      src = (o.clientBase + rng.int(0, o.clientCount - 1)) >>> 0;
      sport = rng.int(1024, 65535);
      if (!live.has(`${src}:${sport}`)) break;
    }
    const key = `${src}:${sport}`;
    live.add(key);
    const now = clock.now();
    const c: Conn = {
      src,
      sport,
      endAt: now + sampleLifetimeMs({ kind: 'lognormal', ...o.lifetime }, rng),
      done: false,
      closing: false,
    };
    open.add(c);
    synBatch.push(`${intToIpv4(src)}:${sport}`);
    send({ src, dst, sport, dport: o.port, flags: 0x02 }, (r) => {
      if (r === undefined) {
        // The client gives up on a handshake it heard nothing of: a RST, so that the server forgets it too.
        s.unanswered++;
        send({ src, dst, sport, dport: o.port, flags: 0x14 }, () => undefined);
        finish(c);
      } else if (r.outcome !== 'opened') {
        s.failed++;
        finish(c);
      } else {
        s.opened++;
        next(c);
      }
    });
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      clock.advanceTo(now);
      const opening = !stopping && now < endAt && s.opened + s.failed + open.size < o.maxConnections;
      if (opening) {
        credit += ((now - last) / 1000) * o.rate;
        const syns: string[] = [];
        while (credit >= 1) {
          credit--;
          openOne(syns);
        }
        if (syns.length > 0) {
          if (s.firstSynAt === 0) s.firstSynAt = now;
          s.lastSynAt = now;
          log?.write(`${JSON.stringify({ t: now, syn: syns })}\n`);
        }
      }
      last = now;
      flush();
      const finishBy = Math.min(endAt, stopping ? now : endAt) + o.finishS * 1000;
      if (!opening && (open.size === 0 || now > finishBy)) {
        s.abandoned = open.size;
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  sock.close();
  if (log) await new Promise<void>((r) => log.end(() => r()));
  return s;
}

export function loadOptionsFromArgs(args: string[]): LoadOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      dataplane: { type: 'string' },
      vip: { type: 'string', default: '192.0.2.80:443' },
      rate: { type: 'string', default: '1000' },
      'duration-s': { type: 'string', default: '30' },
      'lifetime-median-s': { type: 'string', default: '2' },
      'lifetime-sigma': { type: 'string', default: '0.8' },
      'lifetime-max-s': { type: 'string', default: '20' },
      'interval-ms': { type: 'string', default: '500' },
      clients: { type: 'string', default: '10.100.0.0/16' },
      seed: { type: 'string', default: '1' },
      log: { type: 'string' },
      'finish-s': { type: 'string', default: '25' },
      'max-connections': { type: 'string', default: '2000000' },
    },
  });
  const num = (k: keyof typeof values, min: number): number => {
    const v = Number(values[k]);
    if (!Number.isFinite(v) || v < min)
      throw new RangeError(`--${k} must be a number >= ${min}, got '${String(values[k])}'`);
    return v;
  };
  const hostPort = (v: string | undefined, flag: string): { host: string; port: number } => {
    const at = v?.lastIndexOf(':') ?? -1;
    if (v === undefined || at < 0) throw new RangeError(`--${flag} HOST:PORT is required`);
    return { host: v.slice(0, at), port: Number(v.slice(at + 1)) };
  };
  const vip = hostPort(values.vip, 'vip');
  const [base, bits] = (values.clients ?? '').split('/');
  const count = 2 ** (32 - Number(bits ?? 16));
  if (!(count >= 1)) throw new RangeError(`--clients BASE/BITS, got '${String(values.clients)}'`);
  return {
    dataplane: hostPort(values.dataplane, 'dataplane'),
    vip: vip.host,
    port: vip.port,
    rate: num('rate', 0.001),
    durationS: num('duration-s', 0),
    lifetime: {
      medianS: num('lifetime-median-s', 0.001),
      sigma: num('lifetime-sigma', 0),
      maxS: num('lifetime-max-s', 0.001),
    },
    intervalMs: num('interval-ms', 1),
    clientBase: ipv4ToInt(base ?? '10.100.0.0') + 1,
    clientCount: Math.max(1, count - 2),
    seed: num('seed', 0),
    ...(values.log === undefined ? {} : { log: values.log }),
    finishS: num('finish-s', 0),
    maxConnections: num('max-connections', 1),
  };
}

export async function loadCommand(args: string[]): Promise<number> {
  const o = loadOptionsFromArgs(args);
  const stop = new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const s = await runLoad(o, stop);
  process.stdout.write(`${JSON.stringify({ summary: s })}\n`);
  return 0;
}
