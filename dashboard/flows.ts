// Flow search: by client address, filtered by switch, VIP and nexthop, paged by the server
// (GET /api/v1/flows), so a million tracked flows never load into the page.

import { html } from 'htm/preact';
import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import { call } from './api.js';
import type { FlowPage, Snapshot } from './types.js';

const PAGE = 50;

export function Flows({ snap }: { snap: Snapshot | null }): VNode {
  const [q, setQ] = useState({ client: '', switch: '', vip: '', nexthop: '' });
  const [page, setPage] = useState<FlowPage | null>(null);
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
  const field = (k: keyof typeof q, label: string, options?: string[]): VNode => html`<label>${label}
    ${options === undefined
      ? html`<input value=${q[k]} onInput=${(e: Event) => setQ({ ...q, [k]: (e.target as HTMLInputElement).value })} data-testid=${`flows-${k}`} />`
      : html`<select value=${q[k]} onChange=${(e: Event) => setQ({ ...q, [k]: (e.target as HTMLSelectElement).value })}><option value="">any</option>${options.map((o) => html`<option value=${o}>${o}</option>`)}</select>`}
  </label>`;
  const switches = snap?.switches.map((s) => s.name) ?? [];
  const vips = [...new Set(snap?.switches.flatMap((s) => s.vips.map((v) => v.address)) ?? [])];
  const nexthops = [...new Set(snap?.switches.flatMap((s) => s.vips.flatMap((v) => v.nexthops.map((n) => n.address))) ?? [])];
  return html`<section class="panel" aria-labelledby="flows-title">
    <h2 id="flows-title">Flows</h2>
    <form class="inline" onSubmit=${(e: Event) => {
      e.preventDefault();
      load(0);
    }}>
      ${field('client', 'Client address')} ${field('switch', 'Switch', switches)} ${field('vip', 'VIP', vips)} ${field('nexthop', 'Nexthop', nexthops)}
      <button type="submit" data-testid="flows-search">Search</button>
    </form>
    ${error === '' ? null : html`<p role="alert" class="bad">${error}</p>`}
    ${page === null
      ? null
      : html`<div>
          <p role="status" data-testid="flows-total">${page.total} flows${page.total > 0 ? `, ${page.offset + 1} to ${page.offset + page.flows.length} shown` : ''}</p>
          <table data-testid="flows-table">
            <thead><tr><th scope="col">Switch</th><th scope="col">Client</th><th scope="col">VIP</th><th scope="col">Nexthop</th><th scope="col">Pinned</th><th scope="col">Last seen</th></tr></thead>
            <tbody>
              ${page.flows.map((f) => html`<tr key=${`${f.switch}${f.src}${f.sport}${f.dst}${f.dport}`}>
                <td>${f.switch}</td><td>${f.src}:${f.sport}</td><td>${f.dst}:${f.dport}</td><td>${f.nexthop ?? 'unresolved'}</td><td>${f.pinned ? 'yes' : 'no'}</td><td>${new Date(f.lastSeen).toLocaleTimeString()}</td>
              </tr>`)}
            </tbody>
          </table>
          <p>
            <button type="button" disabled=${page.offset === 0} onClick=${() => load(Math.max(0, page.offset - PAGE))}>Previous page</button>
            <button type="button" disabled=${page.offset + page.flows.length >= page.total} onClick=${() => load(page.offset + PAGE)}>Next page</button>
          </p>
        </div>`}
  </section>`;
}
