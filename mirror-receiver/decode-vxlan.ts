// VXLAN (RFC 7348): an 8-byte header (flags with the I bit 0x08 set, 24-bit VNI) and the
// mirrored Ethernet frame. A Linux router without GRE devices mirrors SYNs to flowpin this
// way: `dup to` a VXLAN device from a netdev ingress chain (docs/linux.md).

import { drop, type DecodeResult } from './drop-reasons.js';
import { Encap, type FrameView } from './frame-view.js';
import { decodeEthernet } from './decode-gre.js';

/** IANA's VXLAN UDP port (RFC 7348 section 5). */
export const VXLAN_PORT = 4789;

const R_TRUNCATED_VXLAN = drop('truncated-vxlan');
const R_BAD_VXLAN = drop('bad-vxlan-header');

/** Decodes a VXLAN header at `off` (outer addresses already in `view`) and the frame inside. */
export function decodeVxlan(view: FrameView, buf: Buffer, off: number, end: number): DecodeResult {
  if (end - off < 8) return R_TRUNCATED_VXLAN;
  // RFC 7348: the I flag must be set; the other flag bits are reserved (0) and ignored on receipt.
  if (((buf[off] as number) & 0x08) === 0) return R_BAD_VXLAN;
  view.encap = Encap.vxlan;
  view.vni = ((buf[off + 4] as number) << 16) | ((buf[off + 5] as number) << 8) | (buf[off + 6] as number);
  return decodeEthernet(view, buf, off + 8, end);
}
