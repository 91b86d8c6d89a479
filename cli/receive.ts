// `flowpin receive`: listens for mirrored frames (GRE-in-UDP, and a raw GRE socket with
// --raw) and prints each decoded TCP segment as a JSON line; status on SIGINT/SIGTERM.

import { parseArgs } from 'node:util';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import { flagNames } from '../mirror-receiver/frame-view.js';
import { GRE_IN_UDP_PORT } from '../mirror-receiver/decode-outer.js';

export async function receiveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: String(GRE_IN_UDP_PORT) },
      raw: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`flowpin receive: --port must be 0-65535, got ${values.port}\n`);
    return 2;
  }
  const receiver = new MirrorReceiver(
    (ev) => {
      const { tuple: _tuple, ...rest } = ev;
      process.stdout.write(JSON.stringify({ ...rest, flags: flagNames(ev.flags) }) + '\n');
    },
    Date.now,
    (err) => process.stderr.write(`flowpin receive: ${err.message}\n`),
  );
  const bound = await receiver.listenUdp({ host: values.host, port });
  process.stderr.write(`flowpin receive: GRE-in-UDP on ${bound.address}:${bound.port}\n`);
  if (values.raw) {
    await receiver.listenRaw({ family: 4 });
    process.stderr.write('flowpin receive: raw GRE socket (IP protocol 47) open\n');
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await receiver.stop();
  process.stderr.write(JSON.stringify(receiver.status()) + '\n');
  return 0;
}
