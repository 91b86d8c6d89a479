// The drain progress chart: pinned flows left on the nexthop over time, as an SVG line, and an
// estimate of when they reach zero from the recent trend (a least-squares line through the
// last minute of samples; no estimate while the count does not fall).

import { html } from 'htm/preact';
import type { VNode } from 'preact';

export interface Sample {
  t: number;
  pinned: number;
}

/** Seconds until zero at the recent rate, or null when the count is not falling. */
export function secondsToZero(samples: Sample[]): number | null {
  const last = samples[samples.length - 1];
  if (last === undefined) return null;
  if (last.pinned === 0) return 0;
  const recent = samples.filter((s) => s.t >= last.t - 60_000);
  if (recent.length < 3) return null;
  const n = recent.length;
  const mt = recent.reduce((a, s) => a + s.t, 0) / n;
  const mp = recent.reduce((a, s) => a + s.pinned, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of recent) {
    num += (s.t - mt) * (s.pinned - mp);
    den += (s.t - mt) ** 2;
  }
  const slope = den === 0 ? 0 : num / den; // flows per ms
  if (slope >= 0) return null;
  return Math.ceil(last.pinned / -slope / 1000);
}

export function ProgressChart({ samples, label }: { samples: Sample[]; label: string }): VNode {
  const w = 480;
  const h = 140;
  const pad = 28;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const max = Math.max(1, ...samples.map((s) => s.pinned));
  const span = first === undefined || last === undefined ? 1 : Math.max(1000, last.t - first.t);
  const x = (t: number): number => pad + ((t - (first?.t ?? 0)) / span) * (w - pad - 8);
  const y = (p: number): number => 8 + (1 - p / max) * (h - pad - 8);
  const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.pinned).toFixed(1)}`).join(' ');
  const eta = secondsToZero(samples);
  return html`<figure class="chart">
    <svg viewBox="0 0 ${w} ${h}" width=${w} height=${h} role="img" aria-label=${`${label}: ${last?.pinned ?? 0} pinned flows left`}>
      <line x1=${pad} y1=${h - pad} x2=${w - 8} y2=${h - pad} class="axis" />
      <line x1=${pad} y1="8" x2=${pad} y2=${h - pad} class="axis" />
      <text x="2" y="14" class="tick">${max}</text>
      <text x="2" y=${h - pad} class="tick">0</text>
      <text x=${pad} y=${h - 8} class="tick">${Math.round(span / 1000)} s shown</text>
      <polyline points=${points} class="line" />
    </svg>
    <figcaption>
      ${last === undefined ? html`No sample of ${label} yet` : html`<span data-testid="progress-left">${last.pinned}</span> pinned flows left on ${label}${eta === null ? '' : eta === 0 ? ', none left' : `, about ${eta} s to zero at the recent rate`}`}
    </figcaption>
  </figure>`;
}
