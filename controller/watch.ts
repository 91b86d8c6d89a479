// Since when flowpin has watched a switch's mirror, and what it may not have seen. A
// connection opened while flowpin was not watching (before it started, or while it was down
// between a stop and a restart) is unknown to it: a change cannot pin it. Until the watch
// covers the configured connection lifetime, the dry run estimates those connections and a
// change needs consent for them.
//
// The estimate is an upper bound, and says how it was made: for each interval not watched in
// the last lifetime, the VIP's SYN rate times the interval's length times the share of
// connections that live at least as long as the interval is old. That share comes from a
// sample of the SYNs flowpin saw (up to 16 per cohort of SYN time): the share of a cohort still
// tracked. Survival only falls with age, so where no cohort is as old as the interval, the
// oldest cohorts seen bound it from above; with too small a sample the share is 1.

export interface WatchInterval {
  from: number;
  to: number;
}

/** What a restart needs: the intervals watched within the last lifetime (clock ms). */
export interface WatchRecord {
  watched: WatchInterval[];
}

export interface UnseenEstimate {
  /** Connections that may be open and unknown to flowpin (an upper bound, rounded). */
  connections: number;
  /** How it was made, in words. */
  basis: string;
  /** Seconds of the last connection lifetime not watched. */
  unwatchedS: number;
}

export interface WatchOptions {
  /** The configured connection lifetime (ms): connections older than this are not expected. */
  lifetimeMs: number;
  now: () => number;
  /** No connection of this switch is older than this (clock ms): nothing before it to miss. */
  knownEmptyBefore?: number;
  /** Whether a sampled flow is still tracked (open as far as flowpin knows). */
  tracked: (key: string) => boolean;
}

const PER_COHORT = 16;
const MAX_COHORTS = 360;
const MIN_SAMPLE = 32;
const round1 = (x: number): number => Math.round(x * 10) / 10;

interface Cohort {
  start: number;
  keys: string[];
}

export class WatchLedger {
  private readonly prior: WatchInterval[] = [];
  private since: number | undefined;
  private readonly cohortMs: number;
  private cohorts: Cohort[] = [];

  private knownEmptyBefore: number | undefined;

  constructor(private readonly o: WatchOptions) {
    this.cohortMs = Math.max(10_000, Math.ceil(o.lifetimeMs / MAX_COHORTS));
    this.knownEmptyBefore = o.knownEmptyBefore;
  }

  /**
   * No connection is older than `t`: known after the start (a lab that starts its traffic once flowpin
   * watches).
   */
  noConnectionsBefore(t: number): void {
    this.knownEmptyBefore = Math.max(this.knownEmptyBefore ?? -Infinity, t);
  }

  /** Watching begins now (the mirror is listened to); `saved` carries what was watched before a restart. */
  begin(saved?: WatchRecord): void {
    this.since = this.o.now();
    if (saved !== undefined)
      for (const w of saved.watched)
        if (w.to > w.from && w.to <= this.since) this.prior.push({ from: w.from, to: w.to });
  }

  get watching(): boolean {
    return this.since !== undefined;
  }

  /** The intervals watched within the last lifetime, the current one up to now: what to persist. */
  record(durableUntil?: number): WatchRecord {
    const now = this.o.now();
    const horizon = now - this.o.lifetimeMs;
    const watched = this.prior.filter((w) => w.to > horizon).map((w) => ({ ...w }));
    // Watched up to now, or only up to where what was seen is durable (the rest is a restart's gap).
    if (this.since !== undefined)
      watched.push({ from: this.since, to: Math.max(this.since, Math.min(now, durableUntil ?? now)) });
    return { watched };
  }

  /** Samples a SYN for the survival estimate. */
  sample(key: string, now: number): void {
    const start = Math.floor(now / this.cohortMs) * this.cohortMs;
    let last = this.cohorts.at(-1);
    if (last === undefined || last.start !== start) {
      last = { start, keys: [] };
      this.cohorts.push(last);
      const horizon = now - this.o.lifetimeMs - this.cohortMs;
      while (this.cohorts.length > 0 && (this.cohorts[0] as Cohort).start < horizon) this.cohorts.shift();
    }
    if (last.keys.length < PER_COHORT) last.keys.push(key);
  }

  /** Intervals of the last lifetime flowpin did not watch, oldest first. */
  unwatched(): WatchInterval[] {
    const now = this.o.now();
    let from = Math.max(now - this.o.lifetimeMs, this.knownEmptyBefore ?? -Infinity);
    const watched = [
      ...this.prior,
      ...(this.since === undefined ? [] : [{ from: this.since, to: now }]),
    ].sort((a, b) => a.from - b.from);
    const out: WatchInterval[] = [];
    for (const w of watched) {
      if (w.to <= from) continue;
      if (w.from > from) out.push({ from, to: Math.min(w.from, now) });
      from = Math.max(from, w.to);
    }
    if (from < now && this.since === undefined) out.push({ from, to: now });
    return out.filter((i) => i.to > i.from);
  }

  /** True while some of the last lifetime was not watched. */
  warming(): boolean {
    return this.unwatched().length > 0;
  }

  /**
   * The share of connections still open at `ageMs` after their SYN, bounded from above by the
   * oldest cohorts where none is that old; with `sample` the size of the sample it rests on.
   */
  survival(ageMs: number): { share: number; sample: number; atAgeS: number } {
    const now = this.o.now();
    let n = 0;
    let alive = 0;
    let atAge = Infinity;
    // Oldest first: every cohort at least `ageMs` old, then younger ones until the sample is large enough.
    for (const c of this.cohorts) {
      const age = now - (c.start + this.cohortMs);
      if (age < 0 || (age < ageMs && n >= MIN_SAMPLE)) break;
      for (const k of c.keys) {
        n++;
        if (this.o.tracked(k)) alive++;
      }
      atAge = Math.min(atAge, age);
    }
    if (n < MIN_SAMPLE) return { share: 1, sample: n, atAgeS: 0 };
    return { share: alive / n, sample: n, atAgeS: round1(Math.min(atAge, ageMs) / 1000) };
  }

  /**
   * Connections of a VIP (SYN rate `ratePerS`) that may be open and unknown to flowpin, with how the bound
   * was made.
   */
  unseen(ratePerS: number): UnseenEstimate {
    const now = this.o.now();
    const gaps = this.unwatched();
    if (gaps.length === 0)
      return {
        connections: 0,
        basis: `flowpin has watched this switch's mirror for the whole connection lifetime (${round1(this.o.lifetimeMs / 1000)} s)`,
        unwatchedS: 0,
      };
    let total = 0;
    let unwatched = 0;
    const parts: string[] = [];
    for (const g of gaps) {
      const lenS = (g.to - g.from) / 1000;
      unwatched += lenS;
      const s = this.survival(now - g.to);
      total += ratePerS * lenS * s.share;
      // After a watched interval: flowpin was down; otherwise it had not started watching yet.
      const what =
        this.since === undefined && g.to >= now
          ? 'not watched yet'
          : this.prior.some((w) => w.to === g.from)
            ? 'while flowpin was down'
            : 'before flowpin started watching';
      const share =
        s.sample < MIN_SAMPLE
          ? `all of them (too few connections watched to measure how long they live)`
          : `${round1(s.share * 100)} % (of ${s.sample} sampled connections, still open at ${s.atAgeS} s)`;
      parts.push(
        `${round1(lenS)} s ${what}, ended ${round1((now - g.to) / 1000)} s ago: at ${round1(ratePerS)} SYN/s, ${share}`,
      );
    }
    // Rounded: an interval of a few milliseconds is no connection (0.01 of one), not one.
    return {
      connections: Math.round(total),
      basis: `upper bound: ${parts.join('; ')}`,
      unwatchedS: round1(unwatched),
    };
  }
}
