// High availability in a running controller: the coordinator's ownership events become what
// the controller may write. Every instance tracks every switch's flows from its own mirror;
// only a switch's owner writes its pins and group and runs its changes.
//
// On `acquired(sw, epoch)`, in order (each step idempotent; a loss meanwhile ends it):
//   1. audit (timed kinds above all), before any write: the pins by epoch and the groups as
//      found; a pin of a higher epoch means a newer owner writes the switch (or etcd's epochs
//      went back), and the takeover stops there, writing nothing;
//   2. fence: the writes carry {epoch, validUntil}, validUntil being the lease's own deadline
//      (monotonic) moved onto the controller's clock; the switch is fenced where its kind keeps
//      a fence (gNMI empty Set with the election id, the Linux nft fence element; eAPI and the
//      simulator are timed) and read again, adopting the pins the last owner left (Reconciler.takeover);
//   3. the mirror-health gate: the changes resume only with the mirror `ok`, so that a resumed
//      change sees the SYNs that come meanwhile (an instance the mirror does not reach waits);
//   4. the switch's change log read from etcd and every open change resumed from its recorded
//      phase (ChangeManager.resume, as after a restart).
// The fence is renewed as the lease is: every RENEW_MS, the lease's deadline now.
// On `lost(sw)`: writes stop at once (the fence's validUntil set in the past: the reconciler
// refuses to start a write), the change manager stops without undoing anything and forgets its
// records (the next owner resumes them from the change log).
// A change asked of a non-owner is refused with 421 naming the owner and its API address (its
// member key), and a `Location` to send it to.

import type { Logger } from 'pino';
import type { FenceToken } from '../../switch-adapters/fence.js';
import type { Controller, HaView, SwitchOwnership } from '../controller.js';
import { FlowpinError } from '../errors.js';
import { FenceAudit, pinKey } from '../fence-audit.js';
import type { HaCoordinator } from './coordinator.js';
import { parseOwner } from './keys.js';
import { monoNow } from './lease.js';
import type { LostReason } from './ownership.js';

/** Why a switch was lost, as a change's caller reads it. */
const LOST_WHY: Record<LostReason, string> = {
  deadline: 'its lease passed its own deadline',
  handover: 'handed over to another instance',
  taken: 'taken by another instance',
  stopped: 'this instance is stopping',
};

/** How often the fence follows the lease's deadline, and the others' ownership is read. */
const RENEW_MS = 200;
const OWNERS_MS = 1000;
/** While a takeover waits for a healthy mirror, it says so this often. */
const MIRROR_LOG_MS = 10_000;
/** A takeover step that failed is tried again after this long while the switch is still owned. */
const RETRY_MS = 1000;

interface SwitchHa {
  /** Owned and taken over: writes and changes run. */
  owned: boolean;
  epoch: number;
  lastTakeoverAt: number | null;
  takeover: string | null;
  /** Bumped at every acquired and lost: a takeover step of an older generation stops. */
  gen: number;
  audit: FenceAudit | undefined;
  lastValidUntil: number;
  /** The takeover fence is written: from now on the fence follows the lease. */
  fenced: boolean;
  /** Stale pins the audits found since the takeover (each counted once). */
  staleSeen: Set<string>;
}

export interface HaTakeoverOptions {
  /**
   * Fault injection for tests of the takeover's own checks (each must make a test fail):
   * skip the audit, the takeover fence, or the resume of open changes; or write on after a loss
   * (`write-after-lost`: nothing stops on `lost`, and the fence carries no deadline).
   */
  breakage?: 'no-audit' | 'no-takeover-fence' | 'write-after-lost' | 'no-resume';
}

export class HaTakeover implements HaView {
  private readonly sws = new Map<string, SwitchHa>();
  /** Who owns each switch as etcd said at the last read: owner name, epoch; member name → API. */
  private owners = new Map<string, { name: string; epoch: number }>();
  private apis = new Map<string, string>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(
    private readonly c: Controller,
    private readonly coord: HaCoordinator,
    private readonly log: Logger,
    private readonly o: HaTakeoverOptions = {},
  ) {}

  /**
   * Before the controller starts: no switch is written until this instance takes it (every
   * reconciler starts fenced off), and the controller asks this object what it owns.
   */
  attach(): void {
    this.c.setHa(this);
    for (const name of this.c.runtimes.keys()) {
      this.sws.set(name, {
        owned: false,
        epoch: 0,
        lastTakeoverAt: null,
        takeover: null,
        gen: 0,
        audit: undefined,
        lastValidUntil: 0,
        fenced: false,
        staleSeen: new Set(),
      });
      this.block(name, 0n);
      this.c.metrics.haOwner.set({ switch: name }, 0);
      this.c.metrics.haTakeovers.inc({ switch: name }, 0);
      for (const found of ['stale', 'ahead'] as const)
        this.c.metrics.haStaleWrites.inc({ switch: name, found }, 0);
    }
    this.coord.on('acquired', (sw, epoch) => void this.acquired(sw, epoch));
    this.coord.on('lost', (sw, reason) => this.lost(sw, reason));
    this.coord.on('uncertain', () => {
      // Both on the monotonic clock at wall-clock scale (lease.ts monoNow): comparable with wall times.
      const l = this.coord.currentLease;
      this.log.warn(
        { lastAckedSentAt: Math.round(l.lastAckedSentAt), deadline: Math.round(l.deadline) },
        'lease past its own deadline: every switch dropped, writes stopped',
      );
    });
    this.coord.on('error', (err) => this.log.warn({ err: err.message }, 'high availability: retrying'));
  }

  /** Joins (lease, member key, first ownership pass); the fence then follows the lease. */
  async start(): Promise<void> {
    await this.coord.start();
    this.log.info(
      { name: this.coord.cfg.name, owned: [...this.coord.ownedSwitches().keys()] },
      'high availability: joined',
    );
    this.timers.push(setInterval(() => this.renew(), RENEW_MS));
    this.timers.push(setInterval(() => void this.readOwners(), OWNERS_MS));
    // The takeover's audit again, every `ha.auditIntervalS`: a stale write that lands late (timed kinds
    // keep no token) is counted and logged; a newer epoch's pin stops this owner's writes.
    this.timers.push(setInterval(() => void this.auditAll(), this.coord.cfg.auditIntervalS * 1000));
    for (const t of this.timers) t.unref();
    await this.readOwners();
  }

  /** Leaves: revokes the lease, so the others take this instance's switches at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.coord.stop();
  }

  owns(sw: string): boolean {
    return this.sws.get(sw)?.owned === true;
  }

  ownership(sw: string): SwitchOwnership {
    const st = this.sws.get(sw);
    const mine = st !== undefined && st.takeover !== null;
    const other = this.owners.get(sw);
    const owner = mine ? this.coord.cfg.name : (other?.name ?? null);
    return {
      owned: st?.owned === true,
      owner,
      ownerApi: owner === null ? null : mine ? this.coord.cfg.apiAddress : (this.apis.get(owner) ?? null),
      epoch: mine ? st.epoch : (other?.epoch ?? st?.epoch ?? 0),
      lastTakeoverAt: st?.lastTakeoverAt ?? null,
      takeover: st?.takeover ?? null,
    };
  }

  notOwner(sw: string): FlowpinError {
    const o = this.ownership(sw);
    if (o.owner === this.coord.cfg.name)
      return new FlowpinError(
        'switch-unavailable',
        `this instance is taking switch ${sw} over (${o.takeover ?? ''}): retry shortly`,
        { switch: sw, owner: o.owner, epoch: o.epoch },
      );
    if (o.owner === null)
      return new FlowpinError(
        'switch-unavailable',
        `no flowpin instance owns switch ${sw} now (a takeover is under way): retry shortly`,
        { switch: sw },
      );
    const api = o.ownerApi ?? 'unknown';
    return new FlowpinError(
      'not-owner',
      `switch ${sw} is owned by flowpin instance ${o.owner} (API ${api}, epoch ${o.epoch}): send the change there`,
      {
        switch: sw,
        owner: o.owner,
        ownerApi: o.ownerApi,
        epoch: o.epoch,
        ...(o.ownerApi === null
          ? {}
          : { location: `${o.ownerApi}/api/v1/switches/${encodeURIComponent(sw)}` }),
      },
    );
  }

  /** The lease deadline (monotonic) on the controller clock (the reconciler compares it with clock.now()). */
  private toClock(mono: number): number {
    return this.c.clock.now() + (mono - monoNow());
  }

  /** The fence for writes under `epoch` until the lease's deadline (monotonic `until`). */
  private token(epoch: number, until: number): FenceToken {
    if (this.o.breakage === 'write-after-lost') return { epoch: BigInt(epoch) };
    return { epoch: BigInt(epoch), validUntil: this.toClock(until) };
  }

  /** Writes stop at once: a fence whose validUntil has passed (the reconciler starts no write). */
  /**
   * The takeover's audit again for every switch owned: pins of a lower epoch that were not there at the
   * takeover are stale writes that landed (counted once each); a pin of a higher epoch means a newer
   * owner writes the switch, and this one stops writing it.
   */
  private async auditAll(): Promise<void> {
    for (const [sw, st] of this.sws) {
      const audit = st.audit;
      if (!st.owned || audit === undefined || this.stopped) continue;
      const gen = st.gen;
      try {
        const report = await audit.check(this.c.runtime(sw).reconciler.groups);
        if (st.gen !== gen) continue;
        const fresh = report.staleAfterTakeover.filter((p) => !st.staleSeen.has(pinKey(p)));
        for (const p of fresh) st.staleSeen.add(pinKey(p));
        if (fresh.length > 0) {
          this.c.metrics.haStaleWrites.inc({ switch: sw, found: 'stale' }, fresh.length);
          this.log.error(
            { switch: sw, epoch: st.epoch, stale: fresh.length, first: fresh[0]?.name },
            'high availability: pins of an older owner landed after the takeover',
          );
        }
        if (report.ahead.length > 0) {
          this.c.metrics.haStaleWrites.inc({ switch: sw, found: 'ahead' }, report.ahead.length);
          this.block(sw, BigInt(st.epoch));
          this.log.error(
            { switch: sw, epoch: st.epoch, ahead: report.ahead.length },
            'high availability: the switch holds pins of a newer epoch; writes stopped',
          );
        }
      } catch (err) {
        this.log.warn(
          { switch: sw, err: err instanceof Error ? err.message : String(err) },
          'high availability: the periodic audit could not read the switch; next time',
        );
      }
    }
  }

  private block(sw: string, epoch: bigint): void {
    this.c.setFence(sw, { epoch, validUntil: -1 });
  }

  private state(sw: string): SwitchHa | undefined {
    return this.sws.get(sw);
  }

  private async acquired(sw: string, epoch: number): Promise<void> {
    const st = this.state(sw);
    if (st === undefined || this.stopped) return;
    const gen = ++st.gen;
    st.epoch = epoch;
    st.owned = false;
    st.fenced = false;
    st.takeover = 'fencing';
    this.log.info({ switch: sw, epoch }, 'high availability: switch acquired, taking it over');
    const alive = (): boolean =>
      !this.stopped && st.gen === gen && this.coord.ownedSwitches().get(sw) === epoch;
    while (alive()) {
      try {
        await this.takeOver(sw, st, epoch, alive);
        return;
      } catch (err) {
        if (!alive()) return;
        this.log.error(
          { switch: sw, epoch, step: st.takeover, err: err instanceof Error ? err.message : String(err) },
          'takeover step failed: retrying',
        );
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  private async takeOver(sw: string, st: SwitchHa, epoch: number, alive: () => boolean): Promise<void> {
    const t0 = monoNow();
    const rt = this.c.runtime(sw);
    // 1. the audit, before anything is written: what the switch holds, by epoch. A pin of a
    // higher epoch than the one taken means a newer owner wrote the switch (or etcd lost its
    // epochs: restored from an old backup); nothing is written under this epoch then.
    st.takeover = 'auditing';
    if (this.o.breakage !== 'no-audit') {
      const audit = await FenceAudit.takeover(rt.adapter, BigInt(epoch), [...rt.vips.keys()]);
      const report = await audit.check();
      if (report.ahead.length > 0) {
        this.block(sw, BigInt(epoch));
        throw new Error(
          `the switch holds ${report.ahead.length} pins of a higher epoch than ${epoch}: a newer owner writes it`,
        );
      }
      st.audit = audit;
      this.log.info(
        {
          switch: sw,
          epoch,
          pinsByEpoch: Object.fromEntries([...report.pinsByEpoch].map(([e, n]) => [String(e), n])),
        },
        'takeover audit: the switch as found',
      );
    }
    if (!alive()) return;
    // 2. the fence on the switch, and the switch read again (the last owner's pins adopted).
    st.takeover = 'fencing';
    const f = this.coord.fence(sw);
    const token = this.token(epoch, f.validUntil);
    st.lastValidUntil = f.validUntil;
    if (this.o.breakage === 'no-takeover-fence') this.c.setFence(sw, token);
    else await this.c.fenceTakeover(sw, token);
    st.fenced = true;
    if (!alive()) return;
    // 3. the mirror-health gate: no change resumes on a mirror this instance does not receive
    // (its connections would count as none); logged every MIRROR_LOG_MS while it waits.
    st.takeover = 'mirror';
    let logAt = monoNow() + MIRROR_LOG_MS;
    while (rt.mirrorHealth().state !== 'ok' && alive()) {
      if (monoNow() >= logAt) {
        const m = rt.mirrorHealth();
        this.log.warn(
          { switch: sw, mirror: m.state, why: m.why },
          'takeover waits for the mirror to be healthy before the changes resume',
        );
        logAt = monoNow() + MIRROR_LOG_MS;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!alive()) return;
    // 4. the change log from etcd; every open change resumed.
    st.takeover = 'resuming';
    const log = this.coord.changeLog(sw);
    const doc = await log.load();
    if (!alive()) return;
    const cm = this.c.changeManager(sw);
    st.owned = true;
    st.takeover = 'done';
    st.lastTakeoverAt = this.c.clock.now();
    this.c.metrics.haOwner.set({ switch: sw }, 1);
    this.c.metrics.haTakeovers.inc({ switch: sw });
    const records = doc?.changes[sw] ?? [];
    cm.reacquire(records);
    const open = cm.active().map((r) => ({ id: r.id, kind: r.kind, phase: r.phase }));
    this.log.info(
      { switch: sw, epoch, open, takeoverMs: Math.round(monoNow() - t0) },
      'high availability: switch taken over; resuming its open changes',
    );
    if (this.o.breakage === 'no-resume') return;
    // Resumed as after a restart; this instance watched the mirror all along (no gap of its own).
    cm.resume(null).catch((err: unknown) =>
      this.log.error(
        { switch: sw, err: err instanceof Error ? err.message : String(err) },
        'resuming changes after a takeover failed',
      ),
    );
  }

  private lost(sw: string, reason: LostReason): void {
    const st = this.state(sw);
    if (st === undefined) return;
    st.gen++;
    const was = st.takeover !== null;
    st.owned = false;
    st.fenced = false;
    st.takeover = null;
    st.audit = undefined;
    st.staleSeen.clear();
    this.c.metrics.haOwner.set({ switch: sw }, 0);
    if (this.o.breakage === 'write-after-lost') return;
    this.block(sw, BigInt(st.epoch));
    // Work stops where it is; nothing undone: the next owner resumes from the change log.
    this.c
      .changeManager(sw)
      .release(
        `this instance no longer owns switch ${sw} (${LOST_WHY[reason]}): changes in progress are recorded and its next owner resumes them (GET /api/v1/switches names the owner)`,
      );
    if (was)
      this.log.warn(
        { switch: sw, epoch: st.epoch, reason },
        'high availability: switch lost, writes stopped',
      );
  }

  /** The fence follows the lease's deadline. */
  private renew(): void {
    for (const [sw, st] of this.sws) {
      if (st.takeover === null || !st.fenced) continue;
      let f;
      try {
        f = this.coord.fence(sw);
      } catch {
        continue; // lost: its event stops the writes
      }
      if (f.epoch !== st.epoch || f.validUntil === st.lastValidUntil) continue;
      st.lastValidUntil = f.validUntil;
      this.c.setFence(sw, this.token(f.epoch, f.validUntil));
    }
  }

  /** Who owns each switch and where the members' APIs are, from etcd. */
  private async readOwners(): Promise<void> {
    try {
      const keys = this.coord.keys;
      const [members, kvs] = await Promise.all([
        this.coord.members(),
        this.coord.client.getAll().prefix(`${keys.prefix}switches/`).strings(),
      ]);
      this.apis = new Map(members.map((m) => [m.name, m.apiAddress]));
      const owners = new Map<string, { name: string; epoch: number }>();
      for (const sw of this.sws.keys()) {
        const o = parseOwner(kvs[keys.owner(sw)] ?? null);
        if (o !== null) owners.set(sw, { name: o.name, epoch: Number(kvs[keys.epoch(sw)] ?? 0) });
      }
      this.owners = owners;
    } catch {
      // etcd not answering: the last read stands (the ownership's own passes say more).
    }
  }
}
