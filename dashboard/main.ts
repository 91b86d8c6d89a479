// flowpin's dashboard: overview of switches (adapter, mirror and pin sync health, pin table),
// VIPs and nexthops (each VIP with its connections over the last hour), the mirror receiver's counters,
// changes with a dry run and live
// progress, the change history and a paged flow search. State arrives as one snapshot a
// second over server-sent events (GET /api/v1/events); flows are paged by the server.

import { html } from 'htm/preact';
import { render, type VNode } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { token } from './api.js';
import { ChangePanel, History, type Intent } from './changes.js';
import { Drains } from './progress.js';
import { Flows } from './flows.js';
import { VipChart } from './vip-chart.js';
import type { MirrorCounters, MirrorHealth, Snapshot, SwitchSnap } from './types.js';

function TokenBar(): VNode {
  const [value, setValue] = useState(token.get());
  const [saved, setSaved] = useState(token.get() !== '');
  // Set or forgotten elsewhere on the page (a change's prompt, a refused token).
  useEffect(() => token.watch(() => setSaved(token.get() !== '')), []);
  const save = (e: Event): void => {
    e.preventDefault();
    token.set(value.trim());
    setSaved(value.trim() !== '');
  };
  return html`<form class="token" onSubmit=${save}>
    <label for="token">API token (kept in this tab only)</label>
    <input id="token" type="password" autocomplete="off" value=${value} onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} data-testid="token" />
    <button type="submit">${saved ? 'Replace token' : 'Use token'}</button>
    <span role="status">${saved ? 'token set: changes allowed' : 'no token: read only'}</span>
  </form>`;
}

const pct = (n: number, of: number): number => (of === 0 ? 0 : Math.round((n / of) * 100));

const rate = (n: number): string => `${n.toFixed(1)}/s`;

/** What the mirror shows of connection ends, and what follows for how connections are tracked. */
const LIVENESS: Record<NonNullable<MirrorHealth['liveness']>, string> = {
  'both-ways': 'FIN and RST both ways: a connection is tracked until it closes',
  'client-side':
    "the clients' FIN and RST only: a connection the client half-closed counts as unknown until it goes quiet",
  'server-side':
    "the servers' FIN and RST only: a connection the server half-closed counts as unknown until it goes quiet",
  'syn-only':
    'syn-only: no FIN or RST mirrored, every connection is unknown until it ages out (mirror FIN and RST to track them)',
  'not-yet-known': 'not known yet (no FIN or RST seen so far)',
};

function MirrorPanel({ m }: { m: MirrorCounters }): VNode {
  const reasons = Object.entries(m.dropped)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return html`<section class="panel" aria-labelledby="mirror-title" data-testid="mirror">
    <h2 id="mirror-title">Mirror receiver</h2>
    <dl class="figures counters">
      <dt>Frames</dt><dd data-testid="mirror-frames">${m.frames}</dd>
      <dt>Decoded</dt><dd>${m.decoded}</dd>
      <dt>Decode drops</dt><dd data-testid="mirror-decode-drops" class=${m.decodeDrops === 0 ? '' : 'warn'} title=${reasons}>${m.decodeDrops}</dd>
      <dt>Socket drops</dt><dd data-testid="mirror-socket-drops" class=${(m.socketDrops ?? 0) === 0 ? '' : 'bad'}>${m.socketDrops ?? 'unknown'}</dd>
      <dt>Backlog drops</dt><dd class=${m.backlogDrops === 0 ? '' : 'bad'}>${m.backlogDrops}</dd>
    </dl>
    ${reasons === '' ? null : html`<p><small>Dropped by reason: ${reasons}</small></p>`}
    <p><small>Listening on ${m.listening.length === 0 ? 'nothing' : m.listening.join(', ')}</small></p>
  </section>`;
}

function SwitchCard({
  sw,
  act,
  removed,
}: {
  sw: SwitchSnap;
  act: (i: Intent) => void;
  removed: (vip: string) => string[];
}): VNode {
  const health =
    sw.blocked !== null
      ? `blocked: ${sw.blocked}`
      : !sw.connected
        ? 'not connected'
        : sw.lastError !== null
          ? `error: ${sw.lastError}`
          : sw.reconcileFailures > 0
            ? `${sw.reconcileFailures} failed writes`
            : 'healthy';
  const [addr, setAddr] = useState('');
  const [addVip, setAddVip] = useState('');
  return html`<section class="panel switch" aria-labelledby=${`sw-${sw.name}`} data-testid=${`switch-${sw.name}`}>
    <h2 id=${`sw-${sw.name}`}>Switch ${sw.name} <small>${sw.adapter}</small></h2>
    <dl class="figures">
      <dt>Adapter</dt><dd class=${health === 'healthy' ? 'good' : 'bad'} data-testid="health">${health}</dd>
      <dt>Mirror</dt>
      <dd class=${sw.mirror.state === 'ok' ? 'good' : 'bad'} data-testid="mirror-health">${sw.mirror.state}: ${rate(sw.mirror.synRate)} SYN (usual ${rate(sw.mirror.usualRate)}), ${sw.mirror.lastSynAgoS === null ? 'no SYN yet' : `last SYN ${sw.mirror.lastSynAgoS} s ago`}${sw.mirror.why === null ? '' : `; ${sw.mirror.why}`}</dd>
      <dt>Connection ends</dt><dd data-testid="liveness" class=${sw.mirror.liveness === 'syn-only' ? 'bad' : sw.mirror.liveness === 'both-ways' ? 'good' : ''}>${LIVENESS[sw.mirror.liveness ?? 'not-yet-known']}</dd>
      <dt>Pin writes</dt><dd data-testid="resync" class=${sw.blocked !== null || sw.reconcileFailures > 0 ? 'bad' : ''}>${sw.blocked !== null ? 'stopped until the next resync' : sw.reconcileFailures > 0 ? `retrying after ${sw.reconcileFailures} failed rounds, full resync next` : sw.inSync ? 'up to date: every pin wanted was sent' : 'being written'}</dd>
      <dt>Failed pins</dt><dd data-testid="failed-pins" class=${sw.pins.failed === 0 ? 'good' : 'bad'}>${sw.pins.failed === 0 ? 'none' : `${sw.pins.failed} pins the switch refused or had no room for: their connections are not kept`}</dd>
      <dt>Pin table</dt>
      <dd>
        <span class=${`bar bar-${sw.pins.table}`} role="meter" aria-label="programmed pin entries" aria-valuemin="0" aria-valuemax=${sw.pins.capacity} aria-valuenow=${sw.pins.installed} data-testid="pin-bar"><span style=${`width: ${pct(sw.pins.installed, sw.pins.capacity)}%`}></span></span>${' '}
        <span data-testid="pin-table">${sw.pins.installed} programmed, ${sw.pins.free} free of ${sw.pins.capacity}</span> (${pct(sw.pins.installed, sw.pins.capacity)}%)${sw.pins.table === 'full' ? html` <strong class="bad">full</strong>` : sw.pins.table === 'nearly-full' ? html` <strong class="warn">nearly full</strong>` : null}
      </dd>
      <dt>Tracked flows</dt><dd>${sw.flows}</dd>
      <dt>Resolve queue</dt><dd>${sw.queue}</dd>
    </dl>
    ${sw.vips.map(
      (v) => html`<div class="vip" key=${v.address}>
      <h3>VIP ${v.address}</h3>
      <table class="stack" data-testid=${`vip-${v.address}`}>
        <thead><tr><th scope="col">Nexthop</th><th scope="col">State</th><th scope="col">In group</th><th scope="col">Tracked</th><th scope="col">Pinned</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          ${v.nexthops.map(
            (n) => html`<tr key=${n.address} data-nexthop=${n.address}>
            <th scope="row">${n.address}</th>
            <td data-label="State" class=${`state-${n.state}`}>${n.state}</td>
            <td data-label="In group">${n.inGroup ? 'yes' : 'no'}</td>
            <td data-label="Tracked" class="num">${n.tracked}</td>
            <td data-label="Pinned" class="num">${n.pinned}</td>
            <td data-label="Actions">
              ${n.inGroup && n.state === 'active' ? html`<button type="button" onClick=${() => act({ kind: 'drain', switch: sw.name, vip: v.address, nexthop: n.address })} aria-label=${`Drain ${n.address}`}>Drain</button>` : null}
              ${n.state === 'draining' || n.state === 'drained' ? html`<button type="button" onClick=${() => act({ kind: 'undrain', switch: sw.name, vip: v.address, nexthop: n.address })} aria-label=${`Undrain ${n.address}`}>Undrain</button>` : null}
              ${!n.inGroup && n.state !== 'draining' ? html`<button type="button" onClick=${() => act({ kind: 'remove', switch: sw.name, vip: v.address, nexthop: n.address })} aria-label=${`Remove ${n.address}`}>Remove</button>` : null}
            </td>
          </tr>`,
          )}
          ${removed(v.address).map(
            (nh) => html`<tr key=${`removed-${nh}`} data-nexthop=${nh}>
            <th scope="row">${nh}</th><td data-label="State" class="state-removed">removed</td><td data-label="In group">no</td><td data-label="Tracked" class="num">0</td><td data-label="Pinned" class="num">0</td><td data-label="Actions"></td>
          </tr>`,
          )}
        </tbody>
      </table>
      <${VipChart} sw=${sw.name} vip=${v.address} />
      <form class="inline" onSubmit=${(e: Event) => {
        e.preventDefault();
        const a = addr.trim();
        if (a === '' || v.nexthops.some((n) => n.address === a)) return;
        act({ kind: 'add', switch: sw.name, vip: v.address, nexthop: a });
        // The change panel has the address now: the field is emptied, nothing left to suggest it again.
        setAddr('');
        setAddVip('');
      }}>
        <label>Add a nexthop to ${v.address}: <input value=${addVip === v.address ? addr : ''} autocomplete="off" onInput=${(
          e: Event,
        ) => {
          setAddVip(v.address);
          setAddr((e.target as HTMLInputElement).value);
        }} placeholder=${v.address.includes(':') ? 'an IPv6 address' : 'an IPv4 address'} data-testid=${`add-${v.address}`} /></label>
        <button type="submit" disabled=${addVip === v.address && v.nexthops.some((n) => n.address === addr.trim())}>Add…</button>
        ${addVip === v.address && v.nexthops.some((n) => n.address === addr.trim()) ? html`<small role="status">${addr.trim()} is already a nexthop of ${v.address}</small>` : null}
      </form>
    </div>`,
    )}
  </section>`;
}

function App(): VNode {
  const [snap, setSnap] = useState<Snapshot | null>(null);
  const [live, setLive] = useState(false);
  const [intent, setIntent] = useState<Intent | null>(null);
  useEffect(() => {
    const es = new EventSource('/api/v1/events');
    es.addEventListener('snapshot', (e) => {
      setSnap(JSON.parse((e as MessageEvent<string>).data) as Snapshot);
      setLive(true);
    });
    es.onerror = () => setLive(false);
    return () => es.close();
  }, []);
  const sim = snap?.simulator;
  // Nexthops seen on this page that have left their VIP since: shown as removed.
  const seen = useRef(new Map<string, Set<string>>());
  for (const sw of snap?.switches ?? [])
    for (const v of sw.vips) {
      const k = `${sw.name}|${v.address}`;
      const set = seen.current.get(k) ?? new Set<string>();
      for (const n of v.nexthops) set.add(n.address);
      seen.current.set(k, set);
    }
  const removedOf =
    (sw: SwitchSnap) =>
    (vip: string): string[] => {
      const now = new Set(sw.vips.find((v) => v.address === vip)?.nexthops.map((n) => n.address) ?? []);
      return [...(seen.current.get(`${sw.name}|${vip}`) ?? [])].filter((n) => !now.has(n)).sort();
    };
  return html`<div>
    <header>
      <h1>flowpin</h1>
      <p role="status" class=${live && snap?.ready === true ? 'good' : 'bad'} data-testid="live">${live ? (snap?.ready ? 'live · ready' : 'live · not ready') : 'connecting…'}</p>
      <${TokenBar} />
    </header>
    <main>
      ${
        sim === null || sim === undefined
          ? null
          : html`<section class="panel" aria-labelledby="sim-title" data-testid="simulator">
            <h2 id="sim-title">Simulator connections</h2>
            <dl class="figures counters"><dt>Opened</dt><dd data-testid="sim-opened">${sim.opened}</dd><dt>Closed</dt><dd>${sim.closed}</dd><dt>Reset</dt><dd data-testid="sim-reset" class=${sim.reset === 0 ? 'good' : 'bad'}>${sim.reset}</dd><dt>Active</dt><dd>${sim.active}</dd></dl>
          </section>`
      }
      ${intent === null ? null : html`<${ChangePanel} key=${`${intent.kind}${intent.switch}${intent.vip}${intent.nexthop}`} intent=${intent} snap=${snap} onClose=${() => setIntent(null)} />`}
      ${snap === null ? html`<p>Waiting for the controller…</p>` : snap.switches.map((sw) => html`<${SwitchCard} key=${sw.name} sw=${sw} act=${setIntent} removed=${removedOf(sw)} />`)}
      ${snap === null ? null : html`<${Drains} snap=${snap} />`}
      ${snap?.mirror === undefined ? null : html`<${MirrorPanel} m=${snap.mirror} />`}
      ${snap === null ? null : html`<${History} snap=${snap} />`}
      <${Flows} snap=${snap} />
    </main>
  </div>`;
}

const root = document.getElementById('app');
if (root !== null) render(html`<${App} />`, root);
