// Changes from the page: a dry run first (drain, add), or the current figures (undrain,
// remove), an explicit confirmation, then the change and its live progress; and the history
// of changes with their figures.

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, nexthopPath } from './api.js';
import { ProgressChart, type Sample } from './chart.js';
import type { ChangeRecord, DryRun, Snapshot } from './types.js';

export interface Intent {
  kind: 'drain' | 'undrain' | 'add' | 'remove';
  switch: string;
  vip: string;
  nexthop: string;
}

type Step = { at: 'checking' } | { at: 'confirm'; dry: DryRun | null } | { at: 'running' } | { at: 'done'; result: ChangeRecord | null; message: string } | { at: 'error'; message: string };

const risk = (by: Record<string, number>): string =>
  Object.entries(by)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

function DryRunReport({ dry }: { dry: DryRun }): VNode {
  return html`<dl class="figures" data-testid="dry-run">
    <dt>Flows to pin</dt><dd>${dry.flowsToPin}</dd>
    <dt>Already pinned</dt><dd>${dry.alreadyPinned}</dd>
    <dt>Programmable room</dt><dd>${dry.freeEntries} free entries</dd>
    <dt>Flows at risk</dt><dd>${dry.atRisk} (${risk(dry.atRiskBy)})</dd>
    <dt>Unresolved flows</dt><dd>${dry.unresolved}</dd>
    <dt>Expected change window</dt><dd>${dry.expectedWindowMs} ms, about ${dry.expectedWindowFlows} new flows (SYN rate ${dry.synRate.toFixed(1)}/s)</dd>
    ${dry.movedFlowsKnown ? null : html`<dt>Moved flows</dt><dd>not known on this switch: every live flow is pinned</dd>`}
  </dl>`;
}

export function ChangePanel({ intent, snap, onClose }: { intent: Intent; snap: Snapshot | null; onClose: () => void }): VNode {
  const [step, setStep] = useState<Step>({ at: 'checking' });
  const [deadline, setDeadline] = useState('');
  const [samples, setSamples] = useState<Sample[]>([]);
  const label = `${intent.kind} ${intent.nexthop} on ${intent.vip} (${intent.switch})`;
  const nh = snap?.switches.find((s) => s.name === intent.switch)?.vips.find((v) => v.address === intent.vip)?.nexthops.find((n) => n.address === intent.nexthop);

  useEffect(() => {
    if (intent.kind === 'drain' || intent.kind === 'add') {
      const path = intent.kind === 'drain' ? `${nexthopPath(intent.switch, intent.vip, intent.nexthop)}/drain` : nexthopPath(intent.switch, intent.vip);
      const body = intent.kind === 'drain' ? { dryRun: true } : { address: intent.nexthop, dryRun: true };
      call<DryRun>('POST', path, body).then((dry) => setStep({ at: 'confirm', dry }), (err: Error) => setStep({ at: 'error', message: err.message }));
    } else setStep({ at: 'confirm', dry: null });
  }, [intent]);

  // Progress: the nexthop's pinned flows from each snapshot while the drain runs.
  useEffect(() => {
    if (intent.kind !== 'drain' || nh === undefined || snap === null) return;
    if (step.at !== 'running' && step.at !== 'done') return;
    setSamples((s) => (s[s.length - 1]?.t === snap.at ? s : [...s.slice(-600), { t: snap.at, pinned: nh.pinned }]));
  }, [snap?.at]);

  const confirm = (): void => {
    setStep({ at: 'running' });
    const base = nexthopPath(intent.switch, intent.vip, intent.nexthop);
    const d = Number(deadline);
    // Confirming after the dry run is the operator's explicit consent to what it reported.
    const consent = { acceptRisk: true };
    const req =
      intent.kind === 'drain' ? call<ChangeRecord>('POST', `${base}/drain`, { ...consent, ...(deadline === '' ? {} : { deadlineSeconds: d }) })
      : intent.kind === 'add' ? call<ChangeRecord>('POST', nexthopPath(intent.switch, intent.vip), { address: intent.nexthop, ...consent })
      : intent.kind === 'undrain' ? call<{ state: string }>('POST', `${base}/undrain`, consent).then(() => null)
      : call<{ pinnedLeft: number }>('DELETE', `${base}?acceptRisk=true`).then(() => null);
    req.then(
      (result) => setStep({ at: 'done', result, message: result === null ? `${label}: done` : `${label}: ${result.phase}` }),
      (err: Error) => setStep({ at: 'error', message: err.message }),
    );
  };

  const record = snap?.switches.find((s) => s.name === intent.switch)?.changes.find((c) => step.at === 'done' && c.id === step.result?.id);
  return html`<section class="panel change" aria-labelledby="change-title" data-testid="change-panel">
    <h2 id="change-title">Change: ${label}</h2>
    ${step.at === 'checking' ? html`<p role="status">Asking for a dry run…</p>` : null}
    ${step.at === 'error' ? html`<p role="alert" class="bad">${step.message}</p>` : null}
    ${step.at === 'confirm'
      ? html`<div>
          ${step.dry === null
            ? html`<p>${intent.nexthop} has ${nh?.pinned ?? 0} pinned and ${nh?.tracked ?? 0} tracked flows, state ${nh?.state ?? 'unknown'}.</p>`
            : html`<h3>Dry run</h3><${DryRunReport} dry=${step.dry} />`}
          ${intent.kind === 'drain'
            ? html`<p><label>Deadline (seconds, empty for none): <input type="number" min="0" step="1" value=${deadline} onInput=${(e: Event) => setDeadline((e.target as HTMLInputElement).value)} data-testid="deadline" /></label></p>`
            : null}
          <p>
            <button type="button" class="primary" onClick=${confirm} data-testid="confirm">Confirm ${intent.kind} of ${intent.nexthop}</button>
            <button type="button" onClick=${onClose}>Cancel</button>
          </p>
        </div>`
      : null}
    ${step.at === 'running' ? html`<p role="status">Running the ${intent.kind}…</p>` : null}
    ${step.at === 'done'
      ? html`<div>
          <p role="status" data-testid="change-status">${record === undefined ? step.message : `${label}: ${record.phase}${record.deadlineReached ? ' (deadline reached)' : ''}`}; nexthop now <strong data-testid="nexthop-state">${nh?.state ?? 'removed'}</strong></p>
          ${record === undefined ? null : html`<p>Pinned at the change ${record.pinned}, at risk ${record.atRisk} (${risk(record.atRiskBy)}), change-window flows ${record.windowFlows}.</p>`}
          ${intent.kind === 'drain' ? html`<${ProgressChart} samples=${samples} label=${intent.nexthop} />` : null}
          <p><button type="button" onClick=${onClose}>Close</button></p>
        </div>`
      : null}
  </section>`;
}

const time = (ms: number | undefined): string => (ms === undefined ? '' : new Date(ms).toLocaleTimeString());

export function History({ snap }: { snap: Snapshot }): VNode {
  const rows = snap.switches.flatMap((s) => s.changes).sort((a, b) => b.queuedAt - a.queuedAt);
  return html`<section class="panel" aria-labelledby="history-title">
    <h2 id="history-title">Changes</h2>
    ${rows.length === 0
      ? html`<p>No change yet.</p>`
      : html`<table data-testid="history">
          <thead><tr><th scope="col">Change</th><th scope="col">Switch</th><th scope="col">VIP</th><th scope="col">Nexthop</th><th scope="col">Phase</th><th scope="col">Pinned</th><th scope="col">At risk</th><th scope="col">Window flows</th><th scope="col">Left</th><th scope="col">Started</th><th scope="col">Completed</th></tr></thead>
          <tbody>
            ${rows.map((r) => html`<tr key=${r.id}>
              <td>${r.kind} ${r.id}</td><td>${r.switch}</td><td>${r.vip}</td><td>${r.nexthop}</td>
              <td>${r.phase}${r.deadlineReached ? ' (deadline)' : ''}${r.error ? html` <span class="bad">${r.error}</span>` : null}</td>
              <td class="num">${r.pinned}</td><td class="num" title=${risk(r.atRiskBy)}>${r.atRisk}${r.atRisk > 0 ? ` (${risk(r.atRiskBy)})` : ''}</td><td class="num">${r.windowFlows}</td><td class="num">${r.remaining}</td>
              <td>${time(r.startedAt)}</td><td>${time(r.completedAt)}</td>
            </tr>`)}
          </tbody>
        </table>`}
  </section>`;
}
