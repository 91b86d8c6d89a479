// GRE, ERSPAN I/II/III and the mirrored Ethernet frame (802.1Q/802.1ad tags, Arista's
// timestamp header). Entry point: decodeGre, given the offset of the GRE header.

import { drop, type DecodeResult } from './drop-reasons.js';
import { Encap, type FrameView } from './frame-view.js';
import { decodeInnerIp } from './decode-ip.js';

const R_TRUNCATED_GRE = drop('truncated-gre');
const R_BAD_GRE = drop('bad-gre-header');
const R_UNKNOWN_GRE_PROTO = drop('unknown-gre-protocol');
const R_TRUNCATED_ERSPAN = drop('truncated-erspan');
const R_BAD_ERSPAN = drop('bad-erspan-header');
const R_TRUNCATED_ETH = drop('truncated-ethernet');
const R_TOO_MANY_TAGS = drop('too-many-vlan-tags');
const R_BAD_ARISTA = drop('bad-arista-header');
const R_UNKNOWN_ETHERTYPE = drop('unknown-ethertype');

export const ETH_IPV4 = 0x0800;
export const ETH_IPV6 = 0x86dd;
export const ETH_8021Q = 0x8100;
export const ETH_8021AD = 0x88a8;
export const ETH_QINQ_OLD = 0x9100;
export const ETH_ARISTA = 0xd28b;
export const GRE_ERSPAN_1_2 = 0x88be;
export const GRE_ERSPAN_3 = 0x22eb;
export const GRE_TEB = 0x6558;

const GRE_C = 0x8000;
const GRE_R = 0x4000;
const GRE_K = 0x2000;
const GRE_S = 0x1000;
const MAX_VLAN_TAGS = 2;

/** Decodes a GRE header at `off` (outer addresses already in `view`) and everything inside it. */
export function decodeGre(view: FrameView, buf: Buffer, off: number, end: number): DecodeResult {
  if (end - off < 4) return R_TRUNCATED_GRE;
  const flags = buf.readUInt16BE(off);
  // Version 0 only (1 is PPTP's enhanced GRE); RFC 1701 source routing is not supported.
  if ((flags & 0x0007) !== 0 || (flags & GRE_R) !== 0) return R_BAD_GRE;
  const proto = buf.readUInt16BE(off + 2);
  let pos = off + 4;
  if ((flags & GRE_C) !== 0) pos += 4;
  if ((flags & GRE_K) !== 0) {
    if (end - pos < 4) return R_TRUNCATED_GRE;
    view.greKey = buf.readUInt32BE(pos);
    pos += 4;
  }
  const hasSeq = (flags & GRE_S) !== 0;
  if (hasSeq) pos += 4;
  if (pos > end) return R_TRUNCATED_GRE;

  switch (proto) {
    case GRE_ERSPAN_1_2:
      if (!hasSeq) {
        view.encap = Encap.erspan1;
        return decodeEthernet(view, buf, pos, end);
      }
      if (end - pos < 8) return R_TRUNCATED_ERSPAN;
      if ((buf[pos] as number) >> 4 !== 1) return R_BAD_ERSPAN;
      view.encap = Encap.erspan2;
      view.sessionId = buf.readUInt16BE(pos + 2) & 0x03ff;
      // Third 16-bit pair: Reserved (12 bits) then Index (20 bits), the port or module the
      // frame was mirrored on (draft-foschiano-erspan-03, section 4.2).
      view.portIndex = buf.readUInt32BE(pos + 4) & 0x000fffff;
      return decodeEthernet(view, buf, pos + 8, end);
    case GRE_ERSPAN_3: {
      if (end - pos < 12) return R_TRUNCATED_ERSPAN;
      if ((buf[pos] as number) >> 4 !== 2) return R_BAD_ERSPAN;
      view.encap = Encap.erspan3;
      view.sessionId = buf.readUInt16BE(pos + 2) & 0x03ff;
      const last = buf.readUInt16BE(pos + 10);
      const frameType = (last >> 10) & 0x1f;
      let inner = pos + 12;
      if ((last & 1) !== 0) {
        if (end - inner < 8) return R_TRUNCATED_ERSPAN;
        view.portIndex = platformPort(buf, inner);
        inner += 8;
      }
      if (frameType === 0) return decodeEthernet(view, buf, inner, end);
      if (frameType === 2) return decodeBareIp(view, buf, inner, end);
      return R_BAD_ERSPAN;
    }
    case GRE_TEB:
      view.encap = Encap.teb;
      return decodeEthernet(view, buf, pos, end);
    case ETH_IPV4:
      view.encap = Encap.ip;
      return decodeInnerIp(view, buf, pos, end, 4);
    case ETH_IPV6:
      view.encap = Encap.ip;
      return decodeInnerIp(view, buf, pos, end, 6);
    default:
      return R_UNKNOWN_GRE_PROTO;
  }
}

/**
 * The port named by an ERSPAN III platform-specific sub-header (draft-foschiano-erspan-03,
 * section 4.3: a 6-bit Platf ID, then platform information). Platf ID 0x1: Reserved, VSM
 * Domain ID, then a 32-bit Port_ID/Index in the second word; 0x3: Reserved, then a 14-bit
 * Port ID/Index in the low bits of the first word (the masks Wireshark's ERSPAN dissector
 * uses), the upper timestamp in the second. Other platform ids carry no port: -1.
 */
function platformPort(buf: Buffer, off: number): number {
  const first = buf.readUInt32BE(off);
  const platf = first >>> 26;
  if (platf === 0x1) return buf.readUInt32BE(off + 4);
  if (platf === 0x3) return first & 0x3fff;
  return -1;
}

/** ERSPAN III frame type 2: an IP packet with no Ethernet header; the version nibble tells which. */
function decodeBareIp(view: FrameView, buf: Buffer, off: number, end: number): DecodeResult {
  if (end - off < 1) return R_TRUNCATED_ERSPAN;
  const version = (buf[off] as number) >> 4;
  if (version === 4) return decodeInnerIp(view, buf, off, end, 4);
  if (version === 6) return decodeInnerIp(view, buf, off, end, 6);
  return R_UNKNOWN_ETHERTYPE;
}

/** Decodes the mirrored Ethernet frame at `off`: tags, Arista timestamp, then IP. */
export function decodeEthernet(view: FrameView, buf: Buffer, off: number, end: number): DecodeResult {
  if (end - off < 14) return R_TRUNCATED_ETH;
  view.macOff = off + 6;
  let pos = off + 12;
  let tags = 0;
  for (;;) {
    if (end - pos < 2) return R_TRUNCATED_ETH;
    const type = buf.readUInt16BE(pos);
    if (type === ETH_8021Q || type === ETH_8021AD || type === ETH_QINQ_OLD) {
      if (tags === MAX_VLAN_TAGS) return R_TOO_MANY_TAGS;
      if (end - pos < 6) return R_TRUNCATED_ETH;
      if (tags === 0) view.vlan = buf.readUInt16BE(pos + 2) & 0x0fff;
      tags++;
      pos += 4;
      continue;
    }
    if (type === ETH_ARISTA) {
      // EtherType, 2-byte subtype (1 = timestamp), 2-byte version, 64- or 48-bit timestamp.
      if (end - pos < 6) return R_TRUNCATED_ETH;
      const subtype = buf.readUInt16BE(pos + 2);
      const version = buf.readUInt16BE(pos + 4) & 0xff;
      if (subtype !== 1) return R_BAD_ARISTA;
      const tsLen = version === 0x10 ? 8 : version === 0x20 ? 6 : -1;
      if (tsLen < 0) return R_BAD_ARISTA;
      pos += 6 + tsLen;
      continue;
    }
    if (type === ETH_IPV4) return decodeInnerIp(view, buf, pos + 2, end, 4);
    if (type === ETH_IPV6) return decodeInnerIp(view, buf, pos + 2, end, 6);
    return R_UNKNOWN_ETHERTYPE;
  }
}
