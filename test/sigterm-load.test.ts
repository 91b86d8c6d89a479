// Stays answerable and stoppable: `flowpin run` in its own process, the switch simulator in
// another (it keeps the pins), mirrored SYNs from a third (bench/mirror-sender, bounded in
// count and time). Under that load the API and /healthz answer (the test asserts that they
// answer; the times go to docs/reliability.md) after a drain, and SIGTERM ends flowpin
// within a bound with its state written (the drain's record, the tracked flows) and the pins
// left on the switch. Readiness reports the process memory beside the configured bounds, and
// the flows tracked stay within flowTable.maxFlows (set below the sender's distinct flows).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileStateStore, loadState } from '../controller/state-store.js';
import { recordFigures } from '../reliability/figures.js';
import { sendMirror, startFlowpin, startSim, type Proc } from './helpers/processes.js';

const TOKEN = 'load-test';
const MAX_FLOWS = 2500;
/**
 * Frames and rate of the load: bounded in count (and by the sender to 60 s). Within `npm test`
 * (two files at a time on a shared box) 10,000/s; `npm run reliability` runs it alone at 20,000/s.
 */
const FRAMES = Number(process.env['FLOWPIN_LOAD_FRAMES'] ?? 100_000);
const RATE = Number(process.env['FLOWPIN_LOAD_RATE'] ?? 10_000);
/** SIGTERM must end flowpin within this (the bound is 2 s; the test allows for a loaded CI box). */
const STOP_BOUND_MS = 10_000;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number);
};

test(
  'under mirror load: API and /healthz answer; SIGTERM ends flowpin with state written and pins left on the switch',
  { timeout: 180_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-load-'));
    const procs: Proc[] = [];
    try {
      const sim = await startSim(dir);
      procs.push(sim);
      const state = path.join(dir, 'state');
      const fp = await startFlowpin(dir, sim, {
        token: TOKEN,
        stateFile: state,
        extra: [
          'mirror: { udp: [{ host: 127.0.0.1, port: 0 }] }',
          `flowTable: { maxFlows: ${MAX_FLOWS}, maxAgeS: 600 }`,
          'resolveQueue: 20000',
          'settleMs: 50',
          'barrierTimeoutMs: 10000',
          'resyncIntervalS: 2',
          'persistIntervalS: 3600',
        ],
      });
      procs.push(fp);
      const api = fp.api;
      const port = fp.mirrorPort;

      // A first, light mirror load: flows learned on every nexthop, then a drain (its pins stay on the
      // switch).
      const warm = sendMirror(port, 2000, 1000);
      procs.push(warm);
      await warm.result();
      const drain = await fetch(`${api}/api/v1/switches/sim1/vips/192.0.2.80/nexthops/10.0.1.2/drain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: '{"maxAtRisk":"unbounded"}',
        signal: AbortSignal.timeout(30_000),
      });
      const drained = (await drain.json()) as { id?: string; phase?: string; pinned?: number };
      assert.equal(drain.status, 202, JSON.stringify(drained));
      const drainId = drained.id as string;
      assert.ok((drained.pinned ?? 0) > 0, JSON.stringify(drained));

      // The load: the sender process as fast as RATE, while the API is probed.
      const sender = sendMirror(port, FRAMES, RATE);
      procs.push(sender);
      const sendStart = Date.now();
      // Every answer must arrive (times recorded, not asserted).
      const health: number[] = [];
      const reads: number[] = [];
      let failures = 0;
      let rssPeak = 0;
      let flowsPeak = 0;
      const probe = async (url: string, into: number[]): Promise<unknown> => {
        const t0 = performance.now();
        const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
        const body: unknown = await res.json();
        into.push(performance.now() - t0);
        if (res.status !== 200 && !url.endsWith('/readyz')) failures++;
        return body;
      };
      let pinsAtTerm = 0;
      let stopMs = 0;
      const termAfterMs = Math.min(8000, (FRAMES / RATE) * 700);
      while (Date.now() - sendStart < termAfterMs) {
        await probe(`${api}/healthz`, health);
        const sw = (await probe(`${api}/api/v1/switches`, reads)) as { switches: { flows: number }[] };
        flowsPeak = Math.max(flowsPeak, sw.switches[0]?.flows ?? 0);
        const ready = (await probe(`${api}/readyz`, reads)) as {
          memory?: { rssBytes: number; maxFlows: number; flows: number };
        };
        assert.ok(ready.memory !== undefined, 'readiness reports memory');
        rssPeak = Math.max(rssPeak, ready.memory.rssBytes);
        assert.equal(ready.memory.maxFlows, MAX_FLOWS);
        assert.ok(
          ready.memory.flows <= MAX_FLOWS,
          `${ready.memory.flows} flows tracked past the bound ${MAX_FLOWS}`,
        );
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(sender.child.exitCode, null, 'SIGTERM comes while the sender still sends');
      pinsAtTerm = await sim.pins();
      assert.ok(pinsAtTerm > 0, 'the drain left pins on the switch');
      const metrics = await (await fetch(`${api}/metrics`)).text();
      assert.ok(
        Number(/flowpin_memory_bytes\{kind="rss"\} (\d+)/.exec(metrics)?.[1] ?? 0) > 0,
        'RSS in /metrics',
      );
      assert.match(metrics, new RegExp(`flowpin_flow_table_max ${MAX_FLOWS}`));
      const termAt = Date.now();
      const t0 = performance.now();
      fp.child.kill('SIGTERM');
      const stopped = await Promise.race([
        fp.exit,
        new Promise<null>((r) => setTimeout(() => r(null), STOP_BOUND_MS)),
      ]);
      stopMs = performance.now() - t0;
      assert.ok(stopped !== null, `flowpin did not end within ${STOP_BOUND_MS} ms of SIGTERM under load`);
      assert.equal(stopped[0], 0, fp.out());
      const sent = await sender.result();
      // State written: the drain's record (applied, to resume) and the tracked flows.
      const saved = loadState(new FileStateStore(state));
      assert.ok(saved !== undefined, 'state written');
      // The snapshot of the tracked flows is written at the stop (the periodic write is an hour away).
      assert.ok(
        saved.savedAt !== undefined && saved.savedAt >= termAt,
        `flows snapshot written at the stop (savedAt ${saved.savedAt ?? 'none'}, SIGTERM at ${termAt})`,
      );
      const rec = saved.changes['sim1']?.find((r) => r.id === drainId);
      assert.equal(rec?.phase, 'applied', JSON.stringify(rec));
      const savedFlows = new Set(saved.flows.flatMap((g) => g.keys)).size;
      assert.ok(savedFlows > 0, 'tracked flows written');
      // Pins stay on the switch: the simulator (its own process) still holds them.
      const pinsAfter = await sim.pins();
      assert.ok(
        pinsAfter >= pinsAtTerm,
        `pins left on the switch: ${pinsAfter} after, ${pinsAtTerm} at SIGTERM`,
      );
      assert.ok(health.length > 0 && reads.length > 0);
      assert.equal(failures, 0, 'every answer was a 200');
      recordFigures({
        fault: 'SIGTERM under mirror load',
        test: 'test/sigterm-load.test.ts',
        outcome: `every API and /healthz request answered; SIGTERM ended flowpin in ${Math.round(stopMs)} ms (exit 0) with the drain record and ${savedFlows} tracked flows written, ${pinsAfter} pins left on the switch`,
        inputs: sent.sent,
        broken: 0,
        brokenPromised: 0,
        figures: {
          'frames sent': sent.sent,
          'send rate (frames/s)': Math.round(sent.sent / sent.seconds),
          '/healthz answers': health.length,
          '/healthz p50 (ms)': Math.round(pct(health, 50)),
          '/healthz max (ms)': Math.round(Math.max(...health)),
          'API answers (switches, readyz)': reads.length,
          'API p50 (ms)': Math.round(pct(reads, 50)),
          'API p99 (ms)': Math.round(pct(reads, 99)),
          'API max (ms)': Math.round(Math.max(...reads)),
          'answers over 1 s': [...health, ...reads].filter((x) => x > 1000).length,
          'SIGTERM to exit (ms)': Math.round(stopMs),
          'RSS peak (MB)': Math.round(rssPeak / 1048576),
          'flows tracked peak': flowsPeak,
          'flowTable.maxFlows': MAX_FLOWS,
          'pins on the switch at SIGTERM': pinsAtTerm,
          'pins on the switch after exit': pinsAfter,
        },
      });
    } finally {
      for (const p of procs.reverse()) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
