// TCP echo service a lab server runs inside its namespace: listens on [::]:PORT (IPv4 too),
// writes back every byte it reads. Prints "ready" once listening.

import { createServer } from 'node:net';

const port = Number(process.argv[2] ?? '7007');
const server = createServer((s) => {
  s.on('error', () => s.destroy());
  s.pipe(s);
});
server.listen({ host: '::', port, ipv6Only: false }, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
