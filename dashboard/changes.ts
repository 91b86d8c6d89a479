// Changes from the page: a dry run first (drain, add), or the current figures (undrain,
// remove), an explicit confirmation (asking for the operator token when the tab has none),
// with the most connections the operator accepts to lose (maxAtRisk, the dry run's figures
// unless changed), then the change and its progress as the server keeps it, with an estimate
// of when the drain reaches zero; and the history of changes with their figures.

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, call, nexthopPath, token } from './api.js';
import { ProgressChart, secondsToZero, type Sample } from './chart.js';
import { drainOf, samplesOf } from './progress.js';
import type { Actor, ChangeRecord, DrainEstimate, DryRun, RiskFigures, Snapshot } from './types.js';

export interface Intent {
  kind: 'drain' | 'undrain' | 'add' | 'remove';
  switch: string;
  vip: string;
  nexthop: string;
}

type Step =
  | { at: 'token'; error: string }
  | { at: 'checking' }
  | { at: 'confirm'; dry: DryRun | null }
  | { at: 'running' }
  | { at: 'done'; result: ChangeRecord | null; message: string }
  | { at: 'error'; message: string };

/** A figure the record may not have measured (null across a restart). */
const figure = (n: number | null): string => (n === null ? 'not measured' : String(n));

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
    ${
      est === undefined || est.pinned === 0
        ? null
        : html`<dl class="figures">
          <dt>At the earliest</dt><dd data-testid="eta-earliest">${est.earliestS} s, if the ${est.pinned} flows left send nothing more</dd>
          <dt>At the recent rate</dt><dd>${trend === null ? 'not falling yet' : `${trend} s`}</dd>
          <dt>Ages of the flows left</dt><dd data-testid="eta-ages">median ${est.medianAgeS ?? 0} s, oldest ${est.oldestAgeS ?? 0} s</dd>
        </dl>`
    }
    <details>
      <summary>How is this computed?</summary>
      <p>A pinned flow leaves the nexthop when its connection ends (FIN or RST, where the switch mirrors them) or when its pin sees no packet for the pin idle timeout (${est?.idleTimeoutS ?? '–'} s). If every flow left went quiet now, the last pin would go at the latest of its flows' last packet plus the idle timeout: that is the earliest the count can reach zero. Flows still sending push it out, so the page also fits a line through the falling count over the last minute and shows the later of the two. Long-lived flows (see their ages) may keep a drain going; a deadline ends it regardless.</p>
    </details>
  </div>`;
}

export function ChangePanel({
  intent,
  snap,
  onClose,
}: {
  intent: Intent;
  snap: Snapshot | null;
  onClose: () => void;
}): VNode {
  const [step, setStep] = useState<Step>({ at: 'checking' });
  const [deadline, setDeadline] = useState('');
  const [typed, setTyped] = useState('');
  const [attempt, setAttempt] = useState(0);
  const [bound, setBound] = useState('');
  const label = `${intent.kind} ${intent.nexthop} on ${intent.vip} (${intent.switch})`;
  const nh = snap?.switches
    .find((s) => s.name === intent.switch)
    ?.vips.find((v) => v.address === intent.vip)
    ?.nexthops.find((n) => n.address === intent.nexthop);

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
      const path =
        intent.kind === 'drain'
          ? `${nexthopPath(intent.switch, intent.vip, intent.nexthop)}/drain`
          : nexthopPath(intent.switch, intent.vip);
      const body = intent.kind === 'drain' ? { dryRun: true } : { address: intent.nexthop, dryRun: true };
      call<DryRun>('POST', path, body).then(
        (dry) => {
          // The bound offered: what the dry run counted; where flowpin cannot count, only "unbounded"
          // consents.
          const f = dry.figures;
          setBound(f === undefined ? '0' : f.uncountable !== null ? 'unbounded' : String(f.total));
          setStep({ at: 'confirm', dry });
        },
        (err: Error) => denied(err) || setStep({ at: 'error', message: err.message }),
      );
    } else {
      // Removal loses the connections left on the nexthop; putting a drained member back costs what an
      // addition's window does.
      setBound(intent.kind === 'remove' ? String((nh?.pinned ?? 0) + (nh?.tracked ?? 0)) : '0');
      setStep({ at: 'confirm', dry: null });
    }
  }, [intent, attempt]);

  // Progress: the server's history of the newest drain of this nexthop (the same in every tab).
  const drainRec =
    intent.kind === 'drain' && (step.at === 'running' || step.at === 'done')
      ? drainOf(snap, intent.switch, intent.vip, intent.nexthop)
      : undefined;
  const samples: Sample[] = samplesOf(drainRec);
  const boundValue = bound.trim() === 'unbounded' ? 'unbounded' : Number(bound);
  const boundValid =
    boundValue === 'unbounded' || (bound.trim() !== '' && Number.isInteger(boundValue) && boundValue >= 0);

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
    // The operator's bound (the dry run's total unless changed), checked again right before the group write.
    if (!boundValid) return;
    const maxAtRisk = boundValue;
    const consent = { maxAtRisk };
    const req =
      intent.kind === 'drain'
        ? call<ChangeRecord>('POST', `${base}/drain`, {
            ...consent,
            ...(deadline === '' ? {} : { deadlineSeconds: d }),
          })
        : intent.kind === 'add'
          ? call<ChangeRecord>('POST', nexthopPath(intent.switch, intent.vip), {
              address: intent.nexthop,
              ...consent,
            })
          : intent.kind === 'undrain'
            ? call<{ state: string }>('POST', `${base}/undrain`, consent).then(() => null)
            : call<{ removed: boolean }>(
                'DELETE',
                `${base}?maxAtRisk=${encodeURIComponent(String(maxAtRisk))}`,
              ).then(() => null);
    req.then(
      (result) =>
        setStep({
          at: 'done',
          result,
          message: result === null ? `${label}: done` : `${label}: ${result.phase}`,
        }),
      (err: Error) => denied(err) || setStep({ at: 'error', message: err.message }),
    );
  };

  const record = snap?.switches
    .find((s) => s.name === intent.switch)
    ?.changes.find((c) => step.at === 'done' && c.id === step.result?.id);
  return html`<section class="panel change" aria-labelledby="change-title" data-testid="change-panel">
    <h2 id="change-title">Change: ${label}</h2>
    ${
      step.at === 'token'
        ? html`<form class="ask-token" onSubmit=${useToken}>
          <p><label>Operator token, needed for changes and their dry runs (kept in this tab only): <input type="password" autocomplete="off" value=${typed} onInput=${(e: Event) => setTyped((e.target as HTMLInputElement).value)} data-testid="change-token" aria-describedby="token-why" /></label></p>
          <p id="token-why">${step.error === '' ? html`<small>The page reads without one.</small>` : html`<span role="alert" class="bad">${step.error}</span>`}</p>
          <p>
            <button type="submit" class="primary" disabled=${typed.trim() === ''} data-testid="use-token">Use the token and continue</button>
            <button type="button" onClick=${onClose}>Cancel</button>
          </p>
        </form>`
        : null
    }
    ${step.at === 'checking' ? html`<p role="status">Asking for a dry run…</p>` : null}
    ${step.at === 'error' ? html`<p role="alert" class="bad">${step.message}</p>` : null}
    ${
      step.at === 'confirm'
        ? html`<div>
          ${
            step.dry === null
              ? html`<p>${intent.nexthop} has ${nh?.pinned ?? 0} pinned and ${nh?.tracked ?? 0} tracked flows, state ${nh?.state ?? 'unknown'}.</p>`
              : html`<h3>Dry run</h3><${DryRunReport} dry=${step.dry} />`
          }
          ${
            intent.kind === 'drain'
              ? html`<p><label>Deadline (seconds, empty for none): <input type="number" min="0" step="1" value=${deadline} onInput=${(e: Event) => setDeadline((e.target as HTMLInputElement).value)} data-testid="deadline" /></label></p>`
              : null
          }
          <p><label>Most connections this ${intent.kind} may cost (maxAtRisk, a number or "unbounded"): <input value=${bound} autocomplete="off" inputmode="numeric" onInput=${(e: Event) => setBound((e.target as HTMLInputElement).value)} data-testid="max-at-risk" aria-describedby="bound-why" /></label></p>
          <p id="bound-why"><small>${boundValid ? 'Checked against the figures now and again right before the group write: the change stops before it if they exceed this bound.' : html`<span role="alert" class="bad">A whole number of connections (0 or more), or "unbounded".</span>`}</small></p>
          <p>
            <button type="button" class="primary" onClick=${confirm} disabled=${!boundValid} data-testid="confirm">Confirm ${intent.kind} of ${intent.nexthop}</button>
            <button type="button" onClick=${onClose}>Cancel</button>
          </p>
        </div>`
        : null
    }
    ${step.at === 'running' ? html`<p role="status">Running the ${intent.kind}…</p>` : null}
    ${
      step.at === 'done'
        ? html`<div>
          <p role="status" data-testid="change-status">${record === undefined ? step.message : `${label}: ${record.phase}${record.deadlineReached ? ' (deadline reached)' : ''}`}; nexthop now <strong data-testid="nexthop-state">${nh?.state ?? 'removed'}</strong></p>
          ${record === undefined ? null : html`<p>Pinned at the change ${figure(record.pinned)}, at risk ${figure(record.atRisk)} (${risk(record.atRiskBy)}), change-window flows ${figure(record.windowFlows)}.</p>`}
          ${intent.kind === 'drain' ? html`<div class="progress"><${ProgressChart} samples=${samples} label=${intent.nexthop} /><${DrainEta} est=${nh?.estimate} samples=${samples} />${drainRec?.deadlineAt === undefined ? null : html`<p data-testid="change-deadline">Deadline ${new Date(drainRec.deadlineAt).toLocaleTimeString()}${drainRec.deadlinePassedAt === undefined ? '' : ': passed with connections left, not drained'}</p>`}</div>` : null}
          <p><button type="button" onClick=${onClose}>Close</button></p>
        </div>`
        : null
    }
  </section>`;
}

const time = (ms: number | undefined): string => (ms === undefined ? '' : new Date(ms).toLocaleTimeString());

/** What counted against a change's bound, in words. */
const consentFigures = (f: RiskFigures | undefined): string =>
  f === undefined
    ? 'not recorded'
    : f.uncountable !== null
      ? `not countable (${f.uncountable})`
      : `${f.total} (at risk ${f.atRisk}, never seen ${f.unseen}, window ${f.expectedWindowFlows}${f.windowCounts ? '' : ', not counted'})`;

const actor = (a: Actor | undefined): string =>
  a === undefined ? 'not recorded' : `token ${a.token ?? '(none)'} from ${a.client ?? 'unknown'}`;

/** The audit of a change: who asked (and cancelled), the consent, and the figures it was checked against. */
function auditTitle(r: ChangeRecord): string {
  return [
    `asked by ${actor(r.requestedBy)}`,
    ...(r.cancelledBy === undefined ? [] : [`cancelled by ${actor(r.cancelledBy)}`]),
    `consent: maxAtRisk ${r.maxAtRisk ?? 0}`,
    `dry run: ${consentFigures(r.dryRunFigures)}`,
    `before the group write: ${r.checked === undefined ? 'not reached' : consentFigures(r.checked)}`,
  ].join('\n');
}

/** Phases a change can still be cancelled in: its group write not sent yet. */
const CANCELLABLE = new Set(['queued', 'pending']);

/**
 * Cancels a change before its group write (the server refuses once the write was sent, saying what would undo
 * it).
 */
function CancelButton({ rec }: { rec: ChangeRecord }): VNode {
  const [state, setState] = useState<{ at: 'idle' | 'asking' } | { at: 'error'; message: string }>({
    at: 'idle',
  });
  const cancel = (): void => {
    setState({ at: 'asking' });
    call<ChangeRecord>(
      'POST',
      `/api/v1/switches/${encodeURIComponent(rec.switch)}/changes/${encodeURIComponent(rec.id)}/cancel`,
    ).then(
      () => setState({ at: 'idle' }),
      (err: Error) =>
        setState({
          at: 'error',
          message:
            err instanceof ApiError && err.status === 401
              ? 'cancel needs an operator token (set it above)'
              : err.message,
        }),
    );
  };
  return html`<span class="cancel">
    <button type="button" onClick=${cancel} disabled=${state.at === 'asking'} aria-label=${`Cancel change ${rec.id}`} data-testid=${`cancel-${rec.id}`}>Cancel</button>
    ${state.at === 'error' ? html` <span role="alert" class="bad">${state.message}</span>` : null}
  </span>`;
}

export function History({ snap }: { snap: Snapshot }): VNode {
  const rows = snap.switches.flatMap((s) => s.changes).sort((a, b) => b.queuedAt - a.queuedAt);
  return html`<section class="panel wide" aria-labelledby="history-title">
    <h2 id="history-title">Changes</h2>
    ${
      rows.length === 0
        ? html`<p>No change yet.</p>`
        : html`<table class="stack history" data-testid="history">
          <thead><tr><th scope="col">Change</th><th scope="col">Switch</th><th scope="col">VIP</th><th scope="col">Nexthop</th><th scope="col">Phase</th><th scope="col">Pinned</th><th scope="col">At risk</th><th scope="col" title="Connections that opened in the change window without a certain, programmed pin">Window</th><th scope="col" title="Server resets (RST from the VIP) seen on the reply mirror after the change, until the next change of the VIP; – where the switch does not mirror them">Resets</th><th scope="col" title="Pinned flows left on the nexthop">Left</th><th scope="col" title="Who asked for the change (the API token's name), and the most connections they consented to lose (maxAtRisk); hover a row's cell for the client address and the figures">By, bound</th><th scope="col">Started</th><th scope="col">Completed</th></tr></thead>
          <tbody>
            ${rows.map(
              (r) => html`<tr key=${r.id}>
              <th scope="row" class="change-id"><span class="kind">${r.kind}</span> <code title=${r.id}>${r.id}</code></th><td data-label="Switch">${r.switch}</td><td data-label="VIP">${r.vip}</td><td data-label="Nexthop">${r.nexthop}</td>
              <td data-label="Phase" class=${r.phase === 'failed' || r.phase === 'deadline-passed' ? 'bad' : r.phase === 'complete' || r.phase === 'drained' ? 'good' : r.phase === 'cancelled' ? 'muted' : ''}>${r.phase}${r.deadlineReached ? ' (deadline)' : ''}${r.error ? html` <span class=${r.phase === 'cancelled' ? 'muted' : 'bad'}>${r.error}</span>` : null}${CANCELLABLE.has(r.phase) ? html` <${CancelButton} rec=${r} />` : null}</td>
              <td data-label="Pinned" class="num">${r.pinned ?? '–'}</td><td data-label="At risk" class=${(r.atRisk ?? 0) > 0 ? 'num bad' : 'num'} title=${r.atRisk === null ? 'not measured' : risk(r.atRiskBy)}>${r.atRisk ?? '–'}</td><td data-label="Window" class=${(r.windowFlows ?? 0) > 0 ? 'num warn' : 'num'}>${r.windowFlows ?? '–'}</td><td data-label="Resets" class=${(r.resetsSeen ?? 0) > 0 ? 'num bad' : 'num'}>${r.resetsSeen ?? '–'}</td><td data-label="Left" class="num">${r.remaining}</td>
              <td data-label="By, bound" class="audit" title=${auditTitle(r)} data-testid=${`audit-${r.id}`}>${r.requestedBy?.token ?? '–'}, ≤ ${r.maxAtRisk ?? 0}</td>
              <td data-label="Started">${time(r.startedAt)}</td><td data-label="Completed">${time(r.completedAt)}</td>
            </tr>`,
            )}
          </tbody>
        </table>`
    }
  </section>`;
}
