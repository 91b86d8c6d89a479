// FrameView: the result of decoding one mirrored frame, as offsets into the frame's buffer.
// One view is reused for every frame, so decoding allocates nothing; callers copy out what
// they keep (see flow-event.ts) before the next frame is decoded into the same view.

export const Encap = {
  none: 0,
  erspan1: 1,
  erspan2: 2,
  erspan3: 3,
  teb: 4,
  ip: 5,
  vxlan: 6,
} as const;
export type EncapCode = (typeof Encap)[keyof typeof Encap];
export const ENCAP_NAMES = ['none', 'erspan1', 'erspan2', 'erspan3', 'teb', 'ip', 'vxlan'] as const;
export type EncapName = Exclude<(typeof ENCAP_NAMES)[number], 'none'>;

export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;
export const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;
export type TcpFlagName = (typeof TCP_FLAG_NAMES)[number];

const EMPTY = Buffer.alloc(0);

export class FrameView {
  /** The buffer every offset below points into. */
  buf: Buffer = EMPTY;
  /** 4 or 6 when the outer addresses are in `buf`; 0 when the source gave them as text. */
  outerFamily: 0 | 4 | 6 = 0;
  outerSrcOff = 0;
  outerDstOff = 0;
  outerSrcText = '';
  outerDstText = '';
  encap: EncapCode = Encap.none;
  /** GRE key, or -1 when the K flag is clear. */
  greKey = -1;
  /** ERSPAN II/III session id, or -1. */
  sessionId = -1;
  /** VXLAN network identifier, or -1. */
  vni = -1;
  /** Outermost 802.1Q/802.1ad VLAN id of the mirrored frame, or -1. */
  vlan = -1;
  /** Offset of the mirrored Ethernet frame's source MAC in `buf`, or -1 (no Ethernet header). */
  macOff = -1;
  /**
   * The mirrored port as the ERSPAN header names it, or -1: the ERSPAN II Index field, or the
   * Port ID/Index of an ERSPAN III platform sub-header (platform ids 0x1 and 0x3).
   */
  portIndex = -1;
  /** Inner (mirrored) packet. */
  family: 4 | 6 = 4;
  srcOff = 0;
  dstOff = 0;
  sport = 0;
  dport = 0;
  flags = 0;

  reset(buf: Buffer): void {
    this.buf = buf;
    this.outerFamily = 0;
    this.encap = Encap.none;
    this.greKey = -1;
    this.sessionId = -1;
    this.vni = -1;
    this.vlan = -1;
    this.macOff = -1;
    this.portIndex = -1;
    this.flags = 0;
  }
}

/** Upper-case names of the TCP flags set in `flags`. */
export function flagNames(flags: number): TcpFlagName[] {
  const out: TcpFlagName[] = [];
  for (let i = 0; i < TCP_FLAG_NAMES.length; i++) {
    const name = TCP_FLAG_NAMES[i];
    if (name !== undefined && (flags & (1 << i)) !== 0) out.push(name);
  }
  return out;
}
