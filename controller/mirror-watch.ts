// What a switch's mirror shows flowpin, and whether it can be trusted: SYNs per VIP and their
// rate against the switch's usual rate (a silent or collapsed mirror), frames lost before
// decoding (dropping), and which connection ends it carries: FIN and RST from the clients,
// and from the servers on the reply session. A mirror that shows SYNs but never an end is
// `syn-only`: flowpin then cannot tell an ended connection from a live one, and its flows age
// by the configured connection lifetime. Time comes from the caller.

/** Which connection ends the mirror carries. */
export type LivenessSource = 'both-ways' | 'client-side' | 'server-side' | 'syn-only' | 'not-yet-known';

/** What the switch's mirror tells flowpin, and whether it can be trusted. */
export interface MirrorHealth {
  /** `dropping`: mirrored frames were lost before decoding within the last window. */
  state: 'ok' | 'silent' | 'collapsed' | 'dropping';
  syns: number;
  /**
   * Mirrored frames lost before decoding since start (kernel socket drops, backlog); null where not known.
   */
  dropped: number | null;
  /** SYNs per second over the last window, and the switch's usual rate (slow average). */
  synRate: number;
  usualRate: number;
  /** Seconds since the last mirrored SYN; null before the first. */
  lastSynAgoS: number | null;
  why: string | null;
  /**
   * Connection ends the mirror carries (`syn-only`: none seen; flows then age by the connection lifetime).
   */
  liveness: LivenessSource;
  /** FIN or RST segments seen from clients and from servers since start. */
  ends: { client: number; server: number };
}

export interface VipRates {
  /** SYNs accepted for the VIP. */
  syns: number;
  /** SYNs per second over the last full rate window, and the count when that window began. */
  synRate: number;
  synsAtWindow: number;
}

export interface MirrorWatchOptions {
  /** No SYN for this long: silent (seconds). */
  silenceS: number;
  /** Rate below this share of the usual rate: collapsed. */
  collapseRatio: number;
  /** SYNs seen with no connection end before the mirror counts as `syn-only`. */
  synOnlyAfter: number;
  /**
   * What the switch is configured to mirror, where the operator says so (`auto`: learnt from what it shows).
   */
  declared?: 'auto' | 'both-ways' | 'client-side' | 'syn-only';
  now: () => number;
  /** Mirror frames lost before decoding (socket and backlog drops). */
  loss?: () => { dropped: number; recent: boolean; why: string | null };
}

const RATE_WINDOW_MS = 10_000;
const round1 = (x: number): number => Math.round(x * 10) / 10;

export class MirrorWatch {
  private rateStart: number;
  private readonly startedAt: number;
  private syns = 0;
  private synsAtWindow = 0;
  private synRate = 0;
  private usualRate = 0;
  private lastSynAt: number | undefined;
  private clientEnds = 0;
  private serverEnds = 0;
  private sheds = 0;
  private shedsAtWindow = 0;
  private lastShedShare = 0;

  constructor(private readonly o: MirrorWatchOptions) {
    this.rateStart = o.now();
    this.startedAt = this.rateStart;
  }

  /** A SYN accepted for `vip`. */
  syn(vip: VipRates, now: number): void {
    vip.syns++;
    this.syns++;
    this.lastSynAt = now;
    this.roll(now, [vip]);
  }

  /** A SYN (counted by syn()) was shed: the look-ups could not keep up. */
  shed(): void {
    this.sheds++;
  }

  /** Share of SYNs shed over the last full rate window (or the current one, where higher). */
  get shedShare(): number {
    const syns = this.syns - this.synsAtWindow;
    const current = syns > 0 ? (this.sheds - this.shedsAtWindow) / syns : 0;
    return Math.round(Math.max(this.lastShedShare, current) * 1000) / 1000;
  }

  /** A FIN or RST seen from a client (toward a VIP) or from a server (from a VIP). */
  end(side: 'client' | 'server'): void {
    if (side === 'client') this.clientEnds++;
    else this.serverEnds++;
  }

  get liveness(): LivenessSource {
    const d = this.o.declared ?? 'auto';
    if (d !== 'auto') return d;
    if (this.clientEnds > 0 && this.serverEnds > 0) return 'both-ways';
    if (this.clientEnds > 0) return 'client-side';
    if (this.serverEnds > 0) return 'server-side';
    return this.syns >= this.o.synOnlyAfter ? 'syn-only' : 'not-yet-known';
  }

  /** Closes the rate window if it is over (also when no SYN comes: a silent mirror's rate is 0). */
  roll(now: number, vips: Iterable<VipRates>): void {
    const elapsed = now - this.rateStart;
    if (elapsed < RATE_WINDOW_MS) return;
    for (const v of vips) {
      v.synRate = ((v.syns - v.synsAtWindow) * 1000) / elapsed;
      v.synsAtWindow = v.syns;
    }
    this.synRate = ((this.syns - this.synsAtWindow) * 1000) / elapsed;
    this.lastShedShare =
      this.syns > this.synsAtWindow ? (this.sheds - this.shedsAtWindow) / (this.syns - this.synsAtWindow) : 0;
    this.shedsAtWindow = this.sheds;
    this.synsAtWindow = this.syns;
    // The usual rate follows slowly (a few minutes), so a collapse shows against it.
    this.usualRate = this.usualRate === 0 ? this.synRate : this.usualRate * 0.95 + this.synRate * 0.05;
    this.rateStart = now;
  }

  /**
   * A VIP's SYN rate: the last full window's, or, before one has closed (or when the current
   * one already runs higher), the current window's once it is a second old.
   */
  rateOf(vip: VipRates, all: Iterable<VipRates>): number {
    const now = this.o.now();
    this.roll(now, all);
    const elapsed = now - this.rateStart;
    // In the first window after a start no full window stands behind the rate: under a second, the SYNs
    // seen so far over the time seen (at least 100 ms), not 0. A restarted instance that holds a change at
    // once would otherwise count none of the connections opened while it was down (its unseen bound).
    const first = this.rateStart === this.startedAt;
    const current =
      elapsed >= 1000 || (first && elapsed > 0)
        ? ((vip.syns - vip.synsAtWindow) * 1000) / Math.max(elapsed, 100)
        : 0;
    return Math.max(vip.synRate, current);
  }

  /**
   * The mirror's health: silent (no SYN for silenceS), collapsed (rate far below usual), dropping (frames
   * lost lately), or ok.
   */
  health(all: Iterable<VipRates>): MirrorHealth {
    const now = this.o.now();
    this.roll(now, all);
    const silenceMs = this.o.silenceS * 1000;
    const since = this.lastSynAt ?? this.startedAt;
    const loss = this.o.loss?.();
    const h: MirrorHealth = {
      state: 'ok',
      syns: this.syns,
      dropped: loss?.dropped ?? null,
      synRate: round1(this.synRate),
      usualRate: round1(this.usualRate),
      lastSynAgoS: this.lastSynAt === undefined ? null : round1((now - this.lastSynAt) / 1000),
      why: null,
      liveness: this.liveness,
      ends: { client: this.clientEnds, server: this.serverEnds },
    };
    if (now - since >= silenceMs) {
      h.state = 'silent';
      h.why =
        this.lastSynAt === undefined
          ? `no mirrored SYN since flowpin started ${Math.round((now - this.startedAt) / 1000)} s ago: check the switch's mirror session and mirrorSources`
          : `no mirrored SYN for ${Math.round((now - since) / 1000)} s`;
    } else if (this.usualRate >= 5 && this.synRate < this.usualRate * this.o.collapseRatio) {
      h.state = 'collapsed';
      h.why = `mirrored SYNs fell to ${round1(this.synRate)}/s from a usual ${round1(this.usualRate)}/s`;
    } else if (loss?.recent === true) {
      h.state = 'dropping';
      h.why = loss.why;
    }
    return h;
  }
}
