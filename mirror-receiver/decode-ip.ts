// IP and TCP layers of the mirror decoder: IPv4 with options, IPv6 with extension headers,
// then the TCP ports and flags. Works on offsets into one buffer and allocates nothing.

import { drop, OK, type DecodeResult } from './drop-reasons.js';
import type { FrameView } from './frame-view.js';

const R_TRUNCATED_IP = drop('truncated-ip');
const R_BAD_IP = drop('bad-ip-header');
const R_BAD_EXT = drop('bad-ipv6-extension');
const R_FRAGMENT = drop('ip-fragment');
const R_NOT_TCP = drop('not-tcp');
const R_TRUNCATED_TCP = drop('truncated-tcp');
const R_BAD_TCP = drop('bad-tcp-header');

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_GRE = 47;

/**
 * Where the payload of an IP header starts, filled by parseIpv4/parseIpv6 on success.
 * Module-level scratch, so that the hot path returns a number and allocates nothing.
 */
export const ipResult = {
  /** Offset of the upper-layer header. */
  payloadOff: 0,
  /** End of the packet within the buffer (total length, clipped to what was captured). */
  end: 0,
  /** Upper-layer protocol. */
  protocol: 0,
  /** True when this is a fragment other than the first. */
  laterFragment: false,
  /** True when this is the first fragment of several. */
  firstFragment: false,
};

/** Parses an IPv4 header at `off`; on OK, ipResult describes the payload. */
export function parseIpv4(
  buf: Buffer,
  off: number,
  end: number,
  truncated: DecodeResult,
  bad: DecodeResult,
): DecodeResult {
  if (end - off < 20) return truncated;
  const vihl = buf[off] as number;
  if (vihl >> 4 !== 4) return bad;
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20) return bad;
  if (end - off < ihl) return truncated;
  const total = buf.readUInt16BE(off + 2);
  if (total < ihl) return bad;
  const fragWord = buf.readUInt16BE(off + 6);
  ipResult.payloadOff = off + ihl;
  // Ethernet padding after a short packet is cut off; a capture shorter than the packet is kept.
  ipResult.end = Math.min(end, off + total);
  ipResult.protocol = buf[off + 9] as number;
  ipResult.laterFragment = (fragWord & 0x1fff) !== 0;
  ipResult.firstFragment = !ipResult.laterFragment && (fragWord & 0x2000) !== 0;
  return OK;
}

const EXT_HOP_BY_HOP = 0;
const EXT_ROUTING = 43;
const EXT_FRAGMENT = 44;
const EXT_AH = 51;
const EXT_DEST_OPTS = 60;
const MAX_EXTENSIONS = 8;

/** Parses an IPv6 header and its extension headers at `off`; on OK, ipResult describes the payload. */
export function parseIpv6(
  buf: Buffer,
  off: number,
  end: number,
  truncated: DecodeResult,
  bad: DecodeResult,
): DecodeResult {
  if (end - off < 40) return truncated;
  if ((buf[off] as number) >> 4 !== 6) return bad;
  const payloadLen = buf.readUInt16BE(off + 4);
  const pktEnd = Math.min(end, off + 40 + payloadLen);
  let next = buf[off + 6] as number;
  let pos = off + 40;
  ipResult.laterFragment = false;
  ipResult.firstFragment = false;
  for (let n = 0; ; n++) {
    if (
      next !== EXT_HOP_BY_HOP &&
      next !== EXT_ROUTING &&
      next !== EXT_FRAGMENT &&
      next !== EXT_AH &&
      next !== EXT_DEST_OPTS
    )
      break;
    if (n === MAX_EXTENSIONS) return R_BAD_EXT;
    if (pktEnd - pos < 8) return R_BAD_EXT;
    const hdrNext = buf[pos] as number;
    let len: number;
    if (next === EXT_FRAGMENT) {
      len = 8;
      const fragWord = buf.readUInt16BE(pos + 2);
      if ((fragWord & 0xfff8) !== 0) ipResult.laterFragment = true;
      else if ((fragWord & 1) !== 0) ipResult.firstFragment = true;
    } else if (next === EXT_AH) {
      len = ((buf[pos + 1] as number) + 2) * 4;
    } else {
      len = ((buf[pos + 1] as number) + 1) * 8;
    }
    if (pktEnd - pos < len) return R_BAD_EXT;
    pos += len;
    next = hdrNext;
  }
  ipResult.payloadOff = pos;
  ipResult.end = pktEnd;
  ipResult.protocol = next;
  return OK;
}

/** Decodes the mirrored IP packet at `off` and its TCP header into `view`. */
export function decodeInnerIp(
  view: FrameView,
  buf: Buffer,
  off: number,
  end: number,
  family: 4 | 6,
): DecodeResult {
  let r: DecodeResult;
  if (family === 4) {
    r = parseIpv4(buf, off, end, R_TRUNCATED_IP, R_BAD_IP);
    view.srcOff = off + 12;
    view.dstOff = off + 16;
  } else {
    r = parseIpv6(buf, off, end, R_TRUNCATED_IP, R_BAD_IP);
    view.srcOff = off + 8;
    view.dstOff = off + 24;
  }
  if (r !== OK) return r;
  view.family = family;
  if (ipResult.laterFragment) return R_FRAGMENT;
  if (ipResult.protocol !== PROTO_TCP) return R_NOT_TCP;
  const tcp = ipResult.payloadOff;
  if (ipResult.end - tcp < 20) return R_TRUNCATED_TCP;
  if ((buf[tcp + 12] as number) >> 4 < 5) return R_BAD_TCP;
  view.sport = buf.readUInt16BE(tcp);
  view.dport = buf.readUInt16BE(tcp + 2);
  view.flags = buf[tcp + 13] as number;
  return OK;
}
