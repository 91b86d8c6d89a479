// One torture run: the simulator, the controller and the load in real processes; a change
// (drain or add) under load with the run's fault injected (SIGKILL at random or at a named
// phase, SIGSTOP past a timeout, a queued second change killed, a full disk, damaged state
// files, eAPI faults), restarts on the same state, and the figures checked against the
// simulator's reset log (truth.ts). Every wait is bounded.

import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ResetLine } from '../switch-sim/reset-log.js';
import {
  http,
  flowpin,
  freePort,
  startSim,
  TOPOLOGY,
  until,
  writeControllerConfig,
  type Proc,
  type SimHandle,
} from './procs.js';
import type { Phase, RunPlan } from './schedule.js';
import { damage, leftovers, restorable, stateFileIn } from './state-files.js';
import {
  attribute,
  judge,
  journalLoss,
  type ChangeTruth,
  type Downtime,
  type RecordView,
  type Watched,
} from './truth.js';

export interface RunOptions {
  rate: number;
  warmS: number;
  lifetime: { medianS: number; sigma: number; maxS: number };
  /** Longest wait for a change to end (its drain deadline is a little shorter). */
  changeTimeoutS: number;
  keep: boolean;
  cpuProf: boolean;
  /** Log what the run does, on stderr. */
  verbose: boolean;
}

export interface RunReport {
  run: number;
  seed: number;
  fault: string;
  kind: string;
  phase?: string;
  damage?: string;
  rate: number;
  kills: number;
  restarts: number;
  changes: ChangeTruth[];
  protectedResets: number;
  uncountedResets: number;
  unattributedResets: number;
  falseRecords: number;
  journal: { lossWindowMs: number; missing: number; lastSentMs: number; lastRestoredMs: number }[];
  load: Record<string, number> | undefined;
  /**
   * The test bed's own health: the simulator's event loop delay (ms) and load segments it did not answer in
   * time.
   */
  bed: {
    simLoopMaxMs: number | undefined;
    simLoopP99Ms: number | undefined;
    simEapiP99Ms: number | undefined;
    unanswered: number | undefined;
  };
  notes: string[];
  violations: string[];
  ok: boolean;
  dir?: string;
}

const TOKEN = 'torture-token';
const FINAL = (phase: string | undefined): boolean =>
  phase !== undefined && !['queued', 'pending', 'applied'].includes(phase);

interface Ctx {
  plan: RunPlan;
  o: RunOptions;
  dir: string;
  stateDir: string;
  config: string;
  apiPort: number;
  api: string;
  sim: SimHandle;
  ctl: Proc;
  ctlLog: string;
  load: Proc | undefined;
  watched: Watched[];
  down: Downtime[];
  kills: number;
  restarts: number;
  notes: string[];
  violations: string[];
  journal: RunReport['journal'];
  consent: 'maxAtRisk' | 'acceptRisk';
  polling: boolean;
  crashKill: { phase: Phase; done: boolean } | undefined;
  /** The point where the running controller said it kills itself (FLOWPIN_CRASH_AT), if any. */
  selfKillAt: string | undefined;
  /** The change log was moved aside by --discard-state after a refusal. */
  discardedChangeLog: boolean;
}

const say = (ctx: Ctx, msg: string): void => {
  if (ctx.o.verbose) process.stderr.write(`torture[${ctx.plan.run}]: ${msg}\n`);
};

const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

function startController(ctx: Ctx, crashAt?: Phase, extra: string[] = []): Proc {
  const env: Record<string, string> = { FLOWPIN_LOG_LEVEL: 'info', FLOWPIN_TOKEN: TOKEN };
  if (crashAt !== undefined) env['FLOWPIN_CRASH_AT'] = crashAt;
  ctx.selfKillAt = undefined;
  const p = flowpin(['run', '--config', ctx.config, ...extra], {
    env,
    logFile: ctx.ctlLog,
    ...(ctx.o.cpuProf ? { cpuProfDir: path.join(ctx.dir, 'prof', 'controller') } : {}),
  });
  p.onLine((line, at) => onLogLine(ctx, line, at));
  return p;
}

function onLogLine(ctx: Ctx, line: string, at: number): void {
  if (!line.startsWith('{')) return;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  if (typeof j['msg'] === 'string' && j['msg'].startsWith('FLOWPIN_CRASH_AT is set'))
    ctx.selfKillAt = String(j['point']);
  if (j['msg'] !== 'change phase') return;
  const id = String(j['change']);
  const phase = String(j['phase']);
  const w =
    ctx.watched.find((x) => x.id === id) ??
    ctx.watched.find((x) => x.id === undefined && x.nexthop === j['nexthop']);
  if (w !== undefined) w.seen[phase] ??= at;
  if (ctx.crashKill !== undefined && !ctx.crashKill.done && phase === ctx.crashKill.phase)
    void killController(ctx, `log line: phase ${phase}`);
}

/** Waits until the controller answers and says ready; the time it listened for the mirror again. */
async function whenReady(ctx: Ctx, ms = 60_000): Promise<number> {
  await until(
    async () => ctx.ctl.exited() || (await http(`${ctx.api}/readyz`, {}, 2000)).status === 200,
    ms,
    'the controller to be ready',
    100,
  );
  if (ctx.ctl.exited()) throw new Error(`the controller exited: ${ctx.ctl.out().slice(-2000)}`);
  const m = /"msg":"listening for GRE-in-UDP mirror frames"/.test(ctx.ctl.out());
  return m ? Date.now() : Date.now();
}

let killing: Promise<void> | undefined;

/** SIGKILL, measure the journal against the load's SYNs, optionally damage the state, restart, wait ready. */
async function killController(ctx: Ctx, why: string, afterKill?: () => void): Promise<void> {
  if (killing !== undefined) return killing;
  if (ctx.crashKill !== undefined) ctx.crashKill.done = true;
  killing = (async () => {
    const killAt = Date.now();
    ctx.ctl.signal('SIGKILL');
    await ctx.ctl.exit;
    const selfKilled = ctx.ctl.child.signalCode === 'SIGKILL' && !why.startsWith('log') ? why : why;
    ctx.kills++;
    say(ctx, `killed the controller (${selfKilled})`);
    ctx.notes.push(`kill at +${killAt - (ctx.watched[0]?.callAt ?? killAt)} ms after the call (${why})`);
    measureJournal(ctx, killAt);
    // A kill in the middle of an atomic write leaves its temporary file; the restart must remove it.
    const tmpAtKill = leftovers(ctx.stateDir);
    afterKill?.();
    ctx.ctl = startController(ctx);
    ctx.restarts++;
    let up: number;
    try {
      up = await whenReady(ctx);
    } catch (err) {
      ctx.down.push({ from: killAt, to: Date.now() });
      throw err;
    }
    ctx.down.push({ from: killAt, to: up });
    say(ctx, `restarted, ready after ${up - killAt} ms`);
    const tmp = leftovers(ctx.stateDir).filter((f) => tmpAtKill.includes(f));
    if (tmp.length > 0)
      ctx.violations.push(
        `temporary files left by the kill and not removed by the restart: ${tmp.join(', ')}`,
      );
  })();
  try {
    await killing;
  } finally {
    killing = undefined;
  }
}

function measureJournal(ctx: Ctx, killAt: number): void {
  const st = restorable(stateFileIn(ctx.stateDir));
  if (st.error !== undefined) {
    ctx.notes.push(`state unreadable after the kill: ${st.error}`);
    return;
  }
  const syns: { t: number; flow: string }[] = [];
  const file = path.join(ctx.dir, 'load.jsonl');
  if (!existsSync(file)) return;
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (l === '') continue;
    try {
      const j = JSON.parse(l) as { t: number; syn: string[] };
      for (const f of j.syn) syns.push({ t: j.t, flow: f });
    } catch {
      // a line being written
    }
  }
  const since = Math.max(st.savedAt ?? 0, ctx.ctl.startedAt + 2000);
  // SYNs whose resolution the controller could not have finished: the last 5 ms are the load's own tick.
  ctx.journal.push(journalLoss(syns, st.flows, since, killAt - 5));
}

async function change(
  ctx: Ctx,
  kind: 'drain' | 'add',
  vip: string,
  nexthop: string,
  deadlineS: number,
): Promise<Watched> {
  const w: Watched = { id: undefined, kind, vip, nexthop, callAt: Date.now(), status: 0, seen: {} };
  ctx.watched.push(w);
  const url =
    kind === 'drain'
      ? `${ctx.api}/api/v1/switches/sim1/vips/${vip}/nexthops/${nexthop}/drain`
      : `${ctx.api}/api/v1/switches/sim1/vips/${vip}/nexthops`;
  const bodyOf = (consent: Ctx['consent']): Record<string, unknown> => ({
    ...(kind === 'add' ? { address: nexthop } : { deadlineSeconds: deadlineS }),
    ...(consent === 'maxAtRisk' ? { maxAtRisk: 1_000_000 } : { acceptRisk: true }),
  });
  const r = await http(
    url,
    { method: 'POST', headers: auth, body: JSON.stringify(bodyOf(ctx.consent)) },
    60_000,
  );
  w.status = r.status;
  const b = r.body as { id?: string };
  if (typeof b === 'object' && b !== null && typeof b.id === 'string') w.id = b.id;
  // 503 (the switch could not apply it, with the cause) and 507 (the state cannot be written) are answers; a
  // 500 is a fault.
  if (r.status >= 500 && r.status !== 503 && r.status !== 507)
    ctx.violations.push(
      `${kind} of ${nexthop} answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`,
    );
  say(ctx, `${kind} ${nexthop}: ${r.status} ${w.id ?? ''}`);
  return w;
}

async function records(ctx: Ctx, timeoutMs = 3000): Promise<RecordView[] | undefined> {
  const r = await http(`${ctx.api}/api/v1/switches/sim1/changes`, {}, timeoutMs);
  if (r.status !== 200) return undefined;
  return (r.body as { changes: RecordView[] }).changes;
}

async function simCounters(ctx: Ctx): Promise<
  | {
      pinsByNexthop: Record<string, number>;
      dataplane?: { liveByServer: Record<string, number>; closingByServer?: Record<string, number> };
      groupChanges: {
        wallAt: number;
        vip: string;
        op: string;
        nexthop: string;
        pinsToward?: number;
        pinsTowardOpen?: number;
      }[];
      eventLoop: { maxMs: number; p99Ms: number };
    }
  | undefined
> {
  const r = await http(`${ctx.sim.status}/counters`, {}, 3000);
  return r.status === 200 ? (r.body as never) : undefined;
}

const match = (w: Watched, recs: readonly RecordView[]): RecordView | undefined =>
  w.id !== undefined
    ? recs.find((r) => r.id === w.id)
    : recs.find(
        (r) =>
          r.kind === w.kind &&
          r.vip === w.vip &&
          r.nexthop === w.nexthop &&
          typeof r['queuedAt'] === 'number' &&
          r['queuedAt'] >= w.callAt - 1000,
      );

/**
 * How this controller takes consent: a bound (`maxAtRisk`), or the older flag (`acceptRisk`)
 * where the bound is refused as an unknown field. Asked with a dry run, which changes nothing.
 */
async function consentOf(ctx: Ctx): Promise<Ctx['consent']> {
  const r = await http(
    `${ctx.api}/api/v1/switches/sim1/vips/192.0.2.80/nexthops/10.0.1.1/drain`,
    { method: 'POST', headers: auth, body: JSON.stringify({ dryRun: true, maxAtRisk: 0 }) },
    30_000,
  );
  return r.status === 400 && JSON.stringify(r.body).includes('maxAtRisk') ? 'acceptRisk' : 'maxAtRisk';
}

/**
 * Samples how long the simulator's eAPI takes to answer `show version` (the bed's own latency, not
 * flowpin's).
 */
async function sampleEapi(ctx: Ctx, out: number[]): Promise<void> {
  const auth64 = `Basic ${Buffer.from('admin:flowpin').toString('base64')}`;
  while (ctx.polling) {
    const t0 = performance.now();
    const r = await http(
      ctx.sim.eapi,
      {
        method: 'POST',
        headers: { authorization: auth64, 'content-type': 'application/json' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          method: 'runCmds',
          params: { version: 1, cmds: ['show version'], format: 'json' },
          id: 1,
        }),
      },
      30_000,
    );
    if (r.status === 200) out.push(performance.now() - t0);
    await sleep(500);
  }
}

/**
 * Polls the records while the run goes on: phases seen (where no log line says them), and the switch at the
 * moments that matter.
 */
async function poll(ctx: Ctx): Promise<void> {
  const fields: [string, keyof RecordView][] = [
    ['held', 'heldAt'],
    ['sent', 'sentAt'],
    ['applied', 'appliedAt'],
    ['effective', 'effectiveAt'],
  ];
  while (ctx.polling) {
    let recs: RecordView[] | undefined;
    for (let i = 0; i < 3 && recs === undefined && !ctx.ctl.exited(); i++) recs = await records(ctx, 15_000);
    const now = Date.now();
    for (const w of ctx.watched) {
      const r = recs === undefined ? undefined : match(w, recs);
      if (r === undefined) continue;
      w.id ??= r.id;
      w.seen['record'] ??= now;
      for (const [phase, f] of fields) if (r[f] !== undefined) w.seen[`${phase}:api`] ??= now;
      if (r.effectiveAt !== undefined && w.pinsAtEffective === undefined && w.kind === 'drain') {
        const c = await simCounters(ctx);
        w.pinsAtEffective = c?.pinsByNexthop[w.nexthop] ?? 0;
        w.pinsSampledAt = Date.now();
      }
      if (FINAL(r.phase) && w.atFinal === undefined) {
        const c = await simCounters(ctx);
        w.atFinal = {
          at: Date.now(),
          phase: r.phase,
          // Connections with both FINs sent are ended as flowpin sees them (their pins linger for the
          // final ACK).
          live: c?.dataplane?.liveByServer[w.nexthop] ?? 0,
          closing: c?.dataplane?.closingByServer?.[w.nexthop] ?? 0,
          pins: c?.pinsByNexthop[w.nexthop] ?? 0,
        };
      }
      // Kills at a phase where the controller says nothing of it: as soon as the record shows it.
      // Not where the controller kills itself at the phase: the record shows sentAt before the
      // group write has left, and a kill from here would land before it (a kill at `sending`).
      const ck = ctx.crashKill;
      if (ck !== undefined && !ck.done && ctx.selfKillAt !== ck.phase && w === ctx.watched[0]) {
        const fallback: Record<Phase, boolean> = {
          pending: true,
          held: r.heldAt !== undefined,
          sending: r.sentAt !== undefined,
          sent: r.sentAt !== undefined,
          applied: r.appliedAt !== undefined,
          effective: r.effectiveAt !== undefined,
        };
        if (fallback[ck.phase]) void killController(ctx, `record shows phase ${ck.phase}`);
      }
    }
    // Every 20 ms while a kill waits for a phase, else every 100 ms: the polls cost the controller CPU too.
    await new Promise((r) => setTimeout(r, ctx.crashKill !== undefined && !ctx.crashKill.done ? 20 : 100));
  }
}

async function untilFinal(ctx: Ctx, ws: readonly Watched[]): Promise<void> {
  await until(
    async () => {
      if (killing !== undefined) await killing;
      if (ctx.ctl.exited()) return true;
      const recs = await records(ctx);
      // Done: refused calls, calls never answered whose change left no record, and changes whose record is
      // final.
      return (
        recs !== undefined &&
        ws.every((w) => {
          const r = match(w, recs);
          return (
            (w.status > 0 && w.status < 200) ||
            w.status >= 400 ||
            (w.status === 0 && r === undefined) ||
            FINAL(r?.phase)
          );
        })
      );
    },
    ctx.o.changeTimeoutS * 1000,
    'the changes to end',
    200,
  ).catch((err: unknown) => ctx.notes.push(err instanceof Error ? err.message : String(err)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A small tmpfs for the state directory (disk-full runs); root only. */
function mountSmall(dir: string, kb: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k`, 'flowpin-torture', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function diskFull(ctx: Ctx): Promise<void> {
  const fs = statfsSync(ctx.stateDir);
  const free = fs.bavail * fs.bsize;
  try {
    writeFileSync(path.join(ctx.stateDir, 'filler'), Buffer.alloc(Math.max(0, free - 4096)));
  } catch (err) {
    // The filesystem's own bookkeeping can leave less than it reported: full either way.
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  const filledAt = Date.now();
  say(ctx, `state filesystem filled (${free} bytes)`);
  // Readiness must turn red at the first failed durable write: it has 2 s.
  await sleep(2000);
  const ready = await http(`${ctx.api}/readyz`, {}, 3000);
  if (ready.status === 200)
    ctx.violations.push(
      `ready 2 s after the state filesystem filled: ${JSON.stringify(ready.body).slice(0, 200)}`,
    );
  const w = await change(ctx, 'drain', '192.0.2.80', '10.0.1.2', ctx.o.changeTimeoutS - 5);
  if (w.status >= 200 && w.status < 300) ctx.notes.push('a drain was accepted on a full state filesystem');
  else if (w.status !== 507 && w.status !== 503)
    ctx.violations.push(`drain on a full disk answered ${w.status}, not 507 or 503`);
  await sleep(3000);
  const errors = ctx.ctl
    .out()
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l)).length;
  ctx.notes.push(`${errors} error lines in ${Math.round((Date.now() - filledAt) / 1000)} s of a full disk`);
  if (errors > 20)
    ctx.violations.push(
      `${errors} error log lines in ${Math.round((Date.now() - filledAt) / 1000)} s of a full disk (not rate-limited)`,
    );
  rmSync(path.join(ctx.stateDir, 'filler'));
  await untilFinal(ctx, [w]);
}

async function plan(ctx: Ctx): Promise<void> {
  const p = ctx.plan;
  const target = p.kind === 'drain' ? '10.0.1.2' : (TOPOLOGY.spare[0] ?? '10.0.1.5');
  const deadline = ctx.o.changeTimeoutS - 5;
  switch (p.fault) {
    case 'none': {
      // A drain, then an addition once the drain is applied: both wall times under the same load.
      const d = await change(ctx, 'drain', '192.0.2.80', '10.0.1.2', deadline);
      await until(
        () =>
          d.seen['applied:api'] ?? d.seen['applied'] ?? (d.status >= 400 || d.status === 0 ? 1 : undefined),
        ctx.o.changeTimeoutS * 1000,
        'the drain applied',
      ).catch(() => undefined);
      const a = await change(ctx, 'add', '192.0.2.80', TOPOLOGY.spare[0] ?? '10.0.1.5', deadline);
      await untilFinal(ctx, [d, a]);
      return;
    }
    case 'eapi-fault': {
      await http(`${ctx.sim.status}/faults/eapi`, {
        method: 'PUT',
        body: JSON.stringify({ failNext: 2, latencyMs: 150, lostReplyNext: 1, hangMs: 3000 }),
      });
      const w = await change(ctx, p.kind, '192.0.2.80', target, deadline);
      await untilFinal(ctx, [w]);
      await http(`${ctx.sim.status}/faults/eapi`, { method: 'DELETE' });
      return;
    }
    case 'kill-random': {
      const call = change(ctx, p.kind, '192.0.2.80', target, deadline);
      await sleep(p.delayMs);
      await killController(ctx, `random, ${p.delayMs} ms after the call`);
      const w = await call;
      await untilFinal(ctx, [w]);
      return;
    }
    case 'kill-phase': {
      ctx.crashKill = { phase: p.phase ?? 'sent', done: false };
      const w = await change(ctx, p.kind, '192.0.2.80', target, deadline);
      await until(
        () => ctx.crashKill?.done === true || ctx.ctl.exited() || FINAL(w.atFinal?.phase),
        30_000,
        `phase ${p.phase ?? ''}`,
      ).catch(() => ctx.notes.push(`phase ${p.phase ?? ''} never seen`));
      if (ctx.ctl.exited() && killing === undefined) {
        // The controller killed itself at the phase (FLOWPIN_CRASH_AT): restart it.
        ctx.crashKill.done = true;
        await killController(ctx, `FLOWPIN_CRASH_AT=${p.phase ?? ''}`);
      }
      if (killing !== undefined) await killing;
      await untilFinal(ctx, [w]);
      return;
    }
    case 'stop': {
      const w = await change(ctx, 'drain', '192.0.2.80', target, deadline);
      await sleep(Math.min(p.delayMs, 500));
      const from = Date.now();
      ctx.ctl.signal('SIGSTOP');
      say(ctx, `SIGSTOP for ${p.stopMs} ms`);
      await sleep(p.stopMs);
      ctx.ctl.signal('SIGCONT');
      ctx.down.push({ from, to: Date.now() });
      ctx.notes.push(`stopped ${p.stopMs} ms`);
      await untilFinal(ctx, [w]);
      return;
    }
    case 'queued-kill': {
      // Two drains (a change call answers once the change is applied): the second waits behind
      // the first. The kill comes once the records show the second queued, after the delay.
      const calls = [
        change(ctx, 'drain', '192.0.2.80', '10.0.1.2', deadline),
        change(ctx, 'drain', '192.0.2.81', '10.0.2.2', deadline),
      ];
      const second = await until(
        () => ctx.watched.find((w) => w.nexthop === '10.0.2.2' && w.seen['record'] !== undefined),
        30_000,
        'the second change recorded',
      ).catch(() => undefined);
      await sleep(p.delayMs);
      const recs = await records(ctx, 10_000);
      ctx.notes.push(
        `at the kill: ${ctx.watched.map((w) => `${w.nexthop} ${(recs === undefined ? undefined : match(w, recs))?.phase ?? '-'}`).join(', ')}${second === undefined ? ' (the second change never recorded)' : ''}`,
      );
      await killController(ctx, `queued, ${p.delayMs} ms after the second change was recorded`);
      await untilFinal(ctx, await Promise.all(calls));
      return;
    }
    case 'disk-full':
      return diskFull(ctx);
    case 'corrupt': {
      const w = await change(ctx, p.kind, '192.0.2.80', target, deadline);
      await until(
        () => w.seen['applied:api'] ?? w.seen['applied'] ?? (w.status >= 400 ? 1 : undefined),
        30_000,
        'applied',
      ).catch(() => undefined);
      await sleep(300);
      let what = '';
      await killController(
        ctx,
        `then ${p.damage ?? ''}`,
        () => (what = damage(stateFileIn(ctx.stateDir), p.damage ?? 'garbage')),
      ).catch((err: unknown) => {
        // Refusing to start on damaged state is right, if it names the file.
        const out = ctx.ctl.out();
        if (!out.includes(ctx.stateDir))
          ctx.violations.push(
            `refused to start on damaged state without naming the file: ${out.slice(-300)}`,
          );
        ctx.notes.push(`refused to start: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}`);
      });
      ctx.notes.push(what);
      if (ctx.ctl.exited()) {
        // What the refusal tells the operator to do: start again with --discard-state, which moves
        // aside the parts that cannot be read and keeps the rest.
        ctx.ctl = startController(ctx, undefined, ['--discard-state']);
        ctx.restarts++;
        const up = await whenReady(ctx);
        const last = ctx.down[ctx.down.length - 1];
        if (last !== undefined) last.to = up;
        const moved = /"moved":\[([^\]]*)\]/.exec(ctx.ctl.out())?.[1] ?? '';
        ctx.notes.push(`restarted with --discard-state: moved aside ${moved === '' ? 'nothing' : moved}`);
        ctx.discardedChangeLog = moved.includes('.changes.discarded-');
        await untilFinal(ctx, [w]);
        return;
      }
      if (!ctx.ctl.exited()) {
        const named = ctx.ctl
          .out()
          .split('\n')
          .some((l) => /"level":(40|50|60)/.test(l) && l.includes(ctx.stateDir));
        if (!named && !what.includes('nothing damaged'))
          ctx.violations.push(`started ready on damaged state (${what}) without a warning naming the file`);
        await untilFinal(ctx, [w]);
      }
      return;
    }
  }
}

export async function runOnce(p: RunPlan, o: RunOptions): Promise<RunReport> {
  const dir = mkdtempSync(path.join(tmpdir(), `flowpin-torture-${p.run}-`));
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir);
  const notes: string[] = [];
  let mounted = false;
  if (p.fault === 'disk-full') {
    mounted = mountSmall(stateDir, 2048);
    if (!mounted) notes.push('disk-full needs root (mount -t tmpfs): run skipped');
  }
  const mirrorPort = await freePort('udp');
  const apiPort = await freePort('tcp');
  const sim = await startSim(
    dir,
    mirrorPort,
    TOPOLOGY,
    path.join(dir, 'resets.jsonl'),
    o.cpuProf ? path.join(dir, 'prof', 'sim') : undefined,
  );
  const config = writeControllerConfig({
    dir,
    stateDir,
    apiPort,
    mirrorPort,
    token: TOKEN,
    eapi: sim.eapi,
    topo: TOPOLOGY,
  });
  const ctx: Ctx = {
    plan: p,
    o,
    dir,
    stateDir,
    config,
    apiPort,
    api: `http://127.0.0.1:${apiPort}`,
    sim,
    ctl: undefined as unknown as Proc,
    ctlLog: path.join(dir, 'controller.log'),
    load: undefined,
    watched: [],
    down: [],
    kills: 0,
    restarts: 0,
    notes,
    violations: [],
    journal: [],
    consent: 'maxAtRisk',
    polling: true,
    crashKill: undefined,
    selfKillAt: undefined,
    discardedChangeLog: false,
  };
  let poller: Promise<void> | undefined;
  const eapiMs: number[] = [];
  let loadSummary: Record<string, number> | undefined;
  try {
    ctx.ctl = startController(ctx, p.fault === 'kill-phase' ? p.phase : undefined);
    await whenReady(ctx);
    ctx.consent = await consentOf(ctx);
    const durationS = o.warmS + o.changeTimeoutS + 30;
    ctx.load = flowpin(
      [
        'load',
        '--dataplane',
        sim.dataplane,
        '--vip',
        '192.0.2.80:443',
        '--rate',
        String(o.rate),
        '--duration-s',
        String(durationS),
        '--lifetime-median-s',
        String(o.lifetime.medianS),
        '--lifetime-sigma',
        String(o.lifetime.sigma),
        '--lifetime-max-s',
        String(o.lifetime.maxS),
        '--seed',
        String(p.seed),
        '--log',
        path.join(dir, 'load.jsonl'),
        '--finish-s',
        String(o.lifetime.maxS + 2),
      ],
      { logFile: path.join(dir, 'load.out') },
    );
    poller = Promise.all([poll(ctx), sampleEapi(ctx, eapiMs)]).then(() => undefined);
    // A loaded machine may take seconds to start a process: the warm-up counts from the first SYN.
    const load = ctx.load;
    await until(
      () =>
        load.exited() ||
        (existsSync(path.join(dir, 'load.jsonl')) && statSync(path.join(dir, 'load.jsonl')).size > 0),
      60_000,
      'the load to start',
    );
    if (load.exited()) throw new Error(`the load exited: ${load.out().slice(-500)}`);
    await sleep(o.warmS * 1000);
    if (p.fault !== 'disk-full' || mounted) await plan(ctx);
  } catch (err) {
    ctx.violations.push(`run error: ${err instanceof Error ? err.message.slice(0, 500) : String(err)}`);
  }
  // Let the connections of the change window play out, then stop the load (it finishes its open connections).
  await sleep(1000);
  ctx.load?.signal('SIGTERM');
  if (ctx.load !== undefined) {
    await Promise.race([ctx.load.exit, sleep((o.lifetime.maxS + 10) * 1000)]);
    if (!ctx.load.exited()) ctx.load.signal('SIGKILL');
    const last = ctx.load.out().trim().split('\n').pop() ?? '';
    try {
      loadSummary = (JSON.parse(last) as { summary: Record<string, number> }).summary;
    } catch {
      notes.push(`load summary missing: ${last.slice(0, 200)}`);
    }
  }
  ctx.polling = false;
  await poller;
  let recs: RecordView[] | undefined;
  for (let i = 0; i < 3 && recs === undefined && !ctx.ctl.exited(); i++) recs = await records(ctx, 15_000);
  const counted = new Map<string, Set<string>>();
  for (const w of ctx.watched) {
    if (w.id === undefined || recs === undefined) continue;
    const r = await http(`${ctx.api}/api/v1/switches/sim1/changes/${w.id}/counted`, {}, 5000);
    const body = r.body as { items?: { flow: string }[]; truncated?: boolean };
    // A list short of some flows (truncated, or counted before a restart) cannot name what is uncounted: the
    // record's figures are judged instead.
    if (r.status === 200 && body.truncated !== true)
      counted.set(w.id, new Set((body.items ?? []).map((i) => i.flow)));
  }
  const simC = await simCounters(ctx);
  for (const w of ctx.watched) {
    const op = w.kind === 'drain' ? 'remove' : 'add';
    const g = simC?.groupChanges.find(
      (g) => g.vip === w.vip && g.op === op && g.nexthop === w.nexthop && g.wallAt >= w.callAt - 50,
    );
    w.groupWriteAt = g?.wallAt;
    if (g?.pinsToward !== undefined) w.pinsAtWrite = g.pinsToward;
    if (g?.pinsTowardOpen !== undefined) w.openPinsAtWrite = g.pinsTowardOpen;
  }
  await ctx.ctl.stop();
  await sim.stop();
  if (mounted) {
    try {
      execFileSync('umount', [stateDir], { stdio: 'ignore' });
    } catch {
      notes.push(`could not unmount ${stateDir}`);
    }
  }
  const resets: ResetLine[] = existsSync(path.join(dir, 'resets.jsonl'))
    ? readFileSync(path.join(dir, 'resets.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as ResetLine)
    : [];
  const { by, unattributed } = attribute(resets, ctx.watched);
  const changes = ctx.watched.map((w) =>
    judge(
      w,
      recs === undefined ? undefined : match(w, recs),
      by.get(w) ?? [],
      ctx.down,
      w.id === undefined ? undefined : counted.get(w.id),
    ),
  );
  // A change log the operator discarded (--discard-state, after a refusal naming it) loses its records by
  // that decision, not silently.
  if (ctx.discardedChangeLog) {
    for (const c of changes) {
      const lost = c.false.filter((f) => f.startsWith('lost:'));
      if (lost.length === 0) continue;
      c.false = c.false.filter((f) => !f.startsWith('lost:'));
      notes.push(`${c.kind} ${c.nexthop}: its record went with the change log discarded by --discard-state`);
    }
  }
  if (recs === undefined) ctx.violations.push('the controller did not answer at the end of the run');
  const protectedResets = changes.reduce((n, c) => n + c.protected, 0);
  const uncountedResets = changes.reduce((n, c) => n + c.uncounted, 0) + unattributed.length;
  const falseRecords = changes.reduce((n, c) => n + c.false.length, 0);
  if (protectedResets > 0) ctx.violations.push(`${protectedResets} protected connections reset`);
  if (uncountedResets > 0) ctx.violations.push(`${uncountedResets} resets not accounted for by the records`);
  for (const c of changes)
    for (const f of c.false)
      ctx.violations.push(`false record ${c.id ?? '?'} (${c.kind} ${c.nexthop}): ${f}`);
  const report: RunReport = {
    run: p.run,
    seed: p.seed,
    fault: p.fault,
    kind: p.kind,
    ...(p.phase === undefined ? {} : { phase: p.phase }),
    ...(p.damage === undefined ? {} : { damage: p.damage }),
    rate: o.rate,
    kills: ctx.kills,
    restarts: ctx.restarts,
    changes,
    protectedResets,
    uncountedResets,
    unattributedResets: unattributed.length,
    falseRecords,
    journal: ctx.journal,
    load: loadSummary,
    bed: {
      simLoopMaxMs: simC?.eventLoop.maxMs,
      simLoopP99Ms: simC?.eventLoop.p99Ms,
      simEapiP99Ms:
        eapiMs.length === 0
          ? undefined
          : Math.round([...eapiMs].sort((a, b) => a - b)[Math.floor(eapiMs.length * 0.99)] ?? 0),
      unanswered: loadSummary?.['unanswered'],
    },
    notes,
    violations: ctx.violations,
    ok: ctx.violations.length === 0,
    ...(o.keep ? { dir } : {}),
  };
  if (!o.keep) rmSync(dir, { recursive: true, force: true });
  return report;
}
