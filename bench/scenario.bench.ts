// Connection safety: `flowpin scenario --live 100000 --rate 5000 --latency-ms 5
// --program-delay-ms 50 --changes drain,add` for the five configurations (the switch alone
// with mod-N and resilient ECMP, the serial prototype, flowpin's two pin modes), on the
// simulator's virtual clock. FLOWPIN_BENCH_SCALE scales live connections and rate down for
// a quick run.

import { CONFIGS, DEFAULT_SCENARIO, runScenario, type ScenarioResult } from '../cli/scenario/runner.js';
import type { Figure } from './results.js';

export async function scenarioBench(): Promise<Figure[]> {
  const scale = Number(process.env['FLOWPIN_BENCH_SCALE'] ?? 1);
  const opts = { ...DEFAULT_SCENARIO, live: Math.round(100_000 * scale), rate: 5000 * scale, latencyMs: 5, programDelayMs: 50 };
  const results = new Map<string, ScenarioResult>();
  for (const config of CONFIGS) {
    const r = await runScenario(config, opts);
    results.set(config, r);
    process.stdout.write(`  ${JSON.stringify(r)}\n`);
  }
  const live = opts.live.toLocaleString('en-US');
  const at = `${live} live, ${opts.rate.toLocaleString('en-US')} SYN/s, +5 ms, programming 50 ms`;
  const figures: Figure[] = [];
  for (const [config, r] of results) {
    const flowpin = config === 'always' || config === 'on-change';
    figures.push({ id: `scenario.${config}.broken`, what: `Connections broken by a drain and an add, ${config} (${at})`, value: r.broken, unit: 'connections', target: '', met: true });
    if (flowpin) {
      figures.push({ id: `scenario.${config}.broken_protected`, what: `  of which protected (SYN seen before the hold, pin programmed), ${config}`, value: r.brokenProtected, unit: 'connections', target: '= 0', met: r.brokenProtected === 0 });
      figures.push({ id: `scenario.${config}.window`, what: `  change-window flows counted, ${config}`, value: r.windowFlows, unit: 'flows', target: '', met: true });
      figures.push({ id: `scenario.${config}.drain_apply_ms`, what: `Drain, call to applied, ${config}`, value: r.changeApplyMs[0] ?? 0, unit: 'ms', target: '< 1000', met: (r.changeApplyMs[0] ?? Infinity) < 1000 });
      figures.push({ id: `scenario.${config}.pin_peak`, what: `Pins on the switch at peak, ${config}`, value: r.pinPeak, unit: 'pins', target: '', met: true });
    }
  }
  const always = results.get('always');
  const onChange = results.get('on-change');
  if (always && onChange && always.pinPeak > 0) {
    const ratio = onChange.pinPeak / always.pinPeak;
    figures.push({ id: 'scenario.pin_peak_ratio', what: 'Pin peak, on-change as a share of always', value: Math.round(ratio * 1000) / 10, unit: '%', target: '≤ 33.3', met: ratio <= 1 / 3 });
  }
  return figures;
}
