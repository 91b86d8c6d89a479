// A state store in memory whose writes take time on a given clock: what the scenario runner
// and the model-based tests use to restart and kill controllers deterministically on a
// virtual clock. Several store objects share one backing (the "disk"); a store that is
// killed loses its writes in flight, as a process would. The file store is the production
// implementation of the same interface.

import type { ChangeRecord } from './changes.js';
import type { FlowSource, LoadedState, StateStore } from './state-store.js';

interface Group {
  switchName: string;
  vip: string;
  nexthop: string;
  keys: string[];
}

/** What survives a restart. */
export class MemoryDisk {
  changes: Record<string, ChangeRecord[]> | undefined;
  snapshot: Group[] | undefined;
  savedAt: number | undefined;
  journal: Group[] = [];
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

  saveChanges(changes: Record<string, ChangeRecord[]>): Promise<void> {
    const copy = JSON.parse(JSON.stringify(changes)) as Record<string, ChangeRecord[]>;
    return this.write(() => (this.disk.changes = copy));
  }

  saveFlows(source: FlowSource, savedAt: number): Promise<number> {
    const groups: Group[] = [];
    let n = 0;
    for (const g of source.groups()) {
      const keys = [...g.keys].filter((k) => source.live(k));
      n += keys.length;
      groups.push({ switchName: g.switchName, vip: g.vip, nexthop: g.nexthop, keys });
    }
    const cut = this.disk.journal.length;
    return this.write(() => {
      this.disk.snapshot = groups;
      this.disk.savedAt = savedAt;
      this.disk.journal = this.disk.journal.slice(cut);
    }).then(() => n);
  }

  appendFlows(flows: { switchName: string; vip: string; nexthop: string; key: string }[]): Promise<void> {
    const groups = flows.map((f) => ({ switchName: f.switchName, vip: f.vip, nexthop: f.nexthop, keys: [f.key] }));
    return this.write(() => this.disk.journal.push(...groups));
  }

  load(): LoadedState | undefined {
    const d = this.disk;
    if (d.changes === undefined && d.snapshot === undefined && d.journal.length === 0) return undefined;
    return { changes: d.changes ?? {}, flows: [...(d.snapshot ?? []), ...d.journal].map((g) => ({ ...g, keys: [...g.keys] })), savedAt: d.savedAt };
  }
}
