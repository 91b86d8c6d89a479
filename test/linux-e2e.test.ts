// End to end on the real kernel: hundreds of long-lived TCP connections (IPv4 and IPv6) through
// a Linux router in network namespaces, one server drained and a fifth added while they run.
// Without flowpin the drained server's connections and those in the moved buckets break (and
// exactly the flows the adapter predicted for the add); with flowpin none breaks, not across a
// restart of flowpin right after the changes, nor connections the clients half-close while the
// drains wait and their servers go on sending; every byte comes back, and the drained server ends with
// no connection and gets no new one. The router mirrors both directions, its dual-stack servers
// answer from one MAC, and pins idle out after a pinIdleTimeoutS other than the default.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  LAB_HALF_PORT,
  LAB_VIP4,
  LAB_VIP6,
  LabTopology,
  labNamespaces,
} from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import type { FlowSpec } from '../switch-adapters/contract.js';
import { have, isRoot, repoRoot, skipUnless } from './helpers/tools.js';
import { labAdapter, labController, SWITCH, withWarmTraffic } from '../cli/lab-controller.js';
import { until } from '../lib/until.js';
import type { Controller } from '../controller/controller.js';
import { valueOf } from '../controller/metrics.js';

const PREFIX = 'fpe2e';
const V4 = 300;
const V6 = 150;
/** Connections the clients half-close before the changes, and how long their servers then go on sending. */
const H4 = 30;
const H6 = 15;
const TAIL_MS = 12_000;
/** pinIdleTimeoutS in the run with flowpin (not the default 300). */
const IDLE_S = 60;
const skip = skipUnless(
  isRoot() && have('nft', ['-v']) && have('ip', ['-V']) && have('/usr/bin/python3', ['-c', 'import ctypes']),
  'root with nft, ip and python3',
);

const flowKey = (f: { src: string; sport: number }): string => `${f.src}|${f.sport}`;

test(
  'without flowpin: a drain and an add break connections, the add exactly those in the predicted buckets',
  { skip, timeout: 60_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: PREFIX });
    const traffic = new LabTraffic(lab);
    try {
      const adapter = labAdapter(lab);
      await withWarmTraffic(lab, adapter.connect());
      const opened = await traffic.open(lab, V4, V6);
      assert.equal(opened.open4 + opened.open6, V4 + V6, 'every connection established');
      const drained = lab.servers[1];
      const fifth = lab.servers[4];
      assert.ok(drained && fifth);
      await adapter.removeGroupMember(LAB_VIP4, drained.addr4);
      await adapter.removeGroupMember(LAB_VIP6, drained.addr6);
      await new Promise((r) => setTimeout(r, 1500));
      const afterDrain = await traffic.report();
      assert.ok(afterDrain.broken > 0, "the drain broke the drained server's connections");
      // Prediction for the add, from the real bucket table, over the connections still open.
      const brokenBefore = new Set(afterDrain.brokenFlows.map(flowKey));
      const live: FlowSpec[] = [];
      const ports = await openPorts(lab, traffic);
      for (const f of ports) if (!brokenBefore.has(flowKey(f))) live.push(f);
      const v4 = live.filter((f) => f.family === 4);
      const v6 = live.filter((f) => f.family === 6);
      const p4 = await adapter.movedByAdd(LAB_VIP4, fifth.addr4, v4);
      const p6 = await adapter.movedByAdd(LAB_VIP6, fifth.addr6, v6);
      const predicted = new Set([...v4.filter((_, i) => p4[i]), ...v6.filter((_, i) => p6[i])].map(flowKey));
      await adapter.addGroupMember(LAB_VIP4, fifth.addr4);
      await adapter.addGroupMember(LAB_VIP6, fifth.addr6);
      await new Promise((r) => setTimeout(r, 1500));
      const afterAdd = await traffic.report();
      const brokenByAdd = new Set(afterAdd.brokenFlows.map(flowKey).filter((k) => !brokenBefore.has(k)));
      process.stdout.write(
        `# without flowpin: drain broke ${afterDrain.broken}, add broke ${brokenByAdd.size} (predicted ${predicted.size}) of ${V4 + V6}\n`,
      );
      assert.ok(brokenByAdd.size > 0, 'the add broke connections in the moved buckets');
      assert.deepEqual(
        [...brokenByAdd].sort(),
        [...predicted].sort(),
        'the add broke exactly the predicted flows',
      );
    } finally {
      traffic.stop();
      lab.destroy();
    }
    assert.deepEqual(
      labNamespaces(PREFIX).filter((n) => n.includes(`-${process.pid}-`)),
      [],
    );
  },
);

test(
  'with flowpin: no connection reset or stalled across a drain, an add, a restart right after and half-closes while the drains wait; every byte echoed',
  { skip, timeout: 150_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: PREFIX, tailMs: TAIL_MS });
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-linux-e2e-'));
    const traffic = new LabTraffic(lab);
    let controller: Controller | undefined;
    // Servers reply from one MAC for both families; the router mirrors both directions; pins idle out after
    // IDLE_S.
    const options = { replies: true, pinIdleTimeoutS: IDLE_S, stateFile: path.join(dir, 'state') };
    try {
      controller = await labController(lab, options);
      let c = controller;
      await withWarmTraffic(
        lab,
        until('the controller to be ready', 30_000, () => c.readiness().ready),
      );
      const nft = (...what: string[]): string =>
        execFileSync('ip', ['netns', 'exec', lab.router, 'nft', 'list', ...what]).toString();
      assert.match(
        nft('map', 'inet', 'flowpin', 'pins4'),
        /^\s*timeout 1m$/m,
        'the IPv4 pins idle out after pinIdleTimeoutS',
      );
      assert.match(
        nft('set', 'inet', 'flowpin', 'seen6'),
        /^\s*timeout 1m$/m,
        'the IPv6 pins idle out after pinIdleTimeoutS',
      );
      const opened = await traffic.open(lab, V4, V6, { stallMs: 3000 });
      assert.equal(opened.open4 + opened.open6, V4 + V6, 'every connection established');
      const halfOpened = await traffic.open(lab, H4, H6, { stallMs: 3000, port: LAB_HALF_PORT });
      assert.equal(
        halfOpened.open4 + halfOpened.open6,
        V4 + V6 + H4 + H6,
        'every half-close connection established',
      );
      await until(
        'every connection tracked and resolved',
        20_000,
        () => (c.readiness().switches[0]?.flows ?? 0) >= V4 + V6 + H4 + H6,
      );
      // The servers' replies named them, though each answers from one MAC for both families.
      const observed =
        (await valueOf(c.metrics.replies, { switch: SWITCH, result: 'resolved' })) +
        (await valueOf(c.metrics.replies, { switch: SWITCH, result: 'agree' }));
      assert.ok(observed >= V4 + V6, `replies resolved or confirmed flows: ${observed}`);
      assert.equal(
        await valueOf(c.metrics.unknownServer, { switch: SWITCH, reason: 'ambiguous-mac' }),
        0,
        'no reply ambiguous by its MAC',
      );
      const drained = lab.servers[1];
      const fifth = lab.servers[4];
      assert.ok(drained && fifth);
      const cm = c.changeManager(SWITCH);
      const t0 = performance.now();
      await cm.drain(LAB_VIP4, drained.addr4, { maxAtRisk: 'unbounded' });
      await cm.drain(LAB_VIP6, drained.addr6, { maxAtRisk: 'unbounded' });
      await cm.add(LAB_VIP4, fifth.addr4, { maxAtRisk: 'unbounded' });
      await cm.add(LAB_VIP6, fifth.addr6, { maxAtRisk: 'unbounded' });
      process.stdout.write(
        `# four changes applied (each call answers once applied) in ${Math.round(performance.now() - t0)} ms\n`,
      );
      for (const r of cm.withResets())
        assert.ok(
          (r.windowFlows ?? 0) >= (r.resetsSeen ?? 0),
          `${r.kind} ${r.nexthop}: windowFlows ${r.windowFlows} below the resets seen ${r.resetsSeen}`,
        );
      const mid = await traffic.report();
      assert.equal(mid.broken, 0, `broken: ${JSON.stringify(mid.reasons)}`);
      assert.ok(lab.serverConnections(drained) > 0, 'the drained server still serves its pinned connections');
      // A restart within seconds of the changes: the new process resumes them and starts (its
      // hashing check does not take SYNs forwarded before the changes for disagreements).
      await c.stop();
      const t1 = performance.now();
      // New connections keep coming meanwhile (the hashing check needs SYNs forwarded since the start).
      controller = await withWarmTraffic(lab, labController(lab, options));
      c = controller;
      await withWarmTraffic(
        lab,
        until('the restarted controller to be ready', 30_000, () => c.readiness().ready),
      );
      process.stdout.write(`# restarted and ready in ${Math.round(performance.now() - t1)} ms\n`);
      // While the drains wait for their connections, clients shut their side of some; the servers
      // go on sending for TAIL_MS: their pins must stay until both sides have closed.
      const half = await traffic.halfClose(TAIL_MS + 10_000);
      assert.equal(half.halfClosed, H4 + H6);
      await until('the tails to flow', 10_000, async () => (await traffic.report()).tailBytes > 0);
      await until('a drain to have only half-closed connections left', TAIL_MS, () => {
        const d = c.changeManager(SWITCH).records.find((r) => r.kind === 'drain' && r.vip === LAB_VIP4);
        return d?.phase === 'applied' && lab.serverConnections(drained) > 0;
      });
      const closed = await traffic.close(TAIL_MS + 30_000);
      process.stdout.write(
        `# with flowpin: broken ${closed.broken} of ${closed.opened} (${H4 + H6} half-closed, ${closed.tailBytes} B of tails), sent ${closed.sent} B, echoed ${closed.echoed} B\n`,
      );
      assert.equal(closed.broken, 0, `broken: ${JSON.stringify(closed.reasons)}`);
      assert.equal(closed.echoed, closed.sent, 'every byte echoed');
      const cm2 = c.changeManager(SWITCH);
      await until('the drains to complete', 30_000, () =>
        cm2.records.filter((r) => r.kind === 'drain').every((r) => r.phase === 'drained'),
      ).catch((err: unknown) => {
        throw new Error(
          `${String(err)}: ${JSON.stringify(cm2.records.map((r) => ({ kind: r.kind, nexthop: r.nexthop, phase: r.phase, left: r.left, resumed: r.resumed })))}; mirror ${JSON.stringify(c.readiness().switches[0]?.mirror)}`,
        );
      });
      assert.equal(lab.serverConnections(drained), 0, 'the drained server holds no connection');
      const fresh = new LabTraffic(lab);
      try {
        const o = await fresh.open(lab, 40, 20);
        assert.equal(o.open4 + o.open6, 60);
        assert.equal(lab.serverConnections(drained), 0, 'the drained server gets no new connection');
        assert.ok(lab.serverConnections(fifth) > 0, 'the added server gets new connections');
      } finally {
        fresh.stop();
      }
    } finally {
      traffic.stop();
      await controller?.stop();
      lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(
      labNamespaces(PREFIX).filter((n) => n.includes(`-${process.pid}-`)),
      [],
    );
  },
);

/** The client ends of the open connections, from the client namespace's sockets. */
async function openPorts(lab: LabTopology, _t: LabTraffic): Promise<FlowSpec[]> {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync('ip', [
    'netns',
    'exec',
    lab.client,
    'ss',
    '-Htn',
    'state',
    'established',
  ]).toString();
  const flows: FlowSpec[] = [];
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    const local = cols[2];
    const peer = cols[3];
    if (local === undefined || peer === undefined) continue;
    const li = local.lastIndexOf(':');
    const pi = peer.lastIndexOf(':');
    const src = local.slice(0, li).replace(/^\[|\]$/g, '');
    const dst = peer.slice(0, pi).replace(/^\[|\]$/g, '');
    if (dst !== LAB_VIP4 && dst !== LAB_VIP6) continue;
    flows.push({
      family: dst.includes(':') ? 6 : 4,
      src,
      dst,
      sport: Number(local.slice(li + 1)),
      dport: Number(peer.slice(pi + 1)),
    });
  }
  return flows;
}

// The Linux benchmark keeps working: its tiny version runs here, after the lab tests of this
// file (one lab at a time), into a scratch directory. Figures are checked for presence and
// the broken-connection count with flowpin, never for speed.
test('tiny Linux router benchmark runs and records its section', { skip, timeout: 240_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-bench-linux-'));
  try {
    writeFileSync(path.join(dir, 'README.md'), '# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n');
    const res = spawnSync(
      process.execPath,
      ['--expose-gc', path.join(repoRoot, 'dist/bench/run.js'), '--tiny', '--out', dir, 'linux'],
      { encoding: 'utf8', timeout: 230_000 },
    );
    assert.equal(res.status, 0, res.stderr + res.stdout);
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as {
      figures: { id: string; value: number }[];
    };
    const byId = new Map(results.figures.map((f) => [f.id, f.value]));
    for (const id of [
      'linux.lookups_per_s',
      'linux.nft_tx_ms_1000',
      'linux.pins_per_s_1000',
      'linux.list_ms_1000',
      'linux.syn_to_pin_p50_ms',
      'linux.syn_to_pin_p99_ms',
    ]) {
      assert.ok((byId.get(id) ?? 0) > 0, `${id}: ${byId.get(id)}`);
    }
    assert.equal(byId.get('linux.broken_with'), 0, 'no connection broken with flowpin');
    assert.ok((byId.get('linux.broken_without') ?? 0) > 0, 'the switch alone breaks connections');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
