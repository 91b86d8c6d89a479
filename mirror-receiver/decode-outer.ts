// Outer layers of a mirrored frame: the capture's link layer, the outer IPv4/IPv6 header
// (the GRE endpoints), and GRE either directly (IP protocol 47) or in UDP (RFC 8086, port 4754).

import { drop, OK, type DecodeResult } from './drop-reasons.js';
import type { FrameView } from './frame-view.js';
import { ipResult, parseIpv4, parseIpv6, PROTO_GRE, PROTO_UDP } from './decode-ip.js';
import { decodeVxlan, VXLAN_PORT } from './decode-vxlan.js';
import { decodeGre, ETH_8021AD, ETH_8021Q, ETH_IPV4, ETH_IPV6, ETH_QINQ_OLD } from './decode-gre.js';

const R_TRUNCATED_LINK = drop('truncated-link');
const R_UNKNOWN_LINK = drop('unknown-link-type');
const R_NOT_IP = drop('not-ip');
const R_TRUNCATED_OUTER = drop('truncated-outer-ip');
const R_BAD_OUTER = drop('bad-outer-ip');
const R_OUTER_FRAGMENT = drop('outer-fragment');
const R_NOT_GRE = drop('not-gre');
const R_TRUNCATED_UDP = drop('truncated-udp');

/** UDP destination port of GRE-in-UDP (RFC 8086). */
export const GRE_IN_UDP_PORT = 4754;

/** pcap link-layer types the decoder reads (LINKTYPE_* values). */
export const LinkType = {
  ethernet: 1,
  raw: 101,
  ipv4: 228,
  ipv6: 229,
  linuxSll: 113,
  linuxSll2: 276,
} as const;

export function isSupportedLinkType(linkType: number): boolean {
  return Object.values(LinkType).includes(linkType as (typeof LinkType)[keyof typeof LinkType]);
}

/** Decodes a captured frame of the given pcap link type. */
export function decodeLink(
  view: FrameView,
  linkType: number,
  buf: Buffer,
  off: number,
  end: number,
): DecodeResult {
  switch (linkType) {
    case LinkType.ethernet:
      return decodeOuterEthernet(view, buf, off, end);
    case LinkType.raw:
    case LinkType.ipv4:
    case LinkType.ipv6: {
      if (end - off < 1) return R_TRUNCATED_OUTER;
      const version = (buf[off] as number) >> 4;
      if (version === 4) return decodeOuterIp(view, buf, off, end, 4);
      if (version === 6) return decodeOuterIp(view, buf, off, end, 6);
      return R_BAD_OUTER;
    }
    case LinkType.linuxSll:
      if (end - off < 16) return R_TRUNCATED_LINK;
      return outerByEthertype(view, buf.readUInt16BE(off + 14), buf, off + 16, end);
    case LinkType.linuxSll2:
      if (end - off < 20) return R_TRUNCATED_LINK;
      return outerByEthertype(view, buf.readUInt16BE(off), buf, off + 20, end);
    default:
      return R_UNKNOWN_LINK;
  }
}

function decodeOuterEthernet(view: FrameView, buf: Buffer, off: number, end: number): DecodeResult {
  if (end - off < 14) return R_TRUNCATED_LINK;
  let pos = off + 12;
  let type = buf.readUInt16BE(pos);
  for (let tags = 0; type === ETH_8021Q || type === ETH_8021AD || type === ETH_QINQ_OLD; tags++) {
    if (tags === 2 || end - pos < 6) return R_TRUNCATED_LINK;
    pos += 4;
    type = buf.readUInt16BE(pos);
  }
  return outerByEthertype(view, type, buf, pos + 2, end);
}

function outerByEthertype(
  view: FrameView,
  type: number,
  buf: Buffer,
  off: number,
  end: number,
): DecodeResult {
  if (type === ETH_IPV4) return decodeOuterIp(view, buf, off, end, 4);
  if (type === ETH_IPV6) return decodeOuterIp(view, buf, off, end, 6);
  return R_NOT_IP;
}

/** Decodes an outer IP packet at `off` that carries GRE or GRE-in-UDP. */
export function decodeOuterIp(
  view: FrameView,
  buf: Buffer,
  off: number,
  end: number,
  family: 4 | 6,
): DecodeResult {
  const r =
    family === 4
      ? parseIpv4(buf, off, end, R_TRUNCATED_OUTER, R_BAD_OUTER)
      : parseIpv6(buf, off, end, R_TRUNCATED_OUTER, R_BAD_OUTER);
  if (r !== OK) return r;
  if (ipResult.laterFragment || ipResult.firstFragment) return R_OUTER_FRAGMENT;
  view.outerFamily = family;
  view.outerSrcOff = family === 4 ? off + 12 : off + 8;
  view.outerDstOff = family === 4 ? off + 16 : off + 24;
  const payload = ipResult.payloadOff;
  const pktEnd = ipResult.end;
  if (ipResult.protocol === PROTO_GRE) return decodeGre(view, buf, payload, pktEnd);
  if (ipResult.protocol === PROTO_UDP) {
    if (pktEnd - payload < 8) return R_TRUNCATED_UDP;
    if (buf.readUInt16BE(payload + 2) === VXLAN_PORT) return decodeVxlan(view, buf, payload + 8, pktEnd);
    if (buf.readUInt16BE(payload + 2) !== GRE_IN_UDP_PORT) return R_NOT_GRE;
    return decodeGre(view, buf, payload + 8, pktEnd);
  }
  return R_NOT_GRE;
}
