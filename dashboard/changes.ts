// Changes from the page: a dry run first (drain, add), or the current figures (undrain,
// remove), an explicit confirmation (asking for the operator token when the tab has none),
// then the change and its live progress with an estimate of when the drain reaches zero;
// and the history of changes with their figures.

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, nexthopPath, token } from './api.js';
import { ProgressChart, secondsToZero, type Sample } from './chart.js';
import type { ChangeRecord, DrainEstimate, DryRun, Snapshot } from './types.js';

export interface Intent {
  kind: 'drain' | 'undrain' | 'add' | 'remove';
  switch: string;
  vip: string;
  nexthop: string;
}

type Step = { at: 'token'; error: string } | { at: 'checking' } | { at: 'confirm'; dry: DryRun | null } | { at: 'running' } | { at: 'done'; result: ChangeRecord | null; message: string } | { at: 'error'; message: string };

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
    <dt>Servers learnt by</dt><dd>${dry.resolution === 'none' ? 'nothing: no look-up and no mirrored replies (every flow is at risk)' : dry.resolution === 'observe' ? 'the mirrored SYN-ACKs' : dry.resolution === 'both' ? 'the mirrored SYN-ACKs, checked against look-ups' : 'look-ups on the switch'}</dd>
  </dl>`;
}

/**
 * When the nexthop's pinned flows reach zero: at the earliest when the flows left go quiet
 * (the server's estimate from their last packets and the pin idle timeout), and at the
 * recent rate of fall (the chart's trend); the later of the two is the estimate shown.
 */
export function etaSeconds(est: DrainEstimate | undefined, samples: Sample[]): number | null {
  const trend = secondsToZero(samples);
  if (est === undefined) return trend;
  if (est.pinned === 0) return 0;
  return Math.max(est.earliestS, trend ?? 0);
}

function DrainEta({ est, samples }: { est: DrainEstimate | undefined; samples: Sample[] }): VNode {
  const eta = etaSeconds(est, samples);
  const trend = secondsToZero(samples);
  return html`<div class="eta">
    <p data-testid="drain-eta">${eta === null ? 'No estimate yet' : eta === 0 ? 'No pinned flow left' : html`Zero in about <strong>${Math.ceil(eta)} s</strong>`}</p>
    ${est === undefined || est.pinned === 0
      ? null
      : html`<dl class="figures">
          <dt>At the earliest</dt><dd data-testid="eta-earliest">${est.earliestS} s, if the ${est.pinned} flows left send nothing more</dd>
          <dt>At the recent rate</dt><dd>${trend === null ? 'not falling yet' : `${trend} s`}</dd>
          <dt>Ages of the flows left</dt><dd data-testid="eta-ages">median ${est.medianAgeS ?? 0} s, oldest ${est.oldestAgeS ?? 0} s</dd>
        </dl>`}
    <details>
      <summary>How is this computed?</summary>
      <p>A pinned flow leaves the nexthop when its connection ends (FIN or RST, where the switch mirrors them) or when its pin sees no packet for the pin idle timeout (${est?.idleTimeoutS ?? '–'} s). If every flow left went quiet now, the last pin would go at the latest of its flows' last packet plus the idle timeout: that is the earliest the count can reach zero. Flows still sending push it out, so the page also fits a line through the falling count over the last minute and shows the later of the two. Long-lived flows (see their ages) may keep a drain going; a deadline ends it regardless.</p>
    </details>
  </div>`;
}

export function ChangePanel({ intent, snap, onClose }: { intent: Intent; snap: Snapshot | null; onClose: () => void }): VNode {
  const [step, setStep] = useState<Step>({ at: 'checking' });
  const [deadline, setDeadline] = useState('');
  const [typed, setTyped] = useState('');
  const [attempt, setAttempt] = useState(0);
  const [samples, setSamples] = useState<Sample[]>([]);
  const label = `${intent.kind} ${intent.nexthop} on ${intent.vip} (${intent.switch})`;
  const nh = snap?.switches.find((s) => s.name === intent.switch)?.vips.find((v) => v.address === intent.vip)?.nexthops.find((n) => n.address === intent.nexthop);

  /** A missing or wrong token: nothing was changed; the tab forgets it and asks again. */
  const denied = (err: Error): boolean => {
    if (!(err instanceof ApiError && err.status === 401)) return false;
    token.set('');
    setTyped('');
    setStep({ at: 'token', error: err.message });
    return true;
  };

  useEffect(() => {
    // Changes and their dry runs need the operator token: asked for here when the tab has none.
    if (token.get() === '') {
      setStep({ at: 'token', error: '' });
      return;
    }
    setStep({ at: 'checking' });
    if (intent.kind === 'drain' || intent.kind === 'add') {
      const path = intent.kind === 'drain' ? `${nexthopPath(intent.switch, intent.vip, intent.nexthop)}/drain` : nexthopPath(intent.switch, intent.vip);
      const body = intent.kind === 'drain' ? { dryRun: true } : { address: intent.nexthop, dryRun: true };
      call<DryRun>('POST', path, body).then((dry) => setStep({ at: 'confirm', dry }), (err: Error) => denied(err) || setStep({ at: 'error', message: err.message }));
    } else setStep({ at: 'confirm', dry: null });
  }, [intent, attempt]);

  // Progress: the nexthop's pinned flows from each snapshot while the drain runs.
  useEffect(() => {
    if (intent.kind !== 'drain' || nh === undefined || snap === null) return;
    if (step.at !== 'running' && step.at !== 'done') return;
    setSamples((s) => (s[s.length - 1]?.t === snap.at ? s : [...s.slice(-600), { t: snap.at, pinned: nh.pinned }]));
  }, [snap?.at]);

  const useToken = (e: Event): void => {
    e.preventDefault();
    if (typed.trim() === '') return;
    token.set(typed.trim());
    setAttempt((n) => n + 1);
  };

  const confirm = (): void => {
    setStep({ at: 'running' });
    const base = nexthopPath(intent.switch, intent.vip, intent.nexthop);
    const d = Number(deadline);
    // Confirming after the dry run consents to what it reported, and no more: its total is the bound
    // (checked again right before the group write); where flowpin cannot count, only "unbounded" consents.
    const dry = step.at === 'confirm' ? step.dry : null;
    const figures = dry?.figures;
    const maxAtRisk = figures === undefined ? 0 : figures.uncountable !== null ? 'unbounded' : figures.total;
    const consent = { maxAtRisk };
    const left = (nh?.pinned ?? 0) + (nh?.tracked ?? 0);
    const req =
      intent.kind === 'drain' ? call<ChangeRecord>('POST', `${base}/drain`, { ...consent, ...(deadline === '' ? {} : { deadlineSeconds: d }) })
      : intent.kind === 'add' ? call<ChangeRecord>('POST', nexthopPath(intent.switch, intent.vip), { address: intent.nexthop, ...consent })
      : intent.kind === 'undrain' ? call<{ state: string }>('POST', `${base}/undrain`, consent).then(() => null)
      : call<{ removed: boolean }>('DELETE', `${base}?maxAtRisk=${left}`).then(() => null);
    req.then(
      (result) => setStep({ at: 'done', result, message: result === null ? `${label}: done` : `${label}: ${result.phase}` }),
      (err: Error) => denied(err) || setStep({ at: 'error', message: err.message }),
    );
  };

  const record = snap?.switches.find((s) => s.name === intent.switch)?.changes.find((c) => step.at === 'done' && c.id === step.result?.id);
  return html`<section class="panel change" aria-labelledby="change-title" data-testid="change-panel">
    <h2 id="change-title">Change: ${label}</h2>
    ${step.at === 'token'
      ? html`<form class="ask-token" onSubmit=${useToken}>
          <p><label>Operator token, needed for changes and their dry runs (kept in this tab only): <input type="password" autocomplete="off" value=${typed} onInput=${(e: Event) => setTyped((e.target as HTMLInputElement).value)} data-testid="change-token" aria-describedby="token-why" /></label></p>
          <p id="token-why">${step.error === '' ? html`<small>The page reads without one.</small>` : html`<span role="alert" class="bad">${step.error}</span>`}</p>
          <p>
            <button type="submit" class="primary" disabled=${typed.trim() === ''} data-testid="use-token">Use the token and continue</button>
            <button type="button" onClick=${onClose}>Cancel</button>
          </p>
        </form>`
      : null}
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
          ${intent.kind === 'drain' ? html`<div class="progress"><${ProgressChart} samples=${samples} label=${intent.nexthop} /><${DrainEta} est=${nh?.estimate} samples=${samples} /></div>` : null}
          <p><button type="button" onClick=${onClose}>Close</button></p>
        </div>`
      : null}
  </section>`;
}

const time = (ms: number | undefined): string => (ms === undefined ? '' : new Date(ms).toLocaleTimeString());

export function History({ snap }: { snap: Snapshot }): VNode {
  const rows = snap.switches.flatMap((s) => s.changes).sort((a, b) => b.queuedAt - a.queuedAt);
  return html`<section class="panel wide" aria-labelledby="history-title">
    <h2 id="history-title">Changes</h2>
    ${rows.length === 0
      ? html`<p>No change yet.</p>`
      : html`<table class="stack history" data-testid="history">
          <thead><tr><th scope="col">Change</th><th scope="col">Switch</th><th scope="col">VIP</th><th scope="col">Nexthop</th><th scope="col">Phase</th><th scope="col">Pinned</th><th scope="col">At risk</th><th scope="col" title="Connections that opened in the change window without a certain, programmed pin">Window</th><th scope="col" title="Server resets (RST from the VIP) seen on the reply mirror after the change, until the next change of the VIP; – where the switch does not mirror them">Resets</th><th scope="col" title="Pinned flows left on the nexthop">Left</th><th scope="col">Started</th><th scope="col">Completed</th></tr></thead>
          <tbody>
            ${rows.map((r) => html`<tr key=${r.id}>
              <th scope="row" class="change-id"><span class="kind">${r.kind}</span> <code title=${r.id}>${r.id}</code></th><td data-label="Switch">${r.switch}</td><td data-label="VIP">${r.vip}</td><td data-label="Nexthop">${r.nexthop}</td>
              <td data-label="Phase" class=${r.phase === 'failed' ? 'bad' : r.phase === 'complete' ? 'good' : ''}>${r.phase}${r.deadlineReached ? ' (deadline)' : ''}${r.error ? html` <span class="bad">${r.error}</span>` : null}</td>
              <td data-label="Pinned" class="num">${r.pinned}</td><td data-label="At risk" class=${r.atRisk > 0 ? 'num bad' : 'num'} title=${risk(r.atRiskBy)}>${r.atRisk}</td><td data-label="Window" class=${r.windowFlows > 0 ? 'num warn' : 'num'}>${r.windowFlows}</td><td data-label="Resets" class=${(r.resetsSeen ?? 0) > 0 ? 'num bad' : 'num'}>${r.resetsSeen ?? '–'}</td><td data-label="Left" class="num">${r.remaining}</td>
              <td data-label="Started">${time(r.startedAt)}</td><td data-label="Completed">${time(r.completedAt)}</td>
            </tr>`)}
          </tbody>
        </table>`}
  </section>`;
}
