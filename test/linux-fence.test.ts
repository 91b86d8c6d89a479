// The Linux adapter's fence on the real kernel (a lab of network namespaces, removed after):
// every nft batch of a fenced writer starts by deleting and re-adding its epoch's element of the
// one-element fence set, so once a newer owner has taken the fence, a stale owner's pin writes
// and removals fail whole (nft -f is one transaction) and its group writes (ip nexthop, after a
// fence-only batch) are not made: nothing of it lands in nft or in the group.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { labAdapter, withWarmTraffic } from '../cli/lab-controller.js';
import type { FlowSpec, PinRule } from '../switch-adapters/contract.js';
import { SwitchFencedError } from '../switch-adapters/fence.js';
import { LabTopology, LAB_VIP4 } from '../switch-adapters/linux/lab/topology.js';
import { fenceLines, FENCE_SET, parseFence, parsePinMap, TABLE } from '../switch-adapters/linux/nft.js';
import { have, isRoot, skipUnless } from './helpers/tools.js';

const skip = skipUnless(isRoot() && have('nft', ['-v']) && have('ip', ['-V']), 'root with nft and ip');

test(
  'a stale owner after a newer one: its nft batches are refused whole and its group writes not made',
  { skip, timeout: 120_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: 'fpfence', mirror: false });
    const router = (args: string[], input?: string): string =>
      execFileSync(lab.routerPrefix[0] as string, [...lab.routerPrefix.slice(1), ...args], {
        input,
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: 30_000,
      }).toString();
    const flow = (i: number): FlowSpec => ({
      family: 4,
      src: lab.clients4[0] as string,
      dst: LAB_VIP4,
      sport: 30000 + i,
      dport: 7007,
    });
    const pin = (i: number, nh = lab.members4[0] as string): PinRule => ({
      flow: flow(i),
      nexthop: nh,
      idleTimeoutS: 600,
    });
    const snapshot = (): { pins: string[]; group: string; fence: bigint[] } => ({
      pins: parsePinMap(JSON.parse(router(['nft', '-j', 'list', 'map', 'inet', TABLE, 'pins4'])), 4)
        .map((e) => `${e.flow.sport}:${e.mark}`)
        .sort(),
      group: router(['ip', 'nexthop', 'show']),
      fence: parseFence(JSON.parse(router(['nft', '-j', 'list', 'set', 'inet', TABLE, FENCE_SET]))),
    });
    try {
      const old = labAdapter(lab);
      const now = labAdapter(lab);
      await withWarmTraffic(lab, old.connect());
      await withWarmTraffic(lab, now.connect());
      await old.fenceTakeover({ epoch: 3n });
      assert.deepEqual(snapshot().fence, [3n]);
      assert.equal((await old.installPins([pin(1)], { epoch: 3n }))[0]?.ok, true);
      // A newer owner takes the fence and writes.
      await now.fenceTakeover({ epoch: 5n });
      assert.equal((await now.installPins([pin(2, lab.members4[1])], { epoch: 5n }))[0]?.ok, true);
      const before = snapshot();
      assert.deepEqual(before.fence, [5n]);
      assert.equal(before.pins.length, 2);
      // The old owner goes on writing: pins, removals, group members, a takeover of its own.
      await assert.rejects(old.installPins([pin(3)], { epoch: 3n }), SwitchFencedError);
      await assert.rejects(old.removePins([flow(1)], { epoch: 3n }), SwitchFencedError);
      await assert.rejects(
        old.removeGroupMember(LAB_VIP4, lab.members4[0] as string, { epoch: 3n }),
        /fence/,
      );
      await assert.rejects(old.fenceTakeover({ epoch: 4n }), SwitchFencedError);
      assert.deepEqual(snapshot(), before, 'nothing of the stale owner landed');
      // By hand, the kernel's word: a batch led by a stale fence element changes nothing.
      const stale = [
        ...fenceLines(3n),
        `add element inet ${TABLE} pins4 { 10.9.9.9 . ${LAB_VIP4} . 1 . 7007 : 1 }`,
      ];
      assert.throws(() => router(['nft', '-f', '-'], stale.join('\n') + '\n'));
      assert.deepEqual(snapshot(), before);
      // The new owner's batches go on.
      await now.removePins([flow(2)], { epoch: 5n });
      assert.equal(snapshot().pins.length, 1);
    } finally {
      lab.destroy();
    }
  },
);
