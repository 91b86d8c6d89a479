// Figures the fault and property tests record for docs/reliability.md (`npm run reliability`):
// one JSON file per test under test-results/reliability/, written when the test has checked
// what it asserts (a test that fails records nothing, so the report shows it missing).

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Under the repository root (this module runs from dist/reliability/). */
export const FIGURES_DIR = path.join(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'),
  'test-results',
  'reliability',
);

export interface ReliabilityFigures {
  /** The fault or input class, in words ("a silent mirror", "SIGTERM under load"). */
  fault: string;
  /** The test file and test that checked it. */
  test: string;
  /** What flowpin did about it, in words ("not ready, change refused (409)"). */
  outcome: string;
  /** Inputs tried (random bodies, frames sent, connections opened); absent where not counted. */
  inputs?: number;
  /** Connections broken, and those of them flowpin had promised to keep (must be 0). */
  broken?: number;
  brokenPromised?: number;
  /** Frames or events dropped and counted (socket drops, decode drops, shed SYNs). */
  dropsCounted?: number;
  /** Other measured figures, named with their unit. */
  figures?: Record<string, number | string>;
}

/** Writes one test's figures (replacing what an earlier run of the same test wrote). */
export function recordFigures(r: ReliabilityFigures): void {
  mkdirSync(FIGURES_DIR, { recursive: true });
  const slug = `${r.test}--${r.fault}`.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 120);
  const file = path.join(FIGURES_DIR, `${slug}.json`);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ ...r, at: new Date().toISOString() }, null, 2) + '\n');
  renameSync(tmp, file);
}
