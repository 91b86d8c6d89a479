// Arista translation: flowpin's pins as DirectFlow configuration lines, nexthop look-ups as
// `show load-balance destination` commands, and the switch's answers read back. Pure
// functions: no I/O, so the wire format is checked against golden text in tests.

import { canonicalIp } from '../../mirror-receiver/addr.js';
import type { FlowSpec, PinRule } from '../contract.js';

export const PIN_NAME_PREFIX = 'fp-';

/** Deterministic DirectFlow flow name of a flow, e.g. fp-10_1_2_3-40000-192_0_2_80-443. */
export function pinName(f: FlowSpec): string {
  const a = (s: string): string => s.replace(/[.:]/g, '_');
  return `${PIN_NAME_PREFIX}${a(f.src)}-${f.sport}-${a(f.dst)}-${f.dport}`;
}

/** The flow a pin name stands for, or undefined if the name is not one of flowpin's. */
export function flowOfPinName(name: string): FlowSpec | undefined {
  const m = /^fp-([0-9a-fA-F_]+)-(\d+)-([0-9a-fA-F_]+)-(\d+)$/.exec(name);
  if (!m) return undefined;
  const addr = (s: string): string | undefined => {
    const v4 = s.split('_');
    try {
      return canonicalIp(v4.length === 4 && v4.every((p) => /^\d+$/.test(p)) ? v4.join('.') : s.replace(/_/g, ':'));
    } catch {
      return undefined;
    }
  };
  const src = addr(m[1] as string);
  const dst = addr(m[3] as string);
  if (src === undefined || dst === undefined) return undefined;
  return { family: src.includes(':') ? 6 : 4, src, dst, sport: Number(m[2]), dport: Number(m[4]) };
}

/** Enters DirectFlow configuration (and enables it) after `enable` and `configure [session]`. */
export const DIRECTFLOW_PREAMBLE = ['enable', 'configure', 'directflow', 'no shutdown'];

/**
 * The configuration lines of one pin (DirectFlow mode), the prototype's lines for IPv4
 * (networkop/ecmp-conntrack agent.py). IPv6 matches `ethertype 34525` with `source ipv6` /
 * `destination ipv6`, the only IPv6 form seen on a switch (grf5/arista_f5_directflow, EOS
 * 4.15.0F); the `ethertype ipv6` keyword is not evidenced.
 */
export function pinCommands(p: PinRule): string[] {
  const f = p.flow;
  const six = f.family === 6;
  return [
    `flow ${pinName(f)}`,
    `match ethertype ${six ? '34525' : 'ip'}`,
    `match source ${six ? 'ipv6' : 'ip'} ${f.src}`,
    `match destination ${six ? 'ipv6' : 'ip'} ${f.dst}`,
    'match ip protocol tcp',
    `match source port ${f.sport}`,
    `match destination port ${f.dport}`,
    'no persistent',
    `timeout idle ${p.idleTimeoutS}`,
    `action output nexthop ${p.nexthop}`,
    'exit',
  ];
}

export const removeCommand = (f: FlowSpec): string => `no flow ${pinName(f)}`;
export const removeByName = (name: string): string => `no flow ${name}`;

/**
 * `show load-balance destination` for a flow arriving on `ingress` (prototype syntax for
 * IPv4; the `ipv6 ... src-ipv6-address` form follows it and is not evidenced).
 */
export function loadBalanceCommand(f: FlowSpec, ingress: string): string {
  const v = f.family === 6 ? 'ipv6' : 'ipv4';
  return `show load-balance destination ${f.family === 6 ? 'ipv6' : 'ip'} ingress-interface ${ingress} src-${v}-address ${f.src} dst-${v}-address ${f.dst} ip-protocol 6 src-l4-port ${f.sport} dst-l4-port ${f.dport}`;
}

export { parseOutputInterface } from './topology.js';
