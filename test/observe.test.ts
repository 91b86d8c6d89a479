// Resolution by observation: the servers' mirrored SYN-ACKs name the server of each flow.
// Drains and additions under traffic with `resolution: observe` on a switch with no look-up
// at all, the same with servers behind one shared VLAN interface, `both` against a wrong hash
// model, the reply timeout's fallback, and a server whose MAC changes. Each test names the
// defect it exists to catch.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeRecord, DryRunReport } from '../controller/changes.js';
import { COMPARE_EVERY } from '../controller/switch-runtime.js';
import { SimAdapter } from '../switch-adapters/sim/adapter.js';
import { World, type WorldOptions, type WorldSwitchOptions } from '../cli/scenario/world.js';
import { measured } from './helpers/measured.js';

const VIP = '192.0.2.80';
const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
const SPARE = '10.0.1.5';

function sw(over: Partial<WorldSwitchOptions> = {}): WorldSwitchOptions {
  return {
    name: 'sw1',
    vips: [{ address: VIP, nexthops: NH, port: 443 }],
    spares: [SPARE],
    ecmpMode: 'resilient',
    pinCapacity: 100_000,
    programDelayMs: 10,
    pinProgramDelayMs: 50,
    rate: 1000,
    lifetime: { kind: 'lognormal', medianS: 30, sigma: 1, maxS: 600 },
    mirrorReplies: true,
    resolution: 'observe',
    lookup: 'none',
    clientRttMs: 30,
    ...over,
  };
}

async function world(
  swOver: Partial<WorldSwitchOptions> = {},
  over: Partial<WorldOptions> = {},
  live = 2000,
): Promise<World> {
  const w = new World({
    switches: [sw(swOver)],
    latencyMs: 5,
    mirrorDelayMs: 1,
    packetIntervalMs: 1000,
    seed: 23,
    controller: { pinMode: 'on-change', settleMs: 20, barrierTimeoutMs: 5000, store: 'memory' },
    ...over,
  });
  await w.startController();
  w.openLive(live, { kind: 'fixed', s: 3600 });
  w.startTraffic();
  await w.advance(1500);
  return w;
}

const cm = (w: World) => {
  const c = w.controller?.changeManager('sw1');
  assert.ok(c);
  return c;
};

/** Every reset counted by flowpin or unseen, none protected, after every live connection sent again. */
async function assertPromiseKept(w: World): Promise<ReturnType<World['audit']>> {
  await w.advance(2500);
  const a = w.audit();
  assert.equal(a.brokenProtected, 0, a.details.join('\n'));
  assert.equal(a.uncounted, 0, a.details.join('\n'));
  return a;
}

const metric = async (w: World, name: string, match = ''): Promise<number> => {
  const text = w.controller === undefined ? '' : await w.controller.metrics.registry.metrics();
  let n = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name) && line.includes(match)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
};

describe('resolution by observation', () => {
  for (const [shared, replyDelayMs] of [
    [false, 0.2],
    [true, 0.2],
    [false, 100],
  ] as const) {
    test(
      `observe, no look-up capability${shared ? ', servers behind one shared VLAN interface' : ''}, replies ${replyDelayMs} ms after the SYN: a drain then an addition under traffic reset no protected connection`,
      { timeout: 90_000 },
      async () => {
        // Catches: replies ignored (every flow unresolved: the drain's flows counted at risk and
        // reset); the reply's MAC not mapped to its server; a barrier that does not wait for
        // replies (with slow replies, flows seen before the mark are pinned too late, uncounted).
        const w = await world({
          sharedInterface: shared,
          rate: 2000,
          replyDelayMs,
          clientRttMs: replyDelayMs + 50,
        });
        try {
          const rt = w.controller?.runtime('sw1');
          assert.ok(rt);
          assert.equal(rt.adapter.capabilities.resolvesNexthop, false);
          const onNh = rt.flowsOn(VIP, NH[1] as string).length;
          assert.ok(onNh > 300, `only ${onNh} flows learnt on ${NH[1]} by observation`);
          const drain = (await w.settle(
            cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
            20_000,
          )) as ChangeRecord;
          assert.equal(drain.phase, 'applied', drain.error);
          assert.equal(measured(drain.atRisk), 0, JSON.stringify(drain.atRiskBy));
          assert.ok(measured(drain.pinned) >= onNh, `${measured(drain.pinned)} pins for ${onNh} flows`);
          await w.advance(1500);
          const add = (await w.settle(
            cm(w).add(VIP, SPARE, { maxAtRisk: 'unbounded' }),
            20_000,
          )) as ChangeRecord;
          assert.equal(add.phase, 'complete', add.error);
          assert.equal(measured(add.atRisk), 0, JSON.stringify(add.atRiskBy));
          const a = await assertPromiseKept(w);
          // Resets left: handshakes completed before the pin of a SYN in the change window was programmed,
          // each counted.
          assert.ok(
            a.broken <= measured(drain.windowFlows) + measured(add.windowFlows),
            `${a.broken} resets; window ${measured(drain.windowFlows)} + ${measured(add.windowFlows)}`,
          );
          assert.equal(
            w.adapters.get('sw1')?.stats.byCall['resolve'] ?? 0,
            0,
            'no look-up call reached the switch',
          );
          assert.equal(await metric(w, 'flowpin_reply_unknown_server_total'), 0);
        } finally {
          await w.close();
        }
      },
    );
  }

  for (const replyDelayMs of [0.2, 20])
    test(
      `both, with a wrong hash model in the look-up, replies ${replyDelayMs < 5 ? 'before' : 'after'} the look-up answers: every disagreement counted, the observation wins, nothing breaks`,
      { timeout: 90_000 },
      async () => {
        // Catches: a look-up answer that overrides the observation, or an observation that does not
        // override an earlier look-up answer (the drain then pins the wrong flows: resets).
        const w = await world({ resolution: 'both', lookup: 'wrong-hash', rate: 1500, replyDelayMs });
        try {
          const rt = w.controller?.runtime('sw1');
          assert.ok(rt);
          const flows = w.sw('sw1').traffic.liveConnections();
          const model = new SimAdapter(w.sw('sw1').sw, { lookup: 'wrong-hash' });
          let wrong = 0;
          for (const c of flows) {
            const nh = (
              await model.resolve([{ family: 4, src: c.src, dst: c.dst, sport: c.sport, dport: c.dport }])
            )[0];
            if (nh !== c.server) wrong++;
          }
          assert.ok(wrong > flows.length / 2, `the wrong model disagrees on ${wrong} of ${flows.length}`);
          const disagreements = await metric(w, 'flowpin_resolution_disagreements_total');
          // One SYN in COMPARE_EVERY is looked up to compare (the others only where their reply does not
          // come).
          assert.ok(
            disagreements > 0 && disagreements >= (wrong / COMPARE_EVERY) * 0.6,
            `${disagreements} disagreements counted for ${wrong} live flows the model gets wrong (1 in ${COMPARE_EVERY} compared)`,
          );
          // The flow table holds what the servers answered.
          let right = 0;
          for (const c of flows) if (rt.flowsOn(VIP, c.server).length > 0) right++;
          const onNh = new Set(rt.flowsOn(VIP, NH[2] as string));
          const truly = flows.filter((c) => c.server === NH[2]).length;
          assert.ok(
            Math.abs(onNh.size - truly) <= truly * 0.02 + 5,
            `${onNh.size} flows on ${NH[2]} in the table, ${truly} on the server`,
          );
          assert.ok(right > 0);
          const drain = (await w.settle(
            cm(w).drain(VIP, NH[2] as string, { maxAtRisk: 'unbounded' }),
            20_000,
          )) as ChangeRecord;
          assert.equal(drain.phase, 'applied', drain.error);
          const a = await assertPromiseKept(w);
          assert.ok(
            a.broken <= measured(drain.windowFlows),
            `${a.broken} resets, ${measured(drain.windowFlows)} window flows`,
          );
        } finally {
          await w.close();
        }
      },
    );

  test(
    'observe on a switch that can look up: SYNs whose reply never comes are looked up after the reply timeout; the barrier stays bounded',
    { timeout: 90_000 },
    async () => {
      // Catches: a fallback that never fires (flows stay unresolved, the drain's barrier waits
      // for ever or its flows are unprotected); a barrier that ignores flows awaiting replies.
      const w = await world({ lookup: 'exact', replyTimeoutMs: 200 });
      try {
        const rt = w.controller?.runtime('sw1');
        assert.ok(rt);
        assert.equal(w.adapters.get('sw1')?.stats.byCall['resolve'] ?? 0, 0, 'no look-up while replies come');
        w.sw('sw1').sw.replyMirror = undefined;
        await w.advance(1000);
        assert.ok(
          (w.adapters.get('sw1')?.stats.byCall['resolve'] ?? 0) > 0,
          'looked up once the replies stopped',
        );
        assert.ok((await metric(w, 'flowpin_reply_timeouts_total', 'then="lookup"')) > 100);
        assert.equal(rt.unresolvedOn(VIP).length, 0);
        const started = w.now;
        const drain = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          20_000,
        )) as ChangeRecord;
        assert.equal(drain.phase, 'applied', drain.error);
        assert.equal(measured(drain.atRisk), 0, JSON.stringify(drain.atRiskBy));
        assert.ok(
          (drain.appliedAt as number) - started < 1000,
          `applied ${(drain.appliedAt as number) - started} ms after the call`,
        );
        await assertPromiseKept(w);
      } finally {
        await w.close();
      }
    },
  );

  test(
    'server resets mirrored too (RST from the VIP): each change shows the resets seen after it',
    { timeout: 90_000 },
    async () => {
      // Catches: RSTs from a VIP taken as the end of a flow (or dropped), or resets counted
      // outside the change they followed.
      const w = await world({ replyTimeoutMs: 200 });
      try {
        const s = w.sw('sw1').sw;
        const mirror = s.replyMirror;
        assert.ok(mirror);
        s.replyMirrorRst = true;
        // For a second no SYN-ACK is mirrored: those flows stay unresolved, and a drain resets the ones it
        // moves.
        s.replyMirror = (p, from) => (p.flags === 0x04 ? mirror(p, from) : undefined);
        await w.advance(1000);
        s.replyMirror = mirror;
        await w.advance(500);
        const cmgr = cm(w);
        assert.deepEqual(
          cmgr.withResets().map((r) => r.resetsSeen),
          [],
          'no change yet',
        );
        const before = w.audit().broken;
        const drain = (await w.settle(
          cmgr.drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          20_000,
        )) as ChangeRecord;
        assert.equal(drain.phase, 'applied', drain.error);
        const a = await assertPromiseKept(w);
        assert.ok(a.broken - before > 0, 'the drain reset the unresolved flows it moved (counted at risk)');
        const seen = cmgr.withResets().find((r) => r.id === drain.id)?.resetsSeen;
        assert.equal(
          seen,
          a.broken - before,
          'every reset after the drain was seen on the reply mirror and counted to it',
        );
        assert.equal(await metric(w, 'flowpin_server_resets_total'), seen);
      } finally {
        await w.close();
      }
    },
  );

  test(
    'no look-up and no mirrored replies: the dry run says servers cannot be learnt, and every live flow is at risk',
    { timeout: 60_000 },
    async () => {
      const w = await world({ mirrorReplies: false, resolution: 'lookup' }, {}, 300);
      try {
        const dry = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { dryRun: true }),
          20_000,
        )) as DryRunReport;
        assert.equal(dry.resolution, 'none');
        assert.ok(dry.atRiskBy.unresolved > 0 && dry.flowsToPin === 0, JSON.stringify(dry));
      } finally {
        await w.close();
      }
    },
  );

  test(
    'observe with no look-up: SYNs whose reply never comes are counted unresolved, at risk in a change, never guessed',
    { timeout: 90_000 },
    async () => {
      // Catches: a reply timeout that drops the flow silently (its reset would go uncounted).
      const w = await world({ replyTimeoutMs: 200 });
      try {
        const rt = w.controller?.runtime('sw1');
        assert.ok(rt);
        w.sw('sw1').sw.replyMirror = undefined;
        await w.advance(1000);
        const unresolved = rt.unresolvedOn(VIP).length;
        assert.ok(unresolved > 100, `${unresolved} flows counted unresolved`);
        assert.ok((await metric(w, 'flowpin_reply_timeouts_total', 'then="unresolved"')) >= unresolved);
        const dry = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { dryRun: true }),
          20_000,
        )) as DryRunReport;
        assert.equal(dry.resolution, 'observe', 'the dry run says how servers are learnt');
        assert.ok(dry.atRiskBy.unresolved > 0, JSON.stringify(dry.atRiskBy));
        const drain = (await w.settle(
          cm(w).drain(VIP, NH[1] as string, { maxAtRisk: 'unbounded' }),
          20_000,
        )) as ChangeRecord;
        assert.equal(drain.phase, 'applied', drain.error);
        assert.ok(drain.atRiskBy.unresolved >= unresolved, JSON.stringify(drain.atRiskBy));
        const a = await assertPromiseKept(w);
        assert.ok(a.broken > 0, 'flows with unknown servers on the drained nexthop were reset (and counted)');
      } finally {
        await w.close();
      }
    },
  );

  test(
    'a server whose MAC changes: its replies are counted unknown, the map is read again, and its flows are learnt again',
    { timeout: 90_000 },
    async () => {
      // Catches: a stale identity map (never re-read: every later flow of that server unresolved)
      // and an unknown MAC guessed instead of counted.
      const w = await world({ replyTimeoutMs: 500, replyEncap: 'erspan1' });
      try {
        const rt = w.controller?.runtime('sw1');
        assert.ok(rt);
        w.sw('sw1').sw.setServerMac(NH[0] as string, '02:aa:bb:cc:dd:01');
        await w.advance(300);
        const unknown = await metric(w, 'flowpin_reply_unknown_server_total', 'reason="unknown-mac"');
        assert.ok(unknown > 0, 'replies from the new MAC counted unknown');
        await w.advance(2000);
        const later = await metric(w, 'flowpin_reply_unknown_server_total', 'reason="unknown-mac"');
        await w.advance(1000);
        assert.equal(
          await metric(w, 'flowpin_reply_unknown_server_total', 'reason="unknown-mac"'),
          later,
          'no unknown MAC once the map was read again',
        );
        assert.equal(rt.identity?.lookup('02:aa:bb:cc:dd:01', undefined).nexthop, NH[0]);
        // Flows opened since are resolved: nothing new is left unresolved.
        const before = rt.unresolvedOn(VIP).length;
        await w.advance(1000);
        assert.equal(rt.unresolvedOn(VIP).length, before);
      } finally {
        await w.close();
      }
    },
  );
});
