// Failover through the gNMI adapter, in real processes (test/helpers/ha-bed.ts with the
// simulator's gNMI target): a gNMI switch refuses a stale owner's writes itself (master
// arbitration: a Set whose election id is below the largest seen is refused PERMISSION_DENIED,
// gnmi-master-arbitration.md 3.2), so its fence holds without timing. To show that alone, the
// first owner runs with its timing guard off (FLOWPIN_HA_BREAK=write-after-lost: no deadline on
// its writes, nothing stopped when it loses the switch); it is paused (SIGSTOP) past its lease,
// the other instance takes the switch (its takeover's empty Set raises the election id), and
// once woken, the old owner's pin write is refused on the device and counted in
// flowpin_fence_refusals_total{reason="stale"} (its reconciler then stops writing until a
// resync: the refusal is not retried); the target applied no Set of a lower election id.

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
  seed,
  startBed,
  startLoad,
  warm,
  type Bed,
} from './helpers/ha-bed.js';

const skip = skipEtcd();

test(
  `ha gNMI: the old owner's writes after a takeover are refused on the device (PERMISSION_DENIED) and counted (seed ${seed})`,
  { skip, timeout: 180_000 },
  async () => {
    const partial: Partial<Bed> = {};
    try {
      const names = ['fp-a', 'fp-b'];
      const first = rendezvousOwner('sim1', names) as string;
      const second = names.find((n) => n !== first) as string;
      const bed = await startBed(
        names,
        { gnmi: true, pinMode: 'always', env: { [first]: { FLOWPIN_HA_BREAK: 'write-after-lost' } } },
        partial,
      );
      const a = bed.byName(first);
      const b = bed.byName(second);
      const [, e0] = await ownedAt(a, undefined, 30_000);
      const highest = async (): Promise<string | undefined> => (await counters(bed)).gnmi?.highest[''];
      assert.equal(await highest(), String(e0), 'the takeover fence (election id) on the target');
      await startLoad(bed, 150);
      const pins = async (): Promise<number> =>
        Object.values((await counters(bed)).pinsByNexthop).reduce((x, y) => x + y, 0);
      await until(async () => (await pins()) > 50, 30_000, `pins of ${first} on the switch`, 200);
      const stale = (): Promise<number | undefined> =>
        metric(a, 'flowpin_fence_refusals_total\\{switch="sim1",reason="stale"\\}');
      assert.equal(await stale(), 0);

      a.proc.signal('SIGSTOP');
      const [ownedB] = await ownedAt(b, e0 + 1, 30_000);
      assert.equal(await highest(), String(e0 + 1), "the new owner's takeover fence on the target");
      const before = await counters(bed);
      a.proc.signal('SIGCONT');
      // Awake, the old owner reads its backlog of mirrored SYNs and the new ones, each wanting a pin.
      await warm(a, 200);
      await until(async () => ((await stale()) ?? 0) > 0, 20_000, 'a stale write refused on the device', 200);
      const after = await counters(bed);
      const refused = (await stale()) ?? 0;
      process.stdout.write(
        `${JSON.stringify({ seed, first, second, e0, ownedB, refusedOnOldOwner: refused, target: { before: before.gnmi, after: after.gnmi }, pins: after.pinsByNexthop })}\n`,
      );
      assert.ok(
        (after.gnmi?.staleRefused ?? 0) > (before.gnmi?.staleRefused ?? 0),
        'the target refused none',
      );
      assert.equal(after.gnmi?.staleLanded, 0, 'a Set of a lower election id was applied');
    } finally {
      await closeBed(partial);
    }
  },
);
