// Failover under load, in real processes: a three-member etcd cluster on loopback, the
// simulator with the load's traffic in its own process (one mirror session per controller),
// and three `flowpin run` processes with `ha:`. A drain is asked of the switch's owner, which
// kills itself once the drain's pins are programmed (before its group write); the next owner
// takes the switch (epoch + 1), runs the drain again from its recorded phase and kills itself
// once its group write has left; the third takes the switch (epoch + 2) and finishes the drain.
// Judged against the simulator's reset log (torture/truth.ts): no protected connection reset,
// every other reset counted by the record, the record in etcd truthful, no stale write landed
// (the simulator's epoch ledger). A change sent to a non-owner is answered 421 with the owner.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { rendezvousOwner } from '../controller/ha/rendezvous.js';
import type { ResetLine } from '../switch-sim/reset-log.js';
import {
  flowpin,
  freePort,
  startSim,
  TOPOLOGY,
  until,
  writeControllerConfig,
  type Proc,
  type SimHandle,
} from '../torture/procs.js';
import { attribute, judge, type RecordView, type Watched } from '../torture/truth.js';
import { skipEtcd, startEtcdCluster, type EtcdCluster } from './helpers/etcd.js';

const skip = skipEtcd();
const seed = Number(process.env['FLOWPIN_SEED'] ?? Math.floor(Math.random() * 1e6));
const TOKEN = 'ha-failover-token-0123456789';
const PREFIX = '/flowpin-failover/';
const VIP = '192.0.2.80';
const NH = '10.0.1.2';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** An API answer's JSON, read loosely (the test names the fields it checks). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;

interface Instance {
  name: string;
  api: string;
  proc: Proc;
}

async function http(
  url: string,
  init: RequestInit = {},
  ms = 10_000,
): Promise<{ status: number; body: Body }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(ms) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body };
  } catch (err) {
    return { status: 0, body: err instanceof Error ? err.message : String(err) };
  }
}

/** The switch's ownership as an instance reports it (GET /api/v1/switches). */
async function ownership(
  i: Instance,
): Promise<{ owned: boolean; epoch: number; takeover: string | null } | undefined> {
  const r = await http(`${i.api}/api/v1/switches`, { headers: auth }, 3000);
  if (r.status !== 200) return undefined;
  return (
    r.body as {
      switches: { name: string; ha?: { owned: boolean; epoch: number; takeover: string | null } }[];
    }
  ).switches.find((s) => s.name === 'sim1')?.ha;
}

/** Waits until `i` owns the switch (under `epoch`, or any); returns when, and the epoch. */
async function ownedAt(i: Instance, epoch: number | undefined, ms: number): Promise<[number, number]> {
  let e = 0;
  await until(
    async () => {
      if (i.proc.exited()) return true;
      const o = await ownership(i);
      if (o?.owned !== true || (epoch !== undefined && o.epoch !== epoch)) return false;
      e = o.epoch;
      return true;
    },
    ms,
    `${i.name} to own sim1 under epoch ${epoch ?? 'any'}`,
    50,
  );
  if (i.proc.exited()) throw new Error(`${i.name} exited: ${i.proc.out().slice(-3000)}`);
  return [Date.now(), e];
}

test(
  `ha failover: owner killed after the pins, the next after the group write, the third finishes the drain (seed ${seed})`,
  { skip, timeout: 280_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-ha-failover-'));
    let etcd: EtcdCluster | undefined;
    let sim: SimHandle | undefined;
    let load: Proc | undefined;
    const instances: Instance[] = [];
    let client: Etcd3 | undefined;
    try {
      etcd = await startEtcdCluster(3);
      client = new Etcd3({ hosts: etcd.endpoints });
      const names = ['fp-a', 'fp-b', 'fp-c'];
      const first = rendezvousOwner('sim1', names) as string;
      const second = rendezvousOwner(
        'sim1',
        names.filter((n) => n !== first),
      ) as string;
      const third = names.find((n) => n !== first && n !== second) as string;
      const mirrorPorts = [await freePort('udp'), await freePort('udp'), await freePort('udp')];
      sim = await startSim(
        dir,
        mirrorPorts[0] as number,
        TOPOLOGY,
        path.join(dir, 'resets.jsonl'),
        undefined,
        mirrorPorts.slice(1),
      );
      const crashAt: Record<string, string> = { [first]: 'programmed', [second]: 'sent' };
      for (const [k, name] of names.entries()) {
        const d = path.join(dir, name);
        mkdirSync(path.join(d, 'state'), { recursive: true });
        const apiPort = await freePort('tcp');
        const file = writeControllerConfig({
          dir: d,
          stateDir: path.join(d, 'state'),
          apiPort,
          mirrorPort: mirrorPorts[k] as number,
          token: TOKEN,
          eapi: sim.eapi,
          topo: TOPOLOGY,
        });
        appendFileSync(
          file,
          // Pins a new owner adopts of connections it never saw end are kept until the switch times
          // them out idle (as after a restart): 5 s here, beyond the load's longest connection.
          `pinIdleTimeoutS: 5\nha: { endpoints: [${etcd.endpoints.join(', ')}], leaseTtlS: 4, prefix: ${PREFIX}, name: ${name} }\n`,
        );
        const env: Record<string, string> = { FLOWPIN_LOG_LEVEL: 'info' };
        const at = crashAt[name];
        if (at !== undefined) env['FLOWPIN_CRASH_AT'] = at;
        instances.push({
          name,
          api: `http://127.0.0.1:${apiPort}`,
          proc: flowpin(['run', '--config', file], { env, logFile: path.join(d, 'controller.log') }),
        });
      }
      const byName = (n: string): Instance => instances.find((i) => i.name === n) as Instance;
      for (const i of instances)
        await until(
          async () => i.proc.exited() || (await http(`${i.api}/readyz`, {}, 2000)).status === 200,
          90_000,
          `${i.name} to be ready`,
          100,
        );
      const a = byName(first);
      const b = byName(second);
      const c = byName(third);
      // Instances join one by one: the switch may change hands before all are in; then it stays.
      const [, e0] = await ownedAt(a, undefined, 30_000);

      // The traffic: connections of 1 s median, 4 s at most, to the VIP.
      load = flowpin(
        [
          'load',
          '--dataplane',
          sim.dataplane,
          '--vip',
          `${VIP}:443`,
          '--rate',
          '300',
          '--duration-s',
          '90',
          '--lifetime-median-s',
          '1',
          '--lifetime-sigma',
          '0.7',
          '--lifetime-max-s',
          '4',
          '--seed',
          String(seed),
          '--log',
          path.join(dir, 'load.jsonl'),
          '--finish-s',
          '6',
        ],
        { logFile: path.join(dir, 'load.out') },
      );
      const l = load;
      await until(
        () =>
          l.exited() ||
          (existsSync(path.join(dir, 'load.jsonl')) && statSync(path.join(dir, 'load.jsonl')).size > 0),
        60_000,
        'the load to start',
      );
      assert.ok(!l.exited(), `the load exited: ${l.out().slice(-500)}`);
      await new Promise((r) => setTimeout(r, 3000));

      // A change sent to a non-owner: 421, naming the owner and where its API is.
      const drainUrl = (i: Instance): string =>
        `${i.api}/api/v1/switches/sim1/vips/${VIP}/nexthops/${NH}/drain`;
      const mis = await http(drainUrl(c), {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ dryRun: true }),
      });
      assert.equal(mis.status, 421, JSON.stringify(mis.body));
      assert.equal(mis.body.detail.owner, first);
      assert.equal(mis.body.detail.ownerApi, a.api);

      const dry = await http(drainUrl(a), {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ dryRun: true, maxAtRisk: 0 }),
      });
      const consent =
        dry.status === 400 && JSON.stringify(dry.body).includes('maxAtRisk')
          ? { acceptRisk: true }
          : { maxAtRisk: 1_000_000 };
      const w: Watched = {
        id: undefined,
        kind: 'drain',
        vip: VIP,
        nexthop: NH,
        callAt: Date.now(),
        status: 0,
        seen: {},
      };
      const call = http(drainUrl(a), {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ deadlineSeconds: 60, ...consent }),
      });
      // The first owner kills itself once the drain's pins are programmed.
      await Promise.race([a.proc.exit, new Promise((r) => setTimeout(r, 60_000))]);
      const kill1 = Date.now();
      assert.ok(a.proc.exited(), `${first} did not die at the drain's pins: ${a.proc.out().slice(-2000)}`);
      const r0 = await call;
      w.status = r0.status;
      const rec0 = await client.get(`${PREFIX}switches/sim1/changes`).json();
      const written = (rec0 as RecordView[] | null)?.find((r) => r.kind === 'drain' && r.nexthop === NH);
      assert.ok(written !== undefined, 'the drain is in the change log in etcd');
      w.id = written.id;

      const owned2 = await ownedAt(b, e0 + 1, 30_000).then(
        ([t]) => t,
        (err: unknown) => {
          if (b.proc.exited()) return Date.now();
          throw err;
        },
      );
      // The second owner resumes the drain and kills itself once its group write has left.
      await Promise.race([b.proc.exit, new Promise((r) => setTimeout(r, 60_000))]);
      const kill2 = Date.now();
      assert.ok(b.proc.exited(), `${second} did not die at the group write: ${b.proc.out().slice(-2000)}`);
      const [owned3] = await ownedAt(c, e0 + 2, 30_000);

      // The third owner finishes the drain: the record reaches a final phase.
      let rec: RecordView | undefined;
      await until(
        async () => {
          const r = await http(`${c.api}/api/v1/switches/sim1/changes`, { headers: auth }, 3000);
          rec = (r.body as { changes?: RecordView[] }).changes?.find((x) => x.id === w.id);
          return rec !== undefined && !['queued', 'pending', 'applied'].includes(rec.phase);
        },
        90_000,
        'the drain to end on the third owner',
        250,
      );
      const fin = rec as RecordView;
      // The record in etcd says the same.
      const inEtcd = ((await client.get(`${PREFIX}switches/sim1/changes`).json()) as RecordView[]).find(
        (x) => x.id === w.id,
      );
      assert.equal(inEtcd?.phase, fin.phase);
      assert.equal(await client.get(`${PREFIX}switches/sim1/epoch`).string(), String(e0 + 2));

      // Let the load finish its connections.
      l.signal('SIGTERM');
      await Promise.race([l.exit, new Promise((r) => setTimeout(r, 15_000))]);
      const counters = (await http(`${sim.status}/counters`, {}, 3000)).body as {
        groupChanges: { wallAt: number; vip: string; op: string; nexthop: string }[];
        epochs: { highest: string; staleLanded: number };
        vips: { address: string; members: string[] }[];
      };
      w.groupWriteAt = counters.groupChanges.find(
        (g) => g.vip === VIP && g.op === 'remove' && g.nexthop === NH && g.wallAt >= w.callAt - 50,
      )?.wallAt;
      const resets: ResetLine[] = existsSync(path.join(dir, 'resets.jsonl'))
        ? readFileSync(path.join(dir, 'resets.jsonl'), 'utf8')
            .split('\n')
            .filter((x) => x !== '')
            .map((x) => JSON.parse(x) as ResetLine)
        : [];
      // While no instance wrote the switch (from each kill to the next takeover) the mirror still
      // reached the others: nothing was unseen, but nothing was pinned either.
      const down = [
        { from: kill1, to: owned2 },
        { from: kill2, to: owned3 },
      ];
      const { by, unattributed } = attribute(resets, [w]);
      const truth = judge(w, fin, by.get(w) ?? [], down, undefined);
      process.stdout.write(
        `${JSON.stringify({ seed, first, second, third, failoverMs: [owned2 - kill1, owned3 - kill2], record: { phase: fin.phase, pinned: fin.pinned, atRisk: fin.atRisk, windowFlows: fin.windowFlows, unseen: fin['unseen'] }, truth, unattributed: unattributed.length, epochs: counters.epochs, load: l.out().trim().split('\n').pop() })}\n`,
      );
      assert.equal(fin.phase, 'drained', JSON.stringify(fin));
      assert.equal(truth.protected, 0, `protected connections reset (seed ${seed})`);
      assert.equal(truth.uncounted, 0, `resets the record does not count (seed ${seed})`);
      assert.deepEqual(truth.false, [], `seed ${seed}`);
      assert.equal(unattributed.length, 0);
      assert.equal(counters.epochs.staleLanded, 0, 'a stale write landed');
      assert.equal(counters.epochs.highest, String(e0 + 2));
      assert.ok(
        !counters.vips.find((v) => v.address === VIP)?.members.includes(NH),
        'the nexthop left the group',
      );
    } finally {
      load?.signal('SIGKILL');
      await Promise.all(instances.map((i) => i.proc.stop(5000)));
      await sim?.stop();
      client?.close();
      await etcd?.close();
      if (process.env['FLOWPIN_KEEP'] === undefined) rmSync(dir, { recursive: true, force: true });
      else process.stdout.write(`kept ${dir}\n`);
    }
  },
);
