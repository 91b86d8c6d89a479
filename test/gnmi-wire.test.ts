// The gNMI wire contract checked without our own definitions: messages encoded with proto/
// are decoded by `protoc --decode_raw` (Debian protobuf-compiler), and the field numbers and
// wire types found are compared with a table written from the gNMI 0.10.0 specification
// (gnmi.proto and gnmi_ext.proto of openconfig/gnmi tag v0.10.0; Extension members 4-6 from
// the current gnmi_ext.proto).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { gnmiProto } from '../proto/gnmi.js';
import { have, run, skipUnless } from './helpers/tools.js';

const skip = skipUnless(have('protoc'), 'protoc (protobuf-compiler)');

type Wire = 'varint' | 'i64' | 'i32' | 'len';
interface Field {
  n: number;
  wire: Wire;
  sub?: Field[];
}

/** Parses `protoc --decode_raw` text into fields with their wire types. */
function parseRaw(text: string): Field[] {
  const lines = text.split('\n');
  let i = 0;
  const block = (): Field[] => {
    const out: Field[] = [];
    while (i < lines.length) {
      const line = (lines[i++] ?? '').trim();
      if (line === '') continue;
      if (line === '}') return out;
      const open = /^(\d+) \{$/.exec(line);
      if (open) {
        out.push({ n: Number(open[1]), wire: 'len', sub: block() });
        continue;
      }
      const m = /^(\d+): (.*)$/.exec(line);
      if (!m) throw new Error(`unreadable decode_raw line: ${line}`);
      const v = m[2] ?? '';
      const wire: Wire = v.startsWith('"')
        ? 'len'
        : /^0x[0-9a-f]{16}$/.test(v)
          ? 'i64'
          : /^0x[0-9a-f]{8}$/.test(v)
            ? 'i32'
            : 'varint';
      out.push({ n: Number(m[1]), wire });
    }
    return out;
  };
  return block();
}

/** "n:wire" signatures of a message, nested as "n.m:wire", sorted and unique. */
function signature(fields: Field[], prefix = ''): string[] {
  const out = new Set<string>();
  for (const f of fields) {
    out.add(`${prefix}${f.n}:${f.wire}`);
    if (f.sub) for (const s of signature(f.sub, `${prefix}${f.n}.`)) out.add(s);
  }
  return [...out].sort();
}

function decode(
  method: 'Get' | 'Set' | 'Subscribe' | 'Capabilities',
  side: 'request' | 'response',
  msg: object,
): string[] {
  const def = gnmiProto().service[method];
  if (def === undefined) throw new Error(`no method ${method}`);
  const buf = side === 'request' ? def.requestSerialize(msg) : def.responseSerialize(msg);
  return signature(parseRaw(run('protoc', ['--decode_raw'], buf)));
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const path = { origin: 'openconfig', elem: [{ name: 'a', key: { k: 'v' } }], target: 't' };
// Path: origin 2 (len), elem 3 (PathElem: name 1, key 2 = map entry {key 1, value 2}), target 4.
const PATH = (at: string): string[] => [
  `${at}:len`,
  `${at}.2:len`,
  `${at}.3:len`,
  `${at}.3.1:len`,
  `${at}.3.2:len`,
  `${at}.3.2.1:len`,
  `${at}.3.2.2:len`,
  `${at}.4:len`,
];
const sorted = (xs: string[]): string[] => [...new Set(xs)].sort();

describe('gNMI wire contract against protoc --decode_raw', { skip }, () => {
  test('SetRequest: prefix 1, delete 2, replace 3, update 4, extension 5, union_replace 6; TypedValue double_val 14 (64-bit)', () => {
    const got = decode('Set', 'request', {
      prefix: path,
      delete: [path],
      replace: [{ path, val: { double_val: 1.5 } }],
      update: [{ path, val: { json_ietf_val: json(1) }, duplicates: 2 }],
      union_replace: [{ path, val: { uint_val: '7' } }],
      extension: [{ master_arbitration: { role: { id: 'r' }, election_id: { high: '1', low: '2' } } }],
    });
    assert.deepEqual(
      got,
      sorted([
        ...PATH('1'),
        ...PATH('2'),
        '3:len',
        ...PATH('3.1'),
        '3.3:len',
        '3.3.14:i64',
        '4:len',
        ...PATH('4.1'),
        '4.3:len',
        '4.3.11:len',
        '4.4:varint',
        '6:len',
        ...PATH('6.1'),
        '6.3:len',
        '6.3.3:varint',
        // gnmi_ext.Extension master_arbitration 2: role 1 {id 1}, election_id 2 {high 1, low 2}.
        '5:len',
        '5.2:len',
        '5.2.1:len',
        '5.2.1.1:len',
        '5.2.2:len',
        '5.2.2.1:varint',
        '5.2.2.2:varint',
      ]),
    );
  });

  test('Extension commit 4 (Commit id 1, commit 2 {rollback_duration 1: Duration seconds 1}), depth 5 (level 1), config_subscription 6 (sync_done 2: 1, 2, 3), as in the official gnmi_ext.proto', () => {
    assert.deepEqual(
      decode('Set', 'request', {
        extension: [{ commit: { id: 'c', commit: { rollback_duration: { seconds: '30' } } } }],
      }),
      sorted(['5:len', '5.4:len', '5.4.1:len', '5.4.2:len', '5.4.2.1:len', '5.4.2.1.1:varint']),
    );
    assert.deepEqual(
      decode('Set', 'request', { extension: [{ commit: { id: 'c', confirm: {} } }] }),
      sorted(['5:len', '5.4:len', '5.4.1:len', '5.4.3:len']),
    );
    assert.deepEqual(
      decode('Get', 'request', { extension: [{ depth: { level: 2 } }] }),
      sorted(['7:len', '7.5:len', '7.5.1:varint']),
    );
    assert.deepEqual(
      decode('Subscribe', 'response', {
        extension: [
          {
            config_subscription: { sync_done: { commit_confirm_id: 'a', server_commit_id: 'b', done: true } },
          },
        ],
      }),
      sorted(['5:len', '5.6:len', '5.6.2:len', '5.6.2.1:len', '5.6.2.2:len', '5.6.2.3:varint']),
    );
    assert.deepEqual(
      decode('Subscribe', 'request', { extension: [{ config_subscription: { start: {} } }] }),
      sorted(['5:len', '5.6:len', '5.6.1:len']),
    );
  });

  test('SetResponse: prefix 1, response 2 (UpdateResult path 2, op 4 with UNION_REPLACE = 4), timestamp 4', () => {
    const def = gnmiProto().service['Set'];
    const buf = def?.responseSerialize({
      prefix: path,
      response: [{ path, op: 'UNION_REPLACE' }],
      timestamp: '5',
    }) as Buffer;
    const text = run('protoc', ['--decode_raw'], buf);
    assert.deepEqual(
      signature(parseRaw(text)),
      sorted([...PATH('1'), '2:len', ...PATH('2.2'), '2.4:varint', '4:varint']),
    );
    assert.match(text, /^\s+4: 4$/m, 'UNION_REPLACE is 4 on the wire');
  });

  test('GetRequest: prefix 1, path 2, type 3, encoding 5, use_models 6, extension 7; GetResponse notification 1, extension 3', () => {
    assert.deepEqual(
      decode('Get', 'request', {
        prefix: path,
        path: [path],
        type: 'STATE',
        encoding: 'JSON_IETF',
        use_models: [{ name: 'm', organization: 'o', version: 'v' }],
        extension: [{ history: { snapshot_time: '9' } }],
      }),
      sorted([
        ...PATH('1'),
        ...PATH('2'),
        '3:varint',
        '5:varint',
        '6:len',
        '6.1:len',
        '6.2:len',
        '6.3:len',
        '7:len',
        '7.3:len',
        '7.3.1:varint',
      ]),
    );
    // Notification: timestamp 1, prefix 2, update 4, delete 5, atomic 6 (3 is reserved: alias).
    assert.deepEqual(
      decode('Get', 'response', {
        notification: [
          {
            timestamp: '1',
            prefix: path,
            update: [{ path, val: { string_val: 's' } }],
            delete: [path],
            atomic: true,
          },
        ],
        extension: [{ registered_ext: { id: 'EID_EXPERIMENTAL', msg: Buffer.from('x') } }],
      }),
      sorted([
        '1:len',
        '1.1:varint',
        ...PATH('1.2'),
        '1.4:len',
        ...PATH('1.4.1'),
        '1.4.3:len',
        '1.4.3.1:len',
        ...PATH('1.5'),
        '1.6:varint',
        '3:len',
        '3.1:len',
        '3.1.1:varint',
        '3.1.2:len',
      ]),
    );
  });

  test('SubscribeRequest: subscribe 1 (SubscriptionList 1,2,4,5,6,7,8,9; Subscription 1..5), poll 3, extension 5', () => {
    assert.deepEqual(
      decode('Subscribe', 'request', {
        subscribe: {
          prefix: path,
          subscription: [
            {
              path,
              mode: 'SAMPLE',
              sample_interval: '1000',
              suppress_redundant: true,
              heartbeat_interval: '2000',
            },
          ],
          qos: { marking: 1 },
          mode: 'POLL',
          allow_aggregation: true,
          use_models: [{ name: 'm', organization: 'o', version: 'v' }],
          encoding: 'PROTO',
          updates_only: true,
        },
        extension: [{ master_arbitration: { role: { id: 'r' } } }],
      }),
      sorted([
        '1:len',
        ...PATH('1.1'),
        '1.2:len',
        ...PATH('1.2.1'),
        '1.2.2:varint',
        '1.2.3:varint',
        '1.2.4:varint',
        '1.2.5:varint',
        '1.4:len',
        '1.4.1:varint',
        '1.5:varint',
        '1.6:varint',
        '1.7:len',
        '1.7.1:len',
        '1.7.2:len',
        '1.7.3:len',
        '1.8:varint',
        '1.9:varint',
        '5:len',
        '5.2:len',
        '5.2.1:len',
        '5.2.1.1:len',
      ]),
    );
    // Poll is an empty message at field 3.
    assert.deepEqual(decode('Subscribe', 'request', { poll: {} }), ['3:len']);
  });

  test('SubscribeResponse: update 1, sync_response 3, extension 5', () => {
    assert.deepEqual(
      decode('Subscribe', 'response', {
        sync_response: true,
        extension: [{ history: { range: { start: '1', end: '2' } } }],
      }),
      sorted(['3:varint', '5:len', '5.3:len', '5.3.2:len', '5.3.2.1:varint', '5.3.2.2:varint']),
    );
    assert.deepEqual(
      decode('Subscribe', 'response', { update: { timestamp: '3' } }),
      sorted(['1:len', '1.1:varint']),
    );
  });

  test('CapabilityRequest extension 1; CapabilityResponse models 1, encodings 2 (packed), version 3, extension 4', () => {
    assert.deepEqual(
      decode('Capabilities', 'request', { extension: [{ master_arbitration: { role: { id: 'r' } } }] }),
      sorted(['1:len', '1.2:len', '1.2.1:len', '1.2.1.1:len']),
    );
    const def = gnmiProto().service['Capabilities'];
    const text = run(
      'protoc',
      ['--decode_raw'],
      def?.responseSerialize({
        supported_models: [{ name: 'm', organization: 'o', version: 'v' }],
        supported_encodings: ['JSON', 'JSON_IETF'],
        gNMI_version: '0.10.0',
        extension: [{ history: { snapshot_time: '1' } }],
      }),
    );
    assert.deepEqual(
      signature(parseRaw(text)),
      sorted([
        '1:len',
        '1.1:len',
        '1.2:len',
        '1.3:len',
        '2:len',
        '3:len',
        '4:len',
        '4.3:len',
        '4.3.1:varint',
      ]),
    );
    assert.match(text, /^3: "0\.10\.0"$/m);
  });
});
