// A UDP mirror socket (GRE-in-UDP or VXLAN) read by the reader the configuration picks:
// `recvmmsg` (the native reader, native/recvmmsg.c: many datagrams per system call, no object
// per datagram), `dgram` (Node's dgram: one recvmsg, one Buffer and one address object per
// datagram), or `auto` (recvmmsg where it is built, else dgram, with the reason kept for the
// log and the receiver's status). Either way each datagram reaches `onDatagram` as a buffer and
// offsets, with the sender's and the socket's address as text.

import { isIPv6 } from 'node:net';
import { MirrorSourceError } from '../errors.js';
import { GRE_IN_UDP_PORT } from '../decode-outer.js';
import { VXLAN_PORT } from '../decode-vxlan.js';
import { loadNativeReader } from '../native/addon.js';
import { DEFAULT_RECEIVE_BUFFER, GreUdpSource, type GreUdpOptions, type ReceiveBuffer } from './gre-udp.js';
import { NativeSocket } from './native-socket.js';
import { VxlanSource } from './vxlan-udp.js';

export type ReaderChoice = 'auto' | 'recvmmsg' | 'dgram';
export type ReaderName = 'recvmmsg' | 'dgram';

export interface UdpReaderOptions extends GreUdpOptions {
  encap: 'gre' | 'vxlan';
  reader?: ReaderChoice;
  /**
   * Native reader only: datagrams per system call, bytes per slot (tests make slots short) and the pause
   * after an emptying read.
   */
  slots?: number;
  slotBytes?: number;
  holdMs?: number;
}

export type DatagramHandler = (
  buf: Buffer,
  off: number,
  end: number,
  outerSrc: string,
  outerDst: string,
  at: number,
) => void;

export interface UdpReaderSource {
  readonly reader: ReaderName;
  /** Why `auto` read with dgram (the native reader's load error); absent otherwise. */
  readonly note: string | undefined;
  start(): Promise<{ address: string; port: number }>;
  receiveBuffer(): ReceiveBuffer;
  /** Datagrams longer than a slot (native reader only; decoded from the bytes that fit). */
  truncated(): number;
  stop(): Promise<void> | void;
}

class NativeUdpSource implements UdpReaderSource {
  readonly reader = 'recvmmsg';
  readonly note = undefined;
  private socket: NativeSocket | undefined;
  private truncatedBefore = 0;

  constructor(
    private readonly make: (
      onDatagram: (
        buf: Buffer,
        off: number,
        end: number,
        src: string,
        truncated: boolean,
        at: number,
      ) => void,
    ) => NativeSocket,
    private readonly what: string,
    private readonly onDatagram: DatagramHandler,
  ) {}

  start(): Promise<{ address: string; port: number }> {
    let local = '';
    const socket = this.make((buf, off, end, src, _truncated, at) =>
      this.onDatagram(buf, off, end, src, local, at),
    );
    try {
      const bound = socket.open();
      local = bound.address;
      this.socket = socket;
      return Promise.resolve(bound);
    } catch (err) {
      return Promise.reject(
        new MirrorSourceError(
          `cannot listen for ${this.what}: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        ),
      );
    }
  }

  receiveBuffer(): ReceiveBuffer {
    return this.socket?.receiveBuffer() ?? { requested: 0, granted: 0 };
  }

  truncated(): number {
    return this.truncatedBefore + (this.socket?.truncated ?? 0);
  }

  stop(): void {
    const s = this.socket;
    this.socket = undefined;
    if (s !== undefined) {
      this.truncatedBefore += s.truncated;
      s.close();
    }
  }
}

class DgramUdpSource implements UdpReaderSource {
  readonly reader = 'dgram';
  private readonly source: GreUdpSource | VxlanSource;

  constructor(
    options: UdpReaderOptions,
    onDatagram: DatagramHandler,
    readonly note: string | undefined,
  ) {
    const deliver = (payload: Buffer, outerSrc: string, outerDst: string): void =>
      onDatagram(payload, 0, payload.length, outerSrc, outerDst, Date.now());
    const { host, port, receiveBufferBytes } = options;
    const o = {
      ...(host === undefined ? {} : { host }),
      ...(port === undefined ? {} : { port }),
      ...(receiveBufferBytes === undefined ? {} : { receiveBufferBytes }),
    };
    this.source = options.encap === 'vxlan' ? new VxlanSource(o, deliver) : new GreUdpSource(o, deliver);
  }

  start(): Promise<{ address: string; port: number }> {
    return this.source.start();
  }

  receiveBuffer(): ReceiveBuffer {
    return this.source.receiveBuffer();
  }

  truncated(): number {
    return 0;
  }

  stop(): Promise<void> {
    return this.source.stop();
  }
}

/** The source for `options`; throws MirrorSourceError when `recvmmsg` is asked for and not built. */
export function udpReaderSource(
  options: UdpReaderOptions,
  onDatagram: DatagramHandler,
  onError: (err: Error) => void,
): UdpReaderSource {
  const choice = options.reader ?? 'auto';
  if (choice === 'dgram') return new DgramUdpSource(options, onDatagram, undefined);
  const loaded = loadNativeReader();
  if ('error' in loaded) {
    if (choice === 'recvmmsg')
      throw new MirrorSourceError(`reader: recvmmsg was asked for, but ${loaded.error}`);
    return new DgramUdpSource(options, onDatagram, loaded.error);
  }
  const host = options.host ?? '0.0.0.0';
  const port = options.port ?? (options.encap === 'vxlan' ? VXLAN_PORT : GRE_IN_UDP_PORT);
  const what = `${options.encap === 'vxlan' ? 'VXLAN' : 'GRE-in-UDP'} on ${host}:${port}`;
  return new NativeUdpSource(
    (handler) =>
      new NativeSocket(
        loaded.reader,
        {
          kind: 'udp',
          family: isIPv6(host) ? 6 : 4,
          host,
          port,
          protocol: 0,
          receiveBufferBytes: options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER,
          ...(options.slots === undefined ? {} : { slots: options.slots }),
          ...(options.slotBytes === undefined ? {} : { slotBytes: options.slotBytes }),
          ...(options.holdMs === undefined ? {} : { holdMs: options.holdMs }),
        },
        handler,
        onError,
      ),
    what,
    onDatagram,
  );
}
