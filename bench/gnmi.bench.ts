// gNMI at the loads the other adapters carry: `flowpin scenario --configs on-change --live N
// --rate 1000 --latency-ms 5 --changes drain,add --seed 99` through the gNMI adapter (flowpin's
// adapter against the simulator's gNMI target over gRPC on loopback) and, as the baseline, the
// in-process simulator adapter, at 5,000 and 100,000 live connections. Each run is its own
// process under GNU time: wall time, CPU time (user + system, which the machine's other load
// moves less) and peak RSS (the process's high-water mark, as `ps` would have seen it), with the
// default V8 heap settings. Runs alternate sim and gNMI so that both see the same machine.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScenarioResult } from '../cli/scenario/runner.js';
import { repeated, type Figure } from './results.js';

const flowpinBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/flowpin.js');

export interface GnmiBenchSize {
  /** Live connections of each size, new connections per second, and runs of each adapter. */
  sizes: { live: number; rate: number; runs: number }[];
  /** A run not finished by then is stopped and named, ms. */
  timeoutMs: number;
}

export const GNMI_FULL: GnmiBenchSize = {
  sizes: [
    { live: 5000, rate: 1000, runs: 3 },
    { live: 100_000, rate: 1000, runs: 1 },
  ],
  timeoutMs: 2_400_000,
};
export const GNMI_TINY: GnmiBenchSize = { sizes: [{ live: 200, rate: 50, runs: 1 }], timeoutMs: 120_000 };

interface Measured {
  result: ScenarioResult;
  wallS: number;
  cpuS: number;
  rssMiB: number;
}

/** One `flowpin scenario` run under GNU time; null when it did not finish within the timeout. */
async function runOne(
  adapter: 'sim' | 'gnmi',
  live: number,
  rate: number,
  timeoutMs: number,
): Promise<Measured | null> {
  const args = [
    '-f',
    'FLOWPIN_TIME %e %U %S %M',
    process.execPath,
    flowpinBin,
    'scenario',
    '--adapter',
    adapter,
    '--live',
    String(live),
    '--rate',
    String(rate),
    '--latency-ms',
    '5',
    '--changes',
    'drain,add',
    '--configs',
    'on-change',
    '--seed',
    '99',
    '--json',
  ];
  const child = spawn('/usr/bin/time', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (timedOut) return null;
  const time = /FLOWPIN_TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(err);
  if (code !== 0 || time === null)
    throw new Error(
      `flowpin scenario --adapter ${adapter} --live ${live} exited ${code}: ${err.slice(-500)}`,
    );
  const result = JSON.parse(out.trim().split('\n').at(-1) ?? '') as ScenarioResult;
  return {
    result,
    wallS: Number(time[1]),
    cpuS: Math.round((Number(time[2]) + Number(time[3])) * 100) / 100,
    rssMiB: Math.round(Number(time[4]) / 1024),
  };
}

const k = (n: number): string => (n >= 1000 ? `${n / 1000} k` : String(n));

export async function gnmiBench(size: GnmiBenchSize): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const { live, rate, runs: n } of size.sizes) {
    const runs: Record<'sim' | 'gnmi', Measured[]> = { sim: [], gnmi: [] };
    const unfinished: string[] = [];
    for (let i = 0; i < n; i++) {
      for (const adapter of ['sim', 'gnmi'] as const) {
        const m = await runOne(adapter, live, rate, size.timeoutMs);
        process.stdout.write(
          `  ${adapter} ${live} live: ${m === null ? 'not finished' : JSON.stringify({ wallS: m.wallS, cpuS: m.cpuS, rssMiB: m.rssMiB, broken: m.result.broken, brokenProtected: m.result.brokenProtected, pinPeak: m.result.pinPeak })}\n`,
        );
        if (m === null) unfinished.push(adapter);
        else runs[adapter].push(m);
      }
    }
    const id = `gnmi.${live}`;
    const at = `${k(live)} live, ${rate.toLocaleString('en-US')} new/s`;
    for (const adapter of ['sim', 'gnmi'] as const) {
      const ms = runs[adapter];
      if (ms.length === 0) continue;
      const base =
        adapter === 'gnmi'
          ? (f: string) => (runs.sim.length > 0 ? { baseline: `${id}.sim.${f}` } : {})
          : () => ({ isBaseline: true });
      const name = adapter === 'gnmi' ? 'gNMI adapter and target' : 'simulator adapter';
      const wallTarget = adapter === 'gnmi' && live === 5000 ? '< 120' : '';
      const rssTarget = adapter === 'gnmi' && live === 5000 ? '< 1024' : '';
      const wall = ms.map((m) => m.wallS);
      const rss = ms.map((m) => m.rssMiB);
      figures.push(
        repeated(
          {
            id: `${id}.${adapter}.wall_s`,
            what: `${name}, ${at}: wall time of the whole scenario`,
            unit: 's',
            target: wallTarget,
            met: wallTarget === '' || Math.max(...wall) < 120,
            ...base('wall_s'),
          },
          wall,
        ),
        repeated(
          {
            id: `${id}.${adapter}.cpu_s`,
            what: `  CPU time (user + system)`,
            unit: 's',
            target: '',
            met: true,
            ...base('cpu_s'),
          },
          ms.map((m) => m.cpuS),
        ),
        repeated(
          {
            id: `${id}.${adapter}.rss_mib`,
            what: `  peak RSS (default V8 heap settings)`,
            unit: 'MiB',
            target: rssTarget,
            met: rssTarget === '' || Math.max(...rss) < 1024,
            ...base('rss_mib'),
          },
          rss,
        ),
        repeated(
          {
            id: `${id}.${adapter}.broken_protected`,
            what: `  protected connections broken (${adapter === 'gnmi' ? 'gNMI' : 'simulator adapter'}, ${k(live)} live)`,
            unit: 'connections',
            target: '= 0',
            met: ms.every((m) => m.result.brokenProtected === 0),
          },
          ms.map((m) => m.result.brokenProtected),
        ),
        repeated(
          {
            id: `${id}.${adapter}.pin_peak`,
            what: `  pins on the switch at peak`,
            unit: 'pins',
            target: '',
            met: true,
            ...base('pin_peak'),
          },
          ms.map((m) => m.result.pinPeak),
        ),
      );
    }
    if (runs.sim.length > 0 && runs.gnmi.length > 0) {
      const median = (xs: number[]): number =>
        [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      const ratio = (f: (m: Measured) => number): number =>
        Math.round((median(runs.gnmi.map(f)) / median(runs.sim.map(f))) * 100) / 100;
      const target = live === 100_000 ? '≤ 3' : '';
      const wallRatio = ratio((m) => m.wallS);
      figures.push(
        {
          id: `${id}.wall_ratio`,
          what: `${at}: gNMI wall time as a multiple of the simulator adapter's`,
          value: wallRatio,
          unit: '×',
          target,
          met: target === '' || wallRatio <= 3,
        },
        {
          id: `${id}.cpu_ratio`,
          what: `${at}: gNMI CPU time as a multiple of the simulator adapter's`,
          value: ratio((m) => m.cpuS),
          unit: '×',
          target: '',
          met: true,
        },
      );
    }
    if (unfinished.length > 0)
      figures.push({
        id: `${id}.not_finished`,
        what: `${at}: runs not finished within ${size.timeoutMs / 1000} s (stopped): ${unfinished.join(', ')}`,
        value: unfinished.length,
        unit: 'runs',
        target: '= 0',
        met: false,
      });
  }
  return figures;
}
