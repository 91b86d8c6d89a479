// The Arista eAPI adapter: DirectFlow pins and `show load-balance destination` look-ups
// over JSON-RPC. Resolution is batched (one runCmds with many look-ups) with caches for the
// client -> ingress interface and VIP -> (interface -> nexthop) look-ups; pins go many per
// runCmds. eAPI stops at the first failing command, so a batch that fails part-way is split:
// what ran before stands, the failing item is reported, the rest is sent again.

import { canonicalIp } from '../../mirror-receiver/addr.js';
import { parsePrefix, prefixContains, type Prefix } from '../../switch-sim/prefix.js';
import type { AdapterCapabilities, FlowSpec, InstalledPin, PinOutcome, PinRule, SwitchAdapter } from '../contract.js';
import { SwitchCommandError, SwitchProtocolError } from '../errors.js';
import { DIRECTFLOW_PREAMBLE, loadBalanceCommand, parseOutputInterface, parsePins, parseRoutes, PIN_LINES, pinCommands, removeCommand } from './directflow.js';
import { EapiTransport, type CommandResult, type EapiTransportOptions } from './transport.js';

export interface GroupCommandTemplates {
  /** Lines run to add a member; {vip}, {nexthop} and {len} (32 or 128) are filled in. */
  add: string[];
  remove: string[];
}

export const DEFAULT_GROUP_COMMANDS: GroupCommandTemplates = {
  add: ['enable', 'configure', 'ip route {vip}/{len} {nexthop}'],
  remove: ['enable', 'configure', 'no ip route {vip}/{len} {nexthop}'],
};

export interface AristaEapiOptions extends EapiTransportOptions {
  pinTableSize?: number;
  resolveBatchSize?: number;
  pinBatchSize?: number;
  groupCommands?: GroupCommandTemplates;
  /** How long a VIP's vias are trusted before they are read again, ms. */
  viaCacheMs?: number;
  now?: () => number;
}

interface ViaCache {
  at: number;
  byInterface: Map<string, string>;
  members: string[];
}

export class AristaEapiAdapter implements SwitchAdapter {
  readonly kind = 'arista-eapi';
  readonly capabilities: AdapterCapabilities;
  readonly transport: EapiTransport;
  private readonly vias = new Map<string, ViaCache>();
  private readonly ingress: { prefix: Prefix; iface: string }[] = [];
  private readonly now: () => number;
  private readonly name: string;

  constructor(private readonly options: AristaEapiOptions) {
    this.transport = new EapiTransport(options);
    this.now = options.now ?? Date.now;
    this.name = options.switchName;
    this.capabilities = {
      resolvesNexthop: true,
      resolveBatchSize: options.resolveBatchSize ?? 200,
      pinBatchSize: options.pinBatchSize ?? 100,
      nativeIdleTimeout: true,
      pinTableSize: options.pinTableSize ?? 1500,
      changesGroups: true,
      predictsMovedFlows: false,
    };
  }

  async connect(): Promise<void> {
    await this.run(['show version'], 'json');
  }

  async close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }

  async resolve(flows: FlowSpec[]): Promise<(string | undefined)[]> {
    const out = new Array<string | undefined>(flows.length).fill(undefined);
    if (flows.length === 0) return out;
    await this.learnIngress(flows.map((f) => f.src));
    for (const vip of new Set(flows.map((f) => f.dst))) await this.viasOf(vip);
    const jobs: { i: number; cmd: string }[] = [];
    flows.forEach((f, i) => {
      const iface = this.ingressOf(f.src);
      if (iface !== undefined) jobs.push({ i, cmd: loadBalanceCommand(f, iface) });
    });
    const size = this.capabilities.resolveBatchSize;
    for (let at = 0; at < jobs.length; at += size) {
      const chunk = jobs.slice(at, at + size);
      const results = await this.runEach(chunk.map((j) => j.cmd), 'text');
      for (let k = 0; k < chunk.length; k++) {
        const r = results[k];
        const job = chunk[k] as { i: number };
        const iface = r instanceof Error ? undefined : parseOutputInterface(r?.['output']);
        if (iface === undefined) continue;
        out[job.i] = await this.nexthopOf((flows[job.i] as FlowSpec).dst, iface);
      }
    }
    return out;
  }

  async installPins(pins: PinRule[]): Promise<PinOutcome[]> {
    const outcomes: PinOutcome[] = [];
    const size = this.capabilities.pinBatchSize;
    for (let at = 0; at < pins.length; at += size) outcomes.push(...(await this.installChunk(pins.slice(at, at + size))));
    return outcomes;
  }

  async removePins(flows: FlowSpec[]): Promise<void> {
    const size = this.capabilities.pinBatchSize * 4;
    for (let at = 0; at < flows.length; at += size) {
      await this.run(['enable', 'configure', 'directflow', ...flows.slice(at, at + size).map(removeCommand)], 'json');
    }
  }

  async listPins(): Promise<InstalledPin[]> {
    const [r] = await this.run(['enable', 'show directflow detail'], 'json', 1);
    return parsePins(r);
  }

  async groupMembers(vip: string): Promise<string[]> {
    this.vias.delete(canonicalIp(vip));
    return [...(await this.viasOf(vip)).members];
  }

  addGroupMember(vip: string, nexthop: string): Promise<void> {
    return this.changeGroup(this.options.groupCommands?.add ?? DEFAULT_GROUP_COMMANDS.add, vip, nexthop);
  }

  removeGroupMember(vip: string, nexthop: string): Promise<void> {
    return this.changeGroup(this.options.groupCommands?.remove ?? DEFAULT_GROUP_COMMANDS.remove, vip, nexthop);
  }

  private async changeGroup(templates: string[], vip: string, nexthop: string): Promise<void> {
    const v = canonicalIp(vip);
    const fill = (t: string): string => t.replaceAll('{vip}', v).replaceAll('{nexthop}', canonicalIp(nexthop)).replaceAll('{len}', v.includes(':') ? '128' : '32');
    try {
      await this.run(templates.map(fill), 'json');
    } finally {
      this.vias.delete(v);
    }
  }

  private async installChunk(pins: PinRule[]): Promise<PinOutcome[]> {
    if (pins.length === 0) return [];
    const cmds = [...DIRECTFLOW_PREAMBLE, ...pins.flatMap(pinCommands)];
    const r = await this.transport.runCmds(cmds, 'json');
    if (r.ok) return pins.map((p) => ({ flow: p.flow, ok: true }));
    const pinIndex = Math.floor((r.failedIndex - DIRECTFLOW_PREAMBLE.length) / PIN_LINES);
    if (r.failedIndex < DIRECTFLOW_PREAMBLE.length || pinIndex >= pins.length) {
      throw new SwitchCommandError(this.name, cmds[r.failedIndex] ?? '?', r.errors.join('; '), r.code);
    }
    const failed = pins[pinIndex] as PinRule;
    const done = pins.slice(0, pinIndex).map((p) => ({ flow: p.flow, ok: true }));
    const rest = await this.installChunk(pins.slice(pinIndex + 1));
    return [...done, { flow: failed.flow, ok: false, error: `'${cmds[r.failedIndex] ?? ''}': ${r.errors.join('; ')}` }, ...rest];
  }

  /** Runs commands that must all succeed; returns the results from index `from` on. */
  private async run(cmds: string[], format: 'json' | 'text', from = 0): Promise<CommandResult[]> {
    const r = await this.transport.runCmds(cmds, format);
    if (!r.ok) throw new SwitchCommandError(this.name, cmds[r.failedIndex] ?? '?', r.errors.join('; '), r.code);
    return r.results.slice(from);
  }

  /** Runs independent commands; a failing one yields its error and the rest still run. */
  private async runEach(cmds: string[], format: 'json' | 'text'): Promise<(CommandResult | Error)[]> {
    const out: (CommandResult | Error)[] = [];
    let rest = cmds;
    while (rest.length > 0) {
      const r = await this.transport.runCmds(rest, format);
      if (r.ok) {
        out.push(...r.results);
        break;
      }
      out.push(...r.results, new SwitchCommandError(this.name, rest[r.failedIndex] ?? '?', r.errors.join('; '), r.code));
      rest = rest.slice(r.failedIndex + 1);
    }
    return out;
  }

  private ingressOf(client: string): string | undefined {
    let best: { prefix: Prefix; iface: string } | undefined;
    for (const e of this.ingress) if (prefixContains(e.prefix, client) && (best === undefined || e.prefix.length > best.prefix.length)) best = e;
    return best?.iface;
  }

  /** Looks up the ingress interface of clients not covered by a cached route. */
  private async learnIngress(clients: string[]): Promise<void> {
    const missing: string[] = [];
    for (const c of new Set(clients)) if (this.ingressOf(c) === undefined && !missing.some((m) => m === c)) missing.push(c);
    // One look-up per client not covered yet; a learned prefix covers the clients after it.
    const size = this.capabilities.resolveBatchSize;
    for (let at = 0; at < missing.length; at += size) {
      const chunk = missing.slice(at, at + size).filter((c) => this.ingressOf(c) === undefined);
      if (chunk.length === 0) continue;
      const results = await this.runEach(chunk.map((c) => `show ip route ${c}`), 'json');
      for (const r of results) {
        if (r instanceof Error) continue;
        for (const [prefix, vias] of parseRoutes(r)) {
          const via = vias[0];
          if (via === undefined) continue;
          try {
            this.ingress.push({ prefix: parsePrefix(prefix), iface: via.interface });
          } catch (err) {
            throw new SwitchProtocolError(this.name, `unreadable route prefix '${prefix}'`, { cause: err });
          }
        }
      }
    }
  }

  private async viasOf(vip: string): Promise<ViaCache> {
    const v = canonicalIp(vip);
    const cached = this.vias.get(v);
    if (cached && this.now() - cached.at < (this.options.viaCacheMs ?? 30_000)) return cached;
    const [r] = await this.run([`show ip route ${v}`], 'json');
    const routes = parseRoutes(r);
    const vias = [...routes.values()][0] ?? [];
    const entry: ViaCache = { at: this.now(), byInterface: new Map(vias.map((x) => [x.interface, x.nexthopAddr])), members: vias.map((x) => x.nexthopAddr) };
    this.vias.set(v, entry);
    return entry;
  }

  /** Maps an output interface to the VIP's nexthop, reading the vias again once if unknown. */
  private async nexthopOf(vip: string, iface: string): Promise<string | undefined> {
    const nh = (await this.viasOf(vip)).byInterface.get(iface);
    if (nh !== undefined) return nh;
    this.vias.delete(canonicalIp(vip));
    return (await this.viasOf(vip)).byInterface.get(iface);
  }
}
