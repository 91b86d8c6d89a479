// The API pieces the dashboard reads, through inject() against a running controller and the
// simulated eAPI switch: the flow filters by client port and by pinned, a flow's detail
// (seen times, nexthop, how it was learned, pin state, idle time left), and the drain
// estimate in the server-sent snapshot, computed from the pinned flows left.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../controller/api/app.js';
import { buildSnapshot } from '../controller/api/snapshot.js';
import { estimateDrain } from '../controller/drain-estimate.js';
import type { FlowDetail } from '../controller/api/flow-detail.js';
import { Bed, NH, VIP } from './helpers/bed.js';

const TOKEN = 'dash-api-token';
let bed: Bed | undefined;
let app: FastifyInstance | undefined;

interface FlowRow {
  switch: string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  nexthop: string | null;
  pinned: boolean;
  lastSeen: number;
}
interface Page {
  total: number;
  flows: FlowRow[];
}

const get = async <T>(url: string): Promise<{ status: number; body: T }> => {
  const r = await (app as FastifyInstance).inject({ method: 'GET', url });
  return { status: r.statusCode, body: r.json<T>() };
};
const detailUrl = (f: { src: string; sport: number; dst: string; dport: number }): string =>
  `/api/v1/flows/sw1/${encodeURIComponent(f.src)}/${f.sport}/${encodeURIComponent(f.dst)}/${f.dport}`;
const DRAINED = NH[1] as string;

before(async () => {
  // The controller on the simulator's clock: ages and idle times are simulated seconds.
  bed = await Bed.create({ pinMode: 'on-change', mirrorFinRst: true, virtualController: true });
  await bed.run(60);
  app = await buildApp({ controller: bed.controller as NonNullable<Bed['controller']>, token: TOKEN });
  // A drain pins the live flows of one nexthop: the others stay unpinned.
  const r = await bed.during(
    app.inject({
      method: 'POST',
      url: `/api/v1/switches/sw1/vips/${VIP}/nexthops/${DRAINED}/drain`,
      payload: { deadlineSeconds: 3600, maxAtRisk: 'unbounded' },
      headers: { authorization: `Bearer ${TOKEN}` },
    }),
  );
  assert.equal(r.statusCode, 202, r.body);
  // Past a periodic read of the pins: their counters have moved since the drain.
  await bed.run(40);
});
after(async () => {
  await app?.close();
  await bed?.close();
});

test('flows: filter by client port and by pinned, paged from the server', { timeout: 60_000 }, async () => {
  const all = (await get<Page>('/api/v1/flows?limit=1000')).body;
  assert.ok(all.total > 20);
  const pinned = (await get<Page>('/api/v1/flows?pinned=true&limit=1000')).body;
  const unpinned = (await get<Page>('/api/v1/flows?pinned=false&limit=1000')).body;
  assert.ok(pinned.total > 0 && unpinned.total > 0, `pinned ${pinned.total}, not pinned ${unpinned.total}`);
  assert.equal(pinned.total + unpinned.total, all.total);
  assert.ok(
    pinned.flows.every((f) => f.pinned && f.nexthop === DRAINED),
    "the pinned flows are the drained nexthop's",
  );
  assert.ok(unpinned.flows.every((f) => !f.pinned));
  const one = all.flows[3] as FlowRow;
  const byPort = (await get<Page>(`/api/v1/flows?port=${one.sport}&limit=1000`)).body;
  assert.ok(byPort.flows.some((f) => f.src === one.src && f.sport === one.sport));
  assert.ok(byPort.flows.every((f) => f.sport === one.sport));
  assert.equal(byPort.total, all.flows.filter((f) => f.sport === one.sport).length);
  const both = (
    await get<Page>(`/api/v1/flows?client=${one.src}&port=${one.sport}&pinned=${String(one.pinned)}`)
  ).body;
  assert.equal(both.total, 1);
  const paged = (await get<Page>('/api/v1/flows?pinned=false&limit=5&offset=5')).body;
  assert.equal(paged.flows.length, 5);
  assert.deepEqual(
    paged.flows.map((f) => `${f.src}:${f.sport}`),
    unpinned.flows.slice(5, 10).map((f) => `${f.src}:${f.sport}`),
  );
  assert.equal((await get<{ field: string }>('/api/v1/flows?port=70000')).status, 400);
  assert.equal((await get<{ field: string }>('/api/v1/flows?pinned=maybe')).status, 400);
});

test('flow detail: a pinned flow, an unpinned flow, and clear errors', { timeout: 60_000 }, async () => {
  const c = bed?.controller;
  assert.ok(c);
  const now = c.now();
  const pinnedRow = (await get<Page>('/api/v1/flows?pinned=true&limit=1')).body.flows[0] as FlowRow;
  const d = await get<FlowDetail>(detailUrl(pinnedRow));
  assert.equal(d.status, 200);
  assert.equal(d.body.nexthop, DRAINED);
  assert.equal(d.body.learned.how, 'look-up');
  assert.equal(d.body.pin.state, 'programmed');
  assert.match(d.body.pin.wantedFor ?? '', /\S/);
  assert.equal(d.body.lastSeen, pinnedRow.lastSeen);
  assert.ok(d.body.firstSeen <= d.body.lastSeen);
  const idle = c.timeouts.pinIdleS;
  assert.equal(d.body.idle.pinIdleTimeoutS, idle);
  const left = d.body.idle.pinLeftS;
  assert.ok(left !== null && left > 0 && left <= idle, `pin idle left ${String(left)} of ${idle}`);
  // Its idle time left is counted from the switch counter's last move, as flowpin read it.
  const inst = [...c.runtime('sw1').reconciler.installed.values()].find(
    (p) => p.flow.src === pinnedRow.src && p.flow.sport === pinnedRow.sport,
  );
  assert.ok(inst);
  assert.ok(
    inst.lastActive >
      (c
        .runtime('sw1')
        .reconciler.desired.get(`${pinnedRow.src}|${pinnedRow.sport}|${pinnedRow.dst}|${pinnedRow.dport}`)
        ?.since ?? Infinity),
    'its counter moved after the pin was asked for',
  );
  assert.ok(
    Math.abs((inst.lastActive + idle * 1000 - now) / 1000 - left) < 0.2,
    `pin left ${left} s against lastActive ${inst.lastActive}`,
  );
  assert.ok(d.body.idle.trackedLeftS > 0 && d.body.idle.trackedLeftS <= c.timeouts.flowMaxAgeS);

  const plain = (await get<Page>('/api/v1/flows?pinned=false&limit=1')).body.flows[0] as FlowRow;
  const p = (await get<FlowDetail>(detailUrl(plain))).body;
  assert.equal(p.pin.state, 'none');
  assert.equal(p.idle.pinLeftS, null);
  assert.equal(p.nexthop, plain.nexthop);

  const missing = await get<{ error: string }>(detailUrl({ ...plain, sport: plain.sport === 1 ? 2 : 1 }));
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error, 'not-found');
  assert.equal((await get<{ error: string }>(`/api/v1/flows/sw1/not-an-ip/1/${VIP}/443`)).status, 400);
  assert.equal(
    (await get<{ error: string }>(`/api/v1/flows/nope/${plain.src}/${plain.sport}/${VIP}/443`)).status,
    404,
  );
});

test(
  'drain estimate: from the pinned flows left, in the snapshot of a draining nexthop',
  { timeout: 60_000 },
  async () => {
    // Two flows left: one quiet since t=10 s, one active at t=40 s; idle timeout 30 s, now 50 s.
    const e = estimateDrain(
      [
        { since: 0, lastActive: 10_000 },
        { since: 20_000, lastActive: 40_000 },
      ],
      30,
      50_000,
    );
    assert.deepEqual(e, { pinned: 2, idleTimeoutS: 30, earliestS: 20, medianAgeS: 40, oldestAgeS: 50 });
    assert.equal(estimateDrain([], 30, 0).earliestS, 0);
    // A flow quiet for longer than the idle timeout is already due: not before now.
    assert.equal(estimateDrain([{ since: 0, lastActive: 0 }], 30, 100_000).earliestS, 0);

    const c = bed?.controller;
    assert.ok(c);
    const snap = buildSnapshot(c, undefined);
    const nhs = snap.switches[0]?.vips.find((v) => v.address === VIP)?.nexthops ?? [];
    const draining = nhs.find((n) => n.address === DRAINED);
    assert.equal(draining?.state, 'draining');
    const est = draining?.estimate;
    assert.ok(est);
    assert.equal(est.pinned, draining.pinned);
    assert.equal(est.idleTimeoutS, c.timeouts.pinIdleS);
    assert.ok(est.earliestS > 0 && est.earliestS <= c.timeouts.pinIdleS);
    assert.ok((est.oldestAgeS ?? 0) >= (est.medianAgeS ?? 0));
    // Ages run from each flow's SYN (seen before the drain asked for its pin), as the flow table has it.
    const pinnedFlows = (await get<Page>('/api/v1/flows?pinned=true&limit=1000')).body.flows;
    const oldest = (c.now() - Math.min(...pinnedFlows.map((f) => f.lastSeen))) / 1000;
    assert.ok(
      Math.abs((est.oldestAgeS ?? 0) - oldest) < 0.3,
      `oldest flow left ${String(est.oldestAgeS)} s old, flow table ${oldest} s`,
    );
    assert.ok(
      nhs.filter((n) => n.address !== DRAINED).every((n) => n.estimate === undefined),
      'only a draining nexthop has an estimate',
    );
    assert.ok(snap.mirror.frames > 0 && snap.mirror.decoded > 0, "the mirror receiver's counters");

    // The per-nexthop gauges at /metrics: pins on the drained nexthop only, flows on all.
    const text = (await (app as FastifyInstance).inject({ method: 'GET', url: '/metrics' })).body;
    for (const n of nhs) {
      const labels = `{switch="sw1",vip="${VIP}",nexthop="${n.address}"}`;
      assert.ok(
        text.includes(`flowpin_nexthop_pins${labels} ${n.pinned}\n`),
        `pins gauge of ${n.address}: ${n.pinned}`,
      );
      assert.ok(
        text.includes(`flowpin_nexthop_flows${labels} ${n.tracked}\n`),
        `flows gauge of ${n.address}: ${n.tracked}`,
      );
    }
    assert.ok(nhs.some((n) => n.address !== DRAINED && n.tracked > 0 && n.pinned === 0));
  },
);
