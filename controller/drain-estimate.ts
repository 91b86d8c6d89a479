// When the pinned flows left on a draining nexthop reach zero, from the flows themselves.
// A pin goes when its connection ends (FIN/RST, where the switch mirrors them) or when no
// packet moves its counter for the pin idle timeout. So if every flow left went quiet now,
// the last pin would go at the latest `lastActive + idle timeout` among them: that is the
// earliest time the count can reach zero (`earliestS`). Flows still sending push it out; how
// long they have been going (`ages`) tells how long-lived the connections left are.
// The dashboard also fits a line through the falling count (dashboard/chart.ts) and shows
// the later of the two as its estimate.

export interface PinAge {
  /** When the SYN that led to the pin arrived (ms). */
  since: number;
  /** When the pin's packet counter last moved, as last read (ms); the SYN time before that. */
  lastActive: number;
}

export interface DrainEstimate {
  pinned: number;
  idleTimeoutS: number;
  /** Seconds from now until zero if every flow left sent nothing more; 0 when none is left. */
  earliestS: number;
  /** Ages of the flows left (seconds since their SYN): median and oldest; null when none. */
  medianAgeS: number | null;
  oldestAgeS: number | null;
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

export function estimateDrain(pins: Iterable<PinAge>, idleTimeoutS: number, now: number): DrainEstimate {
  const ages: number[] = [];
  let lastQuiet = now;
  for (const p of pins) {
    ages.push(Math.max(0, now - p.since));
    lastQuiet = Math.max(lastQuiet, Math.max(p.lastActive, p.since) + idleTimeoutS * 1000);
  }
  if (ages.length === 0) return { pinned: 0, idleTimeoutS, earliestS: 0, medianAgeS: null, oldestAgeS: null };
  ages.sort((a, b) => a - b);
  const mid = ages.length >> 1;
  const median =
    ages.length % 2 === 1 ? (ages[mid] as number) : ((ages[mid - 1] as number) + (ages[mid] as number)) / 2;
  return {
    pinned: ages.length,
    idleTimeoutS,
    earliestS: round1((lastQuiet - now) / 1000),
    medianAgeS: round1(median / 1000),
    oldestAgeS: round1((ages[ages.length - 1] as number) / 1000),
  };
}
