// The operator CLI's change records and its words against a running `flowpin start`: a wrong
// --vip or a nexthop the VIP does not have is said in the CLI's terms with what there is;
// `flowpin changes --watch` prints a new change as it moves and ends on Ctrl-C with 0;
// `flowpin change ID` (and GET .../changes/:id) fetches one; `remove --dry-run` says what a
// removal would do and changes nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from './helpers/cli.js';
import { startDemo, until } from './helpers/demo.js';

test(
  'operator CLI: CLI words for a wrong VIP or nexthop, changes --watch, change ID, remove --dry-run',
  { timeout: 180_000 },
  async () => {
    const demo = await startDemo('cli-changes');
    const ro = { FLOWPIN_URL: demo.api };
    const op = { FLOWPIN_URL: demo.api, FLOWPIN_TOKEN: 'cli-changes' };
    try {
      const wrongVip = await cli(['drain', '10.0.1.3', '--vip', '192.0.2.99'], op);
      assert.equal(wrongVip.code, 2);
      assert.match(
        wrongVip.err,
        /^flowpin drain: no VIP 192\.0\.2\.99; the VIPs are 192\.0\.2\.80 \(sim1\)\n/,
      );
      assert.doesNotMatch(wrongVip.err, /has nexthop/);
      const wrongNh = await cli(['drain', '10.0.1.9', '--vip', '192.0.2.80'], op);
      assert.equal(wrongNh.code, 2);
      assert.match(
        wrongNh.err,
        /10\.0\.1\.9 is not a nexthop of VIP 192\.0\.2\.80 \(sim1\); its nexthops are 10\.0\.1\.1, 10\.0\.1\.2, 10\.0\.1\.3, 10\.0\.1\.4 \(to add it: flowpin add 10\.0\.1\.9 --vip 192\.0\.2\.80\)/,
      );
      const wrongSwitch = await cli(['drain', '10.0.1.3', '--switch', 'leaf9'], op);
      assert.equal(wrongSwitch.code, 2);
      assert.match(wrongSwitch.err, /no switch 'leaf9'; the switches are sim1/);

      // Watch while a drain runs to its deadline: the new change appears and moves; Ctrl-C ends the watch
      // with 0.
      let drainId = '';
      const watched = await cli(['changes', '--watch', '--interval', '0.3'], ro, (stop, _err, out) => {
        void (async () => {
          await until(() => /^id\s+kind/m.test(out()), 30_000, 'the first table');
          const d = await cli(
            ['drain', '10.0.1.3', '--max-at-risk', 'unbounded', '--deadline', '2', '-o', 'json'],
            op,
          );
          // 4: the 2 s deadline passed before the drain answered (a loaded machine), connections left:
          // tracked on.
          assert.ok(d.code === 0 || d.code === 4, `exit ${d.code}: ${d.err}`);
          drainId = (JSON.parse(d.out) as { id: string }).id;
          await until(
            () =>
              new RegExp(
                `^${drainId}\\s+drain\\s+sim1\\s+192\\.0\\.2\\.80\\s+10\\.0\\.1\\.3\\s+(drained|deadline-passed)`,
                'm',
              ).test(out()),
            60_000,
            'the drain drained or past its deadline in the watch',
          );
        })().finally(stop);
      });
      assert.equal(watched.code, 0, watched.err);
      assert.ok(drainId !== '');
      assert.match(
        watched.out,
        new RegExp(
          `^${drainId}\\s+drain\\s+sim1\\s+192\\.0\\.2\\.80\\s+10\\.0\\.1\\.3\\s+(drained|deadline-passed)`,
          'm',
        ),
      );

      // One change by id: the CLI, and the API under it.
      const one = await cli(['change', drainId], ro);
      assert.equal(one.code, 0, one.err);
      assert.match(
        one.out,
        new RegExp(
          `^change ${drainId}: drain 10\\.0\\.1\\.3 on 192\\.0\\.2\\.80 \\(sim1\\)\\n\\s+phase\\s+(drained|deadline-passed \\(deadline reached\\): deadline passed with \\d+ connections left)`,
        ),
      );
      assert.match(one.out, /\n\s+applied\s+\d{4}-\d\d-\d\dT/);
      const asJson = JSON.parse((await cli(['change', drainId, '-o', 'json'], ro)).out) as {
        id: string;
        phase: string;
      };
      assert.equal(asJson.id, drainId);
      assert.match(asJson.phase, /^(drained|deadline-passed)$/);
      const missing = await cli(['change', 'sim1-drain-nope-1'], ro);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /no change sim1-drain-nope-1; 'flowpin changes' lists the recent ones/);
      const api = await fetch(`${demo.api}/api/v1/switches/sim1/changes/${encodeURIComponent(drainId)}`);
      assert.equal(api.status, 200);
      assert.equal(((await api.json()) as { id: string }).id, drainId);
      assert.equal((await fetch(`${demo.api}/api/v1/switches/sim1/changes/nope`)).status, 404);

      // remove --dry-run: a member is refused (and stays); a drained nexthop would go, with what is left on
      // it.
      const member = await cli(['remove', '10.0.1.1', '--dry-run'], op);
      assert.equal(member.code, 1);
      assert.match(member.err, /10\.0\.1\.1 is still in the ECMP group of 192\.0\.2\.80: drain it first/);
      const drained = await cli(['remove', '10.0.1.3', '--dry-run', '-o', 'json'], op);
      assert.equal(drained.code, 0, drained.err);
      const report = JSON.parse(drained.out) as {
        dryRun: boolean;
        removed: boolean;
        pinnedLeft: number;
        left: { live: number; unknown: number; pinned: number };
      };
      assert.deepEqual([report.dryRun, report.removed], [true, false]);
      assert.ok(report.pinnedLeft >= 0 && report.left.live >= 0 && report.left.unknown >= 0);
      const vips = (await (await fetch(`${demo.api}/api/v1/switches/sim1/vips`)).json()) as {
        vips: { nexthops: { address: string }[] }[];
      };
      assert.ok(
        vips.vips[0]?.nexthops.some((n) => n.address === '10.0.1.3'),
        'the dry run removed nothing',
      );
    } finally {
      const code = await demo.stop();
      assert.equal(code, 0, demo.output());
    }
  },
);
