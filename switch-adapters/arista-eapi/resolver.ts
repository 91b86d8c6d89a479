// Which nexthop a flow hashes to, asked of the switch the way the prototype did, made robust:
//  1. ingress: the client's route (`show ip route C` / `show ipv6 route C`); one via only (the
//     prototype refused more: "So far assuming there can only be one interface"); connected
//     routes (no nexthopAddr) are accepted; an SVI is narrowed to the port from ARP/MAC;
//  2. `show load-balance destination ...` after `enable` (prototype, DKS ECMPTrace.py), JSON
//     `outputIntf` first and the text `Output Interface: X` where JSON is refused (1003);
//  3. the answered port to the nexthop behind it, from ARP, MAC and port-channel tables
//     (topology.ts); a port shared by several nexthops is ambiguous and gets no answer.
// Every flow without an answer is counted by its reason.

import { canonicalIp } from '../../lib/addr.js';
import { parsePrefix, prefixContains, type Prefix } from '../../lib/prefix.js';
import type { FlowSpec, ServerIdentity } from '../contract.js';
import { SwitchCommandError } from '../errors.js';
import { loadBalanceCommand } from './directflow.js';
import type { EapiRunner } from './runner.js';
import {
  egressMap,
  parseMacTable,
  parseNeighbors,
  parseOutputInterface,
  parsePortChannels,
  parseRoutes,
  type EgressMap,
  type MacEntry,
  type Neighbor,
  type Route,
} from './topology.js';
import type { CommandResult } from './transport.js';

/** Why a flow got no nexthop. */
export type ResolveFailure =
  | 'no-client-route'
  | 'ecmp-client-route'
  | 'no-ingress-port'
  | 'no-answer'
  | 'ambiguous-port'
  | 'unknown-port';

export interface Resolution {
  nexthop: string | undefined;
  failure?: ResolveFailure;
}

interface IngressEntry {
  prefix: Prefix;
  iface: string | undefined;
  failure?: ResolveFailure;
}

interface VipEntry {
  at: number;
  route: Route | undefined;
  map: EgressMap;
}

export interface ResolverOptions {
  batchSize: number;
  cacheMs: number;
  now: () => number;
}

const family = (a: string): 4 | 6 => (a.includes(':') ? 6 : 4);
const routeCmd = (a: string): string => `show ${family(a) === 6 ? 'ipv6' : 'ip'} route ${a}`;

export class EapiResolver {
  private readonly ingress: IngressEntry[] = [];
  private readonly vips = new Map<string, VipEntry>();
  private tables:
    { at: number; neighbors: Neighbor[]; macs: MacEntry[]; pcs: Map<string, string[]> } | undefined;
  /** Whether `show load-balance destination` answers in JSON; learnt on the first refusal (1003). */
  private lbFormat: 'json' | 'text' = 'json';
  readonly failures: Record<ResolveFailure, number> = {
    'no-client-route': 0,
    'ecmp-client-route': 0,
    'no-ingress-port': 0,
    'no-answer': 0,
    'ambiguous-port': 0,
    'unknown-port': 0,
  };

  constructor(
    private readonly runner: EapiRunner,
    private readonly o: ResolverOptions,
  ) {}

  /** Forgets what was learnt of a VIP (after its group changed). */
  forgetVip(vip: string): void {
    this.vips.delete(canonicalIp(vip));
  }

  async resolve(flows: FlowSpec[]): Promise<Resolution[]> {
    const out: Resolution[] = flows.map(() => ({ nexthop: undefined }));
    if (flows.length === 0) return out;
    await this.learnIngress(flows.map((f) => f.src));
    for (const vip of new Set(flows.map((f) => f.dst))) await this.vip(vip);
    const jobs: { i: number; cmd: string }[] = [];
    flows.forEach((f, i) => {
      const e = this.ingressOf(f.src);
      if (e?.iface !== undefined) jobs.push({ i, cmd: loadBalanceCommand(f, e.iface) });
      else out[i] = { nexthop: undefined, failure: e?.failure ?? 'no-client-route' };
    });
    for (let at = 0; at < jobs.length; at += this.o.batchSize) {
      const chunk = jobs.slice(at, at + this.o.batchSize);
      const results = await this.loadBalance(chunk.map((j) => j.cmd));
      for (let k = 0; k < chunk.length; k++) {
        const job = chunk[k] as { i: number };
        const r = results[k];
        const port = r === undefined || r instanceof SwitchCommandError ? undefined : parseOutputInterface(r);
        const f = flows[job.i] as FlowSpec;
        out[job.i] =
          port === undefined
            ? { nexthop: undefined, failure: 'no-answer' }
            : await this.nexthopBehind(f.dst, port);
      }
    }
    for (const r of out) if (r.failure !== undefined) this.failures[r.failure]++;
    return out;
  }

  /** Runs look-ups in JSON, falling back to text for good where the switch has no JSON form. */
  private async loadBalance(cmds: string[]): Promise<(CommandResult | SwitchCommandError)[]> {
    const results = await this.runner.runEach(cmds, this.lbFormat);
    if (this.lbFormat === 'json' && results.some((r) => r instanceof SwitchCommandError && r.code === 1003)) {
      this.lbFormat = 'text';
      return this.runner.runEach(cmds, 'text');
    }
    return results;
  }

  private async nexthopBehind(vip: string, port: string): Promise<Resolution> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const e = await this.vip(vip, attempt > 0);
      const set = e.map.byPort.get(port);
      if (set !== undefined && set.size === 1) return { nexthop: [...set][0] as string };
      if (set !== undefined && set.size > 1) return { nexthop: undefined, failure: 'ambiguous-port' };
    }
    return { nexthop: undefined, failure: 'unknown-port' };
  }

  /** The VIP's route and which of its nexthops sits behind which port (cached for cacheMs). */
  async vip(address: string, fresh = false): Promise<VipEntry> {
    const v = canonicalIp(address);
    const cached = this.vips.get(v);
    if (!fresh && cached !== undefined && this.o.now() - cached.at < this.o.cacheMs) return cached;
    const [r] = await this.runner.run([routeCmd(v)], 'json');
    const route = parseRoutes(r)[0];
    const t = await this.topology(fresh);
    const entry: VipEntry = {
      at: this.o.now(),
      route,
      map: egressMap(route?.vias ?? [], t.neighbors, t.macs, t.pcs),
    };
    this.vips.set(v, entry);
    return entry;
  }

  /**
   * Every ARP/ND neighbour with its MAC (`show ip arp`, `show ipv6 neighbors`, read fresh): a
   * mirrored reply's source MAC names the server that sent it. EOS's ERSPAN port index has no
   * documented mapping to interface names, so ports are left to static configuration.
   */
  async serverIdentities(): Promise<ServerIdentity[]> {
    const t = await this.topology(true);
    return t.neighbors
      .filter((n) => n.mac !== '')
      .map((n) => ({ nexthop: n.address, mac: n.mac, interface: n.port ?? n.interface }));
  }

  private async topology(
    fresh: boolean,
  ): Promise<{ neighbors: Neighbor[]; macs: MacEntry[]; pcs: Map<string, string[]> }> {
    const t = this.tables;
    if (!fresh && t !== undefined && this.o.now() - t.at < this.o.cacheMs) return t;
    const [arp, nd, mac, pc] = await this.runner.runEach(
      ['show ip arp', 'show ipv6 neighbors', 'show mac address-table', 'show port-channel'],
      'json',
    );
    const ok = (x: CommandResult | SwitchCommandError | undefined): CommandResult | undefined =>
      x === undefined || x instanceof SwitchCommandError ? undefined : x;
    const tables = {
      at: this.o.now(),
      neighbors: [...parseNeighbors(ok(arp)), ...parseNeighbors(ok(nd))],
      macs: parseMacTable(ok(mac)),
      pcs: parsePortChannels(ok(pc)),
    };
    this.tables = tables;
    return tables;
  }

  private ingressOf(client: string): IngressEntry | undefined {
    let best: IngressEntry | undefined;
    for (const e of this.ingress)
      if (prefixContains(e.prefix, client) && (best === undefined || e.prefix.length > best.prefix.length))
        best = e;
    return best;
  }

  /** Learns the ingress port of clients not covered yet; a learnt prefix covers the clients after it. */
  private async learnIngress(clients: string[]): Promise<void> {
    const missing = [...new Set(clients)].filter((c) => this.ingressOf(c) === undefined);
    for (let at = 0; at < missing.length; at += this.o.batchSize) {
      const chunk = missing.slice(at, at + this.o.batchSize).filter((c) => this.ingressOf(c) === undefined);
      if (chunk.length === 0) continue;
      const results = await this.runner.runEach(chunk.map(routeCmd), 'json', false);
      for (let k = 0; k < chunk.length; k++) {
        const client = chunk[k] as string;
        const r = results[k];
        const route = r === undefined || r instanceof SwitchCommandError ? undefined : parseRoutes(r)[0];
        if (route === undefined) {
          this.ingress.push({ prefix: parsePrefix(client), iface: undefined, failure: 'no-client-route' });
          continue;
        }
        const prefix = parsePrefix(route.prefix);
        if (route.vias.length !== 1) {
          this.ingress.push({
            prefix,
            iface: undefined,
            failure: route.vias.length === 0 ? 'no-client-route' : 'ecmp-client-route',
          });
          continue;
        }
        const via = route.vias[0] as Route['vias'][number];
        const iface = via.interface;
        if (iface !== undefined && !/^Vlan/i.test(iface)) {
          this.ingress.push({ prefix, iface });
          continue;
        }
        // Behind an SVI: the port where the neighbour (the router via, or the client itself on a connected
        // subnet) is learnt.
        const neighbor = via.nexthopAddr ?? client;
        const port = iface === undefined ? undefined : await this.portOf(neighbor, iface);
        this.ingress.push(
          via.nexthopAddr === undefined
            ? {
                prefix: parsePrefix(client),
                iface: port,
                ...(port === undefined ? { failure: 'no-ingress-port' as const } : {}),
              }
            : { prefix, iface: port, ...(port === undefined ? { failure: 'no-ingress-port' as const } : {}) },
        );
      }
    }
  }

  /** The port behind an SVI where `address` is learnt (ARP/neighbour entry, then the MAC table). */
  private async portOf(address: string, svi: string): Promise<string | undefined> {
    const cmd = family(address) === 6 ? `show ipv6 neighbors ${address}` : `show ip arp ${address}`;
    const [r] = await this.runner.runEach([cmd], 'json');
    const n =
      r instanceof SwitchCommandError || r === undefined
        ? undefined
        : parseNeighbors(r).find((x) => x.address === canonicalIp(address));
    if (n === undefined) return undefined;
    if (n.port !== undefined) return n.port;
    const vlan = Number(/^Vlan(\d+)$/i.exec(svi)?.[1] ?? -1);
    return (await this.topology(false)).macs.find(
      (m) => m.mac === n.mac && (m.vlan === vlan || m.vlan === -1),
    )?.interface;
  }
}
