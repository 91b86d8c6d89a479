// Resolution by observation against look-up: `flowpin scenario` (on-change) with the same
// traffic, seed and changes (a drain, then an addition) for three resolutions: `lookup` (one
// batched look-up per new flow), `observe` (the servers' mirrored SYN-ACKs, on a switch with no
// look-up call at all) and `both` with a deliberately wrong hash model in the look-up. Figures:
// switch API calls per 1,000 new connections, SYN-to-known-server p50/p99 and the change-window
// flows. FLOWPIN_BENCH_SCALE scales live connections and rate down for a quick run.

import {
  DEFAULT_SCENARIO,
  runScenario,
  type ScenarioOptions,
  type ScenarioResult,
} from '../cli/scenario/runner.js';
import type { Figure } from './results.js';

const RUNS: { key: string; label: string; over: Partial<ScenarioOptions> }[] = [
  { key: 'lookup', label: 'look-up', over: { resolution: 'lookup', lookup: 'exact' } },
  { key: 'observe', label: 'observe (no look-up call)', over: { resolution: 'observe', lookup: 'none' } },
  { key: 'both_wrong', label: 'both, wrong hash model', over: { resolution: 'both', lookup: 'wrong-hash' } },
];

export async function observeBench(): Promise<Figure[]> {
  const scale = Number(process.env['FLOWPIN_BENCH_SCALE'] ?? 1);
  const base: ScenarioOptions = {
    ...DEFAULT_SCENARIO,
    live: Math.round(20_000 * scale),
    rate: 2000 * scale,
    latencyMs: 5,
    programDelayMs: 50,
    clientRttMs: 30,
  };
  const results = new Map<string, ScenarioResult>();
  for (const run of RUNS) {
    const r = await runScenario('on-change', { ...base, ...run.over });
    results.set(run.key, r);
    process.stdout.write(`  ${run.key}: ${JSON.stringify(r)}\n`);
  }
  const at = `${base.live.toLocaleString('en-US')} live, ${base.rate.toLocaleString('en-US')} SYN/s, +5 ms, programming 50 ms, client RTT 30 ms`;
  const figures: Figure[] = [];
  for (const run of RUNS) {
    const r = results.get(run.key) as ScenarioResult;
    const isBaseline = run.key === 'lookup';
    const baseline = (what: string): Partial<Figure> =>
      isBaseline ? { isBaseline: true } : { baseline: `observe.lookup.${what}` };
    figures.push({
      id: `observe.${run.key}.calls_per_1000`,
      what: `Switch API calls per 1,000 new connections, ${run.label} (${at})`,
      value: r.callsPer1000,
      unit: 'calls',
      target: '',
      met: true,
      ...baseline('calls_per_1000'),
    });
    figures.push({
      id: `observe.${run.key}.lookups_per_1000`,
      what: `  of which look-ups, ${run.label}`,
      value: r.lookupsPer1000,
      unit: 'calls',
      target: run.key === 'observe' ? '= 0' : '',
      met: run.key !== 'observe' || r.lookupsPer1000 === 0,
      ...baseline('lookups_per_1000'),
    });
    figures.push({
      id: `observe.${run.key}.syn_to_server_p50_ms`,
      what: `SYN to known server, p50, ${run.label}`,
      value: r.synToServerP50Ms,
      unit: 'ms',
      target: '',
      met: true,
      ...baseline('syn_to_server_p50_ms'),
    });
    figures.push({
      id: `observe.${run.key}.syn_to_server_p99_ms`,
      what: `SYN to known server, p99, ${run.label}`,
      value: r.synToServerP99Ms,
      unit: 'ms',
      target: '',
      met: true,
      ...baseline('syn_to_server_p99_ms'),
    });
    figures.push({
      id: `observe.${run.key}.window`,
      what: `Change-window flows (drain + add), ${run.label}`,
      value: r.windowFlows,
      unit: 'flows',
      target: '',
      met: true,
      ...baseline('window'),
    });
    figures.push({
      id: `observe.${run.key}.broken_protected`,
      what: `Protected connections broken, ${run.label}`,
      value: r.brokenProtected + r.uncounted,
      unit: 'connections',
      target: '= 0',
      met: r.brokenProtected + r.uncounted === 0,
    });
    if (run.key === 'both_wrong')
      figures.push({
        id: 'observe.both_wrong.disagreements',
        what: `  look-up answers the observation corrected, of ${r.opened.toLocaleString('en-US')} new connections`,
        value: r.disagreements,
        unit: 'flows',
        target: '',
        met: true,
      });
  }
  return figures;
}
