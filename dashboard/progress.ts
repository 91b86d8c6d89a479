// A drain's progress as the server keeps it (the change record's progress history, its
// estimate and deadline): the same chart and figures in every tab, after a reload, and for a
// drain started from the CLI or the API; and the panel of drains still running.

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { ProgressChart, type Sample } from './chart.js';
import type { ChangeRecord, Snapshot } from './types.js';

/**
 * Drains the server still tracks: queued or in progress, applied and waiting for their connections, or past
 * their deadline.
 */
export const TRACKED_DRAIN = new Set(['queued', 'pending', 'applied', 'deadline-passed']);

/** The chart's samples: pinned flows left over time, from the server's history. */
export const samplesOf = (rec: ChangeRecord | undefined): Sample[] =>
  (rec?.progress ?? []).map((p) => ({ t: p.t, pinned: p.pinned }));

/** The newest drain of a nexthop in the snapshot. */
export function drainOf(
  snap: Snapshot | null,
  sw: string,
  vip: string,
  nexthop: string,
): ChangeRecord | undefined {
  const changes = snap?.switches.find((s) => s.name === sw)?.changes ?? [];
  return changes
    .filter((c) => c.kind === 'drain' && c.vip === vip && c.nexthop === nexthop)
    .sort((a, b) => b.queuedAt - a.queuedAt)[0];
}

function deadlineText(rec: ChangeRecord, now: number): string {
  if (rec.deadlinePassedAt !== undefined)
    return `passed at ${new Date(rec.deadlinePassedAt).toLocaleTimeString()} with connections left: not drained; flowpin goes on tracking them`;
  if (rec.deadlineAt === undefined)
    return 'none: the drain waits until no live or unknown connection is left';
  return `in ${Math.max(0, Math.ceil((rec.deadlineAt - now) / 1000))} s (${new Date(rec.deadlineAt).toLocaleTimeString()})`;
}

/**
 * One drain: what is left on the nexthop, the chart of its pinned flows, the server's estimate and the
 * deadline.
 */
export function DrainProgress({ rec, now }: { rec: ChangeRecord; now: number }): VNode {
  const left = rec.left;
  return html`<div class="drain-progress" data-testid=${`drain-${rec.nexthop}`}>
    <p>
      <strong>${rec.nexthop}</strong> on ${rec.vip} (${rec.switch}): <span data-testid="drain-phase">${rec.phase}</span>;
      ${left === undefined ? ' nothing measured yet' : html` <span data-testid="drain-left">${left.live} live and ${left.unknown} unknown connections left</span>, ${left.pinned} pinned`}
    </p>
    <${ProgressChart} samples=${samplesOf(rec)} label=${rec.nexthop} />
    <dl class="figures">
      <dt>At the earliest</dt><dd data-testid="drain-estimate">${rec.estimateS === undefined || rec.estimateS === null ? 'not estimated yet' : rec.estimateS === 0 ? 'no pinned flow left' : `${rec.estimateS} s, if its pinned flows send nothing more`}</dd>
      <dt>Deadline</dt><dd data-testid="drain-deadline">${deadlineText(rec, now)}</dd>
    </dl>
  </div>`;
}

/** Every drain still tracked, on any tab: the server's history, not the tab's. */
export function Drains({ snap }: { snap: Snapshot }): VNode | null {
  const drains = snap.switches
    .flatMap((s) => s.changes)
    .filter((c) => c.kind === 'drain' && TRACKED_DRAIN.has(c.phase));
  if (drains.length === 0) return null;
  return html`<section class="panel" aria-labelledby="drains-title" data-testid="drains">
    <h2 id="drains-title">Drains in progress</h2>
    ${drains.map((rec) => html`<${DrainProgress} key=${rec.id} rec=${rec} now=${snap.at} />`)}
  </section>`;
}
