// The torture runner, bounded (2-3 minutes): the simulator, the controller and the load in
// real processes at 1,000 new connections/s; a drain and an addition without faults, a drain
// killed at its group write (FLOWPIN_CRASH_AT=sent, or the runner's kill when the record shows
// it), two drains with the second queued and the controller killed, and a state file damaged
// with garbage between a kill and the restart. Every run must keep flowpin's promise: no
// protected connection reset, every reset counted, no record the ground truth contradicts, no
// change lost, no temporary file left. The seed is printed; FLOWPIN_TORTURE_SEED replays it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runOnce, type RunReport } from '../torture/runner.js';
import type { RunPlan } from '../torture/schedule.js';

const seed = Number(process.env['FLOWPIN_TORTURE_SEED'] ?? Math.floor(Math.random() * 1e9));

const plans: RunPlan[] = [
  { run: 1, seed: seed + 1, fault: 'none', kind: 'drain', delayMs: 0, stopMs: 0 },
  { run: 2, seed: seed + 2, fault: 'kill-phase', kind: 'drain', phase: 'sent', delayMs: 0, stopMs: 0 },
  { run: 3, seed: seed + 3, fault: 'queued-kill', kind: 'drain', delayMs: 50 + (seed % 250), stopMs: 0 },
  { run: 4, seed: seed + 4, fault: 'corrupt', kind: 'drain', damage: 'garbage', delayMs: 0, stopMs: 0 },
];

test(
  `torture, bounded: kills at the group write, a queued change killed, damaged state (seed ${seed})`,
  { timeout: 280_000 },
  async () => {
    const reports: RunReport[] = [];
    for (const p of plans) {
      const r = await runOnce(p, {
        rate: 1000,
        warmS: 3,
        lifetime: { medianS: 1, sigma: 0.7, maxS: 4 },
        changeTimeoutS: 25,
        keep: false,
        cpuProf: false,
        verbose: false,
      });
      process.stdout.write(`${JSON.stringify(r)}\n`);
      reports.push(r);
    }
    const bad = reports.filter((r) => !r.ok);
    assert.deepEqual(
      bad.map((r) => `${r.fault}${r.phase === undefined ? '' : `@${r.phase}`}: ${r.violations.join('; ')}`),
      [],
      `seed ${seed}`,
    );
    // The runs did what they say: traffic flowed, kills happened, changes were made.
    for (const r of reports)
      assert.ok((r.load?.['opened'] ?? 0) > 1000, `run ${r.run}: the load ran (${JSON.stringify(r.load)})`);
    assert.ok(
      reports.slice(1).every((r) => r.kills >= 1),
      'every fault run killed the controller',
    );
  },
);
