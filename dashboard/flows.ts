// Flow search: by client address and port, filtered by switch, VIP, nexthop and pinned, paged
// by the server (GET /api/v1/flows), so a million tracked flows never load into the page; and
// one flow's detail (GET /api/v1/flows/:switch/:src/:sport/:dst/:dport).

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { call, enc } from './api.js';
import type { Flow, FlowDetail, FlowPage, Snapshot } from './types.js';

const PAGE = 50;

type Query = { client: string; port: string; switch: string; vip: string; nexthop: string; pinned: string };

const clock = (ms: number | null): string => (ms === null ? '—' : new Date(ms).toLocaleTimeString());
const secs = (s: number | null): string => (s === null ? '—' : `${s} s`);

function Detail({ d, onClose }: { d: FlowDetail; onClose: () => void }): VNode {
  const pin = d.pin;
  return html`<section class="detail" role="region" aria-labelledby="flow-detail-title" data-testid="flow-detail">
    <h3 id="flow-detail-title">Flow ${d.src}:${d.sport} → ${d.dst}:${d.dport} on ${d.switch}</h3>
    <dl class="figures">
      <dt>First seen</dt><dd data-testid="detail-first">${clock(d.firstSeen)} <small>(its SYN)</small></dd>
      <dt>Last seen</dt><dd>${clock(d.lastSeen)} <small>(last mirrored SYN)</small></dd>
      <dt>Nexthop</dt><dd data-testid="detail-nexthop">${d.nexthop ?? 'unresolved'}</dd>
      <dt>Learned by</dt><dd data-testid="detail-learned">${d.learned.how}: ${d.learned.detail}</dd>
      <dt>Pin</dt><dd data-testid="detail-pin">${pin.state}${pin.wantedFor === null ? '' : ` (wanted for ${pin.wantedFor})`}${pin.reason === null ? '' : `: ${pin.reason}`}</dd>
      <dt>Switch counter</dt><dd>${pin.packets === null ? '—' : `${pin.packets} packets, last moved ${clock(pin.lastActive)}`}</dd>
      <dt>Pin idle time left</dt><dd data-testid="detail-idle">${secs(d.idle.pinLeftS)} <small>(idle timeout ${d.idle.pinIdleTimeoutS} s from the last packet, aged by the ${d.idle.agedBy})</small></dd>
      <dt>Tracked for</dt><dd>${secs(d.idle.trackedLeftS)} more without a new SYN</dd>
    </dl>
    <p><button type="button" onClick=${onClose}>Close the detail</button></p>
  </section>`;
}

export function Flows({ snap }: { snap: Snapshot | null }): VNode {
  const [q, setQ] = useState<Query>({ client: '', port: '', switch: '', vip: '', nexthop: '', pinned: '' });
  const [page, setPage] = useState<FlowPage | null>(null);
  const [detail, setDetail] = useState<FlowDetail | null>(null);
  const [error, setError] = useState('');
  const load = (offset: number): void => {
    const p = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    for (const [k, v] of Object.entries(q)) if (v.trim() !== '') p.set(k, v.trim());
    call<FlowPage>('GET', `/api/v1/flows?${p.toString()}`).then(
      (r) => {
        setPage(r);
        setError('');
      },
      (err: Error) => setError(err.message),
    );
  };
  const open = (f: Flow): void => {
    call<FlowDetail>(
      'GET',
      `/api/v1/flows/${enc(f.switch)}/${enc(f.src)}/${f.sport}/${enc(f.dst)}/${f.dport}`,
    ).then(
      (d) => {
        setDetail(d);
        setError('');
      },
      (err: Error) => setError(err.message),
    );
  };
  const set = (k: keyof Query) => (e: Event) =>
    setQ({ ...q, [k]: (e.target as HTMLInputElement | HTMLSelectElement).value });
  const choice = (k: keyof Query, label: string, options: [string, string][]): VNode => html`<label>${label}
    <select value=${q[k]} onChange=${set(k)} data-testid=${`flows-${k}`}><option value="">any</option>${options.map(([v, text]) => html`<option value=${v}>${text}</option>`)}</select>
  </label>`;
  const both = (xs: string[]): [string, string][] => xs.map((x) => [x, x]);
  const switches = snap?.switches.map((s) => s.name) ?? [];
  const vips = [...new Set(snap?.switches.flatMap((s) => s.vips.map((v) => v.address)) ?? [])];
  const nexthops = [
    ...new Set(snap?.switches.flatMap((s) => s.vips.flatMap((v) => v.nexthops.map((n) => n.address))) ?? []),
  ];
  return html`<section class="panel wide" aria-labelledby="flows-title">
    <h2 id="flows-title">Flows</h2>
    <form class="inline" role="search" onSubmit=${(e: Event) => {
      e.preventDefault();
      load(0);
    }}>
      <label>Client address <input value=${q.client} onInput=${set('client')} data-testid="flows-client" /></label>
      <label>Client port <input type="number" min="0" max="65535" value=${q.port} onInput=${set('port')} data-testid="flows-port" class="port" /></label>
      ${choice('switch', 'Switch', both(switches))} ${choice('vip', 'VIP', both(vips))} ${choice('nexthop', 'Nexthop', both(nexthops))}
      ${choice('pinned', 'Pinned', [
        ['true', 'pinned'],
        ['false', 'not pinned'],
      ])}
      <button type="submit" data-testid="flows-search">Search</button>
    </form>
    ${error === '' ? null : html`<p role="alert" class="bad">${error}</p>`}
    ${detail === null ? null : html`<${Detail} d=${detail} onClose=${() => setDetail(null)} />`}
    ${
      page === null
        ? null
        : html`<div>
          <p role="status" data-testid="flows-total">${page.total} flows${page.total > 0 ? `, ${page.offset + 1} to ${page.offset + page.flows.length} shown` : ''}</p>
          <table class="stack" data-testid="flows-table">
            <thead><tr><th scope="col">Switch</th><th scope="col">Client</th><th scope="col">VIP</th><th scope="col">Nexthop</th><th scope="col">Pinned</th><th scope="col">Last seen</th><th scope="col"><span class="sr-only">Detail</span></th></tr></thead>
            <tbody>
              ${page.flows.map(
                (f) => html`<tr key=${`${f.switch}${f.src}${f.sport}${f.dst}${f.dport}`}>
                <td data-label="Switch">${f.switch}</td><td data-label="Client">${f.src}:${f.sport}</td><td data-label="VIP">${f.dst}:${f.dport}</td><td data-label="Nexthop">${f.nexthop ?? 'unresolved'}</td><td data-label="Pinned">${f.pinned ? 'yes' : 'no'}</td><td data-label="Last seen">${clock(f.lastSeen)}</td>
                <td data-label=""><button type="button" onClick=${() => open(f)} aria-label=${`Detail of ${f.src}:${f.sport}`}>Detail</button></td>
              </tr>`,
              )}
            </tbody>
          </table>
          <p>
            <button type="button" disabled=${page.offset === 0} onClick=${() => load(Math.max(0, page.offset - PAGE))}>Previous page</button>
            <button type="button" disabled=${page.offset + page.flows.length >= page.total} onClick=${() => load(page.offset + PAGE)}>Next page</button>
          </p>
        </div>`
    }
  </section>`;
}
