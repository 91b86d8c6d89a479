// The gNMI adapter against the simulator's gNMI target, faults included: Capabilities
// checked, TLS with a CA file, sequence ids recovered at start, a refused Set applies
// nothing, capacity refusals split to what fits and report table-full, programming state
// (pending, programmed, table-full) and table usage as the target reports them, a deadline
// exceeded, the counter stream dropped and re-established, a device restart (counters reset,
// pins kept), and the target down for a while.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GnmiAdapter, type GnmiAdapterOptions } from '../switch-adapters/gnmi/adapter.js';
import type { FlowSpec, InstalledPin, PinRule } from '../switch-adapters/contract.js';
import { rulePath } from '../switch-adapters/gnmi/openconfig.js';
import {
  SwitchCommandError,
  SwitchProtocolError,
  SwitchTimeoutError,
  SwitchTransportError,
} from '../switch-adapters/errors.js';
import { GnmiServer } from '../switch-sim/gnmi/server.js';
import { issueCert, makeCa } from './helpers/certs.js';
import { have, skipUnless } from './helpers/tools.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const flow = (i: number): FlowSpec => ({
  family: 4,
  src: `10.100.${i >> 8}.${i & 255}`,
  dst: VIP,
  sport: 20000 + i,
  dport: 443,
});
const pin = (i: number, nh = NEXTHOPS[0] as string): PinRule => ({
  flow: flow(i),
  nexthop: nh,
  idleTimeoutS: 300,
});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function setup(capacity = 50): {
  sw: ReturnType<typeof testSwitch>['sw'];
  clock: ReturnType<typeof testSwitch>['clock'];
  server: GnmiServer;
  make: (over?: Partial<GnmiAdapterOptions>) => GnmiAdapter;
  start: () => Promise<string>;
} {
  const { sw, clock } = testSwitch({ pinCapacity: capacity });
  let address = '';
  let port = 0;
  const box = {
    server: new GnmiServer(sw, {
      host: '127.0.0.1',
      port: 0,
      username: 'admin',
      password: 'pw',
      minSampleMs: 10,
    }),
  };
  return {
    sw,
    clock,
    get server() {
      return box.server;
    },
    start: async () => {
      const r = await box.server.start();
      address = r.address;
      port = r.port;
      return address;
    },
    make: (over = {}) =>
      new GnmiAdapter({
        switchName: 'sw1',
        address,
        insecure: true,
        username: 'admin',
        password: 'pw',
        ingressInterfaces: ['Ethernet47'],
        sampleIntervalMs: 30,
        timeoutMs: 1000,
        pinTable: { component: 'Chip0', resource: 'policy-forwarding-rules' },
        ...over,
      }),
    // Used by the restart test to bring a new server up on the same port.
    ...{
      restartOnSamePort: async () => {
        box.server = new GnmiServer(sw, {
          host: '127.0.0.1',
          port,
          username: 'admin',
          password: 'pw',
          minSampleMs: 10,
        });
        await box.server.start();
      },
    },
  };
}

describe('gNMI adapter', () => {
  test(
    'Capabilities are checked: a missing model is named; no TLS without a CA file unless insecure is explicit',
    { timeout: 10_000 },
    async () => {
      const bed = setup();
      await bed.start();
      try {
        const a = bed.make({ requiredModels: ['openconfig-network-instance', 'openconfig-bgp'] });
        await assert.rejects(
          a.connect(),
          (e: Error) =>
            e instanceof SwitchProtocolError &&
            /model openconfig-bgp/.test(e.message) &&
            !/openconfig-network-instance,/.test(e.message.split('lacks')[1]?.split('(')[0] ?? ''),
        );
        await a.close();
        assert.throws(
          () =>
            new GnmiAdapter({ switchName: 'sw1', address: '127.0.0.1:1', ingressInterfaces: ['Ethernet47'] }),
          /caFile/,
        );
      } finally {
        await bed.server.stop();
      }
    },
  );

  test(
    "sequence ids are recovered from the device; a second adapter sees and removes the first one's pins",
    { timeout: 15_000 },
    async () => {
      const bed = setup();
      await bed.start();
      const a = bed.make();
      const b = bed.make();
      try {
        await a.connect();
        assert.ok((await a.installPins([pin(1), pin(2), pin(3)])).every((o) => o.ok));
        await a.removePins([flow(2)]);
        await b.connect();
        const listed = await b.listPins();
        assert.deepEqual(listed.map((p) => p.flow.sport).sort(), [20001, 20003]);
        assert.ok(listed.every((p) => p.programmed));
        // A new pin takes a free sequence id, never one in use.
        await b.installPins([pin(4)]);
        const names = bed.sw.pins.all().map((e) => e.name);
        assert.equal(names.length, 3);
        assert.equal(bed.sw.pins.get('oc/flowpin/1')?.match.sport, 20001);
        assert.equal(bed.sw.pins.get('oc/flowpin/3')?.match.sport, 20003);
        assert.equal(
          bed.sw.pins.all().find((e) => e.name !== 'oc/flowpin/1' && e.name !== 'oc/flowpin/3')?.match.sport,
          20004,
        );
        await b.removePins([flow(1), flow(3), flow(4)]);
        assert.equal(bed.sw.pins.all().length, 0);
      } finally {
        await a.close();
        await b.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'a freed sequence id is taken again without looking through the ids in use (a table of 100,000 rules turns over)',
    { timeout: 15_000 },
    async () => {
      const bed = setup(1000);
      await bed.start();
      const a = bed.make();
      try {
        await a.connect();
        assert.ok(
          (await a.installPins(Array.from({ length: 300 }, (_, i) => pin(i + 1)))).every((o) => o.ok),
        );
        const probes = a.stats.seqProbes;
        for (let i = 1; i <= 5; i++) {
          await a.removePins([flow(i)]);
          assert.ok((await a.installPins([pin(1000 + i)])).every((o) => o.ok));
        }
        await a.installPins([pin(2000), pin(2001)]);
        assert.ok(
          a.stats.seqProbes - probes <= 10,
          `${a.stats.seqProbes - probes} ids in use looked at to take 7`,
        );
        const seqs = bed.sw.pins.all().map((e) => Number(e.name.split('/').at(-1)));
        assert.equal(new Set(seqs).size, 302, 'every rule has its own sequence id');
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'a refused Set applies nothing; a capacity refusal installs what fits and reports the rest table-full',
    { timeout: 15_000 },
    async () => {
      const bed = setup(6);
      await bed.start();
      const a = bed.make({ pinBatchSize: 10 });
      try {
        await a.connect();
        // An IPv6 source with an IPv4 destination: the target refuses the whole SetRequest.
        const bad: PinRule = {
          flow: { family: 6, src: '2001:db8:100::1', dst: VIP, sport: 1, dport: 443 },
          nexthop: NEXTHOPS[0] as string,
          idleTimeoutS: 300,
        };
        await assert.rejects(
          a.installPins([pin(1), bad, pin(2)]),
          (e: Error) => e instanceof SwitchCommandError && e.code === 3,
        );
        assert.equal(bed.sw.pins.all().length, 0, 'nothing half-applied');
        const outcomes = await a.installPins(Array.from({ length: 10 }, (_, i) => pin(10 + i)));
        assert.equal(outcomes.filter((o) => o.ok).length, 6);
        for (const o of outcomes.filter((x) => !x.ok)) {
          assert.equal(o.reason, 'table-full');
          assert.match(o.error ?? '', /^table-full/);
        }
        assert.equal(bed.sw.pins.programmed, 6);
        assert.deepEqual(await a.pinTableUsage?.(), { capacity: 6, used: 6 });
        assert.equal((await a.listPins()).filter((p) => p.programmed).length, 6);
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'programming state as the target reports it: pending, then programmed; table-full when others took the room',
    { timeout: 15_000 },
    async () => {
      const bed = setup(4);
      await bed.start();
      const a = bed.make();
      try {
        await a.connect();
        bed.sw.programDelayMs = 1000;
        await a.installPins([pin(1), pin(2)]);
        bed.sw.pins.reserved = 3; // another owner takes entries while ours wait to be programmed
        let listed = await a.listPins();
        assert.deepEqual(
          listed.map((p) => [p.programmed, p.reason]),
          [
            [false, 'pending'],
            [false, 'pending'],
          ],
        );
        bed.clock.advance(1000);
        listed = await a.listPins();
        assert.deepEqual(
          listed.map((p) => [p.programmed, p.reason]),
          [
            [true, undefined],
            [false, 'table-full'],
          ],
        );
        assert.deepEqual(await a.pinTableUsage?.(), { capacity: 4, used: 4 });
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'read-back names the rules (Subscribe ONCE; gNMI 3.5.2.4: a rule gone sends nothing, fails nothing): pending, programmed, table-full, gone; unknown flows cost no call',
    { timeout: 15_000 },
    async () => {
      const bed = setup(4);
      await bed.start();
      const a = bed.make();
      try {
        await a.connect();
        bed.sw.programDelayMs = 1000;
        await a.installPins([pin(1), pin(2), pin(3)]);
        // Another client deletes the third rule before flowpin reads it back.
        const seq3 =
          bed.sw.pins
            .all()
            .find((e) => e.match.sport === 20003)
            ?.name.split('/')
            .at(-1) ?? '';
        bed.server.model.applySet({
          delete: [{ elem: rulePath({ networkInstance: 'default', policyId: 'flowpin' }, Number(seq3)) }],
        });
        bed.sw.pins.reserved = 3; // another owner takes entries while ours wait to be programmed
        const state = (ps: (InstalledPin | undefined)[]) =>
          ps.map((p) => (p === undefined ? undefined : [p.programmed, p.reason]));
        assert.deepEqual(state(await a.readPins([flow(1), flow(2), flow(3), flow(9)])), [
          [false, 'pending'],
          [false, 'pending'],
          undefined,
          undefined,
        ]);
        bed.clock.advance(1000);
        assert.deepEqual(state(await a.readPins([flow(1), flow(2), flow(3)])), [
          [true, undefined],
          [false, 'table-full'],
          undefined,
        ]);
        const calls = a.transport.stats.calls;
        assert.deepEqual(await a.readPins([flow(9)]), [undefined]);
        assert.equal(
          a.transport.stats.calls,
          calls,
          'a flow flowpin wrote no rule for is answered without asking',
        );
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'a counter sample spread over several notifications (more than 1,000 leaves) keeps programmed rules programmed in the listing',
    { timeout: 20_000 },
    async () => {
      const bed = setup(800);
      await bed.start();
      // Samples stay fresh for two intervals: long enough for a loaded machine to list in time.
      const a = bed.make({ sampleIntervalMs: 250, timeoutMs: 5000 });
      try {
        await a.connect();
        const n = 600;
        const pins = Array.from({ length: n }, (_, i) => pin(i + 1));
        assert.ok((await a.installPins(pins)).every((o) => o.ok));
        bed.clock.advance(1000);
        await until('every rule read back programmed', async () =>
          (await a.readPins(pins.map((p) => p.flow))).every((p) => p?.programmed === true),
        );
        // A whole sample after that: its state leaves (3 a rule, 1,800) span more than one
        // notification (at most 1,000 leaves each), one rule's leaves split between two.
        const tick = a.counters.tick;
        await until('two samples more', () => a.counters.tick > tick + 2 * Math.ceil((3 * n) / 1000), 10_000);
        const listed = await a.listPins();
        assert.equal(listed.length, n);
        const pending = listed.filter((p) => !p.programmed);
        assert.equal(pending.length, 0, `${pending.length} programmed rules listed as ${pending[0]?.reason}`);
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'a deadline exceeded is a timeout error, and the next call succeeds',
    { timeout: 15_000 },
    async () => {
      const bed = setup();
      await bed.start();
      const a = bed.make({ timeoutMs: 300 });
      try {
        await a.connect();
        bed.server.faults.set({ hangNext: 1, hangMs: 2000 });
        await assert.rejects(a.installPins([pin(1)]), (e: Error) => e instanceof SwitchTimeoutError);
        assert.ok((await a.installPins([pin(1)])).every((o) => o.ok));
        assert.equal((await a.listPins()).length, 1);
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'a Set whose reply was lost: its sequence ids are not reused while the rules may exist; a listing adopts them',
    { timeout: 20_000 },
    async () => {
      const bed = setup();
      await bed.start();
      const a = bed.make({ timeoutMs: 300 });
      const sportAt = (seq: number): number | undefined => bed.sw.pins.get(`oc/flowpin/${seq}`)?.match.sport;
      try {
        await a.connect();
        bed.server.faults.set({ lostReplyNext: 1, hangMs: 1000 });
        await assert.rejects(a.installPins([pin(1), pin(2)]), (e: Error) => e instanceof SwitchTimeoutError);
        // The target carried it out.
        assert.deepEqual([sportAt(1), sportAt(2)], [20001, 20002]);
        // Other flows written before any listing take other sequence ids: flows 1 and 2 keep their rules.
        assert.ok((await a.installPins([pin(3), pin(4)])).every((o) => o.ok));
        assert.deepEqual([sportAt(1), sportAt(2)], [20001, 20002]);
        // The listing adopts what the lost Set wrote.
        const listed = await a.listPins();
        assert.deepEqual(listed.map((p) => p.flow.sport).sort(), [20001, 20002, 20003, 20004]);
        assert.ok(listed.every((p) => p.programmed));
        await a.removePins([flow(1), flow(2), flow(3), flow(4)]);
        assert.equal(bed.sw.pins.all().length, 0);
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'a flow held by two rules keeps one: the other is deleted (by removeStrays, not the listing) once the kept one forwards, and both go with the pin',
    { timeout: 20_000 },
    async () => {
      const bed = setup();
      await bed.start();
      const a = bed.make();
      const other = bed.make();
      const rulesOf = (sport: number): string[] =>
        bed.sw.pins
          .all()
          .filter((e) => e.match.sport === sport)
          .map((e) => e.name)
          .sort();
      try {
        await a.connect();
        assert.ok((await a.installPins([pin(1), pin(2)])).every((o) => o.ok));
        // A second writer (a restarted controller, or a lost reply retried) holds flows 1 and 2 again at
        // other ids.
        await other.connect();
        await other.listPins();
        (other as unknown as { byFlow: Map<string, unknown> }).byFlow.clear();
        (other as unknown as { bySeq: Map<number, unknown> }).bySeq.clear();
        (other as unknown as { nextSeq: number }).nextSeq = 10;
        assert.ok((await other.installPins([pin(1), pin(2)])).every((o) => o.ok));
        assert.deepEqual(rulesOf(20001), ['oc/flowpin/1', 'oc/flowpin/10']);
        const listed = await a.listPins();
        assert.deepEqual(listed.map((p) => p.flow.sport).sort(), [20001, 20002], 'one pin per flow');
        assert.deepEqual(rulesOf(20001), ['oc/flowpin/1', 'oc/flowpin/10'], 'the listing deletes nothing');
        assert.equal(await a.removeStrays(), 2);
        assert.deepEqual(rulesOf(20001), ['oc/flowpin/1'], 'the extra rule is deleted');
        assert.deepEqual(rulesOf(20002), ['oc/flowpin/2']);
        assert.equal(a.stats.extrasDeleted, 2);
        // While the kept rule is still being programmed the extra one stays (it may be what
        // forwards the flow), and the pin's removal takes both.
        bed.sw.programDelayMs = 1000;
        assert.ok((await a.installPins([pin(5)])).every((o) => o.ok));
        (other as unknown as { nextSeq: number }).nextSeq = 20;
        assert.ok((await other.installPins([pin(5)])).every((o) => o.ok));
        const pending = await a.listPins();
        assert.deepEqual(
          pending.filter((p) => p.flow.sport === 20005).map((p) => p.reason),
          ['pending'],
        );
        assert.equal(await a.removeStrays(), 0);
        assert.equal(
          rulesOf(20005).length,
          2,
          `the extra rule stays while the kept one is pending: ${JSON.stringify(bed.sw.pins.all().map((e) => [e.name, e.match.sport, e.status]))}`,
        );
        await a.removePins([flow(1), flow(5)]);
        assert.deepEqual(rulesOf(20005), [], "no rule holds the removed pin's flow");
      } finally {
        await a.close();
        await other.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'the counter stream is re-established when dropped; a device restart resets counters and keeps pins',
    { timeout: 20_000 },
    async () => {
      const bed = setup();
      await bed.start();
      const a = bed.make();
      try {
        await a.connect();
        await a.installPins([pin(1), pin(2)]);
        const send = (n: number) => {
          for (let k = 0; k < n; k++)
            bed.sw.deliver({
              src: flow(1).src,
              dst: VIP,
              sport: flow(1).sport,
              dport: 443,
              protocol: 6,
              flags: 0x10,
              bytes: 100,
            });
        };
        send(5);
        await until('a sample with the counter', () => a.counters.sample(1)?.packets === 5);
        assert.equal((await a.listPins()).find((p) => p.flow.sport === 20001)?.packets, 5);
        const subscribes = a.counters.stats.subscribes;
        assert.equal(bed.server.dropStreams(), 1);
        await until(
          'the stream re-established',
          () => a.counters.stats.subscribes > subscribes && a.counters.healthy,
        );
        send(2);
        await until('counters flowing again', () => a.counters.sample(1)?.packets === 7);
        bed.server.restartDevice();
        await until(
          'the stream back after the restart',
          () => a.counters.healthy && a.counters.sample(1)?.packets === 0,
        );
        const listed = await a.listPins();
        assert.equal(listed.length, 2, 'no pin lost');
        assert.ok(listed.every((p) => p.programmed));
        assert.equal(listed.find((p) => p.flow.sport === 20001)?.packets, 0, 'the counter went back to zero');
        assert.ok(a.counters.stats.backwards >= 1);
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );

  test(
    'the target down for a while: calls fail as transport errors, then everything recovers',
    { timeout: 20_000 },
    async () => {
      const bed = setup() as ReturnType<typeof setup> & { restartOnSamePort: () => Promise<void> };
      await bed.start();
      const a = bed.make();
      try {
        await a.connect();
        await a.installPins([pin(1)]);
        await bed.server.stop();
        await assert.rejects(
          a.listPins(),
          (e: Error) => e instanceof SwitchTransportError || e instanceof SwitchTimeoutError,
        );
        await assert.rejects(
          a.installPins([pin(2)]),
          (e: Error) => e instanceof SwitchTransportError || e instanceof SwitchTimeoutError,
        );
        assert.equal(a.counters.healthy, false);
        await new Promise((r) => setTimeout(r, 300));
        await bed.restartOnSamePort();
        await until(
          'calls succeed again',
          async () =>
            a.listPins().then(
              (l) => l.length === 1,
              () => false,
            ),
          10_000,
        );
        assert.ok((await a.installPins([pin(2)])).every((o) => o.ok));
        await until('the counter stream back', () => a.counters.healthy, 15_000);
      } finally {
        await a.close();
        await bed.server.stop();
      }
    },
  );
});

describe('gNMI adapter over TLS', () => {
  const skip = skipUnless(have('openssl', ['version']), 'openssl');
  let dir = '';
  before(() => {
    if (skip !== false) return;
    dir = mkdtempSync(path.join(tmpdir(), 'flowpin-gnmi-tls-'));
    makeCa(dir);
    issueCert(dir, 'sw', ['subjectAltName=IP:127.0.0.1']);
  });
  after(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  test(
    'verified with the CA file; refused by a client that trusts another CA',
    { skip, timeout: 20_000 },
    async () => {
      const { sw } = testSwitch();
      const server = new GnmiServer(sw, {
        host: '127.0.0.1',
        port: 0,
        username: 'admin',
        password: 'pw',
        tls: { key: readFileSync(path.join(dir, 'sw.key')), cert: readFileSync(path.join(dir, 'sw.pem')) },
      });
      const { address } = await server.start();
      const base = {
        switchName: 'sw1',
        address,
        username: 'admin',
        password: 'pw',
        ingressInterfaces: ['Ethernet47'],
        timeoutMs: 2000,
      };
      const good = new GnmiAdapter({ ...base, caFile: path.join(dir, 'ca.pem') });
      const other = mkdtempSync(path.join(tmpdir(), 'flowpin-gnmi-ca2-'));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          path.join(other, 'k'),
          '-out',
          path.join(other, 'ca.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=other CA',
        ],
        { stdio: 'pipe' },
      );
      const wrong = new GnmiAdapter({ ...base, caFile: path.join(other, 'ca.pem') });
      try {
        await good.connect();
        assert.deepEqual(await good.groupMembers(VIP), NEXTHOPS);
        await assert.rejects(
          wrong.connect(),
          (e: Error) => e instanceof SwitchTransportError || e instanceof SwitchTimeoutError,
        );
      } finally {
        await good.close();
        await wrong.close();
        await server.stop();
        rmSync(other, { recursive: true, force: true });
      }
    },
  );
});
