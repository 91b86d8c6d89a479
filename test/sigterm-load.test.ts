// Stays answerable and stoppable: `flowpin run` in its own process, the switch simulator in
// another (it keeps the pins), mirrored SYNs from a third (bench/mirror-sender, bounded in
// count and time). Under that load the API and /healthz answer (the test asserts that they
// answer; the times go to docs/reliability.md) after a drain, and SIGTERM ends flowpin
// within a bound with its state written (the drain's record, the tracked flows) and the pins
// left on the switch. Readiness reports the process memory beside the configured bounds, and
// the flows tracked stay within flowTable.maxFlows (set below the sender's distinct flows).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileStateStore } from '../controller/state-store.js';
import { until } from './helpers/demo.js';
import { recordFigures } from './helpers/figures.js';
import { flowpinBin, repoRoot } from './helpers/tools.js';

const SENDER = path.join(repoRoot, 'dist/bench/mirror-sender.js');
const TOKEN = 'load-test';
const MAX_FLOWS = 2500;
/** Frames and rate of the load: bounded in count (and by the sender to 60 s). */
const FRAMES = Number(process.env['FLOWPIN_LOAD_FRAMES'] ?? 200_000);
const RATE = Number(process.env['FLOWPIN_LOAD_RATE'] ?? 20_000);
/** SIGTERM must end flowpin within this (the bound is 2 s; the test allows for a loaded CI box). */
const STOP_BOUND_MS = 10_000;

interface Proc {
  child: ChildProcess;
  out: () => string;
  exit: Promise<[number | null, string | null]>;
}

function proc(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOWPIN_LOG_LEVEL: 'warn', ...env } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, out: () => out, exit: once(child, 'exit') as Promise<[number | null, string | null]> };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number);
};

test('under mirror load: API and /healthz answer; SIGTERM ends flowpin with state written and pins left on the switch', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-load-'));
  const procs: Proc[] = [];
  try {
    // The sender's clients (10.20.0.0 onwards) arrive on the switch's uplink.
    const scenario = path.join(dir, 'sim.yaml');
    writeFileSync(scenario, "switch: { uplink: { prefixes: ['10.16.0.0/12', '10.32.0.0/11', '10.64.0.0/11', '2001:db8:c::/48'] } }\n");
    const sim = proc([flowpinBin, 'sim', '--config', scenario, '--eapi-port', '0', '--gnmi-port', '0', '--status-port', '0', '--mirror', '127.0.0.1:9', '--no-traffic']);
    procs.push(sim);
    const eapi = await until(() => /eAPI\s+(http:\S+)/.exec(sim.out())?.[1], 20_000, `the simulator (output: ${sim.out()})`);
    const counters = await until<string>(() => /counters (http:\S+\/counters)/.exec(sim.out())?.[1], 5000, 'the counters endpoint');
    const simPins = async (): Promise<number> => ((await (await fetch(counters)).json()) as { pins: { programmed: number } }).pins.programmed;
    const state = path.join(dir, 'state');
    const cfg = path.join(dir, 'flowpin.yaml');
    writeFileSync(cfg, [
      `api: { host: 127.0.0.1, port: 0, token: ${TOKEN} }`,
      'mirror: { udp: [{ host: 127.0.0.1, port: 0 }] }',
      `flowTable: { maxFlows: ${MAX_FLOWS}, maxAgeS: 600 }`,
      'resolveQueue: 20000',
      'settleMs: 50',
      'barrierTimeoutMs: 10000',
      'resyncIntervalS: 2',
      'persistIntervalS: 2',
      `stateFile: ${state}`,
      'switches:',
      '  - name: sim1',
      '    adapter: arista-eapi',
      '    mirrorSources: [127.0.0.1]',
      `    eapi: { url: '${eapi}', username: admin, password: flowpin, groupTemplate: static-ecmp }`,
      '    vips: [{ address: 192.0.2.80, nexthops: [10.0.1.1, 10.0.1.2, 10.0.1.3, 10.0.1.4] }]',
      '',
    ].join('\n'));
    const fp = proc([flowpinBin, 'run', '--config', cfg]);
    procs.push(fp);
    const api = await until(() => /API (http:\S+?),/.exec(fp.out())?.[1], 20_000, `flowpin run (output: ${fp.out()})`);
    const port = Number(await until(() => /mirror receiver on GRE-in-UDP \S+:(\d+)/.exec(fp.out())?.[1], 5000, 'the mirror receiver'));

    // A first, light mirror load: flows learned on every nexthop, then a drain (its pins stay on the switch).
    const warm = proc([SENDER, String(port), '2000', '1000']);
    procs.push(warm);
    await warm.exit;
    const drain = await fetch(`${api}/api/v1/switches/sim1/vips/192.0.2.80/nexthops/10.0.1.2/drain`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"acceptRisk":true}', signal: AbortSignal.timeout(30_000) });
    const drained = (await drain.json()) as { id?: string; phase?: string; pinned?: number };
    assert.equal(drain.status, 202, JSON.stringify(drained));
    const drainId = drained.id as string;
    assert.ok((drained.pinned ?? 0) > 0, JSON.stringify(drained));

    // The load: the sender process as fast as RATE, while the API is probed.
    const sender = proc([SENDER, String(port), String(FRAMES), String(RATE)]);
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
      const ready = (await probe(`${api}/readyz`, reads)) as { memory?: { rssBytes: number; maxFlows: number; flows: number } };
      assert.ok(ready.memory !== undefined, 'readiness reports memory');
      rssPeak = Math.max(rssPeak, ready.memory.rssBytes);
      assert.equal(ready.memory.maxFlows, MAX_FLOWS);
      assert.ok(ready.memory.flows <= MAX_FLOWS, `${ready.memory.flows} flows tracked past the bound ${MAX_FLOWS}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(sender.child.exitCode, null, 'SIGTERM comes while the sender still sends');
    pinsAtTerm = await simPins();
    assert.ok(pinsAtTerm > 0, 'the drain left pins on the switch');
    const t0 = performance.now();
    fp.child.kill('SIGTERM');
    const stopped = await Promise.race([fp.exit, new Promise<null>((r) => setTimeout(() => r(null), STOP_BOUND_MS))]);
    stopMs = performance.now() - t0;
    assert.ok(stopped !== null, `flowpin did not end within ${STOP_BOUND_MS} ms of SIGTERM under load`);
    assert.equal(stopped[0], 0, fp.out());
    const [senderExit] = await sender.exit;
    assert.equal(senderExit, 0, sender.out());
    const sent = JSON.parse(sender.out().trim().split('\n').pop() ?? '{}') as { sent: number; seconds: number };
    // State written: the drain's record (applied, to resume) and the tracked flows.
    const saved = new FileStateStore(state).load();
    assert.ok(saved !== undefined, 'state written');
    const rec = saved.changes['sim1']?.find((r) => r.id === drainId);
    assert.equal(rec?.phase, 'applied', JSON.stringify(rec));
    const savedFlows = new Set(saved.flows.flatMap((g) => g.keys)).size;
    assert.ok(savedFlows > 0, 'tracked flows written');
    // Pins stay on the switch: the simulator (its own process) still holds them.
    const pinsAfter = await simPins();
    assert.ok(pinsAfter >= pinsAtTerm, `pins left on the switch: ${pinsAfter} after, ${pinsAtTerm} at SIGTERM`);
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
    for (const p of procs.reverse()) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGTERM');
        const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
        await p.exit;
        clearTimeout(t);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
