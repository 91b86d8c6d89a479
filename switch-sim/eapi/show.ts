// `show` commands of the simulated switch, in eAPI's JSON and text forms.

import { canonicalIp } from '../../mirror-receiver/addr.js';
import type { PinEntry } from '../pin-table.js';
import type { SimSwitch } from '../sim-switch.js';
import { CommandError, EAPI_UNCONVERTED, incomplete, invalidInput } from './errors.js';

export type Format = 'json' | 'text';
export type Result = Record<string, unknown>;

const text = (output: string): Result => ({ output });

export function showVersion(sw: SimSwitch, format: Format): Result {
  const v = { modelName: 'flowpin-sim', version: '4.30.0F-sim', serialNumber: `SIM${sw.options.hashSeed.toString(16).toUpperCase()}`, systemMacAddress: '00:1c:73:00:00:99', hostname: sw.options.hostname, architecture: 'x86_64', mfgName: 'flowpin' };
  return format === 'json' ? v : text(`Arista-compatible simulator ${v.modelName}\nSoftware image version: ${v.version}\nSerial number: ${v.serialNumber}\n`);
}

/** `show ip route A`: the VIP's ECMP vias, or the uplink route of a client address. */
export function showIpRoute(sw: SimSwitch, address: string, format: Format): Result {
  const routes: Record<string, { routeType: string; vias: { nexthopAddr: string; interface: string }[] }> = {};
  let a: string;
  try {
    a = canonicalIp(address);
  } catch {
    throw new CommandError(1002, [`Invalid input (at token 3: '${address}')`], 'invalid command');
  }
  const vip = sw.vips.get(a);
  if (vip !== undefined) {
    routes[vip.prefix.text] = { routeType: 'static', vias: vip.group.members().map((m) => ({ nexthopAddr: m, interface: sw.interfaces.get(m) ?? '' })) };
  } else {
    const p = sw.uplinkPrefixFor(a);
    if (p !== undefined) routes[p.text] = { routeType: 'static', vias: [{ nexthopAddr: sw.options.uplink.nexthop, interface: sw.options.uplink.interface }] };
  }
  if (format === 'json') return { vrfs: { default: { routes } } };
  const lines = Object.entries(routes).map(([p, r]) => ` S      ${p} ` + r.vias.map((v) => `via ${v.nexthopAddr}, ${v.interface}`).join('\n                   '));
  return text(`VRF: default\n${lines.join('\n')}\n`);
}

/**
 * `show load-balance destination ip ingress-interface I src-ipv4-address A dst-ipv4-address B
 * ip-protocol P src-l4-port X dst-l4-port Y` (and `ipv6` with src-ipv6-address/dst-ipv6-address):
 * the interface ECMP sends the flow to. Text only, as on EOS.
 */
export function showLoadBalance(sw: SimSwitch, tokens: string[], format: Format): Result {
  if (format === 'json') throw new CommandError(EAPI_UNCONVERTED, ['This is an unconverted command'], 'unconverted command');
  // tokens: show load-balance destination ip|ipv6 key value ...
  const family = tokens[3];
  if (family !== 'ip' && family !== 'ipv6') throw invalidInput(tokens, 3);
  const args = new Map<string, string>();
  for (let i = 4; i < tokens.length; i += 2) {
    const k = tokens[i] as string;
    const v = tokens[i + 1];
    if (v === undefined) throw incomplete();
    if (!['ingress-interface', 'src-ipv4-address', 'dst-ipv4-address', 'src-ipv6-address', 'dst-ipv6-address', 'ip-protocol', 'src-l4-port', 'dst-l4-port'].includes(k)) throw invalidInput(tokens, i);
    args.set(k, v);
  }
  const src = args.get(family === 'ip' ? 'src-ipv4-address' : 'src-ipv6-address');
  const dst = args.get(family === 'ip' ? 'dst-ipv4-address' : 'dst-ipv6-address');
  const ingress = args.get('ingress-interface');
  if (src === undefined || dst === undefined || ingress === undefined) throw incomplete();
  if (normalizeInterface(ingress) === undefined) throw new CommandError(1002, [`Invalid input (at token 5: '${ingress}')`], 'invalid command');
  const proto = Number(args.get('ip-protocol') ?? '6');
  const sport = Number(args.get('src-l4-port') ?? '0');
  const dport = Number(args.get('dst-l4-port') ?? '0');
  let nh: string | undefined;
  try {
    nh = sw.ecmpNexthop(canonicalIp(src), canonicalIp(dst), proto, sport, dport);
  } catch {
    nh = undefined;
  }
  const ifname = nh === undefined ? undefined : sw.interfaces.get(nh);
  return text(ifname === undefined ? 'Unable to determine output interface\n' : `Output Interface: ${ifname}\n`);
}

/** Ethernet interface names in full form ("Et47" -> "Ethernet47"), or undefined. */
export function normalizeInterface(name: string): string | undefined {
  const m = /^(?:et|eth|ethernet)(\d+(?:\/\d+)*)$/i.exec(name);
  return m ? `Ethernet${m[1]}` : undefined;
}

const REASONS: Record<Exclude<PinEntry['status'], 'programmed'>, string> = { pending: 'pending', 'table-full': 'tableFull', 'idle-timeout': 'idleTimeout', 'hard-timeout': 'hardTimeout' };

function flowJson(sw: SimSwitch, e: PinEntry, detail: boolean, now: number): Result {
  const m = e.match;
  const host = m.family === 6 ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255';
  const match: Result = {};
  if (m.family !== undefined) match['ethType'] = m.family === 4 ? 0x0800 : 0x86dd;
  if (m.src !== undefined) match[m.family === 6 ? 'ipv6Src' : 'ipSrc'] = { ip: m.src, mask: host };
  if (m.dst !== undefined) match[m.family === 6 ? 'ipv6Dst' : 'ipDst'] = { ip: m.dst, mask: host };
  if (m.protocol !== undefined) match['ipProto'] = m.protocol;
  if (m.sport !== undefined) match['srcPort'] = m.sport;
  if (m.dport !== undefined) match['dstPort'] = m.dport;
  const programmed = e.status === 'programmed' && sw.directflowEnabled;
  const out: Result = {
    name: e.name,
    persistent: e.persistent,
    priority: e.priority,
    hardTimeout: e.hardTimeoutS,
    idleTimeout: e.idleTimeoutS,
    match,
    action: e.nexthop === undefined ? { drop: true } : { outputNexthops: [e.nexthop] },
    source: 'config',
    matchPackets: e.packets,
    matchBytes: e.bytes,
    status: programmed ? 'programmed' : 'notProgrammed',
  };
  if (!programmed) out['reason'] = sw.directflowEnabled ? REASONS[e.status as Exclude<PinEntry['status'], 'programmed'>] : 'directflowShutdown';
  if (detail) {
    out['createdSecondsAgo'] = Math.round((now - e.createdAt) / 1000);
    out['lastMatchSecondsAgo'] = Math.round((now - e.lastMatchAt) / 1000);
  }
  return out;
}

/** `show directflow flows [NAME]` and `show directflow detail`. */
export function showDirectflow(sw: SimSwitch, tokens: string[], format: Format): Result {
  const what = tokens[2];
  if (what !== 'flows' && what !== 'detail') throw what === undefined ? incomplete() : invalidInput(tokens, 2);
  const now = sw.now();
  sw.pins.expire(now);
  const detail = what === 'detail';
  const name = what === 'flows' ? tokens[3] : undefined;
  const entries = sw.pins.all().filter((e) => e.source === 'directflow' && (name === undefined || e.name === name));
  if (format === 'json') {
    const flows = entries.map((e) => flowJson(sw, e, detail, now));
    const out: Result = { flows };
    if (detail) out['table'] = { capacity: sw.pins.capacity, programmed: sw.pins.programmed, configured: sw.pins.size, enabled: sw.directflowEnabled };
    return out;
  }
  const blocks = entries.map((e) => {
    const m = e.match;
    const lines = [
      `Flow ${e.name}:`,
      `  persistent: ${e.persistent ? 'True' : 'False'}`,
      `  priority: ${e.priority}`,
      `  hard timeout: ${e.hardTimeoutS}`,
      `  idle timeout: ${e.idleTimeoutS}`,
      '  match:',
    ];
    if (m.family !== undefined) lines.push(`    Ethernet type: ${m.family === 4 ? 'IPv4' : 'IPv6'}`);
    if (m.src !== undefined) lines.push(`    source IP${m.family === 6 ? 'v6' : 'v4'} address: ${m.src}`);
    if (m.dst !== undefined) lines.push(`    destination IP${m.family === 6 ? 'v6' : 'v4'} address: ${m.dst}`);
    if (m.protocol !== undefined) lines.push(`    IP protocol: ${m.protocol === 6 ? 'TCP' : m.protocol}`);
    if (m.sport !== undefined) lines.push(`    source TCP/UDP port or ICMP type: ${m.sport}`);
    if (m.dport !== undefined) lines.push(`    destination TCP/UDP port or ICMP type: ${m.dport}`);
    lines.push('  actions:', e.nexthop === undefined ? '    drop' : `    output nexthop: ${e.nexthop}`, '  source: config', `  matched: ${e.packets} packets, ${e.bytes} bytes`);
    if (detail) lines.push(`  status: ${e.status === 'programmed' && sw.directflowEnabled ? 'programmed' : `not programmed (${sw.directflowEnabled ? e.status : 'directflow shutdown'})`}`);
    return lines.join('\n');
  });
  return text(blocks.join('\n') + (blocks.length > 0 ? '\n' : ''));
}
