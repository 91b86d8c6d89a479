// The Arista eAPI adapter beyond the shared contract: the DirectFlow wire text (golden),
// typed failures for bad credentials, refused connections and timeouts, and a pin batch
// that fails part-way (the switch refuses one flow; the others still land).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import { flowOfPinName, loadBalanceCommand, parseOutputInterface, pinCommands, pinName } from '../switch-adapters/arista-eapi/directflow.js';
import { SwitchAuthError, SwitchCommandError, SwitchTimeoutError, SwitchTransportError } from '../switch-adapters/errors.js';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const F = { family: 4 as const, src: '12.12.12.1', dst: '1.1.1.1', sport: 30002, dport: 80 };

describe('DirectFlow translation', () => {
  test('a pin is the prototype\'s DirectFlow flow (golden text)', () => {
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
    assert.equal(loadBalanceCommand(F, 'Et47'), 'show load-balance destination ip ingress-interface Et47 src-ipv4-address 12.12.12.1 dst-ipv4-address 1.1.1.1 ip-protocol 6 src-l4-port 30002 dst-l4-port 80');
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
      await assert.rejects(a.connect(), (e: Error) => e instanceof SwitchAuthError && !e.retryable && /sw1: eAPI refused the credentials/.test(e.message));
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
    const a = new AristaEapiAdapter({ switchName: 'sw1', url: `http://127.0.0.1:${port}/command-api`, username: 'a', password: 'b' });
    await assert.rejects(a.connect(), (e: Error) => e instanceof SwitchTransportError && e.retryable && /ECONNREFUSED/.test(e.message));
    await a.close();
  });

  test('no answer in time is a timeout error', async () => {
    const { sw } = testSwitch();
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
    const { url } = await server.start();
    server.faults.set({ hangNext: 1, hangMs: 2_000 });
    const a = new AristaEapiAdapter({ switchName: 'sw1', url, username: 'admin', password: 'pw', timeoutMs: 150 });
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
    const a = new AristaEapiAdapter({ switchName: 'sw1', url, username: 'admin', password: 'pw', pinBatchSize: 10 });
    try {
      const rules = Array.from({ length: 6 }, (_, i) => ({ flow: { ...F, dst: VIP, sport: 1000 + i }, nexthop: NEXTHOPS[0] as string, idleTimeoutS: 300 }));
      // An out-of-range idle timeout makes the switch refuse the fourth flow's `timeout idle` line.
      (rules[3] as { idleTimeoutS: number }).idleTimeoutS = 99_999_999;
      const out = await a.installPins(rules);
      assert.deepEqual(out.map((o) => o.ok), [true, true, true, false, true, true]);
      assert.match(out[3]?.error ?? '', /'timeout idle 99999999': Invalid input/);
      const listed = await a.listPins();
      assert.deepEqual(listed.filter((p) => p.programmed).map((p) => p.flow.sport).sort(), [1000, 1001, 1002, 1004, 1005]);
    } finally {
      await a.close();
      await server.stop();
    }
  });

  test('a refused command names the command', async () => {
    const { sw } = testSwitch();
    const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
    const { url } = await server.start();
    const a = new AristaEapiAdapter({ switchName: 'sw1', url, username: 'admin', password: 'pw', groupCommands: { add: ['enable', 'configure', 'router bgp {vip}'], remove: [] } });
    try {
      await assert.rejects(a.addGroupMember(VIP, '10.0.1.5'), (e: Error) => e instanceof SwitchCommandError && e.command === `router bgp ${VIP}` && e.code === 1002);
    } finally {
      await a.close();
      await server.stop();
    }
  });
});
