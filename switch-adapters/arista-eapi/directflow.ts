// Arista translation: flowpin's pins as DirectFlow configuration lines, nexthop look-ups as
// `show load-balance destination` commands, and the switch's answers read back. Pure
// functions: no I/O, so the wire format is checked against golden text in tests.

import { canonicalIp } from '../../mirror-receiver/addr.js';
import type { FlowSpec, InstalledPin, PinRule } from '../contract.js';

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

/** Enters DirectFlow configuration (and enables it) at the start of a pin request. */
export const DIRECTFLOW_PREAMBLE = ['enable', 'configure', 'directflow', 'no shutdown'];

/** The configuration lines of one pin (DirectFlow mode). */
export function pinCommands(p: PinRule): string[] {
  const f = p.flow;
  const ip = f.family === 6 ? 'ipv6' : 'ip';
  return [
    `flow ${pinName(f)}`,
    `match ethertype ${f.family === 6 ? 'ipv6' : 'ip'}`,
    `match source ${ip} ${f.src}`,
    `match destination ${ip} ${f.dst}`,
    'match ip protocol tcp',
    `match source port ${f.sport}`,
    `match destination port ${f.dport}`,
    'no persistent',
    `timeout idle ${p.idleTimeoutS}`,
    `action output nexthop ${p.nexthop}`,
    'exit',
  ];
}

export const PIN_LINES = 11;

export const removeCommand = (f: FlowSpec): string => `no flow ${pinName(f)}`;

/** `show load-balance destination` for a flow arriving on `ingress`. */
export function loadBalanceCommand(f: FlowSpec, ingress: string): string {
  const v = f.family === 6 ? 'ipv6' : 'ipv4';
  return `show load-balance destination ${f.family === 6 ? 'ipv6' : 'ip'} ingress-interface ${ingress} src-${v}-address ${f.src} dst-${v}-address ${f.dst} ip-protocol 6 src-l4-port ${f.sport} dst-l4-port ${f.dport}`;
}

/** The interface in `Output Interface: Ethernet43`, or undefined ("Unable to ..."). */
export function parseOutputInterface(output: unknown): string | undefined {
  if (typeof output !== 'string') return undefined;
  const m = /Output Interface:\s*(\S+)/i.exec(output);
  return m?.[1];
}

export interface Via {
  nexthopAddr: string;
  interface: string;
}

/** The routes of a `show ip route A` JSON answer: prefix -> vias. */
export function parseRoutes(result: unknown): Map<string, Via[]> {
  const out = new Map<string, Via[]>();
  const routes = (result as { vrfs?: { default?: { routes?: Record<string, { vias?: unknown[] }> } } } | undefined)?.vrfs?.default?.routes ?? {};
  for (const [prefix, r] of Object.entries(routes)) {
    const vias: Via[] = [];
    for (const v of r.vias ?? []) {
      const via = v as Partial<Via>;
      if (typeof via.nexthopAddr === 'string' && typeof via.interface === 'string') vias.push({ nexthopAddr: canonicalIp(via.nexthopAddr), interface: via.interface });
    }
    out.set(prefix, vias);
  }
  return out;
}

const REASONS: Record<string, InstalledPin['reason']> = { pending: 'pending', tableFull: 'table-full', idleTimeout: 'idle-timeout', hardTimeout: 'hard-timeout', directflowShutdown: 'disabled' };

/** flowpin's pins in a `show directflow detail` (or `flows`) JSON answer. */
export function parsePins(result: unknown): InstalledPin[] {
  const flows = (result as { flows?: unknown[] } | undefined)?.flows ?? [];
  const out: InstalledPin[] = [];
  for (const raw of flows) {
    const f = raw as { name?: unknown; action?: { outputNexthops?: unknown[] }; matchPackets?: unknown; matchBytes?: unknown; status?: unknown; reason?: unknown };
    if (typeof f.name !== 'string') continue;
    const flow = flowOfPinName(f.name);
    const nh = f.action?.outputNexthops?.[0];
    if (flow === undefined || typeof nh !== 'string') continue;
    const programmed = f.status === undefined || f.status === 'programmed';
    const pin: InstalledPin = { name: f.name, flow, nexthop: canonicalIp(nh), programmed, packets: Number(f.matchPackets ?? 0), bytes: Number(f.matchBytes ?? 0) };
    if (!programmed) pin.reason = REASONS[String(f.reason)] ?? 'unknown';
    out.push(pin);
  }
  return out;
}
