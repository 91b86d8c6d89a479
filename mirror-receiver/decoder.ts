// MirrorDecoder: the receiver's one entry point for decoding. Each call decodes one frame
// into the shared FrameView, counts the outcome, and never throws on frame content.

import { DecodeCounters, type DecodeResult } from './drop-reasons.js';
import { FrameView } from './frame-view.js';
import { decodeLink, decodeOuterIp } from './decode-outer.js';
import { decodeGre } from './decode-gre.js';
import { decodeVxlan } from './decode-vxlan.js';

export class MirrorDecoder {
  readonly view = new FrameView();
  readonly counters = new DecodeCounters();

  /** A captured frame of pcap link type `linkType` (pcap files and streams, AF_PACKET). */
  decodeLink(linkType: number, buf: Buffer, off = 0, end = buf.length): DecodeResult {
    this.view.reset(buf);
    const r = decodeLink(this.view, linkType, buf, off, end);
    this.counters.count(r);
    return r;
  }

  /** An outer IP packet starting at `off` (raw IPv4 sockets deliver the IP header). */
  decodeIpPacket(buf: Buffer, off = 0, end = buf.length): DecodeResult {
    this.view.reset(buf);
    const version = end > off ? (buf[off] as number) >> 4 : 0;
    const r = decodeOuterIp(this.view, buf, off, end, version === 6 ? 6 : 4);
    this.counters.count(r);
    return r;
  }

  /**
   * A GRE header and what follows, with the outer addresses given by the socket that
   * received it (GRE-in-UDP sockets, raw IPv6 sockets).
   */
  decodeGrePayload(buf: Buffer, outerSrc: string, outerDst: string, off = 0, end = buf.length): DecodeResult {
    const view = this.view;
    view.reset(buf);
    view.outerSrcText = outerSrc;
    view.outerDstText = outerDst;
    const r = decodeGre(view, buf, off, end);
    this.counters.count(r);
    return r;
  }

  /** A VXLAN header and the frame inside, with the outer addresses given by the UDP socket. */
  decodeVxlanPayload(
    buf: Buffer,
    outerSrc: string,
    outerDst: string,
    off = 0,
    end = buf.length,
  ): DecodeResult {
    const view = this.view;
    view.reset(buf);
    view.outerSrcText = outerSrc;
    view.outerDstText = outerDst;
    const r = decodeVxlan(view, buf, off, end);
    this.counters.count(r);
    return r;
  }
}
