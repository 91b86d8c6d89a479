// The direct encoder and decoder of notification responses (proto/encode.ts, proto/decode.ts)
// against proto-loader's serializer and deserializer: the same bytes, and the same objects,
// for generated GetResponses and SubscribeResponses (paths with keys, every scalar and
// encoded value they handle, deletes, non-ASCII strings, 64-bit timestamps and counters); the
// shapes they leave to protobufjs are answered null.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gnmiProto, type GetResponse, type SubscribeResponse } from '../proto/gnmi.js';
import { encodeGetResponse, encodeSubscribeResponse, fastResponses } from '../proto/encode.js';
import { decodeGetResponse, decodeSubscribeResponse, fastClientResponses } from '../proto/decode.js';

const service = gnmiProto().service;
const slowGet = service['Get']?.responseSerialize as (m: GetResponse) => Buffer;
const slowSub = service['Subscribe']?.responseSerialize as (m: SubscribeResponse) => Buffer;
const readGet = service['Get']?.responseDeserialize as (b: Buffer) => GetResponse;
const readSub = service['Subscribe']?.responseDeserialize as (b: Buffer) => SubscribeResponse;

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
  },
);
