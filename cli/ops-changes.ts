// `flowpin changes [--watch]`, `flowpin change ID` and `flowpin cancel ID`: the change records
// of a running controller. --watch polls every --interval seconds, each request with its own
// deadline (a controller that stops answering is said so on stderr, and polled again), prints
// the table once and then one row (or, with -o json, one JSON line) per change that is new or
// has moved; Ctrl-C or SIGTERM ends it with status 0. A cancel refused because the change's
// group write was sent says, in CLI words, which command would undo it.

import type { Actor, ChangeRecord, RiskFigures } from '../controller/changes.js';
import { ApiError, Client, enc } from './client.js';

/** A change as the API gives it (a type only: nothing of the controller is loaded). */
export type Change = ChangeRecord & { resetsSeen?: number | null };

export const table = (head: string[], rows: (string | number)[][]): string => {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  return (
    [head, ...rows]
      .map((r) =>
        r
          .map((c, i) => String(c).padEnd(w[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
};

export const risk = (by: Record<string, number>): string =>
  Object.entries(by)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

/** A figure a record did not measure (lost across a kill) is null: said so, never 0. */
export const shown = (v: number | null | undefined): string =>
  v === null || v === undefined ? 'not measured' : String(v);

const HEAD = [
  'id',
  'kind',
  'switch',
  'vip',
  'nexthop',
  'phase',
  'pinned',
  'at-risk',
  'unseen',
  'window',
  'left',
  'by',
];
const row = (c: Change): (string | number)[] => [
  c.id,
  c.kind,
  c.switch,
  c.vip,
  c.nexthop,
  `${c.phase}${c.error ? `: ${c.error}` : ''}`,
  shown(c.pinned),
  shown(c.atRisk),
  shown(c.unseen),
  shown(c.windowFlows),
  c.kind === 'drain' ? c.remaining : '-',
  c.requestedBy?.token ?? '-',
];

/** Who made a call: `token ops-alice from 10.1.2.3`. */
const who = (a: Actor | undefined): string =>
  a === undefined
    ? 'not recorded (made inside flowpin)'
    : `token ${a.token ?? '(none)'} from ${a.client ?? 'unknown'}`;

/** Consent figures in words: what counted against the bound. */
const figures = (f: RiskFigures | undefined): string =>
  f === undefined
    ? 'not recorded'
    : f.uncountable !== null
      ? `not countable (${f.uncountable})`
      : `${f.total} against the bound: at risk ${f.atRisk} (${risk(f.atRiskBy)}), never seen ${f.unseen}, change window ${f.expectedWindowFlows} expected${f.windowCounts ? '' : ' (within the threshold: not counted)'}`;

/** Each request's deadline while watching: a hung controller never stalls the watch. */
const requestDeadlineMs = (intervalS: number): number => Math.min(10_000, Math.max(2_000, intervalS * 1000));

async function switchNames(client: Client, timeoutMs?: number): Promise<string[]> {
  return (
    await client.call<{ switches: { name: string }[] }>('GET', '/api/v1/switches', undefined, timeoutMs)
  ).switches.map((s) => s.name);
}

async function listChanges(client: Client, only: string | undefined, timeoutMs?: number): Promise<Change[]> {
  const names = only !== undefined ? [only] : await switchNames(client, timeoutMs);
  return (
    await Promise.all(
      names.map((n) =>
        client.call<{ changes: Change[] }>('GET', `/api/v1/switches/${enc(n)}/changes`, undefined, timeoutMs),
      ),
    )
  ).flatMap((r) => r.changes);
}

export async function changesCommand(
  client: Client,
  opts: { switch?: string; json: boolean; watch: boolean; intervalS: number },
): Promise<number> {
  const first = await listChanges(client, opts.switch);
  process.stdout.write(
    opts.json && !opts.watch
      ? `${JSON.stringify({ changes: first }, null, 2)}\n`
      : opts.json
        ? first.map((c) => `${JSON.stringify(c)}\n`).join('')
        : table(HEAD, first.map(row)),
  );
  if (!opts.watch) return 0;
  const seen = new Map(first.map((c) => [c.id, JSON.stringify(row(c))]));
  let stop = false;
  let wake: (() => void) | undefined;
  const onSignal = (): void => {
    stop = true;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let failing = false;
  try {
    while (!stop) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, opts.intervalS * 1000);
      });
      if (stop) break;
      let now: Change[];
      try {
        now = await listChanges(client, opts.switch, requestDeadlineMs(opts.intervalS));
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (!failing) process.stderr.write(`flowpin changes: ${err.message}; still watching\n`);
        failing = true;
        continue;
      }
      if (failing) process.stderr.write('flowpin changes: answering again\n');
      failing = false;
      for (const c of now) {
        const key = JSON.stringify(row(c));
        if (seen.get(c.id) === key) continue;
        seen.set(c.id, key);
        process.stdout.write(
          opts.json ? `${JSON.stringify(c)}\n` : table(HEAD, [row(c)]).split('\n')[1] + '\n',
        );
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}

const at = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());

/**
 * One change by id: on the switch given, else on the switch the id names (ids start with it), else on each.
 */
async function findChange(client: Client, id: string, only: string | undefined): Promise<Change> {
  let names = only !== undefined ? [only] : await switchNames(client);
  names = [...names.filter((n) => id.startsWith(`${n}-`)), ...names.filter((n) => !id.startsWith(`${n}-`))];
  for (const n of names) {
    try {
      return await client.call<Change>('GET', `/api/v1/switches/${enc(n)}/changes/${enc(id)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
  }
  throw new ApiError(
    404,
    'not-found',
    `no change ${id}${only === undefined ? '' : ` on switch ${only}`}; 'flowpin changes' lists the recent ones`,
  );
}

/**
 * Cancels a change before its group write. Refused after it (409): the opposite change is named
 * as a command, with its dry run, since that is a change of its own with its own bound.
 */
export async function cancelCommand(
  client: Client,
  id: string,
  opts: { switch?: string; json: boolean },
): Promise<number> {
  const c = await findChange(client, id, opts.switch);
  let r: Change;
  try {
    r = await client.call<Change>('POST', `/api/v1/switches/${enc(c.switch)}/changes/${enc(c.id)}/cancel`);
  } catch (err) {
    const undo =
      err instanceof ApiError
        ? (err.detail?.['undo'] as { command?: string } | undefined)?.command
        : undefined;
    if (!(err instanceof ApiError) || err.status !== 409 || undo === undefined) throw err;
    const place = `--vip ${c.vip} --switch ${c.switch}`;
    const dry =
      undo === 'undrain'
        ? `flowpin add ${c.nexthop} ${place} --dry-run`
        : `flowpin drain ${c.nexthop} ${place} --dry-run`;
    const what =
      undo === 'undrain'
        ? `putting ${c.nexthop} back into the group of ${c.vip}`
        : `taking ${c.nexthop} out of the group of ${c.vip} again`;
    const written =
      err.message.match(/ (was applied at \S+|has been sent to the switch):/)?.[1] ?? 'was sent';
    throw new ApiError(
      409,
      err.code,
      `the group write of ${c.kind} ${c.id} ${written}: cancel cannot take it back, and changed nothing. What would undo it is ${what}: flowpin ${undo} ${c.nexthop} ${place}, a new change with its own --max-at-risk (${dry} shows what it would cost)`,
      err.detail,
    );
  }
  process.stdout.write(
    opts.json
      ? `${JSON.stringify(r, null, 2)}\n`
      : `change ${r.id}: ${r.kind} ${r.nexthop} on ${r.vip} (${r.switch}) ${r.phase}${r.error ? ` (${r.error})` : ''}: no group write was sent, nothing changed on the switch, its pins are released\n`,
  );
  return r.phase === 'cancelled' ? 0 : 1;
}

export async function changeCommand(
  client: Client,
  id: string,
  opts: { switch?: string; json: boolean },
): Promise<number> {
  const c = await findChange(client, id, opts.switch);
  process.stdout.write(
    opts.json
      ? `${JSON.stringify(c, null, 2)}\n`
      : `change ${c.id}: ${c.kind} ${c.nexthop} on ${c.vip} (${c.switch})
  phase              ${c.phase}${c.deadlineReached ? ' (deadline reached)' : ''}${c.error ? `: ${c.error}` : ''}
  requested by       ${who(c.requestedBy)}${c.cancelledBy === undefined ? '' : `\n  cancelled by       ${who(c.cancelledBy)}`}
  consent            --max-at-risk ${c.maxAtRisk}
  dry run            ${figures(c.dryRunFigures)}
  before the write   ${c.checked === undefined ? 'not reached' : figures(c.checked)}
  pinned             ${c.pinned}
  at risk            ${c.atRisk} (${risk(c.atRiskBy)})
  change window      ${c.windowFlows} flows
  pinned flows left  ${c.remaining}
  server resets seen ${c.resetsSeen === null || c.resetsSeen === undefined ? 'not mirrored' : c.resetsSeen}
  queued             ${at(c.queuedAt)}
  held               ${at(c.heldAt)}
  group change sent  ${at(c.sentAt)}
  applied            ${at(c.appliedAt)}
  effective          ${at(c.effectiveAt)}
  completed          ${at(c.completedAt)}
  deadline           ${at(c.deadlineAt)}
`,
  );
  return 0;
}
