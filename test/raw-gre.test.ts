// The raw GRE socket source for real: `flowpin receive --raw` in a test network namespace
// receives GRE frames that scapy sends over that namespace's loopback (IP protocol 47).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { TestNetns } from './helpers/netns.js';
import { loadNativeReader } from '../mirror-receiver/native/addon.js';
import { flowpinBin, have, haveScapy, isRoot, skipUnless, systemPython } from './helpers/tools.js';

const skip = skipUnless(isRoot() && have('ip', ['-V']) && haveScapy(), 'root, iproute2 or python3-scapy');

/** Collects stdout lines of a child until `count` arrived or the time is up. */
async function lines(child: ChildProcess, count: number, ms: number): Promise<string[]> {
  const out: string[] = [];
  let buf = '';
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(out), ms);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        out.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (out.length >= count) {
          clearTimeout(timer);
          resolve(out);
        }
      }
    });
  });
}

async function waitForStderr(child: ChildProcess, pattern: RegExp, ms: number): Promise<string> {
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; stderr: ${err}`)), ms);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (pattern.test(err)) {
        clearTimeout(timer);
        resolve(err);
      }
    });
  });
}

const SEND = `
from scapy.all import conf, send, IP, IPv6, GRE, Ether, TCP
from scapy.supersocket import L3RawSocket
conf.L3socket = L3RawSocket
frames = []
for i in range(5):
    frames.append(IP(src="127.0.0.1", dst="127.0.0.1")/GRE(proto=0x88BE)/Ether(src="00:1c:73:aa:bb:01", dst="02:00:00:00:00:fe")/IP(src="10.0.0.%d" % (i + 1), dst="192.0.2.10")/TCP(sport=30000 + i, dport=80, flags="S"))
frames.append(IP(src="127.0.0.1", dst="127.0.0.1")/GRE(proto=0x86DD, key_present=1, key=7)/IPv6(src="2001:db8::1", dst="2001:db8::80")/TCP(sport=4242, dport=443, flags="SA"))
frames.append(IP(src="127.0.0.1", dst="127.0.0.1")/GRE(proto=0x1234)/b"junk")
send(frames, verbose=0)
`;

test('raw GRE socket receives and decodes GRE sent over loopback in a namespace', { skip }, async () => {
  const ns = new TestNetns();
  let child: ChildProcess | undefined;
  try {
    child = ns.spawn(process.execPath, [flowpinBin, 'receive', '--raw', '--port', '0']);
    await waitForStderr(child, /raw GRE socket .* open/, 10_000);
    const got = lines(child, 6, 10_000);
    ns.exec(systemPython, ['-c', SEND]);
    const events = (await got).map(
      (l) =>
        JSON.parse(l) as {
          outerSrc: string;
          encap: string;
          src: string;
          sport: number;
          greKey: number | null;
          flags: string[];
        },
    );
    assert.equal(events.length, 6);
    assert.deepEqual(
      events.slice(0, 5).map((e) => [e.src, e.sport, e.encap, e.outerSrc]),
      [0, 1, 2, 3, 4].map((i) => [`10.0.0.${i + 1}`, 30000 + i, 'erspan1', '127.0.0.1']),
    );
    assert.equal(events[5]?.src, '2001:db8::1');
    assert.equal(events[5]?.greKey, 7);
    assert.deepEqual(events[5]?.flags, ['SYN', 'ACK']);
    child.kill('SIGTERM');
    const status = await waitForStderr(child, /"frames"/, 10_000);
    const summary = JSON.parse(status.trim().split('\n').pop() ?? '{}') as {
      decoded: number;
      dropped: Record<string, number>;
      sockets: { source: string; reader: string }[];
    };
    assert.equal(summary.decoded, 6);
    // Read in the worker by the native reader where it is built (always under CI), else by raw-socket on the
    // main thread.
    assert.equal(
      summary.sockets.find((s) => s.source === 'raw-gre:ipv4')?.reader,
      'error' in loadNativeReader() ? 'raw-socket' : 'recvmmsg',
    );
    assert.deepEqual(summary.dropped, { 'unknown-gre-protocol': 1 });
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    ns.remove();
  }
});
