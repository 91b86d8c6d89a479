// GRE-in-UDP source (RFC 8086): a UDP socket, by default on port 4754; each datagram is a
// GRE header and what follows, from the switch at the datagram's source address.
// Works unprivileged.

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { MirrorSourceError } from '../errors.js';
import { GRE_IN_UDP_PORT } from '../decode-outer.js';

export interface GreUdpOptions {
  host?: string;
  port?: number;
  /** Socket receive buffer in bytes; bursts of mirrored SYNs need room. */
  receiveBufferBytes?: number;
}

export class GreUdpSource {
  private socket: Socket | undefined;
  private localAddress = '';

  constructor(
    private readonly options: GreUdpOptions,
    private readonly onDatagram: (payload: Buffer, outerSrc: string, outerDst: string) => void,
  ) {}

  async start(): Promise<{ address: string; port: number }> {
    const host = this.options.host ?? '0.0.0.0';
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => reject(new MirrorSourceError(`cannot listen for GRE-in-UDP on ${host}:${this.options.port ?? GRE_IN_UDP_PORT}: ${err.message}`, { cause: err })));
      socket.bind({ address: host, port: this.options.port ?? GRE_IN_UDP_PORT }, () => resolve());
    });
    if (this.options.receiveBufferBytes !== undefined) socket.setRecvBufferSize(this.options.receiveBufferBytes);
    const addr = socket.address();
    this.localAddress = addr.address;
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo.address, this.localAddress));
    return { address: addr.address, port: addr.port };
  }

  /** The socket's receive buffer as the kernel set it (Linux doubles the request, capped by rmem_max). */
  receiveBufferBytes(): number {
    return this.socket?.getRecvBufferSize() ?? 0;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
