// Which instance owns each switch. A switch's owner key is bound to its owner's lease (etcd
// deletes it when the lease expires or is revoked), and its epoch key only grows: both are
// written in ONE etcd transaction that succeeds only if the owner key is absent (or still the
// one this instance read) and the epoch key has the mod revision read (so the epoch written is
// the one read + 1, and no two owners ever hold the same epoch). A transaction's compares and
// its puts are one atomic step at one revision (etcd API guide, "Transaction"), so no revision
// of etcd shows a new owner with an old epoch.
//
// Each pass (on every change under the prefix, seen by a watch, and every `pollMs`): the live
// members (member keys, bound to their leases) decide by rendezvous hashing which should own
// each switch. An owner hands a switch to the member that should own it only when no change
// is in flight on it (`inFlight`), by deleting its owner key (compare: still its owner, same
// epoch); the other takes it on its next pass. A switch whose owner key is gone (its lease
// expired or was revoked: the owner is gone) is taken by the member that should own it,
// whatever was in flight on it. A pass that would write while this instance's lease is past
// its own deadline writes nothing; and when the deadline passes every switch is dropped
// (`lost`) at once, from the lease's timer, not from a pass.

import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue } from 'etcd3';
import { rendezvousOwner } from './rendezvous.js';
import { ownerText, parseOwner, type HaKeys, type OwnerValue } from './keys.js';
import type { HaLease } from './lease.js';

export interface Owned {
  epoch: number;
  owner: OwnerValue;
}

export type LostReason = 'deadline' | 'handover' | 'taken' | 'stopped';

export interface OwnershipOptions {
  client: Etcd3;
  keys: HaKeys;
  name: string;
  lease: HaLease;
  switches: readonly string[];
  /** Whether a change is in flight on a switch this instance owns: such a switch is not handed over. */
  inFlight: (sw: string) => boolean;
  /** A pass at least this often (default 1000 ms), besides one on every change the watch sees. */
  pollMs?: number;
}

interface SwitchView {
  owner: OwnerValue | null;
  ownerMod: string;
  epoch: number;
  epochMod: string;
}

export class Ownership extends EventEmitter<{
  acquired: [string, number];
  lost: [string, LostReason];
  error: [Error];
}> {
  private readonly owned = new Map<string, Owned>();
  private readonly client: Etcd3;
  private readonly keys: HaKeys;
  private readonly lease: HaLease;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private watcher: { cancel(): Promise<void> } | undefined;
  /** Passes run, for tests and figures. */
  passes = 0;

  constructor(private readonly opts: OwnershipOptions) {
    super();
    this.client = opts.client;
    this.keys = opts.keys;
    this.lease = opts.lease;
  }

  /** The switches this instance owns, with their epochs. */
  ownedSwitches(): ReadonlyMap<string, Owned> {
    return this.owned;
  }

  /** Drops every switch at once (the lease's deadline passed, or the instance stops). */
  dropAll(reason: LostReason): void {
    for (const sw of [...this.owned.keys()]) {
      this.owned.delete(sw);
      this.emit('lost', sw, reason);
    }
  }

  async start(): Promise<void> {
    this.stopped = false;
    const w = await this.client.watch().prefix(this.keys.prefix).create();
    w.on('data', () => this.kick());
    w.on('error', () => undefined);
    this.watcher = w;
    await this.pass();
    this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.watcher?.cancel().catch(() => undefined);
    await this.running?.catch(() => undefined);
    this.dropAll('stopped');
  }

  /** A pass now (or right after the one running). */
  kick(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    void this.pass();
  }

  private loop(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.kick();
      this.loop();
    }, this.opts.pollMs ?? 1000);
  }

  /** One pass: read members and switches, take, keep or hand over each switch. */
  pass(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.passOnce();
        } while (this.again && !this.stopped);
      } catch (err) {
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private me(): OwnerValue {
    return { name: this.opts.name, lease: this.lease.hexId };
  }

  private async passOnce(): Promise<void> {
    this.passes++;
    if (!this.lease.valid()) {
      this.dropAll('deadline');
      return;
    }
    const [members, views] = await Promise.all([this.readMembers(), this.readSwitches()]);
    for (const sw of this.opts.switches) {
      if (this.stopped || !this.lease.valid()) return;
      const v = views.get(sw) ?? { owner: null, ownerMod: '0', epoch: 0, epochMod: '0' };
      const mine = v.owner !== null && sameOwner(v.owner, this.me());
      const held = this.owned.get(sw);
      if (held !== undefined && !(mine && v.epoch === held.epoch)) {
        // The owner key is gone (this lease expired or was revoked) or names another.
        this.owned.delete(sw);
        this.emit('lost', sw, 'taken');
      }
      const want = rendezvousOwner(sw, members);
      if (v.owner === null) {
        if (want === this.opts.name) await this.take(sw, v, null);
      } else if (mine && !this.owned.has(sw)) {
        // Still bound to this lease after its deadline had passed: taken again under a new epoch.
        await this.take(sw, v, v.owner);
      } else if (mine && want !== undefined && want !== this.opts.name && !this.opts.inFlight(sw)) {
        await this.handOver(sw, v);
      }
    }
  }

  private async readMembers(): Promise<Set<string>> {
    const kvs = await this.client.getAll().prefix(this.keys.members()).strings();
    return new Set(
      Object.values(kvs).flatMap((t) => {
        try {
          const m = JSON.parse(t) as { name?: unknown };
          return typeof m.name === 'string' ? [m.name] : [];
        } catch {
          return [];
        }
      }),
    );
  }

  private async readSwitches(): Promise<Map<string, SwitchView>> {
    const res = await this.client.getAll().prefix(`${this.keys.prefix}switches/`).exec();
    const byKey = new Map<string, IKeyValue>(res.kvs.map((kv) => [kv.key.toString(), kv]));
    const out = new Map<string, SwitchView>();
    for (const sw of this.opts.switches) {
      const o = byKey.get(this.keys.owner(sw));
      const e = byKey.get(this.keys.epoch(sw));
      out.set(sw, {
        owner: o === undefined ? null : parseOwner(o.value.toString()),
        ownerMod: o?.mod_revision ?? '0',
        epoch: e === undefined ? 0 : Number(e.value.toString()),
        epochMod: e?.mod_revision ?? '0',
      });
    }
    return out;
  }

  /** Takes `sw`: owner key (bound to this lease) and epoch + 1 in one transaction. */
  private async take(sw: string, v: SwitchView, expectOwner: OwnerValue | null): Promise<void> {
    const me = this.me();
    const epoch = v.epoch + 1;
    const ownerKey = this.keys.owner(sw);
    const epochKey = this.keys.epoch(sw);
    const txn = this.client.if(epochKey, 'Mod', '==', Number(v.epochMod));
    if (expectOwner === null) txn.and(ownerKey, 'Create', '==', 0);
    else txn.and(ownerKey, 'Mod', '==', Number(v.ownerMod));
    const res = await txn
      .then(
        this.client.put(ownerKey).value(ownerText(me)).lease(this.lease.id),
        this.client.put(epochKey).value(String(epoch)),
      )
      .commit();
    if (!res.succeeded || !this.lease.valid() || this.stopped) return;
    this.owned.set(sw, { epoch, owner: me });
    this.emit('acquired', sw, epoch);
  }

  /** Hands `sw` over: deletes its owner key if this instance still owns it under the same epoch. */
  private async handOver(sw: string, v: SwitchView): Promise<void> {
    const held = this.owned.get(sw);
    if (held === undefined) return;
    // Dropped first: nothing may start on the switch while the delete is on its way.
    this.owned.delete(sw);
    this.emit('lost', sw, 'handover');
    await this.client
      .if(this.keys.owner(sw), 'Value', '==', ownerText(held.owner))
      .and(this.keys.epoch(sw), 'Value', '==', String(held.epoch))
      .and(this.keys.owner(sw), 'Mod', '==', Number(v.ownerMod))
      .then(this.client.delete().key(this.keys.owner(sw)))
      .commit();
  }
}

const sameOwner = (a: OwnerValue, b: OwnerValue): boolean => a.name === b.name && a.lease === b.lease;
