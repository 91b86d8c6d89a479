// Long-lived TCP connections a lab client runs inside its namespace. Commands arrive as JSON
// lines on stdin, answers leave as JSON lines on stdout:
//   {"op":"open","targets":[{"host","port","count","local":[addr...]}],"intervalMs","chunk"}
//     opens the connections; answers {"op":"opened",...} once all are established or failed;
//   {"op":"report"}: counts now; {"op":"close"}: stops sending, waits until every byte sent
//     was echoed back (or the connection broke) and every half-closed connection was closed by
//     its server, ends all, answers the final report;
//   {"op":"halfClose","port":P}: shuts the sending side (FIN) of every open connection to port
//     P once its echo is complete; the server goes on sending a tail until it closes its side.
// Every connection sends a deterministic byte pattern and checks the echo byte by byte (and a
// half-closed one its tail): a reset, an error, a wrong byte or data that stops moving
// (stalled) is counted.

import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { tailByte } from './tail.js';

interface Target {
  host: string;
  port: number;
  count: number;
  local: string[];
}
interface Conn {
  id: number;
  family: 4 | 6;
  sock: Socket;
  sent: number;
  echoed: number;
  port: number;
  /** Tail bytes received after the client's FIN. */
  tailed: number;
  /**
   * half-closed: the client sent its FIN, the server still sends; tail-done: the server closed its side
   * after.
   */
  state: 'connecting' | 'open' | 'half-closing' | 'half-closed' | 'tail-done' | 'broken' | 'closed';
  why: string;
  lastProgress: number;
  localPort: number;
  localAddr: string;
}

const conns: Conn[] = [];
let intervalMs = 200;
let chunk = 64;
let stallMs = 3000;
let sending = true;
/** How long close waits for half-closed connections' tails, at most (ms). */
let tailWaitMs = 0;
const byteAt = (id: number, k: number): number => (id * 31 + k * 7 + (k >> 8)) & 0xff;
const out = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n');

function breakConn(c: Conn, why: string): void {
  if (c.state === 'broken' || c.state === 'closed' || c.state === 'tail-done') return;
  c.state = 'broken';
  c.why = why;
  c.sock.destroy();
}

function open(t: Target, family: 4 | 6, local: string): Promise<void> {
  const c: Conn = {
    id: conns.length,
    family,
    sock: undefined as unknown as Socket,
    sent: 0,
    echoed: 0,
    port: t.port,
    tailed: 0,
    state: 'connecting',
    why: '',
    lastProgress: Date.now(),
    localPort: 0,
    localAddr: local,
  };
  conns.push(c);
  return new Promise((resolve) => {
    const sock = connect({ host: t.host, port: t.port, localAddress: local });
    c.sock = sock;
    sock.setNoDelay(true);
    sock.on('connect', () => {
      c.state = 'open';
      c.localPort = sock.localPort ?? 0;
      c.lastProgress = Date.now();
      resolve();
    });
    sock.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; i++) {
        // The echo of what was sent first, then (half-closed) the server's tail.
        const want = c.echoed < c.sent ? byteAt(c.id, c.echoed) : tailByte(c.tailed);
        if (
          d[i] !== want ||
          (c.echoed >= c.sent && c.state !== 'half-closed' && c.state !== 'half-closing')
        ) {
          breakConn(c, 'corrupt');
          return;
        }
        if (c.echoed < c.sent) c.echoed++;
        else c.tailed++;
      }
      c.lastProgress = Date.now();
    });
    sock.on('end', () => {
      // The server closed its side: the end of a half-closed connection's tail.
      if (c.state === 'half-closed') c.state = 'tail-done';
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      breakConn(c, e.code ?? e.message);
      resolve();
    });
    sock.on('close', () => {
      if (
        c.state === 'open' ||
        c.state === 'connecting' ||
        c.state === 'half-closing' ||
        c.state === 'half-closed'
      )
        breakConn(c, 'closed-by-peer');
      resolve();
    });
  });
}

function tick(): void {
  const now = Date.now();
  for (const c of conns) {
    if (c.state === 'half-closing' && c.echoed === c.sent) {
      c.state = 'half-closed';
      c.lastProgress = now;
      c.sock.end();
    }
    // A half-closed connection's tail comes every 100 ms until the server closes.
    if ((c.state === 'half-closed' || c.state === 'half-closing') && now - c.lastProgress > stallMs)
      breakConn(c, 'stalled');
    if (c.state !== 'open') continue;
    if (c.echoed < c.sent && now - c.lastProgress > stallMs) {
      breakConn(c, 'stalled');
      continue;
    }
    if (!sending) continue;
    const b = Buffer.allocUnsafe(chunk);
    for (let i = 0; i < chunk; i++) b[i] = byteAt(c.id, c.sent + i);
    if (c.echoed === c.sent) c.lastProgress = now;
    c.sent += chunk;
    c.sock.write(b);
  }
}

function report(): Record<string, unknown> {
  const by = (f: 4 | 6) => conns.filter((c) => c.family === f);
  const broken = conns.filter((c) => c.state === 'broken');
  const reasons: Record<string, number> = {};
  for (const c of broken) reasons[c.why] = (reasons[c.why] ?? 0) + 1;
  return {
    op: 'report',
    opened: conns.length,
    open4: by(4).filter((c) => c.state === 'open').length,
    open6: by(6).filter((c) => c.state === 'open').length,
    halfClosed: conns.filter((c) => c.state === 'half-closing' || c.state === 'half-closed').length,
    tailDone: conns.filter((c) => c.state === 'tail-done').length,
    tailBytes: conns.reduce((a, c) => a + c.tailed, 0),
    broken: broken.length,
    reasons,
    brokenFlows: broken.map((c) => ({ family: c.family, src: c.localAddr, sport: c.localPort, why: c.why })),
    sent: conns.reduce((a, c) => a + c.sent, 0),
    echoed: conns.reduce((a, c) => a + c.echoed, 0),
  };
}

async function closeAll(): Promise<void> {
  sending = false;
  const deadline = Date.now() + 10_000 + tailWaitMs;
  const busy = (c: Conn): boolean =>
    (c.state === 'open' && c.echoed < c.sent) || c.state === 'half-closing' || c.state === 'half-closed';
  while (Date.now() < deadline && conns.some(busy)) await new Promise((r) => setTimeout(r, 50));
  for (const c of conns) {
    if (c.state === 'half-closing' || c.state === 'half-closed') breakConn(c, 'tail-not-ended-at-close');
    if (c.state === 'tail-done') c.state = 'closed';
    if (c.state !== 'open') continue;
    if (c.echoed !== c.sent) breakConn(c, 'unechoed-at-close');
    else {
      c.state = 'closed';
      c.sock.end();
    }
  }
}

let timer: NodeJS.Timeout | undefined;

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line) as {
    op: string;
    targets?: Target[];
    intervalMs?: number;
    chunk?: number;
    stallMs?: number;
    port?: number;
    tailWaitMs?: number;
  };
  if (cmd.op === 'open') {
    intervalMs = cmd.intervalMs ?? intervalMs;
    chunk = cmd.chunk ?? chunk;
    stallMs = cmd.stallMs ?? stallMs;
    if (timer === undefined) timer = setInterval(tick, intervalMs);
    const jobs: Promise<void>[] = [];
    for (const t of cmd.targets ?? []) {
      const family = t.host.includes(':') ? 6 : 4;
      for (let i = 0; i < t.count; i++) jobs.push(open(t, family, t.local[i % t.local.length] as string));
    }
    void Promise.all(jobs).then(() => out({ ...report(), op: 'opened' }));
  } else if (cmd.op === 'halfClose') {
    let n = 0;
    for (const c of conns) {
      if (c.state !== 'open' || c.port !== cmd.port) continue;
      c.state = 'half-closing'; // its FIN goes once its echo is complete (tick)
      n++;
    }
    tailWaitMs = Math.max(tailWaitMs, cmd.tailWaitMs ?? 0);
    out({ ...report(), op: 'half-closed', halfClosed: n });
  } else if (cmd.op === 'report') out(report());
  else if (cmd.op === 'close') void closeAll().then(() => out({ ...report(), op: 'closed' }));
});
process.stdin.on('end', () => process.exit(0));
