// pcap source: a classic pcap or pcapng capture from a file, stdin (`-`) or a stream, read
// with flowpin's own CaptureReader; every packet record is handed over in place (buffer and
// offsets) with its link type and capture time. Files are read in large chunks with no copy
// of whole records; the event loop gets a turn between chunks.

import { openSync, readSync, closeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { MirrorSourceError } from '../errors.js';
import { CaptureReader, type CaptureFrameHandler, type CaptureStats } from './capture-reader.js';

export type { CaptureFrameHandler, CaptureStats } from './capture-reader.js';

/** Bytes read from a file at a time. */
const FILE_CHUNK = 4 * 1024 * 1024;

export interface PcapResult extends CaptureStats {
  /** Link type of the classic pcap or of the first pcapng interface. */
  linkType: number;
  frames: number;
}

/**
 * Reads every packet of a capture (path, `-` for stdin, or a stream); resolves at its end.
 * Rejects when the input cannot be opened or read, is not a capture, or ends before its
 * header; a capture cut inside a record resolves with `truncated: 1`.
 */
export async function readPcap(input: string | Readable, onFrame: CaptureFrameHandler): Promise<PcapResult> {
  const reader = new CaptureReader(onFrame);
  const name = typeof input === 'string' ? (input === '-' ? 'stdin' : input) : 'stream';
  try {
    if (typeof input === 'string' && input !== '-') await readFile(input, reader);
    else await readStream(typeof input === 'string' ? process.stdin : input, reader);
  } catch (err) {
    throw new MirrorSourceError(
      `cannot read pcap from ${name}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const stats = reader.end();
  if (stats.error !== undefined) throw new MirrorSourceError(`cannot read pcap from ${name}: ${stats.error}`);
  if (!reader.headerSeen)
    throw new MirrorSourceError(`cannot read pcap from ${name}: input ended before a complete pcap header`);
  return { ...stats, linkType: reader.firstLinkType, frames: stats.records };
}

async function readFile(path: string, reader: CaptureReader): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(FILE_CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, FILE_CHUNK, null);
      if (n === 0) return;
      // Records are handed out in place; the reader copies only a record cut by the chunk end.
      reader.push(n === FILE_CHUNK ? buf : buf.subarray(0, n));
      if (reader.stats.error !== undefined) return;
      await yieldLoop();
    }
  } finally {
    closeSync(fd);
  }
}

async function readStream(stream: Readable, reader: CaptureReader): Promise<void> {
  for await (const chunk of stream) {
    reader.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
    if (reader.stats.error !== undefined) {
      stream.destroy();
      return;
    }
  }
}
