// gNMI conformance of the simulator's target to the gNMI 0.10.0 specification, with a real
// grpc-js client on the project's proto: Capabilities, Set as one transaction (all or
// nothing, table capacity, replace/delete/union_replace, keys checked, extensions refused),
// Get (errors by the behaviour table, data types, encodings, target reflection), Subscribe
// ONCE/POLL/SAMPLE (suppress_redundant, heartbeat)/ON_CHANGE, policies that act only once
// applied to the ingress interface, VIP group changes, auth, faults.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  credentials,
  Metadata,
  status,
  type Client,
  type ClientDuplexStream,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  gnmiProto,
  parsePath,
  type GetResponse,
  type SetRequest,
  type SetResponse,
  type SubscribeRequest,
  type SubscribeResponse,
  type CapabilityResponse,
  type Update,
} from '../proto/gnmi.js';
import { GnmiServer } from '../switch-sim/gnmi/server.js';
import { flatten } from '../switch-adapters/gnmi/openconfig.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const { sw, clock } = testSwitch({ pinCapacity: 3 });
const server = new GnmiServer(sw, {
  host: '127.0.0.1',
  port: 0,
  username: 'admin',
  password: 'pw',
  changeScanMs: 20,
});
let client: Client & Record<string, (...a: unknown[]) => unknown>;
const md = (): Metadata => {
  const m = new Metadata();
  m.set('username', 'admin');
  m.set('password', 'pw');
  return m;
};

function unary<Req, Res>(method: string, req: Req, meta = md()): Promise<Res> {
  return new Promise((resolve, reject) => {
    (client[method] as (r: Req, m: Metadata, cb: (e: ServiceError | null, r: Res) => void) => void).call(
      client,
      req,
      meta,
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

const RULES =
  '/network-instances/network-instance[name=default]/policy-forwarding/policies/policy[policy-id=flowpin]/rules';
const rulePath = (seq: number) => parsePath(`${RULES}/rule[sequence-id=${seq}]`);
const json = (v: unknown) => ({ json_ietf_val: Buffer.from(JSON.stringify(v)) });
const rule = (seq: number, src: string, sport: number, nh: string): Update => ({
  path: rulePath(seq),
  val: json({
    'sequence-id': seq,
    config: { 'sequence-id': seq },
    'openconfig-network-instance:ipv4': {
      config: { 'source-address': `${src}/32`, 'destination-address': `${VIP}/32`, protocol: 6 },
    },
    transport: { config: { 'source-port': sport, 'destination-port': 443 } },
    action: { config: { 'next-hop': nh } },
  }),
});

function collect(
  stream: ClientDuplexStream<SubscribeRequest, SubscribeResponse>,
  until: (msgs: SubscribeResponse[]) => boolean,
  ms = 5000,
): Promise<SubscribeResponse[]> {
  const msgs: SubscribeResponse[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () =>
        reject(new Error(`timed out with ${msgs.length} messages: ${JSON.stringify(msgs).slice(0, 400)}`)),
      ms,
    );
    stream.on('data', (m: SubscribeResponse) => {
      msgs.push(m);
      if (until(msgs)) {
        clearTimeout(t);
        resolve(msgs);
      }
    });
    stream.on('error', (e) => {
      clearTimeout(t);
      if (until(msgs)) resolve(msgs);
      else reject(e);
    });
  });
}

const leafValue = (u: Update): unknown => {
  const v = u.val;
  if (v?.json_ietf_val) return JSON.parse(Buffer.from(v.json_ietf_val).toString()) as unknown;
  if (v?.json_val) return JSON.parse(Buffer.from(v.json_val).toString()) as unknown;
  return v?.uint_val !== undefined && v.value === 'uint_val' ? Number(v.uint_val) : v?.string_val;
};
const lastName = (u: Update): string =>
  (u.path?.elem ?? [])
    .map((e) => e.name)
    .slice(-2)
    .join('/');

before(async () => {
  const { address } = await server.start();
  const { Client: Ctor } = gnmiProto();
  client = new Ctor(address, credentials.createInsecure()) as typeof client;
  await unary('Set', {
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
});
after(async () => {
  client.close();
  await server.stop();
});

describe('gNMI of the simulator', () => {
  test('Capabilities names gNMI 0.10.0, JSON_IETF and the OpenConfig models', async () => {
    const caps = await unary<object, CapabilityResponse>('Capabilities', {});
    assert.equal(caps.gNMI_version, '0.10.0');
    assert.ok(caps.supported_encodings.includes('JSON_IETF'));
    assert.ok(caps.supported_models.some((m) => m.name === 'openconfig-policy-forwarding'));
  });

  test('missing credentials are UNAUTHENTICATED', async () => {
    await assert.rejects(
      unary('Capabilities', {}, new Metadata()),
      (e: ServiceError) => e.code === status.UNAUTHENTICATED,
    );
  });

  test('Set installs rules as pins in one transaction; Get reads them back', async () => {
    const flows = [0, 1].map((i) => ({ src: `10.100.0.${i + 1}`, sport: 30000 + i }));
    const targets = flows.map(
      (f) => NEXTHOPS.find((n) => n !== sw.ecmpNexthop(f.src, VIP, 6, f.sport, 443)) as string,
    );
    const res = await unary<SetRequest, SetResponse>('Set', {
      update: flows.map((f, i) => rule(10 + i, f.src, f.sport, targets[i] as string)),
    });
    assert.deepEqual(
      res.response.map((r) => r.op),
      ['UPDATE', 'UPDATE'],
    );
    assert.equal(sw.pins.programmed, 2);
    flows.forEach((f, i) =>
      assert.equal(
        sw.deliver({ src: f.src, dst: VIP, sport: f.sport, dport: 443, protocol: 6, flags: 0x10, bytes: 100 })
          .nexthop,
        targets[i],
      ),
    );
    const got = await unary<object, GetResponse>('Get', { path: [rulePath(10)], encoding: 'JSON_IETF' });
    // A rule is a node with children: one update, its JSON subtree (gNMI 2.3.1).
    assert.equal(got.notification[0]?.update?.length, 1);
    const flat = flatten(got.notification);
    const last2 = (l: { elems: { name: string }[] }): string =>
      l.elems
        .map((e) => e.name)
        .slice(-2)
        .join('/');
    const byLeaf = Object.fromEntries(flat.map((l) => [last2(l), l.value]));
    const cfg = Object.fromEntries(
      flat.filter((l) => !l.elems.some((e) => e.name === 'state')).map((l) => [last2(l), l.value]),
    );
    assert.deepEqual(cfg, {
      'rule/sequence-id': 10,
      'config/sequence-id': 10,
      'config/source-address': '10.100.0.1/32',
      'config/destination-address': `${VIP}/32`,
      'config/protocol': 6,
      'config/source-port': 30000,
      'config/destination-port': 443,
      'config/next-hop': targets[0],
    });
    // Applied state mirrors the configuration; counter64 is a JSON string in JSON_IETF (RFC 7951 6.1).
    assert.equal(byLeaf['state/sequence-id'], 10);
    assert.equal(byLeaf['state/matched-pkts'], '1');
    assert.equal(byLeaf['state/matched-octets'], '100');
  });

  test('a SetRequest that does not fit the table changes nothing (RESOURCE_EXHAUSTED)', async () => {
    const before = sw.pins
      .all()
      .map((e) => e.name)
      .sort();
    await assert.rejects(
      unary('Set', {
        update: [
          rule(20, '10.100.0.20', 1, NEXTHOPS[0] as string),
          rule(21, '10.100.0.21', 1, NEXTHOPS[0] as string),
        ],
      }),
      (e: ServiceError) => e.code === status.RESOURCE_EXHAUSTED && /pin table full/.test(e.details),
    );
    assert.deepEqual(
      sw.pins
        .all()
        .map((e) => e.name)
        .sort(),
      before,
    );
  });

  test('an invalid update anywhere in a SetRequest changes nothing (INVALID_ARGUMENT)', async () => {
    const req: SetRequest = {
      delete: [rulePath(10)],
      update: [
        {
          path: parsePath(`${RULES}/rule[sequence-id=30]/action/config/next-hop`),
          val: { string_val: 'not-an-address' },
        },
      ],
    };
    await assert.rejects(
      unary('Set', req),
      (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /not an IP address/.test(e.details),
    );
    assert.ok(sw.pins.get('oc/flowpin/10'), 'the delete in the failed request was not applied');
  });

  test('Subscribe ONCE sends every leaf then sync; POLL answers each poll', async () => {
    const once = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const got = collect(once, (m) => m.some((x) => x.sync_response === true));
    once.write({
      subscribe: {
        prefix: parsePath(RULES),
        subscription: [{ path: parsePath('/rule[sequence-id=11]/state') }],
        mode: 'ONCE',
      },
    });
    const msgs = await got;
    const updates = msgs.flatMap((m) => m.update?.update ?? []);
    assert.deepEqual(updates.map(lastName).sort(), [
      'state/matched-octets',
      'state/matched-pkts',
      'state/sequence-id',
    ]);
    const poll = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const polled = collect(poll, (m) => m.filter((x) => x.sync_response === true).length === 2);
    poll.write({
      subscribe: {
        subscription: [{ path: parsePath(`${RULES}/rule[sequence-id=10]/state/matched-pkts`) }],
        mode: 'POLL',
      },
    });
    setTimeout(() => poll.write({ poll: {} }), 50);
    const pm = await polled;
    poll.cancel();
    assert.equal(pm.filter((m) => m.update).length, 2);
  });

  test('Subscribe STREAM SAMPLE streams matched-pkts as traffic flows', async () => {
    const s = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const counts: number[] = [];
    const got = collect(s, (m) => {
      const last = m[m.length - 1]?.update?.update?.[0];
      if (last) counts.push(Number(leafValue(last)));
      return counts.length >= 3;
    });
    s.write({
      subscribe: {
        subscription: [
          {
            path: parsePath(`${RULES}/rule[sequence-id=10]/state/matched-pkts`),
            mode: 'SAMPLE',
            sample_interval: String(30_000_000),
          },
        ],
        mode: 'STREAM',
      },
    });
    const timer = setInterval(
      () =>
        sw.deliver({
          src: '10.100.0.1',
          dst: VIP,
          sport: 30000,
          dport: 443,
          protocol: 6,
          flags: 0x10,
          bytes: 10,
        }),
      10,
    );
    await got;
    clearInterval(timer);
    s.cancel();
    assert.ok(
      (counts[counts.length - 1] ?? 0) > (counts[0] ?? 0),
      `counter did not grow: ${counts.join(',')}`,
    );
  });

  test("SAMPLE runs on the device's clock: an hourly sample arrives when the device's (simulated) hours pass", async () => {
    const device = new GnmiServer(sw, {
      host: '127.0.0.1',
      port: 0,
      username: 'admin',
      password: 'pw',
      clock: { now: clock.now, every: (ms, fn) => clock.every(ms, fn) },
    });
    const { address } = await device.start();
    const { Client: Ctor } = gnmiProto();
    const c = new Ctor(address, credentials.createInsecure()) as typeof client;
    try {
      const s = c['Subscribe']?.call(c, md()) as ClientDuplexStream<SubscribeRequest, SubscribeResponse>;
      let synced = false;
      const got = collect(s, (m) => {
        synced ||= m.some((x) => x.sync_response === true);
        if (synced && m.at(-1)?.sync_response === true) clock.advance(3 * 3_600_000);
        return m.filter((x) => x.update !== undefined && x.update !== null).length >= 1 + 3;
      });
      s.write({
        subscribe: {
          subscription: [
            {
              path: parsePath(`${RULES}/rule[sequence-id=10]/state/matched-pkts`),
              mode: 'SAMPLE',
              sample_interval: String(3_600_000_000_000),
            },
          ],
          mode: 'STREAM',
        },
      });
      const msgs = await got;
      s.cancel();
      assert.equal(
        msgs.filter((x) => x.update !== undefined && x.update !== null).length,
        4,
        'the initial update and one sample per hour passed',
      );
    } finally {
      c.close();
      await device.stop();
    }
  });

  test('Subscribe ON_CHANGE reports a VIP group change made by Set, as update then delete', async () => {
    const base = `/network-instances/network-instance[name=default]/protocols/protocol[identifier=STATIC][name=STATIC]/static-routes/static[prefix=${VIP}/32]`;
    const s = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const seen = collect(s, (m) => m.some((x) => (x.update?.delete ?? []).length > 0));
    s.write({
      subscribe: {
        subscription: [{ path: parsePath(`${base}/next-hops`), mode: 'ON_CHANGE' }],
        mode: 'STREAM',
      },
    });
    await new Promise((r) => setTimeout(r, 60));
    await unary('Set', {
      update: [
        {
          path: parsePath(`${base}/next-hops/next-hop[index=10.0.1.9]/config/next-hop`),
          val: { string_val: '10.0.1.9' },
        },
      ],
    });
    assert.deepEqual(sw.vips.get(VIP)?.group.members(), [...NEXTHOPS, '10.0.1.9']);
    await new Promise((r) => setTimeout(r, 60));
    await unary('Set', { delete: [parsePath(`${base}/next-hops/next-hop[index=10.0.1.9]`)] });
    assert.deepEqual(sw.vips.get(VIP)?.group.members(), NEXTHOPS);
    const msgs = await seen;
    s.cancel();
    const added = msgs
      .flatMap((m) => m.update?.update ?? [])
      .filter((u) => (u.path?.elem ?? []).some((e) => e.key?.['index'] === '10.0.1.9'));
    assert.ok(added.length > 0, 'the added next-hop was reported');
    assert.ok(
      msgs.some((m) =>
        (m.update?.delete ?? []).some((p) => (p.elem ?? []).some((e) => e.key?.['index'] === '10.0.1.9')),
      ),
      'its removal was reported',
    );
  });

  test('injected faults surface as UNAVAILABLE, then the target recovers', async () => {
    server.faults.set({ failNext: 1, dropNext: 1 });
    await assert.rejects(unary('Capabilities', {}), (e: ServiceError) => e.code === status.UNAVAILABLE);
    await assert.rejects(unary('Capabilities', {}), (e: ServiceError) => e.code === status.UNAVAILABLE);
    assert.equal((await unary<object, CapabilityResponse>('Capabilities', {})).gNMI_version, '0.10.0');
  });
});

const POLICIES = '/network-instances/network-instance[name=default]/policy-forwarding/policies';
const STATIC = `/network-instances/network-instance[name=default]/protocols/protocol[identifier=STATIC][name=STATIC]/static-routes/static[prefix=${VIP}/32]`;
const code = (c: status) => (e: ServiceError) => e.code === c;
const leavesOf = (r: GetResponse): Map<string, unknown> =>
  new Map(
    flatten(r.notification.slice(0, 1)).map((l) => [
      l.elems
        .map(
          (e) =>
            e.name +
            Object.entries(e.key ?? {})
              .map(([k, v]) => `[${k}=${v}]`)
              .join(''),
        )
        .join('/'),
      l.value,
    ]),
  );

describe('gNMI of the simulator, to the 0.10.0 specification', () => {
  test('Get errors follow the behaviour table: NOT_FOUND, UNIMPLEMENTED, INVALID_ARGUMENT', async () => {
    await assert.rejects(
      unary('Get', { path: [rulePath(999)], encoding: 'JSON_IETF' }),
      code(status.NOT_FOUND),
    );
    await assert.rejects(
      unary('Get', {
        path: [parsePath('/network-instances/network-instance[name=default]/afts')],
        encoding: 'JSON_IETF',
      }),
      code(status.UNIMPLEMENTED),
    );
    await assert.rejects(
      unary('Get', { path: [parsePath('/system/config/hostname')] }),
      code(status.UNIMPLEMENTED),
    );
    await assert.rejects(
      unary('Get', { path: [parsePath(`${RULES}/rule[sequence-id=abc]`)] }),
      code(status.INVALID_ARGUMENT),
    );
    await assert.rejects(
      unary('Get', { path: [parsePath(`${RULES}/rule[seq=1]`)] }),
      code(status.INVALID_ARGUMENT),
    );
    await assert.rejects(
      unary('Get', { path: [{ element: ['network-instances'] }] }),
      code(status.INVALID_ARGUMENT),
    );
    await assert.rejects(
      unary('Get', { path: [rulePath(10)], encoding: 'ASCII' }),
      (e: ServiceError) => e.code === status.UNIMPLEMENTED && /encoding/.test(e.details),
    );
  });

  test('GetRequest.type selects CONFIG, STATE or OPERATIONAL data; PROTO encoding gives scalar values', async () => {
    const names = async (type: string): Promise<string[]> =>
      [
        ...leavesOf(
          await unary<object, GetResponse>('Get', { path: [rulePath(10)], type, encoding: 'JSON_IETF' }),
        ).keys(),
      ].map((k) => k.split('/').slice(-2).join('/'));
    const config = await names('CONFIG');
    assert.ok(config.includes('config/next-hop') && !config.some((n) => n.startsWith('state/')));
    const state = await names('STATE');
    assert.ok(
      state.includes('state/next-hop') &&
        state.includes('state/matched-pkts') &&
        !state.some((n) => n.startsWith('config/')),
    );
    assert.deepEqual((await names('OPERATIONAL')).sort(), ['state/matched-octets', 'state/matched-pkts']);
    const proto = await unary<object, GetResponse>('Get', {
      path: [parsePath(`${RULES}/rule[sequence-id=10]/state/matched-pkts`)],
      encoding: 'PROTO',
    });
    assert.equal(proto.notification[0]?.update?.[0]?.val?.value, 'uint_val');
  });

  test('prefix.target is reflected in Get, Set and Subscribe responses; paths are relative to the prefix', async () => {
    const prefix = { ...parsePath(RULES), target: 'sim1' };
    const got = await unary<object, GetResponse>('Get', {
      prefix,
      path: [parsePath('/rule[sequence-id=10]/action/config/next-hop')],
      encoding: 'JSON_IETF',
    });
    assert.equal(got.notification[0]?.prefix?.target, 'sim1');
    assert.deepEqual(
      got.notification[0]?.update?.[0]?.path?.elem?.map((e) => e.name),
      ['rule', 'action', 'config', 'next-hop'],
    );
    const set = await unary<SetRequest, SetResponse>('Set', {
      prefix,
      update: [{ path: parsePath('/rule[sequence-id=10]/config/description'), val: { string_val: 'x' } }],
    });
    assert.equal(set.prefix?.target, 'sim1');
    const s = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const msgs = collect(s, (m) => m.some((x) => x.sync_response === true));
    s.write({
      subscribe: {
        prefix,
        subscription: [{ path: parsePath('/rule[sequence-id=10]/action/config/next-hop') }],
        mode: 'ONCE',
      },
    });
    assert.equal((await msgs).find((m) => m.update)?.update?.prefix?.target, 'sim1');
    const none = await unary<object, GetResponse>('Get', { path: [rulePath(10)] });
    assert.ok(!none.notification[0]?.prefix?.target, 'no target when the request has none');
  });

  test('replace removes omitted leaves; delete of a single leaf; union_replace applied, refused when mixed', async () => {
    await unary('Set', {
      replace: [
        {
          path: parsePath(`${RULES}/rule[sequence-id=10]/transport/config`),
          val: json({ 'destination-port': 443 }),
        },
      ],
    });
    assert.equal(sw.pins.get('oc/flowpin/10')?.match.sport, undefined, 'the omitted source-port is gone');
    assert.equal(sw.pins.get('oc/flowpin/10')?.match.dport, 443);
    await unary('Set', {
      update: [
        { path: parsePath(`${RULES}/rule[sequence-id=10]/transport/config/source-port`), val: json(30000) },
      ],
    });
    await unary('Set', { delete: [parsePath(`${RULES}/rule[sequence-id=10]/config/description`)] });
    assert.ok(
      !leavesOf(await unary<object, GetResponse>('Get', { path: [rulePath(10)], type: 'CONFIG' })).has(
        `${RULES.slice(1)}/rule[sequence-id=10]/config/description`.replace(/^/, ''),
      ),
      'description deleted',
    );
    await assert.rejects(
      unary('Set', { delete: [parsePath(`${RULES}/rule[sequence-id=10]/config/sequence-id`)] }),
      code(status.INVALID_ARGUMENT),
    );
    const ur = await unary<SetRequest, SetResponse>('Set', {
      union_replace: [
        {
          path: parsePath(`${RULES}/rule[sequence-id=10]/transport/config`),
          val: json({ 'source-port': 30000, 'destination-port': 443 }),
        },
      ],
    });
    assert.deepEqual(
      ur.response.map((r) => r.op),
      ['UNION_REPLACE'],
    );
    await assert.rejects(
      unary('Set', {
        union_replace: [rule(40, '10.100.0.40', 1, NEXTHOPS[0] as string)],
        update: [rule(41, '10.100.0.41', 1, NEXTHOPS[0] as string)],
      }),
      code(status.INVALID_ARGUMENT),
    );
    await assert.rejects(
      unary('Set', { replace: [{ path: rulePath(10), val: json({}) }] }),
      code(status.INVALID_ARGUMENT),
    );
    assert.equal(sw.pins.get('oc/flowpin/10')?.match.sport, 30000);
  });

  test('extensions are refused, never ignored (including one of a later release, e.g. commit confirmed)', async () => {
    const before = sw.pins.all().length;
    await assert.rejects(
      unary('Set', {
        update: [rule(50, '10.100.0.50', 1, NEXTHOPS[0] as string)],
        // History (gnmi_ext field 3) means nothing to a Set and this target keeps none: refused. (Master
        // arbitration, the one extension it implements, is tested in gnmi-fence.)
        extension: [{ history: { snapshot_time: '1' } }],
      }),
      code(status.UNIMPLEMENTED),
    );
    // gnmi_ext.Extension field 4 (commit, gNMI 0.11.0) holding Commit{id: "c1"}, appended to a valid
    // SetRequest.
    const svc = gnmiProto().service['Set'];
    const body = Buffer.concat([
      svc?.requestSerialize({ update: [rule(51, '10.100.0.51', 1, NEXTHOPS[0] as string)] }) as Buffer,
      Buffer.from([0x2a, 0x06, 0x22, 0x04, 0x0a, 0x02, 0x63, 0x31]),
    ]);
    await assert.rejects(
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          '/gnmi.gNMI/Set',
          (b: Buffer) => b,
          (b: Buffer) => b,
          body,
          md(),
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      ),
      (e: ServiceError) => e.code === status.UNIMPLEMENTED && /extension/.test(e.details),
    );
    assert.equal(sw.pins.all().length, before, 'neither Set was applied');
  });

  test('keys are checked on Set: other network instances and protocol instances do not land in the default STATIC one', async () => {
    const members = [...(sw.vips.get(VIP)?.group.members() ?? [])];
    const nh = (p: string) => ({
      path: parsePath(`${p}/next-hops/next-hop[index=x]/config`),
      val: json({ index: 'x', 'next-hop': '10.0.1.77' }),
    });
    await assert.rejects(
      unary('Set', { update: [nh(STATIC.replace('[name=default]', '[name=blue]'))] }),
      code(status.UNIMPLEMENTED),
    );
    await assert.rejects(
      unary('Set', { update: [nh(STATIC.replace('[name=STATIC]', '[name=other]'))] }),
      code(status.UNIMPLEMENTED),
    );
    await assert.rejects(
      unary('Set', { update: [nh(STATIC.replace('[identifier=STATIC]', '[identifier=BGP]'))] }),
      code(status.UNIMPLEMENTED),
    );
    await assert.rejects(
      unary('Set', { update: [nh(STATIC.replace(`${VIP}/32`, 'not-a-prefix'))] }),
      code(status.INVALID_ARGUMENT),
    );
    assert.deepEqual(sw.vips.get(VIP)?.group.members(), members);
    const keys = leavesOf(
      await unary<object, GetResponse>('Get', {
        path: [parsePath(`${POLICIES}/policy[policy-id=flowpin]`)],
        type: 'CONFIG',
      }),
    );
    assert.equal(
      keys.get(
        'network-instances/network-instance[name=default]/policy-forwarding/policies/policy[policy-id=flowpin]/policy-id',
      ),
      'flowpin',
      'keys are served as leaves',
    );
    assert.equal(
      keys.get(
        'network-instances/network-instance[name=default]/policy-forwarding/policies/policy[policy-id=flowpin]/config/type',
      ),
      'PBR_POLICY',
    );
  });

  test('static route next-hops keep their index as written; state appears once programmed', async () => {
    sw.programDelayMs = 1000;
    try {
      await unary('Set', {
        update: [
          {
            path: parsePath(`${STATIC}/next-hops/next-hop[index=srv-9]/config`),
            val: json({ index: 'srv-9', 'next-hop': '10.0.1.9' }),
          },
        ],
      });
      const l = leavesOf(
        await unary<object, GetResponse>('Get', {
          path: [parsePath(`${STATIC}/next-hops/next-hop[index=srv-9]`)],
          encoding: 'JSON_IETF',
        }),
      );
      const base = `${STATIC.slice(1)}/next-hops/next-hop[index=srv-9]`;
      assert.equal(l.get(`${base}/config/next-hop`), '10.0.1.9');
      assert.equal(l.get(`${base}/index`), 'srv-9');
      assert.ok(!l.has(`${base}/state/next-hop`), 'not yet in forwarding');
      clock.advance(1000);
      const l2 = leavesOf(
        await unary<object, GetResponse>('Get', {
          path: [parsePath(`${STATIC}/next-hops/next-hop[index=srv-9]`)],
          encoding: 'JSON_IETF',
        }),
      );
      assert.equal(l2.get(`${base}/state/next-hop`), '10.0.1.9');
      await unary('Set', { delete: [parsePath(`${STATIC}/next-hops/next-hop[index=srv-9]`)] });
      assert.deepEqual(sw.vips.get(VIP)?.group.members(), NEXTHOPS);
    } finally {
      sw.programDelayMs = 0;
      clock.advance(1000);
    }
  });

  test('values: IPv6 under ipv4 refused, protocol 0..254 or an identity, identities qualified in JSON_IETF', async () => {
    const r = (v: object) => ({ path: parsePath(`${RULES}/rule[sequence-id=60]/ipv4/config`), val: json(v) });
    await assert.rejects(
      unary('Set', { update: [r({ 'source-address': '2001:db8::1/128' })] }),
      code(status.INVALID_ARGUMENT),
    );
    await assert.rejects(unary('Set', { update: [r({ protocol: 255 })] }), code(status.INVALID_ARGUMENT));
    await assert.rejects(
      unary('Set', { update: [r({ protocol: 'IP_NOPE' })] }),
      code(status.INVALID_ARGUMENT),
    );
    await unary('Set', { update: [r({ protocol: 'openconfig-packet-match-types:IP_UDP' })] });
    const l = leavesOf(
      await unary<object, GetResponse>('Get', {
        path: [parsePath(`${RULES}/rule[sequence-id=60]/ipv4/config/protocol`)],
        encoding: 'JSON_IETF',
      }),
    );
    assert.deepEqual([...l.values()], ['openconfig-packet-match-types:IP_UDP']);
    const j = leavesOf(
      await unary<object, GetResponse>('Get', {
        path: [parsePath(`${RULES}/rule[sequence-id=60]/ipv4/config/protocol`)],
        encoding: 'JSON',
      }),
    );
    assert.deepEqual([...j.values()], ['IP_UDP']);
    await unary('Set', { delete: [rulePath(60)] });
  });

  test('rules act only in a policy applied to the ingress interface', async () => {
    const P = `${POLICIES}/policy[policy-id=other]`;
    const f = { src: '10.100.0.70', sport: 31000 };
    const ecmp = sw.ecmpNexthop(f.src, VIP, 6, f.sport, 443);
    const target = NEXTHOPS.find((n) => n !== ecmp) as string;
    const deliver = () =>
      sw.deliver({ src: f.src, dst: VIP, sport: f.sport, dport: 443, protocol: 6, flags: 0x10, bytes: 1 })
        .nexthop;
    await unary('Set', {
      update: [
        { path: parsePath(`${P}/config`), val: json({ 'policy-id': 'other', type: 'PBR_POLICY' }) },
        { path: parsePath(`${P}/rules/rule[sequence-id=1]`), val: rule(1, f.src, f.sport, target).val },
      ],
    });
    assert.equal(deliver(), ecmp, 'a policy applied nowhere does not forward');
    await assert.rejects(
      unary('Set', {
        update: [
          {
            path: parsePath(
              '/network-instances/network-instance[name=default]/policy-forwarding/interfaces/interface[interface-id=Ethernet48]/config',
            ),
            val: json({ 'interface-id': 'Ethernet48', 'apply-forwarding-policy': 'missing' }),
          },
        ],
      }),
      code(status.INVALID_ARGUMENT),
    );
    await unary('Set', {
      update: [
        {
          path: parsePath(
            '/network-instances/network-instance[name=default]/policy-forwarding/interfaces/interface[interface-id=Ethernet48]/config',
          ),
          val: json({ 'interface-id': 'Ethernet48', 'apply-forwarding-policy': 'other' }),
        },
      ],
    });
    assert.equal(
      deliver(),
      ecmp,
      'applied to an interface client traffic does not enter on, it does not forward',
    );
    await unary('Set', {
      update: [
        {
          path: parsePath(
            '/network-instances/network-instance[name=default]/policy-forwarding/interfaces/interface[interface-id=Ethernet47]/config/apply-forwarding-policy',
          ),
          val: json('other'),
        },
      ],
    });
    assert.equal(deliver(), target, 'applied to the ingress interface, it forwards');
    await unary('Set', {
      update: [
        {
          path: parsePath(
            '/network-instances/network-instance[name=default]/policy-forwarding/interfaces/interface[interface-id=Ethernet47]/config/apply-forwarding-policy',
          ),
          val: json('flowpin'),
        },
      ],
      delete: [
        parsePath(P),
        parsePath(
          '/network-instances/network-instance[name=default]/policy-forwarding/interfaces/interface[interface-id=Ethernet48]',
        ),
      ],
    });
    assert.equal(deliver(), ecmp);
  });

  test('SAMPLE with suppress_redundant sends only changes, and everything once per heartbeat; Subscribe errors', async () => {
    const s = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const started = Date.now();
    const msgs = collect(s, () => Date.now() - started > 600, 5000);
    s.write({
      subscribe: {
        prefix: parsePath(`${RULES}/rule[sequence-id=10]`),
        subscription: [
          {
            path: parsePath('/state'),
            mode: 'SAMPLE',
            sample_interval: String(20_000_000),
            suppress_redundant: true,
            heartbeat_interval: String(200_000_000),
          },
        ],
        encoding: 'JSON_IETF',
      },
    });
    setTimeout(
      () =>
        sw.deliver({
          src: '10.100.0.1',
          dst: VIP,
          sport: 30000,
          dport: 443,
          protocol: 6,
          flags: 0x10,
          bytes: 10,
        }),
      300,
    );
    const got = await msgs;
    s.cancel();
    const sizes = got.filter((m) => m.update).map((m) => m.update?.update?.length ?? 0);
    assert.equal(sizes[0], 3, `initial update has every leaf of rule/state: ${sizes.join(',')}`);
    // 600 ms at a 20 ms interval would be ~30 samples; suppressed, only heartbeats (every 200 ms) and the
    // change.
    assert.ok(sizes.length >= 3 && sizes.length <= 7, `updates: ${sizes.join(',')}`);
    assert.ok(
      sizes.includes(2),
      `the counter change alone (matched-pkts, matched-octets): ${sizes.join(',')}`,
    );
    const e1 = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const r1 = collect(e1, () => false, 3000);
    e1.write({ subscribe: { subscription: [{ path: parsePath('/system/state'), mode: 'SAMPLE' }] } });
    await assert.rejects(r1, code(status.UNIMPLEMENTED));
    const e2 = client['Subscribe']?.call(client, md()) as ClientDuplexStream<
      SubscribeRequest,
      SubscribeResponse
    >;
    const r2 = collect(e2, () => false, 3000);
    e2.write({ subscribe: { subscription: [{ path: rulePath(10), mode: 'SAMPLE' }], encoding: 'BYTES' } });
    await assert.rejects(r2, code(status.UNIMPLEMENTED));
  });
});
