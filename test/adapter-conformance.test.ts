// One conformance suite for every switch adapter: the simulator in-process, through its eAPI
// and through its gNMI target, and the Linux router adapter against a real kernel router in
// network namespaces. Each bed says what truth it has: the simulator's model answers which
// server a flow reaches; on the Linux router truth is real TCP connections (the server that
// holds each, read from its sockets; a connection pinned to another server is reset). Every
// case an adapter cannot run names its reason. Error classes are part of the contract: what a
// capability flag says is missing rejects as unsupported, a switch that does not answer and
// refused credentials are told apart by class and retryability. Fencing (high availability) is
// as the adapter's capability says: a stale owner's write refused with nothing changed
// (`refused`), or landing under its epoch's name, bounded only by the writer's timing (`timed`).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { canonicalIp } from '../lib/addr.js';
import { pinName } from '../lib/pin-name.js';
import { until } from '../lib/until.js';
import type { FlowSpec, PinRule, SwitchAdapter } from '../switch-adapters/contract.js';
import {
  SwitchAuthError,
  SwitchTimeoutError,
  SwitchTransportError,
  SwitchUnsupportedError,
  type SwitchError,
} from '../switch-adapters/errors.js';
import { SwitchFencedError } from '../switch-adapters/fence.js';
import { SimAdapter } from '../switch-adapters/sim/adapter.js';
import { AristaEapiAdapter } from '../switch-adapters/arista-eapi/adapter.js';
import { GnmiAdapter, type GnmiAdapterOptions } from '../switch-adapters/gnmi/adapter.js';
import { ruleUpdate } from '../switch-adapters/gnmi/openconfig.js';
import { LinuxRouterAdapter } from '../switch-adapters/linux/adapter.js';
import { LAB_VIP4, LAB_VIP6, LabTopology } from '../switch-adapters/linux/lab/topology.js';
import { LabTraffic } from '../switch-adapters/linux/lab/traffic.js';
import { EapiServer } from '../switch-sim/eapi/server.js';
import { GnmiServer } from '../switch-sim/gnmi/server.js';
import type { SimSwitch } from '../switch-sim/sim-switch.js';
import type { VirtualClock } from '../switch-sim/clock.js';
import { labAdapter, SWITCH, withWarmTraffic } from '../cli/lab-controller.js';
import { testSwitch, VIP, NEXTHOPS } from './helpers/sim.js';
import { have, isRoot, skipUnless } from './helpers/tools.js';

const linuxSkip = skipUnless(
  isRoot() && have('nft', ['-v']) && have('ip', ['-V']),
  'root with nft and ip (Linux router conformance)',
);

/** Pin table entries every bed gives flowpin. */
const CAPACITY = 40;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const key = (f: { src: string; sport: number }): string => `${canonicalIp(f.src)}|${f.sport}`;

/**
 * Flows the switch forwards now (with traffic, where truth is real connections) and the server each reaches.
 */
interface Forwarded {
  flows: FlowSpec[];
  servers: string[];
  /** For each flow, whether its packets now reach `to[i]` (waiting for traffic to show it, where it must). */
  reach(to: string[]): Promise<boolean[]>;
  stop(): void;
}

/** An adapter under test, connected, and the switch it drives. */
interface Bed {
  adapter: SwitchAdapter;
  vip4: string;
  vip6: string;
  /** A VIP's group members as the bed set them up. */
  members(vip: string): string[];
  /** A server outside the VIP's group, to add, per VIP the bed can add one to. */
  spares: [vip: string, server: string][];
  /** A TCP flow of the bed's clients toward one of its VIPs (no traffic). */
  flow(i: number, v6?: boolean): FlowSpec;
  forwarded(n4: number, n6: number): Promise<Forwarded>;
  /** What forwarding picks now for these flows, ignoring pins, where the bed knows without the adapter. */
  ecmp?(flows: FlowSpec[]): (string | undefined)[];
  /** The switch's clock, where it is simulated. */
  clock?: VirtualClock;
  /** Sets the time the switch takes to program a pin it accepted (ms), where it can be made to wait. */
  programDelay?(ms: number): void;
  /** Configuration commands the switch has been sent so far (reads must add none). */
  configWrites(): number;
  /**
   * Leaves an entry of flowpin's on the switch that no pin stands for (for removeStrays), where the switch
   * can hold one.
   */
  makeStray?(pinned: PinRule): Promise<void>;
  /** An adapter of the same kind toward a switch that does not answer. */
  unreachable?(): SwitchAdapter;
  /** An adapter of the same kind whose credentials the switch refuses. */
  badCredentials?(): SwitchAdapter;
  /** A second adapter of the same kind toward the same switch, connected: another controller instance. */
  second(): Promise<SwitchAdapter>;
  teardown(): Promise<void>;
}

interface AdapterUnderTest {
  name: string;
  make(): Promise<Bed>;
  /** Flows (IPv4, IPv6) of the look-up case and of the pin case. */
  resolveFlows: [number, number];
  pinFlows: [number, number];
  /** Distinct servers the look-up case's flows must reach at least. */
  spread: number;
  /** Cases this adapter skips, with the reason. */
  skip: Record<string, string>;
  /** Skips the whole suite (a missing prerequisite). */
  skipAll?: string | false;
  timeoutMs: number;
}

// ---- the simulator's beds

const VIP6 = '2001:db8:80::1';
const simFlow = (i: number, v6 = false): FlowSpec => ({
  family: v6 ? 6 : 4,
  src: v6 ? `2001:db8:100::${(i + 1).toString(16)}` : `10.100.${i >> 8}.${i & 255}`,
  dst: v6 ? VIP6 : VIP,
  sport: 20000 + i,
  dport: 443,
});

/** The in-process model's configuration changes: its pin table's and groups' writes, counted. */
function countModelWrites(sw: SimSwitch): () => number {
  let n = 0;
  const pins = sw.pins;
  const upsert = pins.upsert.bind(pins);
  const remove = pins.remove.bind(pins);
  const add = sw.groupAdd.bind(sw);
  const del = sw.groupRemove.bind(sw);
  pins.upsert = (...a) => (n++, upsert(...a));
  pins.remove = (...a) => (n++, remove(...a));
  sw.groupAdd = (...a) => (n++, add(...a));
  sw.groupRemove = (...a) => (n++, del(...a));
  return () => n;
}

/** eAPI commands that configure: everything but `enable` and `show ...`. */
const configuring = (commands: readonly string[]): number =>
  commands.filter((c) => c !== 'enable' && !c.startsWith('show ')).length;

type SimParts = Pick<
  Bed,
  'adapter' | 'configWrites' | 'makeStray' | 'unreachable' | 'badCredentials' | 'teardown'
> & { another(): SwitchAdapter };

/** A bed on the simulated switch; `parts` makes the adapter under test. */
async function simBed(parts: (sw: SimSwitch, clock: VirtualClock) => Promise<SimParts>): Promise<Bed> {
  const { sw, clock } = testSwitch({ pinCapacity: CAPACITY });
  sw.addVip(VIP6, NEXTHOPS);
  const p = await parts(sw, clock);
  await p.adapter.connect();
  const packet = (f: FlowSpec, bytes: number) => ({
    src: f.src,
    dst: f.dst,
    sport: f.sport,
    dport: f.dport,
    protocol: 6,
    flags: 0x10,
    bytes,
  });
  const seconds: SwitchAdapter[] = [];
  return {
    ...p,
    async second() {
      const a = p.another();
      seconds.push(a);
      await a.connect();
      return a;
    },
    async teardown() {
      for (const a of seconds) await a.close();
      await p.teardown();
    },
    vip4: VIP,
    vip6: VIP6,
    members: () => [...NEXTHOPS],
    spares: [[VIP, '10.0.1.5']],
    flow: simFlow,
    ecmp: (flows) => flows.map((f) => sw.ecmpNexthop(f.src, f.dst, 6, f.sport, f.dport)),
    clock,
    programDelay: (ms) => void (sw.programDelayMs = ms),
    forwarded(n4, n6) {
      const flows = [
        ...Array.from({ length: n4 }, (_, i) => simFlow(500 + i)),
        ...Array.from({ length: n6 }, (_, i) => simFlow(500 + i, true)),
      ];
      const servers = flows.map((f) => sw.ecmpNexthop(f.src, f.dst, 6, f.sport, f.dport) as string);
      return Promise.resolve({
        flows,
        servers,
        reach: (to) => Promise.resolve(flows.map((f, i) => sw.deliver(packet(f, 100)).nexthop === to[i])),
        stop: () => undefined,
      });
    },
  };
}

const ADAPTERS: AdapterUnderTest[] = [
  {
    name: 'sim (in-process)',
    make: () =>
      simBed((sw) =>
        Promise.resolve({
          adapter: new SimAdapter(sw),
          another: () => new SimAdapter(sw),
          configWrites: countModelWrites(sw),
          teardown: () => Promise.resolve(),
        }),
      ),
    resolveFlows: [120, 10],
    pinFlows: [30, 0],
    spread: 4,
    skip: {
      unreachable: 'in-process: there is no connection to lose',
      credentials: 'in-process: no credentials',
    },
    timeoutMs: 30_000,
  },
  {
    name: 'arista-eapi (against the simulator eAPI)',
    make: () =>
      simBed(async (sw, clock) => {
        const server = new EapiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
        const { url } = await server.start();
        const options = {
          switchName: 'sim1',
          url,
          username: 'admin',
          password: 'pw',
          resolveBatchSize: 50,
          pinBatchSize: 20,
          pinTableSize: CAPACITY,
          groupTemplate: { kind: 'static-ecmp' as const },
          vips: [VIP, VIP6],
          now: clock.now,
        };
        const adapter = new AristaEapiAdapter(options);
        return {
          adapter,
          another: () => new AristaEapiAdapter(options),
          configWrites: () => configuring(server.commandLog),
          // A flow configured without its action (a line-by-line write cut short).
          makeStray: async (p) =>
            void (await adapter.runner.run(
              [
                'enable',
                'configure',
                'directflow',
                'no shutdown',
                `flow ${pinName({ ...p.flow, sport: p.flow.sport + 10_000 })}`,
                'match ethertype ip',
                'exit',
              ],
              'json',
            )),
          unreachable: () =>
            new AristaEapiAdapter({ ...options, url: 'http://127.0.0.1:1/command-api', timeoutMs: 2000 }),
          badCredentials: () => new AristaEapiAdapter({ ...options, password: 'wrong', timeoutMs: 2000 }),
          teardown: async () => {
            await adapter.close();
            await server.stop();
          },
        };
      }),
    resolveFlows: [120, 10],
    pinFlows: [30, 0],
    spread: 4,
    skip: {
      movedByAdd:
        'eAPI does not expose the resilient ECMP bucket table (predictsMovedFlows: false); the controller pins every live flow of the group before an add',
    },
    timeoutMs: 60_000,
  },
  {
    name: 'gnmi (against the simulator gNMI target)',
    make: () =>
      simBed(async (sw) => {
        const server = new GnmiServer(sw, { host: '127.0.0.1', port: 0, username: 'admin', password: 'pw' });
        const { address } = await server.start();
        const options: GnmiAdapterOptions = {
          switchName: 'sim1',
          address,
          insecure: true,
          username: 'admin',
          password: 'pw',
          ingressInterfaces: ['Ethernet47'],
          pinBatchSize: 20,
          sampleIntervalMs: 50,
          pinTable: { component: 'Chip0', resource: 'policy-forwarding-rules' },
          timeoutMs: 5000,
        };
        const adapter = new GnmiAdapter(options);
        const others: GnmiAdapter[] = [];
        const other = (o: Partial<GnmiAdapterOptions>): GnmiAdapter => {
          const a = new GnmiAdapter({ ...options, timeoutMs: 2000, ...o });
          others.push(a);
          return a;
        };
        return {
          adapter,
          configWrites: () => server.stats.set,
          // A second rule holding a pinned flow (a lost reply's Set applied after all).
          makeStray: async (p) =>
            void (await adapter.transport.set({
              replace: [ruleUpdate({ networkInstance: 'default', policyId: 'flowpin' }, 999, p)],
            })),
          another: () => new GnmiAdapter(options),
          unreachable: () => other({ address: '127.0.0.1:1' }),
          badCredentials: () => other({ password: 'wrong' }),
          teardown: async () => {
            for (const a of others) await a.close();
            await adapter.close();
            await server.stop();
          },
        };
      }),
    resolveFlows: [120, 10],
    pinFlows: [30, 0],
    spread: 4,
    skip: {
      resolve: 'gNMI has no call that tells which path a flow takes (resolvesNexthop: false)',
      idleTimeout:
        'OpenConfig policy-forwarding rules have no idle timeout (nativeIdleTimeout: false); the controller ages pins from matched-pkts',
      movedByAdd: 'gNMI does not expose the ECMP bucket table (predictsMovedFlows: false)',
      ipv6Pins:
        'this suite serves its IPv6 VIP from IPv4 servers; the target refuses a next-hop of the other address family in an ipv6 rule',
    },
    timeoutMs: 60_000,
  },
  {
    name: 'linux (real kernel router in namespaces)',
    skipAll: linuxSkip,
    async make() {
      const lab = await LabTopology.create({ prefix: 'fpconf' });
      try {
        const adapter = labAdapter(lab, { pinTableSize: CAPACITY });
        const commands: { argv: readonly string[]; input: string | undefined }[] = [];
        const run = adapter.run.run.bind(adapter.run);
        adapter.run.run = (argv, input) => {
          commands.push({ argv, input });
          return run(argv, input);
        };
        await withWarmTraffic(lab, adapter.connect());
        const family = (vip: string): 4 | 6 => (vip.includes(':') ? 6 : 4);
        const lflow = (i: number, v6 = false): FlowSpec => ({
          family: v6 ? 6 : 4,
          src: v6 ? (lab.clients6[i % 4] as string) : (lab.clients4[i % 4] as string),
          dst: v6 ? LAB_VIP6 : LAB_VIP4,
          sport: 20000 + i,
          dport: 7007,
        });
        const spare = lab.servers[4];
        const seconds: SwitchAdapter[] = [];
        const options = {
          switchName: SWITCH,
          vips: [{ address: LAB_VIP4, nexthops: lab.members4 }],
          clientInterfaces: [lab.clientDev],
          probeTimeoutMs: 2000,
        };
        return {
          adapter,
          vip4: LAB_VIP4,
          vip6: LAB_VIP6,
          members: (vip) => (family(vip) === 4 ? lab.members4 : lab.members6),
          spares:
            spare === undefined
              ? []
              : [
                  [LAB_VIP4, spare.addr4],
                  [LAB_VIP6, spare.addr6],
                ],
          flow: lflow,
          async forwarded(n4, n6) {
            const t = new LabTraffic(lab);
            try {
              // Reset by a server that does not hold it, or 60 s without progress: broken.
              await t.open(lab, n4, n6, { stallMs: 60_000 });
              const flows: FlowSpec[] = [];
              const servers: string[] = [];
              for (const s of lab.servers) {
                for (const f of serverFlows(s.ns)) {
                  flows.push(f);
                  servers.push(f.family === 4 ? s.addr4 : s.addr6);
                }
              }
              return {
                flows,
                servers,
                // A connection whose packets reach a server other than the one that holds it is reset.
                async reach(to) {
                  const moved = flows.map((_, i) => to[i] !== servers[i]);
                  let broken = new Set<string>();
                  for (const deadline = Date.now() + 10_000; ; await sleep(200)) {
                    broken = new Set((await t.report()).brokenFlows.map(key));
                    if (flows.every((f, i) => broken.has(key(f)) === moved[i]) || Date.now() > deadline)
                      break;
                  }
                  return flows.map((f, i) => broken.has(key(f)) === moved[i]);
                },
                stop: () => t.stop(),
              };
            } catch (err) {
              t.stop();
              throw err;
            }
          },
          configWrites: () => commands.filter((c) => !readsOnly(c.argv, c.input)).length,
          // A command prefix that is not there: nothing answers.
          unreachable: () =>
            new LinuxRouterAdapter({ ...options, prefix: ['/nonexistent/flowpin-router-shell'] }),
          async second() {
            const a = labAdapter(lab, { pinTableSize: CAPACITY });
            seconds.push(a);
            await withWarmTraffic(lab, a.connect());
            return a;
          },
          teardown: async () => {
            for (const a of seconds) await a.close();
            lab.destroy();
          },
        };
      } catch (err) {
        lab.destroy();
        throw err;
      }
    },
    resolveFlows: [40, 20],
    pinFlows: [10, 6],
    spread: 6,
    skip: {
      ecmpAgain:
        'a live connection pinned to another server was reset there: its packets cannot show forwarding again (the pin case checks the listing empties)',
      idleTimeout:
        'real time: the kernel ages pins on wall-clock idle timeouts (minimum 1 s per map); covered by docs/linux.md measurements, not simulated here',
      pending: 'the kernel programs a map element when the write returns: there is no pending state',
      ipv6Pins: 'the pin case runs real connections of both families through IPv6 and IPv4 pins',
      credentials:
        "commands run through the configured prefix (local, ip netns exec, ssh): credentials are the prefix's, not the adapter's",
    },
    timeoutMs: 60_000,
  },
];

/** Whether a command of the Linux adapter only reads (show, list, get, and batches of `route get`). */
function readsOnly(argv: readonly string[], input: string | undefined): boolean {
  if (argv.includes('-batch'))
    return (input ?? '')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .every((l) => l.startsWith('route get '));
  if (argv[0] === 'sysctl') return !argv.includes('-w');
  return argv.some((w) => w === 'show' || w === 'list' || w === 'get');
}

/** The client ends of a lab server's established echo connections. */
function serverFlows(ns: string): FlowSpec[] {
  const out = execFileSync('ip', [
    'netns',
    'exec',
    ns,
    'ss',
    '-Htn',
    'state',
    'established',
    '( sport = :7007 )',
  ]).toString();
  const flows: FlowSpec[] = [];
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    const local = cols[2];
    const peer = cols[3];
    if (local === undefined || peer === undefined) continue;
    const li = local.lastIndexOf(':');
    const pi = peer.lastIndexOf(':');
    const dst = local.slice(0, li).replace(/^\[|\]$/g, '');
    const src = peer
      .slice(0, pi)
      .replace(/^\[|\]$/g, '')
      .replace(/^::ffff:/, '');
    flows.push({
      family: dst.includes(':') && !dst.startsWith('::ffff:') ? 6 : 4,
      src,
      dst: dst.replace(/^::ffff:/, ''),
      sport: Number(peer.slice(pi + 1)),
      dport: Number(local.slice(li + 1)),
    });
  }
  return flows;
}

const isClass = (e: unknown, ...classes: (abstract new (...args: never[]) => SwitchError)[]): boolean =>
  classes.some((c) => e instanceof c);

for (const a of ADAPTERS) {
  describe(`adapter conformance: ${a.name}`, { skip: a.skipAll ?? false }, () => {
    let bed: Bed;
    const opts = (name: string) => ({ skip: a.skip[name] ?? false, timeout: a.timeoutMs });
    before(async () => {
      bed = await a.make();
    });
    after(async () => bed.teardown());

    test(
      'resolve gives the server each flow reaches, IPv4 and IPv6, in batches',
      opts('resolve'),
      async () => {
        const fw = await bed.forwarded(...a.resolveFlows);
        try {
          assert.ok(fw.flows.length >= a.resolveFlows[0], `flows: ${fw.flows.length}`);
          const got = await bed.adapter.resolve(fw.flows);
          assert.deepEqual(got, fw.servers);
          assert.ok(new Set(got).size >= a.spread, 'flows spread over the servers');
        } finally {
          fw.stop();
        }
      },
    );

    test(
      'resolve answers undefined for a destination the switch does not route',
      opts('resolveUnrouted'),
      async () => {
        assert.deepEqual(await bed.adapter.resolve([{ ...bed.flow(1), dst: '198.51.100.77' }]), [undefined]);
      },
    );

    test(
      'pins steer live flows to another server, are listed with counters, installing again is harmless, and removing them (and pins that are not there) empties the listing',
      opts('pins'),
      async () => {
        const fw = await bed.forwarded(...a.pinFlows);
        try {
          const rules = fw.flows.map((f, i) => ({
            flow: f,
            nexthop: bed.members(f.dst).find((n) => n !== fw.servers[i]) as string,
            idleTimeoutS: 300,
          }));
          assert.ok((await bed.adapter.installPins(rules)).every((o) => o.ok && o.programmed !== false));
          assert.ok(
            (await bed.adapter.installPins(rules.slice(0, 3))).every((o) => o.ok),
            'idempotent',
          );
          assert.deepEqual(
            await fw.reach(rules.map((r) => r.nexthop)),
            rules.map(() => true),
            'every pinned flow reaches its pinned server',
          );
          // Counters may arrive by a sampled stream, one interval late: read until they show the packets.
          let listed = await bed.adapter.listPins();
          for (
            const deadline = Date.now() + 3000;
            listed.some((p) => p.packets < 1) && Date.now() < deadline;
            listed = await bed.adapter.listPins()
          )
            await sleep(20);
          assert.equal(listed.length, rules.length);
          const byKey = new Map(listed.map((p) => [key(p.flow), p]));
          for (const r of rules) {
            const p = byKey.get(key(r.flow));
            assert.equal(p?.nexthop, r.nexthop);
            assert.deepEqual(p?.flow, r.flow);
            assert.equal(p?.programmed, true);
            assert.ok((p?.packets ?? 0) >= 1, 'counted the packets it steered');
          }
          await bed.adapter.removePins([...fw.flows, bed.flow(9999)]);
          assert.deepEqual(await bed.adapter.listPins(), []);
        } finally {
          await bed.adapter.removePins(fw.flows);
          fw.stop();
        }
      },
    );

    test('once its pin is removed, a flow is forwarded by ECMP again', opts('ecmpAgain'), async () => {
      const fw = await bed.forwarded(20, 0);
      try {
        const rules = fw.flows.map((f, i) => ({
          flow: f,
          nexthop: bed.members(f.dst).find((n) => n !== fw.servers[i]) as string,
          idleTimeoutS: 300,
        }));
        await bed.adapter.installPins(rules);
        assert.ok((await fw.reach(rules.map((r) => r.nexthop))).every((x) => x));
        await bed.adapter.removePins(fw.flows);
        assert.deepEqual(
          await fw.reach(fw.servers),
          fw.flows.map(() => true),
        );
      } finally {
        fw.stop();
      }
    });

    test(
      'pins time out on the switch when idle and are listed as not programmed',
      opts('idleTimeout'),
      async () => {
        const clock = bed.clock as VirtualClock;
        await bed.adapter.installPins([
          { flow: bed.flow(700), nexthop: bed.members(bed.vip4)[0] as string, idleTimeoutS: 5 },
        ]);
        clock.advance(6_000);
        const [p] = await bed.adapter.listPins();
        assert.equal(p?.programmed, false);
        assert.equal(p?.reason, 'idle-timeout');
        await bed.adapter.removePins([bed.flow(700)]);
      },
    );

    test(
      'installing reports accepted and programmed apart: past the capacity, refused or not programmed (table full)',
      opts('capacity'),
      async () => {
        const rules = Array.from({ length: CAPACITY + 5 }, (_, i) => ({
          flow: bed.flow(800 + i),
          nexthop: bed.members(bed.vip4)[1] as string,
          idleTimeoutS: 300,
        }));
        const outcomes = await bed.adapter.installPins(rules);
        const listed = await bed.adapter.listPins();
        assert.equal(listed.filter((p) => p.programmed).length, CAPACITY);
        // Refused at the write (a transactional Set, a kernel map that is full), reported not
        // programmed by the read-back after the write, or configured and listed as not programmed.
        const refused = outcomes.filter((o) => !o.ok || o.programmed === false);
        for (const o of refused) assert.equal(o.reason, 'table-full', `refused for ${String(o.error)}`);
        const refusedKeys = new Set(refused.map((o) => key(o.flow)));
        const notProgrammed = listed.filter((p) => !p.programmed && !refusedKeys.has(key(p.flow)));
        assert.equal(refused.length + notProgrammed.length, 5);
        for (const p of notProgrammed) assert.equal(p.reason, 'table-full');
        // Accepted is not programmed: whatever the switch accepted past its room is not forwarding.
        assert.ok(outcomes.filter((o) => o.programmed === true).length <= CAPACITY);
        if (bed.adapter.capabilities.reportsTableUsage)
          assert.deepEqual(await bed.adapter.pinTableUsage(), { capacity: CAPACITY, used: CAPACITY });
        assert.ok(bed.adapter.capabilities.pinTableSize > 0);
        await bed.adapter.removePins(rules.map((r) => r.flow));
        if (bed.adapter.capabilities.reportsTableUsage)
          assert.deepEqual(await bed.adapter.pinTableUsage(), { capacity: CAPACITY, used: 0 });
      },
    );

    test(
      'a pin the switch has not programmed yet is reported pending, then programmed',
      opts('pending'),
      async () => {
        const clock = bed.clock as VirtualClock;
        bed.programDelay?.(2_000);
        try {
          const rule = {
            flow: bed.flow(900),
            nexthop: bed.members(bed.vip4)[2] as string,
            idleTimeoutS: 300,
          };
          try {
            const [o] = await bed.adapter.installPins([rule]);
            assert.equal(o?.ok, true);
            assert.notEqual(o?.programmed, true, 'accepted is not programmed');
            if (o?.programmed === false) assert.equal(o.reason, 'pending');
            const [before] = await bed.adapter.listPins();
            assert.deepEqual([before?.programmed, before?.reason], [false, 'pending']);
            clock.advance(2_500);
            const [after] = await bed.adapter.listPins();
            assert.equal(after?.programmed, true);
          } finally {
            await bed.adapter.removePins([rule.flow]);
          }
        } finally {
          bed.programDelay?.(0);
        }
      },
    );

    test('IPv6 pins are installed, steer packets and are listed', opts('ipv6Pins'), async () => {
      const fw = await bed.forwarded(0, 1);
      try {
        const [f] = fw.flows as [FlowSpec];
        const target = bed.members(f.dst).find((n) => n !== fw.servers[0]) as string;
        const [o] = await bed.adapter.installPins([{ flow: f, nexthop: target, idleTimeoutS: 300 }]);
        assert.deepEqual([o?.ok, o?.programmed], [true, true]);
        assert.deepEqual(await fw.reach([target]), [true]);
        const listed = await bed.adapter.listPins();
        assert.deepEqual(
          listed.map((p) => [p.flow, p.nexthop, p.programmed]),
          [[f, target, true]],
        );
        await bed.adapter.removePins([f]);
      } finally {
        fw.stop();
      }
    });

    test('group members are read and changed, and resolve follows the change', opts('groups'), async () => {
      const m = bed.members(bed.vip4);
      const gone = m[2] as string;
      assert.deepEqual(await bed.adapter.groupMembers(bed.vip4), m);
      await bed.adapter.removeGroupMember(bed.vip4, gone);
      try {
        assert.deepEqual(
          await bed.adapter.groupMembers(bed.vip4),
          m.filter((n) => n !== gone),
        );
        const flows = Array.from({ length: 60 }, (_, i) => bed.flow(i));
        const ecmp = bed.ecmp?.(flows);
        if (ecmp !== undefined) assert.ok(!ecmp.includes(gone), 'nothing is forwarded to the removed member');
        if (bed.adapter.capabilities.resolvesNexthop) {
          const got = await bed.adapter.resolve(flows);
          assert.ok(
            !got.includes(gone) && got.every((g) => g !== undefined),
            'nothing resolves to the removed member',
          );
          if (ecmp !== undefined) assert.deepEqual(got, ecmp);
        }
      } finally {
        await bed.adapter.addGroupMember(bed.vip4, gone);
      }
      assert.deepEqual(new Set(await bed.adapter.groupMembers(bed.vip4)), new Set(m));
    });

    test('movedByAdd predicts exactly the flows an added member takes over', opts('movedByAdd'), async () => {
      for (const [vip, spare] of bed.spares) {
        const flows = Array.from({ length: 300 }, (_, i) => bed.flow(i, vip.includes(':')));
        const before = await bed.adapter.resolve(flows);
        const predicted = await bed.adapter.movedByAdd(vip, spare, flows);
        await bed.adapter.addGroupMember(vip, spare);
        try {
          const afterAdd = await bed.adapter.resolve(flows);
          assert.deepEqual(
            predicted,
            flows.map((_, i) => before[i] !== afterAdd[i]),
          );
          assert.ok(
            predicted.some((p) => p) && predicted.some((p) => !p),
            `${vip}: some flows move, not all`,
          );
        } finally {
          await bed.adapter.removeGroupMember(vip, spare);
        }
      }
    });

    test(
      'reads change nothing on the switch: what they find to clean up is removed by the writes',
      opts('reads'),
      async () => {
        const c = bed.adapter.capabilities;
        const rules = Array.from({ length: CAPACITY + 5 }, (_, i) => ({
          flow: bed.flow(1000 + i),
          nexthop: bed.members(bed.vip4)[i % 4] as string,
          idleTimeoutS: i === 0 ? 5 : 300,
        }));
        try {
          // Something for the reads to find: pins past the table (refused or rejected), one idle
          // past its timeout where the switch's clock is simulated, and a stray entry.
          const outcomes = await bed.adapter.installPins(rules.slice(0, 10));
          if (bed.makeStray !== undefined) {
            await until('the pin the stray doubles is programmed', 5000, async () =>
              (await bed.adapter.listPins()).some(
                (p) => key(p.flow) === key(rules[1]?.flow as FlowSpec) && p.programmed,
              ),
            );
            await bed.makeStray(rules[1] as PinRule);
          }
          outcomes.push(...(await bed.adapter.installPins(rules.slice(10))));
          bed.clock?.advance(6_000);
          const before = bed.configWrites();
          const flows = rules.map((r) => r.flow);
          await bed.adapter.resolve(flows);
          const listed = await bed.adapter.listPins();
          await bed.adapter.listPins();
          if (c.readsPins) await bed.adapter.readPins(flows);
          if (c.reportsTableUsage) await bed.adapter.pinTableUsage();
          await bed.adapter.groupMembers(bed.vip4);
          if (c.readsProgrammedGroup) await bed.adapter.groupProgrammed(bed.vip4);
          if (c.knowsServers) await bed.adapter.serverIdentities();
          if (c.predictsMovedFlows)
            for (const [vip, spare] of bed.spares.slice(0, 1))
              await bed.adapter.movedByAdd(vip, spare, flows);
          bed.adapter.problems();
          assert.equal(bed.configWrites() - before, 0, 'no read sent a configuration command');
          assert.ok(
            outcomes.some((o) => !o.ok && o.reason === 'table-full') ||
              listed.some((p) => !p.programmed && p.reason === 'table-full'),
            'what did not fit is refused, or listed as such',
          );
          if (c.nativeIdleTimeout && bed.clock !== undefined)
            assert.equal(
              listed.find((p) => key(p.flow) === key(rules[0]?.flow as FlowSpec))?.reason,
              'idle-timeout',
              'and what timed out',
            );
          // The writes remove them: what is not programmed, then the strays.
          await bed.adapter.removePins(listed.filter((p) => !p.programmed).map((p) => p.flow));
          const strays = await bed.adapter.removeStrays();
          if (bed.makeStray !== undefined) assert.equal(strays, 1);
          assert.ok((await bed.adapter.listPins()).every((p) => p.programmed));
          assert.equal(await bed.adapter.removeStrays(), 0, 'nothing left to remove');
          await bed.adapter.removePins(flows);
          assert.ok(bed.configWrites() > before, 'the writes are seen');
        } finally {
          await bed.adapter.removePins(rules.map((r) => r.flow));
        }
      },
    );

    test(
      'what a capability flag says is missing rejects as unsupported, never retried',
      opts('unsupported'),
      async () => {
        const c = bed.adapter.capabilities;
        const f = [bed.flow(1)];
        const calls: [boolean, () => Promise<unknown>][] = [
          [c.readsPins, () => bed.adapter.readPins(f)],
          [c.reportsTableUsage, () => bed.adapter.pinTableUsage()],
          [c.readsProgrammedGroup, () => bed.adapter.groupProgrammed(bed.vip4)],
          [c.knowsServers, () => bed.adapter.serverIdentities()],
          [c.predictsMovedFlows, () => bed.adapter.movedByAdd(bed.vip4, bed.spares[0]?.[1] ?? '10.0.1.5', f)],
        ];
        for (const [has, call] of calls) {
          if (has) await call();
          else
            await assert.rejects(
              call(),
              (e: Error) => isClass(e, SwitchUnsupportedError) && (e as SwitchError).retryable === false,
            );
        }
      },
    );

    test(
      'a switch that does not answer fails as transport or timeout, retryable, with the switch named',
      opts('unreachable'),
      async () => {
        const other = (bed.unreachable as () => SwitchAdapter)();
        try {
          await assert.rejects(
            other.connect(),
            (e: Error) =>
              isClass(e, SwitchTransportError, SwitchTimeoutError) &&
              (e as SwitchError).retryable &&
              (e as SwitchError).switchName !== '',
          );
        } finally {
          await other.close();
        }
      },
    );

    // Late in the suite: it leaves the switch fenced (the adapter under test its owner, at epoch 7).
    test(
      'fencing as the capability says: after a newer owner takes over, a stale write is refused with nothing changed (refused) or lands under its epoch (timed)',
      opts('fence'),
      async () => {
        const old = bed.adapter;
        const [m0, m1] = bed.members(bed.vip4) as [string, string];
        const rule = (i: number, nexthop: string): PinRule => ({
          flow: bed.flow(i),
          nexthop,
          idleTimeoutS: 300,
        });
        const [p1, p2, p3] = [rule(41, m1), rule(42, m0), rule(43, m1)];
        const listing = async (a: SwitchAdapter): Promise<string[]> =>
          (await a.listPins()).map((p) => `${key(p.flow)}>${canonicalIp(p.nexthop)}@${p.epoch ?? 0n}`).sort();
        await old.fenceTakeover({ epoch: 3n });
        assert.equal((await old.installPins([p1], { epoch: 3n }))[0]?.ok, true);
        const now = await bed.second();
        try {
          await now.fenceTakeover({ epoch: 5n });
          assert.equal((await now.installPins([p2], { epoch: 5n }))[0]?.ok, true);
          const before = await listing(now);
          if (old.capabilities.fencing === 'refused') {
            await assert.rejects(old.installPins([p3], { epoch: 3n }), SwitchFencedError);
            await assert.rejects(old.removePins([p1.flow], { epoch: 3n }), SwitchFencedError);
            await assert.rejects(old.fenceTakeover({ epoch: 4n }), SwitchFencedError);
            assert.deepEqual(await listing(now), before, 'nothing of the stale owner landed');
          } else {
            // No token on the switch: the stale write lands, named with its epoch (the audit's
            // evidence); the bound is the writer's own timing (the reconciler's validUntil).
            assert.equal((await old.installPins([p3], { epoch: 3n }))[0]?.ok, true);
            const after = await listing(now);
            assert.ok(after.includes(`${key(p3.flow)}>${canonicalIp(m1)}@3`), after.join(', '));
            assert.ok(after.includes(`${key(p2.flow)}>${canonicalIp(m0)}@5`), after.join(', '));
          }
        } finally {
          // The adapter under test takes the switch back, and cleans up.
          await old.fenceTakeover({ epoch: 7n });
          await old.listPins();
          await old.removePins([p1.flow, p2.flow, p3.flow], { epoch: 7n });
        }
        assert.deepEqual(
          (await old.listPins()).filter((p) => [41, 42, 43].some((i) => key(bed.flow(i)) === key(p.flow))),
          [],
        );
      },
    );

    test('refused credentials fail as auth, not retried', opts('credentials'), async () => {
      const other = (bed.badCredentials as () => SwitchAdapter)();
      try {
        await assert.rejects(
          other.connect(),
          (e: Error) => isClass(e, SwitchAuthError) && (e as SwitchError).retryable === false,
        );
      } finally {
        await other.close();
      }
    });
  });
}
