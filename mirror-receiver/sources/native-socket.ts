// A socket read by the native reader (native/recvmmsg.c): many datagrams per system call into
// fixed slots of one ArrayBuffer this object owns. `onDatagram` is called for each datagram of
// a read with the shared Buffer and the datagram's offsets in it (valid only during the call:
// the next read reuses the slots), its sender's address as cached text, and whether the
// datagram was longer than a slot (truncated: only the first `slotBytes` are there).

import { MirrorSourceError } from '../errors.js';
import type { NativeReader } from '../native/addon.js';
import { AddressCache } from './address-cache.js';
import type { ReceiveBuffer } from './gre-udp.js';

export interface NativeSocketOptions {
  kind: 'udp' | 'raw';
  family: 4 | 6;
  /** Address to bind ('' for a raw socket bound to none). */
  host: string;
  port: number;
  /** IP protocol of a raw socket (47: GRE). */
  protocol: number;
  receiveBufferBytes: number;
  /** Datagrams read per system call. */
  slots?: number;
  /** Bytes of each slot; a longer datagram is truncated to it and counted. */
  slotBytes?: number;
  /** Pause after a read that emptied the socket, ms (0: none); see native/recvmmsg.c. */
  holdMs?: number;
}

export type NativeDatagramHandler = (
  buf: Buffer,
  off: number,
  end: number,
  source: string,
  truncated: boolean,
  at: number,
) => void;

/** 128 datagrams a call; a slot holds a 9,216-byte jumbo frame whole. */
export const DEFAULT_SLOTS = 128;
export const DEFAULT_SLOT_BYTES = 9216;
/**
 * A read that empties the socket pauses the poll 1 ms (libuv timers count milliseconds): a
 * mirrored SYN waits at most that much longer, within the worker's own 1 ms batching, and a
 * steady mirror is read many datagrams a wake-up (see BENCHMARKS.md, receive section).
 */
export const DEFAULT_HOLD_MS = 1;

export class NativeSocket {
  private handle: object | undefined;
  private readonly addresses = new AddressCache();
  private buffer: ReceiveBuffer = { requested: 0, granted: 0 };
  private forced = false;
  /** Datagrams read, and of them truncated, since open. */
  datagrams = 0;
  truncated = 0;

  constructor(
    private readonly native: NativeReader,
    private readonly options: NativeSocketOptions,
    private readonly onDatagram: NativeDatagramHandler,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Opens, binds and starts reading; returns the bound address. Throws MirrorSourceError. */
  open(): { address: string; port: number } {
    const o = this.options;
    const slots = o.slots ?? DEFAULT_SLOTS;
    const slotBytes = o.slotBytes ?? DEFAULT_SLOT_BYTES;
    let opened;
    try {
      opened = this.native.open(o.kind, o.family, o.host, o.port, o.protocol, o.receiveBufferBytes);
    } catch (err) {
      throw new MirrorSourceError(err instanceof Error ? err.message : String(err), { cause: err });
    }
    const metaBytes = this.native.META_BYTES;
    const ab = new ArrayBuffer(slots * (metaBytes + slotBytes));
    const meta = new Uint32Array(ab, 0, (slots * metaBytes) / 4);
    const bytes = new Uint8Array(ab);
    const buf = Buffer.from(ab);
    const dataOff = slots * metaBytes;
    const words = metaBytes / 4;
    const onBatch = (count: number): void => {
      if (count < 0) {
        this.onError(new MirrorSourceError(`native socket read failed (errno ${-count})`));
        return;
      }
      const at = Date.now();
      for (let i = 0; i < count; i++) {
        const len = meta[i * words] as number;
        const truncated = ((meta[i * words + 1] as number) & 1) !== 0;
        if (truncated) this.truncated++;
        const off = dataOff + i * slotBytes;
        this.onDatagram(buf, off, off + len, this.addresses.text(meta, bytes, i), truncated, at);
      }
      this.datagrams += count;
    };
    try {
      this.native.start(opened.handle, ab, slots, slotBytes, onBatch, o.holdMs ?? DEFAULT_HOLD_MS);
    } catch (err) {
      this.native.close(opened.handle);
      throw new MirrorSourceError(err instanceof Error ? err.message : String(err), { cause: err });
    }
    this.handle = opened.handle;
    this.buffer = { requested: o.receiveBufferBytes, granted: opened.granted };
    this.forced = opened.forced;
    return { address: opened.address, port: opened.port };
  }

  receiveBuffer(): ReceiveBuffer {
    return this.buffer;
  }

  /** Whether the kernel's rmem_max cap was passed (SO_RCVBUFFORCE). */
  get bufferForced(): boolean {
    return this.forced;
  }

  close(): void {
    const h = this.handle;
    this.handle = undefined;
    if (h !== undefined) this.native.close(h);
  }
}
