// The operator commands against a running controller's API: status, drain, undrain, add,
// remove, flows, pins, changes, change and cancel (ops-changes.ts), and reload (the
// configuration file read again and applied whole, or refused naming the key). Changes take --dry-run (the
// report,
// nothing changed) and --wait (follow a drain until its pinned flows reach zero, or its
// deadline) with --timeout. Usage errors end with where the command's help is (help.ts).
// Exit status: 0 done, 1 the change or a call failed, 2 usage, 3 --timeout passed (the change
// goes on), 4 a drain's deadline passed with connections left (tracked on), 130 interrupted while
// waiting (the change goes on).

import { parseArgs } from 'node:util';
import { ApiError, Client, enc, nexthopPath } from './client.js';
import { seeHelp } from './help.js';
import {
  cancelCommand,
  changeCommand,
  changesCommand,
  risk,
  shown,
  table,
  type Change,
} from './ops-changes.js';
import { Progress } from './progress.js';

export const OPTIONS = {
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
  'max-at-risk': { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  deadline: { type: 'string' },
  force: { type: 'boolean' },
  interval: { type: 'string' },
  watch: { type: 'boolean', short: 'w' },
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
  ha?: {
    owned: boolean;
    owner: string | null;
    ownerApi: string | null;
    epoch: number;
    lastTakeoverAt: number | null;
    takeover: string | null;
  };
}

/** Under high availability, who writes the switch, one line. */
function ownerLine(h: NonNullable<SwitchStatus['ha']>): string {
  const who =
    h.owner === null
      ? 'no owner now (a takeover is under way)'
      : h.owned
        ? `owned by this instance (${h.owner})`
        : h.takeover !== null
          ? `being taken over by this instance (${h.takeover})`
          : `owned by ${h.owner}${h.ownerApi === null ? '' : ` at ${h.ownerApi}`}: send changes there`;
  const last = h.lastTakeoverAt === null ? 'never' : new Date(h.lastTakeoverAt).toISOString();
  return `  high availability: ${who}; epoch ${h.epoch}; last takeover here ${last}\n`;
}

/**
 * Where --wait stops: a drain drained or past its deadline (tracked on), an addition complete, or failed or
 * cancelled.
 */
const FINAL = new Set(['drained', 'deadline-passed', 'complete', 'failed', 'cancelled']);

export const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 3, deadlinePassed: 4, interrupted: 130 } as const;

class UsageError extends Error {}

const num = (v: string | undefined, what: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`--${what} takes a number of seconds or a count, not '${v}'`);
  return n;
};

/** --max-at-risk: a count, or `unbounded`. */
function bound(v: string | undefined): number | 'unbounded' | undefined {
  if (v === undefined) return undefined;
  if (v === 'unbounded') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--max-at-risk takes a whole number of connections or 'unbounded', not '${v}'`);
  return n;
}

/** A refusal the API words for its own fields, in the CLI's words. */
function cliWords(message: string): string {
  return message
    .replace(/Give a bound \(maxAtRisk\) of at least (\d+)/, 'Rerun with --max-at-risk $1 to accept that')
    .replace(
      /Give the bound \(maxAtRisk\) "unbounded" to go ahead all the same/,
      'Rerun with --max-at-risk unbounded to go ahead all the same',
    )
    .replace(/or give a bound of at least (\d+)/, 'or rerun with --max-at-risk $1')
    .replace(/only maxAtRisk "unbounded" consents to that/, 'only --max-at-risk unbounded accepts that')
    .replace(/\(the dry run is in detail\.report\)/, '(--dry-run shows the figures)')
    .replace(/raise maxUnavailable for the VIP/, 'raise maxUnavailable for the VIP in the configuration');
}

export async function opsCommand(command: string, args: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(args));
    if (values.output !== undefined && values.output !== 'json' && values.output !== 'text')
      throw new UsageError(`-o takes json or text, not '${values.output}'`);
  } catch (err) {
    process.stderr.write(
      `flowpin ${command}: ${err instanceof Error ? err.message : String(err)}\n${seeHelp(command)}\n`,
    );
    return EXIT.usage;
  }
  const client = Client.from(values);
  const json = values.output === 'json';
  const print = (data: unknown, text: () => string): void =>
    void process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : text());
  try {
    switch (command) {
      case 'status':
        return await status(client, print);
      case 'flows':
      case 'pins': {
        const q = new URLSearchParams();
        const keys: ('switch' | 'vip' | 'nexthop' | 'client' | 'limit' | 'offset' | 'state')[] = [
          'switch',
          'vip',
          'nexthop',
          'client',
          'limit',
          'offset',
          ...(command === 'pins' ? (['state'] as const) : []),
        ];
        for (const k of keys) {
          const v = values[k];
          if (v !== undefined) q.set(k, v);
        }
        if (command === 'flows') {
          if (values.port !== undefined) q.set('port', String(num(values.port, 'port')));
          if (values.pinned && values.unpinned) throw new UsageError('--pinned or --unpinned, not both');
          if (values.pinned || values.unpinned) q.set('pinned', String(values.pinned === true));
        } else if (values.port !== undefined || values.pinned || values.unpinned)
          throw new UsageError('--port, --pinned and --unpinned filter flows');
        const page = await client.call<{
          total: number;
          offset: number;
          flows?: Record<string, string | number | boolean | null>[];
          pins?: Record<string, string | number | boolean | null>[];
        }>('GET', `/api/v1/${command}?${q.toString()}`);
        const rows = page.flows ?? page.pins ?? [];
        print(page, () => {
          const cols =
            command === 'flows'
              ? ['switch', 'client', 'vip', 'nexthop', 'pinned']
              : ['switch', 'client', 'vip', 'nexthop', 'state', 'reason'];
          const body = rows.map((r) =>
            cols.map((c) =>
              c === 'client'
                ? `${String(r['src'])}:${String(r['sport'])}`
                : c === 'vip'
                  ? `${String(r['dst'])}:${String(r['dport'])}`
                  : String(r[c] ?? '-'),
            ),
          );
          return `${table(cols, body)}${page.total} ${command} in all, ${rows.length === 0 ? 'none' : `${page.offset + 1} to ${page.offset + rows.length}`} shown\n`;
        });
        return EXIT.ok;
      }
      case 'changes': {
        if (positionals.length > 0)
          throw new UsageError(
            `changes takes no argument (one change: flowpin change ${positionals[0] ?? 'ID'})`,
          );
        if (!values.watch && values.interval !== undefined)
          throw new UsageError('--interval goes with --watch');
        return await changesCommand(client, {
          ...(values.switch === undefined ? {} : { switch: values.switch }),
          json,
          watch: values.watch === true,
          intervalS: Math.max(0.2, num(values.interval, 'interval') ?? 2),
        });
      }
      case 'change':
      case 'cancel': {
        const id = positionals[0];
        if (id === undefined || positionals.length > 1)
          throw new UsageError(`${command} takes one change id (flowpin changes lists them)`);
        const where = { ...(values.switch === undefined ? {} : { switch: values.switch }), json };
        return await (command === 'change'
          ? changeCommand(client, id, where)
          : cancelCommand(client, id, where));
      }
      case 'drain':
      case 'undrain':
      case 'add':
      case 'remove':
        return await change(command, client, values, positionals, print);
      case 'reload': {
        if (positionals.length > 0)
          throw new UsageError('reload takes no argument: it reads the file flowpin run was started with');
        const r = await client.call<{ file: string; changed: string[] }>('POST', '/api/v1/reload', {});
        print(r, () =>
          r.changed.length === 0
            ? `${r.file}: reloaded; nothing changed\n`
            : `${r.file}: reloaded\n${r.changed.map((l) => `  ${l}\n`).join('')}`,
        );
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`flowpin ${command}: ${err.message}\n${seeHelp(command)}\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      if (json)
        process.stdout.write(
          `${JSON.stringify({ error: err.code, status: err.status, message: err.message })}\n`,
        );
      process.stderr.write(`flowpin ${command}: ${cliWords(err.message)}\n`);
      return EXIT.failed;
    }
    throw err;
  }
}

function parse(args: string[]) {
  return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
}

const switches = async (client: Client): Promise<SwitchStatus[]> =>
  (await client.call<{ switches: SwitchStatus[] }>('GET', '/api/v1/switches')).switches;
const vipsOf = async (client: Client, sw: string): Promise<{ address: string; nexthops: Nexthop[] }[]> =>
  (
    await client.call<{ vips: { address: string; nexthops: Nexthop[] }[] }>(
      'GET',
      `/api/v1/switches/${enc(sw)}/vips`,
    )
  ).vips;

async function status(client: Client, print: (d: unknown, t: () => string) => void): Promise<number> {
  const ready = await client
    .call<{ ready: boolean; switches: SwitchStatus[] }>('GET', '/readyz')
    .catch((err: unknown) => {
      // 503 carries the same body: not ready is an answer, not a failure of the call.
      if (err instanceof ApiError && err.status === 503) return undefined;
      throw err;
    });
  const sws = await switches(client);
  const vips = await Promise.all(
    sws.map(async (s) => ({ switch: s.name, vips: await vipsOf(client, s.name) })),
  );
  const isReady = ready?.ready ?? false;
  print(
    {
      ready: isReady,
      switches: sws.map((s) => ({ ...s, vips: vips.find((v) => v.switch === s.name)?.vips ?? [] })),
    },
    () => {
      let out = `flowpin at ${client.url}: ${isReady ? 'ready' : 'NOT READY'}\n`;
      for (const s of sws) {
        // A switch another instance owns is not written here: its write state is the owner's to show.
        const health =
          s.ha?.owned === false
            ? s.connected
              ? 'connected, written by its owner'
              : 'not connected'
            : (s.blocked ?? s.lastError ?? (s.connected ? 'healthy' : 'not connected'));
        out += `\nswitch ${s.name} (${s.adapter}): ${health}; ${s.inSync ? 'pins in sync' : 'pins being written'}; pin table ${s.pins.installed} programmed, ${s.pins.free} free of ${s.pins.capacity}; ${s.flows} tracked flows\n`;
        if (s.ha !== undefined) out += ownerLine(s.ha);
        for (const v of vips.find((x) => x.switch === s.name)?.vips ?? []) {
          out += `  VIP ${v.address}\n`;
          out += table(
            ['    nexthop', 'state', 'in-group', 'tracked', 'pinned'],
            v.nexthops.map((n) => [
              `    ${n.address}`,
              n.state,
              n.inGroup ? 'yes' : 'no',
              n.tracked,
              n.pinned,
            ]),
          );
        }
      }
      return out;
    },
  );
  return isReady ? EXIT.ok : EXIT.failed;
}

/**
 * Finds the switch and VIP a nexthop (or, for add, the VIP) belongs to when not given. What
 * does not fit is said in the CLI's terms, with what there is: the switches, the VIPs, the
 * nexthops of the VIP named.
 */
async function locate(
  client: Client,
  values: { switch?: string; vip?: string },
  nexthop: string,
  adding: boolean,
): Promise<{ sw: string; vip: string }> {
  const all = (await switches(client)).map((s) => s.name);
  if (values.switch !== undefined && !all.includes(values.switch))
    throw new UsageError(`no switch '${values.switch}'; the switches are ${all.join(', ') || 'none'}`);
  const names = values.switch !== undefined ? [values.switch] : all;
  const vips = (
    await Promise.all(
      names.map(async (sw) =>
        (await vipsOf(client, sw)).map((v) => ({
          sw,
          vip: v.address,
          nexthops: v.nexthops.map((n) => n.address),
        })),
      ),
    )
  ).flat();
  const where = values.switch === undefined ? '' : ` on switch ${values.switch}`;
  const named = values.vip === undefined ? vips : vips.filter((v) => v.vip === values.vip);
  if (named.length === 0)
    throw new UsageError(
      `no VIP ${values.vip ?? ''}${where}; the VIPs are ${vips.map((v) => `${v.vip} (${v.sw})`).join(', ') || 'none'}`,
    );
  const fits = adding ? named : named.filter((v) => v.nexthops.includes(nexthop));
  const only = fits[0];
  if (fits.length === 1 && only !== undefined) return only;
  if (fits.length === 0) {
    const first = named[0];
    if (named.length === 1 && first !== undefined)
      throw new UsageError(
        `${nexthop} is not a nexthop of VIP ${first.vip} (${first.sw}); its nexthops are ${first.nexthops.join(', ') || 'none'} (to add it: flowpin add ${nexthop} --vip ${first.vip})`,
      );
    throw new UsageError(
      `no VIP${where} has nexthop ${nexthop}; the nexthops are ${named.map((v) => `${v.vip} (${v.sw}): ${v.nexthops.join(' ') || 'none'}`).join('; ')}`,
    );
  }
  throw new UsageError(
    `${adding ? `${nexthop} could go to` : `${nexthop} is a nexthop of`} ${fits.map((f) => `${f.vip} on ${f.sw}`).join(', ')}: say which with --vip${new Set(fits.map((f) => f.sw)).size > 1 ? ' and --switch' : ''}`,
  );
}

async function change(
  kind: 'drain' | 'undrain' | 'add' | 'remove',
  client: Client,
  values: ReturnType<typeof parse>['values'],
  positionals: string[],
  print: (d: unknown, t: () => string) => void,
): Promise<number> {
  const nexthop = positionals[0];
  if (nexthop === undefined || positionals.length > 1)
    throw new UsageError(`${kind} takes one nexthop address`);
  if (values['dry-run'] && kind === 'undrain')
    throw new UsageError(
      "undrain has no dry run (its dry run is an addition's: flowpin add NEXTHOP --dry-run)",
    );
  if (values.wait && kind !== 'drain') throw new UsageError('--wait follows a drain');
  if (values['accept-risk'] === true || values.force === true)
    throw new UsageError(
      `--${values.force === true ? 'force' : 'accept-risk'} was replaced by --max-at-risk N: the most connections the change may cost (N may be 'unbounded')`,
    );
  const timeoutS = num(values.timeout, 'timeout');
  const deadlineS = num(values.deadline, 'deadline');
  const maxAtRisk = bound(values['max-at-risk']);
  const { sw, vip } = await locate(client, values, nexthop, kind === 'add');
  const dryRun = values['dry-run'] === true;
  const consent = maxAtRisk === undefined ? {} : { maxAtRisk };
  if (kind === 'undrain') {
    const r = await client.call<{ address: string; state: string }>(
      'POST',
      `${nexthopPath(sw, vip, nexthop)}/undrain`,
      consent,
    );
    print(r, () => `${r.address} on ${vip} (${sw}): ${r.state}\n`);
    return EXIT.ok;
  }
  if (kind === 'remove') {
    const q = new URLSearchParams();
    if (dryRun) q.set('dryRun', 'true');
    if (maxAtRisk !== undefined) q.set('maxAtRisk', String(maxAtRisk));
    const r = await client.call<{
      removed: boolean;
      left: { live: number; unknown: number; pinned: number };
    }>('DELETE', `${nexthopPath(sw, vip, nexthop)}${q.size > 0 ? `?${q.toString()}` : ''}`);
    const left = `${r.left.live} live and ${r.left.unknown} unknown connections left on it (${r.left.pinned} pinned)`;
    print(r, () =>
      dryRun
        ? `dry run: removing ${nexthop} from ${vip} (${sw}) would lose ${left}; nothing changed\n`
        : `${nexthop} removed from ${vip} (${sw}); ${left}\n`,
    );
    return EXIT.ok;
  }
  const path = kind === 'drain' ? `${nexthopPath(sw, vip, nexthop)}/drain` : nexthopPath(sw, vip);
  const body =
    kind === 'drain'
      ? {
          dryRun,
          ...(dryRun ? {} : consent),
          ...(deadlineS === undefined ? {} : { deadlineSeconds: deadlineS }),
        }
      : { address: nexthop, dryRun, ...(dryRun ? {} : consent) };
  if (dryRun) {
    const r = await client.call<{
      flowsToPin: number;
      alreadyPinned: number;
      live: number;
      unknown: number;
      freeEntries: number;
      atRisk: number;
      atRiskBy: Record<string, number>;
      unresolved: number;
      unseen: number;
      unseenBasis: string;
      expectedWindowMs: number;
      expectedWindowFlows: number;
      synRate: number;
      livenessNote: string;
      figures: { total: number; windowCounts: boolean; uncountable: string | null };
      windowThreshold: number;
    }>('POST', path, body);
    print(
      r,
      () => `dry run: ${kind} ${nexthop} on ${vip} (${sw}); nothing changed
  connections to pin    ${r.flowsToPin} (${r.alreadyPinned} already pinned; ${r.live} live, ${r.unknown} unknown)
  programmable room     ${r.freeEntries} free entries
  connections at risk   ${r.atRisk} (${risk(r.atRiskBy)})
  never seen (bound)    ${r.unseen}: ${r.unseenBasis}
  change window         ${r.expectedWindowMs} ms, about ${r.expectedWindowFlows} new connections moved at ${r.synRate.toFixed(1)} SYN/s${r.figures.windowCounts ? '' : ` (within the ${r.windowThreshold} that need no consent)`}
  liveness              ${r.livenessNote}
  needs --max-at-risk   ${r.figures.uncountable === null ? r.figures.total : `unbounded (${r.figures.uncountable})`}
`,
    );
    return EXIT.ok;
  }
  const rec = await client.call<Change>('POST', path, body);
  const summary = (c: Change): string =>
    `${c.kind} ${c.nexthop} on ${c.vip} (${c.switch}), change ${c.id}: ${c.phase}${c.error ? `: ${c.error}` : ''}; pinned ${shown(c.pinned)}, at risk ${shown(c.atRisk)} (${risk(c.atRiskBy)}), never seen ${shown(c.unseen)}, change-window connections ${shown(c.windowFlows)}${c.kind === 'drain' ? `, ${c.remaining} connections left` : ''}\n`;
  if (!values.wait || FINAL.has(rec.phase)) {
    // Done before the wait began (a deadline shorter than the change): the count left, once.
    if (values.wait && rec.kind === 'drain')
      new Progress(process.stderr, `draining ${rec.nexthop}`, rec.remaining).update(
        rec.remaining,
        0,
        rec.estimateS ?? null,
      );
    print(rec, () => summary(rec));
    return rec.phase === 'failed' || rec.phase === 'cancelled'
      ? EXIT.failed
      : rec.phase === 'deadline-passed'
        ? EXIT.deadlinePassed
        : EXIT.ok;
  }
  const final = await waitFor(client, rec, timeoutS, Number(values.interval ?? 1));
  if (final === 'timeout' || final === 'interrupted') {
    const follow = `the ${kind} goes on; follow it with: flowpin changes --switch ${sw}${client.url === 'http://127.0.0.1:8080' ? '' : ` --url ${client.url}`}\n`;
    process.stderr.write(
      `flowpin ${kind}: ${final === 'timeout' ? `not complete after ${timeoutS} s` : 'interrupted'}; ${follow}`,
    );
    if (values.output === 'json') process.stdout.write(`${JSON.stringify({ ...rec, waited: final })}\n`);
    return final === 'timeout' ? EXIT.timeout : EXIT.interrupted;
  }
  print(final, () => summary(final));
  if (final.phase === 'deadline-passed') {
    process.stderr.write(
      `flowpin drain: ${final.error ?? `deadline passed with ${final.remaining} connections left`}; flowpin goes on tracking them (flowpin change ${final.id})\n`,
    );
    return EXIT.deadlinePassed;
  }
  return final.phase === 'failed' || final.phase === 'cancelled' ? EXIT.failed : EXIT.ok;
}

/** Follows a drain's record until it completes or fails, the timeout passes, or SIGINT/SIGTERM. */
async function waitFor(
  client: Client,
  rec: Change,
  timeoutS: number | undefined,
  intervalS: number,
): Promise<Change | 'timeout' | 'interrupted'> {
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
      const now = await client.call<Change>(
        'GET',
        `/api/v1/switches/${enc(rec.switch)}/changes/${enc(rec.id)}`,
      );
      progress.update(
        now.remaining,
        (Date.now() - started) / 1000,
        now.estimateS ?? null,
        now.phase === 'deadline-passed' ? 'deadline passed' : undefined,
      );
      if (FINAL.has(now.phase)) return now;
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
