// The audit of a switch after a takeover, for switch kinds that keep no fencing token
// (`timed`: eAPI, the simulator), where a stale owner's late write is not refused by the switch
// and only timing bounds it (docs/fencing.md). At the takeover the new owner lists the pins
// (each named with the epoch that wrote it) and reads the groups; a later check reports pins of
// a higher epoch than the auditor's (a newer owner exists: this one is the stale one), pins of
// a lower epoch that were not there at the takeover (a stale write landed after it), and
// groups that changed without a write of the auditor's. It only reads.

import type { InstalledPin, SwitchAdapter } from '../switch-adapters/contract.js';

export interface FenceAuditReport {
  epoch: bigint;
  /** Pins on the switch by the epoch that wrote them (0: written without high availability). */
  pinsByEpoch: Map<bigint, number>;
  /** Pins written by a higher epoch than the auditor's: a newer owner writes this switch. */
  ahead: InstalledPin[];
  /** Pins of a lower epoch absent (or toward another nexthop) at the takeover: stale writes after it. */
  staleAfterTakeover: InstalledPin[];
  /** Groups that differ from what the auditor last read or wrote. */
  groupsChanged: { vip: string; expected: string[]; found: string[] }[];
}

/** A pin as the audit tells pins apart: its name (flow and epoch) and where it points. */
export const pinKey = (p: InstalledPin): string => `${p.name}>${p.nexthop}`;
const key = pinKey;

export class FenceAudit {
  private constructor(
    private readonly adapter: SwitchAdapter,
    readonly epoch: bigint,
    private readonly atTakeover: ReadonlySet<string>,
    private readonly groupsAtTakeover: ReadonlyMap<string, string[]>,
  ) {}

  /** Lists the switch as the takeover finds it (pins and the groups of `vips`). */
  static async takeover(adapter: SwitchAdapter, epoch: bigint, vips: readonly string[]): Promise<FenceAudit> {
    const pins = await adapter.listPins();
    const groups = new Map<string, string[]>();
    for (const vip of vips) groups.set(vip, (await adapter.groupMembers(vip)).sort());
    return new FenceAudit(adapter, epoch, new Set(pins.map(key)), groups);
  }

  /**
   * Lists the switch again and reports what no write of this owner explains. `groups`: the
   * groups as this owner last read or wrote them (the reconciler's view); without it, the
   * groups at the takeover.
   */
  async check(groups?: ReadonlyMap<string, ReadonlySet<string>>): Promise<FenceAuditReport> {
    const pins = await this.adapter.listPins();
    const report: FenceAuditReport = {
      epoch: this.epoch,
      pinsByEpoch: new Map(),
      ahead: [],
      staleAfterTakeover: [],
      groupsChanged: [],
    };
    for (const p of pins) {
      const e = p.epoch ?? 0n;
      report.pinsByEpoch.set(e, (report.pinsByEpoch.get(e) ?? 0) + 1);
      if (e > this.epoch) report.ahead.push(p);
      else if (e < this.epoch && !this.atTakeover.has(key(p))) report.staleAfterTakeover.push(p);
    }
    for (const [vip, atTakeover] of this.groupsAtTakeover) {
      const expected = groups?.get(vip) === undefined ? atTakeover : [...(groups.get(vip) ?? [])].sort();
      const found = (await this.adapter.groupMembers(vip)).sort();
      if (expected.join() !== found.join()) report.groupsChanged.push({ vip, expected, found });
    }
    return report;
  }
}
