// The realistic scenario: `flowpin scenario --lifetimes realistic` with the demo's closes
// (half-closing clients, servers closing first, resets, idle connections), 100,000 live
// connections as found open in the model's steady state, new ones at the steady state's rate,
// a 1,500-entry pin table, a drain then an addition; flowpin in on-change mode with FIN/RST
// mirrored both ways and with SYNs only, beside the switch alone (resilient ECMP) on the same
// traffic. Figures: pins spent per live connection moved (each change, and both), protected
// resets, resets counted by the change records and uncounted ones. Each run is its own process.

import { DEMO_DEFAULTS } from '../cli/sim.js';
import type { ScenarioResult } from '../cli/scenario/runner.js';
import type { Figure } from './results.js';
import { scenarioChild } from './scenario.bench.js';

export interface RealisticSize {
  live: number;
  /** New connections per second: the steady state's (live connections / mean lifetime). */
  rate: number;
  /** Wall time each run may take (s). */
  budgetS: number;
}

/**
 * The realistic model's mean lifetime is 71 s (its median 5 s): 100,000 open in its steady state take 1,400
 * new ones a second.
 */
export const REALISTIC_FULL: RealisticSize = { live: 100_000, rate: 1400, budgetS: 900 };
export const REALISTIC_TINY: RealisticSize = { live: 1000, rate: 14, budgetS: 120 };

const TABLE = 1500;
const traffic = DEMO_DEFAULTS['traffic'] as {
  close: { halfCloseShare: number; serverCloseShare: number; rstShare: number };
  idleShare: number;
  idleGapS: number;
};

/** The scenario's arguments for one configuration and mirror. */
export function realisticArgs(
  size: RealisticSize,
  config: 'on-change' | 'resilient',
  mirrorEnds: 'both-ways' | 'syn-only',
): string[] {
  const c = traffic.close;
  return [
    '--configs',
    config,
    '--lifetimes',
    'realistic',
    '--live',
    String(size.live),
    '--rate',
    String(size.rate),
    '--table',
    String(TABLE),
    '--half-close-share',
    String(c.halfCloseShare),
    '--server-close-share',
    String(c.serverCloseShare),
    '--rst-share',
    String(c.rstShare),
    '--idle-share',
    String(traffic.idleShare),
    '--idle-gap-s',
    String(traffic.idleGapS),
    '--mirror-ends',
    mirrorEnds,
    '--latency-ms',
    '5',
    '--program-delay-ms',
    '50',
    '--changes',
    'drain,add',
  ];
}

const k = (n: number): string => (n >= 1000 ? `${n / 1000} k` : String(n));

function figuresOf(r: ScenarioResult, mirror: string, at: string): Figure[] {
  const id = `realistic.${r.live}.${mirror}`;
  const drain = r.changes.find((c) => c.step === 'drain');
  const add = r.changes.find((c) => c.step === 'add');
  const label = mirror === 'both-ways' ? 'FIN/RST mirrored both ways' : 'SYNs only mirrored';
  const short = `realistic traffic, ${k(r.live)} live, ${TABLE.toLocaleString('en-US')}-entry table, on-change, ${mirror === 'both-ways' ? 'FIN/RST mirrored' : 'SYN-only mirror'}`;
  const pinsOf = (c: typeof drain): string =>
    c === undefined
      ? ''
      : `${c.pins.toLocaleString('en-US')} pins (${c.pinsOnLive.toLocaleString('en-US')} on connections still open), ${c.movedLive.toLocaleString('en-US')} moved`;
  return [
    {
      id: `${id}.pins_per_moved_live`,
      what: `on-change, ${label}, ${at}: pins spent per live connection moved (drain and add)`,
      value: r.pinsPerMovedLive,
      unit: 'pins',
      target: '',
      met: true,
    },
    {
      id: `${id}.drain_pins_per_moved_live`,
      what: `  drain: ${pinsOf(drain)} live connections`,
      value: drain?.pinsPerMovedLive ?? NaN,
      unit: 'pins',
      target: '',
      met: true,
    },
    {
      id: `${id}.add_pins_per_moved_live`,
      what: `  add: ${pinsOf(add)} live connections`,
      value: add?.pinsPerMovedLive ?? NaN,
      unit: 'pins',
      target: '',
      met: true,
    },
    {
      id: `${id}.broken_protected`,
      what: `  protected resets (SYN seen before the hold, pin programmed), ${short}`,
      value: r.brokenProtected,
      unit: 'connections',
      target: '= 0',
      met: r.brokenProtected === 0,
    },
    {
      id: `${id}.resets_counted`,
      what: `  resets, every one counted by the change records (counted at risk ${r.atRisk.toLocaleString('en-US')}; table-full in the dry runs ${((drain?.dryRun?.tableFull ?? 0) + (add?.dryRun?.tableFull ?? 0)).toLocaleString('en-US')})`,
      value: r.resetsCounted,
      unit: 'connections',
      target: '',
      met: true,
      baseline: `realistic.${r.live}.resilient.broken`,
    },
    {
      id: `${id}.uncounted`,
      what: `  resets the change records do not cover, ${short}`,
      value: r.uncounted,
      unit: 'connections',
      target: '= 0',
      met: r.uncounted === 0,
    },
    {
      id: `${id}.wall_s`,
      what: `  wall time of the whole run (${r.virtualS} s simulated)`,
      value: r.wallS,
      unit: 's',
      target: '',
      met: true,
    },
  ];
}

export async function realisticBench(size: RealisticSize): Promise<Figure[]> {
  const figures: Figure[] = [];
  const at = `${k(size.live)} live, ${size.rate.toLocaleString('en-US')} SYN/s, ${TABLE.toLocaleString('en-US')}-entry table`;
  const base = await scenarioChild(realisticArgs(size, 'resilient', 'both-ways'), size.budgetS * 1000);
  if (base !== null) {
    process.stdout.write(`  ${JSON.stringify(base)}\n`);
    figures.push({
      id: `realistic.${size.live}.resilient.broken`,
      what: `the switch alone (resilient ECMP), ${at}: connections reset by the drain and the add`,
      value: base.broken,
      unit: 'connections',
      target: '',
      met: true,
      isBaseline: true,
    });
  }
  for (const mirror of ['both-ways', 'syn-only'] as const) {
    const r = await scenarioChild(realisticArgs(size, 'on-change', mirror), size.budgetS * 1000);
    if (r === null) {
      figures.push({
        id: `realistic.${size.live}.${mirror}.not_run`,
        what: `on-change, ${mirror}, ${at}: not finished within ${size.budgetS} s (stopped)`,
        value: 1,
        unit: 'runs',
        target: '',
        met: true,
      });
      continue;
    }
    process.stdout.write(`  ${JSON.stringify(r)}\n`);
    figures.push(...figuresOf(r, mirror, at));
  }
  return figures;
}
