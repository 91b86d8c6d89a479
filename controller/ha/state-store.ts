// The state store of an instance that runs with `ha:`: the change log in etcd, the tracked flows
// in local files (FileStateStore's flow part, unchanged: flows are too many for etcd and are
// this instance's own view of its mirrors). Implements the same StateStore interface as the
// file store, so the controller writes it as it writes the file store.
//
// A save holds every switch the controller knows; all of them go out in ONE etcd transaction
// (one revision, one round trip), fenced per switch: for each, compare owner == this instance
// and epoch == its epoch, then put its records and watch record. A switch this instance does
// not own refuses the save before anything is sent (StaleOwnerError). If the transaction fails
// (a switch was lost between the check and the write), each switch is written alone, so the
// others land and the stale one fails with its name. etcd refuses a transaction of more than
// --max-txn-ops operations (128 by default), so a save of more than 64 switches is split.

import type { Etcd3 } from 'etcd3';
import type { ChangeRecord } from '../change-record.js';
import type {
  ChangeDoc,
  FlowSource,
  FlowStore,
  JournalEntry,
  LoadedFlows,
  StateStore,
} from '../state-store.js';
import type { WatchRecord } from '../watch.js';
import { StaleOwnerError, type EtcdChangeLog } from './change-log.js';
import { ownerText, type HaKeys, type OwnerValue } from './keys.js';

/** What the store needs of the coordinator. */
export interface HaSide {
  readonly client: Etcd3;
  readonly keys: HaKeys;
  holder(sw: string): { owner: OwnerValue; epoch: number } | null;
  changeLog(sw: string): EtcdChangeLog;
  ownedSwitches(): Map<string, number>;
}

/** Switches per transaction: two puts each, under etcd's default --max-txn-ops of 128. */
const PER_TXN = 64;

export class HaStateStore implements StateStore {
  readonly where: string;
  private chain: Promise<void> = Promise.resolve();
  /** etcd transactions committed by saves, for figures. */
  txns = 0;

  constructor(
    private readonly ha: HaSide,
    private readonly flows: FlowStore & { readonly where: string },
  ) {
    this.where = `etcd ${ha.keys.prefix} and ${flows.where}`;
  }

  /** Reads every owned switch's change log from etcd. */
  async load(): Promise<void> {
    await Promise.all([...this.ha.ownedSwitches().keys()].map((sw) => this.ha.changeLog(sw).load()));
  }

  /** The change logs of the switches this instance owns, as last loaded or saved. */
  loadChanges(): ChangeDoc | undefined {
    const doc: ChangeDoc = { changes: {}, watch: {} };
    let any = false;
    for (const sw of this.ha.ownedSwitches().keys()) {
      const d = this.ha.changeLog(sw).loadChanges();
      if (d === undefined) continue;
      any = true;
      Object.assign(doc.changes, d.changes);
      Object.assign(doc.watch, d.watch);
    }
    return any ? doc : undefined;
  }

  saveChanges(doc: ChangeDoc): Promise<void> {
    const switches = [...new Set([...Object.keys(doc.changes), ...Object.keys(doc.watch)])].sort();
    const parts = switches.map((sw) => ({
      sw,
      records: doc.changes[sw] ?? [],
      watch: doc.watch[sw],
    }));
    const run = this.chain.then(async () => {
      for (let i = 0; i < parts.length; i += PER_TXN) await this.write(parts.slice(i, i + PER_TXN));
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(parts: { sw: string; records: ChangeRecord[]; watch: WatchRecord | undefined }[]) {
    const { client, keys } = this.ha;
    const held = parts.map((p) => {
      const h = this.ha.holder(p.sw);
      if (h === null) throw new StaleOwnerError(p.sw, 0);
      return { ...p, h };
    });
    if (held.length === 0) return;
    const [first, ...rest] = held;
    if (first === undefined) return;
    const txn = client
      .if(keys.owner(first.sw), 'Value', '==', ownerText(first.h.owner))
      .and(keys.epoch(first.sw), 'Value', '==', String(first.h.epoch));
    for (const p of rest)
      txn
        .and(keys.owner(p.sw), 'Value', '==', ownerText(p.h.owner))
        .and(keys.epoch(p.sw), 'Value', '==', String(p.h.epoch));
    const puts = held.flatMap((p) => [
      client.put(keys.changes(p.sw)).value(JSON.stringify(p.records)),
      ...(p.watch === undefined ? [] : [client.put(keys.watch(p.sw)).value(JSON.stringify(p.watch))]),
    ]);
    const res = await txn.then(...puts).commit();
    if (res.succeeded) {
      this.txns++;
      for (const p of held) this.ha.changeLog(p.sw).remember(p.records, p.watch);
      return;
    }
    // Some switch was lost meanwhile: each alone, so the others land and the stale one is named.
    const results = await Promise.allSettled(
      held.map((p) =>
        this.ha.changeLog(p.sw).saveChanges({
          changes: { [p.sw]: p.records },
          watch: p.watch === undefined ? {} : { [p.sw]: p.watch },
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  saveFlows(source: FlowSource, savedAt: number): Promise<number> {
    return this.flows.saveFlows(source, savedAt);
  }

  appendFlows(flows: JournalEntry[], at: number): Promise<void> {
    return this.flows.appendFlows(flows, at);
  }

  loadFlows(): LoadedFlows | undefined {
    return this.flows.loadFlows();
  }
}
