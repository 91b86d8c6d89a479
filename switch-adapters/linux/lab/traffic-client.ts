// Long-lived TCP connections a lab client runs inside its namespace. Commands arrive as JSON
// lines on stdin, answers leave as JSON lines on stdout:
//   {"op":"open","targets":[{"host","port","count","local":[addr...]}],"intervalMs","chunk"}
//     opens the connections; answers {"op":"opened",...} once all are established or failed;
//   {"op":"report"}: counts now; {"op":"close"}: stops sending, waits until every byte sent
//     was echoed back (or the connection broke), ends all, answers the final report.
// Every connection sends a deterministic byte pattern and checks the echo byte by byte: a
// reset, an error, a wrong byte or an echo that stops moving (stalled) is counted.

import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

interface Target { host: string; port: number; count: number; local: string[] }
interface Conn {
  id: number;
  family: 4 | 6;
  sock: Socket;
  sent: number;
  echoed: number;
  state: 'connecting' | 'open' | 'broken' | 'closed';
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
const byteAt = (id: number, k: number): number => (id * 31 + k * 7 + (k >> 8)) & 0xff;
const out = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n');

function breakConn(c: Conn, why: string): void {
  if (c.state === 'broken' || c.state === 'closed') return;
  c.state = 'broken';
  c.why = why;
  c.sock.destroy();
}

function open(t: Target, family: 4 | 6, local: string): Promise<void> {
  const c: Conn = { id: conns.length, family, sock: undefined as unknown as Socket, sent: 0, echoed: 0, state: 'connecting', why: '', lastProgress: Date.now(), localPort: 0, localAddr: local };
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
        if (d[i] !== byteAt(c.id, c.echoed + i)) {
          breakConn(c, 'corrupt');
          return;
        }
      }
      c.echoed += d.length;
      c.lastProgress = Date.now();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      breakConn(c, e.code ?? e.message);
      resolve();
    });
    sock.on('close', () => {
      if (c.state === 'open' || c.state === 'connecting') breakConn(c, 'closed-by-peer');
      resolve();
    });
  });
}

function tick(): void {
  const now = Date.now();
  for (const c of conns) {
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
    broken: broken.length,
    reasons,
    brokenFlows: broken.map((c) => ({ family: c.family, src: c.localAddr, sport: c.localPort, why: c.why })),
    sent: conns.reduce((a, c) => a + c.sent, 0),
    echoed: conns.reduce((a, c) => a + c.echoed, 0),
  };
}

async function closeAll(): Promise<void> {
  sending = false;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && conns.some((c) => c.state === 'open' && c.echoed < c.sent)) await new Promise((r) => setTimeout(r, 50));
  for (const c of conns) {
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
  const cmd = JSON.parse(line) as { op: string; targets?: Target[]; intervalMs?: number; chunk?: number; stallMs?: number };
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
  } else if (cmd.op === 'report') out(report());
  else if (cmd.op === 'close') void closeAll().then(() => out({ ...report(), op: 'closed' }));
});
process.stdin.on('end', () => process.exit(0));
