// The operator CLI against a running `flowpin start`: status, a dry run that changes nothing,
// a refused change without the token, `drain --wait` followed through to drained, a --timeout
// that exits non-zero and leaves the drain running, an interrupted --wait likewise, undrain,
// flows, pins and changes, with -o json.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';
import { startDemo, until } from './helpers/demo.js';

interface Nh {
  address: string;
  state: string;
  inGroup: boolean;
  pinned: number;
}

test('operator CLI against a running controller', { timeout: 180_000 }, async () => {
  const demo = await startDemo('cli-test');
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-cli-'));
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, 'cli-test\n');
  const ro = { FLOWPIN_URL: demo.api };
  const op = { FLOWPIN_URL: demo.api, FLOWPIN_TOKEN: 'cli-test' };
  const nh = async (a: string): Promise<Nh | undefined> =>
    (
      (await (await fetch(`${demo.api}/api/v1/switches/sim1/vips`)).json()) as { vips: { nexthops: Nh[] }[] }
    ).vips[0]?.nexthops.find((n) => n.address === a);
  try {
    // status: text and JSON, the same figures the API has.
    const st = await cli(['status'], ro);
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, /: ready\n/);
    assert.match(
      st.out,
      /switch sim1 \(arista-eapi\): healthy; pins in sync; pin table \d+ programmed, \d+ free of 1500/,
    );
    assert.match(st.out, /10\.0\.1\.2\s+active\s+yes\s+\d+\s+0/);
    const sj = JSON.parse((await cli(['status', '-o', 'json', '--url', demo.api], {})).out) as {
      ready: boolean;
      switches: { name: string; vips: { nexthops: Nh[] }[] }[];
    };
    assert.equal(sj.ready, true);
    assert.deepEqual(
      sj.switches[0]?.vips[0]?.nexthops.map((n) => n.address),
      ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'],
    );

    // Usage errors and a change without the token.
    assert.equal((await cli(['drain'], ro)).code, 2);
    assert.equal((await cli(['drain', '10.0.1.2', '--bogus'], ro)).code, 2);
    const noToken = await cli(['drain', '10.0.1.2'], ro);
    assert.equal(noToken.code, 1);
    assert.match(noToken.err, /bearer token.*FLOWPIN_TOKEN/);
    assert.equal((await nh('10.0.1.2'))?.inGroup, true);
    const unreachable = await cli(['status', '--url', 'http://127.0.0.1:1'], {});
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.err, /cannot reach flowpin at http:\/\/127\.0\.0\.1:1/);

    // A dry run (token from a file): the report, nothing changed.
    const dry = await cli(['drain', '10.0.1.2', '--dry-run', '-o', 'json', '--token-file', tokenFile], ro);
    assert.equal(dry.code, 0, dry.err);
    const report = JSON.parse(dry.out) as {
      dryRun: boolean;
      flowsToPin: number;
      freeEntries: number;
      atRisk: number;
      atRiskBy: Record<string, number>;
    };
    assert.equal(report.dryRun, true);
    // At risk only for look-ups still in flight (a loaded machine): nothing the switch refused.
    assert.ok(
      report.flowsToPin > 0 &&
        report.freeEntries > 0 &&
        report.atRisk === (report.atRiskBy['unresolved'] ?? 0),
      dry.out,
    );
    assert.equal((await nh('10.0.1.2'))?.inGroup, true);
    assert.match(
      (await cli(['drain', '10.0.1.2', '--dry-run'], op)).out,
      /dry run: drain 10\.0\.1\.2 on 192\.0\.2\.80 \(sim1\); nothing changed\n\s+connections to pin\s+\d+[^]*needs --max-at-risk\s+\d+/,
    );

    // drain --wait: followed until its deadline: deadline-passed with what is left (never drained while
    // connections remain), exit 4.
    const old = await cli(['drain', '10.0.1.2', '--accept-risk'], op);
    assert.equal(old.code, 2, 'the old flag is a usage error');
    assert.match(old.err, /--accept-risk was replaced by --max-at-risk N/);
    const waited = await cli(
      ['drain', '10.0.1.2', '--wait', '--deadline', '6', '--interval', '0.3', '-o', 'json'],
      op,
    );
    const rec = JSON.parse(waited.out) as {
      phase: string;
      kind: string;
      pinned: number;
      remaining: number;
      left?: { live: number; unknown: number };
    };
    assert.equal(rec.kind, 'drain');
    assert.ok(rec.pinned > 0);
    if (rec.phase === 'deadline-passed') {
      assert.equal(waited.code, 4, waited.err);
      assert.ok(rec.remaining > 0, 'deadline-passed only with connections left');
      assert.match(waited.err, /deadline passed with \d+ connections left/);
      assert.equal((await nh('10.0.1.2'))?.state, 'deadline-passed');
    } else {
      assert.equal(rec.phase, 'drained', waited.err);
      assert.equal(waited.code, 0, waited.err);
      assert.equal((await nh('10.0.1.2'))?.state, 'drained');
    }
    assert.match(waited.err, /draining 10\.0\.1\.2: \d+ connections left/);

    // maxUnavailable (1): a second member may not go out while the first is; the refusal speaks the CLI.
    const second = await cli(['drain', '10.0.1.3'], op);
    assert.equal(second.code, 1);
    assert.match(
      second.err,
      /10\.0\.1\.2 is already out of 192\.0\.2\.80 .*raise maxUnavailable for the VIP in the configuration/,
    );
    const back = await cli(['undrain', '10.0.1.2', '--max-at-risk', 'unbounded'], op);
    assert.equal(back.code, 0, back.err);

    // --timeout: exits 3, says how to follow, the drain goes on.
    const timedOut = await cli(
      ['drain', '10.0.1.3', '--max-at-risk', 'unbounded', '--wait', '--timeout', '1', '--interval', '0.3'],
      op,
    );
    assert.equal(timedOut.code, 3, timedOut.err);
    assert.match(
      timedOut.err,
      /not complete after 1 s; the drain goes on; follow it with: flowpin changes --switch sim1 --url http/,
    );
    assert.equal((await nh('10.0.1.3'))?.state, 'draining');
    const ch = await cli(['changes'], ro);
    assert.match(ch.out, /drain\s+sim1\s+192\.0\.2\.80\s+10\.0\.1\.3\s+applied/);
    assert.match(ch.out, /drain\s+sim1\s+192\.0\.2\.80\s+10\.0\.1\.2\s+(drained|deadline-passed)/);
    const back3 = await cli(['undrain', '10.0.1.3', '--max-at-risk', 'unbounded'], op);
    assert.equal(back3.code, 0, back3.err);

    // An interrupted --wait: exits 130, the change goes on.
    const interrupted = await cli(
      ['drain', '10.0.1.4', '--max-at-risk', 'unbounded', '--wait', '--interval', '0.3'],
      op,
      (kill, err) => {
        void until(() => /draining 10\.0\.1\.4/.test(err()), 30_000, 'the wait to start').then(kill, () =>
          kill(),
        );
      },
    );
    assert.equal(interrupted.code, 130, interrupted.err);
    assert.match(interrupted.err, /interrupted; the drain goes on; follow it with/);
    assert.equal((await nh('10.0.1.4'))?.state, 'draining');

    // undrain puts it back.
    for (const a of ['10.0.1.4']) {
      const u = await cli(['undrain', a, '--max-at-risk', 'unbounded'], op);
      assert.equal(u.code, 0, u.err);
      assert.match(u.out, new RegExp(`${a.replace(/\./g, '\\.')} on 192\\.0\\.2\\.80 \\(sim1\\): active`));
    }
    assert.equal((await nh('10.0.1.4'))?.inGroup, true);

    // add with a dry run, then for real; remove refuses a member.
    const addDry = await cli(['add', '10.0.1.5', '--dry-run', '-o', 'json'], op);
    assert.equal(addDry.code, 0, addDry.err + addDry.out);
    assert.equal((JSON.parse(addDry.out) as { dryRun: boolean }).dryRun, true);
    const add = await cli(['add', '10.0.1.5', '--max-at-risk', 'unbounded'], op);
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /add 10\.0\.1\.5 on 192\.0\.2\.80 \(sim1\), change \S+: complete/);
    const rm = await cli(['remove', '10.0.1.5'], op);
    assert.equal(rm.code, 1);
    assert.match(rm.err, /still in the ECMP group/);

    // flows and pins: a known client is found (connections end all the time: a flow that ended between the
    // calls is tried again with another).
    let known: { src: string; sport: number } | undefined;
    let found: { code: number | null; out: string } = { code: -1, out: '' };
    let byPort = { total: 0, flows: [] as { src: string; sport: number }[] };
    for (let i = 0; i < 10; i++) {
      const flows = JSON.parse((await cli(['flows', '--limit', '1', '--pinned', '-o', 'json'], ro)).out) as {
        total: number;
        flows: { src: string; sport: number }[];
      };
      known = flows.flows[0];
      assert.ok(known !== undefined && flows.total > 1);
      found = await cli(['flows', '--client', known.src], ro);
      byPort = JSON.parse(
        (await cli(['flows', '--client', known.src, '--port', String(known.sport), '-o', 'json'], ro)).out,
      ) as typeof byPort;
      if (found.out.includes(`${known.src}:${known.sport}`) && byPort.total === 1) break;
    }
    assert.ok(known !== undefined);
    assert.equal(found.code, 0);
    assert.ok(found.out.includes(`${known.src}:${known.sport}`), found.out);
    for (const line of found.out.trim().split('\n').slice(1, -1))
      assert.match(line, new RegExp(`^sim1\\s+${known.src.replace(/\./g, '\\.')}:`));
    const pins = JSON.parse(
      (await cli(['pins', '--state', 'installed', '--limit', '5', '-o', 'json'], ro)).out,
    ) as { total: number; pins: { state: string }[] };
    assert.ok(pins.total > 0 && pins.pins.every((p) => p.state === 'installed'));

    // flows by client port, pinned or not.
    assert.equal(byPort.total, 1);
    assert.deepEqual(
      byPort.flows.map((f) => `${f.src}:${f.sport}`),
      [`${known.src}:${known.sport}`],
    );
    const pinnedFlows = JSON.parse(
      (await cli(['flows', '--pinned', '--limit', '50', '-o', 'json'], ro)).out,
    ) as { total: number; flows: { pinned: boolean }[] };
    assert.ok(
      pinnedFlows.total > 0 && pinnedFlows.flows.every((f) => f.pinned),
      'pinned flows after the drains',
    );
    const unpinnedFlows = JSON.parse(
      (await cli(['flows', '--unpinned', '--limit', '50', '-o', 'json'], ro)).out,
    ) as { total: number; flows: { pinned: boolean }[] };
    assert.ok(unpinnedFlows.total > 0 && unpinnedFlows.flows.every((f) => !f.pinned));
    assert.equal((await cli(['flows', '--pinned', '--unpinned'], ro)).code, 2);
    assert.equal((await cli(['pins', '--port', '80'], ro)).code, 2);
    assert.equal((await cli(['flows', '--port', 'http'], ro)).code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    const code = await demo.stop();
    assert.equal(code, 0, demo.output());
  }
});
