// A state store in memory whose writes take time on a given clock: what the scenario runner
// and the model-based tests use to restart and kill controllers deterministically on a
// virtual clock. Several store objects share one backing (the "disk"); a store that is
// killed loses its writes in flight, as a process would. The file store is the production
// implementation of the same interface.

import type {
  ChangeDoc,
  FlowSource,
  HalfClosed,
  JournalEntry,
  LoadedFlows,
  StateStore,
} from './state-store.js';

interface Group {
  switchName: string;
  vip: string;
  nexthop: string;
  keys: string[];
  /** Keys half-closed when written, and by which side. */
  half?: [string, HalfClosed][];
}

/** What survives a restart. */
export class MemoryDisk {
  changes: ChangeDoc | undefined;
  snapshot: Group[] | undefined;
  savedAt: number | undefined;
  journal: (Group | { ended: string } | { at: number } | { halfClosed: string; side: HalfClosed })[] = [];
}

export class MemoryStateStore implements StateStore {
  readonly where = 'memory';
  private dead = false;

  constructor(
    private readonly disk: MemoryDisk,
    /** Runs `fn` after `ms` (the clock the controller runs on). */
    private readonly schedule: (ms: number, fn: () => void) => void,
    /** Time one durable write takes (ms). */
    private readonly writeMs = 2,
  ) {}

  /** The process is gone: writes in flight never land, later ones never start. */
  kill(): void {
    this.dead = true;
  }

  private write(apply: () => void): Promise<void> {
    return new Promise((resolve) => {
      if (this.dead) return;
      this.schedule(this.writeMs, () => {
        if (this.dead) return;
        apply();
        resolve();
      });
    });
  }

  saveChanges(doc: ChangeDoc): Promise<void> {
    const copy = JSON.parse(JSON.stringify(doc)) as ChangeDoc;
    return this.write(() => (this.disk.changes = copy));
  }

  saveFlows(source: FlowSource, savedAt: number): Promise<number> {
    const groups: Group[] = [];
    let n = 0;
    for (const g of source.groups()) {
      const keys = [...g.keys].filter((k) => source.live(k));
      n += keys.length;
      const half: [string, HalfClosed][] = [];
      for (const k of keys) {
        const side = source.halfClosedBy?.(k) ?? null;
        if (side !== null) half.push([k, side]);
      }
      groups.push({
        switchName: g.switchName,
        vip: g.vip,
        nexthop: g.nexthop,
        keys,
        ...(half.length > 0 ? { half } : {}),
      });
    }
    const cut = this.disk.journal.length;
    return this.write(() => {
      this.disk.snapshot = groups;
      this.disk.savedAt = savedAt;
      this.disk.journal = this.disk.journal.slice(cut);
    }).then(() => n);
  }

  appendFlows(flows: JournalEntry[], at: number): Promise<void> {
    const entries = flows.map((f) =>
      f.ended === true
        ? { ended: f.key }
        : f.half !== undefined
          ? { halfClosed: f.key, side: f.half }
          : { switchName: f.switchName, vip: f.vip, nexthop: f.nexthop, keys: [f.key] },
    );
    return this.write(() => this.disk.journal.push({ at }, ...entries));
  }

  loadChanges(): ChangeDoc | undefined {
    return this.disk.changes === undefined
      ? undefined
      : (JSON.parse(JSON.stringify(this.disk.changes)) as ChangeDoc);
  }

  loadFlows(): LoadedFlows | undefined {
    const d = this.disk;
    if (d.snapshot === undefined && d.journal.length === 0) return undefined;
    const out: LoadedFlows = {
      flows: (d.snapshot ?? []).map((g) => ({
        switchName: g.switchName,
        vip: g.vip,
        nexthop: g.nexthop,
        keys: [...g.keys],
      })),
      ended: new Set(),
      halfClosed: new Map((d.snapshot ?? []).flatMap((g) => g.half ?? [])),
      savedAt: d.savedAt,
      journalUntil: undefined,
    };
    for (const e of d.journal) {
      if ('at' in e) out.journalUntil = Math.max(out.journalUntil ?? 0, e.at);
      else if ('ended' in e) out.ended.add(e.ended);
      else if ('halfClosed' in e) out.halfClosed.set(e.halfClosed, e.side);
      else {
        for (const k of e.keys) {
          out.ended.delete(k);
          out.halfClosed.delete(k);
        }
        out.flows.push({ switchName: e.switchName, vip: e.vip, nexthop: e.nexthop, keys: [...e.keys] });
      }
    }
    return out;
  }
}
