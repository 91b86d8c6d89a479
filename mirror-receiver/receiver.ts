// MirrorReceiver: runs the configured sources through one decoder and hands each decoded
// TCP segment to the sink as a FlowEvent. Nothing a frame contains can stop it: every frame
// is decoded or counted under a drop reason, and a sink that throws is counted too.

import { MirrorDecoder } from './decoder.js';
import { OK } from './drop-reasons.js';
import { toFlowEvent, type FlowEvent } from './flow-event.js';
import { GreUdpSource, type GreUdpOptions } from './sources/gre-udp.js';
import { RawGreSource, type RawGreOptions } from './sources/raw-gre.js';
import { readPcap } from './sources/pcap.js';
import type { Readable } from 'node:stream';

export type FlowEventSink = (event: FlowEvent) => void;

export interface ReceiverStatus {
  frames: number;
  decoded: number;
  dropped: Record<string, number>;
  sinkErrors: number;
  listening: string[];
}

export class MirrorReceiver {
  private readonly decoder = new MirrorDecoder();
  private readonly sources: { stop(): void | Promise<void> }[] = [];
  private readonly listening: string[] = [];
  private sinkErrors = 0;

  constructor(
    private readonly sink: FlowEventSink,
    private readonly now: () => number = Date.now,
    private readonly onSourceError: (err: Error) => void = () => undefined,
  ) {}

  /** Listens for GRE-in-UDP; resolves with the bound address. */
  async listenUdp(options: GreUdpOptions): Promise<{ address: string; port: number }> {
    const source = new GreUdpSource(options, (payload, outerSrc, outerDst) => {
      this.emitIf(this.decoder.decodeGrePayload(payload, outerSrc, outerDst), this.now());
    });
    const bound = await source.start();
    this.sources.push(source);
    this.listening.push(`gre-udp:${bound.address}:${bound.port}`);
    return bound;
  }

  /** Opens a raw GRE socket (root or CAP_NET_RAW). */
  listenRaw(options: RawGreOptions): void {
    const source = new RawGreSource(options, {
      onIpPacket: (packet) => this.emitIf(this.decoder.decodeIpPacket(packet), this.now()),
      onGrePayload: (payload, outerSrc) => this.emitIf(this.decoder.decodeGrePayload(payload, outerSrc, '::'), this.now()),
      onError: this.onSourceError,
    });
    source.start();
    this.sources.push(source);
    this.listening.push(`raw-gre:ipv${options.family ?? 4}`);
  }

  /** Reads a pcap file or stream to its end, with capture timestamps as event times. */
  async readPcap(input: string | Readable): Promise<void> {
    await readPcap(input, (buf, off, end, linkType, at) => this.emitIf(this.decoder.decodeLink(linkType, buf, off, end), at));
  }

  status(): ReceiverStatus {
    return { ...this.decoder.counters.summary(), sinkErrors: this.sinkErrors, listening: [...this.listening] };
  }

  async stop(): Promise<void> {
    for (const source of this.sources.splice(0)) await source.stop();
    this.listening.length = 0;
  }

  private emitIf(result: number, at: number): void {
    if (result !== OK) return;
    try {
      this.sink(toFlowEvent(this.decoder.view, at));
    } catch (err) {
      this.sinkErrors++;
      this.onSourceError(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
