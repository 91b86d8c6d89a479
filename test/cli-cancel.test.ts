// `flowpin cancel ID` as an operator runs it, against `flowpin run` and the switch simulator in
// processes of their own: a drain held in its settle time is cancelled (exit 0), its own
// `flowpin drain` ends saying so (exit 1), the switch's group is as it was; a drain whose group
// write was applied is not undone (exit 1) and the CLI names the command that would undo it.
// `flowpin change ID` shows who asked for the change and who cancelled it, with the consent.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';
import { until } from './helpers/demo.js';
import { startFlowpin, startSim, type Proc } from './helpers/processes.js';

const TOKEN = 'cancel-test-token';

interface Nh {
  address: string;
  inGroup: boolean;
}

test(
  'flowpin cancel: a pending drain is cancelled before its group write; an applied one is not undone, the undo named',
  { timeout: 180_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-cancel-'));
    const procs: Proc[] = [];
    try {
      const sim = await startSim(dir);
      procs.push(sim);
      // A settle time of 6 s: each change waits that long before its group write (time enough to cancel it).
      const fp = await startFlowpin(dir, sim, {
        token: TOKEN,
        stateFile: path.join(dir, 'state'),
        extra: [
          'mirror: { udp: [{ host: 127.0.0.1, port: 0 }] }',
          'settleMs: 6000',
          'barrierTimeoutMs: 30000',
        ],
      });
      procs.push(fp);
      const op = { FLOWPIN_URL: fp.api, FLOWPIN_TOKEN: TOKEN };
      const inGroup = async (a: string): Promise<boolean | undefined> =>
        (
          (await (await fetch(`${fp.api}/api/v1/switches/sim1/vips`)).json()) as {
            vips: { nexthops: Nh[] }[];
          }
        ).vips[0]?.nexthops.find((n) => n.address === a)?.inGroup;
      await until(
        async () =>
          (
            await fetch(`${fp.api}/api/v1/switches`).then(
              (r) => r.json() as Promise<{ switches: { connected: boolean }[] }>,
            )
          ).switches[0]?.connected,
        20_000,
        'the switch connected',
      );

      assert.equal((await cli(['cancel'], op)).code, 2);
      const drain = cli(['drain', '10.0.1.2', '--max-at-risk', 'unbounded'], op);
      const id = await until(
        async () => {
          const r = await cli(['changes', '-o', 'json'], op);
          return (JSON.parse(r.out) as { changes: { id: string; phase: string }[] }).changes.find(
            (c) => c.phase === 'pending',
          )?.id;
        },
        20_000,
        'the drain pending',
      );
      const cancelled = await cli(['cancel', id], op);
      assert.equal(cancelled.code, 0, cancelled.err);
      assert.equal(
        cancelled.out,
        `change ${id}: drain 10.0.1.2 on 192.0.2.80 (sim1) cancelled (cancelled by the operator): no group write was sent, nothing changed on the switch, its pins are released\n`,
      );
      const d = await drain;
      assert.equal(d.code, 1);
      assert.match(
        d.err,
        /^flowpin drain: drain of 10\.0\.1\.2 on sim1 cancelled by the operator before its group write: nothing changed on the switch/,
      );
      const shown = await cli(['change', id], op);
      assert.match(
        shown.out,
        /\n\s+phase\s+cancelled: cancelled by the operator\n\s+requested by\s+token api\.token from 127\.0\.0\.1\n\s+cancelled by\s+token api\.token from 127\.0\.0\.1\n\s+consent\s+--max-at-risk unbounded\n\s+dry run\s+\S.*\n\s+before the write\s+not reached\n/,
      );
      assert.equal(await inGroup('10.0.1.2'), true, 'still in the group');

      // Applied: a cancel changes nothing and says what would undo it, as a command.
      const done = await cli(['drain', '10.0.1.3', '--max-at-risk', 'unbounded', '-o', 'json'], op);
      assert.equal(done.code, 0, done.err);
      const applied = JSON.parse(done.out) as { id: string };
      const late = await cli(['cancel', applied.id], op);
      assert.equal(late.code, 1);
      assert.match(
        late.err,
        new RegExp(
          `^flowpin cancel: the group write of drain ${applied.id} was applied at \\S+: cancel cannot take it back, and changed nothing\\. What would undo it is putting 10\\.0\\.1\\.3 back into the group of 192\\.0\\.2\\.80: flowpin undrain 10\\.0\\.1\\.3 --vip 192\\.0\\.2\\.80 --switch sim1, a new change with its own --max-at-risk \\(flowpin add 10\\.0\\.1\\.3 --vip 192\\.0\\.2\\.80 --switch sim1 --dry-run shows what it would cost\\)\\n$`,
        ),
      );
      assert.equal(await inGroup('10.0.1.3'), false, 'not undrained');
      const missing = await cli(['cancel', 'sim1-drain-nope-1'], op);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /no change sim1-drain-nope-1/);
    } finally {
      for (const p of procs.reverse()) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
