// A direct protobuf decoder for the gNMI responses that carry notifications (GetResponse,
// SubscribeResponse) and Set's response, for the client, and Set's and Subscribe's requests,
// for the target (a client's rule writes and reads): it reads the bytes into the plain objects proto-loader
// gives with PROTO_LOADER_OPTIONS (every absent field at its default, 64-bit integers as
// decimal strings, the oneof member named in a virtual field, bytes as Buffers over the
// message), without protobufjs's intermediate message objects. Messages it does not read
// (an unknown field or wire type, extensions, `error`, the deprecated `element` and `value`,
// decimal, leaf-list, float and Any values, two members of one oneof) are left to
// proto-loader's deserializer: see fastClientResponses.

import type { ServiceDefinition } from '@grpc/grpc-js';
import { ENCODINGS, LIST_MODES, SUBSCRIPTION_MODES } from './encode.js';
import type {
  GetResponse,
  Notification,
  Operation,
  Path,
  PathElem,
  SetRequest,
  SetResponse,
  SubscribeRequest,
  SubscribeResponse,
  Subscription,
  SubscriptionList,
  TypedValue,
  Update,
  UpdateResult,
} from './gnmi.js';

/** A message this decoder leaves to protobufjs. */
class Unsupported extends Error {}
const unsupported = new Unsupported('message left to protobufjs');

class Reader {
  at = 0;

  constructor(readonly buf: Buffer) {}

  varint(): number {
    let n = 0;
    let shift = 0;
    for (;;) {
      if (this.at >= this.buf.length || shift > 28) throw unsupported;
      const b = this.buf[this.at++] as number;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
      shift += 7;
    }
  }

  /** A 64-bit varint as an unsigned bigint. */
  long(): bigint {
    let n = 0n;
    let shift = 0n;
    for (;;) {
      if (this.at >= this.buf.length || shift > 63n) throw unsupported;
      const b = this.buf[this.at++] as number;
      n |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, n);
      shift += 7n;
    }
  }

  /** The end of a length-delimited field starting here. */
  end(): number {
    const n = this.varint();
    const end = this.at + n;
    if (end > this.buf.length) throw unsupported;
    return end;
  }

  bytes(): Buffer {
    const end = this.end();
    const b = this.buf.subarray(this.at, end);
    this.at = end;
    return b;
  }

  str(): string {
    const end = this.end();
    const s = this.buf.toString('utf8', this.at, end);
    this.at = end;
    return s;
  }

  bool(): boolean {
    return this.varint() !== 0;
  }
}

/** Reads fields up to `end`, handing each tag to `field`; a tag it does not take is unsupported. */
function fields(r: Reader, end: number, field: (tag: number) => boolean): void {
  while (r.at < end) {
    const tag = r.varint();
    if (!field(tag)) throw unsupported;
  }
  if (r.at !== end) throw unsupported;
}

/** A path element (the most frequent message: read without a closure per field). */
function pathElem(r: Reader, end: number): PathElem {
  const key: Record<string, string> = {};
  const e: PathElem = { key, name: '' };
  while (r.at < end) {
    const tag = r.varint();
    if (tag === 0x0a) e.name = r.str();
    else if (tag === 0x12) {
      const entryEnd = r.end();
      let k = '';
      let v = '';
      while (r.at < entryEnd) {
        const t = r.varint();
        if (t === 0x0a) k = r.str();
        else if (t === 0x12) v = r.str();
        else throw unsupported;
      }
      if (r.at !== entryEnd) throw unsupported;
      // An own member even for `__proto__` (an assignment would set the prototype), as protobufjs makes it.
      if (k === '__proto__')
        Object.defineProperty(key, k, { value: v, enumerable: true, writable: true, configurable: true });
      else key[k] = v;
    } else throw unsupported;
  }
  if (r.at !== end) throw unsupported;
  return e;
}

function path(r: Reader, end: number): Path {
  const elem: PathElem[] = [];
  const p: Path = { element: [], elem, origin: '', target: '' };
  while (r.at < end) {
    const tag = r.varint();
    if (tag === 0x12) p.origin = r.str();
    else if (tag === 0x1a) elem.push(pathElem(r, r.end()));
    else if (tag === 0x22) p.target = r.str();
    else throw unsupported;
  }
  if (r.at !== end) throw unsupported;
  return p;
}

function typedValue(r: Reader, end: number): TypedValue {
  const v: Record<string, unknown> = {};
  let member: string | undefined;
  const set = (name: string, value: unknown): void => {
    if (member !== undefined) throw unsupported;
    member = name;
    v[name] = value;
  };
  fields(r, end, (tag) => {
    switch (tag) {
      case 0x0a:
        set('string_val', r.str());
        break;
      case 0x10:
        set('int_val', BigInt.asIntN(64, r.long()).toString());
        break;
      case 0x18:
        set('uint_val', r.long().toString());
        break;
      case 0x20:
        set('bool_val', r.bool());
        break;
      case 0x2a:
        set('bytes_val', r.bytes());
        break;
      case 0x52:
        set('json_val', r.bytes());
        break;
      case 0x5a:
        set('json_ietf_val', r.bytes());
        break;
      case 0x62:
        set('ascii_val', r.str());
        break;
      case 0x6a:
        set('proto_bytes', r.bytes());
        break;
      case 0x71:
        if (r.at + 8 > end) throw unsupported;
        set('double_val', r.buf.readDoubleLE(r.at));
        r.at += 8;
        break;
      default:
        return false;
    }
    return true;
  });
  if (member !== undefined) v['value'] = member;
  return v;
}

function update(r: Reader, end: number): Update {
  const u: Record<string, unknown> = { path: null, value: null, val: null, duplicates: 0 };
  fields(r, end, (tag) => {
    if (tag === 0x0a) u['path'] = path(r, r.end());
    else if (tag === 0x1a) u['val'] = typedValue(r, r.end());
    else if (tag === 0x20) u['duplicates'] = r.varint() >>> 0;
    else return false;
    return true;
  });
  return u;
}

function notification(r: Reader, end: number): Notification {
  const n: Record<string, unknown> = { update: [], delete: [], timestamp: '0', prefix: null, atomic: false };
  fields(r, end, (tag) => {
    if (tag === 0x08) n['timestamp'] = BigInt.asIntN(64, r.long()).toString();
    else if (tag === 0x12) n['prefix'] = path(r, r.end());
    else if (tag === 0x22) (n['update'] as Update[]).push(update(r, r.end()));
    else if (tag === 0x2a) (n['delete'] as Path[]).push(path(r, r.end()));
    else if (tag === 0x30) n['atomic'] = r.bool();
    else return false;
    return true;
  });
  return n;
}

function decoded<T>(read: (r: Reader) => T, buf: Buffer): T | null {
  try {
    return read(new Reader(buf));
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
}

/** A SubscribeResponse as proto-loader decodes it; null where the message is left to protobufjs. */
export function decodeSubscribeResponse(buf: Buffer): SubscribeResponse | null {
  return decoded((r) => {
    const m: SubscribeResponse = { extension: [] };
    let member: 'update' | 'sync_response' | undefined;
    fields(r, buf.length, (tag) => {
      if (tag === 0x0a) {
        if (member !== undefined) throw unsupported;
        m.update = notification(r, r.end());
        member = 'update';
      } else if (tag === 0x18) {
        if (member !== undefined) throw unsupported;
        m.sync_response = r.bool();
        member = 'sync_response';
      } else return false;
      return true;
    });
    if (member !== undefined) m.response = member;
    return m;
  }, buf);
}

/** A GetResponse as proto-loader decodes it; null where the message is left to protobufjs. */
export function decodeGetResponse(buf: Buffer): GetResponse | null {
  return decoded((r) => {
    const m = { notification: [] as Notification[], extension: [], error: null };
    fields(r, buf.length, (tag) => {
      if (tag !== 0x0a) return false;
      m.notification.push(notification(r, r.end()));
      return true;
    });
    return m;
  }, buf);
}

/**
 * A SetRequest as proto-loader decodes it; null where the message is left to protobufjs
 * (extensions among them).
 */
export function decodeSetRequest(buf: Buffer): SetRequest | null {
  return decoded((r) => {
    const m = {
      delete: [] as Path[],
      replace: [] as Update[],
      update: [] as Update[],
      extension: [],
      union_replace: [] as Update[],
      prefix: null as Path | null,
    };
    fields(r, buf.length, (tag) => {
      if (tag === 0x0a) m.prefix = path(r, r.end());
      else if (tag === 0x12) m.delete.push(path(r, r.end()));
      else if (tag === 0x1a) m.replace.push(update(r, r.end()));
      else if (tag === 0x22) m.update.push(update(r, r.end()));
      else if (tag === 0x32) m.union_replace.push(update(r, r.end()));
      else return false;
      return true;
    });
    return m as SetRequest;
  }, buf);
}

/** An enum's name by number; a number the proto does not have is left to protobufjs. */
function enumName<T extends string>(names: readonly T[], n: number): T {
  const name = names[n];
  if (name === undefined) throw unsupported;
  return name;
}

function subscription(r: Reader, end: number): Subscription {
  const u: Record<string, unknown> = {
    path: null,
    mode: 'TARGET_DEFINED',
    sample_interval: '0',
    suppress_redundant: false,
    heartbeat_interval: '0',
  };
  fields(r, end, (tag) => {
    if (tag === 0x0a) u['path'] = path(r, r.end());
    else if (tag === 0x10) u['mode'] = enumName(SUBSCRIPTION_MODES, r.varint());
    else if (tag === 0x18) u['sample_interval'] = r.long().toString();
    else if (tag === 0x20) u['suppress_redundant'] = r.bool();
    else if (tag === 0x28) u['heartbeat_interval'] = r.long().toString();
    else return false;
    return true;
  });
  return u;
}

function subscriptionList(r: Reader, end: number): SubscriptionList {
  const l: Record<string, unknown> = {
    subscription: [],
    use_models: [],
    prefix: null,
    qos: null,
    mode: 'STREAM',
    allow_aggregation: false,
    encoding: 'JSON',
    updates_only: false,
  };
  fields(r, end, (tag) => {
    if (tag === 0x0a) l['prefix'] = path(r, r.end());
    else if (tag === 0x12) (l['subscription'] as Subscription[]).push(subscription(r, r.end()));
    else if (tag === 0x28) l['mode'] = enumName(LIST_MODES, r.varint());
    else if (tag === 0x30) l['allow_aggregation'] = r.bool();
    else if (tag === 0x40) l['encoding'] = enumName(ENCODINGS, r.varint());
    else if (tag === 0x48) l['updates_only'] = r.bool();
    else return false;
    return true;
  });
  return l;
}

/**
 * A SubscribeRequest carrying a subscription list, as proto-loader decodes it; null where the
 * message is left to protobufjs (a poll, extensions, QoS marking, use_models).
 */
export function decodeSubscribeRequest(buf: Buffer): SubscribeRequest | null {
  return decoded((r) => {
    const m: SubscribeRequest = { extension: [] };
    fields(r, buf.length, (tag) => {
      if (tag !== 0x0a || m.subscribe !== undefined) return false;
      m.subscribe = subscriptionList(r, r.end());
      m.request = 'subscribe';
      return true;
    });
    return m;
  }, buf);
}

/** UpdateResult.Operation's names by number (gnmi.proto). */
const OPERATIONS: readonly Operation[] = ['INVALID', 'DELETE', 'REPLACE', 'UPDATE', 'UNION_REPLACE'];

function updateResult(r: Reader, end: number): UpdateResult {
  const u: Record<string, unknown> = { timestamp: '0', path: null, message: null, op: 'INVALID' };
  fields(r, end, (tag) => {
    if (tag === 0x08) u['timestamp'] = BigInt.asIntN(64, r.long()).toString();
    else if (tag === 0x12) u['path'] = path(r, r.end());
    else if (tag === 0x20) {
      const op = OPERATIONS[r.varint()];
      if (op === undefined) throw unsupported;
      u['op'] = op;
    } else return false;
    return true;
  });
  return u as unknown as UpdateResult;
}

/** A SetResponse as proto-loader decodes it; null where the message is left to protobufjs. */
export function decodeSetResponse(buf: Buffer): SetResponse | null {
  return decoded((r) => {
    const m = {
      response: [] as UpdateResult[],
      extension: [],
      prefix: null as Path | null,
      message: null,
      timestamp: '0',
    };
    fields(r, buf.length, (tag) => {
      if (tag === 0x0a) m.prefix = path(r, r.end());
      else if (tag === 0x12) m.response.push(updateResult(r, r.end()));
      else if (tag === 0x20) m.timestamp = BigInt.asIntN(64, r.long()).toString();
      else return false;
      return true;
    });
    return m as unknown as SetResponse;
  }, buf);
}

/**
 * The service definition with Get's, Subscribe's and Set's responses read by this decoder
 * (protobufjs for the messages it leaves), for a client; requests and other methods as they were.
 */
export function fastClientResponses(service: ServiceDefinition): ServiceDefinition {
  const decoders: Record<string, (b: Buffer) => unknown> = {
    Get: decodeGetResponse,
    Subscribe: decodeSubscribeResponse,
    Set: decodeSetResponse,
  };
  return Object.fromEntries(
    Object.entries(service).map(([name, m]) => {
      const decode = decoders[name];
      if (decode === undefined) return [name, m];
      const slow = m.responseDeserialize as (b: Buffer) => unknown;
      return [name, { ...m, responseDeserialize: (b: Buffer) => decode(b) ?? slow(b) }];
    }),
  );
}

/**
 * The service definition with Set's and Subscribe's requests read by this decoder (protobufjs
 * for the messages it leaves), for a target.
 */
export function fastRequests(service: ServiceDefinition): ServiceDefinition {
  const decoders: Record<string, (b: Buffer) => unknown> = {
    Set: decodeSetRequest,
    Subscribe: decodeSubscribeRequest,
  };
  return Object.fromEntries(
    Object.entries(service).map(([name, m]) => {
      const decode = decoders[name];
      if (decode === undefined) return [name, m];
      const slow = m.requestDeserialize as (b: Buffer) => unknown;
      return [name, { ...m, requestDeserialize: (b: Buffer) => decode(b) ?? slow(b) }];
    }),
  );
}
