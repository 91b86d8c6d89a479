// The in-process adapter for the built-in switch simulator: the same contract, answered
// directly from the SimSwitch model (DirectFlow-style pins with native idle timeouts), and
// able to predict which flows an added member takes over (it can see the bucket table). It
// reports programming state as the model has it: a pin or group change accepted during the
// switch's programming delay is not yet in forwarding. Its look-up can be configured off (a
// switch with no look-up call) or deliberately wrong (a hash model that does not match the
// switch), to test resolution by observation against both. Server identities (MAC, port
// index) are read from the model's attachments, as the switch's ARP and MAC tables would show.
// Like DirectFlow it keeps no fencing token: under high availability the writer's epoch is in
// each pin's name, and the bound on a stale owner is the reconciler's timing (`timed`).

import { canonicalIp } from '../../lib/addr.js';
import { parsePinName, pinName } from '../../lib/pin-name.js';
import { flowId } from '../contract.js';
import type {
  AdapterCapabilities,
  FenceToken,
  FlowSpec,
  InstalledPin,
  PinOutcome,
  PinRule,
  PinTableUsage,
  ServerIdentity,
  SwitchAdapter,
} from '../contract.js';
import { SwitchCommandError, unsupported } from '../errors.js';
import type { SimPinEntry, SimulatedSwitch } from './model.js';

export class SimAdapter implements SwitchAdapter {
  readonly kind = 'sim';
  readonly capabilities: AdapterCapabilities;

  /**
   * `lookup`: 'exact' (the model's own answer), 'none' (no look-up: every answer unknown) or
   * 'wrong-hash' (the same bucket table, hashed with another seed: a wrong model of the switch).
   */
  constructor(
    private readonly sw: SimulatedSwitch,
    private readonly opts: { lookup?: 'exact' | 'none' | 'wrong-hash' } = {},
  ) {
    this.capabilities = {
      resolvesNexthop: (opts.lookup ?? 'exact') !== 'none',
      resolveBatchSize: 1000,
      pinBatchSize: 500,
      nativeIdleTimeout: true,
      pinTableSize: sw.pins.capacity,
      changesGroups: true,
      predictsMovedFlows: sw.options.ecmpMode === 'resilient' && (opts.lookup ?? 'exact') !== 'none',
      readsPins: true,
      reportsTableUsage: true,
      readsProgrammedGroup: true,
      knowsServers: true,
      groupProgramDelayMs: 0,
      fencing: 'timed',
    };
  }

  /** The name each flow's pin has on the switch, where it is not the epoch-less one. */
  private readonly names = new Map<string, string>();
  /** Older names of a flow the last listing found beside its newest (another epoch's write). */
  private strays: string[] = [];

  private nameOf(f: FlowSpec): string {
    return this.names.get(flowId(f)) ?? pinName(f);
  }

  /** Keeps nothing on the switch (timed fencing): nothing to do at a takeover. */
  fenceTakeover(): Promise<void> {
    return Promise.resolve();
  }

  problems(): string[] {
    return [];
  }

  /** The model routes any VIP it is told of: nothing to check or keep. */
  prepareVips(): Promise<() => void> {
    return Promise.resolve(() => undefined);
  }

  connect(): Promise<void> {
    this.sw.directflowEnabled = true;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  resolve(flows: FlowSpec[]): Promise<(string | undefined)[]> {
    const lookup = this.opts.lookup ?? 'exact';
    if (lookup === 'none') return Promise.resolve(flows.map(() => undefined));
    if (lookup === 'wrong-hash') {
      return Promise.resolve(
        flows.map((f) =>
          this.sw.ecmpNexthopSeeded(f.src, f.dst, 6, f.sport, f.dport, this.sw.options.hashSeed ^ 0x0bad),
        ),
      );
    }
    return Promise.resolve(flows.map((f) => this.sw.ecmpNexthop(f.src, f.dst, 6, f.sport, f.dport)));
  }

  /** Each server's MAC and, where it is alone behind one port, that port's index. */
  serverIdentities(): Promise<ServerIdentity[]> {
    return Promise.resolve(this.sw.serverIdentities());
  }

  installPins(pins: PinRule[], fence?: FenceToken): Promise<PinOutcome[]> {
    const now = this.sw.now();
    return Promise.resolve(
      pins.map((p): PinOutcome => {
        const f = p.flow;
        const name = pinName(f, fence?.epoch);
        const before = this.nameOf(f);
        const e = this.sw.pins.upsert(
          name,
          {
            source: 'directflow',
            match: { family: f.family, src: f.src, dst: f.dst, protocol: 6, sport: f.sport, dport: f.dport },
            nexthop: canonicalIp(p.nexthop),
            idleTimeoutS: p.idleTimeoutS,
            hardTimeoutS: 0,
            persistent: false,
            priority: 0,
          },
          now,
        );
        // Written under another epoch's name: the new entry first, then the old one goes (the
        // flow is held throughout).
        if (before !== name) this.sw.pins.remove(before);
        if (name === pinName(f)) this.names.delete(flowId(f));
        else this.names.set(flowId(f), name);
        if (e.status === 'programmed') return { flow: f, ok: true, programmed: true };
        if (e.status === 'pending') return { flow: f, ok: true };
        return { flow: f, ok: true, programmed: false, reason: e.status };
      }),
    );
  }

  pinTableUsage(): Promise<PinTableUsage> {
    const t = this.sw.pins;
    return Promise.resolve({ capacity: t.capacity, used: t.programmed + t.reserved });
  }

  groupProgrammed(vip: string): Promise<string[]> {
    return Promise.resolve([...this.sw.programmedMembers(vip)]);
  }

  removePins(flows: FlowSpec[]): Promise<void> {
    for (const f of flows) {
      this.sw.pins.remove(this.nameOf(f));
      this.names.delete(flowId(f));
    }
    return Promise.resolve();
  }

  listPins(): Promise<InstalledPin[]> {
    this.sw.pins.expire(this.sw.now());
    // A flow held under two names (an older epoch's beside a newer's): the newest is the pin.
    const newest = new Map<string, InstalledPin>();
    const strays: string[] = [];
    for (const e of this.sw.pins.all()) {
      const pin = this.view(e);
      if (pin === undefined) continue;
      const id = flowId(pin.flow);
      const other = newest.get(id);
      if (other !== undefined && (other.epoch ?? 0n) >= (pin.epoch ?? 0n)) strays.push(pin.name);
      else {
        if (other !== undefined) strays.push(other.name);
        newest.set(id, pin);
      }
    }
    this.names.clear();
    for (const [id, p] of newest) if (p.name !== pinName(p.flow)) this.names.set(id, p.name);
    this.strays = strays;
    return Promise.resolve([...newest.values()]);
  }

  /** Removes the older names of flows the last listing found held twice. */
  removeStrays(): Promise<number> {
    const names = this.strays;
    this.strays = [];
    for (const n of names) this.sw.pins.remove(n);
    return Promise.resolve(names.length);
  }

  readPins(flows: FlowSpec[]): Promise<(InstalledPin | undefined)[]> {
    this.sw.pins.settle(this.sw.now());
    return Promise.resolve(
      flows.map((f) => {
        const e = this.sw.pins.get(this.nameOf(f));
        return e === undefined ? undefined : this.view(e);
      }),
    );
  }

  private view(e: SimPinEntry): InstalledPin | undefined {
    const parsed = parsePinName(e.name);
    if (parsed === undefined || e.nexthop === undefined) return undefined;
    const pin: InstalledPin = {
      name: e.name,
      flow: parsed.flow,
      ...(parsed.epoch > 0n ? { epoch: parsed.epoch } : {}),
      nexthop: e.nexthop,
      programmed: e.status === 'programmed',
      packets: e.packets,
      bytes: e.bytes,
    };
    if (e.status !== 'programmed') pin.reason = e.status;
    return pin;
  }

  groupMembers(vip: string): Promise<string[]> {
    return Promise.resolve([...(this.sw.vips.get(canonicalIp(vip))?.group.members() ?? [])]);
  }

  addGroupMember(vip: string, nexthop: string): Promise<void> {
    this.sw.groupAdd(vip, nexthop);
    return Promise.resolve();
  }

  removeGroupMember(vip: string, nexthop: string): Promise<void> {
    if (!this.sw.vips.has(canonicalIp(vip)))
      return Promise.reject(new SwitchCommandError('sim', `no ip route ${vip}`, 'no such VIP', 1000));
    this.sw.groupRemove(vip, nexthop);
    return Promise.resolve();
  }

  movedByAdd(vip: string, nexthop: string, flows: FlowSpec[]): Promise<boolean[]> {
    if (!this.capabilities.predictsMovedFlows) return unsupported('sim', 'movedByAdd');
    return Promise.resolve(this.sw.movedByAdd(vip, nexthop, flows));
  }
}
