// One switch's change log in etcd: its change records (drain intent included: a drain's record
// in an active phase is the intent to finish it) and what its owner watched of its mirror,
// under <prefix>switches/<sw>/changes and .../watch. The same ChangeLog interface as the file
// store (state-store.ts), for one switch: `saveChanges` writes that switch's part of the
// document, `loadChanges` gives what was last loaded or saved (`load()` reads etcd first).
//
// Every write is one etcd transaction whose compares are "the owner key holds this instance
// (name and lease)" and "the epoch key holds the epoch this instance took": a write from an
// instance that no longer owns the switch, or owns it under another epoch, changes nothing and
// fails with StaleOwnerError. A compare on the value of a key that does not exist is false
// (etcd, server/etcdserver/apply.go `applyCompare`: "Always fail if comparing a value on a key
// that doesn't exist"), so a write after the owner key was deleted with its lease fails too.
// Records are checked on the way back as the file store checks them (parseChangeDoc).

import type { Etcd3 } from 'etcd3';
import type { ChangeRecord } from '../change-record.js';
import { parseChangeDoc, type ChangeDoc, type ChangeLog } from '../state-store.js';
import type { WatchRecord } from '../watch.js';
import { ownerText, type HaKeys, type OwnerValue } from './keys.js';

/** A write refused because this instance no longer owns the switch under the epoch it holds. */
export class StaleOwnerError extends Error {
  override readonly name = 'StaleOwnerError';
  constructor(
    readonly switchName: string,
    readonly epoch: number,
  ) {
    super(
      `switch ${switchName}: not its owner under epoch ${epoch} any more; the change log was not written`,
    );
  }
}

/** Who may write, as of now: the owner value and epoch, or null when this instance does not own it. */
export type Holder = () => { owner: OwnerValue; epoch: number } | null;

export class EtcdChangeLog implements ChangeLog {
  private chain: Promise<void> = Promise.resolve();
  private doc: ChangeDoc | undefined;
  /** Transactions committed (one per saveChanges), for figures. */
  writes = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: HaKeys,
    readonly switchName: string,
    private readonly holder: Holder,
  ) {}

  /** Reads the switch's change log from etcd (linearizable read); undefined where there is none. */
  async load(): Promise<ChangeDoc | undefined> {
    const sw = this.switchName;
    const [changes, watch] = await Promise.all([
      this.client.get(this.keys.changes(sw)).string(),
      this.client.get(this.keys.watch(sw)).string(),
    ]);
    if (changes === null && watch === null) {
      this.doc = undefined;
      return undefined;
    }
    const text = JSON.stringify({
      version: 3,
      changes: { [sw]: changes === null ? [] : (JSON.parse(changes) as unknown) },
      watch: watch === null ? {} : { [sw]: JSON.parse(watch) as unknown },
    });
    this.doc = parseChangeDoc(`etcd:${this.keys.changes(sw)}`, text);
    return this.doc;
  }

  loadChanges(): ChangeDoc | undefined {
    return this.doc;
  }

  /** What a write that landed outside this log (a transaction over several switches) wrote. */
  remember(records: ChangeRecord[], watch: WatchRecord | undefined): void {
    this.doc = {
      changes: { [this.switchName]: records },
      watch: watch === undefined ? {} : { [this.switchName]: watch },
    };
  }

  /** Writes this switch's records and watch record, fenced by owner and epoch; in call order. */
  saveChanges(doc: ChangeDoc): Promise<void> {
    const sw = this.switchName;
    const records: ChangeRecord[] = doc.changes[sw] ?? [];
    const watch: WatchRecord | undefined = doc.watch[sw];
    const changesText = JSON.stringify(records);
    const watchText = watch === undefined ? undefined : JSON.stringify(watch);
    const run = this.chain.then(async () => {
      const h = this.holder();
      if (h === null) throw new StaleOwnerError(sw, 0);
      const puts = [this.client.put(this.keys.changes(sw)).value(changesText)];
      if (watchText !== undefined) puts.push(this.client.put(this.keys.watch(sw)).value(watchText));
      const res = await this.client
        .if(this.keys.owner(sw), 'Value', '==', ownerText(h.owner))
        .and(this.keys.epoch(sw), 'Value', '==', String(h.epoch))
        .then(...puts)
        .commit();
      if (!res.succeeded) throw new StaleOwnerError(sw, h.epoch);
      this.writes++;
      this.doc = {
        changes: { [sw]: records },
        watch: watch === undefined ? {} : { [sw]: watch },
      };
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
