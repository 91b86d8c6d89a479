// The adapter's reading of rule notifications (parseRuleNotifications) against the general
// path (flatten, then parseRules): the same rules from a listing's JSON subtree of every rule
// (member names module-qualified or not), from leaves one an update under a prefix (read-backs,
// samples), from a rule's state as a subtree, and from paths that do not name the rules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Notification, TypedValue } from '../proto/gnmi.js';
import {
  flatten,
  jsonIetf,
  parseRuleNotifications,
  parseRules,
  rulesPath,
} from '../switch-adapters/gnmi/openconfig.js';

const base = rulesPath({ networkInstance: 'default', policyId: 'flowpin' });
const rule = (seq: number) => ({ name: 'rule', key: { 'sequence-id': String(seq) } });
// Values as they arrive decoded: the oneof names its member (proto-loader's `oneofs`).
const j = (v: unknown): TypedValue => ({ ...jsonIetf(v), value: 'json_ietf_val' });
const general = (ns: Notification[]) => parseRules(flatten(ns), base);
const sorted = (m: Map<number, unknown>) => [...m].sort(([a], [b]) => a - b);

test('rule notifications of every shape read as the general path reads them', { timeout: 10_000 }, () => {
  const shapes: Record<string, Notification[]> = {
    'a listing: every rule as one JSON subtree at the rules path': [
      {
        timestamp: '1',
        update: [
          {
            path: { elem: base },
            val: j({
              rule: [
                {
                  'sequence-id': 7,
                  config: { 'sequence-id': 7 },
                  ipv4: {
                    config: {
                      'source-address': '10.0.0.1/32',
                      'destination-address': '192.0.2.80/32',
                      protocol: 'openconfig-packet-match-types:IP_TCP',
                    },
                  },
                  transport: { config: { 'source-port': 40000, 'destination-port': 443 } },
                  action: { config: { 'next-hop': '10.0.1.1' } },
                  state: { 'sequence-id': 7, 'matched-pkts': '12', 'matched-octets': '3400' },
                },
                {
                  'openconfig-network-instance:sequence-id': 8,
                  'openconfig-network-instance:ipv6': {
                    config: {
                      'source-address': '2001:db8::1/128',
                      'destination-address': '2001:db8::80/128',
                    },
                  },
                  transport: { config: { 'source-port': 40001, 'destination-port': 443 } },
                  action: { config: { 'next-hop': '2001:db8:1::1' } },
                },
              ],
            }),
          },
        ],
      },
    ],
    'read-back and sample leaves, one an update, under the rules prefix': [
      {
        timestamp: '2',
        prefix: { elem: base },
        update: [
          { path: { elem: [rule(7), { name: 'config' }, { name: 'sequence-id' }] }, val: j(7) },
          { path: { elem: [rule(7), { name: 'state' }, { name: 'sequence-id' }] }, val: j(7) },
          { path: { elem: [rule(9), { name: 'config' }, { name: 'sequence-id' }] }, val: j(9) },
          {
            path: { elem: [rule(9), { name: 'state' }, { name: 'matched-pkts' }] },
            val: { uint_val: '5', value: 'uint_val' },
          },
        ],
      },
    ],
    "a rule's state as a subtree, and paths elsewhere (ignored)": [
      {
        timestamp: '3',
        update: [
          {
            path: { elem: [...base, rule(4), { name: 'state' }] },
            val: j({ 'sequence-id': 4, 'matched-pkts': '1', 'matched-octets': '60' }),
          },
          { path: { elem: [{ name: 'components' }] }, val: j({ component: [] }) },
          {
            path: { elem: [...base.slice(0, -2), { name: 'policy', key: { 'policy-id': 'other' } }] },
            val: j({ rules: { rule: [{ 'sequence-id': 1 }] } }),
          },
        ],
      },
    ],
  };
  for (const [what, ns] of Object.entries(shapes)) {
    const fast = parseRuleNotifications(ns, base);
    assert.ok(fast.size > 0, what);
    assert.deepEqual(sorted(fast), sorted(general(ns)), what);
  }
});
