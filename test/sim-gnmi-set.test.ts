// The simulated gNMI target's Set semantics where many paths are removed in one request:
// deletes and replaces of many rules (removed in one pass over the store) remove exactly the
// paths named and what lies under them, never a sibling whose key merely starts alike
// (sequence-id 1 against 10 and 100); nested replaces in one request give what the same
// replaces made one after another give.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parsePath, type Update } from '../proto/gnmi.js';
import { OpenConfigModel } from '../switch-sim/gnmi/model.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const RULES =
  '/network-instances/network-instance[name=default]/policy-forwarding/policies/policy[policy-id=flowpin]/rules';
const json = (v: unknown) => ({
  value: 'json_ietf_val' as const,
  json_ietf_val: Buffer.from(JSON.stringify(v)),
});
const rule = (seq: number, sport: number, nh = NEXTHOPS[0] as string): Update => ({
  path: parsePath(`${RULES}/rule[sequence-id=${seq}]`),
  val: json({
    'sequence-id': seq,
    config: { 'sequence-id': seq, description: `r${seq}` },
    'openconfig-network-instance:ipv4': {
      config: { 'source-address': '10.100.0.1/32', 'destination-address': `${VIP}/32`, protocol: 6 },
    },
    transport: { config: { 'source-port': sport, 'destination-port': 443 } },
    action: { config: { 'next-hop': nh } },
  }),
});

function model(): OpenConfigModel {
  const { sw } = testSwitch({ pinCapacity: 1000 });
  const m = new OpenConfigModel(sw, {
    networkInstance: 'default',
    staticProtocol: 'STATIC',
    pinTableComponent: 'Chip0',
    pinTableResource: 'policy-forwarding-rules',
  });
  m.applySet({
    update: [
      {
        path: parsePath(
          '/network-instances/network-instance[name=default]/policy-forwarding/policies/policy[policy-id=flowpin]/config',
        ),
        val: json({ 'policy-id': 'flowpin', type: 'PBR_POLICY' }),
      },
      {
        path: parsePath(
          '/network-instances/network-instance[name=default]/policy-forwarding/interfaces/interface[interface-id=Ethernet47]/config',
        ),
        val: json({ 'interface-id': 'Ethernet47', 'apply-forwarding-policy': 'flowpin' }),
      },
    ],
  });
  return m;
}

/** Rule sequence ids in the configuration, with their description and source port. */
function rules(m: OpenConfigModel): Map<number, { description?: unknown; sport?: unknown }> {
  const out = new Map<number, { description?: unknown; sport?: unknown }>();
  for (const l of m.leaves('CONFIG')) {
    const r = l.elems.find((e) => e.name === 'rule');
    if (r === undefined) continue;
    const seq = Number(r.key?.['sequence-id']);
    const e = out.get(seq) ?? {};
    out.set(seq, e);
    const tail = l.elems
      .slice(-2)
      .map((x) => x.name)
      .join('/');
    if (tail === 'config/description') e.description = l.value;
    if (tail === 'config/source-port') e.sport = l.value;
  }
  return out;
}

describe('gNMI target: Sets that remove many paths', () => {
  test('deleting rules 1 and 20 leaves 10, 100 and 2 whole', { timeout: 10_000 }, () => {
    const m = model();
    m.applySet({ replace: [1, 2, 10, 20, 100].map((s) => rule(s, 1000 + s)) });
    m.applySet({
      delete: [parsePath(`${RULES}/rule[sequence-id=1]`), parsePath(`${RULES}/rule[sequence-id=20]`)],
    });
    const left = rules(m);
    assert.deepEqual(
      [...left.keys()].sort((a, b) => a - b),
      [2, 10, 100],
    );
    for (const s of [2, 10, 100]) assert.deepEqual(left.get(s), { description: `r${s}`, sport: 1000 + s });
    assert.deepEqual(
      m.sw.pins
        .all()
        .map((e) => e.name)
        .sort(),
      ['oc/flowpin/10', 'oc/flowpin/100', 'oc/flowpin/2'],
    );
  });

  test(
    'replacing many rules replaces each whole (omitted leaves removed) and no other',
    { timeout: 10_000 },
    () => {
      const m = model();
      m.applySet({ replace: [1, 10, 100].map((s) => rule(s, 1000 + s)) });
      const bare = (seq: number, sport: number): Update => {
        const u = rule(seq, sport);
        const v = JSON.parse(Buffer.from(u.val?.json_ietf_val as Uint8Array).toString()) as {
          config: Record<string, unknown>;
        };
        delete v.config['description'];
        return { path: u.path, val: json(v) };
      };
      m.applySet({ replace: [bare(1, 2001), bare(100, 2100)] });
      const left = rules(m);
      assert.deepEqual(left.get(1), { sport: 2001 });
      assert.deepEqual(left.get(100), { sport: 2100 });
      assert.deepEqual(left.get(10), { description: 'r10', sport: 1010 });
    },
  );

  test(
    'rules written in one request keep the key leaves of every entry on their paths, also where the request replaced one of them between',
    { timeout: 10_000 },
    () => {
      const m = model();
      const P2 = RULES.replace('policy-id=flowpin', 'policy-id=p2');
      const POLICY = P2.slice(0, -'/rules'.length);
      const inP2 = (seq: number): Update => ({
        ...rule(seq, 1000 + seq),
        path: parsePath(`${P2}/rule[sequence-id=${seq}]`),
      });
      m.applySet({
        replace: [
          rule(7, 1007),
          inP2(1),
          inP2(2),
          // The policy itself, with none of its rules: rule 1 and 2 go, its key leaves are written again.
          { path: parsePath(POLICY), val: json({ 'policy-id': 'p2', config: { type: 'PBR_POLICY' } }) },
          inP2(3),
          inP2(4),
        ],
      });
      const keys = m
        .leaves('CONFIG')
        .filter((l) => l.elems.at(-2)?.name === 'config' && l.elems[4]?.key?.['policy-id'] === 'p2')
        .map(
          (l) =>
            `${l.elems.at(-3)?.key?.['sequence-id'] ?? 'policy'} ${l.elems.at(-1)?.name}=${String(l.value)}`,
        )
        .filter((x) => x.includes('-id='))
        .sort();
      assert.deepEqual(keys, ['3 sequence-id=3', '4 sequence-id=4', 'policy policy-id=p2']);
      assert.deepEqual(
        [...rules(m).keys()].sort((a, b) => a - b),
        [3, 4, 7],
      );
      assert.deepEqual(
        m.sw.pins
          .all()
          .map((e) => e.name)
          .sort(),
        ['oc/flowpin/7'],
        'p2 is applied nowhere',
      );
    },
  );

  test('nested replaces in one request act as in sequence', { timeout: 10_000 }, () => {
    const one = model();
    const seq = model();
    const child: Update = {
      path: parsePath(`${RULES}/rule[sequence-id=10]/transport/config`),
      val: json({ 'destination-port': 443 }),
    };
    for (const m of [one, seq]) m.applySet({ replace: [rule(10, 1010)] });
    one.applySet({ replace: [rule(10, 3010), child] });
    seq.applySet({ replace: [rule(10, 3010)] });
    seq.applySet({ replace: [child] });
    assert.deepEqual(rules(one).get(10), rules(seq).get(10));
    assert.equal(rules(one).get(10)?.sport, undefined, "the child replace removed the parent's source-port");
  });

  test(
    "applied state is each rule's own: a programmed rule's ipv4 and transport state shows, a pending one's does not",
    { timeout: 10_000 },
    () => {
      const m = model();
      m.sw.pins.programDelayMs = 1000;
      m.applySet({ replace: [rule(1, 1001)] });
      m.sw.pins.settle(m.sw.now() + 1000);
      m.applySet({ replace: [rule(2, 1002)] });
      const state = m.leaves('STATE', [parsePath(RULES).elem ?? []]).map((l) =>
        l.elems
          .slice(-4)
          .map((e) => e.key?.['sequence-id'] ?? e.name)
          .join('/'),
      );
      for (const leaf of [
        'ipv4/state/source-address',
        'transport/state/source-port',
        'action/state/next-hop',
      ]) {
        assert.ok(
          state.some((x) => x === `1/${leaf}`),
          `rule 1 ${leaf} in ${state.join(', ')}`,
        );
        assert.ok(!state.some((x) => x === `2/${leaf}`), `rule 2 (pending) has no ${leaf}`);
      }
    },
  );

  test(
    'a refused request leaves every rule as it was: values it overwrote, rules it replaced or deleted, entries it created (gNMI 3.4.3)',
    { timeout: 10_000 },
    () => {
      const m = model();
      m.applySet({ replace: [1, 2, 3].map((s) => rule(s, 1000 + s)) });
      const before = rules(m);
      const pins = m.sw.pins
        .all()
        .map((e) => `${e.name} ${e.match.sport}`)
        .sort();
      assert.throws(
        () =>
          m.applySet({
            delete: [parsePath(`${RULES}/rule[sequence-id=3]`)],
            replace: [rule(2, 2002), rule(4, 1004)],
            update: [
              {
                path: parsePath(`${RULES}/rule[sequence-id=1]/transport/config/source-port`),
                val: json(3001),
              },
              {
                path: parsePath(`${RULES}/rule[sequence-id=1]/action/config/next-hop`),
                val: json('not an address'),
              },
            ],
          }),
        /not an IP address/,
      );
      assert.deepEqual(rules(m), before);
      assert.deepEqual(
        m.sw.pins
          .all()
          .map((e) => `${e.name} ${e.match.sport}`)
          .sort(),
        pins,
      );
    },
  );
});
