// Seeded pseudo-random numbers (mulberry32) and the lifetime distributions of simulated
// connections, so that a scenario replays identically for a seed.

export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, maxInclusive: number): number {
    return min + Math.floor(this.next() * (maxInclusive - min + 1));
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

export type LifetimeDistribution =
  | { kind: 'lognormal'; medianS: number; sigma: number; maxS: number }
  | { kind: 'pareto'; minS: number; alpha: number; maxS: number }
  | { kind: 'exponential'; meanS: number; maxS: number }
  | { kind: 'fixed'; s: number }
  /**
   * Most connections short (lognormal around `medianS`), a share `longShare` long-lived with a
   * Pareto tail from `longMinS` (some for hours): the shape measured for web and RPC traffic.
   */
  | {
      kind: 'heavy-tail';
      medianS: number;
      sigma: number;
      longShare: number;
      longMinS: number;
      alpha: number;
      maxS: number;
    };

/** A connection lifetime in milliseconds. */
export function sampleLifetimeMs(d: LifetimeDistribution, rng: Rng): number {
  let s: number;
  switch (d.kind) {
    case 'lognormal':
      s = Math.min(d.maxS, d.medianS * Math.exp(d.sigma * rng.normal()));
      break;
    case 'pareto':
      s = Math.min(d.maxS, d.minS / Math.pow(1 - rng.next(), 1 / d.alpha));
      break;
    case 'exponential':
      s = Math.min(d.maxS, -d.meanS * Math.log(1 - rng.next()));
      break;
    case 'fixed':
      s = d.s;
      break;
    case 'heavy-tail':
      s =
        rng.next() < d.longShare
          ? Math.min(d.maxS, d.longMinS / Math.pow(1 - rng.next(), 1 / d.alpha))
          : Math.min(d.maxS, d.medianS * Math.exp(d.sigma * rng.normal()));
      break;
  }
  return Math.max(1, Math.round(s * 1000));
}

/**
 * Remaining lifetimes (ms) of connections found open at a random moment of a steady state of
 * `d` (new connections at a constant rate, for longer than the longest lifetime): a connection
 * is found open with a chance in proportion to its lifetime (length-biased, so long-lived ones
 * dominate what is open at any moment), at a uniform point of it. Built from `samples` draws.
 */
export function steadyStateRemaining(d: LifetimeDistribution, rng: Rng, samples = 20_000): () => number {
  const lives = new Float64Array(samples);
  const cumulative = new Float64Array(samples);
  let total = 0;
  for (let i = 0; i < samples; i++) {
    lives[i] = sampleLifetimeMs(d, rng);
    total += lives[i] as number;
    cumulative[i] = total;
  }
  return () => {
    const u = rng.next() * total;
    let lo = 0;
    let hi = samples - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return Math.max(1, Math.round(rng.next() * (lives[lo] as number)));
  };
}
