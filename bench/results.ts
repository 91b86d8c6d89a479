// Benchmark results: each benchmark reports named figures (with every run's value where it
// repeats) and a section for BENCHMARKS.md; they are merged into bench/results.json (by id and
// by section) and rendered as BENCHMARKS.md and the README's short table (between markers).
// A new benchmark adds a section by returning one from its run: nothing here changes.

import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Figure {
  /** Stable id, e.g. "decode.frames_per_s". */
  id: string;
  /** What was measured, for the table. */
  what: string;
  /** The median of `runs` where there are runs. */
  value: number;
  unit: string;
  /** The target as text ("≥ 2,000,000"), or empty. */
  target: string;
  /** True when the target is met (or there is none). */
  met: boolean;
  /** Every run's value, when the measurement was repeated. */
  runs?: number[];
  /** Id of the figure this one is compared with (a baseline from the same run). */
  baseline?: string;
  /** True for a figure that is a baseline (another tool, the prototype). */
  isBaseline?: boolean;
}

/** One section of BENCHMARKS.md. */
export interface Section {
  /** Stable key; a later run of the same benchmark replaces its section. */
  key: string;
  title: string;
  /** Markdown: what is measured, what each baseline is and why the comparison is fair. */
  about: string;
  /** Ids of the figures shown, in order; baselines appear next to the figures that name them. */
  figures: string[];
  /** Machine, load and date of the run that produced the section. */
  measured?: RunContext;
}

export interface RunContext {
  machine: string;
  node: string;
  /** 1-, 5- and 15-minute load averages when the benchmark started. */
  loadAverage: number[];
  date: string;
}

export interface BenchOutput {
  figures: Figure[];
  section?: Section;
}

interface ResultsFile {
  machine: string;
  node: string;
  updated: string;
  figures: Figure[];
  sections?: Section[];
}

export interface OutputPaths {
  results: string;
  readme: string;
  benchmarks: string;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const repoPaths: OutputPaths = {
  results: path.join(root, 'bench/results.json'),
  readme: path.join(root, 'README.md'),
  benchmarks: path.join(root, 'BENCHMARKS.md'),
};
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export const fmt = (v: number): string =>
  !Number.isFinite(v)
    ? String(v)
    : Math.abs(v) >= 100
      ? Math.round(v).toLocaleString('en-US')
      : v.toLocaleString('en-US', { maximumFractionDigits: 2 });

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0
    ? NaN
    : s.length % 2 === 1
      ? (s[m] as number)
      : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** A figure from repeated runs: the value is their median. */
export function repeated(f: Omit<Figure, 'value' | 'runs'>, runs: number[]): Figure {
  return { ...f, value: median(runs), runs };
}

export function runContext(): RunContext {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return {
    machine: `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
  };
}

const spread = (f: Figure): string => {
  if (f.runs === undefined || f.runs.length < 2) return `${fmt(f.value)} ${f.unit}`;
  return `${fmt(f.value)} ${f.unit} (${fmt(Math.min(...f.runs))} – ${fmt(Math.max(...f.runs))}, ${f.runs.length} runs)`;
};

export function renderTable(figures: Figure[]): string {
  const rows = figures.map(
    (f) =>
      `| ${f.what} | ${fmt(f.value)} ${f.unit} | ${f.target === '' ? '' : `${f.target} ${f.unit}`} | ${f.target === '' ? '' : f.met ? 'met' : '**missed**'} |`,
  );
  return ['| benchmark | result | target | |', '|---|---|---|---|', ...rows].join('\n');
}

/** One section: each figure with its baseline beside it, median and (min – max) of the runs. */
export function renderSection(s: Section, byId: Map<string, Figure>): string {
  const out = [`## ${s.title}`, ''];
  if (s.measured)
    out.push(
      `Measured on ${s.measured.machine}, Node ${s.measured.node}, ${s.measured.date.slice(0, 16).replace('T', ' ')} UTC, load average at the start ${s.measured.loadAverage.join(' / ')}.`,
      '',
    );
  out.push(
    '| measure | result: median (min – max) | baseline, same run | ratio | target |',
    '|---|---|---|---|---|',
  );
  for (const id of s.figures) {
    const f = byId.get(id);
    if (f === undefined) continue;
    const b = f.baseline === undefined ? undefined : byId.get(f.baseline);
    const ratio = b === undefined || b.value === 0 ? '' : `${fmt(f.value / b.value)} x`;
    const base = b === undefined ? '' : `${b.what}: ${spread(b)}`;
    const target = f.target === '' ? '' : `${f.target} ${f.unit}: ${f.met ? 'met' : '**missed**'}`;
    out.push(`| ${f.what} | ${spread(f)} | ${base} | ${ratio} | ${target} |`);
  }
  out.push('', s.about.trim(), '');
  return out.join('\n');
}

export function renderBenchmarks(file: ResultsFile): string {
  const byId = new Map(file.figures.map((f) => [f.id, f]));
  const head = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/results.ts) from bench/results.json: edit the benchmarks, not this file. -->',
    '',
    'Each section comes from one run of its benchmark; every figure stands next to its baseline',
    'measured in that same run, on the same machine, with the machine and its load average at the',
    'start of the run. Repeated measurements show the median and, in brackets, the minimum and',
    'maximum. `npm run bench` runs all benchmarks, `npm run bench -- NAME` one of them.',
    '',
  ];
  return [...head, ...(file.sections ?? []).map((s) => renderSection(s, byId))].join('\n');
}

/** Merges a benchmark's output into results.json and regenerates BENCHMARKS.md and the README table. */
export function recordResults(output: BenchOutput, paths: OutputPaths = repoPaths): void {
  const previous: ResultsFile | undefined = existsSync(paths.results)
    ? (JSON.parse(readFileSync(paths.results, 'utf8')) as ResultsFile)
    : undefined;
  const byId = new Map((previous?.figures ?? []).map((f) => [f.id, f]));
  // A section run again replaces its figures: those of the earlier run it no longer reports go.
  const old = previous?.sections?.find((s) => s.key === output.section?.key);
  if (old !== undefined) {
    for (const id of [...byId.keys()])
      if (id.startsWith(`${old.key}.`) || old.figures.includes(id)) byId.delete(id);
  }
  for (const f of output.figures) byId.set(f.id, f);
  const sections = [...(previous?.sections ?? [])];
  if (output.section !== undefined) {
    const i = sections.findIndex((s) => s.key === output.section?.key);
    if (i >= 0) sections[i] = output.section;
    else sections.push(output.section);
  }
  const ctx = runContext();
  const file: ResultsFile = {
    machine: ctx.machine,
    node: ctx.node,
    updated: ctx.date,
    figures: [...byId.values()],
    sections,
  };
  atomicWrite(paths.results, JSON.stringify(file, null, 2) + '\n');
  atomicWrite(paths.benchmarks, renderBenchmarks(file));
  if (!existsSync(paths.readme)) return;
  const readme = readFileSync(paths.readme, 'utf8');
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) return;
  // The short table: the figures with a target, as BENCHMARKS.md shows them.
  const short = file.figures.filter((f) => f.isBaseline !== true && f.target !== '');
  const table = `${START}\nMeasured on ${file.machine}, Node ${file.node}, ${file.updated.slice(0, 10)} (\`npm run bench\`); baselines, spreads and load in [BENCHMARKS.md](BENCHMARKS.md).\n\n${renderTable(short)}\n${END}`;
  atomicWrite(paths.readme, readme.slice(0, a) + table + readme.slice(b + END.length));
}

export function printFigures(figures: Figure[]): void {
  for (const f of figures) {
    const verdict = f.target === '' ? '' : f.met ? '  (target met)' : `  (target ${f.target} missed)`;
    process.stdout.write(`  ${f.what}: ${spread(f)}${verdict}\n`);
  }
}
