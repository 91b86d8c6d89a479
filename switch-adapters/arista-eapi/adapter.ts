// The Arista eAPI adapter: DirectFlow pins and `show load-balance destination` look-ups over
// JSON-RPC, built to real EOS output (docs/eapi.md).
//  - connect() reads `show version`: refuses platforms without DirectFlow, takes the table size
//    per platform unless configured, and checks that the group template matches how each VIP's
//    route is built (static routes vs BGP).
//  - Pins are written in batches (1,000 flows a request) inside a configuration session that is
//    committed whole, or aborted on any failure (or, with atomicity 'cleanup', every half-built
//    flow is removed), then their programming state is read back: programmed, pending, or
//    rejected for lack of TCAM space (reported table-full; the reconciler removes it with `no
//    flow`). The read-back lists the whole table (EOS has no per-flow form of `show directflow
//    detail`): writes answered while one is under way share the next, and once the table lists
//    more than `readBackLimit` flows, a write answers with the state unknown and the
//    controller's timed read-back (one listPins for every pin waiting) confirms it.
//  - listPins() reads `show directflow detail` in JSON (status, counters) and text (nexthop,
//    flows the JSON omits) and changes nothing: expired and rejected flows are listed as not
//    programmed and removed by the reconciler (removePins), half-built ones by removeStrays().

import { canonicalIp } from '../../lib/addr.js';
import type {
  AdapterCapabilities,
  FlowSpec,
  InstalledPin,
  PinOutcome,
  PinRule,
  PinTableUsage,
  ServerIdentity,
  SwitchAdapter,
} from '../contract.js';
import { flowId, type FenceToken } from '../contract.js';
import { FenceExpiredError } from '../fence.js';
import { SwitchCommandError, SwitchUnsupportedError, unsupported } from '../errors.js';
import { parsePinName, pinName } from '../../lib/pin-name.js';
import { pinCommands, removeByName } from './directflow.js';
import {
  mergeDirectflow,
  notProgrammedReason,
  parseDirectflowJson,
  parseDirectflowText,
  type DirectflowState,
} from './directflow-state.js';
import { platformOf, type Platform } from './platforms.js';
import { EapiResolver, type Resolution } from './resolver.js';
import { EapiRunner } from './runner.js';
import { fillTemplate, templatesFor, type GroupCommandTemplates, type GroupTemplate } from './templates.js';
import { parseRoutes } from './topology.js';
import { commandText, EapiTransport, type EapiTransportOptions } from './transport.js';

export type { GroupCommandTemplates, GroupTemplate } from './templates.js';

export interface AristaEapiOptions extends EapiTransportOptions {
  /** DirectFlow entries of the switch; default: the platform's size from `show version`. */
  pinTableSize?: number;
  resolveBatchSize?: number;
  pinBatchSize?: number;
  /** How the VIP groups are changed; none: group changes are refused. */
  groupTemplate?: GroupTemplate;
  /** Custom group lines (same as groupTemplate {kind: 'custom'}). */
  groupCommands?: GroupCommandTemplates;
  /** Secret for `enable`, where privileged mode has one. */
  enableSecret?: string;
  /**
   * VIPs whose routes connect() checks against the group template (a reload may change them: prepareVips).
   */
  vips?: string[];
  /**
   * 'session' (default): pins in a configuration session committed whole; 'cleanup': line by line, half-built
   * flows removed.
   */
  atomicity?: 'session' | 'cleanup';
  /**
   * Largest listed table read back with each write (default 4096); beyond it the controller's timed read-back
   * confirms.
   */
  readBackLimit?: number;
  /** How long routes and the ARP/MAC/port-channel tables are trusted, ms. */
  viaCacheMs?: number;
  now?: () => number;
}

export interface SwitchInfo {
  modelName: string;
  version: string;
  platform: Platform;
}

let sessionCounter = 0;

export class AristaEapiAdapter implements SwitchAdapter {
  readonly kind = 'arista-eapi';
  readonly capabilities: AdapterCapabilities;
  readonly transport: EapiTransport;
  readonly runner: EapiRunner;
  readonly resolver: EapiResolver;
  /** What connect() read of the switch. */
  info: SwitchInfo | undefined;
  /** Flows removed because they expired, were rejected, or were left without their action. */
  readonly garbageCollected = { expired: 0, rejected: 0, halfBuilt: 0 };
  /**
   * flowpin's flows the last reads found timed out or rejected for space: their removal is garbage
   * collection.
   */
  private readonly garbage = new Map<string, 'expired' | 'rejected'>();
  /** flowpin's flows the last listing found without their action (half-built), for removeStrays(). */
  private strays: string[] = [];
  private readonly now: () => number;
  private readonly name: string;
  private readonly template: GroupTemplate | undefined;
  /** When flowpin last wrote each of its flows (adapter clock), to tell pending from expired. */
  private readonly written = new Map<string, number>();
  private lastState: DirectflowState | undefined;
  /** Programmed entries (every owner) when the switch last rejected a flow for lack of space. */
  private fullAt: number | undefined;
  /**
   * The name of each flow's pin on the switch where it is not the epoch-less one (written under high
   * availability: the writer's epoch is in the name, the switch keeping no fencing token).
   */
  private readonly names = new Map<string, string>();
  /** The read-back of written flows under way, and the flows waiting for the next one (readAfter). */
  private reading: Promise<DirectflowState> | undefined;
  private nextRead: { names: string[]; state: Promise<DirectflowState> | undefined } | undefined;

  constructor(private readonly options: AristaEapiOptions) {
    this.transport = new EapiTransport(options);
    this.now = options.now ?? Date.now;
    this.name = options.switchName;
    this.runner = new EapiRunner(this.transport, this.name, options.enableSecret);
    this.template =
      options.groupTemplate ??
      (options.groupCommands === undefined ? undefined : { kind: 'custom', ...options.groupCommands });
    this.capabilities = {
      resolvesNexthop: true,
      resolveBatchSize: options.resolveBatchSize ?? 200,
      // One request per 1,000 flows, as Arista's DirectFlowAssist sends its flow list whole
      // (add_flows: one runCmds for every flow given; inject_test_flows(1000, ...)): each request
      // costs the switch a round trip and a read-back of the whole table, whatever its size.
      pinBatchSize: options.pinBatchSize ?? 1000,
      nativeIdleTimeout: true,
      pinTableSize: options.pinTableSize ?? 0,
      changesGroups: this.template !== undefined,
      // EOS does not show the resilient ECMP bucket table: no prediction of moved flows.
      predictsMovedFlows: false,
      // `show directflow detail` has no per-flow form: pins are read back by listing.
      readsPins: false,
      reportsTableUsage: true,
      // The route's vias are its configuration; forwarding takes them when accepted.
      readsProgrammedGroup: false,
      knowsServers: true,
      groupProgramDelayMs: 0,
      // DirectFlow keeps no fencing token: the owner's epoch is in each flow's name, and the
      // bound on a stale owner is the reconciler's timing (docs/fencing.md).
      fencing: 'timed',
    };
    this.resolver = new EapiResolver(this.runner, {
      batchSize: this.capabilities.resolveBatchSize,
      cacheMs: options.viaCacheMs ?? 30_000,
      now: this.now,
    });
  }

  async connect(): Promise<void> {
    const [v] = await this.runner.run(['enable', 'show version'], 'json', 1);
    const modelName = typeof v?.['modelName'] === 'string' ? v['modelName'] : '';
    const version = typeof v?.['version'] === 'string' ? v['version'] : '';
    const platform = platformOf(modelName);
    this.info = { modelName, version, platform };
    if (platform.directflow === false)
      throw new SwitchUnsupportedError(
        this.name,
        `${modelName} (${platform.family}, EOS ${version}) has no DirectFlow; use the gNMI adapter (OpenConfig policy-forwarding)`,
      );
    const size = this.options.pinTableSize ?? platform.tableSize;
    if (size === undefined) {
      throw new SwitchUnsupportedError(
        this.name,
        `the DirectFlow table size of ${modelName} (${platform.family}) is not known${platform.directflow === 'unknown' ? ', nor whether it has DirectFlow' : ''}; set pinTableSize for this switch`,
      );
    }
    this.capabilities.pinTableSize = size;
    await this.checkRoutes(this.options.vips ?? []);
  }

  /** Each VIP's route must be one the group template changes (a static route would shadow a BGP group). */
  private async checkRoutes(vips: readonly string[]): Promise<void> {
    const t = this.template;
    if (t === undefined) return;
    for (const vip of vips) {
      const a = canonicalIp(vip);
      const wanted = templatesFor(t, a.includes(':') ? 6 : 4).routeTypes;
      if (wanted === undefined) continue;
      const [r] = await this.runner.run([`show ${a.includes(':') ? 'ipv6' : 'ip'} route ${a}`], 'json');
      const route = parseRoutes(r)[0];
      if (route !== undefined && route.routeType !== undefined && !wanted.includes(route.routeType)) {
        throw new SwitchUnsupportedError(
          this.name,
          `VIP ${a} is a ${route.routeType} route; the '${t.kind}' group template changes ${wanted.join('/')} routes only (a static route would shadow a BGP group)`,
        );
      }
    }
  }

  /**
   * New VIPs' routes are checked as connect() checks them (where connected: otherwise connect() will); then
   * the list is taken.
   */
  async prepareVips(vips: readonly { address: string }[]): Promise<() => void> {
    const now = vips.map((v) => v.address);
    const had = new Set((this.options.vips ?? []).map(canonicalIp));
    if (this.info !== undefined) await this.checkRoutes(now.filter((v) => !had.has(canonicalIp(v))));
    return () => {
      this.options.vips = now;
    };
  }

  async close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }

  problems(): string[] {
    return [];
  }

  readPins(): Promise<(InstalledPin | undefined)[]> {
    return unsupported(this.name, 'readPins');
  }

  groupProgrammed(): Promise<string[]> {
    return unsupported(this.name, 'groupProgrammed');
  }

  movedByAdd(): Promise<boolean[]> {
    return unsupported(this.name, 'movedByAdd');
  }

  async resolve(flows: FlowSpec[]): Promise<(string | undefined)[]> {
    return (await this.resolver.resolve(flows)).map((r) => r.nexthop);
  }

  /** resolve() with the reason of every flow left without an answer. */
  resolveDetailed(flows: FlowSpec[]): Promise<Resolution[]> {
    return this.resolver.resolve(flows);
  }

  /** The servers' MACs from the ARP and ND tables (see EapiResolver.serverIdentities). */
  serverIdentities(): Promise<ServerIdentity[]> {
    return this.resolver.serverIdentities();
  }

  /** Keeps nothing on the switch (timed fencing): nothing to do at a takeover. */
  fenceTakeover(): Promise<void> {
    return Promise.resolve();
  }

  /** The name a flow's pin has on the switch (as last listed or written). */
  private nameOf(f: FlowSpec): string {
    return this.names.get(flowId(f)) ?? pinName(f);
  }

  async installPins(pins: PinRule[], fence?: FenceToken): Promise<PinOutcome[]> {
    if (pins.length === 0) return [];
    const epoch = fence?.epoch;
    const check = fence?.check;
    // Flows known expired or rejected are deleted first: re-sending an unchanged block may not program them
    // again.
    const stale = pins
      .map((p) => this.nameOf(p.flow))
      .filter((n) => {
        const f = this.lastState?.flows.get(n);
        return f !== undefined && !f.state.programmed;
      });
    if (stale.length > 0)
      await this.runner.run(
        ['enable', 'configure', 'directflow', ...stale.map(removeByName)],
        'json',
        0,
        check,
      );
    const outcomes: PinOutcome[] = [];
    const size = this.capabilities.pinBatchSize;
    for (let at = 0; at < pins.length; at += size)
      outcomes.push(...(await this.installChunk(pins.slice(at, at + size), epoch, check)));
    const written = this.now();
    for (const o of outcomes) if (o.ok) this.written.set(pinName(o.flow, epoch), written);
    await this.renamed(outcomes, epoch, check);
    // A big table is read once per interval for every pin waiting, not once per write.
    if ((this.lastState?.flows.size ?? 0) > (this.options.readBackLimit ?? 100_000)) return outcomes;
    return this.readBack(outcomes, epoch);
  }

  /**
   * Flows written now under another epoch's name than they had: the older flow goes once the new
   * one is configured (the flow is held throughout).
   */
  private async renamed(
    outcomes: PinOutcome[],
    epoch: bigint | undefined,
    check: (() => void) | undefined,
  ): Promise<void> {
    const old: string[] = [];
    for (const o of outcomes) {
      if (!o.ok) continue;
      const id = flowId(o.flow);
      const before = this.nameOf(o.flow);
      const now = pinName(o.flow, epoch);
      if (before !== now) old.push(before);
      if (now === pinName(o.flow)) this.names.delete(id);
      else this.names.set(id, now);
    }
    if (old.length === 0) return;
    await this.runner.run(['enable', 'configure', 'directflow', ...old.map(removeByName)], 'json', 0, check);
    for (const n of old) this.forget(n);
  }

  /**
   * Reads the programming state of what was written; rejected flows are reported table-full (the reconciler
   * removes them).
   */
  private async readBack(outcomes: PinOutcome[], epoch: bigint | undefined): Promise<PinOutcome[]> {
    // The JSON alone where it names every written flow (4.14/4.15); the text too where it omits some
    // (4.35.4M).
    const written = outcomes.filter((o) => o.ok).map((o) => pinName(o.flow, epoch));
    const state = await this.readAfter(written);
    return outcomes.map((o): PinOutcome => {
      if (!o.ok) return o;
      const name = pinName(o.flow, epoch);
      const f = state.flows.get(name);
      if (f === undefined) return { ...o, programmed: false, reason: 'unknown' };
      if (f.state.programmed) return { ...o, programmed: true };
      const reason = notProgrammedReason(f.state.why, 0, f.idleTimeoutS);
      if (reason === 'table-full') this.garbage.set(name, 'rejected');
      return { ...o, programmed: false, reason };
    });
  }

  private async installChunk(
    pins: PinRule[],
    epoch: bigint | undefined,
    check?: () => void,
  ): Promise<PinOutcome[]> {
    if (pins.length === 0) return [];
    const session = this.options.atomicity !== 'cleanup';
    const sessionName = `flowpin-${process.pid}-${++sessionCounter}`;
    const head = [
      'enable',
      session ? `configure session ${sessionName}` : 'configure',
      'directflow',
      'no shutdown',
    ];
    const blocks = pins.map((p) => pinCommands(p, epoch));
    const cmds = [...head, ...blocks.flat(), ...(session ? ['commit'] : [])];
    let r;
    try {
      r = await this.transport.runCmds(this.withEnable(cmds), 'json', check);
    } catch (err) {
      // Refused by its fence before it left: the switch never saw the session.
      if (session && !(err instanceof FenceExpiredError)) await this.abortSession(sessionName);
      throw err;
    }
    if (r.ok) return pins.map((p) => ({ flow: p.flow, ok: true }));
    if (session) await this.abortSession(sessionName);
    // Which pin's block holds the failing line.
    let line = r.failedIndex - head.length;
    let pinIndex = -1;
    for (let i = 0; i < blocks.length && line >= 0; i++) {
      const n = (blocks[i] as string[]).length;
      if (line < n) {
        pinIndex = i;
        break;
      }
      line -= n;
    }
    if (pinIndex < 0)
      throw new SwitchCommandError(this.name, commandText(cmds[r.failedIndex]), r.errors.join('; '), r.code);
    const failed = pins[pinIndex] as PinRule;
    const failure: PinOutcome = {
      flow: failed.flow,
      ok: false,
      error: `'${commandText(cmds[r.failedIndex])}': ${r.errors.join('; ')}`,
    };
    if (session) {
      // Nothing of the batch was applied: send it again without the refused pin.
      const rest = await this.installChunk(
        pins.filter((_, i) => i !== pinIndex),
        epoch,
        check,
      );
      return [...rest.slice(0, pinIndex), failure, ...rest.slice(pinIndex)];
    }
    // Line by line: what ran before stands; the refused flow is half-built and is removed.
    await this.removeNames([pinName(failed.flow, epoch)], 'halfBuilt', check);
    const done = pins.slice(0, pinIndex).map((p) => ({ flow: p.flow, ok: true }));
    return [...done, failure, ...(await this.installChunk(pins.slice(pinIndex + 1), epoch, check))];
  }

  private withEnable(cmds: string[]): (string | { cmd: string; input: string })[] {
    return cmds.map((c, i) => (i === 0 && c === 'enable' ? this.runner.enable : c));
  }

  private async abortSession(name: string): Promise<void> {
    await this.runner.run(['enable', `configure session ${name}`, 'abort'], 'json');
  }

  async removePins(flows: FlowSpec[], fence?: FenceToken): Promise<void> {
    const names = flows.map((f) => this.nameOf(f));
    for (const f of flows) this.names.delete(flowId(f));
    const size = this.capabilities.pinBatchSize * 4;
    for (let at = 0; at < names.length; at += size)
      await this.runner.run(
        ['enable', 'configure', 'directflow', ...names.slice(at, at + size).map(removeByName)],
        'json',
        0,
        fence?.check,
      );
    for (const n of names) {
      const why = this.garbage.get(n);
      if (why !== undefined) this.garbageCollected[why]++;
      this.forget(n);
    }
  }

  /**
   * Reads the table; changes nothing (what it finds to clean up is removed by removePins and removeStrays).
   */
  async listPins(): Promise<InstalledPin[]> {
    const state = await this.readDirectflow();
    const out: InstalledPin[] = [];
    const strays: string[] = [];
    const now = this.now();
    // A flow held under two names (an older epoch's beside a newer's): the newest is the pin, the
    // other a stray.
    const newest = new Map<string, bigint>();
    for (const f of state.flows.values()) {
      const parsed = parsePinName(f.name);
      if (parsed === undefined || f.nexthop === undefined) continue;
      const id = flowId(parsed.flow);
      if ((newest.get(id) ?? -1n) < parsed.epoch) newest.set(id, parsed.epoch);
    }
    this.names.clear();
    for (const f of state.flows.values()) {
      const parsed = parsePinName(f.name);
      if (parsed === undefined) continue;
      const flow = parsed.flow;
      if (f.nexthop === undefined || newest.get(flowId(flow)) !== parsed.epoch) {
        // Configured without its action (a line-by-line write cut short), or an older epoch's
        // name of a flow held under a newer one: not a pin.
        strays.push(f.name);
        continue;
      }
      if (f.name !== pinName(flow)) this.names.set(flowId(flow), f.name);
      const pin: InstalledPin = {
        name: f.name,
        flow,
        ...(parsed.epoch > 0n ? { epoch: parsed.epoch } : {}),
        nexthop: f.nexthop,
        programmed: f.state.programmed,
        packets: f.packets,
        bytes: f.bytes,
      };
      this.garbage.delete(f.name);
      if (!f.state.programmed) {
        const at = this.written.get(f.name);
        pin.reason = notProgrammedReason(
          f.state.why,
          at === undefined ? undefined : now - at,
          f.idleTimeoutS,
        );
        if (pin.reason === 'table-full') this.garbage.set(f.name, 'rejected');
        if (pin.reason === 'idle-timeout') this.garbage.set(f.name, 'expired');
      }
      out.push(pin);
    }
    this.strays = strays;
    return out;
  }

  /** Removes the half-built flows (no action) the last listing found. */
  async removeStrays(fence?: FenceToken): Promise<number> {
    const names = this.strays;
    this.strays = [];
    await this.removeNames(names, 'halfBuilt', fence?.check);
    return names.length;
  }

  /**
   * Capacity and programmed entries of every owner. Where any flow waits for space the table is full,
   * whatever the numbers say.
   */
  async pinTableUsage(): Promise<PinTableUsage> {
    const state = await this.readDirectflow();
    const used = state.programmed ?? [...state.flows.values()].filter((f) => f.state.programmed).length;
    // Entries the switch does not list (other features sharing the TCAM) show only as rejections:
    // the table held no more than what was programmed when the switch last rejected a flow.
    const capacity = Math.min(this.capabilities.pinTableSize, this.fullAt ?? Infinity);
    return { capacity, used: state.rejected > 0 ? Math.max(used, capacity) : used };
  }

  private async removeNames(
    names: string[],
    why: 'expired' | 'rejected' | 'halfBuilt',
    check?: () => void,
  ): Promise<void> {
    if (names.length === 0) return;
    await this.runner.run(
      ['enable', 'configure', 'directflow', ...names.map(removeByName)],
      'json',
      0,
      check,
    );
    this.garbageCollected[why] += names.length;
    for (const n of names) this.forget(n);
  }

  /** A flow removed from the switch: nothing more is known of it. */
  private forget(name: string): void {
    this.written.delete(name);
    this.garbage.delete(name);
    this.lastState?.flows.delete(name);
  }

  /**
   * A read of the table that starts after the caller's write was answered, shared: writes
   * answered while a read is under way wait for the next one, which then reads back all of
   * them at once (the read lists the whole table, whatever was written). Writes in flight
   * together cost one read, not one each.
   */
  private readAfter(names: string[]): Promise<DirectflowState> {
    const next = (this.nextRead ??= { names: [], state: undefined });
    for (const n of names) next.names.push(n);
    if (this.reading === undefined) return this.startRead();
    next.state ??= this.reading.then(
      () => this.startRead(),
      () => this.startRead(),
    );
    return next.state;
  }

  private startRead(): Promise<DirectflowState> {
    const batch = this.nextRead;
    this.nextRead = undefined;
    const read = this.readDirectflow(batch?.names ?? []);
    this.reading = read;
    const done = (): void => {
      if (this.reading === read) this.reading = undefined;
    };
    read.then(done, done);
    return read;
  }

  /**
   * `show directflow detail` in both forms (two requests: one runCmds has one format). With
   * `needed`, the text is read only if the JSON lacks the status of one of those flows.
   */
  private async readDirectflow(needed?: string[]): Promise<DirectflowState> {
    const readText = async (): Promise<string | undefined> => {
      const [t] = await this.runner.run(['enable', 'show directflow detail'], 'text', 1);
      return typeof t?.['output'] === 'string' ? t['output'] : undefined;
    };
    let json: ReturnType<typeof parseDirectflowJson>;
    let text: string | undefined;
    if (needed === undefined) {
      const [j, t] = await Promise.all([
        this.runner.run(['enable', 'show directflow detail'], 'json', 1),
        readText(),
      ]);
      json = parseDirectflowJson(j[0]);
      text = t;
    } else {
      json = parseDirectflowJson((await this.runner.run(['enable', 'show directflow detail'], 'json', 1))[0]);
      if (needed.some((n) => !json.status.has(n))) text = await readText();
    }
    const state = mergeDirectflow(json, parseDirectflowText(text));
    this.lastState = state;
    if (state.programmed !== undefined) {
      if (state.rejected > 0) this.fullAt = state.programmed;
      else if (this.fullAt !== undefined && state.programmed > this.fullAt) this.fullAt = undefined;
    }
    return state;
  }

  async groupMembers(vip: string): Promise<string[]> {
    const e = await this.resolver.vip(vip, true);
    return (e.route?.vias ?? []).flatMap((v) => (v.nexthopAddr === undefined ? [] : [v.nexthopAddr]));
  }

  addGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    return this.changeGroup('add', vip, nexthop, fence);
  }

  removeGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    return this.changeGroup('remove', vip, nexthop, fence);
  }

  private async changeGroup(
    op: 'add' | 'remove',
    vip: string,
    nexthop: string,
    fence: FenceToken | undefined,
  ): Promise<void> {
    const t = this.template;
    if (t === undefined)
      throw new SwitchUnsupportedError(
        this.name,
        `no group template configured (eapi.groupTemplate: static-ecmp or bgp-route-map); flowpin does not guess how VIP ${vip} is built`,
      );
    const lines = templatesFor(t, canonicalIp(vip).includes(':') ? 6 : 4)[op];
    try {
      await this.runner.run(
        lines.map((l) => fillTemplate(l, vip, nexthop)),
        'json',
        0,
        fence?.check,
      );
    } finally {
      this.resolver.forgetVip(vip);
    }
  }
}
