// Raw GRE source: a raw IP socket for protocol 47, through the raw-socket native addon
// (an optional dependency built at install). Needs root or CAP_NET_RAW. An IPv4 raw socket
// delivers the outer IP header with the GRE packet; an IPv6 one delivers the GRE packet and
// the sender's address only.

import { createRequire } from 'node:module';
import type * as RawSocketModule from 'raw-socket';
import { MirrorSourceError } from '../errors.js';
import { PROTO_GRE } from '../decode-ip.js';

export type RawModule = typeof RawSocketModule;

/** Loads the raw-socket addon, or explains why it cannot be used. */
export function loadRawSocket(): RawModule {
  const require = createRequire(import.meta.url);
  try {
    return require('raw-socket') as RawModule;
  } catch (err) {
    throw new MirrorSourceError(
      'raw GRE sockets need the raw-socket addon, which did not build or install (it needs python3, make and g++ at npm ci)',
      { cause: err },
    );
  }
}

export interface RawGreOptions {
  family?: 4 | 6;
  /** Receive buffer of the addon, bytes: the largest frame read whole. */
  bufferSize?: number;
}

export interface RawGreHandlers {
  /** IPv4: the whole outer IP packet. */
  onIpPacket(packet: Buffer): void;
  /** IPv6: the GRE packet and the sender's address. */
  onGrePayload(payload: Buffer, outerSrc: string): void;
  onError(err: Error): void;
}

export class RawGreSource {
  private socket: RawSocketModule.RawSocket | undefined;

  constructor(
    private readonly options: RawGreOptions,
    private readonly handlers: RawGreHandlers,
  ) {}

  start(): void {
    const raw = loadRawSocket();
    const family = this.options.family ?? 4;
    let socket: RawSocketModule.RawSocket;
    try {
      socket = raw.createSocket({
        addressFamily: family === 4 ? raw.AddressFamily.IPv4 : raw.AddressFamily.IPv6,
        protocol: PROTO_GRE,
        bufferSize: this.options.bufferSize ?? 65535,
      });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new MirrorSourceError(`cannot open a raw GRE socket (needs root or CAP_NET_RAW): ${msg}`, {
        cause: err,
      });
    }
    this.socket = socket;
    socket.on('message', (buffer, source) => {
      if (family === 4) this.handlers.onIpPacket(buffer);
      else this.handlers.onGrePayload(buffer, source);
    });
    socket.on('error', (err) =>
      this.handlers.onError(new MirrorSourceError(`raw GRE socket: ${err.message}`, { cause: err })),
    );
  }

  stop(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}
