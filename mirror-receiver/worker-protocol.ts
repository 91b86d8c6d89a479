// Messages between MirrorReceiver (main thread) and its worker (receiver-worker.ts).

import { DROP_REASONS } from './drop-reasons.js';
import type { ReceiveBuffer } from './sources/gre-udp.js';
import type { ReaderName, UdpReaderOptions } from './sources/udp-reader.js';

export interface WorkerSetup {
  /** Int32Array(1): batches the main thread has consumed, for the worker's backlog bound. */
  consumed: SharedArrayBuffer;
}

/** A UDP mirror socket the worker opens and reads: GRE-in-UDP, or VXLAN, by the reader asked for. */
export type UdpListenOptions = UdpReaderOptions;

/**
 * The worker's counter snapshot: frames, decoded, backlog drops, then one count per drop
 * reason at 3 + its result code (index 3 unused), then datagrams truncated by the reader.
 */
export const COUNTER_TRUNCATED = 3 + DROP_REASONS.length + 1;
export const COUNTERS = COUNTER_TRUNCATED + 1;

/** A raw GRE socket (IP protocol 47) the worker opens with the native reader. */
export interface RawListenOptions {
  family: 4 | 6;
  receiveBufferBytes: number;
}

export type WorkerRequest =
  | { type: 'listen-udp'; id: number; options: UdpListenOptions }
  | { type: 'listen-raw'; id: number; options: RawListenOptions }
  | { type: 'stop'; id: number };

export type WorkerReply =
  | {
      type: 'reply';
      id: number;
      ok: true;
      bound?: { address: string; port: number };
      receiveBuffer?: ReceiveBuffer;
      reader?: ReaderName;
      readerNote?: string;
    }
  | { type: 'reply'; id: number; ok: false; message: string };

export interface SourceErrorMessage {
  type: 'source-error';
  message: string;
}
