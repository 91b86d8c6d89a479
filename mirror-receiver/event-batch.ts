// A batch of decoded TCP segments in one ArrayBuffer, so that the receiver's worker thread can
// hand hundreds of FlowEvents to the main thread in one transferred message: the writer copies
// a decoded FrameView into a fixed 112-byte slot (no string), the reader turns slots back into
// FlowEvents on the main thread. Outer addresses given as text by a socket go through a small
// string table sent with the batch.

import { ipAt } from '../lib/addr.js';
import { ENCAP_NAMES, type EncapName, type FrameView } from './frame-view.js';
import { macAt, type FlowEvent } from './flow-event.js';
import { tupleAt } from './tuple.js';

export const SLOT = 112;
const NONE16 = 0xffff;
const HAS_KEY = 1;
const HAS_MAC = 1;
const HAS_PORT = 2;

/** What a worker posts: `count` slots of `buffer`, the strings they refer to, and counters. */
export interface BatchMessage {
  type: 'batch';
  buffer: ArrayBuffer;
  count: number;
  strings: string[];
  /** The worker's counters after the last frame of this batch (see receiver-worker.ts). */
  counters: Float64Array;
}

export class BatchWriter {
  private buf: Uint8Array;
  private view: DataView;
  count = 0;
  private strings: string[] = [];
  private index = new Map<string, number>();

  constructor(readonly capacity: number) {
    this.buf = new Uint8Array(capacity * SLOT);
    this.view = new DataView(this.buf.buffer);
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  private intern(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.index.set(s, i);
    }
    return i;
  }

  /**
   * Copies a successfully decoded view into the next slot. Layout: family, encap, flags, outer
   * family (0: text), sport, dport, GRE key, session id, VLAN (0xffff: none) in bytes 0-15;
   * source, destination, outer source, outer destination (bytes or string index) 16 bytes
   * each from 16; receive time (float64 ms) at 80; 1 at 88 when there is a GRE key; the
   * mirrored frame's source MAC at 96; at 102 bit 1 when there is a MAC, bit 2 when there is
   * a mirrored port index (uint32 at 104).
   */
  add(v: FrameView, atMs: number): void {
    const b = this.buf;
    const dv = this.view;
    const o = this.count++ * SLOT;
    const src = v.buf;
    b[o] = v.family;
    b[o + 1] = v.encap;
    b[o + 2] = v.flags;
    b[o + 3] = v.outerFamily;
    dv.setUint16(o + 4, v.sport);
    dv.setUint16(o + 6, v.dport);
    dv.setUint32(o + 8, v.greKey < 0 ? 0 : v.greKey);
    dv.setUint16(o + 12, v.sessionId < 0 ? NONE16 : v.sessionId);
    dv.setUint16(o + 14, v.vlan < 0 ? NONE16 : v.vlan);
    b[o + 88] = v.greKey < 0 ? 0 : HAS_KEY;
    const alen = v.family === 4 ? 4 : 16;
    for (let i = 0; i < alen; i++) {
      b[o + 16 + i] = src[v.srcOff + i] as number;
      b[o + 32 + i] = src[v.dstOff + i] as number;
    }
    if (v.outerFamily === 0) {
      dv.setUint32(o + 48, this.intern(v.outerSrcText));
      dv.setUint32(o + 64, this.intern(v.outerDstText));
    } else {
      const olen = v.outerFamily === 4 ? 4 : 16;
      for (let i = 0; i < olen; i++) {
        b[o + 48 + i] = src[v.outerSrcOff + i] as number;
        b[o + 64 + i] = src[v.outerDstOff + i] as number;
      }
    }
    dv.setFloat64(o + 80, atMs);
    let has = 0;
    if (v.macOff >= 0) {
      for (let i = 0; i < 6; i++) b[o + 96 + i] = src[v.macOff + i] as number;
      has |= HAS_MAC;
    }
    if (v.portIndex >= 0) {
      dv.setUint32(o + 104, v.portIndex);
      has |= HAS_PORT;
    }
    b[o + 102] = has;
  }

  /** Hands over the slots written so far and starts a new buffer. */
  take(counters: Float64Array): BatchMessage {
    const msg: BatchMessage = {
      type: 'batch',
      buffer: this.buf.buffer as ArrayBuffer,
      count: this.count,
      strings: this.strings,
      counters,
    };
    this.buf = new Uint8Array(this.capacity * SLOT);
    this.view = new DataView(this.buf.buffer);
    this.count = 0;
    this.strings = [];
    this.index.clear();
    return msg;
  }
}

/**
 * Calls `fn` with a FlowEvent for every slot of a batch; `atOf` maps the worker's wall-clock
 * receive time to the receiver's clock.
 */
export function readBatch(
  msg: BatchMessage,
  atOf: (wallMs: number) => number,
  fn: (ev: FlowEvent) => void,
): void {
  const b = new Uint8Array(msg.buffer);
  const dv = new DataView(msg.buffer);
  for (let k = 0; k < msg.count; k++) {
    const o = k * SLOT;
    const family = b[o] === 6 ? 6 : 4;
    const outerFamily = b[o + 3] as number;
    const sport = dv.getUint16(o + 4);
    const dport = dv.getUint16(o + 6);
    const sessionId = dv.getUint16(o + 12);
    const vlan = dv.getUint16(o + 14);
    const outerSrc =
      outerFamily === 0
        ? (msg.strings[dv.getUint32(o + 48)] ?? '')
        : ipAt(b, o + 48, outerFamily === 6 ? 6 : 4);
    const has = b[o + 102] as number;
    const outerDst =
      outerFamily === 0
        ? (msg.strings[dv.getUint32(o + 64)] ?? '')
        : ipAt(b, o + 64, outerFamily === 6 ? 6 : 4);
    fn({
      outerSrc,
      outerDst,
      encap: ENCAP_NAMES[b[o + 1] as number] as EncapName,
      greKey: b[o + 88] === HAS_KEY ? dv.getUint32(o + 8) : null,
      sessionId: sessionId === NONE16 ? null : sessionId,
      vlan: vlan === NONE16 ? null : vlan,
      family,
      src: ipAt(b, o + 16, family),
      dst: ipAt(b, o + 32, family),
      sport,
      dport,
      flags: b[o + 2] as number,
      tuple: tupleAt(b, family, o + 16, o + 32, sport, dport),
      at: atOf(dv.getFloat64(o + 80)),
      ...((has & HAS_MAC) === 0 ? {} : { srcMac: macAt(b, o + 96) }),
      ...((has & HAS_PORT) === 0 ? {} : { port: dv.getUint32(o + 104) }),
    });
  }
}
