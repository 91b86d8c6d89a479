// The direct encoder and decoder of notification responses, Set's response and Set's and
// Subscribe's requests (proto/encode.ts, proto/decode.ts) against proto-loader's serializer
// and deserializer: the same bytes, and the same objects, for generated GetResponses,
// SubscribeResponses, SetRequests, SetResponses and SubscribeRequests (paths with keys, every
// scalar and encoded value they handle, deletes, non-ASCII strings, 64-bit timestamps and
// counters); the shapes they leave to protobufjs are answered null.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  gnmiProto,
  type GetResponse,
  type SetRequest,
  type SetResponse,
  type SubscribeRequest,
  type SubscribeResponse,
  type Update,
  type PathElem,
} from '../proto/gnmi.js';
import {
  encodeGetResponse,
  encodeSetRequest,
  encodeSetResponse,
  encodeSubscribeRequest,
  encodeSubscribeResponse,
  fastResponses,
  fastClientRequests,
} from '../proto/encode.js';
import {
  decodeGetResponse,
  decodeSetRequest,
  decodeSetResponse,
  decodeSubscribeRequest,
  decodeSubscribeResponse,
  fastClientResponses,
  fastRequests,
} from '../proto/decode.js';

const service = gnmiProto().service;
const slowGet = service['Get']?.responseSerialize as (m: GetResponse) => Buffer;
const slowSub = service['Subscribe']?.responseSerialize as (m: SubscribeResponse) => Buffer;
const readGet = service['Get']?.responseDeserialize as (b: Buffer) => GetResponse;
const readSub = service['Subscribe']?.responseDeserialize as (b: Buffer) => SubscribeResponse;
const slowSetReq = service['Set']?.requestSerialize as (m: SetRequest) => Buffer;
const readSetReq = service['Set']?.requestDeserialize as (b: Buffer) => SetRequest;
const slowSetRes = service['Set']?.responseSerialize as (m: SetResponse) => Buffer;
const readSetRes = service['Set']?.responseDeserialize as (b: Buffer) => SetResponse;
const slowSubReq = service['Subscribe']?.requestSerialize as (m: SubscribeRequest) => Buffer;
const readSubReq = service['Subscribe']?.requestDeserialize as (b: Buffer) => SubscribeRequest;

const str = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 80 }));
const u64 = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });
const i64 = fc.bigInt({ min: -0x8000000000000000n, max: 0x7fffffffffffffffn });
const elem = fc.record(
  { name: str, key: fc.dictionary(str, str, { maxKeys: 3 }) },
  { requiredKeys: ['name'] },
);
const path = fc.record(
  { origin: str, elem: fc.array(elem, { maxLength: 6 }), target: str },
  { requiredKeys: [] },
);
const bytes = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b));
const typedValue = fc.oneof(
  str.map((v) => ({ string_val: v })),
  i64.map((v) => ({ int_val: String(v) })),
  fc.integer({ min: -1e9, max: 1e9 }).map((v) => ({ int_val: v })),
  u64.map((v) => ({ uint_val: String(v) })),
  fc.nat().map((v) => ({ uint_val: v })),
  fc.boolean().map((v) => ({ bool_val: v })),
  bytes.map((v) => ({ bytes_val: v })),
  bytes.map((v) => ({ json_val: v })),
  fc.json().map((v) => ({ json_ietf_val: Buffer.from(v), value: 'json_ietf_val' as const })),
  str.map((v) => ({ ascii_val: v })),
  fc.double({ noNaN: true }).map((v) => ({ double_val: v })),
);
const update = fc.record(
  { path, val: typedValue, duplicates: fc.nat({ max: 0xffffffff }) },
  { requiredKeys: [] },
);
const notification = fc.record(
  {
    timestamp: fc.oneof(
      u64.map((t) => String(BigInt.asIntN(64, t))),
      fc.nat(),
    ),
    prefix: path,
    update: fc.array(update, { maxLength: 5 }),
    delete: fc.array(path, { maxLength: 3 }),
    atomic: fc.boolean(),
  },
  { requiredKeys: [] },
);
const subscribeResponse = fc.oneof(
  notification.map((n) => ({ update: n, response: 'update' as const })),
  fc.boolean().map((b) => ({ sync_response: b })),
  fc.constant({}),
  fc.record({ update: notification, extension: fc.constant([]) }),
);
const setRequest = fc.record(
  {
    prefix: path,
    delete: fc.array(path, { maxLength: 3 }),
    replace: fc.array(update, { maxLength: 4 }),
    update: fc.array(update, { maxLength: 4 }),
    union_replace: fc.array(update, { maxLength: 2 }),
    extension: fc.constant([]),
  },
  { requiredKeys: [] },
);
const setResponse = fc.record(
  {
    prefix: path,
    response: fc.array(
      fc.record(
        { path, op: fc.constantFrom('INVALID', 'DELETE', 'REPLACE', 'UPDATE', 'UNION_REPLACE' as const) },
        { requiredKeys: ['op'] },
      ),
      { maxLength: 5 },
    ),
    timestamp: fc.oneof(
      u64.map((t) => String(BigInt.asIntN(64, t))),
      fc.nat(),
    ),
  },
  { requiredKeys: [] },
);
const subscription = fc.record(
  {
    path,
    mode: fc.constantFrom('TARGET_DEFINED', 'ON_CHANGE', 'SAMPLE' as const),
    sample_interval: fc.oneof(u64.map(String), fc.nat()),
    suppress_redundant: fc.boolean(),
    heartbeat_interval: fc.oneof(u64.map(String), fc.nat()),
  },
  { requiredKeys: [] },
);
const subscribeRequest = fc.record(
  {
    subscribe: fc.record(
      {
        prefix: path,
        subscription: fc.array(subscription, { maxLength: 5 }),
        mode: fc.constantFrom('STREAM', 'ONCE', 'POLL' as const),
        allow_aggregation: fc.boolean(),
        encoding: fc.constantFrom('JSON', 'BYTES', 'PROTO', 'ASCII', 'JSON_IETF' as const),
        updates_only: fc.boolean(),
        use_models: fc.constant([]),
      },
      { requiredKeys: [] },
    ),
    extension: fc.constant([]),
  },
  { requiredKeys: ['subscribe'] },
);
const getResponse = fc.record(
  { notification: fc.array(notification, { maxLength: 4 }) },
  { requiredKeys: [] },
);

test(
  'notification responses: the same bytes as proto-loader writes, read as it reads them',
  { timeout: 60_000 },
  () => {
    const seed = Number(process.env['FLOWPIN_TEST_SEED'] ?? Date.now() % 2 ** 31);
    console.log(`gnmi-encode seed ${seed} (FLOWPIN_TEST_SEED to repeat)`);
    fc.assert(
      fc.property(subscribeResponse, (generated) => {
        const m = generated as SubscribeResponse;
        const bytes = slowSub(m);
        assert.deepEqual(encodeSubscribeResponse(m), bytes);
        assert.deepStrictEqual(decodeSubscribeResponse(bytes), readSub(bytes));
      }),
      { seed, numRuns: 2000 },
    );
    fc.assert(
      fc.property(getResponse, (generated) => {
        const m = generated as GetResponse;
        const bytes = slowGet(m);
        assert.deepEqual(encodeGetResponse(m), bytes);
        assert.deepStrictEqual(decodeGetResponse(bytes), readGet(bytes));
      }),
      { seed, numRuns: 1000 },
    );
  },
);

test(
  'Set and Subscribe requests, Set responses: the same bytes as proto-loader writes, read as it reads them',
  { timeout: 60_000 },
  () => {
    const seed = Number(process.env['FLOWPIN_TEST_SEED'] ?? Date.now() % 2 ** 31);
    console.log(`gnmi-encode Set seed ${seed} (FLOWPIN_TEST_SEED to repeat)`);
    fc.assert(
      fc.property(setRequest, (generated) => {
        const m = generated as SetRequest;
        const bytes = slowSetReq(m);
        assert.deepEqual(encodeSetRequest(m), bytes);
        assert.deepStrictEqual(decodeSetRequest(bytes), readSetReq(bytes));
      }),
      { seed, numRuns: 1500 },
    );
    fc.assert(
      fc.property(setResponse, (generated) => {
        const m = generated as SetResponse;
        const bytes = slowSetRes(m);
        assert.deepEqual(encodeSetResponse(m), bytes);
        assert.deepStrictEqual(decodeSetResponse(bytes), readSetRes(bytes));
      }),
      { seed, numRuns: 1500 },
    );
    fc.assert(
      fc.property(subscribeRequest, (generated) => {
        const m = generated as SubscribeRequest;
        const bytes = slowSubReq(m);
        assert.deepEqual(encodeSubscribeRequest(m), bytes);
        assert.deepStrictEqual(decodeSubscribeRequest(bytes), readSubReq(bytes));
      }),
      { seed, numRuns: 1500 },
    );
  },
);

test('a rule write as the adapter sends it, through the wrapped services', { timeout: 10_000 }, () => {
  const rules: Update[] = Array.from({ length: 200 }, (_, i) => ({
    path: {
      elem: <PathElem[]>[
        { name: 'network-instances' },
        { name: 'network-instance', key: { name: 'default' } },
        { name: 'policy-forwarding' },
        { name: 'policies' },
        { name: 'policy', key: { 'policy-id': 'flowpin' } },
        { name: 'rules' },
        { name: 'rule', key: { 'sequence-id': String(i + 1) } },
      ],
    },
    val: {
      json_ietf_val: Buffer.from(JSON.stringify({ 'sequence-id': i + 1, config: { 'sequence-id': i + 1 } })),
    },
  }));
  const req: SetRequest = { replace: rules, delete: [{ elem: [{ name: 'x', key: { k: 'é' } }] }] };
  const bytes = fastClientRequests(service)['Set']?.requestSerialize(req) as Buffer;
  assert.deepEqual(bytes, slowSetReq(req));
  const read = fastRequests(service)['Set']?.requestDeserialize(bytes) as SetRequest;
  assert.deepStrictEqual(read, readSetReq(bytes));
  assert.equal(read.replace?.length, 200);
  const res: SetResponse = {
    response: rules.map((u) => ({ ...(u.path ? { path: u.path } : {}), op: 'REPLACE' as const })),
    timestamp: '1765150000000000000',
  };
  const out = fastResponses(service)['Set']?.responseSerialize(res) as Buffer;
  assert.deepEqual(out, slowSetRes(res));
  const back = fastClientResponses(service)['Set']?.responseDeserialize(out) as SetResponse;
  assert.deepStrictEqual(back, readSetRes(out));
  assert.equal(back.response[199]?.op, 'REPLACE');
});

test('a sample of rule leaves as the target sends it', { timeout: 10_000 }, () => {
  const rule = (seq: number) => ({ name: 'rule', key: { 'sequence-id': String(seq) } });
  const m: SubscribeResponse = {
    update: {
      timestamp: '1765150000000000000',
      prefix: {
        elem: [
          { name: 'network-instances' },
          { name: 'network-instance', key: { name: 'default' } },
          { name: 'policy-forwarding' },
          { name: 'policies' },
          { name: 'policy', key: { 'policy-id': 'flowpin' } },
          { name: 'rules' },
        ],
      },
      update: Array.from({ length: 300 }, (_, i) => ({
        path: { elem: [rule(i + 1), { name: 'state' }, { name: 'matched-pkts' }] },
        val: { json_ietf_val: Buffer.from(JSON.stringify(String(i * 1000))) },
      })),
    },
  };
  const fast = encodeSubscribeResponse(m);
  assert.deepEqual(fast, slowSub(m));
  // Through the wrapped service, and decoded by the client's deserializer.
  const wrapped = fastResponses(service)['Subscribe'];
  const bytes = wrapped?.responseSerialize(m) as Buffer;
  assert.deepEqual(bytes, fast);
  const back = fastClientResponses(service)['Subscribe']?.responseDeserialize(bytes) as SubscribeResponse;
  assert.deepStrictEqual(back, readSub(bytes));
  assert.equal(back.update?.update?.length, 300);
  assert.equal(back.update?.timestamp, '1765150000000000000');
});

test(
  'a path key named __proto__ is read as an own member, as proto-loader reads it',
  { timeout: 10_000 },
  () => {
    // JSON.parse makes `__proto__` an own member, as a decoded map holds it.
    const m = JSON.parse(
      '{"notification":[{"update":[{"path":{"elem":[{"name":"a","key":{"__proto__":"x","k":"1"}}]}}]}]}',
    ) as GetResponse;
    const bytes = slowGet(m);
    assert.deepEqual(encodeGetResponse(m), bytes);
    const read = decodeGetResponse(bytes);
    assert.deepStrictEqual(read, readGet(bytes));
    const key = read?.notification[0]?.update?.[0]?.path?.elem?.[0]?.key ?? {};
    assert.deepEqual(Object.keys(key), ['__proto__', 'k']);
    assert.equal(Object.getPrototypeOf(key), Object.prototype);
  },
);

test(
  'shapes left to protobufjs are answered null, and the wrapped service still writes them',
  { timeout: 10_000 },
  () => {
    const shapes: SubscribeResponse[] = [
      { extension: [{ history: {} }] },
      { update: { update: [{ val: { leaflist_val: { element: [] } } }] } },
      { update: { update: [{ val: { decimal_val: { digits: '1', precision: 1 } } }] } },
      { update: { prefix: { element: ['a'] } } },
      { update: { update: [{ path: { elem: [{ name: 'a', key: { k: 1 as unknown as string } }] } }] } },
      { update: { timestamp: 1.5 } },
      { update: { update: [{ val: { json_val: 'e30=' as unknown as Buffer } }] } },
    ];
    const wrapped = fastResponses(service)['Subscribe'];
    for (const m of shapes) {
      assert.equal(encodeSubscribeResponse(m), null, JSON.stringify(m));
      assert.deepEqual(wrapped?.responseSerialize(m), slowSub(m));
    }
    assert.equal(encodeGetResponse({ notification: [], error: { code: 1 } } as GetResponse), null);
    // A fenced write (master arbitration) and an operation the proto does not have.
    const fenced: SetRequest = {
      replace: [],
      extension: [{ master_arbitration: { role: { id: 'flowpin' }, election_id: { high: 0, low: 7 } } }],
    };
    assert.equal(encodeSetRequest(fenced), null);
    const bytes = fastClientRequests(service)['Set']?.requestSerialize(fenced) as Buffer;
    assert.deepEqual(bytes, slowSetReq(fenced));
    assert.equal(decodeSetRequest(bytes), null);
    assert.deepStrictEqual(fastRequests(service)['Set']?.requestDeserialize(bytes), readSetReq(bytes));
    assert.equal(encodeSetResponse({ response: [{ op: 'MERGE' as 'UPDATE' }], timestamp: 1 }), null);
    // A poll, and a list with use_models, are left to protobufjs both ways.
    for (const m of [
      { poll: {} },
      { subscribe: { use_models: [{ name: 'openconfig-interfaces', organization: 'o', version: '1' }] } },
    ] as SubscribeRequest[]) {
      assert.equal(encodeSubscribeRequest(m), null, JSON.stringify(m));
      const b = fastClientRequests(service)['Subscribe']?.requestSerialize(m) as Buffer;
      assert.deepEqual(b, slowSubReq(m));
      assert.equal(decodeSubscribeRequest(b), null);
      assert.deepStrictEqual(fastRequests(service)['Subscribe']?.requestDeserialize(b), readSubReq(b));
    }
  },
);
