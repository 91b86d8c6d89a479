// Opens the lab's mirror collector socket inside the collector namespace (where the router's
// VXLAN mirror sends) and hands it to the parent over the IPC channel, then exits. A socket
// keeps the namespace it was made in, so flowpin, running in the parent's namespace, reads
// mirror traffic that never leaves the lab's namespaces.

import { createSocket } from 'node:dgram';

const [host = '192.0.2.2', port = '4789'] = process.argv.slice(2);
const s = createSocket('udp4');
s.bind(Number(port), host, () => {
  process.send?.('socket', s, () => {
    // Our copy must not read: the parent's is the reader.
    s.close();
    process.disconnect?.();
  });
});
