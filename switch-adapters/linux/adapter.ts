// The Linux router adapter: wires the router's parts together and holds its pins. A VIP's ECMP
// group is a resilient nexthop group over one nexthop object per server (groups.ts, nexthops.ts:
// each server's mark, table and `ip rule fwmark`); pins are nftables map elements giving the
// mark (nft.ts), each batch carrying the owner's fence element under high availability;
// look-ups are `ip route get` lines in `ip -j -force -batch -`; move prediction reads the real
// bucket table and each flow's bucket through a probe group (mark 0xfe). It refuses to start
// when the kernel's forwarding and its look-ups may disagree, and later holds back the look-ups
// of a VIP whose forwarded SYNs disagree (hash-check.ts). An existing group is adopted and its
// members handed over to flowpin's nexthop objects in place (adopt.ts). Every command runs
// through the configured prefix (exec.ts). Facts: docs/linux.md.

import { canonicalIp } from '../../lib/addr.js';
import {
  flowId,
  type AdapterCapabilities,
  type FlowSpec,
  type InstalledPin,
  type PinOutcome,
  type PinRule,
  type PinTableUsage,
  type ServerIdentity,
  type SwitchAdapter,
} from '../contract.js';
import { SwitchCommandError, SwitchProtocolError, SwitchUnsupportedError, unsupported } from '../errors.js';
import { checkEpoch, SwitchFencedError, type FenceToken } from '../fence.js';
import { groupSpec } from './adopt.js';
import { CommandRunner, firstLines } from './exec.js';
import { VipGroups, PROBE_MARK } from './groups.js';
import { HashCheck } from './hash-check.js';
import { Nexthops } from './nexthops.js';
import { batchRouteGet, parseNeighbours } from './iproute.js';
import {
  addPinLines,
  baseRuleset,
  deletePinLine,
  FENCE_SET,
  fenceKey,
  fenceLines,
  fenceRefused,
  mirrorRuleset,
  parseFence,
  parsePinMap,
  parseSetKeys,
  pinKey,
  TABLE,
} from './nft.js';
import { upkeep } from './upkeep.js';
import { checkIfname, checkIp, checkPort } from './validate.js';

export interface LinuxRouterOptions {
  switchName: string;
  /** Words before every command: [] (local), ['ip','netns','exec','R'], ['ssh','router']. */
  prefix: string[];
  vips: { address: string; nexthops: string[] }[];
  /** The router's client-facing devices: hashing is checked there and SYNs mirrored from there. */
  clientInterfaces: string[];
  /**
   * The router's server-facing devices: the servers' SYN-ACK, FIN and RST arriving there are mirrored too.
   */
  serverInterfaces?: string[];
  /** Device SYN/FIN/RST copies are `dup`ed to (a VXLAN or gretap/erspan device), if any. */
  mirrorDevice?: string;
  buckets?: number;
  /** First nexthop id the adapter uses (ids idBase .. idBase+4999). */
  idBase?: number;
  /** First routing table (tableBase + mark) and ip rule preference. */
  tableBase?: number;
  pinTableSize?: number;
  idleTimeoutS?: number;
  timeoutMs?: number;
  resolveBatchSize?: number;
  pinBatchSize?: number;
  /** Forwarded SYNs per family compared against look-ups at connect. */
  probeFlows?: number;
  probeTimeoutMs?: number;
}

export class LinuxRouterAdapter implements SwitchAdapter {
  readonly kind = 'linux';
  readonly capabilities: AdapterCapabilities;
  readonly run: CommandRunner;
  private readonly o: Required<Omit<LinuxRouterOptions, 'mirrorDevice'>> & {
    mirrorDevice: string | undefined;
  };
  private readonly hash: HashCheck;
  private readonly nexthops: Nexthops;
  private readonly groups: VipGroups;
  /** Client address -> the router's device toward it. */
  private readonly ingress = new Map<string, { dev: string; at: number }>();
  /** Pins as last written or listed: flow id -> mark. */
  private readonly written = new Map<string, number>();

  constructor(options: LinuxRouterOptions) {
    this.o = {
      serverInterfaces: [],
      buckets: 64,
      idBase: 7000,
      tableBase: 7000,
      pinTableSize: 65535,
      idleTimeoutS: 300,
      timeoutMs: 30_000,
      resolveBatchSize: 10_000,
      pinBatchSize: 5000,
      probeFlows: 8,
      probeTimeoutMs: 10_000,
      ...options,
      mirrorDevice: options.mirrorDevice,
    };
    if (this.o.buckets < 2 || this.o.buckets > 4096)
      throw new Error(`buckets must be 2..4096, got ${this.o.buckets}`);
    for (const d of [...this.o.clientInterfaces, ...this.o.serverInterfaces]) checkIfname(d);
    if (this.o.mirrorDevice !== undefined) checkIfname(this.o.mirrorDevice);
    this.o.vips = this.o.vips.map((v) => ({
      address: checkIp(v.address),
      nexthops: v.nexthops.map(checkIp),
    }));
    this.run = new CommandRunner({
      switchName: options.switchName,
      prefix: options.prefix,
      timeoutMs: this.o.timeoutMs,
    });
    this.hash = new HashCheck(this.run, {
      switchName: options.switchName,
      clientInterfaces: this.o.clientInterfaces,
      want: this.o.probeFlows,
    });
    const vips = (): readonly { address: string }[] => this.o.vips;
    const { idBase, tableBase } = this.o;
    this.nexthops = new Nexthops(this.run, { switchName: options.switchName, idBase, tableBase, vips });
    this.groups = new VipGroups(this.run, this.nexthops, this.hash, {
      switchName: options.switchName,
      idBase,
      tableBase,
      buckets: this.o.buckets,
      clientInterfaces: this.o.clientInterfaces,
      vips,
      beforeWrite: () => this.fenceGroupWrite(),
    });
    this.capabilities = {
      resolvesNexthop: true,
      resolveBatchSize: this.o.resolveBatchSize,
      pinBatchSize: this.o.pinBatchSize,
      nativeIdleTimeout: true,
      pinTableSize: this.o.pinTableSize,
      changesGroups: true,
      predictsMovedFlows: true,
      // A pin's state is read from the kernel's maps: the listing is as cheap as a few reads.
      readsPins: false,
      reportsTableUsage: true,
      readsProgrammedGroup: true,
      knowsServers: true,
      groupProgramDelayMs: 0,
      // The nft fence element: a stale owner's batch fails whole (nft.ts).
      fencing: 'refused',
    };
  }

  /** The owner's fence of the latest write (high availability): every nft batch starts with its element. */
  private fence: FenceToken | undefined;

  /**
   * Applies an nft batch (one transaction); with a fence, it starts with the fence lines, and a
   * batch refused there (another epoch holds the element) is a SwitchFencedError.
   */
  private async nftBatch(text: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const f = this.fence;
    const head = f === undefined ? '' : fenceLines(f.epoch).join('\n') + '\n';
    const r = await this.run.run(['nft', '-f', '-'], head + text);
    if (r.code !== 0 && f !== undefined && fenceRefused(r.stderr))
      throw new SwitchFencedError(this.name, f.epoch, `nft fence: ${firstLines(r.stderr)}`);
    return r;
  }

  private useFence(fence: FenceToken | undefined): void {
    if (fence !== undefined) this.fence = fence;
  }

  /**
   * Takes the fence for a new owner: the element (none, or an older epoch's) replaced by this
   * epoch in one transaction; refused if a newer epoch holds it, or if it changed meanwhile.
   */
  async fenceTakeover(fence: FenceToken): Promise<void> {
    const epoch = checkEpoch(fence.epoch);
    const held = parseFence(await this.run.json(['nft', '-j', 'list', 'set', 'inet', TABLE, FENCE_SET]));
    const newer = held.find((e) => e > epoch);
    if (newer !== undefined)
      throw new SwitchFencedError(this.name, epoch, `the nft fence holds epoch ${newer}, a newer owner's`);
    const set = `inet ${TABLE} ${FENCE_SET}`;
    const lines = [
      ...held.map((e) => `delete element ${set} { ${fenceKey(e)} }`),
      `add element ${set} { ${fenceKey(epoch)} }`,
    ];
    const r = await this.run.run(['nft', '-f', '-'], lines.join('\n') + '\n');
    if (r.code !== 0)
      throw new SwitchFencedError(this.name, epoch, `taking the nft fence: ${firstLines(r.stderr)}`);
    this.fence = fence;
  }

  private get name(): string {
    return this.o.switchName;
  }

  /**
   * A reload: the router's VIPs are set up when it connects (a resilient group and routes each,
   * and the hash check's probes), so VIPs added or removed take effect at a restart; nexthops of
   * a VIP go through the group writes like any change.
   */
  prepareVips(vips: readonly { address: string; nexthops: readonly string[] }[]): Promise<() => void> {
    const now = new Set(vips.map((v) => checkIp(v.address)));
    const had = new Set(this.o.vips.map((v) => v.address));
    const differ = [...now].filter((v) => !had.has(v)).concat([...had].filter((v) => !now.has(v)));
    if (differ.length > 0)
      return Promise.reject(
        new SwitchUnsupportedError(
          this.name,
          `the Linux router's VIPs are set up when flowpin connects (a resilient group and routes each, and their hash check): VIP ${differ.join(', ')} added or removed takes effect at a restart`,
        ),
      );
    return Promise.resolve(() => {
      this.o.vips = vips.map((v) => ({ address: checkIp(v.address), nexthops: v.nexthops.map(checkIp) }));
    });
  }

  async connect(): Promise<void> {
    await this.hash.checkPolicy();
    const all = new Map((await this.nexthops.readAll()).map((nh) => [nh.id, nh]));
    for (const v of this.o.vips) await this.groups.adoptOrCreate(v.address, v.nexthops, all);
    await this.groups.ensureProbeGroups();
    await this.nft(baseRuleset({ pinTableSize: this.o.pinTableSize, idleTimeoutS: this.o.idleTimeoutS }));
    if (this.o.mirrorDevice !== undefined)
      await this.nft(mirrorRuleset(this.o.mirrorDevice, this.o.clientInterfaces, this.o.serverInterfaces));
    await this.hash.probe(
      this.o.vips.map((v) => v.address),
      this.o.probeTimeoutMs,
      (lines) => this.routeGet(lines),
    );
    await this.listPins();
  }

  /** VIPs whose look-ups are held back (forwarding and look-ups disagreed lately), one line each. */
  problems(): string[] {
    return this.hash.problems();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  readPins(): Promise<(InstalledPin | undefined)[]> {
    return unsupported(this.name, 'readPins');
  }

  // ---- groups (groups.ts, nexthops.ts)

  async groupMembers(vip: string): Promise<string[]> {
    const obj = await this.groups.read(this.groups.group(vip));
    return (obj.group ?? []).map((e) => this.nexthops.addrOf(e.id) ?? `nhid:${e.id}`);
  }

  /** The kernel forwards with the group it holds: configured is programmed. */
  groupProgrammed(vip: string): Promise<string[]> {
    return this.groupMembers(vip);
  }

  async addGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    this.useFence(fence);
    const g = this.groups.group(vip);
    const id = await this.nexthops.ensure(nexthop);
    const entries = (await this.groups.read(g)).group ?? [];
    if (entries.some((e) => e.id === id)) return;
    await this.groups.write(g, groupSpec([...entries, { id, weight: 1 }]));
  }

  async removeGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    this.useFence(fence);
    const g = this.groups.group(vip);
    const id = this.nexthops.idOf(checkIp(nexthop));
    const entries = (await this.groups.read(g)).group ?? [];
    if (id === undefined || !entries.some((e) => e.id === id)) return;
    const rest = entries.filter((e) => e.id !== id);
    if (rest.length === 0)
      throw new SwitchCommandError(
        this.name,
        `ip nexthop replace id ${g.groupId}`,
        `${nexthop} is the last member of ${vip}'s group`,
        0,
      );
    // Weights kept: writing ids alone would set every weight to 1 and move buckets.
    await this.groups.write(g, groupSpec(rest));
  }

  /**
   * Before a group write under a fence: `ip nexthop` is not nft, so a fence-only nft batch goes
   * first and the group is written only if it succeeds. A takeover between the two is the window
   * the group write is not fenced in (one command's time; docs/fencing.md).
   */
  private async fenceGroupWrite(): Promise<void> {
    if (this.fence === undefined) return;
    const r = await this.nftBatch('');
    if (r.code !== 0)
      throw new SwitchCommandError(this.name, 'nft -f - (fence)', firstLines(r.stderr), r.code);
  }

  // ---- look-ups

  private routeGet(lines: string[]): Promise<({ gateway?: string; dev?: string } | undefined)[]> {
    return batchRouteGet(this.run, lines, this.o.resolveBatchSize);
  }

  /** The router's device toward each client (the `iif` of a look-up), cached for a minute. */
  private async learnIngress(clients: string[]): Promise<void> {
    const now = Date.now();
    const missing = [...new Set(clients)].filter(
      (c) => (this.ingress.get(c)?.at ?? -Infinity) < now - 60_000,
    );
    if (missing.length === 0) return;
    const answers = await this.routeGet(missing.map((c) => `route get ${c}`));
    missing.forEach((c, i) => {
      const dev = answers[i]?.dev;
      if (dev !== undefined) this.ingress.set(c, { dev, at: now });
    });
  }

  private lookupLine(f: FlowSpec, mark?: number): string | undefined {
    const dev = this.ingress.get(f.src)?.dev;
    if (dev === undefined) return undefined;
    checkPort(f.sport);
    checkPort(f.dport);
    return `route get ${f.dst} from ${f.src} iif ${dev}${mark === undefined ? '' : ` mark ${mark}`} ipproto tcp sport ${f.sport} dport ${f.dport}`;
  }

  /** Valid flows only reach a command line; others answer undefined. */
  private async lookups(flows: FlowSpec[], mark?: number): Promise<({ gateway?: string } | undefined)[]> {
    const ok = flows.map((f) => {
      try {
        return { ...f, src: checkIp(f.src), dst: checkIp(f.dst) };
      } catch {
        return undefined; // not an address: no command line sees it, and there is no answer
      }
    });
    await this.learnIngress(ok.flatMap((f) => (f === undefined ? [] : [f.src])));
    const idx: number[] = [];
    const lines: string[] = [];
    ok.forEach((f, i) => {
      const line = f === undefined ? undefined : this.lookupLine(f, mark);
      if (line !== undefined) {
        idx.push(i);
        lines.push(line);
      }
    });
    const answers = await this.routeGet(lines);
    const out = new Array<{ gateway?: string } | undefined>(flows.length).fill(undefined);
    idx.forEach((i, k) => (out[i] = answers[k]));
    return out;
  }

  async resolve(flows: FlowSpec[]): Promise<(string | undefined)[]> {
    const answers = await this.lookups(flows);
    return flows.map((f, i) => {
      const gw = answers[i]?.gateway;
      // A family whose hashing is not checked yet, or a VIP held back, gets no answer: never pin from a
      // guess.
      if (gw === undefined || !this.answersFor(f)) return undefined;
      const a = checkIp(gw);
      return this.nexthops.isMine(this.nexthops.idOf(a) ?? -1) ? a : undefined;
    });
  }

  // ---- move prediction

  /** Whether look-ups answer for the flow's VIP now (hash-check.ts). */
  private answersFor(f: FlowSpec): boolean {
    try {
      return this.hash.answers(f.family, checkIp(f.dst));
    } catch {
      return false; // not an address: no answer
    }
  }

  async movedByAdd(vip: string, nexthop: string, flows: FlowSpec[]): Promise<boolean[]> {
    const g = this.groups.group(vip);
    const obj = await this.groups.read(g);
    const table = await this.groups.buckets(g.groupId);
    const probeTable = await this.groups.buckets(this.groups.probeGroupId(g.family));
    if (table.length !== probeTable.length)
      throw new SwitchProtocolError(
        this.name,
        `probe group has ${probeTable.length} buckets, ${vip}'s group ${table.length}`,
      );
    const bucketOfDummy = new Map<number, number>();
    probeTable.forEach((id, b) => bucketOfDummy.set(id, b));
    const newId = this.nexthops.idOf(checkIp(nexthop)) ?? -1;
    const entries = obj.group ?? [];
    if (entries.some((e) => e.id === newId)) return flows.map(() => false);
    const { moved } = upkeep(table, [...entries, { id: newId, weight: 1 }]);
    const movedSet = new Set(moved);
    const answers = await this.lookups(flows, PROBE_MARK);
    return flows.map((f, i) => {
      const gw = answers[i]?.gateway;
      const dummy = gw === undefined ? undefined : this.groups.probeDummyOf(gw);
      const bucket = dummy === undefined ? undefined : bucketOfDummy.get(dummy);
      // A flow whose bucket cannot be told is counted as moved (it gets a pin).
      return bucket === undefined || !this.answersFor(f) ? true : movedSet.has(bucket);
    });
  }

  // ---- pins

  private async nft(text: string): Promise<void> {
    await this.run.ok(['nft', '-f', '-'], text);
  }

  /** The servers' MACs from the neighbour table (`ip -j neigh show`), for telling mirrored replies. */
  async serverIdentities(): Promise<ServerIdentity[]> {
    const out: ServerIdentity[] = [];
    for (const n of parseNeighbours(await this.run.json(['ip', '-j', 'neigh', 'show']))) {
      let nexthop: string;
      try {
        nexthop = canonicalIp(n.address);
      } catch (err) {
        throw new SwitchProtocolError(
          this.name,
          `ip -j neigh show: not an address: ${n.address} (${err instanceof Error ? err.message : String(err)})`,
          { cause: err },
        );
      }
      out.push({ nexthop, mac: n.mac, interface: n.dev });
    }
    return out;
  }

  async installPins(pins: PinRule[], fence?: FenceToken): Promise<PinOutcome[]> {
    this.useFence(fence);
    const out: PinOutcome[] = [];
    for (let at = 0; at < pins.length; at += this.o.pinBatchSize)
      out.push(...(await this.installChunk(pins.slice(at, at + this.o.pinBatchSize))));
    return out;
  }

  private async pinLines(p: PinRule): Promise<{ lines: string[]; mark: number }> {
    const nh = checkIp(p.nexthop);
    await this.nexthops.ensure(nh);
    const mark = this.nexthops.markOf(nh) as number;
    const f = {
      ...p.flow,
      src: checkIp(p.flow.src),
      dst: checkIp(p.flow.dst),
      sport: checkPort(p.flow.sport),
      dport: checkPort(p.flow.dport),
    };
    const prev = this.written.get(flowId(f));
    return {
      lines: prev === mark ? [] : addPinLines(f, mark, this.o.idleTimeoutS, prev !== undefined),
      mark,
    };
  }

  /** One transaction for the chunk; if it fails, halves until the failing pins are alone. */
  private async installChunk(pins: PinRule[]): Promise<PinOutcome[]> {
    if (pins.length === 0) return [];
    let prepared: { lines: string[]; mark: number }[];
    try {
      prepared = [];
      for (const p of pins) prepared.push(await this.pinLines(p));
    } catch (err) {
      if (pins.length === 1)
        return [
          {
            flow: (pins[0] as PinRule).flow,
            ok: false,
            error: err instanceof Error ? err.message : String(err),
            programmed: false,
            reason: 'rejected',
          },
        ];
      throw err;
    }
    const text = prepared.flatMap((p) => p.lines).join('\n');
    const r = text === '' ? { code: 0, stdout: '', stderr: '' } : await this.nftBatch(text + '\n');
    if (r.code === 0) {
      pins.forEach((p, i) => this.written.set(flowId(p.flow), (prepared[i] as { mark: number }).mark));
      return pins.map((p) => ({ flow: p.flow, ok: true, programmed: true }));
    }
    if (pins.length > 1) {
      const half = Math.ceil(pins.length / 2);
      return [
        ...(await this.installChunk(pins.slice(0, half))),
        ...(await this.installChunk(pins.slice(half))),
      ];
    }
    const p = pins[0] as PinRule;
    const why = firstLines(r.stderr);
    if (/File exists|No such file/.test(why)) {
      // Our idea of what is written was wrong: read it back and try once more.
      await this.listPins();
      const again = await this.pinLines(p);
      const r2 = await this.nftBatch(again.lines.join('\n') + '\n');
      if (r2.code === 0) {
        this.written.set(flowId(p.flow), again.mark);
        return [{ flow: p.flow, ok: true, programmed: true }];
      }
    }
    // A full set answers ENFILE (net/netfilter/nf_tables_api.c, nft_add_set_elem), which nft
    // prints as strerror: "Too many open files in system".
    const full = /Too many open files in system/.test(why);
    return [
      {
        flow: p.flow,
        ok: false,
        error: `nft -f -: ${why}`,
        programmed: false,
        reason: full ? 'table-full' : 'rejected',
      },
    ];
  }

  async removePins(flows: FlowSpec[], fence?: FenceToken): Promise<void> {
    this.useFence(fence);
    const mine = flows.filter((f) => this.written.has(flowId(f)));
    for (let at = 0; at < mine.length; at += this.o.pinBatchSize)
      await this.removeChunk(mine.slice(at, at + this.o.pinBatchSize));
  }

  private async removeChunk(flows: FlowSpec[]): Promise<void> {
    if (flows.length === 0) return;
    const r = await this.nftBatch(flows.map(deletePinLine).join('\n') + '\n');
    if (r.code === 0) {
      for (const f of flows) this.written.delete(flowId(f));
      return;
    }
    if (flows.length > 1) {
      const half = Math.ceil(flows.length / 2);
      await this.removeChunk(flows.slice(0, half));
      await this.removeChunk(flows.slice(half));
      return;
    }
    const f = flows[0] as FlowSpec;
    // Already gone (expired on the router): removing it is done.
    if (/No such file/.test(r.stderr)) {
      this.written.delete(flowId(f));
      return;
    }
    throw new SwitchCommandError(
      this.name,
      this.run.text(['nft', '-f', '-']) + ` <<< ${deletePinLine(f)}`,
      firstLines(r.stderr),
      r.code,
    );
  }

  async listPins(): Promise<InstalledPin[]> {
    const [m4, m6, seen] = await Promise.all([
      this.run.json(['nft', '-j', 'list', 'map', 'inet', TABLE, 'pins4']),
      this.run.json(['nft', '-j', 'list', 'map', 'inet', TABLE, 'pins6']),
      this.run.json(['nft', '-j', 'list', 'set', 'inet', TABLE, 'seen6']),
    ]);
    await this.hash.recheck((lines) => this.routeGet(lines));
    let e4;
    let e6;
    try {
      e4 = parsePinMap(m4, 4);
      e6 = parsePinMap(m6, 6);
    } catch (err) {
      throw new SwitchProtocolError(
        this.name,
        `unreadable pin map: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const alive6 = new Set(parseSetKeys(seen).map((k) => k.join(' . ')));
    // IPv6 pins idle past the timeout (the kernel ages IPv4 ones itself): listed as timed out,
    // and removed by the reconciler's round like any pin the switch timed out.
    const idle6 = new Set(e6.filter((e) => !alive6.has(pinKey(e.flow))).map((e) => flowId(e.flow)));
    const rules = await this.nexthops.markTables();
    this.written.clear();
    const out: InstalledPin[] = [];
    for (const e of [...e4, ...e6]) {
      this.written.set(flowId(e.flow), e.mark);
      const nexthop = this.nexthops.addrOfMark(e.mark);
      const routed = rules.has(`${e.flow.family}:${e.mark}`);
      const idle = idle6.has(flowId(e.flow));
      const pin: InstalledPin = {
        name: `${e.flow.src}.${e.flow.sport}-${e.flow.dst}.${e.flow.dport}`,
        flow: e.flow,
        nexthop: nexthop ?? `mark:${e.mark}`,
        programmed: nexthop !== undefined && routed && !idle,
        packets: e.packets,
        bytes: e.bytes,
      };
      if (!pin.programmed) pin.reason = idle ? 'idle-timeout' : 'rejected';
      out.push(pin);
    }
    return out;
  }

  /** Pins are the kernel's map elements, listed whole: nothing is left half-built to remove. */
  removeStrays(): Promise<number> {
    return Promise.resolve(0);
  }

  async pinTableUsage(): Promise<PinTableUsage> {
    const pins = await this.listPins();
    const n4 = pins.filter((p) => p.flow.family === 4).length;
    const n6 = pins.length - n4;
    // Each family has its own map of pinTableSize; the tighter one bounds what fits.
    return { capacity: this.o.pinTableSize, used: Math.max(n4, n6) };
  }
}
