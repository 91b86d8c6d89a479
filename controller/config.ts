// flowpin's configuration: one YAML file checked against its schema (config-schema.ts), then
// against the rules a schema cannot say (addresses through address.ts, URLs, duplicates,
// referenced files, keys that go together), with every error naming the file and the key;
// secrets taken from the environment (`env:NAME`) or a file (`file:/path`); then frozen.
// Runtime state lives elsewhere.

import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { canonicalIp } from '../lib/addr.js';
import { AddressError, familyOf, hostAddress } from './address.js';
import { ConfigSchema, type ConfigDoc, type SwitchDoc } from './config-schema.js';
import { checkSchema, ConfigError, deepFreeze, fileProblem, keyOf, Reader } from '../lib/validate.js';
import type { PinMode } from './pin-policy.js';
import type { SettingsReader } from '../switch-adapters/kind.js';
import { ADAPTER_KINDS, adapterKind } from '../switch-adapters/registry.js';
import { normalMac, type StaticServer } from './server-identity.js';
import type { ResolutionMode } from './switch-runtime.js';
import { readHa, type HaConfig } from './ha/config.js';

export interface VipConfig {
  address: string;
  nexthops: string[];
  /** Members that may be out (draining or drained, not removed) at once. */
  maxUnavailable: number;
}

export interface SwitchConfig {
  name: string;
  /** The kind of switch (switch-adapters/registry.ts). */
  adapter: string;
  /** Outer source addresses of this switch's mirror frames. */
  mirrorSources: string[];
  /** GRE key or ERSPAN session id that identify this switch's frames (instead of the address). */
  greKey: number | undefined;
  sessionId: number | undefined;
  pinTableSize: number;
  /**
   * Whether pinTableSize was set (otherwise each kind takes its own default: the eAPI adapter the platform's
   * size).
   */
  pinTableSizeSet: boolean;
  /** The kind's own settings, from its section (`eapi`, `gnmi`, `linux`) as its `read` returned them. */
  settings: unknown;
  vips: VipConfig[];
  /** The switch also mirrors the servers' replies (SYN-ACK from a VIP, on the server-facing ports). */
  mirrorReplies: boolean;
  /** How a flow's nexthop is learnt: both where replies are mirrored, lookup otherwise. */
  resolution: ResolutionMode;
  /** How long a SYN waits for its reply before the look-up fallback (or being counted unresolved), ms. */
  replyTimeoutMs: number;
  /** Re-read the switch's server MACs and ports this often, s. */
  identityRefreshS: number;
  /** Static server identities (MAC and/or mirror port index per nexthop), over what the switch reports. */
  servers: StaticServer[];
  /** No connection to this switch's VIPs is older than this (epoch ms), where known. */
  connectionsSince: number | undefined;
  /** Which connection ends the mirror carries: auto (learnt), or as the switch is configured. */
  mirrorEnds: 'auto' | 'both-ways' | 'client-side' | 'syn-only';
}

/** An API token and what it may do: `read` (GET calls) or `operator` (GET and changes). */
export interface ApiToken {
  role: 'read' | 'operator';
  token: string;
  /** Where it came from (a key or an environment variable), for messages; never the token. */
  from: string;
  /**
   * Who holds it, as change records and the audit log name it: `name` where given, else its key
   * (`api.token`, `api.tokens[N]`), `env` for FLOWPIN_TOKEN and `env-read` for FLOWPIN_READ_TOKEN.
   */
  name: string;
}

export interface ApiConfig {
  host: string;
  port: number;
  /** The operator token of `api.token` (or FLOWPIN_TOKEN), if any. */
  token: string | undefined;
  /** Every token: api.token, api.tokens[*].file, FLOWPIN_TOKEN, FLOWPIN_READ_TOKEN. */
  tokens: ApiToken[];
  /** Reads need a token when a `read` token is configured; otherwise reads are open. */
  readsNeedToken: boolean;
  requestTimeoutMs: number;
}

export interface FlowpinConfig {
  file: string;
  api: ApiConfig;
  /** Things that work but should be looked at (e.g. a token file others may read), for the log. */
  warnings: string[];
  mirror: {
    /**
     * receiveBufferBytes: SO_RCVBUF asked for (the kernel caps it at net.core.rmem_max; see
     * docs/architecture.md).
     */
    udp: { host: string; port: number; receiveBufferBytes: number; reader: 'auto' | 'recvmmsg' | 'dgram' }[];
    raw: boolean;
    /** A switch with no mirrored SYN for this long is silent: not ready, changes need consent. */
    silenceS: number;
    /** A switch whose SYN rate fell below this share of its usual rate has a collapsed mirror. */
    collapseRatio: number;
  };
  pinMode: PinMode;
  pinIdleTimeoutS: number;
  /**
   * maxAgeS: the connection lifetime (a connection not seen for this long is taken as ended; the warm-up
   * lasts this long).
   */
  flowTable: { maxFlows: number; maxAgeS: number };
  /** Connections expected in a change window count against a change's bound only above windowFlows. */
  consent: { windowFlows: number };
  /** Not ready while more than maxShedShare of SYNs is shed. */
  readiness: { maxShedShare: number };
  resolveQueue: number;
  settleMs: number;
  barrierTimeoutMs: number;
  resyncIntervalS: number;
  /** Longest wait between retries toward a failing switch, ms. */
  retryMaxMs: number;
  stateFile: string | undefined;
  persistIntervalS: number;
  /** Several instances coordinated through etcd; undefined: flowpin runs alone. */
  ha: HaConfig | undefined;
  switches: SwitchConfig[];
}

type Path = readonly (string | number)[];

/** The loader's position: the file, and a way to fail at a key. */
/** Errors at a key of one file; what a switch kind's `read` checks its settings with. */
class At implements SettingsReader {
  constructor(
    readonly file: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}
  fail(path: Path, problem: string): never {
    throw new ConfigError(this.file, keyOf(path), problem);
  }
  secret(path: Path, v: string): string {
    return secret(this, path, v);
  }
  readableFile(path: Path, file: string): string {
    return readableFile(this, path, file);
  }
}

/** Resolves `env:NAME` and `file:/path` secret references; other text is the value itself. */
function secret(at: At, path: Path, v: string): string {
  if (v.startsWith('env:')) {
    const name = v.slice(4);
    const val = at.env[name];
    if (val === undefined || val === '') at.fail(path, `environment variable ${name} is not set`);
    return val;
  }
  if (v.startsWith('file:')) return readSecretFile(at, path, v.slice(5));
  return v;
}

function readSecretFile(at: At, path: Path, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    at.fail(path, `cannot read ${file}: ${fileProblem(err)}`);
  }
  if (text === '') at.fail(path, `${file} is empty`);
  return text;
}

/** A file the configuration refers to must be a readable file now, not at first use. */
function readableFile(at: At, path: Path, file: string): string {
  try {
    if (!statSync(file).isFile()) at.fail(path, `${file} is not a regular file`);
    readFileSync(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    at.fail(path, `cannot read ${file}: ${fileProblem(err)}`);
  }
  return file;
}

/** Whether group or others may read a file (its mode), for a warning. */
function readableByOthers(file: string): boolean {
  try {
    return (statSync(file).mode & 0o044) !== 0;
  } catch {
    return false;
  }
}

const ipCheck = (at: At, path: Path, v: string): string =>
  isIP(v) === 0 ? at.fail(path, `'${v}' is not an IP address`) : v;
/** A unicast host address for a switch (see address.ts), normalised, or a ConfigError at the key. */
const hostAt = (at: At, path: Path, v: string): string => {
  if (v.includes('%')) at.fail(path, `'${v}' has a zone id; give the address alone`);
  try {
    return hostAddress(v);
  } catch (err) {
    return at.fail(path, err instanceof AddressError ? err.message : `'${v}' is not an IP address`);
  }
};

function readVips(at: At, path: Path, s: SwitchDoc): VipConfig[] {
  const seenVips = new Set<string>();
  return s.vips.map((v, i) => {
    const vp = [...path, 'vips', i];
    const address = hostAt(at, [...vp, 'address'], v.address);
    if (seenVips.has(address)) at.fail([...vp, 'address'], `VIP ${address} appears twice`);
    seenVips.add(address);
    const seenNh = new Set<string>();
    const nexthops = v.nexthops.map((n, j) => {
      const np = [...vp, 'nexthops', j];
      if (isIP(n.split('%')[0] ?? '') === 0) at.fail(np, `must be an IP address, got '${n.slice(0, 64)}'`);
      const nh = hostAt(at, np, n);
      if (familyOf(nh) !== familyOf(address))
        at.fail(np, `${nh} is an IPv${familyOf(nh)} address; the VIP ${address} is IPv${familyOf(address)}`);
      if (nh === address) at.fail(np, `${nh} is the VIP itself`);
      if (seenNh.has(nh)) at.fail(np, `nexthop ${nh} appears twice`);
      seenNh.add(nh);
      return nh;
    });
    return { address, nexthops, maxUnavailable: v.maxUnavailable };
  });
}

/**
 * The kind's own section: required for its kind, refused for another; read by the kind
 * (switch-adapters/registry.ts).
 */
function settingsOf(at: At, path: Path, s: SwitchDoc): unknown {
  const kind = adapterKind(s.adapter);
  const doc = s as Record<string, unknown>;
  for (const other of ADAPTER_KINDS) {
    const key = other.section?.key;
    if (key !== undefined && other !== kind && doc[key] !== undefined)
      at.fail([...path, key], `is for adapter ${other.kind}; this switch's adapter is ${s.adapter}`);
  }
  const key = kind.section?.key;
  if (key === undefined) return kind.read(undefined, at, path);
  if (doc[key] === undefined) at.fail([...path, key], `is required for adapter ${s.adapter}`);
  return kind.read(doc[key], at, [...path, key]);
}

function readSwitch(at: At, path: Path, s: SwitchDoc): SwitchConfig {
  if (!/^[A-Za-z0-9_.-]+$/.test(s.name))
    at.fail(
      [...path, 'name'],
      `may hold letters, digits, '.', '_' and '-' only, got '${s.name.slice(0, 64)}'`,
    );
  const settings = settingsOf(at, path, s);
  const defaultSource = adapterKind(s.adapter).mirrorSource?.(settings);
  const mirrorSources =
    s.mirrorSources === undefined
      ? defaultSource !== undefined && isIP(defaultSource) !== 0
        ? [canonicalIp(defaultSource)]
        : []
      : s.mirrorSources.map((m, i) => canonicalIp(ipCheck(at, [...path, 'mirrorSources', i], m)));
  const cfg: SwitchConfig = {
    name: s.name,
    adapter: s.adapter,
    mirrorSources,
    greKey: s.greKey,
    sessionId: s.sessionId,
    pinTableSizeSet: s.pinTableSize !== undefined,
    pinTableSize: s.pinTableSize ?? 1500,
    settings,
    vips: readVips(at, path, s),
    ...readResolution(at, path, s),
    connectionsSince:
      s.connectionsSince === undefined
        ? undefined
        : timeAt(at, [...path, 'connectionsSince'], s.connectionsSince),
    mirrorEnds: s.mirrorEnds,
  };
  if (cfg.mirrorSources.length === 0 && cfg.greKey === undefined && cfg.sessionId === undefined)
    at.fail(
      [...path, 'mirrorSources'],
      'needed: the address the switch mirrors from (or a greKey / sessionId)',
    );
  return cfg;
}

/** A point in time given as ISO 8601 text or epoch milliseconds. */
function timeAt(at: At, path: Path, v: string | number): number {
  const t = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(t))
    at.fail(
      path,
      `must be a time (ISO 8601, e.g. 2026-12-07T14:00:00Z, or epoch milliseconds), got '${String(v).slice(0, 64)}'`,
    );
  return t;
}

/** A switch's resolution keys: mirrorReplies, resolution, replyTimeoutMs, identityRefreshS, servers. */
function readResolution(
  at: At,
  path: Path,
  s: SwitchDoc,
): Pick<SwitchConfig, 'mirrorReplies' | 'resolution' | 'replyTimeoutMs' | 'identityRefreshS' | 'servers'> {
  const resolution = s.resolution ?? (s.mirrorReplies ? 'both' : 'lookup');
  if (resolution !== 'lookup' && !s.mirrorReplies)
    at.fail(
      [...path, 'resolution'],
      `${resolution} needs the servers' replies mirrored: set mirrorReplies: true (and configure the reply mirror on the switch)`,
    );
  const servers = s.servers.map((v, i) => {
    const sp = [...path, 'servers', i];
    const nexthop = hostAt(at, [...sp, 'nexthop'], v.nexthop);
    let mac: string | undefined;
    if (v.mac !== undefined) {
      try {
        mac = normalMac(v.mac);
      } catch (err) {
        at.fail(
          [...sp, 'mac'],
          `must be a MAC address (aa:bb:cc:dd:ee:ff): ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    if (mac === undefined && v.port === undefined)
      at.fail(sp, 'needs a mac or a port (the mirror port index)');
    return {
      nexthop,
      ...(mac === undefined ? {} : { mac }),
      ...(v.port === undefined ? {} : { port: v.port }),
    };
  });
  return {
    mirrorReplies: s.mirrorReplies,
    resolution,
    replyTimeoutMs: s.replyTimeoutMs,
    identityRefreshS: s.identityRefreshS,
    servers,
  };
}

/**
 * Tokens from api.token, api.tokens and the environment (FLOWPIN_TOKEN: operator, FLOWPIN_READ_TOKEN: read).
 */
function readApi(at: At, d: ConfigDoc, env: NodeJS.ProcessEnv, warnings: string[]): ApiConfig {
  const a = d.api;
  const tokens: ApiToken[] = [];
  const token = a.token === undefined ? undefined : secret(at, ['api', 'token'], a.token);
  if (token !== undefined) tokens.push({ role: 'operator', token, from: 'api.token', name: 'api.token' });
  const names = new Set<string>(['api.token', 'env', 'env-read']);
  (a.tokens ?? []).forEach((t, i) => {
    const path = ['api', 'tokens', i, 'file'];
    const name = t.name ?? keyOf(['api', 'tokens', i]);
    if (names.has(name))
      at.fail(
        ['api', 'tokens', i, 'name'],
        `the name '${name}' is ${['api.token', 'env', 'env-read'].includes(name) ? "kept for api.token and the environment's tokens" : 'given to another token'}: each token's name says who made a change`,
      );
    names.add(name);
    tokens.push({ role: t.role, token: readSecretFile(at, path, t.file), from: keyOf(path), name });
    if (readableByOthers(t.file))
      warnings.push(`${at.file}: ${keyOf(path)}: ${t.file} may be read by group or others (chmod 600 it)`);
  });
  if (a.token?.startsWith('file:') === true && readableByOthers(a.token.slice(5)))
    warnings.push(`${at.file}: api.token: ${a.token.slice(5)} may be read by group or others (chmod 600 it)`);
  const envOperator = env['FLOWPIN_TOKEN'];
  if (envOperator !== undefined && envOperator !== '' && !tokens.some((t) => t.token === envOperator))
    tokens.push({ role: 'operator', token: envOperator, from: 'FLOWPIN_TOKEN', name: 'env' });
  const envRead = env['FLOWPIN_READ_TOKEN'];
  if (envRead !== undefined && envRead !== '')
    tokens.push({ role: 'read', token: envRead, from: 'FLOWPIN_READ_TOKEN', name: 'env-read' });
  const seen = new Map<string, string>();
  for (const t of tokens) {
    const other = seen.get(t.token);
    if (other !== undefined && (tokens.find((x) => x.from === other)?.role ?? t.role) !== t.role)
      throw new ConfigError(
        at.file,
        t.from.startsWith('FLOWPIN_') ? '' : t.from,
        `the same token is given for two roles (${other} and ${t.from})`,
      );
    seen.set(t.token, t.from);
  }
  return {
    host: ipCheck(at, ['api', 'host'], a.host),
    port: a.port,
    token: token ?? (envOperator === undefined || envOperator === '' ? undefined : envOperator),
    tokens,
    readsNeedToken: tokens.some((t) => t.role === 'read'),
    requestTimeoutMs: a.requestTimeoutMs,
  };
}

/**
 * Reads and validates a configuration document; the result is frozen. `env` gives the
 * environment that `env:NAME` secrets and FLOWPIN_TOKEN / FLOWPIN_READ_TOKEN come from.
 */
export function readConfig(src: Reader, env: NodeJS.ProcessEnv = process.env): FlowpinConfig {
  const at = new At(src.file, env);
  const doc = src.doc === null || src.doc === undefined ? {} : src.doc;
  if (typeof doc !== 'object' || Array.isArray(doc)) at.fail([], 'the top level must be a mapping');
  const d = checkSchema(src.file, ConfigSchema, doc);
  const warnings: string[] = [];
  const api = readApi(at, d, env, warnings);
  const mirror = {
    udp: d.mirror.udp.map((u, i) => ({
      host: ipCheck(at, ['mirror', 'udp', i, 'host'], u.host),
      port: u.port,
      receiveBufferBytes: u.receiveBufferBytes,
      reader: u.reader,
    })),
    raw: d.mirror.raw,
    silenceS: d.mirror.silenceS,
    collapseRatio: d.mirror.collapseRatio,
  };
  const switches = d.switches.map((s, i) => readSwitch(at, ['switches', i], s));
  const names = new Map<string, number>();
  const sources = new Map<string, string>();
  switches.forEach((s, i) => {
    if (names.has(s.name)) at.fail(['switches', i, 'name'], `switch name '${s.name}' appears twice`);
    names.set(s.name, i);
    for (const m of s.mirrorSources) {
      const other = sources.get(m);
      // Frames are told apart by their source: one address cannot name two switches.
      if (other !== undefined)
        at.fail(
          ['switches', i, 'mirrorSources'],
          `mirror source ${m} is given for both ${other} and ${s.name}`,
        );
      sources.set(m, s.name);
    }
  });
  const cfg: FlowpinConfig = {
    file: src.file,
    api,
    warnings,
    mirror,
    pinMode: d.pinMode,
    pinIdleTimeoutS: d.pinIdleTimeoutS,
    flowTable: { ...d.flowTable },
    consent: { ...d.consent },
    readiness: { ...d.readiness },
    resolveQueue: d.resolveQueue,
    settleMs: d.settleMs,
    barrierTimeoutMs: d.barrierTimeoutMs,
    resyncIntervalS: d.resyncIntervalS,
    retryMaxMs: d.retryMaxMs,
    stateFile: d.stateFile,
    persistIntervalS: d.persistIntervalS,
    ha: d.ha === undefined ? undefined : readHa(at, d.ha, api),
    switches,
  };
  return deepFreeze(cfg);
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): FlowpinConfig {
  return readConfig(Reader.fromFile(file), env);
}
