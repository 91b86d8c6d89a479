// Loads flowpin's native datagram reader (native/recvmmsg.c, built by `npm ci` with node-gyp)
// and types what it offers. Where it is missing (not Linux, or the build failed) the loader
// says why, and the UDP mirror sources fall back to Node's dgram (see sources/udp-reader.ts).
// FLOWPIN_RECVMMSG_ADDON names another file to load (an empty value: none), so that the
// fallback can be exercised on a machine where the reader did build.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What open() returns: the socket, where it is bound and the receive buffer the kernel granted. */
export interface NativeOpened {
  handle: object;
  address: string;
  port: number;
  /** SO_RCVBUF read back (Linux reports twice the usable size). */
  granted: number;
  /** Set with SO_RCVBUFFORCE (the process may pass net.core.rmem_max), not SO_RCVBUF. */
  forced: boolean;
}

export interface NativeReader {
  /** Bytes of each datagram's record before the data slots (length, flags, family, port, address). */
  readonly META_BYTES: number;
  open(
    kind: 'udp' | 'raw',
    family: 4 | 6,
    host: string,
    port: number,
    protocol: number,
    receiveBufferBytes: number,
  ): NativeOpened;
  /**
   * Starts reading into `buffer`: `slots` records, then `slots` data slots of `slotBytes`;
   * `onBatch(n)` per read (n < 0: -errno). With `holdMs` > 0 a read that empties the socket
   * pauses the poll that long, so that a steady stream is read many datagrams at a time.
   */
  start(
    handle: object,
    buffer: ArrayBuffer,
    slots: number,
    slotBytes: number,
    onBatch: (count: number) => void,
    holdMs?: number,
  ): void;
  close(handle: object): void;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/**
 * dist/mirror-receiver/native/addon.js and mirror-receiver/native/addon.ts both sit two or three levels below
 * the root.
 */
const candidates = [
  path.resolve(here, '../../../mirror-receiver/native/build/Release/recvmmsg.node'),
  path.resolve(here, 'build/Release/recvmmsg.node'),
];

let cached: { reader: NativeReader } | { error: string } | undefined;

/** The native reader, or why there is none (cached: the answer does not change in a process). */
export function loadNativeReader(): { reader: NativeReader } | { error: string } {
  if (cached !== undefined) return cached;
  if (process.platform !== 'linux')
    return (cached = { error: `recvmmsg is Linux-only (this is ${process.platform})` });
  const require = createRequire(import.meta.url);
  const override = process.env.FLOWPIN_RECVMMSG_ADDON;
  const files = override === undefined ? candidates : override === '' ? [] : [override];
  const why: string[] = [];
  for (const file of files) {
    try {
      const reader = require(file) as NativeReader;
      if (typeof reader.open !== 'function' || typeof reader.start !== 'function')
        throw new Error("not flowpin's reader");
      return (cached = { reader });
    } catch (err) {
      why.push(`${file}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return (cached = {
    error: `the native recvmmsg reader is not built (npm ci builds it with node-gyp, python3, make and a C compiler)${why.length > 0 ? `: ${why.join('; ')}` : ''}`,
  });
}
