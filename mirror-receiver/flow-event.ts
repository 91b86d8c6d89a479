// FlowEvent: what the receiver hands the controller for each decoded TCP segment. It is
// the one allocation per decoded frame: a copy of what the reused FrameView pointed at.

import { ipAt } from '../lib/addr.js';
import { tupleAt } from './tuple.js';
import { ENCAP_NAMES, flagNames, type EncapName, type FrameView, type TcpFlagName } from './frame-view.js';

export interface FlowEvent {
  /** Outer source address: the switch that mirrored the frame. */
  readonly outerSrc: string;
  readonly outerDst: string;
  readonly encap: EncapName;
  /** GRE key, or null. */
  readonly greKey: number | null;
  /** ERSPAN II/III session id, or null. */
  readonly sessionId: number | null;
  readonly vlan: number | null;
  readonly family: 4 | 6;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  /** TCP flags byte (FIN 0x01 ... CWR 0x80). */
  readonly flags: number;
  /** Compact binary form of the addresses and ports (see tuple.ts). */
  readonly tuple: string;
  /** When the frame was received or captured, in milliseconds since the epoch. */
  readonly at: number;
  /** Source MAC of the mirrored Ethernet frame (lower-case, colon-separated); absent without one. */
  readonly srcMac?: string;
  /** Mirrored port as the ERSPAN II/III header names it (see FrameView.portIndex); absent without one. */
  readonly port?: number;
}

const SYN = 0x02;
const ACK = 0x10;
const RST = 0x04;

/**
 * A server's reply to a connection: SYN and ACK set (and no RST). Whether it comes from a VIP,
 * and so names the server that accepted the connection, the controller decides.
 */
export function isSynAck(flags: number): boolean {
  return (flags & (SYN | ACK | RST)) === (SYN | ACK);
}

/** Colon-separated lower-case MAC of the 6 bytes at `off`. */
export function macAt(buf: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) {
    const b = buf[off + i] as number;
    s += (i === 0 ? '' : ':') + (b < 16 ? '0' : '') + b.toString(16);
  }
  return s;
}

export function outerSrcOf(view: FrameView): string {
  return view.outerFamily === 0 ? view.outerSrcText : ipAt(view.buf, view.outerSrcOff, view.outerFamily);
}

export function outerDstOf(view: FrameView): string {
  return view.outerFamily === 0 ? view.outerDstText : ipAt(view.buf, view.outerDstOff, view.outerFamily);
}

/** Copies a successfully decoded view into a FlowEvent. */
export function toFlowEvent(view: FrameView, at: number): FlowEvent {
  return {
    outerSrc: outerSrcOf(view),
    outerDst: outerDstOf(view),
    encap: ENCAP_NAMES[view.encap] as EncapName,
    greKey: view.greKey < 0 ? null : view.greKey,
    sessionId: view.sessionId < 0 ? null : view.sessionId,
    vlan: view.vlan < 0 ? null : view.vlan,
    family: view.family,
    src: ipAt(view.buf, view.srcOff, view.family),
    dst: ipAt(view.buf, view.dstOff, view.family),
    sport: view.sport,
    dport: view.dport,
    flags: view.flags,
    tuple: tupleAt(view.buf, view.family, view.srcOff, view.dstOff, view.sport, view.dport),
    at,
    ...(view.macOff < 0 ? {} : { srcMac: macAt(view.buf, view.macOff) }),
    ...(view.portIndex < 0 ? {} : { port: view.portIndex }),
  };
}

/** The line `flowpin decode` prints for a decoded frame, with exactly the documented keys. */
export function decodeRecord(view: FrameView): {
  outerSrc: string;
  outerDst: string;
  encap: EncapName;
  vlan: number | null;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: TcpFlagName[];
} {
  return {
    outerSrc: outerSrcOf(view),
    outerDst: outerDstOf(view),
    encap: ENCAP_NAMES[view.encap] as EncapName,
    vlan: view.vlan < 0 ? null : view.vlan,
    src: ipAt(view.buf, view.srcOff, view.family),
    dst: ipAt(view.buf, view.dstOff, view.family),
    sport: view.sport,
    dport: view.dport,
    flags: flagNames(view.flags),
  };
}
