// Which nexthop sits behind which physical port, and where a client comes in, read from
// EOS's own tables. Pure parsers and one pure map builder.
//
// `show load-balance destination` names a physical port (`outputIntf`, DKS ECMPTrace.py;
// `Output Interface: EthernetN`, the prototype); for a port-channel it is the member port
// (DKS LAGTrace.py). A VIP route's via names the routed interface (`Ethernet1`,
// `Port-Channel1`, `Vlan10`; NAPALM/batfish captures). Servers behind one SVI or one
// port-channel share it, so the port is mapped to nexthops through ARP (`ipV4Neighbors`,
// NAPALM `show arp` capture; on an SVI the manual's text form names `Vlan1000, Ethernet33`),
// the MAC table (`unicastTable.tableEntries`, NAPALM eos.py) and port-channel membership
// (`portChannels.*.activePorts`, ANTA VerifyPortChannels tests). A port behind which more
// than one nexthop sits is ambiguous: no answer is given for it.

import { canonicalIp } from '../../lib/addr.js';

export interface Via {
  interface: string | undefined;
  /** Absent on connected routes (and empty on EVPN vias). */
  nexthopAddr: string | undefined;
}

export interface Route {
  prefix: string;
  routeType: string | undefined;
  vias: Via[];
}

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

/** The routes of a `show ip route A` / `show ipv6 route A` JSON answer (default VRF). */
export function parseRoutes(result: unknown): Route[] {
  const routes = obj(obj(obj(obj(result)?.['vrfs'])?.['default'])?.['routes']) ?? {};
  const out: Route[] = [];
  for (const [prefix, raw] of Object.entries(routes)) {
    const r = obj(raw) ?? {};
    const vias: Via[] = [];
    for (const v of Array.isArray(r['vias']) ? (r['vias'] as unknown[]) : []) {
      const via = obj(v) ?? {};
      let nh: string | undefined;
      if (typeof via['nexthopAddr'] === 'string' && via['nexthopAddr'] !== '') {
        try {
          nh = canonicalIp(via['nexthopAddr']);
        } catch {
          nh = undefined;
        }
      }
      vias.push({
        interface: typeof via['interface'] === 'string' ? via['interface'] : undefined,
        nexthopAddr: nh,
      });
    }
    out.push({ prefix, routeType: typeof r['routeType'] === 'string' ? r['routeType'] : undefined, vias });
  }
  return out;
}

export interface Neighbor {
  address: string;
  mac: string;
  /** The routed interface (EthernetN, Port-ChannelN, VlanN). */
  interface: string;
  /** The port behind an SVI, where the answer names it ("Vlan10, Ethernet5"). */
  port: string | undefined;
}

/** Lower-case colon form of a MAC given as dc38.e111.97cf or 00:1C:73:... */
export function normalizeMac(mac: string): string {
  const h = mac.replace(/[.:-]/g, '').toLowerCase();
  return h.length === 12 ? (h.match(/../g) as string[]).join(':') : mac.toLowerCase();
}

/** `show ip arp` (`ipV4Neighbors`, also under vrfs.default) and `show ipv6 neighbors` (`ipV6Neighbors`). */
export function parseNeighbors(result: unknown): Neighbor[] {
  const r = obj(result) ?? {};
  const lists = [
    r['ipV4Neighbors'],
    r['ipV6Neighbors'],
    obj(obj(r['vrfs'])?.['default'])?.['ipV4Neighbors'],
    obj(obj(r['vrfs'])?.['default'])?.['ipV6Neighbors'],
  ];
  const out: Neighbor[] = [];
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    for (const raw of list as unknown[]) {
      const n = obj(raw);
      if (n === undefined || typeof n['address'] !== 'string' || typeof n['interface'] !== 'string') continue;
      let address: string;
      try {
        address = canonicalIp(n['address']);
      } catch {
        continue;
      }
      const [iface = '', port] = n['interface'].split(',').map((s) => s.trim());
      out.push({
        address,
        mac: typeof n['hwAddress'] === 'string' ? normalizeMac(n['hwAddress']) : '',
        interface: iface,
        port: port === '' ? undefined : port,
      });
    }
  }
  return out;
}

export interface MacEntry {
  vlan: number;
  mac: string;
  interface: string;
}

export function parseMacTable(result: unknown): MacEntry[] {
  const entries = obj(obj(result)?.['unicastTable'])?.['tableEntries'];
  const out: MacEntry[] = [];
  for (const raw of Array.isArray(entries) ? (entries as unknown[]) : []) {
    const e = obj(raw);
    if (e === undefined || typeof e['macAddress'] !== 'string' || typeof e['interface'] !== 'string')
      continue;
    out.push({
      vlan: typeof e['vlanId'] === 'number' ? e['vlanId'] : -1,
      mac: normalizeMac(e['macAddress']),
      interface: e['interface'],
    });
  }
  return out;
}

/** Port-channel -> active member ports. */
export function parsePortChannels(result: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, raw] of Object.entries(obj(obj(result)?.['portChannels']) ?? {})) {
    out.set(name, Object.keys(obj(obj(raw)?.['activePorts']) ?? {}));
  }
  return out;
}

/** The port of a `show load-balance destination` answer: JSON `outputIntf` or text `Output Interface: X`. */
export function parseOutputInterface(result: unknown): string | undefined {
  const r = obj(result);
  if (typeof r?.['outputIntf'] === 'string' && r['outputIntf'] !== '') return r['outputIntf'];
  const output = r?.['output'] ?? result;
  if (typeof output !== 'string') return undefined;
  return /Output Interface:\s*(\S+)/i.exec(output)?.[1];
}

export interface EgressMap {
  /** Physical (or logical) port -> the nexthops behind it. */
  byPort: Map<string, Set<string>>;
  /** Nexthops whose port could not be learnt. */
  unplaced: string[];
}

/** Builds port -> nexthops for a VIP's vias from the switch's ARP, MAC and port-channel tables. */
export function egressMap(
  vias: Via[],
  neighbors: Neighbor[],
  macs: MacEntry[],
  portChannels: Map<string, string[]>,
): EgressMap {
  const byPort = new Map<string, Set<string>>();
  const unplaced: string[] = [];
  const put = (port: string, nh: string): void => {
    const ports = [port, ...(portChannels.get(port) ?? [])];
    for (const p of ports) {
      const s = byPort.get(p) ?? new Set<string>();
      s.add(nh);
      byPort.set(p, s);
    }
  };
  for (const v of vias) {
    const nh = v.nexthopAddr;
    const iface = v.interface;
    if (nh === undefined || iface === undefined) continue;
    if (/^(Ethernet|Port-Channel)/i.test(iface)) {
      put(iface, nh);
      continue;
    }
    const vlan = /^Vlan(\d+)$/i.exec(iface);
    if (vlan) {
      const n = neighbors.find((x) => x.address === nh);
      const port =
        n?.port ??
        (n === undefined
          ? undefined
          : macs.find((m) => m.mac === n.mac && (m.vlan === Number(vlan[1]) || m.vlan === -1))?.interface);
      if (port !== undefined) put(port, nh);
      else unplaced.push(nh);
      continue;
    }
    unplaced.push(nh);
  }
  return { byPort, unplaced };
}
