// The gNMI target's datastore (switch-sim/gnmi/store.ts): a walk that reuses the nodes of the
// previous walk's leading elements (the same element objects) never returns what was removed
// since, whether removed by a write or undone with a failed transaction.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PathElem } from '../proto/gnmi.js';
import { nodeByNames, type SchemaNode } from '../switch-sim/gnmi/schema.js';
import { ConfigStore } from '../switch-sim/gnmi/store.js';

const node = nodeByNames(['network-instances', 'network-instance', 'config', 'name']) as SchemaNode;
const ni = (name: string): PathElem[] => [
  { name: 'network-instances' },
  { name: 'network-instance', key: { name } },
];

test('a walk after a removal or an undone transaction sees the store as it is', { timeout: 10_000 }, () => {
  const s = new ConfigStore();
  const put = (name: string, value: string): void =>
    s.put([...ni(name), { name: 'config' }, { name: 'name' }], { value, node });
  put('a', 'first');
  // One query's element objects, walked again and again (as a read naming many entries does).
  const q = [...ni('a'), { name: 'config' }, { name: 'name' }];
  const values = (): unknown[] => s.walk(q).map((l) => l.value);
  assert.deepEqual(values(), ['first']);
  s.remove(ni('a'));
  assert.deepEqual(values(), [], 'removed');
  put('a', 'second');
  assert.deepEqual(values(), ['second'], 'written again');
  assert.throws(() =>
    s.transaction(
      () => {
        s.remove(ni('a'));
        put('a', 'third');
        assert.deepEqual(values(), ['third'], 'inside the transaction');
      },
      () => {
        throw new Error('refused');
      },
    ),
  );
  assert.deepEqual(values(), ['second'], 'undone');
});

test(
  'an undone transaction leaves nothing it created, and restores the values it overwrote',
  { timeout: 10_000 },
  () => {
    const s = new ConfigStore();
    const at = (name: string, leaf: string): PathElem[] => [...ni(name), { name: 'config' }, { name: leaf }];
    const all = (): string[] =>
      s
        .walk([{ name: 'network-instances' }])
        .map((l) => `${l.elems.map((e) => e.name).join('/')}=${String(l.value)}`);
    s.put(at('a', 'name'), { value: 'a', node });
    const before = all();
    const leavesOf = (name: string): string[] => {
      const out: string[] = [];
      s.leavesBelow(ni(name), (rel, value) => out.push(`${rel}=${String(value)}`));
      return out;
    };
    assert.deepEqual(leavesOf('a'), ['config/name=a']);
    assert.throws(() =>
      s.transaction(
        () => {
          // New entries (several leaves under each, sharing the element objects of one path, as a
          // Set writes them), new leaves under an existing entry, and an overwritten value.
          for (const name of ['b', 'c']) {
            const entry = ni(name);
            s.put([...entry, { name: 'config' }, { name: 'name' }], { value: name, node });
            s.put([...entry, { name: 'config' }, { name: 'type' }], { value: 'x', node });
          }
          s.put(at('a', 'type'), { value: 'y', node });
          s.put(at('a', 'name'), { value: 'overwritten', node });
          assert.equal(leavesOf('b').length, 2, 'inside the transaction');
        },
        () => {
          throw new Error('refused');
        },
      ),
    );
    assert.deepEqual(all(), before);
    assert.equal(s.get(ni('b')), undefined);
    assert.equal(
      s.leavesBelow(ni('b'), () => undefined),
      false,
    );
    assert.deepEqual(leavesOf('a'), ['config/name=a']);
  },
);

test(
  'writes and lookups by equal elements (other objects) see what a removal or an undone transaction left',
  { timeout: 10_000 },
  () => {
    const s = new ConfigStore();
    // Every path made anew, as a Set's paths are: equal names and keys, never the same objects.
    const at = (name: string, leaf: string): PathElem[] => [...ni(name), { name: 'config' }, { name: leaf }];
    const value = (name: string, leaf: string): unknown => s.get(at(name, leaf))?.value;
    s.put(at('a', 'name'), { value: 'a', node });
    s.put(at('a', 'type'), { value: 'x', node });
    s.put(at('b', 'name'), { value: 'b', node });
    assert.equal(value('a', 'type'), 'x');
    s.remove(ni('a'));
    assert.equal(value('a', 'type'), undefined, 'removed');
    assert.equal(value('a', 'name'), undefined, 'removed');
    assert.equal(value('b', 'name'), 'b', 'its sibling kept');
    s.put(at('a', 'name'), { value: 'again', node });
    assert.equal(value('a', 'name'), 'again');
    assert.equal(value('a', 'type'), undefined, 'not brought back with the entry');
    s.remove(at('a', 'name'));
    s.put(at('a', 'type'), { value: 'y', node });
    assert.equal(value('a', 'name'), undefined);
    assert.equal(value('a', 'type'), 'y');
    assert.throws(() =>
      s.transaction(
        () => {
          s.remove(ni('a'));
          s.put(at('a', 'name'), { value: 'third', node });
          s.put(at('c', 'name'), { value: 'c', node });
        },
        () => {
          throw new Error('refused');
        },
      ),
    );
    assert.equal(value('a', 'type'), 'y', 'undone');
    assert.equal(value('a', 'name'), undefined, 'undone');
    assert.equal(value('c', 'name'), undefined, 'undone');
    const rest: string[] = [];
    s.leavesBelow(ni('a'), (rel, v) => rest.push(`${rel}=${String(v)}`));
    assert.deepEqual(rest, ['config/type=y']);
  },
);
