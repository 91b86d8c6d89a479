// Loads proto/gnmi.proto (gNMI 0.10.0, with gnmi_ext.proto) for @grpc/grpc-js and gives
// TypeScript shapes to the messages, as proto-loader decodes them (keepCase field names,
// 64-bit integers as strings, enums as names, the set oneof member named in a virtual field).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSync } from '@grpc/proto-loader';
import { loadPackageDefinition, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';

export interface PathElem {
  name: string;
  key?: Record<string, string>;
}

export interface Path {
  /** Deprecated string path (field 1); a target refuses it. */
  element?: string[];
  origin?: string;
  elem?: PathElem[];
  target?: string;
}

/** The gNMI release proto/ implements, as Capabilities announces it. */
export const GNMI_VERSION = '0.10.0';

/** gnmi_ext.Extension; `ext` names the member set, absent for an extension of a later release. */
/** A Duration (google/protobuf/duration.proto): seconds (64-bit, as a string when decoded) and nanos. */
export interface Duration {
  seconds?: string | number;
  nanos?: number;
}

/** A decoded gnmi_ext.Uint128 (the master-arbitration election id) as a bigint; absent halves are 0. */
export function uint128(v: { high?: string | number; low?: string | number } | null | undefined): bigint {
  return (BigInt(v?.high ?? 0) << 64n) | BigInt(v?.low ?? 0);
}

export interface Extension {
  ext?: 'registered_ext' | 'master_arbitration' | 'history' | 'commit' | 'depth' | 'config_subscription';
  registered_ext?: { id?: string; msg?: Buffer };
  master_arbitration?: {
    role?: { id?: string };
    election_id?: { high?: string | number; low?: string | number };
  };
  history?: Record<string, unknown>;
  commit?: {
    id?: string;
    action?: 'commit' | 'confirm' | 'cancel' | 'set_rollback_duration';
    commit?: { rollback_duration?: Duration | null };
    confirm?: Record<string, never>;
    cancel?: Record<string, never>;
    set_rollback_duration?: { rollback_duration?: Duration | null };
  };
  depth?: { level?: number };
  config_subscription?: {
    action?: 'start' | 'sync_done';
    start?: Record<string, never>;
    sync_done?: { commit_confirm_id?: string; server_commit_id?: string; done?: boolean };
  };
}

export interface TypedValue {
  value?:
    | 'string_val'
    | 'int_val'
    | 'uint_val'
    | 'bool_val'
    | 'bytes_val'
    | 'json_val'
    | 'json_ietf_val'
    | 'ascii_val'
    | 'float_val'
    | 'double_val'
    | 'decimal_val'
    | 'leaflist_val'
    | 'any_val'
    | 'proto_bytes';
  string_val?: string;
  int_val?: string | number;
  uint_val?: string | number;
  bool_val?: boolean;
  bytes_val?: Buffer;
  json_val?: Buffer;
  json_ietf_val?: Buffer;
  ascii_val?: string;
  float_val?: number;
  double_val?: number;
  decimal_val?: { digits?: string | number; precision?: number };
  leaflist_val?: { element?: TypedValue[] };
}

export interface Update {
  path?: Path;
  val?: TypedValue;
  duplicates?: number;
}

export interface Notification {
  timestamp?: string | number;
  prefix?: Path;
  update?: Update[];
  delete?: Path[];
  atomic?: boolean;
}

export type Encoding = 'JSON' | 'BYTES' | 'PROTO' | 'ASCII' | 'JSON_IETF';

export interface ModelData {
  name: string;
  organization: string;
  version: string;
}

export interface CapabilityRequest {
  extension?: Extension[];
}

export interface CapabilityResponse {
  supported_models: ModelData[];
  supported_encodings: Encoding[];
  gNMI_version: string;
  extension?: Extension[];
}

export type DataType = 'ALL' | 'CONFIG' | 'STATE' | 'OPERATIONAL';

export interface GetRequest {
  prefix?: Path;
  path?: Path[];
  type?: DataType;
  encoding?: Encoding;
  use_models?: ModelData[];
  extension?: Extension[];
}

export interface GetResponse {
  notification: Notification[];
  extension?: Extension[];
}

export interface SetRequest {
  prefix?: Path;
  delete?: Path[];
  replace?: Update[];
  update?: Update[];
  union_replace?: Update[];
  extension?: Extension[];
}

export type Operation = 'INVALID' | 'DELETE' | 'REPLACE' | 'UPDATE' | 'UNION_REPLACE';

export interface UpdateResult {
  path?: Path;
  op: Operation;
}

export interface SetResponse {
  prefix?: Path;
  response: UpdateResult[];
  timestamp: string | number;
  extension?: Extension[];
}

export type SubscriptionMode = 'TARGET_DEFINED' | 'ON_CHANGE' | 'SAMPLE';

export interface Subscription {
  path?: Path;
  mode?: SubscriptionMode;
  /** Nanoseconds. */
  sample_interval?: string | number;
  suppress_redundant?: boolean;
  heartbeat_interval?: string | number;
}

export interface SubscriptionList {
  prefix?: Path;
  subscription?: Subscription[];
  mode?: 'STREAM' | 'ONCE' | 'POLL';
  encoding?: Encoding;
  updates_only?: boolean;
  use_models?: ModelData[];
  allow_aggregation?: boolean;
}

export interface SubscribeRequest {
  request?: 'subscribe' | 'poll';
  subscribe?: SubscriptionList;
  poll?: Record<string, never>;
  extension?: Extension[];
}

export interface SubscribeResponse {
  response?: 'update' | 'sync_response' | 'error';
  update?: Notification;
  sync_response?: boolean;
  extension?: Extension[];
}

const protoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');
const protoPath = path.join(protoDir, 'gnmi.proto');

export const PROTO_LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [protoDir],
};

let cached: { service: ServiceDefinition; Client: ServiceClientConstructor } | undefined;

/** The gNMI service definition (for servers) and client constructor. */
export function gnmiProto(): { service: ServiceDefinition; Client: ServiceClientConstructor } {
  if (cached) return cached;
  const def = loadSync(protoPath, PROTO_LOADER_OPTIONS);
  const pkg = loadPackageDefinition(def) as unknown as { gnmi: { gNMI: ServiceClientConstructor } };
  cached = { service: pkg.gnmi.gNMI.service, Client: pkg.gnmi.gNMI };
  return cached;
}

/** "/a/b[k=v]/c" form of a path, for messages and logs. */
export function pathToString(p: Path | undefined): string {
  const elems = p?.elem ?? [];
  if (elems.length === 0) return '/';
  return elems
    .map(
      (e) =>
        e.name +
        Object.entries(e.key ?? {})
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `[${k}=${v}]`)
          .join(''),
    )
    .map((s) => `/${s}`)
    .join('');
}

/** Parses "/a/b[k=v]/c" into a Path; key values may contain '/' but not ']'. */
export function parsePath(text: string): Path {
  const parts: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of text) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (ch === '/' && depth === 0) {
      if (cur !== '') parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new Error(`unbalanced brackets in path ${text}`);
  if (cur !== '') parts.push(cur);
  const elem: PathElem[] = [];
  for (const part of parts) {
    const m = /^([^[]+)((?:\[[^=\]]+=[^\]]*\])*)$/.exec(part);
    if (!m) throw new Error(`bad path element '${part}' in ${text}`);
    const key: Record<string, string> = {};
    for (const km of (m[2] ?? '').matchAll(/\[([^=\]]+)=([^\]]*)\]/g)) key[km[1] as string] = km[2] as string;
    elem.push(Object.keys(key).length > 0 ? { name: m[1] as string, key } : { name: m[1] as string });
  }
  return { elem };
}

/** Prefix and path joined into one list of elements. */
export function joinPath(prefix: Path | undefined, p: Path | undefined): PathElem[] {
  return [...(prefix?.elem ?? []), ...(p?.elem ?? [])];
}
