// The Linux router's nexthop objects, one per server (ids idBase .. idBase+999, kept while the
// server is out of every group), and what makes a pin to a server forward: a mark per server
// (1..253, id - idBase + 1), a routing table (tableBase + mark) routing every VIP of the
// server's family through its nexthop object, and an `ip rule fwmark` sending the mark there.
// Facts: docs/linux.md.

import { canonicalIp } from '../../lib/addr.js';
import { SwitchCommandError } from '../errors.js';
import type { CommandRunner } from './exec.js';
import { parseNexthops, type NexthopObject } from './iproute.js';
import { checkIfname, checkIp, familyOf } from './validate.js';

/** Largest mark a server's pins carry (0xfe is the probe groups', 0xff unused). */
export const MAX_MARK = 0xfd;

export interface NexthopsOptions {
  switchName: string;
  idBase: number;
  tableBase: number;
  /** The router's VIPs now (a reload may change their nexthops). */
  vips: () => readonly { address: string }[];
}

export class Nexthops {
  /** Nexthop address -> nexthop object id. */
  private readonly ids = new Map<string, number>();
  private readonly addrs = new Map<number, string>();
  /** Nexthop address -> mark (1..253), the same for both families' tables. */
  private readonly marks = new Map<string, number>();
  /** Nexthops whose pin table and rule were checked by this process. */
  private readonly routed = new Set<string>();

  constructor(
    private readonly run: CommandRunner,
    private readonly o: NexthopsOptions,
  ) {}

  /** Reads every nexthop object, learning flowpin's own (by id range); returns them all. */
  async readAll(): Promise<NexthopObject[]> {
    const all = parseNexthops(await this.run.json(['ip', '-j', 'nexthop', 'show']));
    for (const nh of all) {
      if (nh.gateway === undefined || nh.id < this.o.idBase || nh.id >= this.o.idBase + 1000) continue;
      this.learn(canonicalIp(nh.gateway), nh.id);
    }
    return all;
  }

  private learn(addr: string, id: number): void {
    this.ids.set(addr, id);
    this.addrs.set(id, addr);
    this.marks.set(addr, id - this.o.idBase + 1);
  }

  /** flowpin's nexthop object id of a server address, if it has one. */
  idOf(addr: string): number | undefined {
    return this.ids.get(addr);
  }

  /** The server address of one of flowpin's nexthop object ids. */
  addrOf(id: number): string | undefined {
    return this.addrs.get(id);
  }

  /** Whether the id is one of flowpin's nexthop objects. */
  isMine(id: number): boolean {
    return this.addrs.has(id);
  }

  /** The mark of a server's pins (after `ensure`). */
  markOf(addr: string): number | undefined {
    return this.marks.get(addr);
  }

  /** The server a pin's mark leads to. */
  addrOfMark(mark: number): string | undefined {
    for (const [addr, m] of this.marks) if (m === mark) return addr;
    return undefined;
  }

  /**
   * The nexthop object of a server, made (with its pin table and rules) if missing; `dev`: its
   * device (else the route's).
   */
  async ensure(addr: string, dev?: string): Promise<number> {
    const a = checkIp(addr);
    const known = this.ids.get(a);
    if (known !== undefined) {
      if (!this.routed.has(a)) await this.ensureRoutes(a);
      return known;
    }
    let id = this.o.idBase;
    while (this.addrs.has(id)) id++;
    if (id - this.o.idBase + 1 > MAX_MARK)
      throw new SwitchCommandError(
        this.o.switchName,
        `ip nexthop add via ${a}`,
        `more than ${MAX_MARK} nexthops`,
        0,
      );
    const [route] =
      dev === undefined
        ? ((await this.run.json(['ip', '-j', 'route', 'get', a])) as { dev?: string }[])
        : [{ dev }];
    if (route?.dev === undefined)
      throw new SwitchCommandError(this.o.switchName, `ip route get ${a}`, 'no device toward the nexthop', 0);
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
    this.learn(a, id);
    await this.ensureRoutes(a);
    return id;
  }

  /**
   * Table tableBase+mark routes every VIP of the nexthop's family through it; a rule sends the
   * mark there.
   */
  async ensureRoutes(addr: string): Promise<void> {
    const mark = this.marks.get(addr) as number;
    const id = this.ids.get(addr) as number;
    const fam = familyOf(addr);
    const table = this.o.tableBase + mark;
    const lines = this.o
      .vips()
      .filter((v) => familyOf(v.address) === fam)
      .map((v) => `route replace ${v.address}/${fam === 4 ? 32 : 128} nhid ${id} table ${table}`);
    await this.run.ok(['ip', '-batch', '-'], lines.join('\n') + '\n');
    await this.ensureRule(fam, mark, table);
    this.routed.add(addr);
  }

  /** The `ip rule` (preference tableBase) sending `mark` to `table`, added if missing. */
  async ensureRule(fam: 4 | 6, mark: number, table: number): Promise<void> {
    if ((await this.rules(fam)).some((r) => r.table === String(table))) return;
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

  /** `family:mark` of every mark whose ip rule exists (a pin without one does not forward). */
  async markTables(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const fam of [4, 6] as const)
      for (const r of await this.rules(fam)) {
        const mark = Number(r.fwmark);
        if (Number.isInteger(mark) && r.table === String(this.o.tableBase + mark)) out.add(`${fam}:${mark}`);
      }
    return out;
  }

  private async rules(fam: 4 | 6): Promise<{ table?: string; fwmark?: string }[]> {
    return (await this.run.json([
      'ip',
      `-${fam}`,
      '-j',
      'rule',
      'show',
      'pref',
      String(this.o.tableBase),
    ])) as { table?: string; fwmark?: string }[];
  }
}
