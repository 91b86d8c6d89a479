// flowpin's configuration: one YAML file, validated once at load with errors that name the
// file and key, secrets taken from the environment (`env:NAME`) or a file (`file:/path`),
// then frozen. Runtime state lives elsewhere.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { canonicalIp } from '../mirror-receiver/addr.js';
import { DEFAULT_RECEIVE_BUFFER } from '../mirror-receiver/sources/gre-udp.js';
import { AddressError, familyOf, hostAddress } from './address.js';
import { ConfigError, deepFreeze, Reader } from './validate.js';
import type { PinMode } from './pin-policy.js';
import type { GroupCommandTemplates, GroupTemplate } from '../switch-adapters/arista-eapi/adapter.js';
import type { GroupPaths } from '../switch-adapters/gnmi/openconfig.js';
import { checkPrefix } from '../switch-adapters/linux/exec.js';

export interface VipConfig {
  address: string;
  nexthops: string[];
}

export interface EapiConfig {
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
  maxConcurrent: number;
  caFile: string | undefined;
  insecureSkipVerify: boolean;
  resolveBatchSize: number;
  pinBatchSize: number;
  groupCommands: GroupCommandTemplates | undefined;
  /** How VIP groups are changed: static-ecmp, bgp-route-map (with its names), or none. */
  groupTemplate: GroupTemplate | undefined;
  enableSecret: string | undefined;
  /** 'session' (configuration session, committed whole) or 'cleanup' (line by line, half-built flows removed). */
  atomicity: 'session' | 'cleanup';
}

export interface GnmiConfig {
  /** host:port of the gNMI target. */
  address: string;
  username: string | undefined;
  password: string | undefined;
  timeoutMs: number;
  caFile: string | undefined;
  insecure: boolean;
  tlsServerName: string | undefined;
  networkInstance: string;
  policyId: string;
  ingressInterfaces: string[];
  pinBatchSize: number;
  sampleIntervalMs: number;
  /** Bound on a group change reaching forwarding (a removal cannot be read back over gNMI). */
  groupProgramDelayMs: number;
  requiredModels: string[] | undefined;
  pinTable: { component: string; resource: string } | undefined;
  group: GroupPaths | undefined;
}

/** The Linux router adapter's settings (switch-adapters/linux, docs/linux.md). */
export interface LinuxConfig {
  /** Words before every `ip`/`nft` command, e.g. [ip, netns, exec, router1] or [ssh, router1]. */
  prefix: string[];
  clientInterfaces: string[];
  mirrorDevice: string | undefined;
  buckets: number;
  idBase: number;
  tableBase: number;
  timeoutMs: number;
  resolveBatchSize: number;
  pinBatchSize: number;
  probeFlows: number;
  probeTimeoutMs: number;
}

export interface SwitchConfig {
  name: string;
  adapter: 'arista-eapi' | 'gnmi' | 'sim' | 'linux';
  /** Outer source addresses of this switch's mirror frames. */
  mirrorSources: string[];
  /** GRE key or ERSPAN session id that identify this switch's frames (instead of the address). */
  greKey: number | undefined;
  sessionId: number | undefined;
  pinTableSize: number;
  /** Whether pinTableSize was set (otherwise the eAPI adapter takes the platform's size). */
  pinTableSizeSet: boolean;
  eapi: EapiConfig | undefined;
  gnmi: GnmiConfig | undefined;
  linux?: LinuxConfig | undefined;
  vips: VipConfig[];
}

export interface FlowpinConfig {
  file: string;
  api: { host: string; port: number; token: string | undefined };
  mirror: {
    /** receiveBufferBytes: SO_RCVBUF asked for (the kernel caps it at net.core.rmem_max; see docs/architecture.md). */
    udp: { host: string; port: number; receiveBufferBytes: number }[];
    raw: boolean;
    /** A switch with no mirrored SYN for this long is silent: not ready, changes need consent. */
    silenceS: number;
    /** A switch whose SYN rate fell below this share of its usual rate has a collapsed mirror. */
    collapseRatio: number;
  };
  pinMode: PinMode;
  pinIdleTimeoutS: number;
  flowTable: { maxFlows: number; maxAgeS: number };
  resolveQueue: number;
  settleMs: number;
  barrierTimeoutMs: number;
  resyncIntervalS: number;
  /** Longest wait between retries toward a failing switch, ms. */
  retryMaxMs: number;
  stateFile: string | undefined;
  persistIntervalS: number;
  switches: SwitchConfig[];
}

/** Resolves `env:NAME` and `file:/path` secret references; other text is the value itself. */
export function secret(r: Reader, key: string, def?: string): string {
  const v = r.string(key, def);
  if (v.startsWith('env:')) {
    const name = v.slice(4);
    const val = process.env[name];
    if (val === undefined || val === '') r.fail(key, `environment variable ${name} is not set`);
    return val;
  }
  if (v.startsWith('file:')) {
    try {
      return readFileSync(v.slice(5), 'utf8').trim();
    } catch (err) {
      r.fail(key, `cannot read secret file ${v.slice(5)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return v;
}

const ipCheck = (v: string): string | undefined => (isIP(v) === 0 ? `'${v}' is not an IP address` : undefined);
/** A unicast host address for a switch (see address.ts), or what is wrong with it. */
const hostCheck = (v: string): string | undefined => {
  try {
    hostAddress(v);
    return undefined;
  } catch (err) {
    return err instanceof AddressError ? err.message : `'${v}' is not an IP address`;
  }
};
const ipList = (r: Reader, key: string, def: unknown[] | undefined): string[] =>
  r.list(key, def, (v, at) => {
    if (typeof v !== 'string' || isIP(v) === 0) throw new ConfigError(r.file, at, `must be an IP address, got ${JSON.stringify(v)}`);
    return canonicalIp(v);
  });

function readSwitch(r: Reader): SwitchConfig {
  const adapter = r.oneOf('adapter', ['arista-eapi', 'gnmi', 'sim', 'linux'] as const, 'arista-eapi');
  const gnmi = adapter === 'gnmi' ? readGnmi(r) : undefined;
  const linux = adapter === 'linux' ? readLinux(r) : undefined;
  let eapi: EapiConfig | undefined;
  if (adapter === 'arista-eapi') {
    const e = r.object('eapi');
    const url = e.checked('url', undefined, (v) => (/^https?:\/\/[^/]+/.test(v) ? undefined : `must be an http:// or https:// URL, got '${v}'`));
    let groupCommands: GroupCommandTemplates | undefined;
    if (e.has('groupCommands')) {
      const g = e.object('groupCommands');
      const lines = (k: string): string[] =>
        g.list(k, undefined, (v, at) => {
          if (typeof v !== 'string' || v === '') throw new ConfigError(r.file, at, 'must be a command line');
          return v;
        });
      groupCommands = { add: lines('add'), remove: lines('remove') };
      g.done();
    }
    let groupTemplate: GroupTemplate | undefined;
    if (e.has('groupTemplate')) {
      const kind = e.oneOf('groupTemplate', ['static-ecmp', 'bgp-route-map'] as const, 'static-ecmp');
      if (kind === 'static-ecmp') groupTemplate = { kind };
      else {
        const b = e.object('bgp');
        groupTemplate = { kind, asn: b.number('asn', undefined, { min: 1, max: 4294967295, integer: true }), peerGroup: b.string('peerGroup'), routeMap: b.string('routeMap', 'FLOWPIN-DRAIN-IN'), ...(b.has('prefixList') ? { prefixList: b.string('prefixList') } : {}) };
        b.done();
      }
      if (groupCommands !== undefined) e.fail('groupCommands', 'give either groupTemplate or groupCommands');
    }
    eapi = {
      url: url.endsWith('/command-api') ? url : `${url.replace(/\/$/, '')}/command-api`,
      username: e.string('username', 'admin'),
      password: secret(e, 'password'),
      timeoutMs: e.number('timeoutMs', 10_000, { min: 1, integer: true }),
      maxConcurrent: e.number('maxConcurrent', 4, { min: 1, max: 64, integer: true }),
      caFile: e.optionalString('caFile'),
      insecureSkipVerify: e.boolean('insecureSkipVerify', false),
      resolveBatchSize: e.number('resolveBatchSize', 200, { min: 1, max: 5000, integer: true }),
      pinBatchSize: e.number('pinBatchSize', 100, { min: 1, max: 1000, integer: true }),
      groupCommands,
      groupTemplate,
      enableSecret: e.has('enableSecret') ? secret(e, 'enableSecret') : undefined,
      atomicity: e.oneOf('atomicity', ['session', 'cleanup'] as const, 'session'),
    };
    e.done();
  }
  const seenVips = new Set<string>();
  const vips = r.list('vips', undefined, (_v, at, reader) => {
    const v = reader();
    const address = hostAddress(v.checked('address', undefined, hostCheck));
    if (seenVips.has(address)) throw new ConfigError(r.file, `${at}.address`, `VIP ${address} appears twice`);
    seenVips.add(address);
    const seenNh = new Set<string>();
    const nexthops = v.list('nexthops', [], (n, nat) => {
      const problem = typeof n !== 'string' || isIP(n.split('%')[0] ?? '') === 0 ? `must be an IP address, got ${JSON.stringify(n)}` : hostCheck(n);
      if (problem !== undefined) throw new ConfigError(r.file, nat, problem);
      const nh = hostAddress(n as string);
      if (familyOf(nh) !== familyOf(address)) throw new ConfigError(r.file, nat, `${nh} is an IPv${familyOf(nh)} address; the VIP ${address} is IPv${familyOf(address)}`);
      if (nh === address) throw new ConfigError(r.file, nat, `${nh} is the VIP itself`);
      if (seenNh.has(nh)) throw new ConfigError(r.file, nat, `nexthop ${nh} appears twice`);
      seenNh.add(nh);
      return nh;
    });
    v.done();
    return { address, nexthops };
  });
  if (vips.length === 0) r.fail('vips', 'needs at least one VIP');
  const defaultSource = eapi ? new URL(eapi.url).hostname.replace(/^\[|\]$/g, '') : gnmi ? gnmi.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '') : undefined;
  const cfg: SwitchConfig = {
    name: r.checked('name', undefined, (v) => (/^[A-Za-z0-9_.-]+$/.test(v) ? undefined : `may hold letters, digits, '.', '_' and '-' only, got '${v}'`)),
    adapter,
    mirrorSources: ipList(r, 'mirrorSources', defaultSource !== undefined && isIP(defaultSource) ? [defaultSource] : []),
    greKey: r.has('greKey') ? r.number('greKey', undefined, { min: 0, max: 0xffffffff, integer: true }) : (r.optionalString('greKey'), undefined),
    sessionId: r.has('sessionId') ? r.number('sessionId', undefined, { min: 0, max: 1023, integer: true }) : (r.optionalString('sessionId'), undefined),
    pinTableSizeSet: r.has('pinTableSize'),
    pinTableSize: r.number('pinTableSize', 1500, { min: 1, integer: true }),
    eapi,
    gnmi,
    ...(linux === undefined ? {} : { linux }),
    vips,
  };
  r.done();
  if (cfg.mirrorSources.length === 0 && cfg.greKey === undefined && cfg.sessionId === undefined) r.fail('mirrorSources', 'needed: the address the switch mirrors from (or a greKey / sessionId)');
  return cfg;
}

/** The `gnmi` section of a switch (adapter: gnmi). */
function readGnmi(r: Reader): GnmiConfig {
  const g = r.object('gnmi');
  const address = g.checked('address', undefined, (v) => (/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(v) && Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535 ? undefined : `must be host:port (IPv6 in brackets), got '${v}'`));
  const strings = (k: string, def: unknown[] | undefined): string[] =>
    g.list(k, def, (v, at) => {
      if (typeof v !== 'string' || v === '') throw new ConfigError(r.file, at, 'must be a non-empty string');
      return v;
    });
  const caFile = g.optionalString('caFile');
  const insecure = g.boolean('insecure', false);
  if (caFile === undefined && !insecure) g.fail('caFile', 'needed for TLS (or set insecure: true for plaintext gRPC)');
  if (caFile !== undefined && insecure) g.fail('insecure', 'cannot be true together with caFile');
  const username = g.optionalString('username');
  const password = g.has('password') ? secret(g, 'password') : (g.optionalString('password'), undefined);
  let pinTable: GnmiConfig['pinTable'];
  if (g.has('pinTable')) {
    const p = g.object('pinTable');
    pinTable = { component: p.string('component'), resource: p.string('resource') };
    p.done();
  }
  let group: GroupPaths | undefined;
  if (g.has('group')) {
    const p = g.object('group');
    group = {
      list: p.checked('list', undefined, (v) => (v.startsWith('/') && v.includes('{vip}') ? undefined : `must be an absolute path with {vip}, got '${v}'`)),
      key: p.string('key'),
      addressLeaf: p.string('addressLeaf'),
      programmedLeaf: p.string('programmedLeaf'),
    };
    p.done();
  }
  const cfg: GnmiConfig = {
    address,
    username,
    password,
    timeoutMs: g.number('timeoutMs', 10_000, { min: 1, integer: true }),
    caFile,
    insecure,
    tlsServerName: g.optionalString('tlsServerName'),
    networkInstance: g.string('networkInstance', 'default'),
    policyId: g.string('policyId', 'flowpin'),
    ingressInterfaces: strings('ingressInterfaces', undefined),
    pinBatchSize: g.number('pinBatchSize', 200, { min: 1, max: 5000, integer: true }),
    sampleIntervalMs: g.number('sampleIntervalMs', 10_000, { min: 10, integer: true }),
    groupProgramDelayMs: g.number('groupProgramDelayMs', 500, { min: 0, max: 600_000 }),
    requiredModels: g.has('requiredModels') ? strings('requiredModels', undefined) : undefined,
    pinTable,
    group,
  };
  if (cfg.ingressInterfaces.length === 0) g.fail('ingressInterfaces', 'needs at least one interface to apply the policy to');
  g.done();
  return cfg;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function readLinux(r: Reader): LinuxConfig {
  const l = r.object('linux');
  const words = (k: string, def: unknown[] | undefined, check: (w: string) => string | undefined): string[] =>
    l.list(k, def, (v, at) => {
      const problem = typeof v !== 'string' || v === '' ? 'must be a non-empty string' : check(v);
      if (problem !== undefined) throw new ConfigError(r.file, at, problem);
      return v as string;
    });
  const ifname = (w: string): string | undefined => (IFNAME.test(w) ? undefined : `'${w}' is not an interface name`);
  const out: LinuxConfig = {
    prefix: words('prefix', [], (w) => checkPrefix([w])),
    clientInterfaces: words('clientInterfaces', undefined, ifname),
    mirrorDevice: l.has('mirrorDevice') ? l.checked('mirrorDevice', undefined, ifname) : (l.optionalString('mirrorDevice'), undefined),
    buckets: l.number('buckets', 64, { min: 2, max: 4096, integer: true }),
    idBase: l.number('idBase', 7000, { min: 1, max: 0x7fffffff - 10_000, integer: true }),
    tableBase: l.number('tableBase', 7000, { min: 256, max: 0x7fffffff - 300, integer: true }),
    timeoutMs: l.number('timeoutMs', 30_000, { min: 1, integer: true }),
    resolveBatchSize: l.number('resolveBatchSize', 10_000, { min: 1, max: 100_000, integer: true }),
    pinBatchSize: l.number('pinBatchSize', 5000, { min: 1, max: 100_000, integer: true }),
    probeFlows: l.number('probeFlows', 8, { min: 1, max: 256, integer: true }),
    probeTimeoutMs: l.number('probeTimeoutMs', 10_000, { min: 1, integer: true }),
  };
  if (out.clientInterfaces.length === 0) l.fail('clientInterfaces', 'needs at least one interface');
  l.done();
  return out;
}

/** Reads and validates a configuration document; the result is frozen. */
export function readConfig(r: Reader): FlowpinConfig {
  const api = r.object('api');
  const apiCfg = { host: api.checked('host', '127.0.0.1', ipCheck), port: api.port('port', 8080), token: api.has('token') ? secret(api, 'token') : (api.optionalString('token'), undefined) };
  api.done();
  const m = r.object('mirror');
  const udp = m.list('udp', [{ host: '127.0.0.1', port: 4754, receiveBufferBytes: DEFAULT_RECEIVE_BUFFER }], (_v, _at, reader) => {
    const u = reader();
    const out = { host: u.checked('host', '0.0.0.0', ipCheck), port: u.port('port', 4754), receiveBufferBytes: u.number('receiveBufferBytes', DEFAULT_RECEIVE_BUFFER, { min: 1, integer: true }) };
    u.done();
    return out;
  });
  const mirror = { udp, raw: m.boolean('raw', false), silenceS: m.number('silenceS', 60, { min: 1 }), collapseRatio: m.number('collapseRatio', 0.1, { min: 0, max: 1 }) };
  m.done();
  const ft = r.object('flowTable');
  const flowTable = { maxFlows: ft.number('maxFlows', 1_000_000, { min: 1, integer: true }), maxAgeS: ft.number('maxAgeS', 3600, { min: 1 }) };
  ft.done();
  const cfg: FlowpinConfig = {
    file: r.file,
    api: apiCfg,
    mirror,
    pinMode: r.oneOf('pinMode', ['on-change', 'always'] as const, 'on-change'),
    pinIdleTimeoutS: r.number('pinIdleTimeoutS', 300, { min: 1, max: 86400, integer: true }),
    flowTable,
    resolveQueue: r.number('resolveQueue', 100_000, { min: 1, integer: true }),
    settleMs: r.number('settleMs', 200, { min: 0 }),
    barrierTimeoutMs: r.number('barrierTimeoutMs', 30_000, { min: 1 }),
    resyncIntervalS: r.number('resyncIntervalS', 30, { min: 0.05 }),
    retryMaxMs: r.number('retryMaxMs', 30_000, { min: 10 }),
    stateFile: r.optionalString('stateFile'),
    persistIntervalS: r.number('persistIntervalS', 10, { min: 0.05 }),
    switches: r.list('switches', undefined, (_v, _at, reader) => readSwitch(reader())),
  };
  r.done();
  const names = new Set<string>();
  const sources = new Map<string, string>();
  for (const s of cfg.switches) {
    if (names.has(s.name)) throw new ConfigError(r.file, 'switches', `switch name '${s.name}' appears twice`);
    names.add(s.name);
    for (const m of s.mirrorSources) {
      const other = sources.get(m);
      // Frames are told apart by their source: one address cannot name two switches.
      if (other !== undefined) throw new ConfigError(r.file, 'switches', `mirror source ${m} is given for both ${other} and ${s.name}`);
      sources.set(m, s.name);
    }
  }
  if (cfg.switches.length === 0) throw new ConfigError(r.file, 'switches', 'needs at least one switch');
  return deepFreeze(cfg);
}

export function loadConfig(file: string): FlowpinConfig {
  return readConfig(Reader.fromFile(file));
}
