// `flowpin scenario`: runs one traffic pattern against several configurations on the
// simulator with a virtual clock, and prints one JSON object per configuration per line
// (`--json`, with each change's figures) or a table. `--live` takes one number or a list
// (10000,100000,1000000): each
// size is run for every configuration, smallest first, so growth shows.

import { parseArgs } from 'node:util';
import { ConfigError } from '../lib/validate.js';
import {
  CONFIGS,
  DEFAULT_SCENARIO,
  runScenario,
  type ChangeStep,
  type ScenarioConfig,
  type ScenarioOptions,
  type ScenarioResult,
} from './scenario/runner.js';

function int(flag: string, v: string | undefined, def: number, min: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min)
    throw new ConfigError('flowpin scenario', `--${flag}`, `must be a number >= ${min}, got '${v}'`);
  return n;
}

function sizes(v: string | undefined, def: number): number[] {
  if (v === undefined) return [def];
  const out = v.split(',').map((x) => int('live', x.trim(), def, 0));
  return [...new Set(out)].sort((a, b) => a - b);
}

export function scenarioOptions(args: string[]): {
  opts: ScenarioOptions;
  sizes: number[];
  configs: ScenarioConfig[];
  json: boolean;
} {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      live: { type: 'string' },
      rate: { type: 'string' },
      'latency-ms': { type: 'string' },
      'program-delay-ms': { type: 'string' },
      table: { type: 'string' },
      changes: { type: 'string' },
      configs: { type: 'string' },
      seed: { type: 'string' },
      'settle-ms': { type: 'string' },
      'gap-ms': { type: 'string' },
      json: { type: 'boolean', default: false },
      resolution: { type: 'string' },
      lookup: { type: 'string' },
      'client-rtt-ms': { type: 'string' },
      adapter: { type: 'string' },
      lifetimes: { type: 'string' },
      'half-close-share': { type: 'string' },
      'server-close-share': { type: 'string' },
      'rst-share': { type: 'string' },
      'idle-share': { type: 'string' },
      'idle-gap-s': { type: 'string' },
      'preexisting-s': { type: 'string' },
      'mirror-ends': { type: 'string' },
      'shared-table': { type: 'string' },
      'max-at-risk': { type: 'string' },
    },
  });
  const changes = (values.changes ?? 'drain,add').split(',').filter((c) => c !== '');
  for (const c of changes)
    if (c !== 'drain' && c !== 'add')
      throw new ConfigError('flowpin scenario', '--changes', `each change is drain or add, got '${c}'`);
  const configs = (values.configs ?? CONFIGS.join(',')).split(',').filter((c) => c !== '');
  for (const c of configs)
    if (!(CONFIGS as readonly string[]).includes(c))
      throw new ConfigError(
        'flowpin scenario',
        '--configs',
        `each configuration is one of ${CONFIGS.join(', ')}, got '${c}'`,
      );
  const adapter = values.adapter ?? 'sim';
  if (adapter !== 'sim' && adapter !== 'gnmi')
    throw new ConfigError('flowpin scenario', '--adapter', `is sim or gnmi, got '${adapter}'`);
  // gNMI has no look-up call: flowpin learns each flow's server from the mirrored replies.
  const resolution = values.resolution ?? (adapter === 'gnmi' ? 'observe' : 'lookup');
  if (adapter === 'gnmi' && resolution !== 'observe')
    throw new ConfigError(
      'flowpin scenario',
      '--resolution',
      'gNMI has no look-up call: with --adapter gnmi it is observe',
    );
  if (resolution !== 'lookup' && resolution !== 'observe' && resolution !== 'both')
    throw new ConfigError(
      'flowpin scenario',
      '--resolution',
      `is lookup, observe or both, got '${resolution}'`,
    );
  const lookup = values.lookup ?? 'exact';
  if (lookup !== 'exact' && lookup !== 'none' && lookup !== 'wrong-hash')
    throw new ConfigError('flowpin scenario', '--lookup', `is exact, none or wrong-hash, got '${lookup}'`);
  if (lookup === 'none' && resolution === 'both')
    throw new ConfigError(
      'flowpin scenario',
      '--lookup',
      'none leaves nothing to compare with --resolution both',
    );
  const lifetimes = values.lifetimes ?? 'fixed';
  if (lifetimes !== 'fixed' && lifetimes !== 'realistic')
    throw new ConfigError('flowpin scenario', '--lifetimes', `is fixed or realistic, got '${lifetimes}'`);
  const mirrorEnds = values['mirror-ends'] ?? 'syn-only';
  if (mirrorEnds !== 'syn-only' && mirrorEnds !== 'client-side' && mirrorEnds !== 'both-ways')
    throw new ConfigError(
      'flowpin scenario',
      '--mirror-ends',
      `is both-ways, client-side or syn-only, got '${mirrorEnds}'`,
    );
  const bound = values['max-at-risk'];
  const maxAtRisk =
    bound === undefined || bound === 'unbounded' ? 'unbounded' : int('max-at-risk', bound, 0, 0);
  if (maxAtRisk !== 'unbounded' && !Number.isInteger(maxAtRisk))
    throw new ConfigError(
      'flowpin scenario',
      '--max-at-risk',
      `is a whole number or unbounded, got '${bound ?? ''}'`,
    );
  const share = (flag: 'half-close-share' | 'server-close-share' | 'rst-share' | 'idle-share'): number => {
    const x = int(flag, values[flag], 0, 0);
    if (x > 1)
      throw new ConfigError(
        'flowpin scenario',
        `--${flag}`,
        `is a share from 0 to 1, got '${values[flag] ?? ''}'`,
      );
    return x;
  };
  const shares = {
    halfCloseShare: share('half-close-share'),
    serverCloseShare: share('server-close-share'),
    rstShare: share('rst-share'),
  };
  if (shares.halfCloseShare + shares.serverCloseShare + shares.rstShare > 1)
    throw new ConfigError(
      'flowpin scenario',
      '--half-close-share',
      'the shares of half-closes, server closes and resets add up to more than 1',
    );
  const d = DEFAULT_SCENARIO;
  const opts: ScenarioOptions = {
    live: sizes(values.live, d.live)[0] as number,
    rate: int('rate', values.rate, d.rate, 0.001),
    latencyMs: int('latency-ms', values['latency-ms'], d.latencyMs, 0),
    programDelayMs: int('program-delay-ms', values['program-delay-ms'], d.programDelayMs, 0),
    table: int('table', values.table, d.table, 1),
    changes: changes as ChangeStep[],
    seed: int('seed', values.seed, d.seed, 0),
    settleMs: int('settle-ms', values['settle-ms'], d.settleMs, 0),
    gapMs: int('gap-ms', values['gap-ms'], d.gapMs, 100),
    resolution,
    lookup,
    ...(values['client-rtt-ms'] === undefined
      ? {}
      : { clientRttMs: int('client-rtt-ms', values['client-rtt-ms'], 0, 0) }),
    adapter,
    lifetimes,
    ...shares,
    idleShare: share('idle-share'),
    idleGapS: int('idle-gap-s', values['idle-gap-s'], 600, 0.001),
    preexistingS: int('preexisting-s', values['preexisting-s'], 0, 0),
    mirrorEnds,
    sharedTable: int('shared-table', values['shared-table'], 0, 0),
    maxAtRisk,
  };
  return { opts, sizes: sizes(values.live, d.live), configs: configs as ScenarioConfig[], json: values.json };
}

const COLUMNS: (keyof ScenarioResult)[] = [
  'config',
  'live',
  'opened',
  'broken',
  'brokenProtected',
  'resetsCounted',
  'uncounted',
  'unseen',
  'windowFlows',
  'atRisk',
  'pinPeak',
  'pinsPerMovedLive',
  'pinWrites',
  'changeApplyMs',
  'changeWallMs',
  'rssMiB',
  'heapMiB',
  'resolution',
  'lookupsPer1000',
  'disagreements',
  'synToServerP99Ms',
  'virtualS',
  'wallS',
];

export async function scenarioCommand(args: string[]): Promise<number> {
  const { opts, sizes, configs, json } = scenarioOptions(args);
  if (!json) process.stdout.write(COLUMNS.join('\t') + '\n');
  for (const live of sizes)
    for (const config of configs) {
      const r = await runScenario(config, { ...opts, live });
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      else
        process.stdout.write(
          COLUMNS.map((k) => (Array.isArray(r[k]) ? (r[k] as number[]).join(',') : String(r[k]))).join('\t') +
            '\n',
        );
    }
  return 0;
}
