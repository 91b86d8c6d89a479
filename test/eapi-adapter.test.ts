// The Arista eAPI adapter beyond the shared contract: the DirectFlow wire text (golden),
// typed failures for bad credentials, refused connections and timeouts, and a pin batch
// that fails part-way (the switch refuses one flow; the others still land).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import { flowOfPinName, pinName } from '../lib/pin-name.js';
import {
  loadBalanceCommand,
  parseOutputInterface,
  pinCommands,
} from '../switch-adapters/arista-eapi/directflow.js';
import {
  SwitchAuthError,
  SwitchCommandError,
  SwitchTimeoutError,
  SwitchTransportError,
  SwitchUnsupportedError,
} from '../switch-adapters/errors.js';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const F = { family: 4 as const, src: '12.12.12.1', dst: '1.1.1.1', sport: 30002, dport: 80 };

describe('DirectFlow translation', () => {
  test("a pin is the prototype's DirectFlow flow (golden text)", () => {
    assert.deepEqual(pinCommands({ flow: F, nexthop: '34.34.34.4', idleTimeoutS: 300 }), [
      'flow fp-12_12_12_1-30002-1_1_1_1-80',
      'match ethertype ip',
      'match source ip 12.12.12.1',
      'match destination ip 1.1.1.1',
      'match ip protocol tcp',
      'match source port 30002',
      'match destination port 80',
      'no persistent',
      'timeout idle 300',
      'action output nexthop 34.34.34.4',
      'exit',
    ]);
    assert.equal(
      loadBalanceCommand(F, 'Et47'),
      'show load-balance destination ip ingress-interface Et47 src-ipv4-address 12.12.12.1 dst-ipv4-address 1.1.1.1 ip-protocol 6 src-l4-port 30002 dst-l4-port 80',
    );
    assert.equal(parseOutputInterface('Output Interface: Ethernet43\n'), 'Ethernet43');
    assert.equal(parseOutputInterface('Unable to determine output interface'), undefined);
  });

  test('pin names round-trip for IPv4 and IPv6, and foreign names are ignored', () => {
    const v6 = { family: 6 as const, src: '2001:db8::1', dst: '2001:db8:80::1', sport: 1, dport: 443 };
    assert.deepEqual(flowOfPinName(pinName(F)), F);
    assert.deepEqual(flowOfPinName(pinName(v6)), v6);
    assert.equal(flowOfPinName('operator-flow-1'), undefined);
  });
});

describe('eAPI adapter failures', () => {
  test('wrong credentials are an auth error, not retried', async () => {
    const { sw } = testSwitch();
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'right' });
    const { url } = await server.start();
    const a = new AristaEapiAdapter({ switchName: 'sw1', url, username: 'admin', password: 'wrong' });
    try {
      await assert.rejects(
        a.connect(),
        (e: Error) =>
          e instanceof SwitchAuthError && !e.retryable && /sw1: eAPI refused the credentials/.test(e.message),
      );
    } finally {
      await a.close();
      await server.stop();
    }
  });

  test('a refused connection is a retryable transport error', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const a = new AristaEapiAdapter({
      switchName: 'sw1',
      url: `http://127.0.0.1:${port}/command-api`,
      username: 'a',
      password: 'b',
    });
    await assert.rejects(
      a.connect(),
      (e: Error) => e instanceof SwitchTransportError && e.retryable && /ECONNREFUSED/.test(e.message),
    );
    await a.close();
  });

  test('no answer in time is a timeout error', async () => {
    const { sw } = testSwitch();
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
    const { url } = await server.start();
    server.faults.set({ hangNext: 1, hangMs: 2_000 });
    const a = new AristaEapiAdapter({
      switchName: 'sw1',
      url,
      username: 'admin',
      password: 'pw',
      timeoutMs: 150,
    });
    try {
      await assert.rejects(a.connect(), (e: Error) => e instanceof SwitchTimeoutError && e.retryable);
      await a.connect();
    } finally {
      await a.close();
      await server.stop();
    }
  });

  test('a batch that fails part-way lands the other pins and reports the refused one', async () => {
    const { sw } = testSwitch();
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
    const { url } = await server.start();
    const a = new AristaEapiAdapter({
      switchName: 'sw1',
      url,
      username: 'admin',
      password: 'pw',
      pinBatchSize: 10,
    });
    try {
      const rules = Array.from({ length: 6 }, (_, i) => ({
        flow: { ...F, dst: VIP, sport: 1000 + i },
        nexthop: NEXTHOPS[0] as string,
        idleTimeoutS: 300,
      }));
      // An out-of-range idle timeout makes the switch refuse the fourth flow's `timeout idle` line.
      (rules[3] as { idleTimeoutS: number }).idleTimeoutS = 99_999_999;
      const out = await a.installPins(rules);
      assert.deepEqual(
        out.map((o) => o.ok),
        [true, true, true, false, true, true],
      );
      assert.match(out[3]?.error ?? '', /'timeout idle 99999999': Invalid input/);
      const listed = await a.listPins();
      assert.deepEqual(
        listed
          .filter((p) => p.programmed)
          .map((p) => p.flow.sport)
          .sort(),
        [1000, 1001, 1002, 1004, 1005],
      );
    } finally {
      await a.close();
      await server.stop();
    }
  });

  test('a refused command names the command', async () => {
    const { sw } = testSwitch();
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
    const { url } = await server.start();
    const a = new AristaEapiAdapter({
      switchName: 'sw1',
      url,
      username: 'admin',
      password: 'pw',
      groupCommands: { add: ['enable', 'configure', 'router bgp {vip}'], remove: [] },
    });
    try {
      await assert.rejects(
        a.addGroupMember(VIP, '10.0.1.5'),
        (e: Error) => e instanceof SwitchCommandError && e.command === `router bgp ${VIP}` && e.code === 1002,
      );
    } finally {
      await a.close();
      await server.stop();
    }
  });
});

describe('eAPI adapter against real EOS behaviour', () => {
  const start = async (
    eos: ConstructorParameters<typeof EapiServer>[1]['eos'] = {},
    over: Partial<ConstructorParameters<typeof AristaEapiAdapter>[0]> = {},
    sw = testSwitch().sw,
  ) => {
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw', eos });
    const { url } = await server.start();
    const a = new AristaEapiAdapter({ switchName: 'sw1', url, username: 'admin', password: 'pw', ...over });
    return {
      a,
      server,
      sw,
      async stop() {
        await a.close();
        await server.stop();
      },
    };
  };

  test('connect() reads show version: table size per platform, refusal without DirectFlow or a known size', async () => {
    const cases: [string, number | undefined, RegExp | number][] = [
      ['DCS-7050SX-64', undefined, 1500],
      ['DCS-7050S-64', undefined, 750],
      ['DCS-7050S-64', 600, 600],
      ['DCS-7280SR3-48YC8', undefined, /has no DirectFlow/],
      ['DCS-7280SR3-48YC8', 1000, /has no DirectFlow/],
      ['DCS-7050SX3-48YC12-F', undefined, /table size .* not known; set pinTableSize/],
      ['cEOSLab', undefined, /nor whether it has DirectFlow/],
      ['cEOSLab', 100, 100],
    ];
    for (const [modelName, size, want] of cases) {
      const b = await start({ modelName }, size === undefined ? {} : { pinTableSize: size });
      try {
        if (typeof want === 'number') {
          await b.a.connect();
          assert.equal(b.a.capabilities.pinTableSize, want, modelName);
          assert.equal(b.a.info?.modelName, modelName);
        } else {
          await assert.rejects(
            b.a.connect(),
            (e: Error) => e instanceof SwitchUnsupportedError && want.test(e.message),
            modelName,
          );
        }
      } finally {
        await b.stop();
      }
    }
  });

  test('connect() refuses a group template that does not match the VIP route; no template, no group change', async () => {
    const bgp = await start(
      { vipRouteType: 'eBGP' },
      { groupTemplate: { kind: 'static-ecmp' }, vips: [VIP] },
    );
    try {
      await assert.rejects(
        bgp.a.connect(),
        (e: Error) =>
          e instanceof SwitchUnsupportedError &&
          /VIP 192\.0\.2\.80 is a eBGP route; the 'static-ecmp' group template/.test(e.message),
      );
    } finally {
      await bgp.stop();
    }
    const st = await start(
      { vipRouteType: 'static' },
      {
        groupTemplate: { kind: 'bgp-route-map', asn: 65000, peerGroup: 'TRAEFIK', routeMap: 'RM' },
        vips: [VIP],
      },
    );
    try {
      await assert.rejects(st.a.connect(), /is a static route; the 'bgp-route-map' group template/);
    } finally {
      await st.stop();
    }
    const none = await start();
    try {
      await none.a.connect();
      assert.equal(none.a.capabilities.changesGroups, false);
      await assert.rejects(
        none.a.removeGroupMember(VIP, NEXTHOPS[0] as string),
        (e: Error) => e instanceof SwitchUnsupportedError && /no group template configured/.test(e.message),
      );
      assert.deepEqual(none.sw.vips.get(VIP)?.group.members(), NEXTHOPS, 'nothing changed');
    } finally {
      await none.stop();
    }
  });

  for (const atomicity of ['session', 'cleanup'] as const) {
    test(`a batch failing part-way leaves no half-built flow (${atomicity})`, async () => {
      const b = await start({}, { atomicity, pinBatchSize: 10 });
      try {
        await b.a.connect();
        const rules = Array.from({ length: 6 }, (_, i) => ({
          flow: { ...F, dst: VIP, sport: 2000 + i },
          nexthop: NEXTHOPS[0] as string,
          idleTimeoutS: 300,
        }));
        (rules[2] as { idleTimeoutS: number }).idleTimeoutS = 99_999_999;
        const out = await b.a.installPins(rules);
        assert.deepEqual(
          out.map((o) => [o.ok, o.programmed]),
          [
            [true, true],
            [true, true],
            [false, undefined],
            [true, true],
            [true, true],
            [true, true],
          ],
        );
        assert.equal(
          b.sw.pins.get(pinName(rules[2]?.flow ?? F)),
          undefined,
          'the refused flow is not configured, not even in part',
        );
        assert.equal(b.server.configSessions.size, 0, 'no configuration session is left pending');
        assert.ok(
          b.sw.pins.all().every((e) => e.nexthop !== undefined),
          'every flow has its action',
        );
      } finally {
        await b.stop();
      }
    });
  }

  test('past readBackLimit a write answers with the state unknown, and listPins confirms it or reports the table full', async () => {
    const b = await start({}, { readBackLimit: 3, pinTableSize: 6 }, testSwitch({ pinCapacity: 6 }).sw);
    const shows: number[] = [];
    const run = b.a.runner.run.bind(b.a.runner);
    b.a.runner.run = (cmds, format, n) => {
      if (cmds.some((c) => c === 'show directflow detail')) shows.push(cmds.length);
      return run(cmds, format, n);
    };
    try {
      await b.a.connect();
      const rules = Array.from({ length: 8 }, (_, i) => ({
        flow: { ...F, dst: VIP, sport: 3000 + i },
        nexthop: NEXTHOPS[i % 4] as string,
        idleTimeoutS: 300,
      }));
      const first = await b.a.installPins(rules.slice(0, 4));
      assert.deepEqual(
        first.map((o) => o.programmed),
        [true, true, true, true],
        'a small table is read back with the write',
      );
      const reads = shows.length;
      assert.ok(reads > 0);
      const second = await b.a.installPins(rules.slice(4));
      assert.deepEqual(
        second.map((o) => [o.ok, o.programmed]),
        [
          [true, undefined],
          [true, undefined],
          [true, undefined],
          [true, undefined],
        ],
        'past the limit the state is unknown, never claimed',
      );
      assert.equal(shows.length, reads, 'no read-back with the write');
      const listed = await b.a.listPins();
      const mine = listed.filter((p) => p.flow.sport >= 3004);
      assert.equal(mine.filter((p) => p.programmed).length, 2, 'two fit');
      assert.deepEqual(
        mine.filter((p) => !p.programmed).map((p) => p.reason),
        ['table-full', 'table-full'],
        'two were refused for space, and said so',
      );
      assert.equal(b.a.garbageCollected.rejected, 0, 'the listing removes nothing');
      await b.a.removePins(mine.filter((p) => !p.programmed).map((p) => p.flow));
      assert.equal(b.a.garbageCollected.rejected, 2, 'and removed from the switch when the reconciler asks');
    } finally {
      await b.stop();
    }
  });

  test('writes answered while a read-back is under way share the next one, and each hears the truth of its own flows', async () => {
    // Room for 6: three writes of 3 in flight together; the table says which 3 were refused.
    const b = await start({}, { pinTableSize: 6 }, testSwitch({ pinCapacity: 6 }).sw);
    // The JSON form (the text form is read too where the JSON omits a rejected flow).
    const reads: number[] = [];
    const run = b.a.runner.run.bind(b.a.runner);
    b.a.runner.run = (cmds, format, n) => {
      if (format === 'json' && cmds.some((c) => c === 'show directflow detail')) reads.push(cmds.length);
      return run(cmds, format, n);
    };
    try {
      await b.a.connect();
      // Every request takes the switch a while: the later writes are answered while the first one's read is
      // under way.
      b.server.faults.set({ latencyMs: 200 });
      const rules = Array.from({ length: 9 }, (_, i) => ({
        flow: { ...F, dst: VIP, sport: 5000 + i },
        nexthop: NEXTHOPS[i % 4] as string,
        idleTimeoutS: 300,
      }));
      const out = (await Promise.all([0, 3, 6].map((at) => b.a.installPins(rules.slice(at, at + 3))))).flat();
      assert.equal(reads.length, 2, 'one read for the first write answered, one shared by the others');
      b.server.faults.set({ latencyMs: 0 });
      // Each outcome agrees with the switch's own table after all three writes.
      const listed = new Map((await b.a.listPins()).map((p) => [p.flow.sport, p]));
      for (const o of out) {
        const p = listed.get(o.flow.sport);
        assert.ok(p, `flow ${o.flow.sport} is on the switch`);
        assert.equal(o.programmed, p.programmed, `flow ${o.flow.sport}: the write says what the table says`);
        if (!p.programmed) assert.equal(o.reason, 'table-full');
      }
      assert.equal(out.filter((o) => o.programmed === true).length, 6, 'six fit, six are said to');
    } finally {
      await b.stop();
    }
  });

  test("listPins reports no half-built flow (no action) and removes nothing; removeStrays removes flowpin's and leaves other owners' flows", async () => {
    const b = await start();
    try {
      await b.a.connect();
      await b.a.runner.run(
        [
          'enable',
          'configure',
          'directflow',
          'no shutdown',
          `flow ${pinName(F)}`,
          'match ethertype ip',
          `match source ip ${F.src}`,
          'exit',
          'flow OTHER_OWNER',
          'match ethertype ip',
          'action drop',
          'exit',
        ],
        'json',
      );
      assert.deepEqual(await b.a.listPins(), []);
      assert.ok(b.sw.pins.get(pinName(F)) !== undefined, 'the listing leaves it');
      assert.equal(b.a.garbageCollected.halfBuilt, 0);
      assert.equal(await b.a.removeStrays(), 1);
      assert.equal(b.sw.pins.get(pinName(F)), undefined);
      assert.ok(b.sw.pins.get('OTHER_OWNER') !== undefined);
      assert.equal(b.a.garbageCollected.halfBuilt, 1);
    } finally {
      await b.stop();
    }
  });

  test('privileged shows work after enable (with its secret); a wrong secret is an error', async () => {
    const b = await start(
      { privilegedShows: ['load-balance', 'directflow'], enableSecret: 'en4ble' },
      { enableSecret: 'en4ble' },
    );
    try {
      await b.a.connect();
      const f = { ...F, src: '10.100.0.9', dst: VIP, sport: 5555, dport: 443 };
      assert.deepEqual(await b.a.resolve([f]), [b.sw.ecmpNexthop(f.src, VIP, 6, f.sport, f.dport)]);
      const [o] = await b.a.installPins([{ flow: f, nexthop: NEXTHOPS[0] as string, idleTimeoutS: 300 }]);
      assert.equal(o?.programmed, true);
      assert.equal((await b.a.listPins()).length, 1);
    } finally {
      await b.stop();
    }
    const wrong = await start({ enableSecret: 'en4ble' }, { enableSecret: 'nope' });
    try {
      await assert.rejects(
        wrong.a.connect(),
        (e: Error) => e instanceof SwitchCommandError && /Bad secret/.test(e.message),
      );
    } finally {
      await wrong.stop();
    }
  });

  test('clients on a connected subnet resolve; an ECMP route toward the client is refused by name', async () => {
    const { sw } = testSwitch({
      clientRoutes: [
        { prefix: '10.200.0.0/16', vias: [{ interface: 'Vlan30', port: 'Ethernet40' }] },
        {
          prefix: '10.201.0.0/16',
          vias: [
            { interface: 'Ethernet45', nexthopAddr: '10.0.0.1' },
            { interface: 'Ethernet46', nexthopAddr: '10.0.0.2' },
          ],
        },
      ],
    });
    const b = await start({}, {}, sw);
    try {
      await b.a.connect();
      const connected = Array.from({ length: 20 }, (_, i) => ({
        ...F,
        src: `10.200.1.${i + 1}`,
        dst: VIP,
        sport: 3000 + i,
        dport: 443,
      }));
      const ecmp = { ...F, src: '10.201.1.1', dst: VIP, sport: 4000, dport: 443 };
      const got = await b.a.resolveDetailed([...connected, ecmp]);
      assert.deepEqual(
        got.slice(0, 20).map((r) => r.nexthop),
        connected.map((f) => sw.ecmpNexthop(f.src, VIP, 6, f.sport, f.dport)),
      );
      assert.deepEqual(got[20], { nexthop: undefined, failure: 'ecmp-client-route' });
      assert.equal(b.a.resolver.failures['ecmp-client-route'], 1);
    } finally {
      await b.stop();
    }
  });
});
