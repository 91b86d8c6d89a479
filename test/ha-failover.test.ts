// Failover under load, in real processes: a three-member etcd cluster on loopback, the
// simulator with the load's traffic in its own process (one mirror session per controller),
// and three `flowpin run` processes with `ha:`. A drain (and, in its own bed, an addition of the
// spare server) is asked of the switch's owner, which kills itself once the change's pins are
// programmed (before its group write); the next owner takes the switch (epoch + 1), runs the
// change again from its recorded phase and kills itself once its group write has left; the third
// takes the switch (epoch + 2) and finishes it.
// Judged against the simulator's reset log (torture/truth.ts): no protected connection reset,
// every other reset counted by the record, the record in etcd truthful, no stale write landed
// (the simulator's epoch ledger). A change sent to a non-owner is answered 421 with the owner.
// Then: an owner paused (SIGSTOP) past its lease writes nothing that lands once awake; a new
// owner the mirror does not reach keeps the last owner's pins of connections it never saw; a
// new owner whose epoch is below the switch's pins (etcd's epoch lost) writes nothing.

import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { rendezvousOwner } from '../controller/ha/rendezvous.js';
import { pinCommands } from '../switch-adapters/arista-eapi/directflow.js';
import { flowpin, until } from '../torture/procs.js';
import { attribute, judge, type RecordView, type Watched } from '../torture/truth.js';
import { skipEtcd } from './helpers/etcd.js';
import {
  auth,
  changeChain,
  closeBed,
  counters,
  http,
  NH,
  ownedAt,
  ownership,
  PREFIX,
  resetsOf,
  seed,
  startBed,
  startLoad,
  TOKEN,
  VIP,
  warm,
  type Bed,
  type Instance,
  untilPinsOfEpoch,
} from './helpers/ha-bed.js';
import { have } from './helpers/tools.js';

const skip = skipEtcd();

test(
  `ha failover: owner killed after the pins, the next after the group write, the third finishes the drain (seed ${seed})`,
  { skip, timeout: 280_000 },
  () => changeChain('drain', ['programmed', 'sent']),
);

test(
  `ha failover: owner killed after the pins, the next after the group write, the third finishes the addition (seed ${seed})`,
  { skip, timeout: 280_000 },
  () => changeChain('add', ['programmed', 'sent']),
);

test(
  `ha pause: the owner stopped (SIGSTOP) past its lease writes nothing that lands once it wakes (seed ${seed})`,
  {
    skip,
    timeout: 200_000,
  },
  async () => {
    const partial: Partial<Bed> = {};
    try {
      const names = ['fp-a', 'fp-b'];
      const first = rendezvousOwner('sim1', names) as string;
      const second = names.find((n) => n !== first) as string;
      // `always`: every new connection wants a pin, so a stale owner that woke would write at once.
      const bed = await startBed(names, { pinMode: 'always' }, partial);
      const a = bed.byName(first);
      const b = bed.byName(second);
      const [, e0] = await ownedAt(a, undefined, 30_000);
      await startLoad(bed, 200);
      await untilPinsOfEpoch(bed, e0);
      a.proc.signal('SIGSTOP');
      const stoppedAt = Date.now();
      const [ownedB] = await ownedAt(b, e0 + 1, 30_000);
      await untilPinsOfEpoch(bed, e0 + 1, "the new owner's");
      a.proc.signal('SIGCONT');
      // Awake, the old owner reads its backlog of mirrored SYNs and the new ones, each wanting a pin.
      await warm(a, 400);
      const c = await counters(bed);
      const refused = /flowpin_fence_refusals_total\{switch="sim1",reason="expired"\} (\d+)/.exec(
        await (await fetch(`${a.api}/metrics`, { headers: auth })).text(),
      );
      process.stdout.write(
        `${JSON.stringify({ seed, first, second, e0, takeoverAfterStopMs: ownedB - stoppedAt, epochs: c.epochs, oldOwnerRefusals: Number(refused?.[1] ?? 0) })}\n`,
      );
      assert.equal(c.epochs.staleLanded, 0, 'a write of the paused owner landed after the new owner wrote');
      // Awake, the old owner joins again and, preferred by the rendezvous, takes the switch back
      // under a new epoch (the other hands it over: no change is in flight).
      const [, eBack] = await ownedAt(a, undefined, 30_000);
      assert.ok(eBack > e0 + 1, `taken back under epoch ${eBack}`);
      // The metrics of ownership, by the Prometheus conventions: one instance owns the switch now,
      // each took it at least once; promtool finds nothing to remark (where installed).
      // (The woken owner may be taking the switch back meanwhile: waited for.)
      let texts: string[] = [];
      await until(
        async () => {
          texts = await Promise.all(
            [a, b].map(async (i) => (await fetch(`${i.api}/metrics`, { headers: auth })).text()),
          );
          const owners = texts.map((t) => /^flowpin_ha_owner\{switch="sim1"\} (\d+)$/m.exec(t)?.[1]);
          return [...owners].sort().join() === '0,1';
        },
        30_000,
        'one instance to own the switch (flowpin_ha_owner)',
        200,
      );
      for (const t of texts)
        assert.match(t, /^flowpin_ha_takeovers_total\{switch="sim1"\} [1-9]\d*$/m, 'a takeover counted');
      // The CLI: status on each says who owns the switch; a drain sent to the non-owner prints
      // the owner's address.
      const [owner, other] = [a, b];
      await until(
        async () => (await ownership(b))?.owner === a.name,
        10_000,
        `${b.name} to see ${a.name} own`,
      );
      const cli = async (i: Instance, args: string[]): Promise<string> => {
        const p = flowpin([...args, '--url', i.api], { env: { FLOWPIN_TOKEN: TOKEN } });
        await p.exit;
        return p.out();
      };
      assert.match(
        await cli(owner, ['status']),
        new RegExp(`high availability: owned by this instance \\(${owner.name}\\)`),
      );
      assert.match(
        await cli(other, ['status']),
        new RegExp(`high availability: owned by ${owner.name} at ${owner.api}`),
      );
      assert.match(
        await cli(other, ['drain', NH, '--dry-run']),
        new RegExp(`owned by flowpin instance ${owner.name} \\(API ${owner.api}`),
      );
      // A reload may not add a switch under ha: (it would be written without an owner's fence).
      const file = path.join(bed.dir, other.name, 'flowpin.yaml');
      const yaml = readFileSync(file, 'utf8');
      const from = yaml.indexOf('  - name: sim1');
      const to = yaml.indexOf('pinIdleTimeoutS:');
      const block = yaml.slice(from, to).replace('sim1', 'sim2').replace('127.0.0.2', '127.0.0.3');
      writeFileSync(file, yaml.slice(0, to) + block + yaml.slice(to));
      const rl = await http(`${other.api}/api/v1/reload`, {
        method: 'POST',
        headers: { authorization: auth.authorization },
      });
      assert.equal(rl.status, 400, JSON.stringify(rl.body));
      assert.match(String(rl.body.message), /cannot add or remove switches/);
      if (have('promtool', ['--version']))
        for (const t of texts) {
          const r = spawnSync('promtool', ['check', 'metrics'], {
            input: t,
            encoding: 'utf8',
            timeout: 30_000,
          });
          assert.equal(r.status, 0, `promtool says:\n${r.stdout}${r.stderr}`);
          assert.equal(`${r.stdout}${r.stderr}`.trim(), '', `promtool has remarks:\n${r.stdout}${r.stderr}`);
        }
    } finally {
      await closeBed(partial);
    }
  },
);

test(
  `ha takeover keeps the last owner's pins of connections the new owner never saw (seed ${seed})`,
  { skip, timeout: 200_000 },
  async () => {
    const partial: Partial<Bed> = {};
    try {
      const names = ['fp-a', 'fp-b'];
      const first = rendezvousOwner('sim1', names) as string;
      const second = names.find((n) => n !== first) as string;
      // The second instance receives no mirror (its session missing): what it knows of the
      // connections is nothing; a resync every 2 s would remove any pin it does not hold.
      const bed = await startBed(names, { unmirrored: [second], extra: 'resyncIntervalS: 2\n' }, partial);
      const { client, sim } = bed;
      const a = bed.byName(first);
      const b = bed.byName(second);
      const [, e0] = await ownedAt(a, undefined, 30_000);
      // Long connections: alive across the kill and the takeover.
      const l = await startLoad(bed, 40, { medianS: 25, sigma: 0.2, maxS: 40 });
      await warm(a, 200);
      const drainUrl = `${a.api}/api/v1/switches/sim1/vips/${VIP}/nexthops/${NH}/drain`;
      const w: Watched = {
        id: undefined,
        kind: 'drain',
        vip: VIP,
        nexthop: NH,
        callAt: Date.now(),
        status: 0,
        seen: {},
      };
      const r0 = await http(drainUrl, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ deadlineSeconds: 120, maxAtRisk: 1_000_000 }),
      });
      assert.ok(r0.status === 202 || r0.status === 200, JSON.stringify(r0.body));
      w.id = (r0.body as { id: string }).id;
      w.status = r0.status;
      // The drain's group write has landed and its pins hold the connections left on the nexthop.
      await until(
        async () => !(await counters(bed)).vips.find((v) => v.address === VIP)?.members.includes(NH),
        60_000,
        'the group write',
        200,
      );
      const pinsBefore = (await counters(bed)).pinsByNexthop[NH] ?? 0;
      assert.ok(pinsBefore > 0, 'pins toward the drained nexthop');
      a.proc.signal('SIGKILL');
      await a.proc.exit;
      const killAt = Date.now();
      const [ownedB] = await ownedAt(b, e0 + 1, 30_000);
      // Three of the new owner's resyncs: a pin it did not adopt would be gone by now.
      const resyncs = async (): Promise<number> => {
        const t = await (await fetch(`${b.api}/metrics`, { headers: auth })).text();
        return Number(/^flowpin_resyncs_total\{switch="sim1"\} (\d+)$/m.exec(t)?.[1] ?? 0);
      };
      const from = await resyncs();
      await until(async () => (await resyncs()) >= from + 3, 30_000, 'three resyncs on the new owner', 200);
      const pinsAfter = (await counters(bed)).pinsByNexthop[NH] ?? 0;
      l.signal('SIGTERM');
      await Promise.race([l.exit, new Promise((r) => setTimeout(r, 15_000))]);
      const resets = resetsOf(bed);
      const rec = ((await client.get(`${PREFIX}switches/sim1/changes`).json()) as RecordView[]).find(
        (x) => x.id === w.id,
      );
      const { by } = attribute(resets, [w]);
      const truth = judge(w, rec, by.get(w) ?? [], [{ from: killAt, to: ownedB }], undefined);
      process.stdout.write(
        `${JSON.stringify({ seed, first, second, pinsBefore, pinsAfter, truth, epochs: (await counters(bed)).epochs, sim: sim.status })}\n`,
      );
      assert.equal(truth.protected, 0, `protected connections reset (seed ${seed})`);
    } finally {
      await closeBed(partial);
    }
  },
);

test(
  `ha takeover writes nothing to a switch that holds pins of a higher epoch (etcd restored from an old backup) (seed ${seed})`,
  { skip, timeout: 200_000 },
  async () => {
    const partial: Partial<Bed> = {};
    try {
      const names = ['fp-a', 'fp-b'];
      const first = rendezvousOwner('sim1', names) as string;
      const second = names.find((n) => n !== first) as string;
      const epochKey = `${PREFIX}switches/sim1/epoch`;
      // The switch's epochs start at 50; `always`: every connection gets a pin, named with its epoch.
      const bed = await startBed(
        names,
        { pinMode: 'always', before: (c) => c.put(epochKey).value('49').exec() },
        partial,
      );
      const a = bed.byName(first);
      const b = bed.byName(second);
      const [, e0] = await ownedAt(a, undefined, 30_000);
      assert.ok(e0 >= 50);
      await startLoad(bed, 100);
      await untilPinsOfEpoch(bed, e0);
      // The owner dies and etcd loses the switch's epoch (as after a restore from an old backup):
      // the next owner takes epoch 1, lower than the pins' on the switch.
      a.proc.signal('SIGKILL');
      await a.proc.exit;
      await bed.client.delete().key(epochKey);
      await until(
        async () =>
          /pins of a higher epoch than 1: a newer owner writes it/.test(b.proc.out()) ||
          (await ownership(b))?.owned === true,
        30_000,
        'the new owner to refuse the takeover at its audit (or to take the switch)',
        100,
      );
      // It keeps refusing while connections come, each wanting a pin.
      await warm(b, 200);
      const o = await ownership(b);
      const c = await counters(bed);
      process.stdout.write(`${JSON.stringify({ seed, e0, ownership: o, epochs: c.epochs })}\n`);
      assert.equal(c.epochs.staleLanded, 0, 'writes of a lower epoch landed after a higher one');
      assert.equal(o?.owned, false, 'the switch was taken over');
    } finally {
      await closeBed(partial);
    }
  },
);

test(
  `ha periodic audit: a pin of an older epoch that lands after the takeover is counted (seed ${seed})`,
  { skip, timeout: 120_000 },
  async () => {
    const partial: Partial<Bed> = {};
    try {
      const bed = await startBed(['fp-a'], { ha: ', auditIntervalS: 1' }, partial);
      const a = bed.byName('fp-a');
      const [, epoch] = await ownedAt(a, undefined, 30_000);
      const staleCount = async (): Promise<number | undefined> => {
        const r = await http(`${a.api}/metrics`, {}, 3000);
        const m = /^flowpin_ha_stale_writes_total\{switch="sim1",found="stale"\} (\d+)$/m.exec(
          String(r.body),
        );
        return m === null ? undefined : Number(m[1]);
      };
      await until(async () => (await staleCount()) === 0, 10_000, 'the stale-write series at 0', 100);
      // An older owner's late write, as a DirectFlow switch takes it (no token to refuse it): a pin
      // named without an epoch (epoch 0) configured straight through the simulator's eAPI.
      const pin = {
        flow: { family: 4 as const, src: '10.100.77.7', dst: VIP, sport: 40_777, dport: 443 },
        nexthop: NH,
        idleTimeoutS: 60,
      };
      const res = await http(bed.sim.eapi, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from('admin:flowpin').toString('base64')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          method: 'runCmds',
          params: {
            version: 1,
            cmds: ['enable', 'configure', 'directflow', ...pinCommands(pin)],
            format: 'json',
          },
          id: 1,
        }),
      });
      assert.equal(res.status, 200, `the simulator took the write: ${JSON.stringify(res.body)}`);
      assert.equal((res.body as { error?: unknown }).error, undefined, JSON.stringify(res.body));
      await until(
        async () => (await staleCount()) === 1,
        15_000,
        `the owner (epoch ${epoch}) to count the stale pin: ${String(await staleCount())}`,
        200,
      );
      assert.match(a.proc.out(), /pins of an older owner landed after the takeover/);
    } finally {
      await closeBed(partial);
    }
  },
);
