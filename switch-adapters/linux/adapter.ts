// The Linux router adapter: a VIP's ECMP group is a resilient nexthop group (idle_timer 0,
// unbalanced_timer 0) over one nexthop object per server, kept while the server is out of the
// group; pins are nftables map elements giving a mark, `ip rule fwmark` and a routing table
// per nexthop; look-ups are `ip route get` lines in `ip -j -force -batch -`; move prediction
// reads the real bucket table and each flow's bucket through a probe group (mark 0xfe). It
// refuses to start when the kernel's forwarding and its look-ups may disagree, and later holds
// back the look-ups of a VIP whose forwarded SYNs disagree (hash-check.ts). An existing group is
// adopted and its members handed over to flowpin's nexthop objects in place (adopt.ts). Every
// command runs through the configured prefix (exec.ts). Facts: docs/linux.md.

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
import { adoptionRefusal, groupSpec, handOverStep } from './adopt.js';
import { CommandRunner, firstLines } from './exec.js';
import { HashCheck } from './hash-check.js';
import {
  batchRouteGet,
  parseBuckets,
  parseNeighbours,
  parseNexthops,
  type NexthopObject,
} from './iproute.js';
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
import { upkeep, type GroupEntry } from './upkeep.js';
import { checkIfname, checkIp, checkPort, familyOf } from './validate.js';

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

const PROBE_MARK = 0xfe;
const MAX_MARK = 0xfd;

interface VipGroup {
  vip: string;
  family: 4 | 6;
  groupId: number;
}

export class LinuxRouterAdapter implements SwitchAdapter {
  readonly kind = 'linux';
  readonly capabilities: AdapterCapabilities;
  readonly run: CommandRunner;
  private readonly o: Required<Omit<LinuxRouterOptions, 'mirrorDevice'>> & {
    mirrorDevice: string | undefined;
  };
  private readonly hash: HashCheck;
  /** Nexthop address -> nexthop object id. */
  private readonly nhIds = new Map<string, number>();
  private readonly nhAddr = new Map<number, string>();
  /** Nexthop address -> mark (1..253), the same for both families' tables. */
  private readonly marks = new Map<string, number>();
  private readonly groups = new Map<string, VipGroup>();
  /** Client address -> the router's device toward it. */
  private readonly ingress = new Map<string, { dev: string; at: number }>();
  /** Pins as last written or listed: flow id -> mark. */
  private readonly written = new Map<string, number>();
  private probeDummy = new Map<string, number>();
  /** Nexthops whose pin table and rule were checked by this process. */
  private readonly routed = new Set<string>();

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
    const all = new Map((await this.readNexthops()).map((nh) => [nh.id, nh]));
    for (const v of this.o.vips) await this.adoptOrCreateGroup(v.address, v.nexthops, all);
    await this.ensureProbeGroups();
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

  // ---- groups

  private async readNexthops(): Promise<NexthopObject[]> {
    const all = parseNexthops(await this.run.json(['ip', '-j', 'nexthop', 'show']));
    for (const nh of all) {
      if (nh.gateway === undefined || nh.id < this.o.idBase || nh.id >= this.o.idBase + 1000) continue;
      const addr = canonicalIp(nh.gateway);
      this.nhIds.set(addr, nh.id);
      this.nhAddr.set(nh.id, addr);
      this.marks.set(addr, nh.id - this.o.idBase + 1);
    }
    return all;
  }

  /**
   * The nexthop object of a server, made (with its pin table and rules) if missing; `dev`: its device (else
   * the route's).
   */
  private async nexthopId(addr: string, dev?: string): Promise<number> {
    const a = checkIp(addr);
    const known = this.nhIds.get(a);
    if (known !== undefined) {
      if (!this.routed.has(a)) await this.ensurePinRoutes(a);
      return known;
    }
    let id = this.o.idBase;
    while (this.nhAddr.has(id)) id++;
    if (id - this.o.idBase + 1 > MAX_MARK)
      throw new SwitchCommandError(this.name, `ip nexthop add via ${a}`, `more than ${MAX_MARK} nexthops`, 0);
    const [route] =
      dev === undefined
        ? ((await this.run.json(['ip', '-j', 'route', 'get', a])) as { dev?: string }[])
        : [{ dev }];
    if (route?.dev === undefined)
      throw new SwitchCommandError(this.name, `ip route get ${a}`, 'no device toward the nexthop', 0);
    await this.run.ok([
      'ip',
      'nexthop',
      'replace',
      'id',
      String(id),
      'via',
      a,
      'dev',
      checkIfname(route.dev),
    ]);
    this.nhIds.set(a, id);
    this.nhAddr.set(id, a);
    this.marks.set(a, id - this.o.idBase + 1);
    await this.ensurePinRoutes(a);
    return id;
  }

  /**
   * Table tableBase+mark routes every VIP of the nexthop's family through it; a rule sends the mark there.
   */
  private async ensurePinRoutes(addr: string): Promise<void> {
    const mark = this.marks.get(addr) as number;
    const id = this.nhIds.get(addr) as number;
    const fam = familyOf(addr);
    const table = this.o.tableBase + mark;
    const lines = this.o.vips
      .filter((v) => familyOf(v.address) === fam)
      .map((v) => `route replace ${v.address}/${fam === 4 ? 32 : 128} nhid ${id} table ${table}`);
    await this.run.ok(['ip', '-batch', '-'], lines.join('\n') + '\n');
    await this.ensureRule(fam, mark, table);
    this.routed.add(addr);
  }

  private async ensureRule(fam: 4 | 6, mark: number, table: number): Promise<void> {
    const rules = (await this.run.json([
      'ip',
      `-${fam}`,
      '-j',
      'rule',
      'show',
      'pref',
      String(this.o.tableBase),
    ])) as { table?: string; fwmark?: string }[];
    if (rules.some((r) => r.table === String(table))) return;
    await this.run.ok([
      'ip',
      `-${fam}`,
      'rule',
      'add',
      'pref',
      String(this.o.tableBase),
      'fwmark',
      `${mark}/0xff`,
      'lookup',
      String(table),
    ]);
  }

  /** Adopts the VIP's existing resilient group (handing its members over, adopt.ts), or makes one. */
  private async adoptOrCreateGroup(
    vip: string,
    nexthops: string[],
    all: ReadonlyMap<number, NexthopObject>,
  ): Promise<void> {
    const fam = familyOf(vip);
    const routes = (await this.run.json([
      'ip',
      `-${fam}`,
      '-j',
      'route',
      'show',
      'exact',
      `${vip}/${fam === 4 ? 32 : 128}`,
    ])) as { nhid?: number }[];
    const nhid = routes[0]?.nhid;
    if (nhid !== undefined) {
      const [obj] = parseNexthops(await this.run.json(['ip', '-j', 'nexthop', 'show', 'id', String(nhid)]));
      const refused = adoptionRefusal(vip, obj ?? { id: nhid }, this.o.buckets);
      if (refused !== undefined) throw new SwitchUnsupportedError(this.name, `cannot adopt: ${refused}`);
      const g: VipGroup = { vip, family: fam, groupId: nhid };
      await this.handOver(g, obj?.group ?? [], all);
      for (const e of (await this.readGroup(g)).group ?? [])
        await this.ensurePinRoutes(this.nhAddr.get(e.id) as string);
      this.groups.set(vip, g);
      return;
    }
    if (nexthops.length === 0)
      throw new SwitchProtocolError(this.name, `VIP ${vip} has no route and no nexthops configured`);
    const ids: number[] = [];
    for (const n of nexthops) ids.push(await this.nexthopId(n));
    const groupId = this.o.idBase + 1000 + this.o.vips.findIndex((v) => v.address === vip);
    try {
      await this.run.ok([
        'ip',
        'nexthop',
        'replace',
        'id',
        String(groupId),
        'group',
        ids.join('/'),
        'type',
        'resilient',
        'buckets',
        String(this.o.buckets),
        'idle_timer',
        '0',
        'unbalanced_timer',
        '0',
      ]);
      await this.run.ok([
        'ip',
        'route',
        'replace',
        `${vip}/${fam === 4 ? 32 : 128}`,
        'nhid',
        String(groupId),
      ]);
    } finally {
      this.hash.groupWritten(vip);
    }
    this.groups.set(vip, { vip, family: fam, groupId });
  }

  /**
   * Replaces each member of an adopted group that is not one of flowpin's nexthop objects by
   * flowpin's object for the same gateway and device, one at a time, in place (adopt.ts: no
   * bucket changes server). Checked before each write with the upkeep model and after it on the
   * bucket table; the replaced objects are left for the operator to delete.
   */
  private async handOver(
    g: VipGroup,
    members: readonly GroupEntry[],
    all: ReadonlyMap<number, NexthopObject>,
  ): Promise<void> {
    let entries = [...members];
    const serverOf = (id: number): string | undefined => {
      const gw = this.nhAddr.get(id) ?? all.get(id)?.gateway;
      return gw === undefined ? undefined : canonicalIp(gw);
    };
    for (let at = 0; at < entries.length; at++) {
      const e = entries[at] as GroupEntry;
      if (this.nhAddr.has(e.id)) continue;
      const old = all.get(e.id);
      const unsupported = (why: string): SwitchUnsupportedError =>
        new SwitchUnsupportedError(
          this.name,
          `cannot adopt VIP ${g.vip}'s group ${g.groupId}: ${why}; fix: make the group's members plain nexthops via one gateway each, or remove the VIP's route and let flowpin make the group`,
        );
      if (old?.gateway === undefined) throw unsupported(`member ${e.id} is not a nexthop via a gateway`);
      const addr = checkIp(old.gateway);
      if (familyOf(addr) !== g.family)
        throw unsupported(`member ${e.id} is via ${addr}, not an IPv${g.family} gateway`);
      const mine = this.nhIds.get(addr);
      if (mine !== undefined && entries.some((x) => x.id === mine))
        throw unsupported(`members ${e.id} and ${mine} lead to the same gateway ${addr}`);
      const table = await this.buckets(g.groupId);
      const id = await this.nexthopId(addr, old.dev);
      const step = handOverStep(table, entries, at, id, serverOf);
      if ('refused' in step) throw unsupported(step.refused);
      await this.writeGroup(g, groupSpec(step.entries));
      const after = await this.buckets(g.groupId);
      const moved = after.filter((owner, b) => serverOf(owner) !== serverOf(table[b] as number)).length;
      if (moved > 0)
        throw new SwitchProtocolError(
          this.name,
          `handing over VIP ${g.vip}'s member ${e.id} (${addr}) to nexthop ${id} moved ${moved} buckets to other servers`,
        );
      entries = step.entries;
    }
  }

  private async buckets(groupId: number): Promise<number[]> {
    return parseBuckets(
      await this.run.json(['ip', '-j', 'nexthop', 'bucket', 'show', 'id', String(groupId)]),
    );
  }

  private group(vip: string): VipGroup {
    const g = this.groups.get(canonicalIp(vip));
    if (g === undefined)
      throw new SwitchCommandError(
        this.name,
        `ip nexthop show (VIP ${vip})`,
        'no such VIP on this router',
        0,
      );
    return g;
  }

  private async readGroup(g: VipGroup): Promise<NexthopObject> {
    const [obj] = parseNexthops(
      await this.run.json(['ip', '-j', 'nexthop', 'show', 'id', String(g.groupId)]),
    );
    if (obj?.group === undefined)
      throw new SwitchProtocolError(this.name, `nexthop ${g.groupId} (VIP ${g.vip}) is no longer a group`);
    return obj;
  }

  async groupMembers(vip: string): Promise<string[]> {
    const obj = await this.readGroup(this.group(vip));
    return (obj.group ?? []).map((e) => this.nhAddr.get(e.id) ?? `nhid:${e.id}`);
  }

  /** The kernel forwards with the group it holds: configured is programmed. */
  groupProgrammed(vip: string): Promise<string[]> {
    return this.groupMembers(vip);
  }

  async addGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    this.useFence(fence);
    const g = this.group(vip);
    const id = await this.nexthopId(nexthop);
    const entries = (await this.readGroup(g)).group ?? [];
    if (entries.some((e) => e.id === id)) return;
    await this.writeGroup(g, groupSpec([...entries, { id, weight: 1 }]));
  }

  async removeGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    this.useFence(fence);
    const g = this.group(vip);
    const id = this.nhIds.get(checkIp(nexthop));
    const entries = (await this.readGroup(g)).group ?? [];
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
    await this.writeGroup(g, groupSpec(rest));
  }

  /**
   * Replaces a VIP's group members; SYNs forwarded before this are no longer checked (they may have left by
   * the old group).
   */
  private async writeGroup(g: VipGroup, members: string): Promise<void> {
    // `ip nexthop` is not nft: under a fence, a fence-only nft batch goes first and the group is
    // written only if it succeeds. A takeover between the two is the window the group write is
    // not fenced in (one command's time; docs/fencing.md).
    if (this.fence !== undefined) {
      const r = await this.nftBatch('');
      if (r.code !== 0)
        throw new SwitchCommandError(this.name, 'nft -f - (fence)', firstLines(r.stderr), r.code);
    }
    try {
      await this.run.ok([
        'ip',
        'nexthop',
        'replace',
        'id',
        String(g.groupId),
        'group',
        members,
        'type',
        'resilient',
      ]);
    } finally {
      this.hash.groupWritten(g.vip);
    }
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
      return this.nhAddr.has(this.nhIds.get(a) ?? -1) ? a : undefined;
    });
  }

  // ---- move prediction

  /** Probe groups (one per family): one onlink dummy per bucket, reached with mark 0xfe. */
  private async ensureProbeGroups(): Promise<void> {
    const dev = checkIfname(this.o.clientInterfaces[0] ?? 'lo');
    const table = this.o.tableBase + PROBE_MARK;
    for (const fam of [4, 6] as const) {
      const vips = this.o.vips.filter((v) => familyOf(v.address) === fam);
      if (vips.length === 0) continue;
      const base = this.o.idBase + (fam === 4 ? 2000 : 2000 + 4096 + 8);
      const groupId = base - 1;
      const lines: string[] = [];
      const ids: number[] = [];
      for (let i = 0; i < this.o.buckets; i++) {
        const gw = fam === 4 ? `100.127.${i >> 8}.${(i & 255) + 0}` : `fd7f:f10::${(i + 1).toString(16)}`;
        lines.push(`nexthop replace id ${base + i} via ${gw} dev ${dev} onlink`);
        this.probeDummy.set(canonicalIp(gw), base + i);
        ids.push(base + i);
      }
      const exists = (await this.run.run(['ip', 'nexthop', 'show', 'id', String(groupId)])).code === 0;
      if (!exists)
        lines.push(
          `nexthop add id ${groupId} group ${ids.join('/')} type resilient buckets ${this.o.buckets} idle_timer 0 unbalanced_timer 0`,
        );
      for (const v of vips)
        lines.push(`route replace ${v.address}/${fam === 4 ? 32 : 128} nhid ${groupId} table ${table}`);
      await this.run.ok(['ip', '-batch', '-'], lines.join('\n') + '\n');
      await this.ensureRule(fam, PROBE_MARK, table);
    }
  }

  /** Whether look-ups answer for the flow's VIP now (hash-check.ts). */
  private answersFor(f: FlowSpec): boolean {
    try {
      return this.hash.answers(f.family, checkIp(f.dst));
    } catch {
      return false; // not an address: no answer
    }
  }

  async movedByAdd(vip: string, nexthop: string, flows: FlowSpec[]): Promise<boolean[]> {
    const g = this.group(vip);
    const obj = await this.readGroup(g);
    const table = await this.buckets(g.groupId);
    const probeGroup = this.o.idBase + (g.family === 4 ? 2000 : 2000 + 4096 + 8) - 1;
    const probeTable = await this.buckets(probeGroup);
    if (table.length !== probeTable.length)
      throw new SwitchProtocolError(
        this.name,
        `probe group has ${probeTable.length} buckets, ${vip}'s group ${table.length}`,
      );
    const bucketOfDummy = new Map<number, number>();
    probeTable.forEach((id, b) => bucketOfDummy.set(id, b));
    const newId = this.nhIds.get(checkIp(nexthop)) ?? -1;
    const entries = obj.group ?? [];
    if (entries.some((e) => e.id === newId)) return flows.map(() => false);
    const { moved } = upkeep(table, [...entries, { id: newId, weight: 1 }]);
    const movedSet = new Set(moved);
    const answers = await this.lookups(flows, PROBE_MARK);
    return flows.map((f, i) => {
      const gw = answers[i]?.gateway;
      const dummy = gw === undefined ? undefined : this.probeDummy.get(checkIp(gw));
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
    await this.nexthopId(nh);
    const mark = this.marks.get(nh) as number;
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
    const rules = await this.markTables();
    this.written.clear();
    const out: InstalledPin[] = [];
    for (const e of [...e4, ...e6]) {
      this.written.set(flowId(e.flow), e.mark);
      const nexthop = [...this.marks].find(([, m]) => m === e.mark)?.[0];
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

  /** `family:mark` of every mark whose ip rule exists (a pin without one does not forward). */
  private async markTables(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const fam of [4, 6] as const) {
      const rules = (await this.run.json([
        'ip',
        `-${fam}`,
        '-j',
        'rule',
        'show',
        'pref',
        String(this.o.tableBase),
      ])) as { fwmark?: string; table?: string }[];
      for (const r of rules) {
        const mark = Number(r.fwmark);
        if (Number.isInteger(mark) && r.table === String(this.o.tableBase + mark)) out.add(`${fam}:${mark}`);
      }
    }
    return out;
  }

  async pinTableUsage(): Promise<PinTableUsage> {
    const pins = await this.listPins();
    const n4 = pins.filter((p) => p.flow.family === 4).length;
    const n6 = pins.length - n4;
    // Each family has its own map of pinTableSize; the tighter one bounds what fits.
    return { capacity: this.o.pinTableSize, used: Math.max(n4, n6) };
  }
}
