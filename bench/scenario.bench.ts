// Connection safety at 10 k, 100 k and 1 M live connections: `flowpin scenario --live
// 10000,100000,1000000 --rate 5000 --latency-ms 5 --program-delay-ms 50 --changes drain,add`
// for the five configurations (the switch alone with mod-N and resilient ECMP, the serial
// prototype, flowpin's two pin modes), on the simulator's virtual clock, with each change's
// wall time and the process's memory, so that growth shows. The largest size runs the
// configurations in LARGEST_ORDER while a wall-time budget lasts, and says which it left
// out. Also, with 100 k live flows: the wall time of a drain's dry run and of its pinning step.
// FLOWPIN_BENCH_SCALE scales sizes and rate down for a quick run.

import { CONFIGS, DEFAULT_SCENARIO, runScenario, type ScenarioConfig, type ScenarioResult } from '../cli/scenario/runner.js';
import { World } from '../cli/scenario/world.js';
import type { Figure } from './results.js';

const SIZES = [10_000, 100_000, 1_000_000];
/** At the largest size: flowpin's default mode first, then the switch alone, then the rest. */
const LARGEST_ORDER: ScenarioConfig[] = ['on-change', 'resilient', 'always', 'mod-n', 'prototype'];
/** Wall time the largest size may take (after the smaller sizes), seconds. */
const LARGEST_BUDGET_S = Number(process.env['FLOWPIN_BENCH_SCENARIO_BUDGET_S'] ?? 600);

const k = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000} M` : n >= 1000 ? `${n / 1000} k` : String(n));

function figuresOf(r: ScenarioResult, at: string): Figure[] {
  const id = `scenario.${r.live}.${r.config}`;
  const flowpin = r.config === 'always' || r.config === 'on-change';
  const out: Figure[] = [
    // flowpin's figure stands beside the switch alone (resilient ECMP) of the same size and run.
    { id: `${id}.broken`, what: `${r.config}, ${at}: connections broken by a drain and an add`, value: r.broken, unit: 'connections', target: '', met: true, ...(flowpin ? { baseline: `scenario.${r.live}.resilient.broken` } : {}) },
  ];
  if (flowpin) {
    out.push(
      { id: `${id}.broken_protected`, what: `  of which protected (SYN seen before the hold, pin programmed)`, value: r.brokenProtected, unit: 'connections', target: '= 0', met: r.brokenProtected === 0 },
      { id: `${id}.window`, what: `  change-window flows counted`, value: r.windowFlows, unit: 'flows', target: '', met: true },
      { id: `${id}.drain_apply_ms`, what: `  drain, call to applied (simulated)`, value: r.changeApplyMs[0] ?? 0, unit: 'ms', target: '< 1000', met: (r.changeApplyMs[0] ?? Infinity) < 1000 },
      { id: `${id}.drain_wall_ms`, what: `  drain, call to applied (wall time)`, value: r.changeWallMs[0] ?? 0, unit: 'ms', target: '', met: true },
      { id: `${id}.add_wall_ms`, what: `  add, call to applied (wall time)`, value: r.changeWallMs[1] ?? 0, unit: 'ms', target: '', met: true },
      { id: `${id}.pin_peak`, what: `  pins on the switch at peak`, value: r.pinPeak, unit: 'pins', target: '', met: true },
    );
  }
  out.push(
    { id: `${id}.rss_mib`, what: `  RSS high-water mark of the process (all in one process)`, value: r.rssMiB, unit: 'MiB', target: '', met: true },
    { id: `${id}.heap_mib`, what: `  heap in use, high-water mark`, value: r.heapMiB, unit: 'MiB', target: '', met: true },
    { id: `${id}.wall_s`, what: `  wall time of the whole run (${r.virtualS} s simulated)`, value: r.wallS, unit: 's', target: '', met: true },
  );
  return out;
}

/** With `live` connections tracked: wall time of a drain's dry run, and of its pinning step. */
async function changeSteps(live: number, rate: number): Promise<Figure[]> {
  const VIP = '192.0.2.80';
  const MEMBERS = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
  const world = new World({
    switches: [{ name: 'sw1', vips: [{ address: VIP, nexthops: MEMBERS, port: 443 }], spares: [], ecmpMode: 'resilient', pinCapacity: 200_000, programDelayMs: 50, rate, lifetime: { kind: 'lognormal', medianS: 30, sigma: 1.2, maxS: 3600 } }],
    latencyMs: 5, mirrorDelayMs: 1, packetIntervalMs: 2000, seed: 1,
    controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 30_000 },
  });
  try {
    const controller = await world.startController();
    world.openLive(live, { kind: 'fixed', s: 7200 });
    world.startTraffic();
    await world.advance(2000);
    world.stopTraffic();
    const cm = controller.changeManager('sw1');
    const rt = controller.runtime('sw1');
    const nh = MEMBERS[1] as string;
    const d0 = performance.now();
    const report = await world.settle(cm.drain(VIP, nh, { dryRun: true }), 60_000);
    const dryMs = performance.now() - d0;
    const toPin = 'flowsToPin' in report ? report.flowsToPin : 0;
    // The drain's pinning step, as the change manager runs it: the member's live flows, most
    // recently seen first, each wanted as a pin (the writes then go out in batches).
    const p0 = performance.now();
    rt.pinFlows(rt.flowsOn(VIP, nh), nh, 'bench');
    const pinMs = performance.now() - p0;
    const n = k(live);
    return [
      { id: `changes.${live}.dry_run_ms`, what: `Dry run of a drain with ${n} live flows (${toPin.toLocaleString('en-US')} to pin), wall time`, value: Math.round(dryMs * 10) / 10, unit: 'ms', target: '', met: true },
      { id: `changes.${live}.pin_step_ms`, what: `A drain's pinning step with ${n} live flows (${toPin.toLocaleString('en-US')} pins wanted), wall time`, value: Math.round(pinMs * 10) / 10, unit: 'ms', target: '', met: true },
    ];
  } finally {
    await world.close();
  }
}

export async function scenarioBench(): Promise<Figure[]> {
  const scale = Number(process.env['FLOWPIN_BENCH_SCALE'] ?? 1);
  const rate = 5000 * scale;
  const sizes = SIZES.map((n) => Math.max(10, Math.round(n * scale)));
  const figures: Figure[] = [];
  const results: ScenarioResult[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const live = sizes[i] as number;
    const largest = i === sizes.length - 1;
    const configs = largest ? LARGEST_ORDER : [...CONFIGS];
    const at = `${k(live)} live, ${rate.toLocaleString('en-US')} SYN/s`;
    const t0 = performance.now();
    const left: ScenarioConfig[] = [];
    for (const config of configs) {
      if (largest && results.some((r) => r.live === live) && (performance.now() - t0) / 1000 > LARGEST_BUDGET_S) {
        left.push(config);
        continue;
      }
      const opts = { ...DEFAULT_SCENARIO, live, rate, latencyMs: 5, programDelayMs: 50 };
      const r = await runScenario(config, opts);
      results.push(r);
      process.stdout.write(`  ${JSON.stringify(r)}\n`);
      figures.push(...figuresOf(r, at));
      global.gc?.();
    }
    if (left.length > 0) {
      figures.push({ id: `scenario.${live}.not_run`, what: `${k(live)} live: configurations left out (wall-time budget of ${LARGEST_BUDGET_S} s spent): ${left.join(', ')}`, value: left.length, unit: 'configurations', target: '', met: true });
    }
    const always = results.find((r) => r.live === live && r.config === 'always');
    const onChange = results.find((r) => r.live === live && r.config === 'on-change');
    if (always && onChange && always.pinPeak > 0) {
      const ratio = onChange.pinPeak / always.pinPeak;
      // The target was set at 100 k live (the earlier benchmark); at other sizes the share is shown only.
      const target = live === 100_000 ? '≤ 33.3' : '';
      figures.push({ id: `scenario.${live}.pin_peak_ratio`, what: `${k(live)} live: pin peak, on-change as a share of always`, value: Math.round(ratio * 1000) / 10, unit: '%', target, met: target === '' || ratio <= 1 / 3 });
    }
  }
  figures.push(...(await changeSteps(Math.max(10, Math.round(100_000 * scale)), rate)));
  return figures;
}
