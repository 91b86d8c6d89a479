// Property tests over configuration files (fast-check): random YAML and JSON documents, random
// text, and mutations of a valid configuration (a value replaced, removed, set to null, an
// unknown key added) give either a valid configuration or a ConfigError naming the file (and
// the key, where the document parsed) on one line: never another exception or a stack trace.
// The seed is printed; FLOWPIN_SEED=<seed> replays it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadConfig, readConfig } from '../controller/config.js';
import { ConfigError, Reader } from '../lib/validate.js';

const seed =
  process.env['FLOWPIN_SEED'] !== undefined ? Number(process.env['FLOWPIN_SEED']) : Date.now() % 2 ** 31;
let dir = '';
before(() => {
  console.log(`config-property seed ${seed} (FLOWPIN_SEED=${seed} replays it)`);
  dir = mkdtempSync(path.join(tmpdir(), 'flowpin-cfgprop-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { FLOWPIN_EAPI_PASSWORD: 'pw' };
const valid = () => ({
  api: { host: '127.0.0.1', port: 8080, requestTimeoutMs: 30000 },
  mirror: { udp: [{ host: '0.0.0.0', port: 4754 }], raw: false, silenceS: 60, collapseRatio: 0.1 },
  pinMode: 'on-change',
  pinIdleTimeoutS: 300,
  flowTable: { maxFlows: 1000, maxAgeS: 3600 },
  resolveQueue: 1000,
  settleMs: 200,
  barrierTimeoutMs: 30000,
  resyncIntervalS: 30,
  retryMaxMs: 30000,
  persistIntervalS: 10,
  switches: [
    {
      name: 'leaf1',
      adapter: 'arista-eapi',
      mirrorSources: ['10.0.0.1'],
      pinTableSize: 1500,
      eapi: {
        url: 'https://10.0.0.1/command-api',
        username: 'flowpin',
        password: 'env:FLOWPIN_EAPI_PASSWORD',
        timeoutMs: 10000,
        groupTemplate: 'bgp-route-map',
        bgp: { asn: 65000, peerGroup: 'SRV' },
      },
      vips: [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2'] }],
    },
    {
      name: 'leaf2',
      adapter: 'gnmi',
      gnmi: { address: '10.0.0.2:6030', insecure: true, ingressInterfaces: ['Ethernet1'] },
      vips: [{ address: '2001:db8::80', nexthops: ['2001:db8::1'] }],
    },
    {
      name: 'r1',
      adapter: 'linux',
      mirrorSources: ['10.0.0.3'],
      linux: { prefix: ['ip', 'netns', 'exec', 'r1'], clientInterfaces: ['eth0'] },
      vips: [{ address: '198.51.100.80', nexthops: ['10.0.2.1'] }],
    },
  ],
});

/** Every path to a value in a document. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (typeof v === 'object' && v !== null)
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

type Mutation =
  { kind: 'set'; value: unknown } | { kind: 'delete' } | { kind: 'unknown-key'; key: string; value: unknown };

function mutate(doc: unknown, at: (string | number)[], m: Mutation): unknown {
  if (at.length === 0)
    return m.kind === 'set'
      ? m.value
      : m.kind === 'delete'
        ? {}
        : typeof doc === 'object' && doc !== null && !Array.isArray(doc)
          ? { ...doc, [m.key]: m.value }
          : doc;
  const copy = structuredClone(doc) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = copy;
  for (const p of at.slice(0, -1)) {
    const next = parent[p];
    // An earlier mutation replaced a value on the way: this one has nothing to change.
    if (typeof next !== 'object' || next === null) return copy;
    parent = next as Record<string | number, unknown>;
  }
  const last = at[at.length - 1] as string | number;
  if (m.kind === 'set') parent[last] = m.value;
  else if (m.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (typeof target === 'object' && target !== null && !Array.isArray(target))
      (target as Record<string, unknown>)[m.key] = m.value;
  }
  return copy;
}

/** A valid configuration, or a one-line ConfigError naming the file (and, when asked, a key). */
function loads(run: () => unknown, file: string, needKey: boolean): void {
  try {
    run();
  } catch (err) {
    assert.ok(
      err instanceof ConfigError,
      `not a ConfigError: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.doesNotMatch(err.message, /\n|\bat .+:\d+:\d+/, 'one line, no stack');
    assert.ok(err.message.length < 600, `message of ${err.message.length} characters`);
    if (needKey) assert.notEqual(err.key, '', `no key named: ${err.message}`);
  }
}

test('the valid base configuration loads', { timeout: 30_000 }, () => {
  const c = readConfig(Reader.fromObject('base.yaml', valid()), ENV);
  assert.equal(c.switches.length, 3);
});

test(
  'mutations of a valid configuration: valid, or an error naming the file and the key',
  { timeout: 120_000 },
  () => {
    const base = valid();
    const all = paths(base).filter((p) => p.length > 0);
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(
        null,
        '',
        0,
        -1,
        1.5,
        1e12,
        true,
        'true',
        '10.0.0.1',
        '::1',
        '0.0.0.0',
        '10.0.1.1%eth0',
        'env:UNSET_VAR_X',
        'file:/nonexistent',
        'file:/',
        'http://',
        'https://[::1',
        [],
        {},
        [null],
      ),
    );
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      value.map((v) => ({ kind: 'set' as const, value: v })),
      fc.constant({ kind: 'delete' as const }),
      fc
        .tuple(fc.string({ minLength: 1, maxLength: 8 }), value)
        .map(([key, v]) => ({ kind: 'unknown-key' as const, key, value: v })),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...all), mutation), { minLength: 1, maxLength: 3 }),
        (ms) => {
          let doc: unknown = base;
          for (const [at, m] of ms) doc = mutate(doc, at, m);
          loads(() => readConfig(Reader.fromObject('m.yaml', doc), ENV), 'm.yaml', true);
        },
      ),
      { seed, numRuns: 1500 },
    );
  },
);

test('random YAML, JSON and text files: valid, or an error naming the file', { timeout: 120_000 }, () => {
  const file = path.join(dir, 'flowpin.yaml');
  const doc = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)),
    fc
      .dictionary(
        fc.constantFrom('api', 'mirror', 'switches', 'pinMode', 'flowTable', 'stateFile', 'x'),
        fc.jsonValue({ maxDepth: 3 }),
      )
      .map((v) => stringify(v)),
    fc.string({ maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.constantFrom(
      '',
      '---',
      '- a\n- b',
      'a: &x [*x]',
      'a: !!binary x',
      '{',
      'a: b: c',
      '\t- x',
      'switches: &a\n  - *a',
      `a: ${'['.repeat(500)}`,
    ),
  );
  fc.assert(
    fc.property(doc, (text) => {
      writeFileSync(file, text);
      loads(() => loadConfig(file, ENV), file, false);
    }),
    { seed: seed + 1, numRuns: 800 },
  );
});
