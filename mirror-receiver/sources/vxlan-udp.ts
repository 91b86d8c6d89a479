// VXLAN source: a UDP socket (by default port 4789) whose datagrams are VXLAN headers and
// mirrored Ethernet frames. It can also take a socket already bound elsewhere (e.g. opened in
// the router-facing network namespace and handed over; see docs/linux.md). The read path only
// decodes and hands events on: it never waits for look-ups or pin writes, and the receive
// buffer is large (32 MiB asked unless configured; the kernel caps it at net.core.rmem_max,
// doubled: see gre-udp.ts), because a burst of SYN copies arriving while the process is busy is
// otherwise dropped.

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { MirrorSourceError } from '../errors.js';
import { VXLAN_PORT } from '../decode-vxlan.js';
import { DEFAULT_RECEIVE_BUFFER, setReceiveBuffer, type ReceiveBuffer } from './gre-udp.js';

export interface VxlanOptions {
  host?: string;
  port?: number;
  receiveBufferBytes?: number;
  /** A bound UDP socket to read instead of opening one. */
  socket?: Socket;
}

export class VxlanSource {
  private socket: Socket | undefined;
  private localAddress = '';
  private buffer: ReceiveBuffer = { requested: 0, granted: 0 };

  constructor(
    private readonly options: VxlanOptions,
    private readonly onDatagram: (payload: Buffer, outerSrc: string, outerDst: string) => void,
  ) {}

  async start(): Promise<{ address: string; port: number }> {
    let socket = this.options.socket;
    if (socket === undefined) {
      const host = this.options.host ?? '0.0.0.0';
      const port = this.options.port ?? VXLAN_PORT;
      const s = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
      await new Promise<void>((resolve, reject) => {
        s.once('error', (err) =>
          reject(
            new MirrorSourceError(`cannot listen for VXLAN on ${host}:${port}: ${err.message}`, {
              cause: err,
            }),
          ),
        );
        s.bind({ address: host, port }, () => resolve());
      });
      socket = s;
    }
    this.socket = socket;
    this.buffer = setReceiveBuffer(socket, this.options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER);
    const addr = socket.address();
    this.localAddress = addr.address;
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo.address, this.localAddress));
    return { address: addr.address, port: addr.port };
  }

  /** The receive buffer asked for and as the kernel granted it, bytes. */
  receiveBuffer(): ReceiveBuffer {
    return this.buffer;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
