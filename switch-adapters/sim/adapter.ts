// The in-process adapter for the built-in switch simulator: the same contract, answered
// directly from the SimSwitch model (DirectFlow-style pins with native idle timeouts), and
// able to predict which flows an added member takes over (it can see the bucket table). It
// reports programming state as the model has it: a pin or group change accepted during the
// switch's programming delay is not yet in forwarding. Its look-up can be configured off (a
// switch with no look-up call) or deliberately wrong (a hash model that does not match the
// switch), to test resolution by observation against both. Server identities (MAC, port
// index) are read from the model's attachments, as the switch's ARP and MAC tables would show.

import { canonicalIp } from '../../lib/addr.js';
import { flowOfPinName, pinName } from '../../lib/pin-name.js';
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
    };
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

  installPins(pins: PinRule[]): Promise<PinOutcome[]> {
    const now = this.sw.now();
    return Promise.resolve(
      pins.map((p): PinOutcome => {
        const f = p.flow;
        const e = this.sw.pins.upsert(
          pinName(f),
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
    for (const f of flows) this.sw.pins.remove(pinName(f));
    return Promise.resolve();
  }

  listPins(): Promise<InstalledPin[]> {
    this.sw.pins.expire(this.sw.now());
    const out: InstalledPin[] = [];
    for (const e of this.sw.pins.all()) {
      const pin = this.view(e);
      if (pin !== undefined) out.push(pin);
    }
    return Promise.resolve(out);
  }

  /** The model holds no half-built entries: nothing to remove. */
  removeStrays(): Promise<number> {
    return Promise.resolve(0);
  }

  readPins(flows: FlowSpec[]): Promise<(InstalledPin | undefined)[]> {
    this.sw.pins.settle(this.sw.now());
    return Promise.resolve(
      flows.map((f) => {
        const e = this.sw.pins.get(pinName(f));
        return e === undefined ? undefined : this.view(e);
      }),
    );
  }

  private view(e: SimPinEntry): InstalledPin | undefined {
    const flow = flowOfPinName(e.name);
    if (flow === undefined || e.nexthop === undefined) return undefined;
    const pin: InstalledPin = {
      name: e.name,
      flow,
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
