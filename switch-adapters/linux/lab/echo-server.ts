// TCP echo service a lab server runs inside its namespace: listens on [::]:PORT (IPv4 too),
// writes back every byte it reads. On PORT+1 it also serves half-closed connections: once the
// client has shut its side (FIN), it goes on sending a tail (64 bytes every 100 ms, bytes
// tailByte(0), tailByte(1), ...) for TAIL_MS, then closes its side. Prints "ready" once listening.
// Usage: echo-server PORT [TAIL_MS]

import { createServer } from 'node:net';
import { tailByte } from './tail.js';

const port = Number(process.argv[2] ?? '7007');
const tailMs = Number(process.argv[3] ?? '8000');
const echo = createServer((s) => {
  s.on('error', () => s.destroy());
  s.pipe(s);
});
const halfClose = createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', () => s.destroy());
  s.on('data', (d: Buffer) => s.write(d));
  s.on('end', () => {
    let k = 0;
    const until = Date.now() + tailMs;
    const timer = setInterval(() => {
      if (s.destroyed || Date.now() >= until) {
        clearInterval(timer);
        s.end();
        return;
      }
      const b = Buffer.allocUnsafe(64);
      for (let i = 0; i < b.length; i++) b[i] = tailByte(k++);
      s.write(b);
    }, 100);
  });
});
let listening = 0;
const ready = (): void => {
  if (++listening === 2) process.stdout.write('ready\n');
};
echo.listen({ host: '::', port, ipv6Only: false }, ready);
halfClose.listen({ host: '::', port: port + 1, ipv6Only: false }, ready);
process.on('SIGTERM', () => process.exit(0));
