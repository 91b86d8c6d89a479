// A VIP's connections over the last hour: the connections flowpin tracks to it and the pins
// wanted for them, as the server samples them every 10 s (GET .../vips/:vip/history, read again
// every 10 s), drawn as two SVG lines over the last hour (or since the first sample, where that
// is less) with the figures now beside them.

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { call, enc } from './api.js';
import type { VipHistory } from './types.js';

const REFRESH_MS = 10_000;

export function VipChart({ sw, vip }: { sw: string; vip: string }): VNode {
  const [h, setH] = useState<VipHistory | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const load = (): void => {
      call<VipHistory>('GET', `/api/v1/switches/${enc(sw)}/vips/${enc(vip)}/history`).then(
        (r) => {
          if (!live) return;
          setH(r);
          setError(null);
        },
        (err: Error) => live && setError(err.message),
      );
    };
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [sw, vip]);
  if (h === null)
    return html`<p class="vip-chart" data-testid=${`vip-chart-${vip}`}><small>${error ?? 'Connections over the last hour: loading…'}</small></p>`;
  const points = [...h.samples, h.now];
  const w = 480;
  const ht = 120;
  const pad = 30;
  const end = h.now.t;
  // The last hour, or since the first sample where that is less (at least a minute): a new controller's chart
  // is not a sliver at the edge.
  const start = Math.max(end - h.spanS * 1000, Math.min(end - 60_000, points[0]?.t ?? end));
  const shown = (end - start) / 1000;
  const since = shown >= 120 ? `${Math.round(shown / 60)} min ago` : `${Math.round(shown)} s ago`;
  const max = Math.max(1, ...points.map((p) => Math.max(p.live, p.pinned)));
  const x = (t: number): number => pad + ((t - start) / (end - start)) * (w - pad - 8);
  const y = (n: number): number => 8 + (1 - n / max) * (ht - 28);
  const line = (get: (p: VipHistory['now']) => number): string =>
    points
      .filter((p) => p.t >= start)
      .map((p) => `${x(p.t).toFixed(1)},${y(get(p)).toFixed(1)}`)
      .join(' ');
  const minutes = Math.max(0, Math.round((end - (points[0]?.t ?? end)) / 60_000));
  return html`<figure class="chart vip-chart" data-testid=${`vip-chart-${vip}`} data-samples=${h.samples.length}>
    <svg viewBox="0 0 ${w} ${ht}" width=${w} height=${ht} role="img" aria-label=${`${vip}: ${h.now.live} tracked and ${h.now.pinned} pinned connections now; the last hour`}>
      <line x1=${pad} y1=${ht - 20} x2=${w - 8} y2=${ht - 20} class="axis" />
      <line x1=${pad} y1="8" x2=${pad} y2=${ht - 20} class="axis" />
      <text x="2" y="14" class="tick">${max}</text>
      <text x="2" y=${ht - 20} class="tick">0</text>
      <text x=${pad} y=${ht - 6} class="tick">${since}</text>
      <text x=${w - 30} y=${ht - 6} class="tick">now</text>
      <polyline points=${line((p) => p.live)} class="line" data-testid="vip-live-line" />
      <polyline points=${line((p) => p.pinned)} class="line pinned" data-testid="vip-pinned-line" />
    </svg>
    <figcaption>
      <span class="key live"></span> tracked <strong data-testid="vip-live">${h.now.live}</strong> and <span class="key pinned"></span> pinned <strong data-testid="vip-pinned">${h.now.pinned}</strong> now;
      ${h.samples.length === 0 ? ' the first sample comes within 10 s' : ` ${h.samples.length} samples over ${minutes} min (one every ${h.intervalS} s)`}
    </figcaption>
  </figure>`;
}
