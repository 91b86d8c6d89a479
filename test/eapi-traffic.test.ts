// The eAPI adapter under live traffic against the simulator's eAPI: servers behind a shared
// VLAN interface and behind port-channels (ARP both ways: with the port, or the MAC table),
// a table shared with other owners that fills up, pins that expire and are re-added, IPv6.
// Each run pins the live flows a drain would move (resolve, install, read back), drains,
// and checks that no protected connection (pin reported programmed) is reset, that every
// reset one was counted at risk before the change, and that no answer was confidently wrong.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import type { FlowSpec, PinRule } from '../switch-adapters/contract.js';
import { EapiServer } from '../switch-sim/eapi/server.js';
import type { EosProfile } from '../switch-sim/eapi/profile.js';
import type { SimSwitch, SimSwitchOptions } from '../switch-sim/sim-switch.js';
import type { VirtualClock } from '../switch-sim/clock.js';
import { TrafficGenerator, type LiveConnection } from '../switch-sim/traffic.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';

const VIP6 = '2001:db8:80::1';
const NH6 = ['2001:db8:1::1', '2001:db8:1::2', '2001:db8:1::3', '2001:db8:1::4'];
const SEED = Number(process.env['FLOWPIN_TEST_SEED'] ?? 11);

interface RunOptions {
  vip?: string;
  nexthops?: string[];
  clientBase?: string;
  drain: string;
  sw?: Partial<SimSwitchOptions>;
  eos?: Partial<EosProfile>;
  /** Lays out servers behind SVIs and port-channels. */
  topology?(sw: SimSwitch): void;
  /** Before the pins are installed (e.g. other owners' flows). */
  prepare?(run: (cmds: string[]) => Promise<unknown>): Promise<void>;
  /** Short idle timeout first, then list (expired, removed) and re-add whole. */
  expireFirst?: boolean;
  pinTableSize?: number;
}

interface RunResult {
  protectedFlows: Set<string>;
  atRisk: Map<string, string>;
  resets: string[];
  resetTotal: number;
  adapter: AristaEapiAdapter;
  sw: SimSwitch;
  /** pinTableUsage() after the pins were written and rejected ones removed. */
  usage: { capacity: number; used: number } | undefined;
}

const key = (c: { src: string; sport: number }): string => `${c.src}|${c.sport}`;
const toFlow = (c: LiveConnection): FlowSpec => ({
  family: c.src.includes(':') ? 6 : 4,
  src: c.src,
  dst: c.dst,
  sport: c.sport,
  dport: c.dport,
});

async function drainUnderTraffic(o: RunOptions): Promise<RunResult> {
  const vip = o.vip ?? VIP;
  const { sw, clock } = testSwitch(o.sw);
  if (vip !== VIP) sw.addVip(vip, o.nexthops ?? NH6);
  o.topology?.(sw);
  const server = new EapiServer(sw, {
    host: '127.0.0.1',
    port: 0,
    username: 'admin',
    password: 'pw',
    ...(o.eos === undefined ? {} : { eos: o.eos }),
  });
  const { url } = await server.start();
  const adapter = new AristaEapiAdapter({
    switchName: 'sw1',
    url,
    username: 'admin',
    password: 'pw',
    groupTemplate: { kind: 'static-ecmp' },
    vips: [vip],
    now: clock.now,
    ...(o.pinTableSize === undefined ? {} : { pinTableSize: o.pinTableSize }),
    ...(o.eos?.enableSecret === undefined ? {} : { enableSecret: o.eos.enableSecret }),
  });
  try {
    await adapter.connect();
    await o.prepare?.((cmds) => adapter.runner.run(cmds, 'json'));
    const traffic = new TrafficGenerator(sw, clock, {
      connectionsPerSecond: 10,
      lifetime: { kind: 'fixed', s: 900 },
      packetIntervalMs: o.expireFirst ? 20_000 : 2_000,
      targets: [{ vip, port: 443 }],
      clientBase: o.clientBase ?? '10.100.0.1',
      clientCount: 5000,
      maxConcurrent: 10_000,
      seed: SEED,
    });
    traffic.start();
    advance(clock, 30_000);
    traffic.stop();
    const live = traffic.liveConnections();
    assert.ok(live.length > 200, `traffic runs (${live.length} live, seed ${SEED})`);
    const res = await adapter.resolveDetailed(live.map(toFlow));
    const atRisk = new Map<string, string>();
    const toPin: PinRule[] = [];
    live.forEach((c, i) => {
      const r = res[i];
      if (r?.nexthop === undefined) atRisk.set(key(c), r?.failure ?? 'unresolved');
      else {
        assert.equal(r.nexthop, c.server, `never confidently wrong: ${key(c)} (seed ${SEED})`);
        if (r.nexthop === o.drain)
          toPin.push({ flow: toFlow(c), nexthop: r.nexthop, idleTimeoutS: o.expireFirst ? 5 : 300 });
      }
    });
    let outcomes = await adapter.installPins(toPin);
    if (o.expireFirst) {
      advance(clock, 40_000);
      const listed = await adapter.listPins();
      assert.ok(
        listed.length > 0 && listed.every((p) => !p.programmed && p.reason === 'idle-timeout'),
        'every idle pin is reported expired',
      );
      // The listing changes nothing: the reconciler's round removes what it reports, as here.
      await adapter.removePins(listed.filter((p) => !p.programmed).map((p) => p.flow));
      assert.equal(
        [...sw.pins.all()].filter((e) => e.name.startsWith('fp-')).length,
        0,
        'expired flows are removed from the switch',
      );
      outcomes = await adapter.installPins(toPin.map((p) => ({ ...p, idleTimeoutS: 300 })));
    }
    const protectedFlows = new Set<string>();
    outcomes.forEach((out) => {
      if (out.ok && out.programmed === true) protectedFlows.add(key(out.flow));
      else atRisk.set(key(out.flow), out.reason ?? out.error ?? 'not programmed');
    });
    // As the reconciler's round does: what the switch accepted and could not program is removed.
    await adapter.removePins(
      outcomes.filter((x) => x.ok && x.programmed === false && x.reason !== 'pending').map((x) => x.flow),
    );
    assert.equal(
      [...sw.pins.all()].filter((e) => e.name.startsWith('fp-') && e.status === 'table-full').length,
      0,
      'rejected flows do not stay configured',
    );
    const usage = await adapter.pinTableUsage();
    await adapter.removeGroupMember(vip, o.drain);
    assert.ok(!(await adapter.groupMembers(vip)).includes(o.drain));
    advance(clock, 120_000);
    const resets = traffic.recentResets.map(key);
    return { protectedFlows, atRisk, resets, resetTotal: traffic.counters.reset, adapter, sw, usage };
  } finally {
    await adapter.close();
    await server.stop();
  }
}

function advance(clock: VirtualClock, ms: number): void {
  const end = clock.now() + ms;
  while (clock.now() < end) clock.advanceTo(Math.min(end, clock.now() + 1000));
}

function assertKept(r: RunResult, label: string): void {
  assert.ok(r.resetTotal < 100, 'every reset is in the record');
  assert.equal(r.resets.length, r.resetTotal);
  for (const k of r.resets) {
    assert.ok(!r.protectedFlows.has(k), `${label}: protected connection ${k} was reset (seed ${SEED})`);
    assert.ok(r.atRisk.has(k), `${label}: reset connection ${k} was not counted at risk (seed ${SEED})`);
  }
}

/**
 * Servers 1 and 2 on Vlan10 (own access ports), 3 and 4 on Vlan20 behind one port-channel (a downstream
 * switch).
 */
function sharedLayout(sw: SimSwitch): void {
  sw.addPortChannel('Port-Channel1', ['Ethernet21', 'Ethernet22']);
  sw.attachServer(NEXTHOPS[0] as string, { via: 'Vlan10', vlan: 10, l2: 'Ethernet11' });
  sw.attachServer(NEXTHOPS[1] as string, { via: 'Vlan10', vlan: 10, l2: 'Ethernet12' });
  sw.attachServer(NEXTHOPS[2] as string, { via: 'Vlan20', vlan: 20, l2: 'Port-Channel1' });
  sw.attachServer(NEXTHOPS[3] as string, { via: 'Vlan20', vlan: 20, l2: 'Port-Channel1' });
}

describe('eAPI adapter under traffic', { timeout: 120_000 }, () => {
  for (const arpSviForm of ['with-port', 'svi-only'] as const) {
    test(`servers behind a shared VLAN interface (ARP ${arpSviForm}): a drain resets no protected connection`, async () => {
      const r = await drainUnderTraffic({
        drain: NEXTHOPS[0] as string,
        topology: sharedLayout,
        eos: { arpSviForm },
      });
      assert.ok(
        r.protectedFlows.size > 30,
        `flows on the drained server are pinned (${r.protectedFlows.size})`,
      );
      assertKept(r, 'shared VLAN');
      assert.equal(r.resetTotal, 0, "the drained server's flows all resolved with certainty and were pinned");
      assert.ok(
        [...r.atRisk.values()].every((v) => v === 'ambiguous-port'),
        'only flows behind the shared port-channel stay unresolved',
      );
      assert.ok(r.adapter.resolver.failures['ambiguous-port'] > 0);
    });
  }

  test('servers sharing a port-channel are ambiguous: counted at risk, never pinned on a guess', async () => {
    const r = await drainUnderTraffic({ drain: NEXTHOPS[2] as string, topology: sharedLayout });
    assert.equal(r.protectedFlows.size, 0);
    assert.ok(r.resetTotal > 0, "the drained server's connections move (they could not be protected)");
    assertKept(r, 'shared port-channel');
  });

  test('a server on its own routed port-channel resolves through the member port', async () => {
    const r = await drainUnderTraffic({
      drain: NEXTHOPS[1] as string,
      topology: (sw) => {
        sw.addPortChannel('Port-Channel2', ['Ethernet31', 'Ethernet32']);
        sw.attachServer(NEXTHOPS[1] as string, { via: 'Port-Channel2' });
      },
      eos: { enableSecret: 's3cr3t', loadBalanceJson: false },
    });
    assert.ok(r.protectedFlows.size > 30);
    assert.equal(r.resetTotal, 0);
    assert.equal(r.atRisk.size, 0);
  });

  test('a table shared with other owners fills up: programmed pins protect, rejected ones are counted and removed', async () => {
    const others = ['STATIC_THRU_FIREWALL_1', 'STATIC_THRU_FIREWALL_2', 'STATIC_THRU_FIREWALL_3'];
    for (const jsonListsRejected of [true, false]) {
      const r = await drainUnderTraffic({
        drain: NEXTHOPS[3] as string,
        sw: { pinCapacity: 40, reservedPinEntries: 5 },
        pinTableSize: 40,
        eos: { jsonListsRejected },
        prepare: async (run) => {
          await run([
            'enable',
            'configure',
            'directflow',
            'no shutdown',
            ...others.flatMap((n, i) => [
              `flow ${n}`,
              'match ethertype ip',
              `match source ip 172.16.0.${i + 1}`,
              'action drop',
              'exit',
            ]),
          ]);
        },
      });
      assert.equal(
        r.protectedFlows.size,
        40 - 5 - others.length,
        `exactly the free entries are programmed (json lists rejected: ${jsonListsRejected})`,
      );
      assert.ok([...r.atRisk.values()].filter((v) => v === 'table-full').length > 10);
      assert.ok(r.resetTotal > 0);
      assertKept(r, `full table (json lists rejected: ${jsonListsRejected})`);
      assert.ok(r.adapter.garbageCollected.rejected > 10);
      assert.deepEqual(
        r.usage,
        { capacity: 35, used: 35 },
        'entries the switch does not list (5 reserved) are inferred from the rejections: no free entry is claimed',
      );
      assert.equal(
        r.sw.pins.get('STATIC_THRU_FIREWALL_1')?.status,
        'programmed',
        "other owners' flows are left alone",
      );
    }
  });

  test('pins that expire are reported, removed, and re-added whole', async () => {
    const r = await drainUnderTraffic({ drain: NEXTHOPS[0] as string, expireFirst: true });
    assert.ok(r.protectedFlows.size > 30);
    assert.ok(r.adapter.garbageCollected.expired > 30);
    assert.equal(r.resetTotal, 0);
    assertKept(r, 'expiring pins');
  });

  test('IPv6: ipv6 routes and neighbours, ethertype 34525 pins, ipv6 route group change', async () => {
    const r = await drainUnderTraffic({
      vip: VIP6,
      nexthops: NH6,
      clientBase: '2001:db8:100::1',
      drain: NH6[1] as string,
      topology: (sw) => {
        sw.attachServer(NH6[0] as string, { via: 'Vlan60', vlan: 60, l2: 'Ethernet61' });
        sw.attachServer(NH6[1] as string, { via: 'Vlan60', vlan: 60, l2: 'Ethernet62' });
      },
    });
    assert.ok(r.protectedFlows.size > 30);
    assert.equal(r.resetTotal, 0);
    assertKept(r, 'IPv6');
    assert.ok([...r.sw.pins.all()].every((e) => e.match.family === 6));
  });
});
