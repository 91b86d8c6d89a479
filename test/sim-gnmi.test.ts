// gNMI conformance of the simulator with a real grpc-js client on the project's proto:
// Capabilities, Set as one transaction (all or nothing, table capacity), Get, Subscribe
// ONCE/POLL/SAMPLE/ON_CHANGE with matched-pkts counters, VIP group changes, auth, faults.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, status, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { gnmiProto, parsePath, type GetResponse, type SetRequest, type SetResponse, type SubscribeRequest, type SubscribeResponse, type CapabilityResponse, type Update } from '../proto/gnmi.js';
import { GnmiServer } from '../switch-sim/gnmi/server.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const { sw } = testSwitch({ pinCapacity: 3 });
const server = new GnmiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw', changeScanMs: 20 });
let client: Client & Record<string, (...a: unknown[]) => unknown>;
const md = (): Metadata => {
  const m = new Metadata();
  m.set('username', 'admin');
  m.set('password', 'pw');
  return m;
};

function unary<Req, Res>(method: string, req: Req, meta = md()): Promise<Res> {
  return new Promise((resolve, reject) => {
    (client[method] as (r: Req, m: Metadata, cb: (e: ServiceError | null, r: Res) => void) => void).call(client, req, meta, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

const RULES = '/network-instances/network-instance[name=default]/policy-forwarding/policies/policy[policy-id=flowpin]/rules';
const rulePath = (seq: number) => parsePath(`${RULES}/rule[sequence-id=${seq}]`);
const json = (v: unknown) => ({ json_ietf_val: Buffer.from(JSON.stringify(v)) });
const rule = (seq: number, src: string, sport: number, nh: string): Update => ({
  path: rulePath(seq),
  val: json({ 'sequence-id': seq, config: { 'sequence-id': seq }, 'openconfig-network-instance:ipv4': { config: { 'source-address': `${src}/32`, 'destination-address': `${VIP}/32`, protocol: 6 } }, transport: { config: { 'source-port': sport, 'destination-port': 443 } }, action: { config: { 'next-hop': nh } } }),
});

function collect(stream: ClientDuplexStream<SubscribeRequest, SubscribeResponse>, until: (msgs: SubscribeResponse[]) => boolean, ms = 5000): Promise<SubscribeResponse[]> {
  const msgs: SubscribeResponse[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out with ${msgs.length} messages: ${JSON.stringify(msgs).slice(0, 400)}`)), ms);
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
  return v?.uint_val !== undefined && v.value === 'uint_val' ? Number(v.uint_val) : v?.string_val;
};
const lastName = (u: Update): string => (u.path?.elem ?? []).map((e) => e.name).slice(-2).join('/');

before(async () => {
  const { address } = await server.start();
  const { Client: Ctor } = gnmiProto();
  client = new Ctor(address, credentials.createInsecure()) as typeof client;
  await unary('Set', { update: [
    { path: parsePath('/network-instances/network-instance[name=default]/policy-forwarding/policies/policy[policy-id=flowpin]/config'), val: json({ 'policy-id': 'flowpin', type: 'PBR_POLICY' }) },
    { path: parsePath('/network-instances/network-instance[name=default]/policy-forwarding/interfaces/interface[interface-id=Ethernet47]/config'), val: json({ 'interface-id': 'Ethernet47', 'apply-forwarding-policy': 'flowpin' }) },
  ] });
});
after(async () => {
  client.close();
  await server.stop();
});

describe('gNMI of the simulator', () => {
  test('Capabilities names gNMI 0.7.0, JSON_IETF and the OpenConfig models', async () => {
    const caps = await unary<object, CapabilityResponse>('Capabilities', {});
    assert.equal(caps.gNMI_version, '0.7.0');
    assert.ok(caps.supported_encodings.includes('JSON_IETF'));
    assert.ok(caps.supported_models.some((m) => m.name === 'openconfig-policy-forwarding'));
  });

  test('missing credentials are UNAUTHENTICATED', async () => {
    await assert.rejects(unary('Capabilities', {}, new Metadata()), (e: ServiceError) => e.code === status.UNAUTHENTICATED);
  });

  test('Set installs rules as pins in one transaction; Get reads them back', async () => {
    const flows = [0, 1].map((i) => ({ src: `10.100.0.${i + 1}`, sport: 30000 + i }));
    const targets = flows.map((f) => NEXTHOPS.find((n) => n !== sw.ecmpNexthop(f.src, VIP, 6, f.sport, 443)) as string);
    const res = await unary<SetRequest, SetResponse>('Set', { update: flows.map((f, i) => rule(10 + i, f.src, f.sport, targets[i] as string)) });
    assert.deepEqual(res.response.map((r) => r.op), ['UPDATE', 'UPDATE']);
    assert.equal(sw.pins.programmed, 2);
    flows.forEach((f, i) => assert.equal(sw.deliver({ src: f.src, dst: VIP, sport: f.sport, dport: 443, protocol: 6, flags: 0x10, bytes: 100 }).nexthop, targets[i]));
    const got = await unary<object, GetResponse>('Get', { path: [rulePath(10)], encoding: 'JSON_IETF' });
    const byLeaf = Object.fromEntries((got.notification[0]?.update ?? []).map((u) => [lastName(u), leafValue(u)]));
    assert.deepEqual(byLeaf, { 'config/sequence-id': 10, 'config/source-address': '10.100.0.1/32', 'config/destination-address': `${VIP}/32`, 'config/protocol': 6, 'config/source-port': 30000, 'config/destination-port': 443, 'config/next-hop': targets[0], 'state/matched-pkts': 1, 'state/matched-octets': 100 });
  });

  test('a SetRequest that does not fit the table changes nothing (RESOURCE_EXHAUSTED)', async () => {
    const before = sw.pins.all().map((e) => e.name).sort();
    await assert.rejects(
      unary('Set', { update: [rule(20, '10.100.0.20', 1, NEXTHOPS[0] as string), rule(21, '10.100.0.21', 1, NEXTHOPS[0] as string)] }),
      (e: ServiceError) => e.code === status.RESOURCE_EXHAUSTED && /pin table full/.test(e.details),
    );
    assert.deepEqual(sw.pins.all().map((e) => e.name).sort(), before);
  });

  test('an invalid update anywhere in a SetRequest changes nothing (INVALID_ARGUMENT)', async () => {
    const req: SetRequest = { delete: [rulePath(10)], update: [{ path: parsePath(`${RULES}/rule[sequence-id=30]/action/config/next-hop`), val: { string_val: 'not-an-address' } }] };
    await assert.rejects(unary('Set', req), (e: ServiceError) => e.code === status.INVALID_ARGUMENT && /not an IP address/.test(e.details));
    assert.ok(sw.pins.get('oc/flowpin/10'), 'the delete in the failed request was not applied');
  });

  test('Subscribe ONCE sends every leaf then sync; POLL answers each poll', async () => {
    const once = client['Subscribe']?.call(client, md()) as ClientDuplexStream<SubscribeRequest, SubscribeResponse>;
    const got = collect(once, (m) => m.some((x) => x.sync_response === true));
    once.write({ subscribe: { prefix: parsePath(RULES), subscription: [{ path: parsePath('/rule[sequence-id=11]/state') }], mode: 'ONCE' } });
    const msgs = await got;
    const updates = msgs.flatMap((m) => m.update?.update ?? []);
    assert.deepEqual(updates.map(lastName).sort(), ['state/matched-octets', 'state/matched-pkts']);
    const poll = client['Subscribe']?.call(client, md()) as ClientDuplexStream<SubscribeRequest, SubscribeResponse>;
    const polled = collect(poll, (m) => m.filter((x) => x.sync_response === true).length === 2);
    poll.write({ subscribe: { subscription: [{ path: parsePath(`${RULES}/rule[sequence-id=10]/state/matched-pkts`) }], mode: 'POLL' } });
    setTimeout(() => poll.write({ poll: {} }), 50);
    const pm = await polled;
    poll.cancel();
    assert.equal(pm.filter((m) => m.update).length, 2);
  });

  test('Subscribe STREAM SAMPLE streams matched-pkts as traffic flows', async () => {
    const s = client['Subscribe']?.call(client, md()) as ClientDuplexStream<SubscribeRequest, SubscribeResponse>;
    const counts: number[] = [];
    const got = collect(s, (m) => {
      const last = m[m.length - 1]?.update?.update?.[0];
      if (last) counts.push(Number(last.val?.uint_val));
      return counts.length >= 3;
    });
    s.write({ subscribe: { subscription: [{ path: parsePath(`${RULES}/rule[sequence-id=10]/state/matched-pkts`), mode: 'SAMPLE', sample_interval: String(30_000_000) }], mode: 'STREAM' } });
    const timer = setInterval(() => sw.deliver({ src: '10.100.0.1', dst: VIP, sport: 30000, dport: 443, protocol: 6, flags: 0x10, bytes: 10 }), 10);
    await got;
    clearInterval(timer);
    s.cancel();
    assert.ok((counts[counts.length - 1] ?? 0) > (counts[0] ?? 0), `counter did not grow: ${counts.join(',')}`);
  });

  test('Subscribe ON_CHANGE reports a VIP group change made by Set, as update then delete', async () => {
    const base = `/network-instances/network-instance[name=default]/protocols/protocol[identifier=STATIC][name=STATIC]/static-routes/static[prefix=${VIP}/32]`;
    const s = client['Subscribe']?.call(client, md()) as ClientDuplexStream<SubscribeRequest, SubscribeResponse>;
    const seen = collect(s, (m) => m.some((x) => (x.update?.delete ?? []).length > 0));
    s.write({ subscribe: { subscription: [{ path: parsePath(`${base}/next-hops`), mode: 'ON_CHANGE' }], mode: 'STREAM' } });
    await new Promise((r) => setTimeout(r, 60));
    await unary('Set', { update: [{ path: parsePath(`${base}/next-hops/next-hop[index=10.0.1.9]/config/next-hop`), val: { string_val: '10.0.1.9' } }] });
    assert.deepEqual(sw.vips.get(VIP)?.group.members(), [...NEXTHOPS, '10.0.1.9']);
    await new Promise((r) => setTimeout(r, 60));
    await unary('Set', { delete: [parsePath(`${base}/next-hops/next-hop[index=10.0.1.9]`)] });
    assert.deepEqual(sw.vips.get(VIP)?.group.members(), NEXTHOPS);
    const msgs = await seen;
    s.cancel();
    const added = msgs.flatMap((m) => m.update?.update ?? []).filter((u) => (u.path?.elem ?? []).some((e) => e.key?.['index'] === '10.0.1.9'));
    assert.ok(added.length > 0, 'the added next-hop was reported');
    assert.ok(msgs.some((m) => (m.update?.delete ?? []).some((p) => (p.elem ?? []).some((e) => e.key?.['index'] === '10.0.1.9'))), 'its removal was reported');
  });

  test('injected faults surface as UNAVAILABLE, then the target recovers', async () => {
    server.faults.set({ failNext: 1, dropNext: 1 });
    await assert.rejects(unary('Capabilities', {}), (e: ServiceError) => e.code === status.UNAVAILABLE);
    await assert.rejects(unary('Capabilities', {}), (e: ServiceError) => e.code === status.UNAVAILABLE);
    assert.equal((await unary<object, CapabilityResponse>('Capabilities', {})).gNMI_version, '0.7.0');
  });
});
