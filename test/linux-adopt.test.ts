// Adopting a VIP's existing resilient group on the real kernel: members that are not flowpin's
// own nexthop objects are handed over in place, with live TCP connections through the group,
// no bucket changing server and no connection breaking; a group flowpin cannot drive is refused
// at start with the fix named, shown in the readiness, and not retried.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import pino from 'pino';
import { LAB_VIP4, LAB_VIP6, LabTopology } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import type { Controller } from '../controller/controller.js';
import { labController, withWarmTraffic } from '../cli/lab-controller.js';
import { until } from '../lib/until.js';
import { have, isRoot, skipUnless } from './helpers/tools.js';

const skip = skipUnless(
  isRoot() && have('nft', ['-v']) && have('ip', ['-V']) && have('/usr/bin/python3', ['-c', 'import ctypes']),
  'root with nft, ip and python3',
);
const PREFIX = 'fpadopt';

/**
 * Groups as an operator made them before flowpin: ids 101.. (IPv4) and 201.. (IPv6), one per server, a
 * resilient group per VIP.
 */
function operatorGroups(lab: LabTopology, timers: string[]): void {
  const lines: string[] = [];
  lab.servers.slice(0, lab.inGroup).forEach((s, i) => {
    lines.push(
      `nexthop add id ${101 + i} via ${s.addr4} dev ${s.dev}`,
      `nexthop add id ${201 + i} via ${s.addr6} dev ${s.dev}`,
    );
  });
  const ids = (base: number, n: number, weights = false): string =>
    lab.servers
      .slice(0, n)
      .map((_, i) => `${base + i}${weights && i === 0 ? ',2' : ''}`)
      .join('/');
  // Made with one server fewer, then the last added: the buckets interleave as a group's do after
  // its history (a new group's are in runs, as a wholesale member swap would lay them out again).
  lines.push(
    `nexthop add id 100 group ${ids(101, lab.inGroup - 1)} type resilient buckets 64 ${timers.join(' ')}`,
  );
  lines.push(
    `nexthop add id 200 group ${ids(201, lab.inGroup - 1, true)} type resilient buckets 64 ${timers.join(' ')}`,
  );
  // The IPv6 group weighs its first server double: weights are kept through the hand-over.
  lines.push(
    `nexthop replace id 100 group ${ids(101, lab.inGroup)} type resilient`,
    `nexthop replace id 200 group ${ids(201, lab.inGroup, true)} type resilient`,
  );
  lines.push(`route add ${LAB_VIP4}/32 nhid 100`, `route add ${LAB_VIP6}/128 nhid 200`);
  execFileSync('ip', ['-n', lab.router, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** Gateway of each bucket of a group, in bucket order. */
function bucketServers(lab: LabTopology, gid: number): string[] {
  const nh = JSON.parse(execFileSync('ip', ['-n', lab.router, '-j', 'nexthop', 'show']).toString()) as {
    id: number;
    gateway?: string;
  }[];
  const gw = new Map(nh.map((n) => [n.id, n.gateway ?? '?']));
  const b = JSON.parse(
    execFileSync('ip', ['-n', lab.router, '-j', 'nexthop', 'bucket', 'show', 'id', String(gid)]).toString(),
  ) as { bucket: { index: number; nhid: number } }[];
  return b.sort((x, y) => x.bucket.index - y.bucket.index).map((x) => gw.get(x.bucket.nhid) ?? '?');
}

const group = (lab: LabTopology, gid: number): { id: number; weight?: number }[] =>
  (
    JSON.parse(
      execFileSync('ip', ['-n', lab.router, '-j', 'nexthop', 'show', 'id', String(gid)]).toString(),
    ) as { group: { id: number; weight?: number }[] }[]
  )[0]?.group ?? [];
const members = (lab: LabTopology, gid: number): number[] => group(lab, gid).map((g) => g.id);

test(
  "an operator's group of other nexthop ids is handed over in place: no bucket changes server, no connection breaks",
  { skip, timeout: 90_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: PREFIX });
    const traffic = new LabTraffic(lab);
    let controller: Controller | undefined;
    try {
      operatorGroups(lab, ['idle_timer', '0', 'unbalanced_timer', '0']);
      const before4 = bucketServers(lab, 100);
      const before6 = bucketServers(lab, 200);
      const opened = await traffic.open(lab, 120, 60, { stallMs: 3000 });
      assert.equal(opened.open4 + opened.open6, 180);
      controller = await withWarmTraffic(lab, labController(lab, { replies: true }));
      const c = controller;
      await withWarmTraffic(
        lab,
        until('the controller to be ready', 30_000, () => c.readiness().ready),
      );
      assert.ok(
        members(lab, 100).every((id) => id >= 7000 && id < 8000),
        `IPv4 members: ${members(lab, 100).join(',')}`,
      );
      assert.ok(
        members(lab, 200).every((id) => id >= 7000 && id < 8000),
        `IPv6 members: ${members(lab, 200).join(',')}`,
      );
      assert.deepEqual(bucketServers(lab, 100), before4, 'every IPv4 bucket keeps its server');
      assert.deepEqual(bucketServers(lab, 200), before6, 'every IPv6 bucket keeps its server');
      assert.deepEqual(
        group(lab, 200).map((g) => g.weight ?? 1),
        [2, 1, 1, 1],
        'weights kept',
      );
      // The operator's objects are left for the operator to delete.
      execFileSync('ip', ['-n', lab.router, 'nexthop', 'show', 'id', '101']);
      const closed = await traffic.close();
      assert.equal(closed.broken, 0, `broken: ${JSON.stringify(closed.reasons)}`);
      assert.equal(closed.echoed, closed.sent);
    } finally {
      traffic.stop();
      await controller?.stop();
      lab.destroy();
    }
  },
);

test(
  'a group flowpin cannot drive is refused at start with the fix, in the readiness, and not retried',
  { skip, timeout: 60_000 },
  async () => {
    const lab = await LabTopology.create({ prefix: PREFIX });
    let controller: Controller | undefined;
    let log = '';
    const logger = pino(
      { level: 'info' },
      new Writable({ write: (chunk: Buffer, _e, cb) => ((log += chunk.toString()), cb()) }),
    );
    try {
      operatorGroups(lab, ['idle_timer', '120', 'unbalanced_timer', '0']);
      controller = await labController(lab, { logger });
      const c = controller;
      await until('the refusal in the readiness', 10_000, () =>
        c.readiness().reasons.some((r) => /not connected/.test(r)),
      );
      const reason = c.readiness().reasons.find((r) => /not connected/.test(r)) ?? '';
      assert.match(reason, /idle_timer 120/);
      assert.match(
        reason,
        /fix: ip nexthop replace id 100 group 101\/102\/103\/104 type resilient idle_timer 0 unbalanced_timer 0/,
      );
      assert.equal(c.readiness().ready, false);
      assert.match(log, /not retrying/);
      assert.doesNotMatch(log, /retrying in the background/);
    } finally {
      await controller?.stop();
      lab.destroy();
    }
  },
);
