// The owner partitioned from etcd while it still reaches the switch, in real processes: the
// owning `flowpin run` runs in a network namespace of the test's, joined to the root namespace
// by a veth pair (etcd, the simulator's eAPI and its mirror sessions reach it there); the other
// instance runs in the root namespace. An nft rule in the namespace then drops only the
// owner's packets to etcd's client ports: the eAPI and the mirror stay reachable. Shown, under
// a load where every new connection wants a pin (the owner would write at once):
//   - the owner's lease passes its own deadline (the last acknowledged keep-alive's send time
//     + TTL - margin, controller/ha/lease.ts) and its last write lands on the switch before it;
//   - the other instance takes the switch under the next epoch, and no write of the old owner
//     lands after the new owner's first (the simulator's epoch ledger);
//   - the partition healed, the old owner joins again as a non-owner: no write of its old epoch
//     lands, and whatever it writes later it writes under a newer epoch (a handover).
// Needs root, ip netns and nft: skipped without them, a failure under CI=true.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rendezvousOwner } from '../controller/ha/rendezvous.js';
import { until } from '../torture/procs.js';
import { skipEtcd } from './helpers/etcd.js';
import {
  closeBed,
  counters,
  metric,
  ownedAt,
  ownership,
  PREFIX,
  seed,
  startBed,
  startLoad,
  warm,
  type Bed,
  untilPinsOfEpoch,
} from './helpers/ha-bed.js';
import { PartitionNs, skipNetnsPartition } from './helpers/netns-partition.js';

const skip = skipEtcd() || skipNetnsPartition();

/** The lease's deadline as the partitioned owner logged it when it passed. */
interface Deadline {
  lastAckedSentAt: number;
  deadline: number;
}

test(
  `ha partition: the owner cut from etcd stops writing by its own deadline, the other takes the switch, the healed one rejoins as non-owner (seed ${seed})`,
  { skip, timeout: 240_000 },
  async () => {
    const net = new PartitionNs();
    const partial: Partial<Bed> = {};
    try {
      const names = ['fp-a', 'fp-b'];
      const first = rendezvousOwner('sim1', names) as string;
      const second = names.find((n) => n !== first) as string;
      // `always`: every new connection wants a pin, so an owner that wrote on would write at once.
      const bed = await startBed(
        names,
        {
          pinMode: 'always',
          netns: { [first]: net.place },
        },
        partial,
      );
      const a = bed.byName(first);
      const b = bed.byName(second);
      const [, e0] = await ownedAt(a, undefined, 30_000);
      await startLoad(bed, 150, { medianS: 1, sigma: 0.7, maxS: 4 }, 120);
      await untilPinsOfEpoch(bed, e0, "the partitioned-to-be owner's");

      // The cut: the namespace's packets to etcd's client ports dropped; the eAPI and the mirror pass.
      net.partition(bed.etcd.endpoints);
      const cutAt = Date.now();
      const passed = await until<Deadline>(
        () => {
          const line = a.proc
            .out()
            .split('\n')
            .find((l) => l.includes('lease past its own deadline'));
          return line === undefined ? undefined : (JSON.parse(line) as Deadline);
        },
        20_000,
        `${first} to pass its lease's deadline`,
        100,
      );
      const [ownedB] = await ownedAt(b, e0 + 1, 30_000);
      await untilPinsOfEpoch(bed, e0 + 1, "the new owner's");
      // The partitioned owner keeps seeing the load (its mirror reaches it), each SYN wanting a pin.
      await warm(a, 200);
      const cut = await counters(bed);
      const lastOld = cut.epochs.lastWriteAt[String(e0)] ?? 0;
      const aView = await ownership(a);
      const refusedExpired = await metric(
        a,
        'flowpin_fence_refusals_total\\{switch="sim1",reason="expired"\\}',
      );
      const ttlMs = 4000;
      process.stdout.write(
        `${JSON.stringify({ seed, first, second, e0, ns: net.ns.name, cutAt, lease: passed, deadlineAfterCutMs: passed.deadline - cutAt, lastOldWriteBeforeDeadlineMs: passed.deadline - lastOld, takeoverAfterCutMs: ownedB - cutAt, epochs: cut.epochs, oldOwnerView: aView, oldOwnerRefusedExpired: refusedExpired })}\n`,
      );
      // Its own deadline: the last acknowledged keep-alive's send time + TTL - margin (a fifth of the TTL).
      assert.equal(passed.deadline - passed.lastAckedSentAt, ttlMs - ttlMs / 5, JSON.stringify(passed));
      // That keep-alive left before the cut (acknowledged: it reached etcd). The two clocks are read in
      // two processes (the owner's monotonic clock at wall-clock scale, the test's wall clock): 50 ms.
      assert.ok(passed.lastAckedSentAt <= cutAt + 50, JSON.stringify({ cutAt, passed }));
      // Its writes stopped by its own deadline (the last one landed before it), and none after the new
      // owner's first.
      assert.ok(lastOld > 0 && lastOld <= passed.deadline, JSON.stringify({ lastOld, passed }));
      assert.equal(
        cut.epochs.staleLanded,
        0,
        'a write of the partitioned owner landed after the new owner wrote',
      );
      assert.equal(aView?.owned, false, 'the partitioned owner still says it owns the switch');
      assert.ok((refusedExpired ?? 0) > 0, 'the partitioned owner tried no write: the test showed nothing');

      // Healed: the old owner's lease is gone; it joins again (a new lease, its member key back).
      net.heal();
      const healAt = Date.now();
      await until(
        async () => (await bed.client.get(`${PREFIX}members/${first}`).string()) !== null,
        60_000,
        `${first} to join again`,
        200,
      );
      const rejoinedAt = Date.now();
      // As a non-owner first: the switch is the new owner's until it hands it over (a new epoch).
      const view = await ownership(a);
      assert.ok(
        view?.owned !== true || view.epoch > e0 + 1,
        `rejoined owning the switch under epoch ${view?.epoch}: ${JSON.stringify(view)}`,
      );
      // It reads the load again, every SYN wanting a pin: nothing of its old epoch lands.
      await warm(a, 300);
      const end = await counters(bed);
      const eNow = Number(await bed.client.get(`${PREFIX}switches/sim1/epoch`).string());
      process.stdout.write(
        `${JSON.stringify({ seed, healAt, rejoinAfterHealMs: rejoinedAt - healAt, viewAtRejoin: view, epochNow: eNow, epochs: end.epochs, views: [await ownership(a), await ownership(b)] })}\n`,
      );
      assert.equal(
        end.epochs.lastWriteAt[String(e0)],
        lastOld,
        'a write of the old epoch landed after the heal',
      );
      assert.equal(end.epochs.staleLanded, 0, 'a stale write landed');
      assert.ok(BigInt(end.epochs.highest) <= BigInt(eNow), `${end.epochs.highest} > ${eNow}`);
    } finally {
      await closeBed(partial);
      net.remove();
    }
  },
);
