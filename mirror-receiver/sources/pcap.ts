// pcap source: a classic pcap file or stream (`-` for stdin), read with pcap-parser, each
// frame handed over with the file's link type and its capture time.

import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import pcapParser from 'pcap-parser';
import { MirrorSourceError } from '../errors.js';

export interface PcapFrameHandler {
  (frame: Buffer, linkType: number, capturedAtMs: number): void;
}

/** Reads every frame of a pcap file (path, or `-` for stdin) or stream; resolves at its end. */
export function readPcap(input: string | Readable, onFrame: PcapFrameHandler): Promise<{ linkType: number; frames: number }> {
  const stream: Readable = typeof input !== 'string' ? input : input === '-' ? process.stdin : createReadStream(input);
  const name = typeof input === 'string' ? (input === '-' ? 'stdin' : input) : 'stream';
  return new Promise((resolve, reject) => {
    let linkType = -1;
    let frames = 0;
    let failed = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      const hint = /unknown magic number: 0a0d0d0a/.test(err.message) ? ' (a pcapng file: write classic pcap, e.g. tcpdump -w or tshark -F pcap)' : '';
      reject(new MirrorSourceError(`cannot read pcap from ${name}: ${err.message}${hint}`, { cause: err }));
    };
    stream.on('error', fail);
    const parser = pcapParser.parse(stream);
    parser.on('globalHeader', (header: { linkLayerType: number }) => {
      linkType = header.linkLayerType;
    });
    parser.on('packet', (packet: { header: { timestampSeconds: number; timestampMicroseconds: number }; data: Buffer }) => {
      frames++;
      onFrame(packet.data, linkType, packet.header.timestampSeconds * 1000 + packet.header.timestampMicroseconds / 1000);
    });
    parser.on('error', fail);
    parser.on('end', () => {
      if (failed) return;
      if (linkType < 0) fail(new Error('input ended before a complete pcap header'));
      else resolve({ linkType, frames });
    });
  });
}
