// The Linux adapter's parts: refusing to start when look-ups may not tell where the kernel
// forwards, errors that carry the command, argument checks, batch output mapping, the upkeep
// model against a bucket table the kernel produced, and the VXLAN mirror path end to end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { MirrorDecoder } from '../mirror-receiver/decoder.js';
import { OK } from '../mirror-receiver/drop-reasons.js';
import { MirrorReceiver } from '../mirror-receiver/receiver.js';
import type { FlowEvent } from '../mirror-receiver/flow-event.js';
import { CommandRunner } from '../switch-adapters/linux/exec.js';
import { matchBatchOutput } from '../switch-adapters/linux/iproute.js';
import { LabTopology, LAB_VIP4 } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import { upkeep } from '../switch-adapters/linux/upkeep.js';
import { SwitchCommandError, SwitchProtocolError } from '../switch-adapters/errors.js';
import { ethernet, tcpPacket } from '../lib/frames.js';
import { labAdapter, withWarmTraffic } from '../cli/lab-controller.js';
import { until } from '../lib/until.js';
import { have, isRoot, skipUnless } from './helpers/tools.js';

const skip = skipUnless(isRoot() && have('nft', ['-v']) && have('ip', ['-V']), 'root with nft and ip');

test(
  'with the veth socket hash left in place, the adapter refuses to start and names the fix',
  { skip, timeout: 60_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: 'fpadapt', deterministicHash: false });
    try {
      const adapter = labAdapter(lab, { probeTimeoutMs: 15_000 });
      await assert.rejects(withWarmTraffic(lab, adapter.connect()), (err: unknown) => {
        assert.ok(err instanceof SwitchProtocolError, String(err));
        assert.match(err.message, /SYNs forwarded toward it left by another device than the look-up says/);
        assert.match(err.message, /rxhash off/);
        return true;
      });
      assert.deepEqual(
        await adapter.resolve([
          { family: 4, src: lab.clients4[0] as string, dst: LAB_VIP4, sport: 1234, dport: 7007 },
        ]),
        [undefined],
        'no answer from a look-up that may be wrong',
      );
    } finally {
      lab.destroy();
    }
  },
);

test(
  'a hash policy under which look-ups and forwarding differ is refused at connect',
  { skip, timeout: 30_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: 'fpadapt', mirror: false });
    try {
      execFileSync('ip', [
        'netns',
        'exec',
        lab.router,
        'sysctl',
        '-qw',
        'net.ipv6.fib_multipath_hash_policy=3',
      ]);
      await assert.rejects(labAdapter(lab).connect(), /net.ipv6.fib_multipath_hash_policy is 3/);
    } finally {
      lab.destroy();
    }
  },
);

test(
  'a failing command is reported with its text and what it printed; the prefix takes no shell words',
  { skip, timeout: 10_000 },
  async () => {
    const run = new CommandRunner({ switchName: 'r1', prefix: [], timeoutMs: 5000 });
    await assert.rejects(run.ok(['ip', 'nexthop', 'show', 'id', '999999999']), (err: unknown) => {
      assert.ok(err instanceof SwitchCommandError);
      assert.equal(err.command, 'ip nexthop show id 999999999');
      assert.match(err.detail, /\S/);
      return true;
    });
    assert.throws(
      () => new CommandRunner({ switchName: 'r1', prefix: ['ssh', 'router; rm -rf /'], timeoutMs: 1 }),
      /prefix word/,
    );
  },
);

test('batch output maps back to its lines, failed lines (Command failed -:N) answering nothing', () => {
  const out = '[{"gateway":"10.0.0.1","dev":"s1"}]\n[{"gateway":"10.0.0.3","dev":"s3"}]\n';
  assert.deepEqual(
    matchBatchOutput(3, out, 'Error: any valid prefix is expected rather than "x".\nCommand failed -:2\n'),
    [{ gateway: '10.0.0.1', dev: 's1' }, undefined, { gateway: '10.0.0.3', dev: 's3' }],
  );
  assert.throws(() => matchBatchOutput(3, out, ''), /answers/);
});

test('the upkeep model reproduces a bucket table the kernel produced for an added member', () => {
  // Captured from this kernel: a 64-bucket group of 7000/7002/7003, then 7008 added (idle_timer 0).
  const before =
    '3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,3,3,3,3,3,2,2,2,2,2,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0'
      .split(',')
      .map((x) => 7000 + Number(x));
  const after =
    '8,8,8,8,8,3,3,3,3,3,3,3,3,3,3,3,8,8,8,8,8,8,2,2,2,2,2,2,2,2,2,2,3,3,3,3,3,2,2,2,2,2,2,8,8,8,8,8,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0'
      .split(',')
      .map((x) => 7000 + Number(x));
  const r = upkeep(
    before,
    [7000, 7002, 7003, 7008].map((id) => ({ id, weight: 1 })),
  );
  assert.deepEqual(r.table, after);
  assert.equal(r.moved.length, 16);
});

test('VXLAN frames decode to the mirrored TCP segment; a header without the I flag is dropped', () => {
  const inner = ethernet(
    { ethertype: 0x0800 },
    tcpPacket('198.18.0.2', LAB_VIP4, { sport: 40000, dport: 7007, flags: 0x02 }),
  );
  const vx = Buffer.concat([Buffer.from([0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0]), inner]);
  const d = new MirrorDecoder();
  assert.equal(d.decodeVxlanPayload(vx, '192.0.2.1', '192.0.2.2'), OK);
  assert.equal(d.view.vni, 0x1234);
  assert.equal(d.view.sport, 40000);
  const bad = Buffer.from(vx);
  bad[0] = 0;
  assert.notEqual(d.decodeVxlanPayload(bad, '192.0.2.1', '192.0.2.2'), OK);
  assert.ok(d.counters.summary().dropped['bad-vxlan-header'] === 1);
});

test(
  'the router mirrors SYNs over VXLAN from netdev ingress and the receiver decodes them',
  { skip, timeout: 60_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: 'fpadapt' });
    const events: FlowEvent[] = [];
    const receiver = new MirrorReceiver((ev) => events.push(ev));
    const traffic = new LabTraffic(lab);
    try {
      await receiver.listenVxlan({ socket: await lab.collectorSocket() });
      const adapter = labAdapter(lab);
      await withWarmTraffic(lab, adapter.connect());
      events.length = 0;
      await traffic.open(lab, 20, 10);
      await until('30 SYN copies', 10_000, () => events.filter((e) => e.flags === 0x02).length >= 30);
      const syn = events.find((e) => e.flags === 0x02);
      assert.equal(syn?.encap, 'vxlan');
      assert.equal(syn?.outerSrc, '192.0.2.1');
      assert.ok(
        events.every((e) => e.dport === 7007),
        'only client-to-VIP segments are copied',
      );
    } finally {
      traffic.stop();
      await receiver.stop();
      lab.destroy();
    }
  },
);
