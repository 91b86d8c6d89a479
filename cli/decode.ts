// `flowpin decode FILE|-`: decodes a pcap of mirrored frames and prints one JSON object per
// decoded TCP segment on stdout, then a JSON summary on stderr.

import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { decodeRecord } from '../mirror-receiver/flow-event.js';
import { readPcap } from '../mirror-receiver/sources/pcap.js';

const FLUSH_BYTES = 64 * 1024;

export async function decodeCommand(args: string[]): Promise<number> {
  const input = args[0];
  if (input === undefined || args.length > 1) {
    process.stderr.write('usage: flowpin decode FILE|-   (a classic pcap file, or - for stdin)\n');
    return 2;
  }
  const decoder = new MirrorDecoder();
  let out = '';
  const flush = (): void => {
    if (out.length > 0) process.stdout.write(out);
    out = '';
  };
  try {
    await readPcap(input, (frame, linkType) => {
      if (decoder.decodeLink(linkType, frame) !== OK) return;
      out += JSON.stringify(decodeRecord(decoder.view)) + '\n';
      if (out.length >= FLUSH_BYTES) flush();
    });
  } catch (err) {
    flush();
    process.stderr.write(`flowpin decode: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  flush();
  process.stderr.write(JSON.stringify(decoder.counters.summary()) + '\n');
  return 0;
}
