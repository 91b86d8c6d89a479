// `show` commands of the simulated switch, in eAPI's JSON and text forms, shaped after real
// EOS output (sources in docs/eapi.md): `show directflow detail` as DirectFlowAssist's
// capture (JSON: details.status prose, numFlowsProgrammed, flows with match/action objects and
// no nexthop key) and ANTA's 4.35 text (header annotation, `Flows: N programmed, M rejected`);
// `show ip route` as NAPALM/batfish captures (connected vias without nexthopAddr); ARP as
// NAPALM's `ipV4Neighbors`; the MAC table as `unicastTable.tableEntries`; port-channels as
// ANTA's `portChannels.*.activePorts`; `show load-balance destination` JSON `outputIntf` and
// text `Output Interface: EthernetN`. What the evidence leaves open is an EosProfile setting.

import { canonicalIp } from '../../lib/addr.js';
import type { PinEntry } from '../pin-table.js';
import type { SimSwitch } from '../sim-switch.js';
import { CommandError, EAPI_GENERAL, EAPI_UNCONVERTED, incomplete, invalidInput } from './errors.js';
import type { EosProfile } from './profile.js';

export type Format = 'json' | 'text';
export type Result = Record<string, unknown>;

const text = (output: string): Result => ({ output });

export function showVersion(sw: SimSwitch, p: EosProfile, format: Format): Result {
  const v = {
    mfgName: 'Arista',
    modelName: p.modelName,
    hardwareRevision: '11.02',
    serialNumber: `SIM${sw.options.hashSeed.toString(16).toUpperCase()}`,
    systemMacAddress: '00:1c:73:00:00:99',
    hwMacAddress: '00:1c:73:00:00:99',
    configMacAddress: '00:00:00:00:00:00',
    version: p.version,
    architecture: 'i686',
    internalVersion: `${p.version}-sim`,
    internalBuildId: '00000000-0000-0000-0000-000000000000',
    imageFormatVersion: '2.0',
    bootupTimestamp: 1_700_000_000.0,
    uptime: Math.round(sw.now() / 1000),
    memTotal: 3_938_000,
    memFree: 2_100_000,
    isIntlVersion: false,
  };
  if (format === 'json') return v;
  return text(
    `Arista ${v.modelName}\nHardware version:    ${v.hardwareRevision}\nSerial number:       ${v.serialNumber}\nSystem MAC address:  ${v.systemMacAddress}\n\nSoftware image version: ${v.version}\nArchitecture:           ${v.architecture}\nInternal build version: ${v.internalVersion}\n`,
  );
}

interface RouteJson {
  kernelProgrammed: boolean;
  directlyConnected: boolean;
  routeAction: string;
  vias: { interface: string; nexthopAddr?: string }[];
  hardwareProgrammed: boolean;
  routeType: string;
  preference?: number;
  metric?: number;
}

const PREFERENCE: Record<string, number> = { static: 1, eBGP: 20, iBGP: 200 };

/** `show ip route A` / `show ipv6 route A`: the VIP's ECMP vias, or the route toward a client. */
export function showIpRoute(
  sw: SimSwitch,
  p: EosProfile,
  family: 4 | 6,
  address: string,
  format: Format,
): Result {
  let a: string;
  try {
    a = canonicalIp(address);
  } catch {
    throw new CommandError(1002, [`Invalid input (at token 3: '${address}')`], 'invalid command');
  }
  if ((a.includes(':') ? 6 : 4) !== family)
    throw new CommandError(1002, [`Invalid input (at token 3: '${address}')`], 'invalid command');
  const routes: Record<string, RouteJson> = {};
  const vip = sw.vips.get(a);
  if (vip !== undefined) {
    routes[vip.prefix.text] = {
      kernelProgrammed: true,
      directlyConnected: false,
      routeAction: 'forward',
      hardwareProgrammed: true,
      routeType: p.vipRouteType,
      preference: PREFERENCE[p.vipRouteType] ?? 1,
      metric: 0,
      vias: vip.group.members().map((m) => ({ interface: sw.interfaces.get(m) ?? '', nexthopAddr: m })),
    };
  } else {
    const c = sw.clientRouteFor(a);
    if (c !== undefined) {
      const connected = c.route.vias.every((v) => v.nexthopAddr === undefined);
      routes[c.prefix.text] = connected
        ? {
            kernelProgrammed: true,
            directlyConnected: true,
            routeAction: 'forward',
            hardwareProgrammed: true,
            routeType: 'connected',
            vias: c.route.vias.map((v) => ({ interface: v.interface })),
          }
        : {
            kernelProgrammed: true,
            directlyConnected: false,
            routeAction: 'forward',
            hardwareProgrammed: true,
            routeType: 'static',
            preference: 1,
            metric: 0,
            vias: c.route.vias.map((v) => ({ interface: v.interface, nexthopAddr: v.nexthopAddr ?? '' })),
          };
    }
  }
  if (format === 'json')
    return {
      vrfs: {
        default: {
          routes,
          allRoutesProgrammedKernel: true,
          routingDisabled: false,
          allRoutesProgrammedHardware: true,
          defaultRouteState: 'notSet',
        },
      },
    };
  const code: Record<string, string> = { static: 'S', eBGP: 'B E', iBGP: 'B I', connected: 'C' };
  const lines = Object.entries(routes).map(([prefix, r]) =>
    r.routeType === 'connected'
      ? ` C        ${prefix} is directly connected, ${r.vias[0]?.interface ?? ''}`
      : ` ${(code[r.routeType] ?? 'S').padEnd(8)} ${prefix} [${r.preference ?? 1}/0] ` +
        r.vias
          .map((v) => `via ${v.nexthopAddr ?? ''}, ${v.interface}`)
          .join('\n                               '),
  );
  return text(
    `VRF: default\nCodes: C - connected, S - static, B I - iBGP, B E - eBGP\n\n${lines.join('\n')}\n`,
  );
}

const LB_KEYS = [
  'ingress-interface',
  'src-ipv4-address',
  'dst-ipv4-address',
  'src-ipv6-address',
  'dst-ipv6-address',
  'ip-protocol',
  'src-l4-port',
  'dst-l4-port',
  'vlan',
];

/**
 * `show load-balance destination ip ingress-interface I src-ipv4-address A dst-ipv4-address B
 * ip-protocol P src-l4-port X dst-l4-port Y` (and `ipv6` with src-ipv6-address/dst-ipv6-address):
 * the physical port ECMP (and the LAG hash, for a port-channel) sends the flow to.
 */
export function showLoadBalance(sw: SimSwitch, p: EosProfile, tokens: string[], format: Format): Result {
  if (format === 'json' && !p.loadBalanceJson)
    throw new CommandError(EAPI_UNCONVERTED, ['This is an unconverted command'], 'unconverted command');
  const family = tokens[3];
  if (family !== 'ip' && family !== 'ipv6') throw invalidInput(tokens, 3);
  const args = new Map<string, string>();
  for (let i = 4; i < tokens.length; i += 2) {
    const k = tokens[i] as string;
    const v = tokens[i + 1];
    if (v === undefined) throw incomplete();
    if (!LB_KEYS.includes(k)) throw invalidInput(tokens, i);
    args.set(k, v);
  }
  const src = args.get(family === 'ip' ? 'src-ipv4-address' : 'src-ipv6-address');
  const dst = args.get(family === 'ip' ? 'dst-ipv4-address' : 'dst-ipv6-address');
  const ingress = args.get('ingress-interface');
  if (src === undefined || dst === undefined || ingress === undefined) throw incomplete();
  if (normalizeInterface(ingress) === undefined)
    throw new CommandError(1002, [`Invalid input (at token 5: '${ingress}')`], 'invalid command');
  const proto = Number(args.get('ip-protocol') ?? '6');
  const sport = Number(args.get('src-l4-port') ?? '0');
  const dport = Number(args.get('dst-l4-port') ?? '0');
  let port: string | undefined;
  try {
    const s = canonicalIp(src);
    const d = canonicalIp(dst);
    const nh = sw.ecmpNexthop(s, d, proto, sport, dport);
    if (nh !== undefined) port = sw.egressPort(nh, sw.hashOf(s, d, proto, sport, dport));
  } catch {
    port = undefined;
  }
  // The failure text is the simulator's (the prototype only checks for "unable"); its JSON form is not
  // evidenced.
  if (format === 'json') {
    if (port === undefined)
      throw new CommandError(EAPI_GENERAL, ['Unable to determine output interface'], 'could not run command');
    return { outputIntf: port };
  }
  return text(port === undefined ? 'Unable to determine output interface\n' : `Output Interface: ${port}\n`);
}

/** Interface names in full form ("Et47" -> "Ethernet47", "Po1" -> "Port-Channel1"), or undefined. */
export function normalizeInterface(name: string): string | undefined {
  const e = /^(?:et|eth|ethernet)(\d+(?:\/\d+)*)$/i.exec(name);
  if (e) return `Ethernet${e[1]}`;
  const po = /^(?:po|port-channel)(\d+)$/i.exec(name);
  if (po) return `Port-Channel${po[1]}`;
  const vl = /^(?:vl|vlan)(\d+)$/i.exec(name);
  return vl ? `Vlan${vl[1]}` : undefined;
}

/** EOS shows MACs in ARP as dotted triples: dc38.e111.97cf. */
const dotted = (mac: string): string => {
  const h = mac.replace(/:/g, '');
  return `${h.slice(0, 4)}.${h.slice(4, 8)}.${h.slice(8, 12)}`;
};

interface Neighbor {
  address: string;
  hwAddress: string;
  interface: string;
  age: number;
}

/**
 * The neighbours the switch has learnt of one family: servers, the uplink, and asked-for clients of connected
 * subnets.
 */
function neighbors(sw: SimSwitch, p: EosProfile, family: 4 | 6, only: string | undefined): Neighbor[] {
  const out: Neighbor[] = [];
  const fam = (a: string): 4 | 6 => (a.includes(':') ? 6 : 4);
  for (const [addr, att] of sw.attachments) {
    if (fam(addr) !== family) continue;
    const svi = /^Vlan/i.test(att.via);
    const iface =
      svi && p.arpSviForm === 'with-port' ? `${att.via}, ${att.l2 ?? att.ports[0] ?? ''}` : att.via;
    out.push({ address: addr, hwAddress: dotted(att.mac), interface: iface, age: 0 });
  }
  const up = sw.options.uplink;
  if (fam(up.nexthop) === family)
    out.push({ address: up.nexthop, hwAddress: '001c.7300.00fe', interface: up.interface, age: 0 });
  if (only !== undefined && !out.some((n) => n.address === only)) {
    const c = sw.clientRouteFor(only);
    const via = c?.route.vias[0];
    if (c !== undefined && via !== undefined && via.nexthopAddr === undefined && c.route.vias.length === 1) {
      const iface =
        /^Vlan/i.test(via.interface) && p.arpSviForm === 'with-port'
          ? `${via.interface}, ${via.port ?? ''}`
          : via.interface;
      out.push({ address: only, hwAddress: '0200.00aa.0001', interface: iface, age: 0 });
    }
  }
  return only === undefined ? out : out.filter((n) => n.address === only);
}

/**
 * `show ip arp [A]` / `show arp [A]` (JSON `ipV4Neighbors`) and `show ipv6 neighbors [A]` (`ipV6Neighbors`,
 * key UNVERIFIED).
 */
export function showNeighbors(
  sw: SimSwitch,
  p: EosProfile,
  family: 4 | 6,
  address: string | undefined,
  format: Format,
): Result {
  let only: string | undefined;
  if (address !== undefined) {
    try {
      only = canonicalIp(address);
    } catch {
      throw new CommandError(1002, [`Invalid input (at token 3: '${address}')`], 'invalid command');
    }
  }
  const list = neighbors(sw, p, family, only);
  if (format === 'json') {
    return family === 4
      ? {
          dynamicEntries: list.length,
          ipV4Neighbors: list,
          notLearnedEntries: 0,
          totalEntries: list.length,
          staticEntries: 0,
        }
      : { ipV6Neighbors: list };
  }
  const rows = list.map(
    (n) => `${n.address.padEnd(16)} ${String(n.age).padStart(5)}  ${n.hwAddress}  ${n.interface}`,
  );
  return text(`Address          Age (sec)  Hardware Addr   Interface\n${rows.join('\n')}\n`);
}

/** `show mac address-table`: where the MACs of SVI-attached servers are learnt. */
export function showMacTable(sw: SimSwitch, format: Format): Result {
  const entries = [...sw.attachments.values()]
    .filter((a) => a.vlan !== undefined)
    .map((a) => ({
      vlanId: a.vlan as number,
      macAddress: a.mac,
      type: 'dynamic',
      interface: a.l2 ?? a.ports[0] ?? '',
      moves: 1,
      lastMove: 1_700_000_000.0,
    }));
  if (format === 'json')
    return { multicastTable: { tableEntries: [] }, unicastTable: { tableEntries: entries } };
  const rows = entries.map(
    (e) => `${String(e.vlanId).padStart(4)}    ${dotted(e.macAddress)}    DYNAMIC     ${e.interface}`,
  );
  return text(
    `          Mac Address Table\n------------------------------------------------------------------\n\nVlan    Mac Address       Type        Ports\n${rows.join('\n')}\nTotal Mac Addresses for this criterion: ${entries.length}\n`,
  );
}

/** `show port-channel`: members of each port-channel. */
export function showPortChannel(sw: SimSwitch, format: Format): Result {
  const pcs: Record<string, unknown> = {};
  for (const [name, members] of sw.portChannels)
    pcs[name] = {
      activePorts: Object.fromEntries(members.map((m) => [m, {}])),
      inactivePorts: {},
      rxPorts: {},
      inactiveLag: false,
      minLinks: 0,
    };
  if (format === 'json') return { portChannels: pcs };
  return text(
    [...sw.portChannels].map(([n, m]) => `Port Channel ${n}:\n  Active Ports: ${m.join(' ')}\n`).join(''),
  );
}

// ---- DirectFlow --------------------------------------------------------------------------

/** The prose status EOS gives a flow in `details.status` (DirectFlowAssist). */
function statusText(sw: SimSwitch, e: PinEntry): string {
  if (e.status === 'programmed' && sw.directflowEnabled) return 'Flow programmed';
  if (e.status === 'table-full') return 'Flow rejected due to insufficient resources';
  return 'Flow not programmed';
}

function maskOf(family: 4 | 6 | undefined): string {
  return family === 6 ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255';
}

function flowJson(e: PinEntry): Result {
  const m = e.match;
  const match: Result = {
    inInterfaces: [],
    unknownL3V4MulticastAddress: false,
    unknownL2V4MulticastAddress: false,
    tcpSyn: false,
    tcpAck: false,
    tcpFin: false,
    tcpRst: false,
    tcpPsh: false,
    tcpUrg: false,
  };
  if (m.family !== undefined) {
    match['ethType'] = m.family === 4 ? 0x0800 : 0x86dd;
    match['ethTypeMask'] = 65535;
  }
  // IPv4 keys as DirectFlowAssist's capture; the IPv6 keys are not evidenced (UNVERIFIED).
  if (m.src !== undefined)
    match[m.family === 6 ? 'ipv6Src' : 'ipSrc'] = { mask: maskOf(m.family), ip: m.src };
  if (m.dst !== undefined)
    match[m.family === 6 ? 'ipv6Dst' : 'ipDst'] = { mask: maskOf(m.family), ip: m.dst };
  if (m.protocol !== undefined) match['ipProto'] = m.protocol;
  if (m.sport !== undefined) match['ipPortSrc'] = m.sport;
  if (m.dport !== undefined) match['ipPortDst'] = m.dport;
  // No public capture shows the JSON of `action output nexthop`: the simulator gives none of
  // it (the text form carries the nexthop), as a real switch may not either.
  const action: Result = {
    outputNormal: false,
    outputController: false,
    outputDrop: e.nexthop === undefined,
    loopback: false,
    outInterfaces: [],
    outputFlood: false,
    outputLocal: false,
    egrMirrorInterfaces: [],
    outputAll: false,
    ingrMirrorInterfaces: [],
  };
  return {
    priority: e.priority,
    matchPackets: e.packets,
    matchBytes: e.bytes,
    bridgeMacAddr: '00:1c:73:00:00:99',
    name: e.name,
    action,
    hardTimeout: e.hardTimeoutS,
    idleTimeout: e.idleTimeoutS,
    persistent: e.persistent,
    match,
  };
}

function flowText(e: PinEntry, header: string): string {
  const m = e.match;
  const v = m.family === 6 ? 'IPv6' : 'IPv4';
  const lines = [
    header,
    `  persistent: ${e.persistent ? 'True' : 'False'}`,
    `  priority: ${e.priority}`,
    '  priorityGroupType: default',
    '  tableType: ifp',
    `  hard timeout: ${e.hardTimeoutS}`,
    `  idle timeout: ${e.idleTimeoutS}`,
    '  match:',
  ];
  if (m.family !== undefined) lines.push(`    Ethernet type: ${v}`);
  if (m.src !== undefined) lines.push(`    source ${v} address: ${m.src}/${maskOf(m.family)}`);
  if (m.dst !== undefined) lines.push(`    destination ${v} address: ${m.dst}/${maskOf(m.family)}`);
  if (m.protocol !== undefined)
    lines.push(`    ${v} protocol: ${m.protocol === 6 ? 'TCP' : m.protocol === 17 ? 'UDP' : m.protocol}`);
  if (m.sport !== undefined) lines.push(`    source TCP/UDP port or ICMP type: ${m.sport}`);
  if (m.dport !== undefined) lines.push(`    destination TCP/UDP port or ICMP type: ${m.dport}`);
  lines.push(
    '  actions:',
    e.nexthop === undefined ? '    drop' : `    output nexthop: ${e.nexthop}`,
    '  source: config',
    `  matched: ${e.packets} packets, ${e.bytes} bytes`,
  );
  return lines.join('\n');
}

/** `show directflow flows [NAME]` and `show directflow detail`. */
export function showDirectflow(sw: SimSwitch, p: EosProfile, tokens: string[], format: Format): Result {
  const what = tokens[2];
  if (what !== 'flows' && what !== 'detail')
    throw what === undefined ? incomplete() : invalidInput(tokens, 2);
  sw.pins.expire(sw.now());
  const detail = what === 'detail';
  const name = what === 'flows' ? tokens[3] : undefined;
  const entries = sw.pins
    .all()
    .filter((e) => e.source === 'directflow' && (name === undefined || e.name === name));
  const programmed = entries.filter((e) => e.status === 'programmed' && sw.directflowEnabled).length;
  const rejected = entries.filter((e) => e.status === 'table-full').length;
  if (format === 'json') {
    const listed = p.jsonListsRejected ? entries : entries.filter((e) => e.status !== 'table-full');
    const flows = listed.map(flowJson);
    if (!detail) return { flows };
    return {
      details: {
        status: Object.fromEntries(listed.map((e) => [e.name, statusText(sw, e)])),
        numFlowsProgrammed: programmed,
      },
      flows,
    };
  }
  // The 4.35 text marks a flow waiting for TCAM space in its header (ANTA SA-0142); other
  // not-programmed states have no evidenced annotation, so none is shown for them.
  const blocks = entries.map((e) =>
    flowText(
      e,
      `Flow ${e.name}:${e.status === 'table-full' ? ' (Waiting for a resource to be allocated)' : ''}`,
    ),
  );
  if (detail) blocks.push(`Flows: ${programmed} programmed, ${rejected} rejected`);
  return text(blocks.join('\n') + (blocks.length > 0 ? '\n' : ''));
}
