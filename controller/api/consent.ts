// Consent for changes flowpin cannot fully keep: before a drain or an addition the API runs
// its dry run, and a change that would put connections at risk (no room or no answer for
// some flows, SYNs shed, connections expected in the change window, a mirror that cannot be
// trusted) is refused with the report unless the request accepts the risk explicitly.

import type { DryRunReport } from '../changes.js';
import { conflict } from '../errors.js';

/** What in a dry run puts connections at risk, in words; empty when nothing does. */
export function risksOf(dry: DryRunReport): string[] {
  const out: string[] = [];
  const by = Object.entries(dry.atRiskBy).filter(([, n]) => n > 0).map(([why, n]) => `${why} ${n}`);
  if (dry.atRisk > 0) out.push(`${dry.atRisk} live connections at risk (${by.join(', ')})`);
  if (dry.expectedWindowFlows > 0) out.push(`about ${dry.expectedWindowFlows} new connections expected in the ${dry.expectedWindowMs} ms change window at ${dry.synRate} SYN/s`);
  if (dry.mirror.state !== 'ok') out.push(`the mirror is ${dry.mirror.state}${dry.mirror.why === null ? '' : ` (${dry.mirror.why})`}`);
  return out;
}

/** Throws 409 with the dry-run report where the change puts connections at risk. */
export function requireConsent(what: string, dry: DryRunReport): void {
  const risks = risksOf(dry);
  if (risks.length === 0) return;
  throw conflict(`${what} puts connections at risk: ${risks.join('; ')}. Send "acceptRisk": true to go ahead (the dry run is in detail.report)`, { report: dry as unknown as Record<string, unknown> });
}
