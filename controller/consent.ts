// Consent with a bound: the figures a change is checked against, and the check. A change goes
// ahead only where what it may cost is within the bound its caller stated (`maxAtRisk`): the
// connections flowpin saw and cannot keep, those it may never have seen, and the connections
// expected in the change window where they are more than the configured threshold (a few are
// expected under any live traffic; asking consent for them would make consent a formality).
// A mirror flowpin cannot trust makes the count unknown: only `unbounded` consents then. Pure.

import type { AtRiskCounts, MaxAtRisk, RiskFigures } from './change-record.js';

export interface FigureInputs {
  atRiskBy: AtRiskCounts;
  unseen: number;
  expectedWindowFlows: number;
  /** Window flows count against the bound only above this many. */
  windowThreshold: number;
  /** Why flowpin cannot count (the mirror's state), or null. */
  uncountable: string | null;
}

export function riskFigures(i: FigureInputs): RiskFigures {
  const atRisk = Object.values(i.atRiskBy).reduce((a, b) => a + b, 0);
  const windowCounts = i.expectedWindowFlows > i.windowThreshold;
  return {
    atRisk,
    atRiskBy: { ...i.atRiskBy },
    unseen: i.unseen,
    expectedWindowFlows: i.expectedWindowFlows,
    windowCounts,
    uncountable: i.uncountable,
    total: atRisk + i.unseen + (windowCounts ? i.expectedWindowFlows : 0),
  };
}

/** Why the figures exceed the bound, in words; null where the change may go ahead. */
export function exceeds(f: RiskFigures, bound: MaxAtRisk): string | null {
  if (bound === 'unbounded') return null;
  if (f.uncountable !== null)
    return `flowpin cannot count the connections at risk: ${f.uncountable}; only maxAtRisk "unbounded" consents to that`;
  if (f.total <= bound) return null;
  return `${f.total} connections may be lost (${describe(f)}), more than the bound of ${bound}`;
}

/** The parts of the figures, in words: `table-full 12, unseen 40 (estimate), window 9`. */
export function describe(f: RiskFigures): string {
  const parts = Object.entries(f.atRiskBy)
    .filter(([, n]) => n > 0)
    .map(([why, n]) => `${why} ${n}`);
  if (f.unseen > 0) parts.push(`unseen ${f.unseen} (an upper bound)`);
  if (f.windowCounts) parts.push(`change window ${f.expectedWindowFlows} (expected)`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}
