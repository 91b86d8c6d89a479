// A simulator scenario: the switch, its VIPs and servers, the traffic, where mirrored SYNs
// go and where the management interfaces listen. Loaded from YAML (every key optional,
// validated with errors that name the key), then frozen.

import { isIP } from 'node:net';
import { canonicalIp } from '../lib/addr.js';
import { ConfigError, deepFreeze, type Reader } from '../lib/validate.js';
import { FieldReader } from './scenario-reader.js';
import { parsePrefix } from '../lib/prefix.js';
import type { LifetimeDistribution } from './rng.js';
import type { SimSwitchOptions } from './sim-switch.js';

export interface Scenario {
  switch: Omit<SimSwitchOptions, 'now'>;
  vips: { address: string; nexthops: string[]; port: number }[];
  /** Servers attached but in no group yet (to add later). */
  spareServers: string[];
  traffic: {
    enabled: boolean;
    connectionsPerSecond: number;
    lifetime: LifetimeDistribution;
    packetIntervalMs: number;
    clientBase: string;
    clientCount: number;
    maxConcurrent: number;
    seed: number;
    /** The client's round trip (ms): the handshake's ACK, and the final ACK after the server's FIN. */
    clientRttMs: number;
    /** How connections end (shares of all; the rest: the client closes, the server answers with its FIN). */
    close: {
      halfCloseShare: number;
      halfCloseS: number;
      serverCloseShare: number;
      rstShare: number;
      serverRstShare: number;
    };
    /** Long-lived idle connections: a share whose packets come `idleGapS` apart. */
    idleShare: number;
    idleGapS: number;
    /** Traffic before the mirror's collector is told where to send (connections flowpin never saw open). */
    preexistingS: number;
  };
  mirror: {
    enabled: boolean;
    host: string;
    port: number;
    transport: 'udp' | 'raw';
    /** The switch's address as the collector sees it. */ sourceAddress: string;
    /** Also mirror the servers' SYN-ACKs (the reply session), as ERSPAN II with the port index or type I. */
    replies: boolean;
    replyEncap: 'erspan2' | 'erspan1';
    /** The reply session also mirrors the servers' RSTs (RST from a VIP). */
    replyRst: boolean;
    /** The reply session also mirrors the servers' FINs (FIN from a VIP). */
    replyFin: boolean;
    /**
     * More collectors on the same host (UDP transport): each gets every mirrored frame, as from
     * one more monitor session of the switch (several flowpin instances, each its own mirror).
     */
    alsoPorts: number[];
    /**
     * More collectors on other hosts (UDP transport), each `{host, port}`: sent from the address the
     * kernel picks for the route (a collector in another network namespace), not from sourceAddress.
     */
    alsoTo: { host: string; port: number }[];
  };
  eapi: { enabled: boolean; host: string; port: number; username: string; password: string };
  gnmi: {
    enabled: boolean;
    host: string;
    port: number;
    username: string | undefined;
    password: string | undefined;
  };
  status: { enabled: boolean; host: string; port: number };
}

const ipCheck = (v: string): string | undefined =>
  isIP(v) === 0 ? `'${v}' is not an IP address` : undefined;
const prefixCheck = (v: string): string | undefined => {
  try {
    parsePrefix(v);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
};

function readLifetime(r: FieldReader): LifetimeDistribution {
  const kind = r.oneOf(
    'kind',
    ['lognormal', 'pareto', 'exponential', 'fixed', 'heavy-tail'] as const,
    'lognormal',
  );
  let d: LifetimeDistribution;
  switch (kind) {
    case 'lognormal':
      d = {
        kind,
        medianS: r.number('medianS', 30, { min: 0.001 }),
        sigma: r.number('sigma', 1.2, { min: 0 }),
        maxS: r.number('maxS', 3600, { min: 0.001 }),
      };
      break;
    case 'pareto':
      d = {
        kind,
        minS: r.number('minS', 5, { min: 0.001 }),
        alpha: r.number('alpha', 1.2, { min: 0.01 }),
        maxS: r.number('maxS', 3600, { min: 0.001 }),
      };
      break;
    case 'exponential':
      d = {
        kind,
        meanS: r.number('meanS', 30, { min: 0.001 }),
        maxS: r.number('maxS', 3600, { min: 0.001 }),
      };
      break;
    case 'fixed':
      d = { kind, s: r.number('s', 30, { min: 0.001 }) };
      break;
    case 'heavy-tail':
      d = {
        kind,
        medianS: r.number('medianS', 5, { min: 0.001 }),
        sigma: r.number('sigma', 1, { min: 0 }),
        longShare: r.number('longShare', 0.05, { min: 0, max: 1 }),
        longMinS: r.number('longMinS', 300, { min: 0.001 }),
        alpha: r.number('alpha', 1.1, { min: 0.01 }),
        maxS: r.number('maxS', 4 * 3600, { min: 0.001 }),
      };
      break;
  }
  r.done();
  return d;
}

function readClose(r: FieldReader): Scenario['traffic']['close'] {
  const c = {
    halfCloseShare: r.number('halfCloseShare', 0, { min: 0, max: 1 }),
    halfCloseS: r.number('halfCloseS', 2, { min: 0 }),
    serverCloseShare: r.number('serverCloseShare', 0, { min: 0, max: 1 }),
    rstShare: r.number('rstShare', 0, { min: 0, max: 1 }),
    serverRstShare: r.number('serverRstShare', 0, { min: 0, max: 1 }),
  };
  r.done();
  return c;
}

/** Reads a scenario; the document may be empty (all defaults). */
export function readScenario(src: Reader): Scenario {
  const r = FieldReader.fromObject(src.file, src.doc);
  const sw = r.object('switch');
  const uplink = sw.object('uplink');
  const s: Scenario['switch'] = {
    hostname: sw.string('hostname', 'sim1'),
    hashSeed: sw.number('hashSeed', 0x5eed, { min: 0, max: 0xffffffff, integer: true }),
    ecmpMode: sw.oneOf('ecmpMode', ['resilient', 'mod-n'] as const, 'resilient'),
    bucketCount: sw.number('bucketCount', 64, { min: 1, max: 65536, integer: true }),
    pinCapacity: sw.number('pinCapacity', 1500, { min: 0, max: 1_000_000, integer: true }),
    uplink: {
      interface: uplink.checked('interface', 'Ethernet47', (v) =>
        /^Ethernet\d+$/.test(v)
          ? undefined
          : `must be an Ethernet interface name like Ethernet47, got '${v}'`,
      ),
      nexthop: uplink.checked('nexthop', '10.0.0.254', ipCheck),
      prefixes: uplink.list('prefixes', ['10.100.0.0/16', '2001:db8:100::/48'], (v, at) => {
        if (typeof v !== 'string' || prefixCheck(v) !== undefined)
          throw new ConfigError(r.file, at, `must be an IP prefix, got ${JSON.stringify(v)}`);
        return v;
      }),
    },
    mirrorFinRst: sw.boolean('mirrorFinRst', false),
    programDelayMs: sw.number('programDelayMs', 0, { min: 0, max: 600_000 }),
    reservedPinEntries: sw.number('reservedPinEntries', 0, { min: 0, max: 1_000_000, integer: true }),
  };
  uplink.done();
  sw.done();
  const vips = r.list(
    'vips',
    [{ address: '192.0.2.80', nexthops: ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'] }],
    (_v, _at, reader) => {
      const v = reader();
      const out = {
        address: canonicalIp(v.checked('address', undefined, ipCheck)),
        nexthops: v.list('nexthops', undefined, (n, at) => {
          if (typeof n !== 'string' || isIP(n) === 0)
            throw new ConfigError(r.file, at, `must be an IP address, got ${JSON.stringify(n)}`);
          return canonicalIp(n);
        }),
        port: v.port('port', 443),
      };
      v.done();
      if (out.nexthops.length === 0) v.fail('nexthops', 'needs at least one nexthop');
      return out;
    },
  );
  const spareServers = r.list('spareServers', ['10.0.1.5'], (n, at) => {
    if (typeof n !== 'string' || isIP(n) === 0)
      throw new ConfigError(r.file, at, `must be an IP address, got ${JSON.stringify(n)}`);
    return canonicalIp(n);
  });
  const t = r.object('traffic');
  const traffic: Scenario['traffic'] = {
    enabled: t.boolean('enabled', true),
    connectionsPerSecond: t.number('connectionsPerSecond', 20, { min: 0.001, max: 1_000_000 }),
    lifetime: readLifetime(t.object('lifetime')),
    packetIntervalMs: t.number('packetIntervalMs', 1000, { min: 1 }),
    clientBase: t.checked('clientBase', '10.100.0.1', ipCheck),
    clientCount: t.number('clientCount', 10_000, { min: 1, max: 16_000_000, integer: true }),
    maxConcurrent: t.number('maxConcurrent', 100_000, { min: 1, integer: true }),
    seed: t.number('seed', 1, { min: 0, max: 0xffffffff, integer: true }),
    clientRttMs: t.number('clientRttMs', 20, { min: 0, max: 60_000 }),
    close: readClose(t.object('close')),
    idleShare: t.number('idleShare', 0, { min: 0, max: 1 }),
    idleGapS: t.number('idleGapS', 600, { min: 0.001 }),
    preexistingS: t.number('preexistingS', 0, { min: 0, max: 86_400 }),
  };
  t.done();
  const c = traffic.close;
  if (c.halfCloseShare + c.serverCloseShare + c.rstShare + c.serverRstShare > 1)
    throw new ConfigError(
      r.file,
      'traffic.close',
      'the shares of half-closes, server closes and resets add up to more than 1',
    );
  const m = r.object('mirror');
  const mirror: Scenario['mirror'] = {
    enabled: m.boolean('enabled', true),
    host: m.checked('host', '127.0.0.1', ipCheck),
    port: m.port('port', 4754),
    transport: m.oneOf('transport', ['udp', 'raw'] as const, 'udp'),
    sourceAddress: m.checked('sourceAddress', '127.0.0.2', ipCheck),
    replies: m.boolean('replies', false),
    replyEncap: m.oneOf('replyEncap', ['erspan2', 'erspan1'] as const, 'erspan2'),
    replyRst: m.boolean('replyRst', false),
    replyFin: m.boolean('replyFin', false),
    alsoPorts: m.ports('alsoPorts'),
    alsoTo: m.list('alsoTo', [], (_item, _at, reader) => {
      const t = reader();
      const to = { host: t.checked('host', undefined, ipCheck), port: t.port('port', undefined) };
      t.done();
      return to;
    }),
  };
  m.done();
  const e = r.object('eapi');
  const eapi: Scenario['eapi'] = {
    enabled: e.boolean('enabled', true),
    host: e.checked('host', '127.0.0.1', ipCheck),
    port: e.port('port', 8880),
    username: e.string('username', 'admin'),
    password: e.string('password', process.env['FLOWPIN_SIM_PASSWORD'] ?? 'flowpin'),
  };
  e.done();
  const g = r.object('gnmi');
  const gnmi: Scenario['gnmi'] = {
    enabled: g.boolean('enabled', true),
    host: g.checked('host', '127.0.0.1', ipCheck),
    port: g.port('port', 6030),
    username: g.optionalString('username'),
    password: g.optionalString('password'),
  };
  g.done();
  const st = r.object('status');
  const status: Scenario['status'] = {
    enabled: st.boolean('enabled', true),
    host: st.checked('host', '127.0.0.1', ipCheck),
    port: st.port('port', 8881),
  };
  st.done();
  r.done();
  for (const v of vips)
    for (const n of v.nexthops)
      if (spareServers.includes(n))
        throw new ConfigError(r.file, 'spareServers', `${n} is already a nexthop of ${v.address}`);
  return deepFreeze({ switch: s, vips, spareServers, traffic, mirror, eapi, gnmi, status });
}
