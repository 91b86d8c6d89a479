// End to end on the real kernel: hundreds of long-lived TCP connections (IPv4 and IPv6) through
// a Linux router in network namespaces, one server drained and a fifth added while they run.
// Without flowpin the drained server's connections and those in the moved buckets break (and
// exactly the flows the adapter predicted for the add); with flowpin none breaks, every byte
// comes back, and the drained server ends with no connection and gets no new one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LAB_VIP4, LAB_VIP6, LabTopology, labNamespaces } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import type { FlowSpec } from '../switch-adapters/contract.js';
import { have, isRoot, repoRoot, skipUnless } from './helpers/tools.js';
import { labAdapter, labController, SWITCH, until, withWarmTraffic } from './helpers/linux-lab.js';
import type { Controller } from '../controller/controller.js';

const PREFIX = 'fpe2e';
const V4 = 300;
const V6 = 150;
const skip = skipUnless(isRoot() && have('nft', ['-v']) && have('ip', ['-V']) && have('/usr/bin/python3', ['-c', 'import ctypes']), 'root with nft, ip and python3');

const flowKey = (f: { src: string; sport: number }): string => `${f.src}|${f.sport}`;

test('without flowpin: a drain and an add break connections, the add exactly those in the predicted buckets', { skip, timeout: 60_000 }, async () => {
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
    assert.ok(afterDrain.broken > 0, 'the drain broke the drained server\'s connections');
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
    process.stdout.write(`# without flowpin: drain broke ${afterDrain.broken}, add broke ${brokenByAdd.size} (predicted ${predicted.size}) of ${V4 + V6}\n`);
    assert.ok(brokenByAdd.size > 0, 'the add broke connections in the moved buckets');
    assert.deepEqual([...brokenByAdd].sort(), [...predicted].sort(), 'the add broke exactly the predicted flows');
  } finally {
    traffic.stop();
    lab.destroy();
  }
  assert.deepEqual(labNamespaces(PREFIX).filter((n) => n.includes(`-${process.pid}-`)), []);
});

test('with flowpin: no connection reset or stalled across a drain and an add, every byte echoed', { skip, timeout: 90_000 }, async () => {
  const lab = await LabTopology.create({ prefix: PREFIX });
  const traffic = new LabTraffic(lab);
  let controller: Controller | undefined;
  try {
    controller = await labController(lab, { replies: true });
    const c = controller;
    await withWarmTraffic(lab, until('the controller to be ready', 30_000, () => c.readiness().ready));
    const opened = await traffic.open(lab, V4, V6, { stallMs: 3000 });
    assert.equal(opened.open4 + opened.open6, V4 + V6, 'every connection established');
    await until('every connection tracked and resolved', 20_000, () => (c.readiness().switches[0]?.flows ?? 0) >= V4 + V6);
    const drained = lab.servers[1];
    const fifth = lab.servers[4];
    assert.ok(drained && fifth);
    const cm = c.changeManager(SWITCH);
    await cm.drain(LAB_VIP4, drained.addr4, { maxAtRisk: 'unbounded' });
    await cm.drain(LAB_VIP6, drained.addr6, { maxAtRisk: 'unbounded' });
    await cm.add(LAB_VIP4, fifth.addr4, { maxAtRisk: 'unbounded' });
    await cm.add(LAB_VIP6, fifth.addr6, { maxAtRisk: 'unbounded' });
    await new Promise((r) => setTimeout(r, 2500));
    const mid = await traffic.report();
    assert.equal(mid.broken, 0, `broken: ${JSON.stringify(mid.reasons)}`);
    assert.ok(lab.serverConnections(drained) > 0, 'the drained server still serves its pinned connections');
    const closed = await traffic.close();
    process.stdout.write(`# with flowpin: broken ${closed.broken} of ${closed.opened}, sent ${closed.sent} B, echoed ${closed.echoed} B\n`);
    assert.equal(closed.broken, 0, `broken: ${JSON.stringify(closed.reasons)}`);
    assert.equal(closed.echoed, closed.sent, 'every byte echoed');
    await until('the drains to complete', 20_000, () => cm.records.filter((r) => r.kind === 'drain').every((r) => r.phase === 'drained'));
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
  }
  assert.deepEqual(labNamespaces(PREFIX).filter((n) => n.includes(`-${process.pid}-`)), []);
});

/** The client ends of the open connections, from the client namespace's sockets. */
async function openPorts(lab: LabTopology, _t: LabTraffic): Promise<FlowSpec[]> {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync('ip', ['netns', 'exec', lab.client, 'ss', '-Htn', 'state', 'established']).toString();
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
    flows.push({ family: dst.includes(':') ? 6 : 4, src, dst, sport: Number(local.slice(li + 1)), dport: Number(peer.slice(pi + 1)) });
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
    const res = spawnSync(process.execPath, ['--expose-gc', path.join(repoRoot, 'dist/bench/run.js'), '--tiny', '--out', dir, 'linux'], { encoding: 'utf8', timeout: 230_000 });
    assert.equal(res.status, 0, res.stderr + res.stdout);
    const results = JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) as { figures: { id: string; value: number }[] };
    const byId = new Map(results.figures.map((f) => [f.id, f.value]));
    for (const id of ['linux.lookups_per_s', 'linux.nft_tx_ms_1000', 'linux.pins_per_s_1000', 'linux.list_ms_1000', 'linux.syn_to_pin_p50_ms', 'linux.syn_to_pin_p99_ms']) {
      assert.ok((byId.get(id) ?? 0) > 0, `${id}: ${byId.get(id)}`);
    }
    assert.equal(byId.get('linux.broken_with'), 0, 'no connection broken with flowpin');
    assert.ok((byId.get('linux.broken_without') ?? 0) > 0, 'the switch alone breaks connections');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
