// What a kill can lose of the flow journal is counted, not hidden: while journal commits wait on
// a slow disk, the watch saved with the change log ends at the last durable commit, so a
// restart counts the flows seen after it in its gap (unseen) instead of calling them watched.
// And a change's group write waits for the journal to be durable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JournalEntry } from '../controller/state-store.js';
import { MemoryDisk, MemoryStateStore } from '../controller/memory-store.js';
import { World } from '../cli/scenario/world.js';

const VIP = '192.0.2.80';

/**
 * A store whose journal appends can be held, as a disk that stops answering would (writes take 2 ms of the
 * world's time).
 */
class SlowDiskStore extends MemoryStateStore {
  held: (() => void)[] = [];
  holding = false;
  commits: number[] = [];
  override async appendFlows(flows: JournalEntry[], at: number): Promise<void> {
    if (this.holding) await new Promise<void>((r) => this.held.push(r));
    await super.appendFlows(flows, at);
    this.commits.push(at);
  }
  release(): void {
    this.holding = false;
    for (const r of this.held.splice(0)) r();
  }
}

test(
  'a journal waiting on the disk: the saved watch ends at the last durable commit, and a restart counts the rest as unseen',
  { timeout: 90_000 },
  async () => {
    let store: SlowDiskStore | undefined;
    const disk = new MemoryDisk();
    const w: World = new World({
      switches: [
        {
          name: 'sw1',
          vips: [{ address: VIP, nexthops: ['10.0.1.1', '10.0.1.2'], port: 443 }],
          spares: [],
          ecmpMode: 'resilient',
          pinCapacity: 5000,
          programDelayMs: 0,
          rate: 200,
          lifetime: { kind: 'fixed', s: 600 },
        },
      ],
      latencyMs: 1,
      mirrorDelayMs: 1,
      packetIntervalMs: 1000,
      seed: 31,
      controller: {
        pinMode: 'on-change',
        settleMs: 5,
        barrierTimeoutMs: 30_000,
        resyncIntervalS: 3600,
        store: () => (store = new SlowDiskStore(disk, (ms, fn) => w.clock.after(ms, fn))),
      },
    });
    try {
      await w.startController();
      w.startTraffic();
      await w.advance(2000);
      const c = w.controller;
      assert.ok(c && store);
      assert.ok(store.commits.length > 0, 'the journal commits while the disk answers');
      store.holding = true;
      await w.advance(1500);
      // A commit already past the disk when it stopped answering completes; nothing after it does.
      const lastDurable = Math.max(...store.commits);
      assert.ok(store.held.length > 0, 'commits wait on the disk');
      assert.ok(
        c.journalSafeUntil() <= lastDurable,
        `flows seen after ${lastDurable} are not durable: safe until ${c.journalSafeUntil()}`,
      );
      await w.settle(c.persistChanges(), 5000);
      const watched = store.loadChanges()?.watch['sw1']?.watched ?? [];
      const end = Math.max(...watched.map((x) => x.to));
      assert.ok(
        end <= lastDurable,
        `the saved watch ends at ${end}, the last durable commit was ${lastDurable} (now ${c.now()})`,
      );
      assert.ok(c.now() - end >= 1400, 'the undurable 1.5 s are not called watched');
      // A change's group write waits for the journal: held disk, no group write.
      const members = (): readonly string[] => w.sw('sw1').sw.vips.get(VIP)?.group.members() ?? [];
      const drain = c.changeManager('sw1').drain(VIP, '10.0.1.2', { maxAtRisk: 'unbounded' });
      drain.catch(() => undefined);
      await w.advance(1000);
      assert.deepEqual(members(), ['10.0.1.1', '10.0.1.2'], 'no group write before the journal is durable');
      store.release();
      await w.settle(drain, 10_000);
      assert.deepEqual(members(), ['10.0.1.1']);
    } finally {
      store?.release();
      await w.close();
    }
  },
);

test(
  "a connection half-closed before a restart is still half-closed after it: the other side's FIN ends it",
  { timeout: 60_000 },
  async () => {
    const w = new World({
      switches: [
        {
          name: 'sw1',
          vips: [{ address: VIP, nexthops: ['10.0.1.1', '10.0.1.2'], port: 443 }],
          spares: [],
          ecmpMode: 'resilient',
          pinCapacity: 5000,
          programDelayMs: 0,
          rate: 100,
          lifetime: { kind: 'fixed', s: 600 },
        },
      ],
      latencyMs: 1,
      mirrorDelayMs: 1,
      packetIntervalMs: 1000,
      seed: 32,
      controller: {
        pinMode: 'on-change',
        settleMs: 5,
        barrierTimeoutMs: 30_000,
        resyncIntervalS: 3600,
        store: 'memory',
      },
    });
    try {
      const c = await w.startController();
      w.startTraffic();
      await w.advance(2000);
      const keys = [...c.flowTable.indexed()].flatMap(([, k]) => [...k]).slice(0, 6);
      assert.equal(keys.length, 6, 'tracked flows');
      const [byClient, byServer, ...open] = keys as [string, string, ...string[]];
      c.flowTable.fin(byClient, 'client');
      c.flowTable.fin(byServer, 'server');
      // Through the snapshot for some, the journal for others: both carry the half-close.
      await w.settle(c.persist(), 5000);
      await w.stopController('kill');
      const after = await w.startController();
      assert.equal(after.flowTable.halfClosedBy(byClient), 'client');
      assert.equal(after.flowTable.halfClosedBy(byServer), 'server');
      for (const k of open) assert.equal(after.flowTable.halfClosedBy(k), null);
      assert.equal(after.flowTable.fin(byClient, 'server'), 'ended', "the other side's FIN ends it");
    } finally {
      await w.close();
    }
  },
);
