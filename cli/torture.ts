// `flowpin torture` (`npm run torture`): runs the torture runner (torture/runner.ts) for a
// seeded schedule of faults and prints one JSON line per run, then a summary line; exits 1
// on any violation. `--seed` replays a schedule; the seed is printed first.

import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runOnce, type RunReport } from '../torture/runner.js';
import { FAULTS, schedule, type Fault } from '../torture/schedule.js';

export const TORTURE_USAGE = `usage: flowpin torture [--seed N] [--runs N] [--faults F,F,...] [--rate N] [--warm-s S]
                      [--lifetime-median-s S] [--lifetime-max-s S] [--change-timeout-s S]
                      [--out FILE] [--keep] [--cpu-prof] [--verbose]
  faults: ${FAULTS.join(', ')}`;

export interface TortureSummary {
  summary: {
    seed: number;
    runs: number;
    kills: number;
    protectedResets: number;
    uncountedResets: number;
    falseRecords: number;
    violations: number;
    journalLossWindowMs: number;
  };
}

export function summarise(seed: number, reports: readonly RunReport[]): TortureSummary {
  const sum = (f: (r: RunReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
  return {
    summary: {
      seed,
      runs: reports.length,
      kills: sum((r) => r.kills),
      protectedResets: sum((r) => r.protectedResets),
      uncountedResets: sum((r) => r.uncountedResets),
      falseRecords: sum((r) => r.falseRecords),
      violations: sum((r) => r.violations.length),
      journalLossWindowMs: Math.max(0, ...reports.flatMap((r) => r.journal.map((j) => j.lossWindowMs))),
    },
  };
}

export async function tortureCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      seed: { type: 'string' },
      runs: { type: 'string' },
      faults: { type: 'string' },
      rate: { type: 'string', default: '2000' },
      'warm-s': { type: 'string', default: '4' },
      'lifetime-median-s': { type: 'string', default: '1.5' },
      'lifetime-max-s': { type: 'string', default: '8' },
      'change-timeout-s': { type: 'string', default: '40' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const num = (v: string | undefined, flag: string, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min)
      throw new RangeError(`--${flag} must be a number >= ${min}, got '${String(v)}'`);
    return n;
  };
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num(values.seed, 'seed', 0);
  const faults = (values.faults?.split(',') ?? [...FAULTS]) as Fault[];
  for (const f of faults)
    if (!FAULTS.includes(f)) throw new RangeError(`unknown fault '${f}'; faults: ${FAULTS.join(', ')}`);
  const runs = values.runs === undefined ? faults.length : num(values.runs, 'runs', 1);
  const print = (o: unknown): void => {
    const line = JSON.stringify(o);
    process.stdout.write(`${line}\n`);
    if (values.out !== undefined) appendFileSync(values.out, `${line}\n`);
  };
  print({ seed, runs, faults });
  const reports: RunReport[] = [];
  for (const plan of schedule(seed, runs, faults)) {
    const r = await runOnce(plan, {
      rate: num(values.rate, 'rate', 1),
      warmS: num(values['warm-s'], 'warm-s', 0),
      lifetime: {
        medianS: num(values['lifetime-median-s'], 'lifetime-median-s', 0.01),
        sigma: 0.8,
        maxS: num(values['lifetime-max-s'], 'lifetime-max-s', 0.01),
      },
      changeTimeoutS: num(values['change-timeout-s'], 'change-timeout-s', 10),
      keep: values.keep,
      cpuProf: values['cpu-prof'],
      verbose: values.verbose,
    });
    reports.push(r);
    print(r);
  }
  const s = summarise(seed, reports);
  print(s);
  return s.summary.violations === 0 ? 0 : 1;
}
