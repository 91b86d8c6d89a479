// The torture runner as a benchmark (`npm run bench -- torture`): the simulator, the
// controller and the load in real processes. First every fault of the schedule (kills at
// random and at named phases, stops, a queued change killed, a full disk, damaged state,
// eAPI faults) with its checks; then drains and additions without faults at 1,000, 2,000 and
// 5,000 new connections/s, five runs each, for their wall time from the call to applied.

import { runOnce, type RunReport } from '../torture/runner.js';
import { FAULTS, schedule } from '../torture/schedule.js';
import { median, repeated, type Figure } from './results.js';

export interface TortureSize {
  faultRuns: number;
  rates: number[];
  repeats: number;
  seed: number;
}

export const TORTURE_FULL: TortureSize = {
  faultRuns: FAULTS.length,
  rates: [1000, 2000, 5000],
  repeats: 5,
  seed: 20_261_207,
};
export const TORTURE_TINY: TortureSize = { faultRuns: 2, rates: [1000], repeats: 1, seed: 7 };

const opts = (rate: number) => ({
  rate,
  warmS: 4,
  lifetime: { medianS: 1.5, sigma: 0.8, maxS: 8 },
  changeTimeoutS: 40,
  keep: false,
  cpuProf: false,
  verbose: false,
});

export async function tortureBench(size: TortureSize): Promise<{ figures: Figure[]; lines: RunReport[] }> {
  const lines: RunReport[] = [];
  const emit = (r: RunReport): void => {
    lines.push(r);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  };
  for (const plan of schedule(size.seed, size.faultRuns, FAULTS)) emit(await runOnce(plan, opts(2000)));
  for (const rate of size.rates) {
    for (let i = 0; i < size.repeats; i++)
      emit(
        await runOnce(
          {
            run: lines.length + 1,
            seed: size.seed + rate + i,
            fault: 'none',
            kind: 'drain',
            delayMs: 0,
            stopMs: 0,
          },
          opts(rate),
        ),
      );
  }
  return { figures: tortureFigures(lines), lines };
}

/**
 * The figures of a torture benchmark from its runs' JSON lines (the fault runs, then the timing runs at each
 * rate).
 */
export function tortureFigures(lines: readonly RunReport[]): Figure[] {
  // The fault schedule comes first (its "none" runs included), the timing runs (all "none") after it.
  const faults = lines.filter(
    (r) => r.fault !== 'none' || lines.some((x) => x.fault !== 'none' && x.run > r.run),
  );
  const timing = lines.filter((r) => !faults.includes(r));
  const sum = (f: (r: RunReport) => number): number => faults.reduce((n, r) => n + f(r), 0);
  const loss = faults.flatMap((r) => r.journal.map((j) => j.lossWindowMs));
  const figures: Figure[] = [
    {
      id: 'torture.runs',
      what: `Torture runs (faults: ${[...new Set(faults.map((r) => r.fault))].join(', ')}; 2,000 new connections/s)`,
      value: faults.length,
      unit: 'runs',
      target: '',
      met: true,
    },
    {
      id: 'torture.kills',
      what: 'Controller kills (SIGKILL) in those runs',
      value: sum((r) => r.kills),
      unit: 'kills',
      target: '',
      met: true,
    },
    {
      id: 'torture.protected_resets',
      what: 'Protected connections reset',
      value: sum((r) => r.protectedResets),
      unit: 'connections',
      target: '0',
      met: sum((r) => r.protectedResets) === 0,
    },
    {
      id: 'torture.uncounted_resets',
      what: 'Resets the change records do not account for',
      value: sum((r) => r.uncountedResets),
      unit: 'connections',
      target: '0',
      met: sum((r) => r.uncountedResets) === 0,
    },
    {
      id: 'torture.false_records',
      what: 'Record figures contradicted by the ground truth (a lost change included)',
      value: sum((r) => r.falseRecords),
      unit: 'figures',
      target: '0',
      met: sum((r) => r.falseRecords) === 0,
    },
    {
      id: 'torture.violations',
      what: 'Fault runs with any violation (false records, 5xx answers, silent damaged state, ...)',
      value: faults.filter((r) => !r.ok).length,
      unit: 'runs',
      target: '0',
      met: faults.every((r) => r.ok),
    },
    {
      id: 'torture.journal_loss_ms',
      what: 'Journal loss window at a kill (earliest SYN a restart forgot, before the kill), max',
      value: loss.length === 0 ? 0 : Math.max(...loss),
      unit: 'ms',
      target: '',
      met: true,
    },
  ];
  for (const rate of [...new Set(timing.map((r) => r.rate))].sort((a, b) => a - b)) {
    const runs = timing.filter((r) => r.rate === rate);
    const k = rate.toLocaleString('en-US');
    for (const kind of ['drain', 'add'] as const) {
      const Kind = kind === 'drain' ? 'Drain' : 'Add';
      const xs = runs.flatMap((r) =>
        r.changes
          .filter((c) => c.kind === kind && c.callToAppliedMs !== undefined)
          .map((c) => c.callToAppliedMs as number),
      );
      figures.push({
        id: `torture.${kind}_applied.${rate}`,
        what: `${Kind}s applied of those called, ${k} new connections/s (the others failed: 503)`,
        value: xs.length,
        unit: `of ${runs.length}`,
        target: `${runs.length}`,
        met: xs.length === runs.length,
      });
      if (xs.length === 0) continue;
      figures.push(
        repeated(
          {
            id: `torture.${kind}_call_to_applied_ms.${rate}`,
            what: `${Kind}: call to applied, wall time, ${k} new connections/s (median of ${xs.length})`,
            unit: 'ms',
            target: '< 1,000',
            met: median(xs) < 1000,
          },
          xs,
        ),
      );
      figures.push({
        id: `torture.${kind}_call_to_applied_max_ms.${rate}`,
        what: `${Kind}: call to applied, wall time, ${k} new connections/s (max of ${xs.length})`,
        value: Math.max(...xs),
        unit: 'ms',
        target: '',
        met: true,
      });
    }
    const eapi = runs.map((r) => r.bed.simEapiP99Ms).filter((x): x is number => x !== undefined);
    const unanswered = runs.reduce((n, r) => n + (r.bed.unanswered ?? 0), 0);
    figures.push({
      id: `torture.bed_eapi_p99_ms.${rate}`,
      what: `The test bed at ${k}/s: the simulator's eAPI answering show version, p99 (worst run); load segments unanswered: ${unanswered.toLocaleString('en-US')}`,
      value: eapi.length === 0 ? NaN : Math.max(...eapi),
      unit: 'ms',
      target: '',
      met: true,
    });
  }
  return figures;
}
