// The operator commands against a running controller's API: status, drain, undrain, add,
// remove, flows, pins, changes. Changes take --dry-run (the report, nothing changed) and
// --wait (follow a drain until its pinned flows reach zero, or its deadline) with --timeout.
// Exit status: 0 done, 1 the change or a call failed, 2 usage, 3 --timeout passed (the change
// goes on), 130 interrupted while waiting (the change goes on).

import { parseArgs } from 'node:util';
import { ApiError, Client, enc, nexthopPath } from './client.js';
import { Progress } from './progress.js';

export const OPS_USAGE = `operator commands (against a running controller; --url URL or FLOWPIN_URL, default http://127.0.0.1:8080;
token for changes from FLOWPIN_TOKEN or --token-file FILE; -o json for machine output):
  status                          switches, readiness, VIPs and nexthops with tracked and pinned flows
  drain NEXTHOP [--vip V] [--switch S] [--dry-run] [--accept-risk] [--deadline S] [--wait] [--timeout S]
  undrain NEXTHOP [--vip V] [--switch S] [--accept-risk]
  add NEXTHOP [--vip V] [--switch S] [--dry-run] [--accept-risk]
  remove NEXTHOP [--vip V] [--switch S] [--force]
  flows [--client A] [--port P] [--pinned | --unpinned] [--vip V] [--nexthop N] [--switch S] [--limit N] [--offset N]
  pins [--state desired|installed|failed] [--client A] [--vip V] [--nexthop N] [--switch S] [--limit N] [--offset N]
  changes [--switch S]
  (--vip and --switch may be left out when only one fits)`;

const OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  output: { type: 'string', short: 'o' },
  switch: { type: 'string' },
  vip: { type: 'string' },
  nexthop: { type: 'string' },
  client: { type: 'string' },
  port: { type: 'string' },
  pinned: { type: 'boolean' },
  unpinned: { type: 'boolean' },
  state: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'accept-risk': { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  deadline: { type: 'string' },
  force: { type: 'boolean' },
  interval: { type: 'string' },
} as const;

interface Nexthop {
  address: string;
  state: string;
  tracked: number;
  pinned: number;
  inGroup: boolean;
}
interface SwitchStatus {
  name: string;
  adapter: string;
  connected: boolean;
  inSync: boolean;
  blocked: string | null;
  lastError: string | null;
  flows: number;
  pins: { installed: number; free: number; capacity: number; failed: number };
}
interface Change {
  id: string;
  kind: string;
  switch: string;
  vip: string;
  nexthop: string;
  phase: string;
  pinned: number;
  atRisk: number;
  atRiskBy: Record<string, number>;
  windowFlows: number;
  remaining: number;
  deadlineReached?: boolean;
  error?: string;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 3, interrupted: 130 } as const;

class UsageError extends Error {}

const num = (v: string | undefined, what: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${what} takes a number of seconds or a count, not '${v}'`);
  return n;
};

const table = (head: string[], rows: (string | number)[][]): string => {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((c, i) => String(c).padEnd(w[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
};

const risk = (by: Record<string, number>): string => Object.entries(by).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';

export async function opsCommand(command: string, args: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(args));
    if (values.output !== undefined && values.output !== 'json' && values.output !== 'text') throw new UsageError(`-o takes json or text, not '${values.output}'`);
  } catch (err) {
    process.stderr.write(`flowpin ${command}: ${err instanceof Error ? err.message : String(err)}\n\n${OPS_USAGE}\n`);
    return EXIT.usage;
  }
  const client = Client.from(values);
  const json = values.output === 'json';
  const print = (data: unknown, text: () => string): void => void process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : text());
  try {
    switch (command) {
      case 'status':
        return await status(client, print);
      case 'flows':
      case 'pins': {
        const q = new URLSearchParams();
        const keys: ('switch' | 'vip' | 'nexthop' | 'client' | 'limit' | 'offset' | 'state')[] = ['switch', 'vip', 'nexthop', 'client', 'limit', 'offset', ...(command === 'pins' ? (['state'] as const) : [])];
        for (const k of keys) {
          const v = values[k];
          if (v !== undefined) q.set(k, v);
        }
        if (command === 'flows') {
          if (values.port !== undefined) q.set('port', String(num(values.port, 'port')));
          if (values.pinned && values.unpinned) throw new UsageError('--pinned or --unpinned, not both');
          if (values.pinned || values.unpinned) q.set('pinned', String(values.pinned === true));
        } else if (values.port !== undefined || values.pinned || values.unpinned) throw new UsageError('--port, --pinned and --unpinned filter flows');
        const page = await client.call<{ total: number; offset: number; flows?: Record<string, string | number | boolean | null>[]; pins?: Record<string, string | number | boolean | null>[] }>('GET', `/api/v1/${command}?${q.toString()}`);
        const rows = page.flows ?? page.pins ?? [];
        print(page, () => {
          const cols = command === 'flows' ? ['switch', 'client', 'vip', 'nexthop', 'pinned'] : ['switch', 'client', 'vip', 'nexthop', 'state', 'reason'];
          const body = rows.map((r) => cols.map((c) => (c === 'client' ? `${String(r['src'])}:${String(r['sport'])}` : c === 'vip' ? `${String(r['dst'])}:${String(r['dport'])}` : String(r[c] ?? '-'))));
          return `${table(cols, body)}${page.total} ${command} in all, ${rows.length === 0 ? 'none' : `${page.offset + 1} to ${page.offset + rows.length}`} shown\n`;
        });
        return EXIT.ok;
      }
      case 'changes': {
        const names = values.switch !== undefined ? [values.switch] : (await switches(client)).map((s) => s.name);
        const all = (await Promise.all(names.map((n) => client.call<{ changes: Change[] }>('GET', `/api/v1/switches/${enc(n)}/changes`)))).flatMap((r) => r.changes);
        print({ changes: all }, () => table(['id', 'kind', 'switch', 'vip', 'nexthop', 'phase', 'pinned', 'at-risk', 'window', 'left'], all.map((c) => [c.id, c.kind, c.switch, c.vip, c.nexthop, `${c.phase}${c.deadlineReached ? ' (deadline)' : ''}${c.error ? `: ${c.error}` : ''}`, c.pinned, c.atRisk, c.windowFlows, c.remaining])));
        return EXIT.ok;
      }
      case 'drain':
      case 'undrain':
      case 'add':
      case 'remove':
        return await change(command, client, values, positionals, print);
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`flowpin ${command}: ${err.message}\n\n${OPS_USAGE}\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      if (json) process.stdout.write(`${JSON.stringify({ error: err.code, status: err.status, message: err.message })}\n`);
      process.stderr.write(`flowpin ${command}: ${err.message}\n`);
      return EXIT.failed;
    }
    throw err;
  }
}

function parse(args: string[]) {
  return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
}

const switches = async (client: Client): Promise<SwitchStatus[]> => (await client.call<{ switches: SwitchStatus[] }>('GET', '/api/v1/switches')).switches;
const vipsOf = async (client: Client, sw: string): Promise<{ address: string; nexthops: Nexthop[] }[]> => (await client.call<{ vips: { address: string; nexthops: Nexthop[] }[] }>('GET', `/api/v1/switches/${enc(sw)}/vips`)).vips;

async function status(client: Client, print: (d: unknown, t: () => string) => void): Promise<number> {
  const ready = await client.call<{ ready: boolean; switches: SwitchStatus[] }>('GET', '/readyz').catch((err: unknown) => {
    // 503 carries the same body: not ready is an answer, not a failure of the call.
    if (err instanceof ApiError && err.status === 503) return undefined;
    throw err;
  });
  const sws = await switches(client);
  const vips = await Promise.all(sws.map(async (s) => ({ switch: s.name, vips: await vipsOf(client, s.name) })));
  const isReady = ready?.ready ?? false;
  print({ ready: isReady, switches: sws.map((s) => ({ ...s, vips: vips.find((v) => v.switch === s.name)?.vips ?? [] })) }, () => {
    let out = `flowpin at ${client.url}: ${isReady ? 'ready' : 'NOT READY'}\n`;
    for (const s of sws) {
      const health = s.blocked ?? s.lastError ?? (s.connected ? 'healthy' : 'not connected');
      out += `\nswitch ${s.name} (${s.adapter}): ${health}; ${s.inSync ? 'pins in sync' : 'pins being written'}; pin table ${s.pins.installed} programmed, ${s.pins.free} free of ${s.pins.capacity}; ${s.flows} tracked flows\n`;
      for (const v of vips.find((x) => x.switch === s.name)?.vips ?? []) {
        out += `  VIP ${v.address}\n`;
        out += table(['    nexthop', 'state', 'in-group', 'tracked', 'pinned'], v.nexthops.map((n) => [`    ${n.address}`, n.state, n.inGroup ? 'yes' : 'no', n.tracked, n.pinned]));
      }
    }
    return out;
  });
  return isReady ? EXIT.ok : EXIT.failed;
}

/** Finds the switch and VIP a nexthop (or, for add, the VIP) belongs to when not given. */
async function locate(client: Client, values: { switch?: string; vip?: string }, nexthop: string, adding: boolean): Promise<{ sw: string; vip: string }> {
  const names = values.switch !== undefined ? [values.switch] : (await switches(client)).map((s) => s.name);
  const fits: { sw: string; vip: string }[] = [];
  for (const sw of names) {
    for (const v of await vipsOf(client, sw)) {
      if (values.vip !== undefined && v.address !== values.vip) continue;
      if (adding || values.vip !== undefined || v.nexthops.some((n) => n.address === nexthop)) fits.push({ sw, vip: v.address });
    }
  }
  const only = fits[0];
  if (fits.length === 1 && only !== undefined) return only;
  if (fits.length === 0) throw new UsageError(`no ${values.vip ?? 'VIP'}${values.switch === undefined ? '' : ` on switch ${values.switch}`} ${adding ? 'to add to' : `has nexthop ${nexthop}`}`);
  throw new UsageError(`${nexthop} fits ${fits.map((f) => `${f.vip} on ${f.sw}`).join(', ')}: say which with --vip and --switch`);
}

async function change(kind: 'drain' | 'undrain' | 'add' | 'remove', client: Client, values: ReturnType<typeof parse>['values'], positionals: string[], print: (d: unknown, t: () => string) => void): Promise<number> {
  const nexthop = positionals[0];
  if (nexthop === undefined || positionals.length > 1) throw new UsageError(`${kind} takes one nexthop address`);
  if (values['dry-run'] && (kind === 'undrain' || kind === 'remove')) throw new UsageError(`${kind} has no dry run`);
  if (values.wait && kind !== 'drain') throw new UsageError('--wait follows a drain');
  const timeoutS = num(values.timeout, 'timeout');
  const deadlineS = num(values.deadline, 'deadline');
  const { sw, vip } = await locate(client, values, nexthop, kind === 'add');
  const dryRun = values['dry-run'] === true;
  // Consent, given explicitly: a change on a switch whose mirror is silent or collapsed goes ahead only with it.
  const consent = values['accept-risk'] === true ? { acceptRisk: true } : {};
  if (kind === 'undrain') {
    const r = await client.call<{ address: string; state: string }>('POST', `${nexthopPath(sw, vip, nexthop)}/undrain`, values['accept-risk'] === true ? consent : undefined);
    print(r, () => `${r.address} on ${vip} (${sw}): ${r.state}\n`);
    return EXIT.ok;
  }
  if (kind === 'remove') {
    const r = await client.call<{ pinnedLeft: number }>('DELETE', `${nexthopPath(sw, vip, nexthop)}${values.force === true || values['accept-risk'] === true ? '?acceptRisk=true' : ''}`);
    print(r, () => `${nexthop} removed from ${vip} (${sw})${r.pinnedLeft > 0 ? `, ${r.pinnedLeft} pinned flows left on it` : ''}\n`);
    return EXIT.ok;
  }
  const path = kind === 'drain' ? `${nexthopPath(sw, vip, nexthop)}/drain` : nexthopPath(sw, vip);
  const body = kind === 'drain' ? { dryRun, ...(dryRun ? {} : consent), ...(deadlineS === undefined ? {} : { deadlineSeconds: deadlineS }) } : { address: nexthop, dryRun, ...(dryRun ? {} : consent) };
  if (dryRun) {
    const r = await client.call<{ flowsToPin: number; alreadyPinned: number; freeEntries: number; atRisk: number; atRiskBy: Record<string, number>; unresolved: number; expectedWindowMs: number; expectedWindowFlows: number; synRate: number }>('POST', path, body);
    print(r, () => `dry run: ${kind} ${nexthop} on ${vip} (${sw}); nothing changed
  flows to pin          ${r.flowsToPin} (${r.alreadyPinned} already pinned)
  programmable room     ${r.freeEntries} free entries
  flows at risk         ${r.atRisk} (${risk(r.atRiskBy)})
  unresolved flows      ${r.unresolved}
  change window         ${r.expectedWindowMs} ms, about ${r.expectedWindowFlows} new flows at ${r.synRate.toFixed(1)} SYN/s
`);
    return EXIT.ok;
  }
  const rec = await client.call<Change>('POST', path, body);
  const summary = (c: Change): string => `${c.kind} ${c.nexthop} on ${c.vip} (${c.switch}), change ${c.id}: ${c.phase}${c.deadlineReached ? ' (deadline reached)' : ''}${c.error ? `: ${c.error}` : ''}; pinned ${c.pinned}, at risk ${c.atRisk} (${risk(c.atRiskBy)}), change-window flows ${c.windowFlows}${c.kind === 'drain' ? `, ${c.remaining} pinned flows left` : ''}\n`;
  if (!values.wait || rec.phase === 'failed' || rec.phase === 'complete') {
    // Done before the wait began (a deadline shorter than the change): the count left, once.
    if (values.wait && rec.kind === 'drain') new Progress(process.stderr, `draining ${rec.nexthop}`, rec.remaining).update(rec.remaining, 0);
    print(rec, () => summary(rec));
    return rec.phase === 'failed' ? EXIT.failed : EXIT.ok;
  }
  const final = await waitFor(client, rec, timeoutS, Number(values.interval ?? 1));
  if (final === 'timeout' || final === 'interrupted') {
    const follow = `the ${kind} goes on; follow it with: flowpin changes --switch ${sw}${client.url === 'http://127.0.0.1:8080' ? '' : ` --url ${client.url}`}\n`;
    process.stderr.write(`flowpin ${kind}: ${final === 'timeout' ? `not complete after ${timeoutS} s` : 'interrupted'}; ${follow}`);
    if (values.output === 'json') process.stdout.write(`${JSON.stringify({ ...rec, waited: final })}\n`);
    return final === 'timeout' ? EXIT.timeout : EXIT.interrupted;
  }
  print(final, () => summary(final));
  return final.phase === 'failed' ? EXIT.failed : EXIT.ok;
}

/** Follows a drain's record until it completes or fails, the timeout passes, or SIGINT/SIGTERM. */
async function waitFor(client: Client, rec: Change, timeoutS: number | undefined, intervalS: number): Promise<Change | 'timeout' | 'interrupted'> {
  const started = Date.now();
  const progress = new Progress(process.stderr, `draining ${rec.nexthop}`, rec.remaining);
  let stop: 'interrupted' | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (): void => {
    stop = 'interrupted';
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (;;) {
      const now = (await client.call<{ changes: Change[] }>('GET', `/api/v1/switches/${enc(rec.switch)}/changes`)).changes.find((c) => c.id === rec.id);
      if (now === undefined) throw new ApiError(404, 'not-found', `change ${rec.id} is no longer listed on ${rec.switch}`);
      progress.update(now.remaining, (Date.now() - started) / 1000);
      if (now.phase === 'complete' || now.phase === 'failed') return now;
      if (stop !== undefined) return stop;
      if (timeoutS !== undefined && Date.now() - started >= timeoutS * 1000) return 'timeout';
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, Math.max(50, intervalS * 1000));
      });
      if (stop !== undefined) return stop;
    }
  } finally {
    progress.end();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
