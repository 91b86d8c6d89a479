// The gNMI / OpenConfig adapter. Pins are policy-forwarding rules of flowpin's own policy,
// applied to the configured ingress interfaces; many rules go in one SetRequest, which the
// target applies as one transaction (gNMI 3.4.3), so a refused batch leaves nothing half
// applied. A batch refused for capacity (RESOURCE_EXHAUSTED) is split until what fits is
// installed; the rest is reported `table-full`. Rule sequence ids are recovered from the
// device at connect, and every listing takes the device's word for which rule holds which
// flow: a Set whose reply was lost (deadline, broken connection) may have been applied, so
// its sequence ids stay reserved until a listing shows them absent or adopts them; a flow
// held by more than one rule keeps one, and the others (and rules in flowpin's policy it
// cannot read) are deleted once the kept rule is programmed (by removeStrays: the listing
// changes nothing), never reused while they exist;
// freed ids are taken again from a free list. A rule is programmed when its applied state
// (`state/sequence-id`) is present; pins just written are read back by naming their rules
// (readPins, a Subscribe ONCE) instead of listing the whole policy; counters come from the
// SAMPLE stream (counters.ts) where it has sent a sample since the previous listing, within
// two sample intervals, else from a Get of the rules' state. gNMI has no "which nexthop does this flow take"
// call: resolvesNexthop is
// false and the controller pins in its safe mode. Group members are list entries under a
// configurable path (static-route next-hops by default). Under high availability every Set
// carries the owner's epoch as its master-arbitration election id (arbitration.ts), and the
// target refuses a lower one than it has seen (PERMISSION_DENIED): a stale owner's Set fails.

import { status } from '@grpc/grpc-js';
import { canonicalIp } from '../../lib/addr.js';
import {
  parsePath,
  type CapabilityResponse,
  type Encoding,
  type Notification,
  type Path,
  type PathElem,
  type SetRequest,
  type SetResponse,
  type Update,
} from '../../proto/gnmi.js';
import {
  flowId,
  type AdapterCapabilities,
  type FenceToken,
  type FlowSpec,
  type InstalledPin,
  type PinOutcome,
  type PinRule,
  type PinTableUsage,
  type ServerIdentity,
  type SwitchAdapter,
} from '../contract.js';
import {
  SwitchAuthError,
  SwitchCommandError,
  SwitchProtocolError,
  SwitchTimeoutError,
  SwitchTransportError,
  unsupported,
} from '../errors.js';
import { SwitchFencedError } from '../fence.js';
import { masterArbitration } from './arbitration.js';
import { CounterStream } from './counters.js';
import {
  flatten,
  groupListPath,
  interfacePath,
  jsonIetf,
  parseRuleNotifications,
  policyPath,
  ruleUpdate,
  rulePath,
  rulesPath,
  STATIC_ROUTE_GROUP,
  type GroupPaths,
  type PolicyLocation,
  type RuleState,
} from './openconfig.js';
import { GnmiTransport, type GnmiTransportOptions } from './transport.js';

/**
 * List keys under /interfaces (openconfig-interfaces, openconfig-if-ip), for JSON subtrees of a neighbour
 * Get.
 */
const NEIGHBOR_LIST_KEYS: Readonly<Record<string, readonly string[]>> = {
  interface: ['name'],
  subinterface: ['index'],
  neighbor: ['ip'],
};

export interface GnmiAdapterOptions extends GnmiTransportOptions {
  networkInstance?: string;
  /** flowpin's policy-forwarding policy id. */
  policyId?: string;
  /** Interfaces client traffic enters on; the policy is applied to each. */
  ingressInterfaces: string[];
  pinTableSize?: number;
  pinBatchSize?: number;
  group?: GroupPaths;
  /** Component and resource reporting the pin table's utilization (openconfig-platform); absent: not read. */
  pinTable?: { component: string; resource: string };
  /** Models the target must announce in Capabilities. */
  requiredModels?: string[];
  sampleIntervalMs?: number;
  /**
   * Bound on the time a group change takes to reach forwarding once accepted. A deleted
   * next-hop's state goes with its configuration, so a removal cannot be read back in
   * forwarding; the controller waits at least this long (default 500 ms).
   */
  groupProgramDelayMs?: number;
  /** The master-arbitration role of fenced Sets (arbitration.ts); absent: the default role. */
  arbitrationRole?: string;
  now?: () => number;
}

export const DEFAULT_REQUIRED_MODELS = ['openconfig-network-instance', 'openconfig-policy-forwarding'];
const ENCODING: Encoding = 'JSON_IETF';

interface Known {
  seq: number;
  flow: FlowSpec;
  nexthop: string;
  /** When it was last written (adapter clock): samples older than this say nothing of it. */
  writtenAt: number;
  /** A read sent after that write found it configured (a rewrite makes a new Known). */
  configured?: true;
}

export class GnmiAdapter implements SwitchAdapter {
  readonly kind = 'gnmi';
  readonly capabilities: AdapterCapabilities;
  readonly transport: GnmiTransport;
  readonly counters: CounterStream;
  private readonly loc: PolicyLocation;
  private readonly now: () => number;
  private readonly group: GroupPaths;
  private readonly byFlow = new Map<string, Known>();
  private readonly bySeq = new Map<number, Known>();
  /** The owner's fence of the latest write (high availability): every Set carries its epoch. */
  private fence: FenceToken | undefined;
  /**
   * Rules on the device that flowpin does not keep: sequence id -> the flow they match ('' if unreadable).
   */
  private readonly extras = new Map<number, string>();
  /** Above every sequence id seen or taken. */
  private nextSeq = 1;
  /** Ids given back (taken again first; one found in use again when taken is skipped). */
  private readonly freed: number[] = [];
  /** Rules the last listing found for removeStrays() to delete. */
  private strays: number[] = [];
  /** Rules deleted because flowpin found them holding a flow it keeps another rule for, or no flow. */
  readonly stats = { extrasDeleted: 0, seqProbes: 0 };
  /** Stream tick at the previous listPins: only samples after it are news. */
  private listedTick = -1;
  private readonly sampleIntervalMs: number;
  private readonly name: string;
  capabilityResponse: CapabilityResponse | undefined;

  constructor(private readonly options: GnmiAdapterOptions) {
    this.transport = new GnmiTransport(options);
    this.name = options.switchName;
    this.now = options.now ?? Date.now;
    this.loc = {
      networkInstance: options.networkInstance ?? 'default',
      policyId: options.policyId ?? 'flowpin',
    };
    this.group = options.group ?? STATIC_ROUTE_GROUP;
    this.sampleIntervalMs = options.sampleIntervalMs ?? 10_000;
    this.counters = new CounterStream(this.transport, rulesPath(this.loc), {
      sampleIntervalMs: this.sampleIntervalMs,
      now: this.now,
    });
    this.capabilities = {
      resolvesNexthop: false,
      resolveBatchSize: 1,
      pinBatchSize: options.pinBatchSize ?? 200,
      nativeIdleTimeout: false,
      pinTableSize: options.pinTableSize ?? 1500,
      changesGroups: true,
      predictsMovedFlows: false,
      readsPins: true,
      reportsTableUsage: options.pinTable !== undefined,
      readsProgrammedGroup: true,
      knowsServers: true,
      groupProgramDelayMs: options.groupProgramDelayMs ?? 500,
      fencing: 'refused',
    };
  }

  /**
   * Every Set goes here: with a fence, it carries the epoch as the master-arbitration election
   * id, and a refusal of it as stale (PERMISSION_DENIED) is a SwitchFencedError.
   */
  private async set(req: SetRequest, fence?: FenceToken): Promise<SetResponse> {
    if (fence !== undefined) this.fence = fence;
    const f = this.fence;
    if (f === undefined) return this.transport.set(req);
    try {
      return await this.transport.set({
        ...req,
        extension: [masterArbitration(f.epoch, this.options.arbitrationRole)],
      });
    } catch (err) {
      const code =
        err instanceof SwitchAuthError ? (err.cause as { code?: number } | undefined)?.code : undefined;
      if (code === Number(status.PERMISSION_DENIED))
        throw new SwitchFencedError(this.name, f.epoch, err instanceof Error ? err.message : String(err), {
          cause: err,
        });
      throw err;
    }
  }

  /** Makes this owner the target's master: an empty Set with the election id only (arbitration spec 3.2). */
  async fenceTakeover(fence: FenceToken): Promise<void> {
    await this.set({}, fence);
  }

  /** The pin table's utilization, where its component and resource are configured (`pinTable`). */
  pinTableUsage(): Promise<PinTableUsage> {
    const pt = this.options.pinTable;
    return pt === undefined ? unsupported(this.name, 'pinTableUsage') : this.readUsage(pt);
  }

  movedByAdd(): Promise<boolean[]> {
    return unsupported(this.name, 'movedByAdd');
  }

  problems(): string[] {
    return [];
  }

  /** Keeps no VIP list of its own (groups are read by path per VIP): nothing to check or keep. */
  prepareVips(): Promise<() => void> {
    return Promise.resolve(() => undefined);
  }

  /**
   * Checks Capabilities, creates and applies flowpin's policy, recovers its rules, starts the counter stream.
   */
  async connect(): Promise<void> {
    const caps = await this.transport.capabilities();
    this.capabilityResponse = caps;
    const models = new Set(caps.supported_models.map((m) => m.name));
    const missing = (this.options.requiredModels ?? DEFAULT_REQUIRED_MODELS).filter((m) => !models.has(m));
    const noEncoding = !caps.supported_encodings.includes(ENCODING);
    if (missing.length > 0 || noEncoding) {
      const what = [...missing.map((m) => `model ${m}`), ...(noEncoding ? [`encoding ${ENCODING}`] : [])];
      throw new SwitchProtocolError(
        this.name,
        `gNMI target lacks what flowpin needs: ${what.join(', ')} (announces ${[...models].join(', ') || 'no models'}; encodings ${caps.supported_encodings.join(', ')})`,
      );
    }
    const update: Update[] = [
      {
        path: { elem: [...policyPath(this.loc), { name: 'config' }] },
        val: jsonIetf({ 'policy-id': this.loc.policyId, type: 'PBR_POLICY' }),
      },
      ...this.options.ingressInterfaces.map((i) => ({
        path: { elem: [...interfacePath(this.loc, i), { name: 'config' }] },
        val: jsonIetf({ 'interface-id': i, 'apply-forwarding-policy': this.loc.policyId }),
      })),
    ];
    await this.set({ update });
    await this.readRules();
    this.counters.start();
  }

  async close(): Promise<void> {
    this.counters.close();
    this.transport.close();
    return Promise.resolve();
  }

  resolve(flows: FlowSpec[]): Promise<(string | undefined)[]> {
    return Promise.resolve(flows.map(() => undefined));
  }

  async installPins(pins: PinRule[], fence?: FenceToken): Promise<PinOutcome[]> {
    if (fence !== undefined) this.fence = fence;
    const out: PinOutcome[] = [];
    const size = this.capabilities.pinBatchSize;
    for (let at = 0; at < pins.length; at += size)
      out.push(...(await this.installBatch(pins.slice(at, at + size))));
    return out;
  }

  /** One SetRequest; on RESOURCE_EXHAUSTED the halves are tried, down to single rules. */
  private async installBatch(pins: PinRule[]): Promise<PinOutcome[]> {
    if (pins.length === 0) return [];
    const planned = pins.map((p) => ({
      pin: p,
      seq: this.byFlow.get(flowId(p.flow))?.seq ?? this.allocate(),
    }));
    const sentAt = this.now();
    try {
      await this.set({ replace: planned.map(({ pin, seq }) => ruleUpdate(this.loc, seq, pin)) });
    } catch (err) {
      if (err instanceof SwitchTimeoutError || err instanceof SwitchTransportError) {
        // The outcome is unknown: the target may have applied it. Its new sequence ids stay
        // reserved until a listing sent after it shows them absent, or adopts them.
        for (const { seq } of planned) {
          const k = this.bySeq.get(seq);
          if (k !== undefined && k.nexthop === '') k.writtenAt = sentAt;
        }
        throw err;
      }
      if (!(err instanceof SwitchCommandError) || err.code !== Number(status.RESOURCE_EXHAUSTED)) {
        this.release(planned.map((p) => p.seq));
        throw err;
      }
      if (pins.length === 1) {
        this.release(planned.map((p) => p.seq));
        return [
          {
            flow: (pins[0] as PinRule).flow,
            ok: false,
            error: `table-full: ${err.detail}`,
            programmed: false,
            reason: 'table-full',
          },
        ];
      }
      this.release(planned.map((p) => p.seq));
      const half = Math.ceil(pins.length / 2);
      return [
        ...(await this.installBatch(pins.slice(0, half))),
        ...(await this.installBatch(pins.slice(half))),
      ];
    }
    const now = this.now();
    for (const { pin, seq } of planned)
      this.remember({
        seq,
        flow: { ...pin.flow, src: canonicalIp(pin.flow.src), dst: canonicalIp(pin.flow.dst) },
        nexthop: canonicalIp(pin.nexthop),
        writtenAt: now,
      });
    return planned.map(({ pin }) => ({ flow: pin.flow, ok: true }));
  }

  async removePins(flows: FlowSpec[], fence?: FenceToken): Promise<void> {
    if (fence !== undefined) this.fence = fence;
    const ids = new Set(flows.map((f) => flowId({ ...f, src: canonicalIp(f.src), dst: canonicalIp(f.dst) })));
    const known = [...ids].map((id) => this.byFlow.get(id)).filter((k): k is Known => k !== undefined);
    // Other rules found holding these flows go with them.
    const extra = [...this.extras].filter(([, id]) => ids.has(id)).map(([seq]) => seq);
    const bySeq = new Map(known.map((k) => [k.seq, k]));
    await this.deleteRules([...bySeq.keys()], (seq) => this.forget(bySeq.get(seq) as Known));
    await this.deleteExtras(extra);
  }

  /** Deletes rules flowpin does not keep (a failure leaves them for the next listing). */
  private deleteExtras(seqs: number[]): Promise<void> {
    return this.deleteRules(seqs, (seq) => {
      this.extras.delete(seq);
      this.freed.push(seq);
      this.counters.forget(seq);
      this.stats.extrasDeleted++;
    });
  }

  /**
   * Deletes rules by sequence id, many per SetRequest; `deleted` runs for each once its request succeeded.
   */
  private async deleteRules(seqs: number[], deleted: (seq: number) => void): Promise<void> {
    const size = this.capabilities.pinBatchSize * 4;
    for (let at = 0; at < seqs.length; at += size) {
      const chunk = seqs.slice(at, at + size);
      await this.set({ delete: chunk.map((seq) => ({ elem: rulePath(this.loc, seq) })) });
      for (const seq of chunk) deleted(seq);
    }
  }

  async listPins(): Promise<InstalledPin[]> {
    const rules = await this.readRules();
    const maxAge = 2 * this.sampleIntervalMs;
    const now = this.now();
    const fresh = (seq: number): RuleState | undefined => {
      const s = this.counters.sample(seq);
      const k = this.bySeq.get(seq);
      return s !== undefined &&
        s.tick > this.listedTick &&
        now - s.at <= maxAge &&
        (k === undefined || s.at >= k.writtenAt)
        ? s
        : undefined;
    };
    const tick = this.counters.tick;
    // Rules the stream has no current sample of are read directly (one Get of their state).
    let state = new Map<number, RuleState>();
    if ([...rules.keys()].some((seq) => fresh(seq) === undefined)) state = await this.readState();
    let tableFull: boolean | undefined;
    const out: InstalledPin[] = [];
    const programmedSeqs = new Set<number>();
    for (const r of rules.values()) {
      const k = this.bySeq.get(r.seq);
      if (k === undefined) continue;
      const s = fresh(r.seq) ?? state.get(r.seq);
      const pin: InstalledPin = {
        name: `${this.loc.policyId}/${r.seq}`,
        flow: k.flow,
        nexthop: k.nexthop,
        programmed: s?.applied === true,
        packets: s?.packets ?? 0,
        bytes: s?.octets ?? 0,
      };
      if (!pin.programmed) {
        // Configured without applied state: still being programmed, unless the table reports no room.
        tableFull ??= !this.capabilities.reportsTableUsage
          ? false
          : await this.pinTableUsage().then((u) => u.used >= u.capacity);
        pin.reason = tableFull ? 'table-full' : 'pending';
      }
      out.push(pin);
      if (pin.programmed) programmedSeqs.add(r.seq);
    }
    this.listedTick = tick;
    // Rules flowpin does not keep go (removeStrays, the reconciler's write) once the rule kept
    // for their flow forwards (or at once where they hold no flow flowpin keeps).
    this.strays = [...this.extras]
      .filter(([, id]) => {
        const kept = id === '' ? undefined : this.byFlow.get(id);
        return kept === undefined || programmedSeqs.has(kept.seq);
      })
      .map(([seq]) => seq);
    return out;
  }

  /**
   * Deletes the rules the last listing found that flowpin does not keep; a failure leaves them for the next
   * listing.
   */
  async removeStrays(fence?: FenceToken): Promise<number> {
    if (fence !== undefined) this.fence = fence;
    const seqs = this.strays.filter((seq) => this.extras.has(seq));
    this.strays = [];
    const before = this.stats.extrasDeleted;
    if (seqs.length > 0) await this.deleteExtras(seqs).catch(() => undefined);
    return this.stats.extrasDeleted - before;
  }

  /**
   * Reads these pins' rules back without listing the policy: a Subscribe ONCE names, for each
   * rule, its configured sequence id (present while the rule is configured) and its applied
   * one (`state/sequence-id`, present once programmed); a rule that is gone sends nothing and
   * fails nothing (gNMI 3.5.2.4), where a Get would fail whole (NOT_FOUND, 3.3.4). Many rules
   * per request. A rule found configured since its last write is asked for its applied state
   * only (one path instead of two: a read-back asks again every few milliseconds until the rule
   * is programmed); one removed behind flowpin's back after that is found by the listing, which
   * also checks which flow and nexthop each rule holds. Counters are the counter stream's,
   * where it has sampled the rule since it was written (else 0: a rule being read back has just
   * been written). Flows with no rule flowpin knows of are answered undefined without asking.
   */
  async readPins(flows: FlowSpec[]): Promise<(InstalledPin | undefined)[]> {
    const known = flows.map((f) =>
      this.byFlow.get(flowId({ ...f, src: canonicalIp(f.src), dst: canonicalIp(f.dst) })),
    );
    const asked = [...new Set(known.filter((k): k is Known => k !== undefined && k.nexthop !== ''))];
    const base = rulesPath(this.loc);
    const state = new Map<number, RuleState>();
    const size = this.capabilities.pinBatchSize;
    for (let at = 0; at < asked.length; at += size) {
      const chunk = asked.slice(at, at + size);
      const subscription = chunk.flatMap((k) => {
        const rule = { name: 'rule', key: { 'sequence-id': String(k.seq) } };
        return (k.configured === true ? ['state'] : ['config', 'state']).map((c) => ({
          path: { elem: [rule, { name: c }, { name: 'sequence-id' }] },
        }));
      });
      const sentAt = this.now();
      const notifications = await this.transport.once({
        prefix: { elem: base },
        subscription,
        encoding: ENCODING,
      });
      for (const [seq, r] of parseRuleNotifications(notifications, base)) state.set(seq, r);
      for (const k of chunk) {
        if (k.configured === true) state.set(k.seq, state.get(k.seq) ?? { seq: k.seq, applied: false });
        else if (state.has(k.seq) && sentAt >= k.writtenAt && this.bySeq.get(k.seq) === k)
          k.configured = true;
      }
    }
    let tableFull: boolean | undefined;
    const out: (InstalledPin | undefined)[] = [];
    for (const k of known) {
      const r = k === undefined ? undefined : state.get(k.seq);
      if (k === undefined || r === undefined) {
        out.push(undefined);
        continue;
      }
      const sample = this.counters.sample(k.seq);
      const counted = sample !== undefined && sample.at >= k.writtenAt ? sample : undefined;
      const pin: InstalledPin = {
        name: `${this.loc.policyId}/${k.seq}`,
        flow: k.flow,
        nexthop: k.nexthop,
        programmed: r.applied,
        packets: counted?.packets ?? 0,
        bytes: counted?.octets ?? 0,
      };
      if (!pin.programmed) {
        tableFull ??= !this.capabilities.reportsTableUsage
          ? false
          : await this.pinTableUsage().then((u) => u.used >= u.capacity);
        pin.reason = tableFull ? 'table-full' : 'pending';
      }
      out.push(pin);
    }
    return out;
  }

  async groupMembers(vip: string): Promise<string[]> {
    return (await this.readGroup(vip)).map((m) => m.address);
  }

  async groupProgrammed(vip: string): Promise<string[]> {
    return (await this.readGroup(vip)).filter((m) => m.programmed).map((m) => m.address);
  }

  async addGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    if (fence !== undefined) this.fence = fence;
    const nh = canonicalIp(nexthop);
    if ((await this.readGroup(vip)).some((m) => m.address === nh)) return;
    const list = groupListPath(this.group, vip);
    const entry = withKey(list, this.group.key, nh);
    const [container, leaf] = splitLeaf(this.group.addressLeaf);
    const cfg: Record<string, unknown> = { [leaf]: nh };
    if (container === 'config') cfg[this.group.key] = nh;
    await this.set({
      update: [
        {
          path: { elem: [...entry, ...(container === '' ? [] : [{ name: container }])] },
          val: jsonIetf(cfg),
        },
      ],
    });
  }

  async removeGroupMember(vip: string, nexthop: string, fence?: FenceToken): Promise<void> {
    if (fence !== undefined) this.fence = fence;
    const nh = canonicalIp(nexthop);
    const entries = (await this.readGroup(vip)).filter((m) => m.address === nh);
    if (entries.length === 0) return;
    const list = groupListPath(this.group, vip);
    await this.set({
      delete: entries.map((e) => ({ elem: withKey(list, this.group.key, e.key) })),
    });
  }

  private async readGroup(vip: string): Promise<{ key: string; address: string; programmed: boolean }[]> {
    const list = groupListPath(this.group, vip);
    const elems = withKey(list, this.group.key, '*');
    const leaves = await this.getLeaves({ elem: elems }, 'ALL');
    const byKey = new Map<string, { address?: string; programmed: boolean }>();
    const n = elems.length;
    for (const l of leaves) {
      const key = l.elems[n - 1]?.key?.[this.group.key];
      if (key === undefined) continue;
      const rel = l.elems
        .slice(n)
        .map((e) => e.name)
        .join('/');
      const e = byKey.get(key) ?? { programmed: false };
      byKey.set(key, e);
      if (rel === this.group.addressLeaf && typeof l.value === 'string') e.address = canonicalIp(l.value);
      if (rel === this.group.programmedLeaf) e.programmed = true;
    }
    return [...byKey]
      .filter(([, e]) => e.address !== undefined)
      .map(([key, e]) => ({ key, address: e.address as string, programmed: e.programmed }));
  }

  /**
   * Reads the rules of flowpin's policy (configuration) and takes the device's word for them:
   * which rule holds which flow and nexthop. Rules written since the Get was sent (or being
   * written) are left as they are: the answer cannot speak of them.
   */
  private async readRules(): Promise<Map<number, RuleState>> {
    const startedAt = this.now();
    const base = rulesPath(this.loc);
    const rules = parseRuleNotifications(await this.getNotifications({ elem: base }, 'CONFIG'), base);
    const recent = (k: Known): boolean => k.writtenAt >= startedAt;
    this.extras.clear();
    const byFlow = new Map<string, RuleState[]>();
    for (const r of rules.values()) {
      if (r.seq >= this.nextSeq) this.nextSeq = r.seq + 1;
      if (r.flow === undefined || r.nexthop === undefined) {
        this.extras.set(r.seq, '');
        continue;
      }
      const id = flowId(r.flow);
      const list = byFlow.get(id);
      if (list === undefined) byFlow.set(id, [r]);
      else list.push(r);
    }
    for (const k of [...this.bySeq.values()]) {
      if (recent(k)) continue;
      const r = rules.get(k.seq);
      if (r?.flow === undefined || flowId(r.flow) !== flowId(k.flow) || r.nexthop !== k.nexthop)
        this.forget(k);
    }
    for (const [id, list] of byFlow) {
      const known = this.byFlow.get(id);
      // The rule flowpin knows for the flow stays its rule; else the first in sequence order.
      const keep =
        list.find((r) => r.seq === known?.seq) ??
        (known !== undefined && recent(known) ? undefined : list.reduce((a, b) => (b.seq < a.seq ? b : a)));
      for (const r of list) if (r !== keep) this.extras.set(r.seq, id);
      if (keep === undefined) continue;
      const k = this.bySeq.get(keep.seq);
      if (k === undefined || k.nexthop === '' || flowId(k.flow) !== id || k.nexthop !== keep.nexthop) {
        this.remember({
          seq: keep.seq,
          flow: keep.flow as FlowSpec,
          nexthop: keep.nexthop as string,
          writtenAt: 0,
        });
      }
    }
    for (const seq of this.extras.keys()) {
      const k = this.bySeq.get(seq);
      if (k !== undefined && k.nexthop === '') this.bySeq.delete(seq);
    }
    return rules;
  }

  private async readState(): Promise<Map<number, RuleState>> {
    const base = rulesPath(this.loc);
    return parseRuleNotifications(
      await this.getNotifications(
        { elem: [...base, { name: 'rule', key: { 'sequence-id': '*' } }, { name: 'state' }] },
        'STATE',
      ),
      base,
    );
  }

  private async readUsage(pt: { component: string; resource: string }): Promise<PinTableUsage> {
    const p = parsePath(
      `/components/component[name=${pt.component}]/integrated-circuit/utilization/resources/resource[name=${pt.resource}]/state`,
    );
    const leaves = await this.getLeaves(p, 'STATE');
    const val = (name: string): number | undefined => {
      const v = leaves.find((l) => l.elems.at(-1)?.name === name)?.value;
      return typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
    };
    const used = val('used');
    const max = val('max-limit');
    const free = val('free');
    const capacity = max ?? (used !== undefined && free !== undefined ? used + free : undefined);
    if (used === undefined || capacity === undefined)
      throw new SwitchProtocolError(
        this.name,
        `no utilization of ${pt.component}/${pt.resource} (used, max-limit or free missing)`,
      );
    return { capacity, used };
  }

  /**
   * The servers' MACs from the OpenConfig neighbour tables (openconfig-if-ip:
   * /interfaces/interface[name]/subinterfaces/subinterface[index]/ipv4|ipv6/neighbors/
   * neighbor[ip]/state/link-layer-address, type yang:phys-address), one Get per family.
   */
  async serverIdentities(): Promise<ServerIdentity[]> {
    const out: ServerIdentity[] = [];
    for (const family of ['ipv4', 'ipv6']) {
      const leaves = await this.getLeaves(
        parsePath(`/interfaces/interface/subinterfaces/subinterface/${family}/neighbors/neighbor/state`),
        'STATE',
        NEIGHBOR_LIST_KEYS,
      );
      for (const l of leaves) {
        if (l.elems.at(-1)?.name !== 'link-layer-address' || typeof l.value !== 'string') continue;
        const ip = l.elems.find((e) => e.name === 'neighbor')?.key?.['ip'];
        if (ip === undefined)
          throw new SwitchProtocolError(
            this.name,
            `neighbour entry without its ip key: ${l.elems.map((e) => e.name).join('/')}`,
          );
        let nexthop: string;
        try {
          nexthop = canonicalIp(ip);
        } catch (err) {
          throw new SwitchProtocolError(this.name, `neighbour entry with a bad address '${ip}'`, {
            cause: err,
          });
        }
        const iface = l.elems.find((e) => e.name === 'interface')?.key?.['name'];
        out.push({
          nexthop,
          mac: l.value.toLowerCase(),
          ...(iface === undefined ? {} : { interface: iface }),
        });
      }
    }
    return out;
  }

  /** A Get of one path; NOT_FOUND (no data there yet) is an empty answer. */
  private async getNotifications(path: Path, type: 'ALL' | 'CONFIG' | 'STATE'): Promise<Notification[]> {
    try {
      return (await this.transport.get({ path: [path], type, encoding: ENCODING })).notification;
    } catch (err) {
      if (err instanceof SwitchCommandError && err.code === Number(status.NOT_FOUND)) return [];
      throw err;
    }
  }

  /** A Get of one path as leaves; NOT_FOUND (no data there yet) is an empty answer. */
  private async getLeaves(
    path: Path,
    type: 'ALL' | 'CONFIG' | 'STATE',
    listKeys?: Readonly<Record<string, readonly string[]>>,
  ): Promise<ReturnType<typeof flatten>> {
    try {
      const res = await this.transport.get({ path: [path], type, encoding: ENCODING });
      return listKeys === undefined ? flatten(res.notification) : flatten(res.notification, listKeys);
    } catch (err) {
      if (err instanceof SwitchCommandError && err.code === Number(status.NOT_FOUND)) return [];
      throw err;
    }
  }

  /** A free sequence id: one given back, else a new one above all seen (never a scan of those in use). */
  private allocate(): number {
    const inUse = (s: number): boolean => this.bySeq.has(s) || this.extras.has(s);
    let seq: number | undefined;
    while (seq === undefined && this.freed.length > 0) {
      const s = this.freed.pop() as number;
      if (inUse(s)) this.stats.seqProbes++;
      else seq = s;
    }
    if (seq === undefined) {
      while (inUse(this.nextSeq)) {
        this.nextSeq++;
        this.stats.seqProbes++;
      }
      seq = this.nextSeq++;
    }
    this.bySeq.set(seq, {
      seq,
      flow: { family: 4, src: '', dst: '', sport: 0, dport: 0 },
      nexthop: '',
      writtenAt: Number.POSITIVE_INFINITY,
    });
    return seq;
  }

  private release(seqs: number[]): void {
    for (const s of seqs) {
      const k = this.bySeq.get(s);
      if (k !== undefined && k.nexthop === '') this.bySeq.delete(s);
      if (!this.bySeq.has(s)) this.freed.push(s);
    }
  }

  private remember(k: Known): void {
    const old = this.byFlow.get(flowId(k.flow));
    if (old !== undefined && old.seq !== k.seq) {
      this.bySeq.delete(old.seq);
      this.freed.push(old.seq);
    }
    this.byFlow.set(flowId(k.flow), k);
    this.bySeq.set(k.seq, k);
  }

  private forget(k: Known): void {
    this.byFlow.delete(flowId(k.flow));
    this.bySeq.delete(k.seq);
    this.counters.forget(k.seq);
    this.freed.push(k.seq);
  }
}

function withKey(list: Path, key: string, value: string): PathElem[] {
  const elems = [...(list.elem ?? [])];
  const last = elems.pop();
  if (last === undefined) throw new TypeError('empty group list path');
  return [...elems, { name: last.name, key: { ...(last.key ?? {}), [key]: value } }];
}

function splitLeaf(rel: string): [string, string] {
  const i = rel.lastIndexOf('/');
  return i < 0 ? ['', rel] : [rel.slice(0, i), rel.slice(i + 1)];
}
