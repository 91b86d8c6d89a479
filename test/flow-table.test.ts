// Flow table: bounds by count and age, FIN/RST ending flows, and the nexthop index kept
// consistent with the table under random churn (fast-check model test).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FlowTable, flowKey, switchIdOfKey, UNRESOLVED } from '../controller/flow-table.js';
import { NexthopRegistry } from '../controller/nexthop-registry.js';
import { parseTuple, tupleOf } from '../mirror-receiver/tuple.js';

class Clock {
  t = 1_000_000;
  now = (): number => this.t;
}

const key = (sw: number, i: number, v6 = false): string =>
  flowKey(
    sw,
    tupleOf({
      family: v6 ? 6 : 4,
      src: v6 ? `2001:db8::${(i + 1).toString(16)}` : `10.0.${(i >> 8) & 255}.${i & 255}`,
      dst: v6 ? '2001:db8::80' : '192.0.2.1',
      sport: 1024 + (i % 60000),
      dport: 443,
    }),
  );

test('flow keys round-trip and keep switch and tuple apart', () => {
  const k = key(300, 5);
  assert.equal(switchIdOfKey(k), 300);
  assert.deepEqual(parseTuple(k, 2), {
    family: 4,
    src: '10.0.0.5',
    dst: '192.0.2.1',
    sport: 1029,
    dport: 443,
  });
  const k6 = key(1, 7, true);
  assert.deepEqual(parseTuple(k6, 2), {
    family: 6,
    src: '2001:db8::8',
    dst: '2001:db8::80',
    sport: 1031,
    dport: 443,
  });
  assert.notEqual(key(1, 5), key(2, 5));
  assert.throws(() => flowKey(70000, 'x'), RangeError);
  // Built as one string for every tuple length (IPv4, IPv6, anything else), with the switch id in front.
  for (const t of [
    tupleOf({ family: 4, src: '10.0.0.1', dst: '192.0.2.1', sport: 1, dport: 443 }),
    tupleOf({ family: 6, src: '2001:db8::1', dst: '2001:db8::80', sport: 65535, dport: 80 }),
    'abc',
  ]) {
    for (const sw of [0, 1, 0xff, 0x100, 0xffff]) {
      const k = flowKey(sw, t);
      assert.equal(k, String.fromCharCode(sw >> 8, sw & 0xff) + t);
      assert.equal(switchIdOfKey(k), sw);
    }
  }
});

test('the table never holds more than maxFlows; the least recently seen go first', () => {
  const clock = new Clock();
  const table = new FlowTable({ maxFlows: 100, maxAgeMs: 60_000, now: clock.now });
  for (let i = 0; i < 250; i++) table.touch(key(1, i));
  assert.equal(table.size, 100);
  assert.equal(table.evicted, 150);
  assert.ok(!table.has(key(1, 0)));
  assert.ok(table.has(key(1, 249)));
  // Touching an old flow keeps it past the next wave of new ones.
  table.touch(key(1, 150));
  for (let i = 250; i < 349; i++) table.touch(key(1, i));
  assert.ok(table.has(key(1, 150)));
  assert.ok(!table.has(key(1, 151)));
});

test('flows older than maxAge are gone, and seeing a flow again refreshes its age', () => {
  const clock = new Clock();
  const table = new FlowTable({ maxFlows: 1000, maxAgeMs: 10_000, now: clock.now });
  const reg = new NexthopRegistry();
  const nh = reg.intern('sw1', '192.0.2.1', '10.9.0.1');
  table.touch(key(1, 1));
  table.touch(key(1, 2));
  table.resolve(key(1, 1), nh);
  table.resolve(key(1, 2), nh);
  clock.t += 6_000;
  table.touch(key(1, 2));
  assert.equal(table.entry(key(1, 2))?.lastSeen, clock.t);
  clock.t += 6_000;
  assert.ok(!table.has(key(1, 1)), 'flow 1 is 12 s old');
  assert.ok(table.has(key(1, 2)), 'flow 2 was seen 6 s ago');
  assert.deepEqual(table.flowsOn(nh), [key(1, 2)]);
  assert.equal(table.countOn(nh), 1, 'the stale flow left the index');
  clock.t += 20_000;
  assert.equal(table.purgeStale(), 1);
  assert.equal(table.size, 0);
  assert.equal(table.countOn(nh), 0);
});

test('FIN/RST end a flow and take it out of the nexthop index', () => {
  const table = new FlowTable({ maxFlows: 10, maxAgeMs: 10_000, now: new Clock().now });
  table.touch(key(1, 1));
  assert.ok(table.resolve(key(1, 1), 3));
  assert.equal(table.countOn(3), 1);
  assert.ok(table.end(key(1, 1)));
  assert.equal(table.countOn(3), 0);
  assert.ok(!table.end(key(1, 1)));
  assert.ok(!table.resolve(key(1, 1), 3), 'an ended flow cannot be resolved');
});

test('moving a flow between nexthops moves it in the index', () => {
  const table = new FlowTable({ maxFlows: 10, maxAgeMs: 10_000, now: new Clock().now });
  table.touch(key(1, 1));
  table.resolve(key(1, 1), 1);
  table.resolve(key(1, 1), 2);
  assert.deepEqual(table.flowsOn(1), []);
  assert.deepEqual(table.flowsOn(2), [key(1, 1)]);
  table.resolve(key(1, 1), UNRESOLVED);
  assert.deepEqual(table.flowsOn(2), []);
  assert.deepEqual(table.checkIndex(), []);
});

test('the nexthop index matches the table under random churn', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('touch' as const), flow: fc.nat(60) }),
    fc.record({
      kind: fc.constant('resolve' as const),
      flow: fc.nat(60),
      nh: fc.integer({ min: 0, max: 4 }),
    }),
    fc.record({ kind: fc.constant('end' as const), flow: fc.nat(60) }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 4_000 }) }),
    fc.record({ kind: fc.constant('purge' as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const clock = new Clock();
      const table = new FlowTable({ maxFlows: 25, maxAgeMs: 10_000, now: clock.now });
      // Model: flow -> {nh, seen}
      const model = new Map<string, { nh: number; seen: number }>();
      const order: string[] = [];
      const bump = (k: string): void => {
        const i = order.indexOf(k);
        if (i >= 0) order.splice(i, 1);
        order.push(k);
      };
      const live = (k: string): boolean => {
        const m = model.get(k);
        return m !== undefined && clock.t - m.seen < 10_000;
      };
      for (const o of ops) {
        if (o.kind === 'tick') clock.t += o.ms;
        else if (o.kind === 'purge') table.purgeStale();
        else {
          const k = key(1, o.flow);
          if (o.kind === 'touch') {
            table.touch(k);
            const m = live(k) ? model.get(k) : undefined;
            model.set(k, { nh: m?.nh ?? 0, seen: clock.t });
            bump(k);
            while (order.length > 25) model.delete(order.shift() as string);
          } else if (o.kind === 'resolve') {
            const ok = table.resolve(k, o.nh);
            assert.equal(ok, live(k));
            const m = model.get(k);
            if (ok && m) {
              m.nh = o.nh;
              bump(k);
            }
          } else {
            assert.equal(table.end(k), live(k));
            model.delete(k);
            const i = order.indexOf(k);
            if (i >= 0) order.splice(i, 1);
          }
        }
        assert.ok(table.size <= 25);
        assert.deepEqual(table.checkIndex(), []);
      }
      for (let nh = 1; nh <= 4; nh++) {
        const expected = [...model]
          .filter(([k, m]) => m.nh === nh && live(k))
          .map(([k]) => k)
          .sort();
        assert.deepEqual(table.flowsOn(nh).sort(), expected, `nexthop ${nh}`);
      }
    }),
    { numRuns: 300 },
  );
});
