// Arista translation: flowpin's pins as DirectFlow configuration lines, nexthop look-ups as
// `show load-balance destination` commands, and the switch's answers read back. Pure
// functions: no I/O, so the wire format is checked against golden text in tests.

import { pinName } from '../../lib/pin-name.js';
import type { FlowSpec, PinRule } from '../contract.js';

/** Enters DirectFlow configuration (and enables it) after `enable` and `configure [session]`. */
export const DIRECTFLOW_PREAMBLE = ['enable', 'configure', 'directflow', 'no shutdown'];

/**
 * The configuration lines of one pin (DirectFlow mode), the prototype's lines for IPv4
 * (networkop/ecmp-conntrack agent.py). IPv6 matches `ethertype 34525` with `source ipv6` /
 * `destination ipv6`, the only IPv6 form seen on a switch (grf5/arista_f5_directflow, EOS
 * 4.15.0F); the `ethertype ipv6` keyword is not evidenced.
 */
export function pinCommands(p: PinRule, epoch?: bigint): string[] {
  const f = p.flow;
  const six = f.family === 6;
  return [
    `flow ${pinName(f, epoch)}`,
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
