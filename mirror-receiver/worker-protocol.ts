// Messages between MirrorReceiver (main thread) and its worker (receiver-worker.ts).

import type { GreUdpOptions, ReceiveBuffer } from './sources/gre-udp.js';

export interface WorkerSetup {
  /** Int32Array(1): batches the main thread has consumed, for the worker's backlog bound. */
  consumed: SharedArrayBuffer;
}

/** A UDP mirror socket the worker opens and reads: GRE-in-UDP, or VXLAN. */
export type UdpListenOptions = GreUdpOptions & { encap: 'gre' | 'vxlan' };

export type WorkerRequest =
  | { type: 'listen-udp'; id: number; options: UdpListenOptions }
  | { type: 'stop'; id: number };

export type WorkerReply =
  | { type: 'reply'; id: number; ok: true; bound?: { address: string; port: number }; receiveBuffer?: ReceiveBuffer }
  | { type: 'reply'; id: number; ok: false; message: string };

export interface SourceErrorMessage {
  type: 'source-error';
  message: string;
}
