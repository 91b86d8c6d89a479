// Mirror sender for the receive benchmark and tests, run as its own process:
//   node dist/bench/mirror-sender.js PORT COUNT RATE [HOST] [gre|vxlan]
// sends COUNT GRE-in-UDP datagrams (ERSPAN I, ERSPAN II and bare-IP GRE, IPv4 and IPv6 SYNs,
// each a distinct flow), or with `vxlan` as many VXLAN datagrams (RFC 7348: an 8-byte header,
// flags 0x08 for a valid VNI, then the mirrored Ethernet frame), to HOST:PORT (default
// 127.0.0.1) at about RATE per second (0: as fast as it can), bounded to 60 s, then prints
// {"sent":N,"seconds":S} on stdout.

import { createSocket } from 'node:dgram';
import * as f from '../lib/frames.js';

/** GRE payloads (what a GRE-in-UDP datagram carries) of distinct SYNs, cycling through shapes. */
export function mirrorDatagrams(n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = i % 4 === 3;
    const src = v6
      ? `2001:db8:c::${(i & 0xffff).toString(16)}`
      : `10.${20 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`;
    const inner = f.tcpPacket(src, v6 ? '2001:db8:5::10' : '192.0.2.80', {
      sport: 1024 + (i % 60000),
      dport: 443,
      flags: 0x02,
    });
    const eth = f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800 }, inner);
    const shape = i % 3;
    out.push(
      shape === 0
        ? f.gre({ protocol: 0x88be }, eth)
        : shape === 1
          ? f.gre({ protocol: 0x88be, sequence: i }, f.erspan2(5, eth))
          : f.gre({ protocol: v6 ? 0x86dd : 0x0800 }, inner),
    );
  }
  return out;
}

/** VXLAN payloads (what a VXLAN datagram carries) of distinct SYNs, VNI 100. */
export function vxlanDatagrams(n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = i % 4 === 3;
    const src = v6
      ? `2001:db8:d::${(i & 0xffff).toString(16)}`
      : `10.${40 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`;
    const inner = f.tcpPacket(src, v6 ? '2001:db8:5::10' : '192.0.2.80', {
      sport: 1024 + (i % 60000),
      dport: 443,
      flags: 0x02,
    });
    const header = Buffer.from([0x08, 0, 0, 0, 0, 0, 100, 0]);
    out.push(Buffer.concat([header, f.ethernet({ ethertype: v6 ? 0x86dd : 0x0800 }, inner)]));
  }
  return out;
}

async function main(): Promise<void> {
  const [portArg, countArg, rateArg, host = '127.0.0.1', encap = 'gre'] = process.argv.slice(2);
  const port = Number(portArg);
  const count = Number(countArg);
  const rate = Number(rateArg ?? 0);
  if (
    !Number.isInteger(port) ||
    !Number.isInteger(count) ||
    count < 0 ||
    (encap !== 'gre' && encap !== 'vxlan')
  )
    throw new Error('usage: mirror-sender PORT COUNT RATE [HOST] [gre|vxlan]');
  const templates = (encap === 'vxlan' ? vxlanDatagrams : mirrorDatagrams)(Math.min(count, 4096));
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  // A receiver that goes away (ICMP port unreachable on the connected socket) is counted, not fatal.
  let refused = 0;
  socket.on('error', () => refused++);
  await new Promise<void>((resolve) => socket.connect(port, host, resolve));
  const deadline = Date.now() + 60_000;
  const t0 = performance.now();
  let sent = 0;
  const BURST = 64;
  while (sent < count && Date.now() < deadline) {
    for (let k = 0; k < BURST && sent < count; k++, sent++)
      socket.send(templates[sent % templates.length] as Buffer);
    if (rate > 0) {
      const due = t0 + (sent / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      else await new Promise((r) => setImmediate(r));
    } else {
      await new Promise((r) => setImmediate(r));
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  process.stdout.write(JSON.stringify({ sent, seconds, refused }) + '\n');
}

if (process.argv[1]?.endsWith('mirror-sender.js')) {
  main().catch((err: unknown) => {
    process.stderr.write(`mirror-sender: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
