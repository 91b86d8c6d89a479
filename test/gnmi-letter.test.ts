// The simulator's gNMI target, flowpin's adapter and proto/ held to the text of the
// specifications they follow, each test naming the section it checks:
// - RFC 7951 section 4 (JSON member names are qualified by the module of the data node where
//   it differs from its parent's; always at the top level), with RFC 7950 section 7.13 (nodes
//   of a grouping take the namespace of the module where the grouping is used) and 7.17 (an
//   augment's nodes take the augmenting module's): in OpenConfig, policy-forwarding comes into
//   openconfig-network-instance by `uses oc-pf:policy-forwarding-top`, a rule's ipv4, ipv6 and
//   transport by `uses oc-pmatch:*-top` inside it, static-routes by
//   `uses oc-loc-rt:local-static-top`; neighbour tables by openconfig-if-ip's augment.
// - RFC 7951 section 6.8: identity values qualified by the module defining the identity.
// - gNMI specification 3.4.7: an update, replace or union_replace of a path that is not valid
//   answers NOT_FOUND (Get and Subscribe keep 3.3.4 and 3.5.2.4: UNIMPLEMENTED).
// - gNMI specification 3.2.2: Capabilities names every model whose data or identities it serves.
// - gnmi_ext.proto of openconfig/gnmi: Extension members 4-6 (commit, depth, config_subscription).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import {
  gnmiProto,
  parsePath,
  type CapabilityResponse,
  type GetResponse,
  type Notification,
  type SetRequest,
  type Update,
} from '../proto/gnmi.js';
import { GnmiServer } from '../switch-sim/gnmi/server.js';
import { flatten, parseRules, ruleUpdate, rulesPath } from '../switch-adapters/gnmi/openconfig.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const { sw } = testSwitch({ pinCapacity: 10 });
const server = new GnmiServer(sw, { host: '127.0.0.1', port: 0 });
let client: Client & Record<string, (...a: unknown[]) => unknown>;

function unary<Req, Res>(method: string, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    (client[method] as (r: Req, m: Metadata, cb: (e: ServiceError | null, r: Res) => void) => void).call(
      client,
      req,
      new Metadata(),
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

const LOC = { networkInstance: 'default', policyId: 'flowpin' };
const NI = '/network-instances/network-instance[name=default]';
const RULES = `${NI}/policy-forwarding/policies/policy[policy-id=flowpin]/rules`;
const json = (v: unknown) => ({
  value: 'json_ietf_val' as const,
  json_ietf_val: Buffer.from(JSON.stringify(v)),
});
const valueOf = (u: Update | undefined): unknown =>
  JSON.parse(Buffer.from(u?.val?.json_ietf_val ?? '').toString('utf8')) as unknown;
const FLOW = { family: 4 as const, src: '198.51.100.7', dst: VIP, sport: 40001, dport: 443 };

/** Every member name in a JSON value, with the path of names leading to it. */
function memberNames(v: unknown, at = ''): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => memberNames(x, at));
  if (typeof v !== 'object' || v === null) return [];
  return Object.entries(v).flatMap(([k, sub]) => [`${at}/${k}`, ...memberNames(sub, `${at}/${k}`)]);
}
const qualified = (names: string[]): string[] =>
  names.filter((n) => (n.split('/').at(-1) ?? '').includes(':'));

async function getJson(path: string): Promise<unknown> {
  const res = await unary<object, GetResponse>('Get', { path: [parsePath(path)], encoding: 'JSON_IETF' });
  return valueOf(res.notification[0]?.update?.[0]);
}

before(async () => {
  const { address } = await server.start();
  const { Client: Ctor } = gnmiProto();
  client = new Ctor(address, credentials.createInsecure()) as typeof client;
  const req: SetRequest = {
    update: [
      {
        path: parsePath(`${NI}/policy-forwarding/policies/policy[policy-id=flowpin]/config`),
        val: json({ 'policy-id': 'flowpin', type: 'PBR_POLICY' }),
      },
      {
        path: parsePath(`${NI}/policy-forwarding/interfaces/interface[interface-id=Ethernet47]/config`),
        val: json({ 'interface-id': 'Ethernet47', 'apply-forwarding-policy': 'flowpin' }),
      },
    ],
    replace: [ruleUpdate(LOC, 1, { flow: FLOW, nexthop: NEXTHOPS[0] as string, idleTimeoutS: 300 })],
  };
  await unary('Set', req);
});

after(async () => {
  client.close();
  await server.stop();
});

describe("gNMI target and adapter, to the specifications' text", () => {
  test(
    "RFC 7951 s4 with RFC 7950 s7.13: nodes of a used grouping are openconfig-network-instance's, so nothing under a network instance is qualified",
    { timeout: 10_000 },
    async () => {
      const ni = await getJson(NI);
      const names = memberNames(ni);
      for (const n of [
        '/policy-forwarding',
        '/policy-forwarding/policies/policy/rules/rule/ipv4',
        '/policy-forwarding/policies/policy/rules/rule/transport',
        '/protocols/protocol/static-routes',
      ]) {
        assert.ok(names.includes(n), `member ${n} unqualified in ${JSON.stringify(ni).slice(0, 300)}`);
      }
      assert.deepEqual(qualified(names), [], 'no member under network-instance changes namespace');
    },
  );

  test(
    'RFC 7951 s4: the top-level members of a Get of / are qualified, and only they (and augments, RFC 7950 s7.17: openconfig-if-ip:ipv4)',
    { timeout: 10_000 },
    async () => {
      const root = await getJson('/');
      const q = qualified(memberNames(root));
      assert.ok(q.includes('/openconfig-network-instance:network-instances'), q.join(', '));
      assert.ok(q.includes('/openconfig-platform:components'), q.join(', '));
      assert.ok(q.includes('/openconfig-interfaces:interfaces'), q.join(', '));
      const augmented = q.filter((n) => n.split('/').length > 2);
      assert.ok(
        augmented.length > 0 && augmented.every((n) => /\/openconfig-if-ip:ipv[46]$/.test(n)),
        augmented.join(', '),
      );
    },
  );

  test(
    'RFC 7951 s6.8: identities qualified by the module that defines them (openconfig-packet-match-types, openconfig-policy-types)',
    { timeout: 10_000 },
    async () => {
      const ni = JSON.stringify(await getJson(NI));
      assert.match(ni, /"protocol":"openconfig-packet-match-types:IP_TCP"/);
      assert.match(ni, /"identifier":"openconfig-policy-types:STATIC"/);
    },
  );

  test("RFC 7951 s4: the adapter writes a rule with no qualified member name (its nodes are openconfig-network-instance's); the identity qualified (s6.8)", () => {
    const u = ruleUpdate(LOC, 7, { flow: FLOW, nexthop: NEXTHOPS[1] as string, idleTimeoutS: 300 });
    const v = valueOf(u);
    assert.deepEqual(qualified(memberNames(v)), []);
    assert.match(JSON.stringify(v), /"protocol":"openconfig-packet-match-types:IP_TCP"/);
  });

  test(
    "tolerant on input where devices vary: a rule qualified by the grouping's module (openconfig-packet-match:ipv4) or redundantly is read by the adapter and accepted by the target",
    { timeout: 10_000 },
    async () => {
      const base = rulesPath(LOC);
      const rule = {
        'sequence-id': 9,
        'openconfig-network-instance:config': { 'sequence-id': 9 },
        'openconfig-packet-match:ipv4': {
          config: {
            'source-address': '198.51.100.9/32',
            'destination-address': `${VIP}/32`,
            protocol: 'openconfig-packet-match-types:IP_TCP',
          },
        },
        'openconfig-packet-match:transport': { config: { 'source-port': 40009, 'destination-port': 443 } },
        action: { config: { 'next-hop': NEXTHOPS[2] } },
      };
      const n: Notification = {
        timestamp: '1',
        prefix: { elem: base },
        update: [{ path: { elem: [] }, val: json({ 'openconfig-network-instance:rule': [rule] }) }],
      };
      const r = parseRules(flatten([n]), base).get(9);
      assert.deepEqual(r?.flow, { family: 4, src: '198.51.100.9', dst: VIP, sport: 40009, dport: 443 });
      assert.equal(r?.nexthop, NEXTHOPS[2]);
      await unary('Set', { replace: [{ path: parsePath(`${RULES}/rule[sequence-id=9]`), val: json(rule) }] });
      assert.equal(sw.pins.get('oc/flowpin/9')?.match.sport, 40009);
    },
  );

  test(
    'gNMI 2.3.1 with RFC 7951 s5.4: a Get of a list answers one JSON array with one entry per list entry, each holding its own leaves (the same rules as the leaves one by one, PROTO encoding)',
    { timeout: 10_000 },
    async () => {
      const flows = [21, 22, 23].map((seq) => ({ ...FLOW, src: `198.51.100.${seq}`, sport: 40000 + seq }));
      await unary('Set', {
        replace: flows.map((flow, i) =>
          ruleUpdate(LOC, 21 + i, { flow, nexthop: NEXTHOPS[i % 2] as string, idleTimeoutS: 300 }),
        ),
      });
      const base = rulesPath(LOC);
      const read = async (encoding: string): Promise<Notification[]> =>
        (await unary<object, GetResponse>('Get', { path: [parsePath(RULES)], encoding })).notification;
      const asJson = await read('JSON_IETF');
      const entries = (valueOf(asJson[0]?.update?.[0]) as { rule: { 'sequence-id': number }[] }).rule;
      const seqs = entries.map((r) => r['sequence-id']);
      assert.equal(new Set(seqs).size, seqs.length, `one entry per rule: ${seqs.join(', ')}`);
      const fromJson = parseRules(flatten(asJson), base);
      assert.deepEqual(fromJson, parseRules(flatten(await read('PROTO')), base));
      for (const [i, flow] of flows.entries()) {
        assert.deepEqual(fromJson.get(21 + i)?.flow, flow);
        assert.equal(fromJson.get(21 + i)?.nexthop, NEXTHOPS[i % 2]);
      }
      await unary('Set', {
        delete: [21, 22, 23].map((seq) => parsePath(`${RULES}/rule[sequence-id=${seq}]`)),
      });
    },
  );

  test(
    'gNMI 3.4.7: an update of a leaf the model does not have is NOT_FOUND, whether named by the path or by a member of the value; nothing is applied',
    { timeout: 10_000 },
    async () => {
      const before = sw.pins.size;
      await assert.rejects(
        unary('Set', {
          update: [{ path: parsePath(`${RULES}/rule[sequence-id=1]/config/no-such-leaf`), val: json(1) }],
        }),
        (e: ServiceError) => e.code === status.NOT_FOUND && /no-such-leaf/.test(e.details),
      );
      await assert.rejects(
        unary('Set', {
          replace: [
            {
              path: parsePath(`${RULES}/rule[sequence-id=2]`),
              val: json({
                'sequence-id': 2,
                config: { 'sequence-id': 2, 'no-such-leaf': true },
                action: { config: { 'next-hop': NEXTHOPS[0] } },
              }),
            },
          ],
        }),
        (e: ServiceError) => e.code === status.NOT_FOUND && /no-such-leaf/.test(e.details),
      );
      await assert.rejects(
        unary('Set', { union_replace: [{ path: parsePath(`${NI}/no-such-container`), val: json({}) }] }),
        (e: ServiceError) => e.code === status.NOT_FOUND,
      );
      assert.equal(sw.pins.size, before);
      // A value of the wrong type stays INVALID_ARGUMENT (3.4.7), a Get of a path not implemented
      // UNIMPLEMENTED (3.3.4).
      await assert.rejects(
        unary('Set', {
          update: [
            { path: parsePath(`${RULES}/rule[sequence-id=1]/transport/config/source-port`), val: json('x') },
          ],
        }),
        (e: ServiceError) => e.code === status.INVALID_ARGUMENT,
      );
      await assert.rejects(
        unary('Get', {
          path: [parsePath(`${RULES}/rule[sequence-id=1]/config/no-such-leaf`)],
          encoding: 'JSON_IETF',
        }),
        (e: ServiceError) => e.code === status.UNIMPLEMENTED,
      );
    },
  );

  test(
    'gNMI 3.2.2: Capabilities announces openconfig-packet-match-types and openconfig-policy-types with organization and version',
    { timeout: 10_000 },
    async () => {
      const caps = await unary<object, CapabilityResponse>('Capabilities', {});
      const by = new Map(caps.supported_models.map((m) => [m.name, m]));
      assert.deepEqual(by.get('openconfig-packet-match-types'), {
        name: 'openconfig-packet-match-types',
        organization: 'OpenConfig working group',
        version: '1.3.4',
      });
      assert.deepEqual(by.get('openconfig-policy-types'), {
        name: 'openconfig-policy-types',
        organization: 'OpenConfig working group',
        version: '3.3.0',
      });
    },
  );

  test(
    'gnmi_ext.proto Extension 4-6: commit, depth and config_subscription decode with their messages, and the target refuses them by name (gnmi-extensions.md)',
    { timeout: 10_000 },
    async () => {
      const def = gnmiProto().service['Set'];
      const ext = [
        { commit: { id: 'c1', commit: { rollback_duration: { seconds: 30 } } } },
        { depth: { level: 2 } },
        {
          config_subscription: { sync_done: { commit_confirm_id: 'c1', server_commit_id: 's1', done: true } },
        },
      ];
      const back = def?.requestDeserialize(def.requestSerialize({ extension: ext })) as SetRequest;
      assert.deepEqual(
        back.extension?.map((e) => e.ext),
        ['commit', 'depth', 'config_subscription'],
      );
      assert.equal(String(back.extension?.[0]?.commit?.commit?.rollback_duration?.seconds), '30');
      assert.equal(back.extension?.[1]?.depth?.level, 2);
      assert.equal(back.extension?.[2]?.config_subscription?.sync_done?.done, true);
      for (const [i, name] of ['commit', 'depth', 'config_subscription'].entries()) {
        await assert.rejects(
          unary('Set', { extension: [ext[i]] }),
          (e: ServiceError) => e.code === status.UNIMPLEMENTED && e.details.includes(`extension ${name}`),
        );
      }
    },
  );
});
