// Consent for changes flowpin cannot fully keep: before a drain, an addition or an undrain the
// API runs its dry run, and a change that would put connections at risk (no room or no answer
// for some flows, SYNs shed, connections expected in the change window, a mirror that cannot
// be trusted, or, in `always` mode, a pin table nearly full so that new connections soon go
// unpinned) is refused with the report unless the request accepts the risk explicitly. A
// removal that would drop the pins of connections still on the nexthop is refused likewise.

import type { DryRunReport } from '../changes.js';
import type { Controller, SwitchStatus } from '../controller.js';
import { AddressError, hostAddress } from '../address.js';
import { conflict } from '../errors.js';

/** The pin table as readiness reports it, with the pin mode that decides whether it is a risk. */
export interface TableView {
  pinMode: 'always' | 'on-change';
  table: SwitchStatus['pins']['table'];
  free: number;
  capacity: number;
}

/** A dry run with the pin table at the time, as the 409 carries it. */
export type ConsentReport = DryRunReport & { pinTable: TableView };

/**
 * In `always` mode every new connection needs a pin of its own: a table nearly full (or full)
 * leaves the connections that arrive during and after the change unprotected.
 */
export function tableRisk(t: TableView): string | null {
  if (t.pinMode !== 'always' || t.table === 'ok') return null;
  return `the pin table is ${t.table} (${t.free} of ${t.capacity} entries free) in always mode: new connections ${t.table === 'full' ? 'go' : 'will soon go'} unpinned`;
}

/** What in a dry run puts connections at risk, in words; empty when nothing does. */
export function risksOf(dry: DryRunReport, table?: TableView): string[] {
  const out: string[] = [];
  const by = Object.entries(dry.atRiskBy).filter(([, n]) => n > 0).map(([why, n]) => `${why} ${n}`);
  if (dry.atRisk > 0) out.push(`${dry.atRisk} live connections at risk (${by.join(', ')})`);
  if (dry.expectedWindowFlows > 0) out.push(`about ${dry.expectedWindowFlows} new connections expected in the ${dry.expectedWindowMs} ms change window at ${dry.synRate} SYN/s`);
  if (dry.mirror.state !== 'ok') out.push(`the mirror is ${dry.mirror.state}${dry.mirror.why === null ? '' : ` (${dry.mirror.why})`}`);
  const t = table === undefined ? null : tableRisk(table);
  if (t !== null) out.push(t);
  return out;
}

/** Throws 409 with the dry-run report where the change puts connections at risk. */
export function requireConsent(what: string, dry: DryRunReport, table?: TableView): void {
  const risks = risksOf(dry, table);
  if (risks.length === 0) return;
  const report = table === undefined ? dry : { ...dry, pinTable: table };
  throw conflict(`${what} puts connections at risk: ${risks.join('; ')}. Send "acceptRisk": true to go ahead (the dry run is in detail.report)`, { report: report as unknown as Record<string, unknown> });
}

/** The pin table of a switch as readiness reports it. */
export function tableOf(controller: Controller, sw: string): TableView {
  const rt = controller.runtime(sw);
  const p = controller.status(rt).pins;
  return { pinMode: rt.pinMode, table: p.table, free: p.free, capacity: p.capacity };
}

export type ConsentChange = { kind: 'drain' | 'add' | 'undrain'; vip: string; nexthop: string };

/**
 * Runs the change's dry run and throws 409 with the report where it puts connections at risk
 * (the caller skips this where the request accepts the risk or is a dry run itself).
 */
export async function requireChangeConsent(controller: Controller, sw: string, c: ConsentChange): Promise<void> {
  const cm = controller.changeManager(sw);
  const what = `${c.kind === 'drain' ? 'draining' : c.kind === 'add' ? 'adding' : 'putting back'} ${c.nexthop.slice(0, 64)}`;
  const dry = c.kind === 'undrain' ? await cm.undrainDryRun(c.vip, c.nexthop) : ((c.kind === 'drain' ? await cm.drain(c.vip, c.nexthop, { dryRun: true }) : await cm.add(c.vip, c.nexthop, { dryRun: true })) as DryRunReport);
  if (dry === null) return;
  requireConsent(what, dry, tableOf(controller, sw));
}

/**
 * A removal drops the pins of the connections still on the nexthop: where any remain, it needs
 * the caller's consent (`acceptRisk`, or the older `force`), else 409 with what would be lost.
 */
export function requireRemoveConsent(controller: Controller, sw: string, vip: string, nexthop: string): void {
  const cm = controller.changeManager(sw);
  const v = cm.vip(vip);
  const rt = controller.runtime(sw);
  let nh: string;
  try {
    nh = hostAddress(nexthop);
  } catch (err) {
    if (err instanceof AddressError) return; // refused by the removal itself, naming the field
    throw err;
  }
  if (v.members.has(nh) || !v.nexthops.has(nh)) return; // refused (or not found) by the removal itself, with its own reason
  const pinned = rt.pinnedOn(v.address, nh);
  if (pinned === 0) return;
  const report = { dryRun: true, switch: sw, vip: v.address, nexthop: nh, pinnedLeft: pinned, atRisk: pinned, atRiskBy: { 'pins-removed': pinned } };
  throw conflict(`removing ${nh} puts connections at risk: ${pinned} pinned connections on it lose their pins and move to other servers. Wait for the drain to complete, or send acceptRisk=true to go ahead (the report is in detail.report)`, { report, pinned });
}
