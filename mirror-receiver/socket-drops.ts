// The kernel's count of datagrams it dropped for a UDP socket (receive buffer full), which
// Node cannot ask for (no SO_RXQ_OVFL): the `drops` column of /proc/net/udp and /proc/net/udp6,
// found by the socket's local address and port, and the host-wide UDP RcvbufErrors of
// /proc/net/snmp. Both are Linux's procfs formats (Documentation/networking/proc_net_tcp.rst
// describes the table; net/ipv4/udp.c udp4_format_sock prints the drops last, and
// net/ipv6/datagram.c __ip6_dgram_sock_seq_show the same for IPv6). Addresses in the table
// are 32-bit words printed in host byte order (little-endian here).

import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { parseIp } from '../lib/addr.js';

/** The table's text of a local address and port, e.g. 0100007F:1292 for 127.0.0.1:4754. */
export function procNetAddress(address: string, port: number): string {
  const { bytes } = parseIp(address);
  let hex = '';
  for (let w = 0; w < bytes.length; w += 4) {
    for (let i = 3; i >= 0; i--) hex += (bytes[w + i] as number).toString(16).padStart(2, '0');
  }
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Parses a /proc/net/udp{,6} table: drops by local address text. */
export function parseUdpTable(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  const header = (lines[0] ?? '').trim().split(/\s+/);
  if (header[header.length - 1] !== 'drops') return out;
  for (let i = 1; i < lines.length; i++) {
    const f = (lines[i] ?? '').trim().split(/\s+/);
    if (f.length < 13) continue;
    const local = f[1] as string;
    const drops = Number(f[f.length - 1]);
    if (Number.isFinite(drops)) out.set(local, (out.get(local) ?? 0) + drops);
  }
  return out;
}

/** Drops the kernel counted for the UDP socket bound to `address:port`, or null where unknown. */
export function udpSocketDrops(address: string, port: number): number | null {
  try {
    const table = readFileSync(isIPv6(address) ? '/proc/net/udp6' : '/proc/net/udp', 'latin1');
    return parseUdpTable(table).get(procNetAddress(address, port)) ?? null;
  } catch {
    return null;
  }
}

/** Host-wide UDP receive-buffer drops (all sockets, all processes), or null where unknown. */
export function udpRcvbufErrors(): number | null {
  try {
    const lines = readFileSync('/proc/net/snmp', 'latin1')
      .split('\n')
      .filter((l) => l.startsWith('Udp:'));
    const names = (lines[0] ?? '').trim().split(/\s+/);
    const values = (lines[1] ?? '').trim().split(/\s+/);
    const i = names.indexOf('RcvbufErrors');
    return i < 0 ? null : Number(values[i]);
  } catch {
    return null;
  }
}
