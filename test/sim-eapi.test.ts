// eAPI conformance of the simulator: hand-built JSON-RPC requests over real HTTP, including
// auth, eAPI's error shape (stop at the first failing command), text-only commands, and
// injected faults.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const { sw } = testSwitch();
const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 's3cret' });
let url = '';
const AUTH = `Basic ${Buffer.from('admin:s3cret').toString('base64')}`;

async function post(
  body: unknown,
  auth = AUTH,
  signal?: AbortSignal,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const runCmds = (cmds: unknown[], format = 'json', id: unknown = 1) =>
  post({ jsonrpc: '2.0', method: 'runCmds', params: { version: 1, cmds, format }, id });

before(async () => {
  url = (await server.start()).url;
});
after(async () => {
  await server.stop();
});

describe('eAPI of the simulator', () => {
  test('rejects missing or wrong credentials with 401', async () => {
    assert.equal((await post({}, '')).status, 401);
    assert.equal((await post({}, `Basic ${Buffer.from('admin:nope').toString('base64')}`)).status, 401);
  });

  test('show version answers in JSON with the request id', async () => {
    const { status, json } = await runCmds(['show version'], 'json', 'abc');
    assert.equal(status, 200);
    assert.equal(json['id'], 'abc');
    const [v] = json['result'] as Record<string, unknown>[];
    assert.equal(v?.['modelName'], 'DCS-7050SX-64');
    assert.equal(v?.['mfgName'], 'Arista');
    assert.equal(typeof v?.['version'], 'string');
  });

  test('DirectFlow flows configured over eAPI are listed and steer packets', async () => {
    const flow = { src: '10.100.0.7', sport: 40001, dport: 443 };
    const ecmp = sw.ecmpNexthop(flow.src, VIP, 6, flow.sport, flow.dport);
    const target = NEXTHOPS.find((n) => n !== ecmp) as string;
    const { json } = await runCmds([
      'enable',
      'configure',
      'directflow',
      'no shutdown',
      'flow fp-1',
      'match ethertype ip',
      `match source ip ${flow.src}`,
      `match destination ip ${VIP}`,
      'match ip protocol tcp',
      `match source port ${flow.sport}`,
      `match destination port ${flow.dport}`,
      'no persistent',
      'timeout idle 300',
      `action output nexthop ${target}`,
    ]);
    assert.equal((json['result'] as unknown[]).length, 14);
    const shown = await runCmds(['enable', 'show directflow flows']);
    const flows = ((shown.json['result'] as Record<string, unknown>[])[1]?.['flows'] ?? []) as Record<
      string,
      unknown
    >[];
    assert.equal(flows.length, 1);
    // DirectFlowAssist's capture: ipSrc/ipDst objects, ipPortSrc/ipPortDst, the action's flags; no nexthop
    // key, no status.
    const match = flows[0]?.['match'] as Record<string, unknown>;
    assert.deepEqual(
      [
        match['ethType'],
        match['ethTypeMask'],
        match['ipSrc'],
        match['ipDst'],
        match['ipProto'],
        match['ipPortSrc'],
        match['ipPortDst'],
      ],
      [
        2048,
        65535,
        { mask: '255.255.255.255', ip: flow.src },
        { mask: '255.255.255.255', ip: VIP },
        6,
        40001,
        443,
      ],
    );
    const action = flows[0]?.['action'] as Record<string, unknown>;
    assert.deepEqual([action['outputDrop'], action['outInterfaces']], [false, []]);
    assert.ok(!JSON.stringify(action).includes(target), 'the nexthop is not in the JSON');
    assert.equal(flows[0]?.['idleTimeout'], 300);
    assert.equal(flows[0]?.['persistent'], false);
    assert.equal(flows[0]?.['status'], undefined);
    const d = sw.deliver({
      src: flow.src,
      dst: VIP,
      sport: flow.sport,
      dport: flow.dport,
      protocol: 6,
      flags: 0x10,
      bytes: 100,
    });
    assert.equal(d.nexthop, target);
    const detail = await runCmds(['show directflow detail']);
    const r = (detail.json['result'] as Record<string, unknown>[])[0] as Record<string, unknown>;
    assert.deepEqual(r['details'], { status: { 'fp-1': 'Flow programmed' }, numFlowsProgrammed: 1 });
    assert.equal(
      ((r['flows'] as Record<string, unknown>[])[0] as Record<string, unknown>)['matchPackets'],
      1,
    );
    const txt = await runCmds(['show directflow detail'], 'text');
    const out = ((txt.json['result'] as Record<string, string>[])[0] as Record<string, string>)[
      'output'
    ] as string;
    assert.match(out, /^Flow fp-1:\n  persistent: False\n/);
    assert.match(
      out,
      new RegExp(`\\n    source IPv4 address: ${flow.src.replace(/\./g, '\\.')}/255\\.255\\.255\\.255\\n`),
    );
    assert.match(out, /\n    IPv4 protocol: TCP\n/);
    assert.match(
      out,
      new RegExp(
        `\\n  actions:\\n    output nexthop: ${target.replace(/\./g, '\\.')}\\n  source: config\\n  matched: 1 packets, 100 bytes\\n`,
      ),
    );
    assert.match(out, /\nFlows: 1 programmed, 0 rejected\n$/);
    // Removal.
    await runCmds(['enable', 'configure', 'directflow', 'no flow fp-1']);
    assert.equal(sw.pins.size, 0);
  });

  test('a failing command stops the request: error 1002 with earlier results and the CLI error', async () => {
    const { status, json } = await runCmds([
      'enable',
      'configure',
      'frobnicate now',
      'directflow',
      'flow never',
    ]);
    assert.equal(status, 200);
    assert.equal(json['result'], undefined);
    const err = json['error'] as { code: number; message: string; data: unknown[] };
    assert.equal(err.code, 1002);
    assert.equal(err.message, "CLI command 3 of 5 'frobnicate now' failed: invalid command");
    assert.deepEqual(err.data, [{}, {}, { errors: ["Invalid input (at token 0: 'frobnicate')"] }]);
    assert.equal(sw.pins.get('never'), undefined, 'commands after the failure did not run');
  });

  test('configure needs enable', async () => {
    const { json } = await runCmds(['configure']);
    assert.equal((json['error'] as { code: number }).code, 1002);
    assert.match(JSON.stringify(json['error']), /privileged mode required/);
  });

  test('show load-balance destination needs enable and names the port in JSON (outputIntf) and text', async () => {
    const cmd = `show load-balance destination ip ingress-interface Et47 src-ipv4-address 10.100.0.9 dst-ipv4-address ${VIP} ip-protocol 6 src-l4-port 5555 dst-l4-port 443`;
    const unprivileged = await runCmds([cmd]);
    assert.equal((unprivileged.json['error'] as { code: number }).code, 1002);
    assert.match(JSON.stringify(unprivileged.json['error']), /privileged mode required/);
    const nh = sw.ecmpNexthop('10.100.0.9', VIP, 6, 5555, 443) as string;
    const asJson = await runCmds(['enable', cmd]);
    assert.deepEqual((asJson.json['result'] as unknown[])[1], { outputIntf: sw.interfaces.get(nh) });
    const { json } = await runCmds(['enable', cmd], 'text');
    const out = ((json['result'] as Record<string, string>[])[1] as Record<string, string>)[
      'output'
    ] as string;
    assert.equal(out, `Output Interface: ${sw.interfaces.get(nh)}\n`);
    server.profile.loadBalanceJson = false;
    try {
      assert.equal(((await runCmds(['enable', cmd])).json['error'] as { code: number }).code, 1003);
    } finally {
      server.profile.loadBalanceJson = true;
    }
    const none = await runCmds(
      [
        'enable',
        `show load-balance destination ip ingress-interface Et47 src-ipv4-address 10.100.0.9 dst-ipv4-address 198.51.100.1 ip-protocol 6 src-l4-port 1 dst-l4-port 2`,
      ],
      'text',
    );
    assert.match(
      ((none.json['result'] as Record<string, string>[])[1] as Record<string, string>)['output'] as string,
      /Unable/,
    );
  });

  test('show ip route gives the VIP vias and the client ingress route', async () => {
    const { json } = await runCmds([
      `show ip route ${VIP}`,
      'show ip route 10.100.3.4',
      'show ip route 198.51.100.1',
    ]);
    const [vip, client, none] = json['result'] as {
      vrfs: { default: { routes: Record<string, { vias: { nexthopAddr: string; interface: string }[] }> } };
    }[];
    assert.deepEqual(
      vip?.vrfs.default.routes[`${VIP}/32`]?.vias.map((v) => v.nexthopAddr),
      NEXTHOPS,
    );
    assert.deepEqual(
      vip?.vrfs.default.routes[`${VIP}/32`]?.vias.map((v) => v.interface),
      ['Ethernet1', 'Ethernet2', 'Ethernet3', 'Ethernet4'],
    );
    assert.deepEqual(client?.vrfs.default.routes['10.100.0.0/16']?.vias, [
      { nexthopAddr: '10.0.0.254', interface: 'Ethernet47' },
    ]);
    assert.equal(
      (vip?.vrfs.default.routes[`${VIP}/32`] as unknown as { routeType: string }).routeType,
      'static',
    );
    assert.deepEqual(none?.vrfs.default.routes, {});
  });

  test('ip route lines change the VIP group', async () => {
    await runCmds(['enable', 'configure', `no ip route ${VIP}/32 ${NEXTHOPS[1]}`]);
    assert.deepEqual(sw.vips.get(VIP)?.group.members(), [NEXTHOPS[0], NEXTHOPS[2], NEXTHOPS[3]]);
    await runCmds([
      'enable',
      'configure',
      `ip route ${VIP}/32 ${NEXTHOPS[1]}`,
      `ip route ${VIP}/32 10.0.1.5`,
    ]);
    assert.deepEqual(sw.vips.get(VIP)?.group.members(), [
      NEXTHOPS[0],
      NEXTHOPS[2],
      NEXTHOPS[3],
      NEXTHOPS[1],
      '10.0.1.5',
    ]);
    assert.equal(sw.interfaces.get('10.0.1.5'), 'Ethernet5');
    await runCmds(['enable', 'configure', `no ip route ${VIP}/32 10.0.1.5`]);
  });

  test('configuration sessions: nothing applies before commit, a session stays pending across requests, abort discards', async () => {
    const flowLines = [
      'flow fp-s',
      'match ethertype ip',
      'match source ip 10.100.9.9',
      'action output nexthop 10.0.1.1',
      'exit',
    ];
    await runCmds(['enable', 'configure session s1', 'directflow', 'no shutdown', ...flowLines]);
    assert.equal(sw.pins.get('fp-s'), undefined, 'not applied before commit');
    assert.equal(server.configSessions.size, 1);
    await runCmds(['enable', 'configure session s1', 'commit']);
    assert.equal(sw.pins.get('fp-s')?.nexthop, '10.0.1.1');
    await runCmds(['enable', 'configure session s2', 'directflow', 'no flow fp-s']);
    await runCmds(['enable', 'configure session s2 abort']);
    assert.ok(sw.pins.get('fp-s') !== undefined, 'aborted removal did not happen');
    assert.equal(server.configSessions.size, 0);
    const failed = await runCmds([
      'enable',
      'configure session s3',
      'directflow',
      'no flow fp-s',
      'bogus line',
      'commit',
    ]);
    assert.equal((failed.json['error'] as { code: number }).code, 1002);
    assert.ok(sw.pins.get('fp-s') !== undefined, 'a failed request commits nothing');
    await runCmds(['enable', 'configure session s3 abort']);
    await runCmds(['enable', 'configure', 'directflow', 'no flow fp-s']);
  });

  test('rejected flows: JSON lists them with the table-full prose or omits them (4.35.4M); text marks them and counts them', async () => {
    const small = testSwitch({ pinCapacity: 1 }).sw;
    for (const jsonListsRejected of [true, false]) {
      const s2 = new EapiServer(small, {
        host: '127.0.0.1',
        port: 0,
        username: 'admin',
        password: 's3cret',
        eos: { jsonListsRejected },
      });
      const u = (await s2.start()).url;
      try {
        const call = async (cmds: string[], format: string): Promise<Record<string, unknown>[]> => {
          const res = await fetch(u, {
            method: 'POST',
            headers: { authorization: AUTH },
            body: JSON.stringify({
              jsonrpc: '2.0',
              method: 'runCmds',
              params: { version: 1, cmds, format },
              id: 1,
            }),
          });
          return ((await res.json()) as { result: Record<string, unknown>[] }).result;
        };
        await call(
          [
            'enable',
            'configure',
            'directflow',
            'no shutdown',
            'flow a',
            'match source ip 10.1.1.1',
            'action output nexthop 10.0.1.1',
            'exit',
            'flow b',
            'match source ip 10.1.1.2',
            'action output nexthop 10.0.1.1',
            'exit',
          ],
          'json',
        );
        const [, j] = await call(['enable', 'show directflow detail'], 'json');
        const details = j?.['details'] as { status: Record<string, string>; numFlowsProgrammed: number };
        assert.equal(details.numFlowsProgrammed, 1);
        assert.deepEqual(
          details.status,
          jsonListsRejected
            ? { a: 'Flow programmed', b: 'Flow rejected due to insufficient resources' }
            : { a: 'Flow programmed' },
        );
        const [, t] = await call(['enable', 'show directflow detail'], 'text');
        assert.match(t?.['output'] as string, /^Flow b: \(Waiting for a resource to be allocated\)$/m);
        assert.match(t?.['output'] as string, /^Flows: 1 programmed, 1 rejected$/m);
        await call(['enable', 'configure', 'directflow', 'no flow a', 'no flow b'], 'json');
      } finally {
        await s2.stop();
      }
    }
  });

  test('family-correct routes: show ipv6 route, ipv6 route; the IPv4 forms refuse IPv6 addresses', async () => {
    const bad = await runCmds(['show ip route 2001:db8:100::1']);
    assert.equal((bad.json['error'] as { code: number }).code, 1002);
    const { json } = await runCmds(['show ipv6 route 2001:db8:100::1']);
    assert.deepEqual(
      Object.keys(
        (json['result'] as { vrfs: { default: { routes: object } } }[])[0]?.vrfs.default.routes ?? {},
      ),
      ['2001:db8:100::/48'],
    );
    const badRoute = await runCmds(['enable', 'configure', 'ip route 2001:db8:80::9/128 2001:db8:1::1']);
    assert.equal((badRoute.json['error'] as { code: number }).code, 1002);
  });

  test('JSON-RPC errors: parse error, unknown method, bad params', async () => {
    assert.equal(((await post('{nope')).json['error'] as { code: number }).code, -32700);
    assert.equal(
      (
        (await post({ jsonrpc: '2.0', method: 'runCommands', params: {}, id: 1 })).json['error'] as {
          code: number;
        }
      ).code,
      -32601,
    );
    assert.equal(
      (
        (await post({ jsonrpc: '2.0', method: 'runCmds', params: { version: 1, cmds: [] }, id: 1 })).json[
          'error'
        ] as { code: number }
      ).code,
      -32602,
    );
    assert.equal(
      (
        (
          await post({
            jsonrpc: '2.0',
            method: 'runCmds',
            params: { version: 1, cmds: ['show version'], format: 'xml' },
            id: 1,
          })
        ).json['error'] as { code: number }
      ).code,
      -32602,
    );
  });

  test('a long request does not stop the switch: a request that comes while it runs is answered first', async () => {
    // 2,000 flows in one configuration session (22,000 commands: far longer than one slice of work).
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++)
      lines.push(
        `flow fp-long-${i}`,
        'match ethertype ip',
        `match source ip 10.101.${i >> 8}.${i & 255}`,
        `match destination ip ${VIP}`,
        'match ip protocol tcp',
        `match source port ${20000 + i}`,
        'match destination port 443',
        'no persistent',
        'timeout idle 300',
        `action output nexthop ${NEXTHOPS[0] as string}`,
        'exit',
      );
    const order: string[] = [];
    const logged = server.commandLog.length;
    const long = runCmds([
      'enable',
      'configure session long-request',
      'directflow',
      'no shutdown',
      ...lines,
      'commit',
    ]).then((r) => {
      order.push('long');
      return r;
    });
    // Once the long request is under way (its commands are being logged), a short one is sent.
    const deadline = Date.now() + 30_000;
    while (server.commandLog.length === logged || server.commandLog.at(-1) === 'commit') {
      if (Date.now() > deadline) throw new Error('the long request never started');
      await new Promise((r) => setImmediate(r));
    }
    const short = await runCmds(['show version']);
    order.push('short');
    assert.ok(Array.isArray(short.json['result']));
    const done = await long;
    assert.ok(Array.isArray(done.json['result']), 'the long request succeeds');
    assert.deepEqual(order, ['short', 'long'], 'the short request did not wait for the long one');
    const listed = await runCmds(['show directflow flows']);
    const flows = (listed.json['result'] as { flows: { name: string }[] }[])[0]?.flows ?? [];
    assert.equal(flows.filter((f) => f.name.startsWith('fp-long-')).length, 2000, 'the session landed whole');
    await runCmds([
      'enable',
      'configure',
      'directflow',
      ...lines.filter((l) => l.startsWith('flow ')).map((l) => `no ${l}`),
    ]);
  });

  test('injected faults: error replies, dropped connections, unanswered requests, a request carried out whose reply is lost', async () => {
    server.faults.set({ failNext: 1 });
    const failed = await runCmds(['show version']);
    assert.equal((failed.json['error'] as { code: number }).code, 1000);
    server.faults.set({ dropNext: 1 });
    await assert.rejects(runCmds(['show version']), /fetch failed/);
    server.faults.set({ hangNext: 1, hangMs: 5_000 });
    await assert.rejects(
      post(
        { jsonrpc: '2.0', method: 'runCmds', params: { version: 1, cmds: ['show version'] }, id: 1 },
        AUTH,
        AbortSignal.timeout(300),
      ),
      /aborted|timeout/i,
    );
    server.faults.set({ lostReplyNext: 1, hangMs: 5_000 });
    const lost = [
      'enable',
      'configure',
      'directflow',
      'no shutdown',
      'flow fp-lost',
      'match ethertype ip',
      'match source ip 10.100.9.9',
      `match destination ip ${VIP}`,
      'match ip protocol tcp',
      'match source port 40000',
      'match destination port 443',
      'no persistent',
      'timeout idle 300',
      `action output nexthop ${NEXTHOPS[0] as string}`,
    ];
    await assert.rejects(
      post(
        { jsonrpc: '2.0', method: 'runCmds', params: { version: 1, cmds: lost }, id: 1 },
        AUTH,
        AbortSignal.timeout(300),
      ),
      /aborted|timeout/i,
    );
    assert.ok(
      sw.pins.all().some((e) => e.name === 'fp-lost'),
      'the switch carried out the request whose reply was lost',
    );
    await runCmds(['enable', 'configure', 'directflow', 'no flow fp-lost']);
    const ok = await runCmds(['show version']);
    assert.ok(Array.isArray(ok.json['result']), 'recovers after the faults');
    assert.deepEqual(server.faults.injected, { fail: 1, hang: 1, drop: 1, 'lost-reply': 1 });
  });
});
