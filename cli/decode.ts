// `flowpin decode FILE|-`: decodes a capture (classic pcap or pcapng) of mirrored frames and
// prints one JSON object per decoded TCP segment on stdout, then a JSON summary on stderr.
// Records are decoded in place in the read buffer and their lines written as bytes into one
// output buffer, flushed to fd 1 a megabyte at a time.

import { writeSync } from 'node:fs';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { RecordWriter } from '../mirror-receiver/record-writer.js';
import { readPcap, type PcapResult } from '../mirror-receiver/sources/pcap.js';

/** Writes all of `bytes` to `fd`, waiting out a non-blocking descriptor's EAGAIN. */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (off < bytes.length) {
    try {
      off += writeSync(fd, bytes, off, bytes.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

export async function decodeCommand(args: string[]): Promise<number> {
  const input = args[0];
  if (input === undefined || args.length > 1) {
    process.stderr.write('usage: flowpin decode FILE|-   (a pcap or pcapng file, or - for stdin)\n');
    return 2;
  }
  const decoder = new MirrorDecoder();
  const writer = new RecordWriter(1 << 20);
  const flush = (): void => {
    if (writer.length > 0) writeAll(1, writer.bytes());
    writer.reset();
  };
  let result: PcapResult;
  try {
    result = await readPcap(input, (buf, off, end, linkType) => {
      if (decoder.decodeLink(linkType, buf, off, end) !== OK) return;
      writer.write(decoder.view);
      if (writer.full) flush();
    });
  } catch (err) {
    flush();
    process.stderr.write(`flowpin decode: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  flush();
  const { format, records, truncated, malformed, skippedBlocks } = result;
  process.stderr.write(
    JSON.stringify({
      ...decoder.counters.summary(),
      capture: { format, records, truncated, malformed, skippedBlocks },
    }) + '\n',
  );
  return 0;
}
