// The Linux router's VIP groups: a resilient nexthop group per VIP (idle_timer 0,
// unbalanced_timer 0) over flowpin's nexthop objects (nexthops.ts), made at connect or adopted
// from what the router has, its members handed over to flowpin's objects in place (adopt.ts);
// member writes that keep weights (and so buckets); and the probe groups (one per family: one
// onlink dummy per bucket, reached with mark 0xfe) through which a flow's bucket is looked up.
// Facts: docs/linux.md.

import { canonicalIp } from '../../lib/addr.js';
import { SwitchCommandError, SwitchProtocolError, SwitchUnsupportedError } from '../errors.js';
import { adoptionRefusal, groupSpec, handOverStep } from './adopt.js';
import type { CommandRunner } from './exec.js';
import type { HashCheck } from './hash-check.js';
import { parseBuckets, parseNexthops, type NexthopObject } from './iproute.js';
import type { Nexthops } from './nexthops.js';
import type { GroupEntry } from './upkeep.js';
import { checkIfname, checkIp, familyOf } from './validate.js';

/** The mark that sends a look-up through the probe groups. */
export const PROBE_MARK = 0xfe;

export interface VipGroup {
  vip: string;
  family: 4 | 6;
  groupId: number;
}

export interface VipGroupsOptions {
  switchName: string;
  idBase: number;
  tableBase: number;
  buckets: number;
  clientInterfaces: readonly string[];
  vips: () => readonly { address: string }[];
  /** Runs before every group write, and stops it by throwing (the owner's fence). */
  beforeWrite: () => Promise<void>;
}

export class VipGroups {
  private readonly groups = new Map<string, VipGroup>();
  /** Probe dummy gateway -> its nexthop id (one per bucket). */
  private readonly probeDummy = new Map<string, number>();

  constructor(
    private readonly run: CommandRunner,
    private readonly nexthops: Nexthops,
    private readonly hash: HashCheck,
    private readonly o: VipGroupsOptions,
  ) {}

  private get name(): string {
    return this.o.switchName;
  }

  /** The group of a configured VIP. */
  group(vip: string): VipGroup {
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

  /** Adopts the VIP's resilient group (handing its members over, adopt.ts), or makes one. */
  async adoptOrCreate(
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
      for (const e of (await this.read(g)).group ?? [])
        await this.nexthops.ensureRoutes(this.nexthops.addrOf(e.id) as string);
      this.groups.set(vip, g);
      return;
    }
    if (nexthops.length === 0)
      throw new SwitchProtocolError(this.name, `VIP ${vip} has no route and no nexthops configured`);
    const ids: number[] = [];
    for (const n of nexthops) ids.push(await this.nexthops.ensure(n));
    const groupId = this.o.idBase + 1000 + this.o.vips().findIndex((v) => v.address === vip);
    try {
      await this.replace(groupId, ids.join('/'), true);
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
      const gw = this.nexthops.addrOf(id) ?? all.get(id)?.gateway;
      return gw === undefined ? undefined : canonicalIp(gw);
    };
    for (let at = 0; at < entries.length; at++) {
      const e = entries[at] as GroupEntry;
      if (this.nexthops.isMine(e.id)) continue;
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
      const mine = this.nexthops.idOf(addr);
      if (mine !== undefined && entries.some((x) => x.id === mine))
        throw unsupported(`members ${e.id} and ${mine} lead to the same gateway ${addr}`);
      const table = await this.buckets(g.groupId);
      const id = await this.nexthops.ensure(addr, old.dev);
      const step = handOverStep(table, entries, at, id, serverOf);
      if ('refused' in step) throw unsupported(step.refused);
      await this.write(g, groupSpec(step.entries));
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

  /** The group's bucket table: each bucket's nexthop id. */
  async buckets(groupId: number): Promise<number[]> {
    return parseBuckets(
      await this.run.json(['ip', '-j', 'nexthop', 'bucket', 'show', 'id', String(groupId)]),
    );
  }

  /** The group as the kernel holds it. */
  async read(g: VipGroup): Promise<NexthopObject> {
    const [obj] = parseNexthops(
      await this.run.json(['ip', '-j', 'nexthop', 'show', 'id', String(g.groupId)]),
    );
    if (obj?.group === undefined)
      throw new SwitchProtocolError(this.name, `nexthop ${g.groupId} (VIP ${g.vip}) is no longer a group`);
    return obj;
  }

  /**
   * Replaces a VIP's group members; SYNs forwarded before this are no longer checked (they may
   * have left by the old group).
   */
  async write(g: VipGroup, members: string): Promise<void> {
    await this.o.beforeWrite();
    try {
      await this.replace(g.groupId, members, false);
    } finally {
      this.hash.groupWritten(g.vip);
    }
  }

  /**
   * `ip nexthop replace` of a resilient group; a new one with its bucket count and both timers 0
   * (buckets move only when members change).
   */
  private async replace(groupId: number, members: string, create: boolean): Promise<void> {
    const timers = ['buckets', String(this.o.buckets), 'idle_timer', '0', 'unbalanced_timer', '0'];
    await this.run.ok([
      'ip',
      'nexthop',
      'replace',
      'id',
      String(groupId),
      'group',
      members,
      'type',
      'resilient',
      ...(create ? timers : []),
    ]);
  }

  // ---- probe groups

  /** The probe group of a family. */
  probeGroupId(fam: 4 | 6): number {
    return this.o.idBase + (fam === 4 ? 2000 : 2000 + 4096 + 8) - 1;
  }

  /** The probe nexthop a look-up with PROBE_MARK answered with (its gateway), if it is one. */
  probeDummyOf(gateway: string): number | undefined {
    return this.probeDummy.get(checkIp(gateway));
  }

  /** Probe groups (one per family): one onlink dummy per bucket, reached with mark 0xfe. */
  async ensureProbeGroups(): Promise<void> {
    const dev = checkIfname(this.o.clientInterfaces[0] ?? 'lo');
    const table = this.o.tableBase + PROBE_MARK;
    for (const fam of [4, 6] as const) {
      const vips = this.o.vips().filter((v) => familyOf(v.address) === fam);
      if (vips.length === 0) continue;
      const groupId = this.probeGroupId(fam);
      const base = groupId + 1;
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
      await this.nexthops.ensureRule(fam, PROBE_MARK, table);
    }
  }
}
