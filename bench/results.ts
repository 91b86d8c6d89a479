// Benchmark results: each benchmark reports named figures; they are merged into
// bench/results.json and rendered as the README's benchmark table (between markers).

import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Figure {
  /** Stable id, e.g. "decode.frames_per_s". */
  id: string;
  /** What was measured, for the table. */
  what: string;
  value: number;
  unit: string;
  /** The target as text ("≥ 2,000,000"), or empty. */
  target: string;
  /** True when the target is met (or there is none). */
  met: boolean;
}

interface ResultsFile {
  machine: string;
  node: string;
  updated: string;
  figures: Figure[];
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resultsPath = path.join(root, 'bench/results.json');
const readmePath = path.join(root, 'README.md');
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

const fmt = (v: number): string => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 2 }));

export function renderTable(figures: Figure[]): string {
  const rows = figures.map((f) => `| ${f.what} | ${fmt(f.value)} ${f.unit} | ${f.target === '' ? '' : `${f.target} ${f.unit}`} | ${f.target === '' ? '' : f.met ? 'met' : '**missed**'} |`);
  return ['| benchmark | result | target | |', '|---|---|---|---|', ...rows].join('\n');
}

/** Merges figures into results.json (by id) and regenerates the README table. */
export function recordFigures(figures: Figure[]): void {
  const previous: ResultsFile | undefined = existsSync(resultsPath) ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as ResultsFile) : undefined;
  const byId = new Map((previous?.figures ?? []).map((f) => [f.id, f]));
  for (const f of figures) byId.set(f.id, f);
  const merged = [...byId.values()];
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  const file: ResultsFile = { machine: `${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`, node: process.version, updated: new Date().toISOString(), figures: merged };
  atomicWrite(resultsPath, JSON.stringify(file, null, 2) + '\n');
  if (!existsSync(readmePath)) return;
  const readme = readFileSync(readmePath, 'utf8');
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) return;
  const table = `${START}\nMeasured on ${file.machine}, Node ${file.node}, ${file.updated.slice(0, 10)} (\`npm run bench\`).\n\n${renderTable(merged)}\n${END}`;
  atomicWrite(readmePath, readme.slice(0, a) + table + readme.slice(b + END.length));
}

export function printFigures(figures: Figure[]): void {
  for (const f of figures) {
    const verdict = f.target === '' ? '' : f.met ? '  (target met)' : `  (target ${f.target} missed)`;
    process.stdout.write(`  ${f.what}: ${fmt(f.value)} ${f.unit}${verdict}\n`);
  }
}
