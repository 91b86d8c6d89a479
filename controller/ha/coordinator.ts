// The high-availability facade the controller wires in: one etcd client, this instance's
// lease and member key, the ownership of switches, and each owned switch's fenced change log.
//   start()/stop()             join (lease, member key, first ownership pass) / leave (revoke)
//   ownedSwitches()            the switches this instance owns now, with their epochs
//   fence(sw)                  {epoch, validUntil} to put on a write to the switch, or NotOwnerError
//   changeLog(sw)              the switch's change log in etcd (writes fenced by owner and epoch)
//   events                     acquired(sw, epoch), lost(sw, reason), uncertain, error (retried;
//                              emitted only where someone listens)
// When the lease's own deadline passes every switch is lost at once; if etcd then confirms the
// lease, switches still bound to it are taken again under a new epoch; if etcd says the lease
// is gone, a new lease is granted and the member key written again.

import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import type { HaConfig } from './config.js';
import { EtcdChangeLog } from './change-log.js';
import { haKeys, type HaKeys, type MemberValue, type OwnerValue } from './keys.js';
import { HaLease, type HaLeaseOptions } from './lease.js';
import { Ownership, type LostReason } from './ownership.js';

export class NotOwnerError extends Error {
  override readonly name = 'NotOwnerError';
  constructor(readonly switchName: string) {
    super(`switch ${switchName} is not owned by this instance (or its lease is past its deadline)`);
  }
}

/** Another live instance holds this instance's name. */
export class DuplicateMemberError extends Error {
  override readonly name = 'DuplicateMemberError';
  constructor(
    readonly memberName: string,
    readonly holder: string,
  ) {
    super(
      `another flowpin instance named '${memberName}' is running (member key: ${holder}); give each its own ha.name`,
    );
  }
}

export interface Fence {
  epoch: number;
  /** The instant (monoNow scale) after which no write may start under this epoch. */
  validUntil: number;
}

export interface CoordinatorOptions {
  switches: readonly string[];
  inFlight: (sw: string) => boolean;
  pollMs?: number;
  /** Lease timing beyond the configured TTL (margin, cadence), for tests. */
  lease?: Omit<HaLeaseOptions, 'ttlS'>;
}

/** etcd3 client options from `ha:` (TLS files read now). */
export function etcdOptions(cfg: HaConfig): IOptions {
  return {
    hosts: cfg.endpoints,
    dialTimeout: 2000,
    ...(cfg.tls === undefined
      ? {}
      : {
          credentials: {
            rootCertificate: readFileSync(cfg.tls.caFile),
            ...(cfg.tls.keyFile === undefined ? {} : { privateKey: readFileSync(cfg.tls.keyFile) }),
            ...(cfg.tls.certFile === undefined ? {} : { certChain: readFileSync(cfg.tls.certFile) }),
          },
        }),
  };
}

export class HaCoordinator extends EventEmitter<{
  acquired: [string, number];
  lost: [string, LostReason];
  uncertain: [];
  error: [Error];
}> {
  readonly client: Etcd3;
  readonly keys: HaKeys;
  private lease: HaLease;
  private ownership: Ownership;
  private readonly logs = new Map<string, EtcdChangeLog>();
  private stopped = false;

  constructor(
    readonly cfg: HaConfig,
    private readonly opts: CoordinatorOptions,
  ) {
    super();
    this.client = new Etcd3(etcdOptions(cfg));
    this.keys = haKeys(cfg.prefix);
    this.lease = this.newLease();
    this.ownership = this.newOwnership();
  }

  /** This instance's lease (its deadline, figures). */
  get currentLease(): HaLease {
    return this.lease;
  }

  get passes(): number {
    return this.ownership.passes;
  }

  private newLease(): HaLease {
    const lease = new HaLease(this.client, { ttlS: this.cfg.leaseTtlS, ...this.opts.lease });
    lease.on('uncertain', () => {
      this.ownership?.dropAll('deadline');
      this.emit('uncertain');
    });
    lease.on('renewed', () => this.ownership?.kick());
    lease.on('gone', () => void this.rejoin());
    return lease;
  }

  private newOwnership(): Ownership {
    const o = new Ownership({
      client: this.client,
      keys: this.keys,
      name: this.cfg.name,
      lease: this.lease,
      switches: this.opts.switches,
      inFlight: this.opts.inFlight,
      ...(this.opts.pollMs === undefined ? {} : { pollMs: this.opts.pollMs }),
    });
    o.on('acquired', (sw, e) => this.emit('acquired', sw, e));
    o.on('lost', (sw, r) => this.emit('lost', sw, r));
    o.on('error', (err) => this.report(err));
    return o;
  }

  /**
   * A failure that is retried (an ownership pass or a rejoin that etcd did not answer): for the
   * log, to whoever listens; never thrown (an 'error' event with no listener would be).
   */
  private report(err: unknown): void {
    if (this.listenerCount('error') > 0)
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  /** Grants the lease, writes the member key, and runs the first ownership pass. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.lease.grant();
    try {
      await this.register();
    } catch (err) {
      await this.lease.revoke().catch(() => undefined);
      throw err;
    }
    await this.ownership.start();
  }

  /**
   * Writes the member key, only where no other live instance holds the name: a key left by this
   * name's previous process (killed) goes with its lease within a TTL, so this waits up to two
   * TTLs, then refuses to start (two instances under one name would look like one member).
   */
  private async register(): Promise<void> {
    const key = this.keys.member(this.cfg.name);
    const m: MemberValue = { name: this.cfg.name, apiAddress: this.cfg.apiAddress, lease: this.lease.hexId };
    const until = Date.now() + 2 * this.cfg.leaseTtlS * 1000;
    for (;;) {
      const res = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(JSON.stringify(m)).lease(this.lease.id))
        .commit();
      if (res.succeeded) return;
      if (this.stopped || Date.now() > until) {
        const other = await this.client.get(key).string();
        throw new DuplicateMemberError(this.cfg.name, other ?? '');
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The lease is gone (expired or revoked): a new lease, the member key again, ownership anew. */
  private async rejoin(): Promise<void> {
    await this.ownership.stop();
    while (!this.stopped) {
      try {
        this.lease = this.newLease();
        this.ownership = this.newOwnership();
        await this.lease.grant();
        await this.register();
        await this.ownership.start();
        return;
      } catch (err) {
        this.lease.close();
        this.report(err);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** Leaves: drops every switch, revokes the lease (etcd deletes its keys at once), closes the client. */
  async stop(opts: { revoke?: boolean } = {}): Promise<void> {
    this.stopped = true;
    await this.ownership.stop();
    if (opts.revoke !== false) await this.lease.revoke().catch(() => undefined);
    else this.lease.close();
    this.client.close();
  }

  /** The switches this instance owns now, and their epochs. */
  ownedSwitches(): Map<string, number> {
    const out = new Map<string, number>();
    if (!this.lease.valid()) return out;
    for (const [sw, o] of this.ownership.ownedSwitches()) out.set(sw, o.epoch);
    return out;
  }

  /** What a write to `sw` must carry and respect; NotOwnerError where this instance may not write. */
  fence(sw: string): Fence {
    const o = this.ownership.ownedSwitches().get(sw);
    if (o === undefined || !this.lease.valid()) throw new NotOwnerError(sw);
    return { epoch: o.epoch, validUntil: this.lease.validUntil() };
  }

  /** Who may write `sw` now (this instance's owner value and epoch), or null where it may not. */
  holder(sw: string): { owner: OwnerValue; epoch: number } | null {
    const o = this.ownership.ownedSwitches().get(sw);
    return o === undefined || !this.lease.valid() ? null : { owner: o.owner, epoch: o.epoch };
  }

  /** The switch's change log in etcd; its writes fail (StaleOwnerError) unless this instance owns it. */
  changeLog(sw: string): EtcdChangeLog {
    let log = this.logs.get(sw);
    if (log === undefined) {
      log = new EtcdChangeLog(this.client, this.keys, sw, () => this.holder(sw));
      this.logs.set(sw, log);
    }
    return log;
  }

  /** The live members (name, API address), from their member keys. */
  async members(): Promise<MemberValue[]> {
    const kvs = await this.client.getAll().prefix(this.keys.members()).strings();
    return Object.values(kvs).map((t) => JSON.parse(t) as MemberValue);
  }

  /** Runs an ownership pass now and waits for it. */
  pass(): Promise<void> {
    return this.ownership.pass();
  }
}
