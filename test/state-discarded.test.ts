// A restart whose flow state was discarded (a damaged snapshot moved aside by --discard-state)
// against the simulator under live traffic: the connections an addition moved keep the pins
// it left on the switch. flowpin adopts those pins as tracked connections of unknown liveness
// (they end by FIN or RST as any other, or when the pin idles out), says how many, and resets
// none of them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Bed, FIFTH, VIP } from './helpers/bed.js';
import type { ChangeRecord } from '../controller/changes.js';
import { discardState, FileStateStore } from '../controller/state-store.js';

test(
  'flow state discarded: the pins an addition left are adopted, no connection is reset',
  { timeout: 240_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-discard-'));
    const file = path.join(dir, 'state.json');
    const bed = await Bed.create({ pinMode: 'on-change', mirrorFinRst: true, stateFile: file });
    try {
      await bed.run(150);
      const add = (await bed.controller
        ?.changeManager('sw1')
        .add(VIP, FIFTH, { maxAtRisk: 'unbounded' })) as ChangeRecord;
      assert.equal(add.phase, 'complete');
      const pinned = bed.sim.sw.pins.size;
      assert.ok(pinned > 100, `only ${pinned} pins left by the addition`);
      await bed.run(5);
      await bed.stopController();
      // The snapshot damaged, then moved aside as the operator's --discard-state does.
      assert.ok(existsSync(file));
      truncateSync(file, Math.floor(statSync(file).size / 2));
      const d = discardState(file);
      assert.ok(d.moved.length > 0, 'the damaged snapshot moved aside');
      // As if the addition had counted three flows in its window before the restart.
      const store = new FileStateStore(file);
      const doc = store.loadChanges();
      const saved = doc?.changes['sw1']?.find((r) => r.id === add.id);
      assert.ok(doc !== undefined && saved !== undefined, 'the change log kept');
      saved.windowFlows = (saved.windowFlows ?? 0) + 3;
      await store.saveChanges(doc);
      const c2 = await bed.startController();
      const rt = c2.runtime('sw1');
      // The flows the addition counted by name went with the first process: the list says so.
      const list = c2.changeManager('sw1').counted(add.id);
      assert.deepEqual({ lost: list.lost, truncated: list.truncated }, { lost: true, truncated: true });
      const tracked = rt.flowTable.size;
      const first = [...rt.flowTable.keys()][0];
      assert.ok(first !== undefined, 'the pins found adopted as tracked connections');
      assert.equal(rt.livenessOf(first), 'unknown', 'an adopted connection is of unknown liveness');
      await bed.drainTraffic();
      assert.equal(bed.traffic.counters.reset, 0, `${bed.traffic.counters.reset} connections reset`);
      const adopted = c2.status(rt).pins.adopted;
      assert.ok(
        adopted !== undefined && adopted > 100,
        `the pins on the switch adopted as tracked connections (status says ${adopted})`,
      );
      assert.ok(tracked >= adopted, 'adopted pins are tracked connections');
      // Their connections ended by FIN each way: the adopted pins went with them.
      assert.equal(rt.flowTable.size, 0, 'every adopted connection ended');
      // Their pins went with them (or linger for the last ACK of a connection closed with a FIN each way).
      const left = [...rt.reconciler.desired.keys()].filter((id) => !rt.isLingering(id));
      assert.deepEqual(left, [], 'pins of connections that ended are no longer wanted');
    } finally {
      await bed.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
