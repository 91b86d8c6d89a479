// The simulator's dataplane endpoint and reset log, the ground truth of the torture runner:
// an external load (`flowpin load`, its own process) opens and closes connections through the
// simulator (each close a FIN each way and the final ACK); a group change made on the switch
// with nobody pinning resets the connections the removed server held, and the reset log names
// each one with the server that accepted it, where the breaking segment went and how.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ResetLine } from '../switch-sim/reset-log.js';
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  ipv4ToInt,
} from '../switch-sim/dataplane-wire.js';
import { flowpin, until } from '../torture/procs.js';

test('dataplane wire: requests and replies round-trip; other datagrams are refused', () => {
  const segs = [
    { src: ipv4ToInt('10.100.0.9'), dst: ipv4ToInt('192.0.2.80'), sport: 40000, dport: 443, flags: 0x02 },
  ];
  assert.deepEqual(decodeRequest(encodeRequest(7, segs)), { batch: 7, segs });
  const results = [{ outcome: 'reset' as const, via: 'ecmp' as const, nexthop: ipv4ToInt('10.0.1.3') }];
  assert.deepEqual(decodeReply(encodeReply(9, results)), { batch: 9, results });
  assert.equal(decodeRequest(Buffer.from('not a batch')), undefined);
  assert.equal(decodeRequest(encodeReply(1, results)), undefined, 'a reply is not a request');
});

test(
  'dataplane: an external load through the simulator; a group change with no pins resets what the removed server held, each reset logged',
  { timeout: 90_000 },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-dataplane-'));
    const cfg = path.join(dir, 'sim.yaml');
    writeFileSync(
      cfg,
      'switch: { mirrorFinRst: true }\nmirror: { replies: true, replyRst: true, replyFin: true }\ngnmi: { enabled: false }\n',
    );
    const resetLog = path.join(dir, 'resets.jsonl');
    const sim = flowpin([
      'sim',
      '--config',
      cfg,
      '--eapi-port',
      '0',
      '--status-port',
      '0',
      '--mirror',
      '127.0.0.1:9',
      '--no-traffic',
      '--dataplane',
      '127.0.0.1:0',
      '--reset-log',
      resetLog,
    ]);
    try {
      const dp = await until(
        () => /dataplane (\S+)/.exec(sim.out())?.[1],
        30_000,
        `the simulator (${sim.out()})`,
      );
      const eapi = /eAPI\s+(http:\S+)/.exec(sim.out())?.[1] as string;
      const counters = /counters (http:\S+)/.exec(sim.out())?.[1] as string;
      const load = flowpin([
        'load',
        '--dataplane',
        dp,
        '--rate',
        '300',
        '--duration-s',
        '4',
        '--lifetime-median-s',
        '1',
        '--lifetime-max-s',
        '3',
        '--finish-s',
        '30',
        '--seed',
        '3',
      ]);
      // Once connections are open, take 10.0.1.2 out of the group on the switch itself: nothing pins them.
      await until(
        async () =>
          ((await (await fetch(counters)).json()) as { connections: { active: number } }).connections.active >
          100,
        30_000,
        'connections open',
      );
      const res = await fetch(eapi, {
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
            cmds: ['enable', 'configure', 'no ip route 192.0.2.80/32 10.0.1.2'],
            format: 'json',
          },
          id: 1,
        }),
      });
      assert.equal(res.status, 200);
      const removedAt = Date.now();
      await load.exit;
      const summary = (
        JSON.parse(load.out().trim().split('\n').pop() ?? '{}') as {
          summary: { opened: number; closed: number; reset: number; unanswered: number; abandoned: number };
        }
      ).summary;
      const c = (await (await fetch(counters)).json()) as {
        connections: { opened: number; closedCleanly: number; reset: number; active: number };
        dataplane: { resetLogged: number; liveByServer: Record<string, number> };
      };
      assert.equal(summary.unanswered, 0, 'every segment answered');
      assert.equal(
        summary.abandoned,
        0,
        'every connection finished before the load gave up on it (a loaded machine: --finish-s 30)',
      );
      assert.ok(summary.reset > 0, 'connections held by 10.0.1.2 were reset');
      assert.equal(c.connections.reset, summary.reset, 'the simulator and the load agree on resets');
      assert.equal(c.connections.opened, summary.opened);
      assert.equal(
        c.connections.closedCleanly + c.connections.reset,
        c.connections.opened,
        'every connection closed (both FINs, the final ACK) or was reset',
      );
      assert.equal(c.connections.active, 0);
      await sim.stop();
      const lines = readFileSync(resetLog, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as ResetLine);
      assert.equal(lines.length, summary.reset, 'one line per reset connection');
      for (const l of lines) {
        assert.equal(l.server, '10.0.1.2', JSON.stringify(l));
        assert.ok(l.reached !== null && l.reached !== '10.0.1.2', JSON.stringify(l));
        assert.equal(l.via, 'ecmp');
        assert.equal(l.pinned, false);
        assert.ok(
          l.openedAt < removedAt + 50 && l.at >= removedAt - 50 && l.openedAt <= l.at,
          JSON.stringify(l),
        );
      }
    } finally {
      await sim.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
