// The raw GRE socket (IP protocol 47, root or CAP_NET_RAW) read by the native reader in the
// receiver's worker: replaces the raw-socket addon's main-thread polling where the native reader
// is built (raw-gre.ts stays as the fallback). An IPv4 raw socket delivers the outer IP header
// with the GRE packet; an IPv6 one the GRE packet, with the sender's address (raw(7), ipv6(7)).

import { MirrorSourceError } from '../errors.js';
import { PROTO_GRE } from '../decode-ip.js';
import { loadNativeReader } from '../native/addon.js';
import type { ReceiveBuffer } from './gre-udp.js';
import { NativeSocket } from './native-socket.js';
import type { UdpReaderSource } from './udp-reader.js';

export type RawDatagramHandler = (buf: Buffer, off: number, end: number, source: string, at: number) => void;

export interface RawGreNativeSource extends UdpReaderSource {
  start(): Promise<{ address: string; port: number }>;
}

/**
 * A raw GRE source on the native reader; throws MirrorSourceError when it is not built or the socket cannot
 * open.
 */
export function rawGreNativeSource(
  options: { family: 4 | 6; receiveBufferBytes: number },
  onDatagram: RawDatagramHandler,
  onError: (err: Error) => void,
): RawGreNativeSource {
  const loaded = loadNativeReader();
  if ('error' in loaded) throw new MirrorSourceError(`raw GRE socket: ${loaded.error}`);
  const socket = new NativeSocket(
    loaded.reader,
    {
      kind: 'raw',
      family: options.family,
      host: '',
      port: 0,
      protocol: PROTO_GRE,
      receiveBufferBytes: options.receiveBufferBytes,
    },
    (buf, off, end, src, _truncated, at) => onDatagram(buf, off, end, src, at),
    onError,
  );
  let open = false;
  return {
    reader: 'recvmmsg',
    note: undefined,
    start() {
      try {
        const bound = socket.open();
        open = true;
        return Promise.resolve(bound);
      } catch (err) {
        throw new MirrorSourceError(
          `cannot open a raw GRE socket (needs root or CAP_NET_RAW): ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
    },
    receiveBuffer(): ReceiveBuffer {
      return socket.receiveBuffer();
    },
    truncated: () => socket.truncated,
    stop() {
      if (open) socket.close();
      open = false;
    },
  };
}
