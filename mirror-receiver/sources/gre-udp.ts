// GRE-in-UDP source (RFC 8086): a UDP socket, by default on port 4754; each datagram is a
// GRE header and what follows, from the switch at the datagram's source address.
// Works unprivileged.
//
// The receive buffer: SO_RCVBUF asked through Node's setRecvBufferSize. Linux doubles the
// request (room for its bookkeeping) and caps the request at net.core.rmem_max (socket(7):
// "The kernel doubles this value ... The maximum allowed value is set by the
// /proc/sys/net/core/rmem_max file"); only SO_RCVBUFFORCE, which Node cannot set, passes the
// cap. flowpin asks for the configured size, reads back what the kernel granted and reports
// both (see receiveBuffer()); raising rmem_max is the operator's `sysctl` (docs/linux.md).

import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { MirrorSourceError } from '../errors.js';
import { GRE_IN_UDP_PORT } from '../decode-outer.js';

export interface GreUdpOptions {
  host?: string;
  port?: number;
  /** Socket receive buffer in bytes to ask for; bursts of mirrored SYNs need room. */
  receiveBufferBytes?: number;
}

/** Asked for when the configuration says nothing: a 200k frames/s burst for about a second. */
export const DEFAULT_RECEIVE_BUFFER = 32 * 1024 * 1024;

/** What was asked for and what the kernel granted (Linux reports twice the usable size). */
export interface ReceiveBuffer {
  requested: number;
  granted: number;
}

/** Asks for a receive buffer and reads back the kernel's grant. */
export function setReceiveBuffer(socket: Socket, requested: number): ReceiveBuffer {
  try {
    socket.setRecvBufferSize(requested);
  } catch {
    // Refused outright (EINVAL on some kernels for huge sizes): the grant read below says what there is.
  }
  return { requested, granted: socket.getRecvBufferSize() };
}

export class GreUdpSource {
  private socket: Socket | undefined;
  private localAddress = '';
  private buffer: ReceiveBuffer = { requested: 0, granted: 0 };

  constructor(
    private readonly options: GreUdpOptions,
    private readonly onDatagram: (payload: Buffer, outerSrc: string, outerDst: string) => void,
  ) {}

  async start(): Promise<{ address: string; port: number }> {
    const host = this.options.host ?? '0.0.0.0';
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) =>
        reject(
          new MirrorSourceError(
            `cannot listen for GRE-in-UDP on ${host}:${this.options.port ?? GRE_IN_UDP_PORT}: ${err.message}`,
            { cause: err },
          ),
        ),
      );
      socket.bind({ address: host, port: this.options.port ?? GRE_IN_UDP_PORT }, () => resolve());
    });
    this.buffer = setReceiveBuffer(socket, this.options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER);
    const addr = socket.address();
    this.localAddress = addr.address;
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo.address, this.localAddress));
    return { address: addr.address, port: addr.port };
  }

  /**
   * The receive buffer asked for and as the kernel set it (Linux doubles the request, capped by rmem_max).
   */
  receiveBuffer(): ReceiveBuffer {
    return this.buffer;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
