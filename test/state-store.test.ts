// The state files read back as written or refused with the file and line named: garbage lines
// in a journal, a truncated snapshot, a change record with a field that is not what flowpin
// writes, a broken header. A torn last journal line (a kill mid-append) is the one damage read
// past. `--discard-state` moves aside only the part that cannot be read: a damaged journal
// costs its flows and keeps the change records; a damaged change log keeps the flows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  discardState,
  FileStateStore,
  loadState,
  removeLeftovers,
  StateError,
  type FlowSource,
} from '../controller/state-store.js';
import type { ChangeRecord } from '../controller/change-record.js';
import { flowKey } from '../controller/flow-table.js';
import { tupleOf } from '../mirror-receiver/tuple.js';

const T = Date.UTC(2026, 11, 7, 12);

const record = (o: Partial<ChangeRecord> = {}): ChangeRecord =>
  ({
    id: 'sw1-drain-1',
    kind: 'drain',
    switch: 'sw1',
    vip: '192.0.2.80',
    nexthop: '10.0.1.2',
    phase: 'applied',
    maxAtRisk: 0,
    queuedAt: T,
    startedAt: T,
    heldAt: T + 10,
    sentAt: T + 20,
    appliedAt: T + 30,
    pinned: 3,
    atRisk: 0,
    atRiskBy: {},
    windowFlows: 0,
    unseen: 0,
    remaining: 3,
    ...o,
  }) as ChangeRecord;

/** Three flows on one nexthop, as the controller's flow table hands them to a snapshot. */
const source = (keys: string[], half: Map<string, 'client' | 'server'> = new Map()): FlowSource => ({
  groups: () => [{ switchName: 'sw1', vip: '192.0.2.80', nexthop: '10.0.1.2', keys }],
  live: () => true,
  halfClosedBy: (k) => half.get(k) ?? null,
});

const KEYS = [40001, 40002, 40003].map((sport) =>
  flowKey(1, tupleOf({ family: 4, src: '198.51.100.7', sport, dst: '192.0.2.80', dport: 443 })),
);

async function written(dir: string): Promise<string> {
  const file = path.join(dir, 'state.json');
  const s = new FileStateStore(file);
  await s.saveChanges({
    changes: { sw1: [record()] },
    watch: { sw1: { watched: [{ from: T - 60_000, to: T + 60_000 }] } },
  });
  await s.saveFlows(source(KEYS.slice(0, 2)), T + 1000);
  await s.appendFlows(
    [{ switchName: 'sw1', vip: '192.0.2.80', nexthop: '10.0.1.2', key: KEYS[2] as string }],
    T + 2000,
  );
  return file;
}

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-state-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'state written is read back whole: changes, watch, the snapshot and the journal after it',
  { timeout: 30_000 },
  withDir(async (dir) => {
    const file = await written(dir);
    const st = loadState(new FileStateStore(file));
    assert.ok(st);
    assert.deepEqual(
      st.changes['sw1']?.map((r) => r.id),
      ['sw1-drain-1'],
    );
    assert.deepEqual(st.flows.flatMap((g) => g.keys).sort(), [...KEYS].sort());
    assert.equal(st.journalUntil, T + 2000);
  }),
);

test(
  'damaged state is refused with the file (and line) named; a torn last journal line is read past',
  { timeout: 30_000 },
  withDir(async (dir) => {
    const file = await written(dir);
    const refused = (want: RegExp): void => {
      assert.throws(
        () => loadState(new FileStateStore(file)),
        (e: Error) => e instanceof StateError && want.test(e.message),
        `expected a StateError matching ${want}`,
      );
    };
    // Garbage in the middle of the journal: refused at its line.
    const journal = `${file}.journal`;
    const good = readFileSync(journal, 'latin1');
    const lines = good.split('\n');
    lines.splice(1, 0, 'Zm9v###');
    writeFileSync(journal, lines.join('\n'), 'latin1');
    refused(new RegExp(`${journal.replace(/[.]/g, '\\.')}:2: `));
    // A torn last line (no newline at the end): read past, the rest restored.
    writeFileSync(journal, `${good}@sw1 192.0.2.80 10.0.1.2\nAQJh`, 'latin1'); // a key cut short
    assert.equal(loadState(new FileStateStore(file))?.flows.flatMap((g) => g.keys).length, 3);
    writeFileSync(journal, good, 'latin1');
    // A truncated snapshot (no trailer): refused, the snapshot named.
    const snap = readFileSync(file, 'latin1');
    truncateSync(file, Math.floor(snap.length / 2));
    refused(new RegExp(file.replace(/[.]/g, '\\.')));
    writeFileSync(file, snap, 'latin1');
    // A change record whose nexthop is not an address: refused, the record named.
    const changes = `${file}.changes`;
    const doc = readFileSync(changes, 'utf8');
    writeFileSync(changes, doc.replace('"nexthop":"10.0.1.2"', '"nexthop":"not-an-ip"'));
    refused(/changes\.sw1\[0\]\.nexthop: 'not-an-ip' is not an IP address/);
    // A broken header.
    writeFileSync(changes, `{"version":2,"savedAt":"yesterday"`);
    refused(/not a flowpin change log/);
    writeFileSync(changes, doc);
    assert.ok(loadState(new FileStateStore(file)));
  }),
);

test(
  '--discard-state moves aside only what cannot be read: a damaged journal keeps the changes, a damaged change log keeps the flows',
  { timeout: 30_000 },
  withDir(async (dir) => {
    const file = await written(dir);
    assert.deepEqual(discardState(file).moved, [], 'nothing damaged: nothing moved');
    appendFileSync(`${file}.journal`, '\u0000\u0001garbage line\n');
    const d1 = discardState(file);
    assert.ok(
      d1.moved.some((f) => f.includes('.journal.discarded-')) &&
        d1.moved.some((f) => /state\.json\.discarded-/.test(f)),
      d1.moved.join(', '),
    );
    assert.ok(!d1.moved.some((f) => f.includes('.changes')), 'the change log reads: kept');
    const after = loadState(new FileStateStore(file));
    assert.deepEqual(
      after?.changes['sw1']?.map((r) => r.id),
      ['sw1-drain-1'],
      'the change records survive',
    );
    assert.equal(after?.flows.length, 0, 'the flows went with the damaged journal');
    assert.deepEqual(
      after?.watch,
      {},
      'what was watched went with the flows: a restart counts them as unseen',
    );

    const file2 = await written(dir);
    writeFileSync(`${file2}.changes`, '{"version":3,"changes":{"sw1":[{"id":"x"}]}}');
    const d2 = discardState(file2);
    assert.deepEqual(
      d2.moved.map((f) => path.basename(f).replace(/discarded-.*/, 'discarded')),
      ['state.json.changes.discarded'],
    );
    assert.match(d2.reasons[0] ?? '', /state\.json\.changes/);
    const kept = loadState(new FileStateStore(file2));
    assert.deepEqual(kept?.changes, {});
    assert.equal(kept?.flows.flatMap((g) => g.keys).length, 3, 'the flows survive');
  }),
);

test(
  "temporary files a killed writer left are removed; the running process's own are not",
  { timeout: 30_000 },
  withDir((dir) => {
    const file = path.join(dir, 'state.json');
    writeFileSync(`${file}.changes.tmp-999999`, 'half');
    writeFileSync(`${file}.changes.tmp-${process.pid}`, 'mine');
    assert.deepEqual(removeLeftovers(file), ['state.json.changes.tmp-999999']);
    assert.deepEqual(readdirSync(dir), [`state.json.changes.tmp-${process.pid}`]);
    assert.ok(!existsSync(`${file}.changes.tmp-999999`));
    return Promise.resolve();
  }),
);

test(
  'half-closed connections are written and read back as such: in the snapshot, in the journal, and reopened by a new SYN',
  { timeout: 30_000 },
  withDir(async (dir) => {
    const file = path.join(dir, 'state.json');
    const s = new FileStateStore(file);
    const [a, b, c] = KEYS as [string, string, string];
    await s.saveFlows(source([a, b, c], new Map([[a, 'client']])), T);
    const j = (key: string, o: { half?: 'client' | 'server'; ended?: true } = {}) => ({
      switchName: 'sw1',
      vip: '',
      nexthop: '',
      key,
      ...o,
    });
    // b half-closed by its server, c by its client and then ended; a reopened by a new SYN on its tuple, then
    // half-closed again.
    await s.appendFlows([j(b, { half: 'server' }), j(c, { half: 'client' }), j(c, { ended: true })], T + 10);
    let st = loadState(new FileStateStore(file));
    assert.deepEqual(
      [...(st?.halfClosed ?? new Map())].sort(),
      [
        [a, 'client'],
        [b, 'server'],
        [c, 'client'],
      ].sort(),
    );
    assert.ok(st?.ended.has(c));
    await s.appendFlows([j(a)], T + 20);
    st = loadState(new FileStateStore(file));
    assert.equal(st?.halfClosed.has(a), false, 'a new SYN on the tuple: open both ways');
    await s.appendFlows([j(a, { half: 'server' })], T + 30);
    assert.equal(loadState(new FileStateStore(file))?.halfClosed.get(a), 'server');
  }),
);
