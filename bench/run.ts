// `npm run bench [name...]`: runs the benchmarks (all, or those named), prints their
// figures, and records them in bench/results.json and the README's table.

import { decodeBench } from './decode.bench.js';
import { persistBench } from './persist.bench.js';
import { pinningBench } from './pinning.bench.js';
import { scenarioBench } from './scenario.bench.js';
import { linuxBench } from './linux.bench.js';
import { printFigures, recordFigures, type Figure } from './results.js';

const BENCHES: Record<string, () => Promise<Figure[]>> = {
  decode: decodeBench,
  pinning: pinningBench,
  scenario: scenarioBench,
  persist: persistBench,
  linux: linuxBench,
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !(w in BENCHES));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}; have: ${Object.keys(BENCHES).join(', ')}`);
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    process.stdout.write(`\n== ${name}\n`);
    const figures = await bench();
    printFigures(figures);
    recordFigures(figures);
  }
  process.stdout.write('\nrecorded in bench/results.json and the README table\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
