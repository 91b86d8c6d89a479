// A direct protobuf encoder for the gNMI responses that carry notifications (GetResponse,
// SubscribeResponse), Set's request (the client's rule writes) and response, and Subscribe's
// request: sizes are computed in one pass and the bytes written in a second into one buffer,
// where protobufjs (proto-loader's serializer) makes a message object per path element and
// value and an operation object per field. It writes exactly the bytes protobufjs writes for
// the same plain object (fields in number order; a present field is written even at its
// default value; map entries in key order; the Protocol Buffers encoding,
// protobuf.dev/programming-guides/encoding). Shapes it does not write (the deprecated
// `element`, `value`, `error`, `message` and UpdateResult `timestamp`, decimal, leaf-list and
// Any values, extensions, polls, QoS marking, use_models, values of another type than the
// field's) are left to proto-loader's serializer: see fastResponses and fastClientRequests.

import type { ServiceDefinition } from '@grpc/grpc-js';
import type {
  GetResponse,
  Notification,
  Operation,
  Path,
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

/** A shape this encoder leaves to protobufjs. */
class Unsupported extends Error {}
const unsupported = new Unsupported('shape left to protobufjs');

/** A TypedValue with the members proto/gnmi.ts does not type (this encoder writes or refuses them). */
type AnyValue = TypedValue & { any_val?: unknown; proto_bytes?: unknown };

const present = (v: unknown): boolean => v !== undefined && v !== null;

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

/** A 64-bit integer field's value as an unsigned 64-bit bigint (two's complement for int64). */
function long(v: unknown): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw unsupported;
    return BigInt.asUintN(64, BigInt(v));
  }
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
    const b = BigInt(v);
    if (b > 0xffffffffffffffffn || b < -0x8000000000000000n) throw unsupported;
    return BigInt.asUintN(64, b);
  }
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  throw unsupported;
}

function longSize(b: bigint): number {
  let n = 1;
  while (b >= 0x80n) {
    b >>= 7n;
    n++;
  }
  return n;
}

/** UTF-8 length of a string (short ASCII strings without a native call). */
function strSize(s: unknown): number {
  if (typeof s !== 'string') throw unsupported;
  if (s.length > 64) return Buffer.byteLength(s);
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
  return s.length;
}

function bytesOf(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw unsupported;
}

/** Pass one: message sizes, recorded in the order pass two writes them. */
class Sizer {
  readonly sizes: number[] = [];

  /** Reserves a slot for a message's size, filled once its fields are counted; returns the field's size. */
  private message(count: () => number): number {
    const slot = this.sizes.length;
    this.sizes.push(0);
    const n = count();
    this.sizes[slot] = n;
    return varintSize(n) + n;
  }

  private str(s: unknown): number {
    const n = strSize(s);
    return varintSize(n) + n;
  }

  /** A path's size (the hottest message: written without a closure per element and key). */
  path(p: Path): number {
    if (present(p.element) && (p.element as unknown[]).length > 0) throw unsupported;
    const sizes = this.sizes;
    const slot = sizes.length;
    sizes.push(0);
    let n = 0;
    if (present(p.origin)) n += 1 + this.str(p.origin);
    for (const e of p.elem ?? []) {
      const es = sizes.length;
      sizes.push(0);
      let m = 0;
      if (present(e.name)) m += 1 + this.str(e.name);
      if (present(e.key)) {
        const key = e.key as Record<string, string>;
        if (typeof key !== 'object') throw unsupported;
        for (const k of Object.keys(key)) {
          const entry = 1 + this.str(k) + 1 + this.str(key[k]);
          sizes.push(entry);
          m += 1 + varintSize(entry) + entry;
        }
      }
      sizes[es] = m;
      n += 1 + varintSize(m) + m;
    }
    if (present(p.target)) n += 1 + this.str(p.target);
    sizes[slot] = n;
    return varintSize(n) + n;
  }

  typedValue(v: AnyValue): number {
    return this.message(() => {
      let n = 0;
      if (present(v.string_val)) n += 1 + this.str(v.string_val);
      if (present(v.int_val)) n += 1 + longSize(long(v.int_val));
      if (present(v.uint_val)) n += 1 + longSize(long(v.uint_val));
      if (present(v.bool_val)) {
        if (typeof v.bool_val !== 'boolean') throw unsupported;
        n += 2;
      }
      if (present(v.bytes_val)) n += 1 + bytesField(v.bytes_val);
      if (present(v.float_val) || present(v.decimal_val) || present(v.leaflist_val) || present(v.any_val))
        throw unsupported;
      if (present(v.json_val)) n += 1 + bytesField(v.json_val);
      if (present(v.json_ietf_val)) n += 1 + bytesField(v.json_ietf_val);
      if (present(v.ascii_val)) n += 1 + this.str(v.ascii_val);
      if (present(v.proto_bytes)) n += 1 + bytesField(v.proto_bytes);
      if (present(v.double_val)) {
        if (typeof v.double_val !== 'number') throw unsupported;
        n += 9;
      }
      return n;
    });
  }

  update(u: Update): number {
    return this.message(() => {
      let n = 0;
      if (present(u.path)) n += 1 + this.path(u.path as Path);
      if (present((u as { value?: unknown }).value)) throw unsupported;
      if (present(u.val)) n += 1 + this.typedValue(u.val as TypedValue);
      if (present(u.duplicates)) n += 1 + varintSize(uint32(u.duplicates));
      return n;
    });
  }

  updateResult(u: UpdateResult): number {
    return this.message(() => {
      const deprecated = u as { timestamp?: unknown; message?: unknown };
      if (present(deprecated.timestamp) || present(deprecated.message)) throw unsupported;
      let n = 0;
      if (present(u.path)) n += 1 + this.path(u.path as Path);
      if (present(u.op)) n += 1 + varintSize(opNumber(u.op));
      return n;
    });
  }

  subscription(u: Subscription): number {
    return this.message(() => {
      let n = 0;
      if (present(u.path)) n += 1 + this.path(u.path as Path);
      if (present(u.mode)) n += 1 + varintSize(enumNumber(SUBSCRIPTION_MODES, u.mode));
      if (present(u.sample_interval)) n += 1 + longSize(long(u.sample_interval));
      if (present(u.suppress_redundant)) n += 1 + varintSize(bool(u.suppress_redundant));
      if (present(u.heartbeat_interval)) n += 1 + longSize(long(u.heartbeat_interval));
      return n;
    });
  }

  subscriptionList(l: SubscriptionList): number {
    return this.message(() => {
      if (present((l as { qos?: unknown }).qos) || (present(l.use_models) && (l.use_models ?? []).length > 0))
        throw unsupported;
      let n = 0;
      if (present(l.prefix)) n += 1 + this.path(l.prefix as Path);
      for (const u of l.subscription ?? []) n += 1 + this.subscription(u);
      if (present(l.mode)) n += 1 + varintSize(enumNumber(LIST_MODES, l.mode));
      if (present(l.allow_aggregation)) n += 1 + varintSize(bool(l.allow_aggregation));
      if (present(l.encoding)) n += 1 + varintSize(enumNumber(ENCODINGS, l.encoding));
      if (present(l.updates_only)) n += 1 + varintSize(bool(l.updates_only));
      return n;
    });
  }

  notification(m: Notification): number {
    return this.message(() => {
      let n = 0;
      if (present(m.timestamp)) n += 1 + longSize(long(m.timestamp));
      if (present(m.prefix)) n += 1 + this.path(m.prefix as Path);
      for (const u of m.update ?? []) n += 1 + this.update(u);
      for (const d of m.delete ?? []) n += 1 + this.path(d);
      if (present(m.atomic)) {
        if (typeof m.atomic !== 'boolean') throw unsupported;
        n += 2;
      }
      return n;
    });
  }
}

function bytesField(v: unknown): number {
  const n = bytesOf(v).length;
  return varintSize(n) + n;
}

/** UpdateResult.Operation's numbers (gnmi.proto). */
const OPERATIONS: Readonly<Record<Operation, number>> = {
  INVALID: 0,
  DELETE: 1,
  REPLACE: 2,
  UPDATE: 3,
  UNION_REPLACE: 4,
};

function opNumber(op: unknown): number {
  const n = typeof op === 'string' ? OPERATIONS[op as Operation] : undefined;
  if (n === undefined) throw unsupported;
  return n;
}

/** Enum numbers of a subscription list and its subscriptions (gnmi.proto). */
export const LIST_MODES = ['STREAM', 'ONCE', 'POLL'] as const;
export const SUBSCRIPTION_MODES = ['TARGET_DEFINED', 'ON_CHANGE', 'SAMPLE'] as const;
export const ENCODINGS = ['JSON', 'BYTES', 'PROTO', 'ASCII', 'JSON_IETF'] as const;

function enumNumber(names: readonly string[], v: unknown): number {
  const n = typeof v === 'string' ? names.indexOf(v) : -1;
  if (n < 0) throw unsupported;
  return n;
}

function bool(v: unknown): number {
  if (typeof v !== 'boolean') throw unsupported;
  return v ? 1 : 0;
}

function uint32(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw unsupported;
  return v;
}

/** Pass two: the bytes, with the sizes pass one recorded. */
class Writer {
  private at = 0;
  private next = 0;

  constructor(
    readonly buf: Buffer,
    private readonly sizes: number[],
  ) {}

  /** A field's tag (one byte: field numbers below 16). */
  tag(t: number): void {
    this.buf[this.at++] = t;
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.at++] = n;
  }

  long(b: bigint): void {
    while (b >= 0x80n) {
      this.buf[this.at++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    this.buf[this.at++] = Number(b);
  }

  private str(s: string): void {
    const n = strSize(s);
    this.varint(n);
    if (n === s.length) for (let i = 0; i < n; i++) this.buf[this.at++] = s.charCodeAt(i);
    else this.at += this.buf.write(s, this.at, 'utf8');
  }

  private bytes(v: unknown): void {
    const b = bytesOf(v);
    this.varint(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  private message(tag: number, write: () => void): void {
    this.buf[this.at++] = tag;
    this.varint(this.sizes[this.next++] as number);
    write();
  }

  /** A path (as Sizer.path: no closure per element and key). */
  path(tag: number, p: Path): void {
    const buf = this.buf;
    buf[this.at++] = tag;
    this.varint(this.sizes[this.next++] as number);
    if (present(p.origin)) {
      buf[this.at++] = 0x12;
      this.str(p.origin as string);
    }
    for (const e of p.elem ?? []) {
      buf[this.at++] = 0x1a;
      this.varint(this.sizes[this.next++] as number);
      if (present(e.name)) {
        buf[this.at++] = 0x0a;
        this.str(e.name);
      }
      if (present(e.key)) {
        const key = e.key as Record<string, string>;
        for (const k of Object.keys(key)) {
          buf[this.at++] = 0x12;
          this.varint(this.sizes[this.next++] as number);
          buf[this.at++] = 0x0a;
          this.str(k);
          buf[this.at++] = 0x12;
          this.str(key[k] as string);
        }
      }
    }
    if (present(p.target)) {
      buf[this.at++] = 0x22;
      this.str(p.target as string);
    }
  }

  typedValue(tag: number, v: AnyValue): void {
    this.message(tag, () => {
      if (present(v.string_val)) {
        this.buf[this.at++] = 0x0a;
        this.str(v.string_val as string);
      }
      if (present(v.int_val)) {
        this.buf[this.at++] = 0x10;
        this.long(long(v.int_val));
      }
      if (present(v.uint_val)) {
        this.buf[this.at++] = 0x18;
        this.long(long(v.uint_val));
      }
      if (present(v.bool_val)) {
        this.buf[this.at++] = 0x20;
        this.buf[this.at++] = v.bool_val === true ? 1 : 0;
      }
      if (present(v.bytes_val)) {
        this.buf[this.at++] = 0x2a;
        this.bytes(v.bytes_val);
      }
      if (present(v.json_val)) {
        this.buf[this.at++] = 0x52;
        this.bytes(v.json_val);
      }
      if (present(v.json_ietf_val)) {
        this.buf[this.at++] = 0x5a;
        this.bytes(v.json_ietf_val);
      }
      if (present(v.ascii_val)) {
        this.buf[this.at++] = 0x62;
        this.str(v.ascii_val as string);
      }
      if (present(v.proto_bytes)) {
        this.buf[this.at++] = 0x6a;
        this.bytes(v.proto_bytes);
      }
      if (present(v.double_val)) {
        this.buf[this.at++] = 0x71;
        this.at = this.buf.writeDoubleLE(v.double_val as number, this.at);
      }
    });
  }

  update(tag: number, u: Update): void {
    this.message(tag, () => {
      if (present(u.path)) this.path(0x0a, u.path as Path);
      if (present(u.val)) this.typedValue(0x1a, u.val as TypedValue);
      if (present(u.duplicates)) {
        this.buf[this.at++] = 0x20;
        this.varint(u.duplicates as number);
      }
    });
  }

  updateResult(tag: number, u: UpdateResult): void {
    this.message(tag, () => {
      if (present(u.path)) this.path(0x12, u.path as Path);
      if (present(u.op)) {
        this.buf[this.at++] = 0x20;
        this.varint(opNumber(u.op));
      }
    });
  }

  private varintField(tag: number, n: number): void {
    this.buf[this.at++] = tag;
    this.varint(n);
  }

  subscription(tag: number, u: Subscription): void {
    this.message(tag, () => {
      if (present(u.path)) this.path(0x0a, u.path as Path);
      if (present(u.mode)) this.varintField(0x10, enumNumber(SUBSCRIPTION_MODES, u.mode));
      if (present(u.sample_interval)) {
        this.buf[this.at++] = 0x18;
        this.long(long(u.sample_interval));
      }
      if (present(u.suppress_redundant)) this.varintField(0x20, bool(u.suppress_redundant));
      if (present(u.heartbeat_interval)) {
        this.buf[this.at++] = 0x28;
        this.long(long(u.heartbeat_interval));
      }
    });
  }

  subscriptionList(tag: number, l: SubscriptionList): void {
    this.message(tag, () => {
      if (present(l.prefix)) this.path(0x0a, l.prefix as Path);
      for (const u of l.subscription ?? []) this.subscription(0x12, u);
      if (present(l.mode)) this.varintField(0x28, enumNumber(LIST_MODES, l.mode));
      if (present(l.allow_aggregation)) this.varintField(0x30, bool(l.allow_aggregation));
      if (present(l.encoding)) this.varintField(0x40, enumNumber(ENCODINGS, l.encoding));
      if (present(l.updates_only)) this.varintField(0x48, bool(l.updates_only));
    });
  }

  notification(tag: number, m: Notification): void {
    this.message(tag, () => {
      if (present(m.timestamp)) {
        this.buf[this.at++] = 0x08;
        this.long(long(m.timestamp));
      }
      if (present(m.prefix)) this.path(0x12, m.prefix as Path);
      for (const u of m.update ?? []) this.update(0x22, u);
      for (const d of m.delete ?? []) this.path(0x2a, d);
      if (present(m.atomic)) {
        this.buf[this.at++] = 0x30;
        this.buf[this.at++] = m.atomic === true ? 1 : 0;
      }
    });
  }

  get length(): number {
    return this.at;
  }
}

const hasExtensions = (ext: unknown[] | undefined): boolean => present(ext) && (ext as unknown[]).length > 0;

/**
 * A message's bytes: `size` counts its fields (pass one), `write` writes them (pass two); null
 * where the shape is left to protobufjs.
 */
function encoded(size: (s: Sizer) => number, write: (w: Writer) => void): Buffer | null {
  try {
    const sizer = new Sizer();
    const buf = Buffer.allocUnsafe(size(sizer));
    const w = new Writer(buf, sizer.sizes);
    write(w);
    if (w.length !== buf.length)
      throw new Error(`protobuf encoder: wrote ${w.length} of ${buf.length} bytes`);
    return buf;
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
}

/** Notifications as repeated field `tag` of a message; null where the shape is left to protobufjs. */
function encodeNotifications(tag: number, ns: readonly Notification[], tail?: () => number[]): Buffer | null {
  const extra = tail?.() ?? [];
  return encoded(
    (s) => {
      let total = extra.length;
      for (const n of ns) total += 1 + s.notification(n);
      return total;
    },
    (w) => {
      for (const n of ns) w.notification(tag, n);
      for (const b of extra) w.tag(b);
    },
  );
}

/**
 * A SetRequest's bytes (fields in number order: prefix 1, delete 2, replace 3, update 4,
 * union_replace 6); null where left to protobufjs (extensions among them).
 */
export function encodeSetRequest(r: SetRequest): Buffer | null {
  if (hasExtensions(r.extension)) return null;
  const prefix = present(r.prefix) ? (r.prefix as Path) : undefined;
  const del = r.delete ?? [];
  const replace = r.replace ?? [];
  const update = r.update ?? [];
  const union = r.union_replace ?? [];
  return encoded(
    (s) => {
      let n = prefix === undefined ? 0 : 1 + s.path(prefix);
      for (const p of del) n += 1 + s.path(p);
      for (const u of replace) n += 1 + s.update(u);
      for (const u of update) n += 1 + s.update(u);
      for (const u of union) n += 1 + s.update(u);
      return n;
    },
    (w) => {
      if (prefix !== undefined) w.path(0x0a, prefix);
      for (const p of del) w.path(0x12, p);
      for (const u of replace) w.update(0x1a, u);
      for (const u of update) w.update(0x22, u);
      for (const u of union) w.update(0x32, u);
    },
  );
}

/**
 * A SubscribeRequest's bytes: a subscription list (prefix 1, subscription 2, mode 5,
 * allow_aggregation 6, encoding 8, updates_only 9); null where left to protobufjs (a poll,
 * extensions, QoS marking, use_models).
 */
export function encodeSubscribeRequest(r: SubscribeRequest): Buffer | null {
  if (hasExtensions(r.extension) || present(r.poll) || !present(r.subscribe)) return null;
  const list = r.subscribe as SubscriptionList;
  return encoded(
    (s) => 1 + s.subscriptionList(list),
    (w) => w.subscriptionList(0x0a, list),
  );
}

/** A SetResponse's bytes (prefix 1, response 2, timestamp 4); null where left to protobufjs. */
export function encodeSetResponse(r: SetResponse): Buffer | null {
  if (present((r as { message?: unknown }).message) || hasExtensions(r.extension)) return null;
  const prefix = present(r.prefix) ? (r.prefix as Path) : undefined;
  const results = r.response ?? [];
  const ts = present(r.timestamp) ? r.timestamp : undefined;
  return encoded(
    (s) => {
      let n = prefix === undefined ? 0 : 1 + s.path(prefix);
      for (const u of results) n += 1 + s.updateResult(u);
      if (ts !== undefined) n += 1 + longSize(long(ts));
      return n;
    },
    (w) => {
      if (prefix !== undefined) w.path(0x0a, prefix);
      for (const u of results) w.updateResult(0x12, u);
      if (ts !== undefined) {
        w.tag(0x20);
        w.long(long(ts));
      }
    },
  );
}

/** A SubscribeResponse's bytes; null where the shape is left to protobufjs. */
export function encodeSubscribeResponse(r: SubscribeResponse): Buffer | null {
  const e = r as SubscribeResponse & { error?: unknown };
  if (present(e.error) || hasExtensions(r.extension)) return null;
  const sync = present(r.sync_response) ? (r.sync_response as unknown) : undefined;
  if (sync !== undefined && typeof sync !== 'boolean') return null;
  const tail = (): number[] => (sync === undefined ? [] : [0x18, sync ? 1 : 0]);
  return encodeNotifications(0x0a, present(r.update) ? [r.update as Notification] : [], tail);
}

/** A GetResponse's bytes; null where the shape is left to protobufjs. */
export function encodeGetResponse(r: GetResponse): Buffer | null {
  if (present((r as { error?: unknown }).error) || hasExtensions(r.extension)) return null;
  return encodeNotifications(0x0a, r.notification ?? []);
}

/**
 * The service definition with Get's, Subscribe's and Set's responses written by this encoder
 * (protobufjs for the shapes it leaves); requests and other methods as they were.
 */
export function fastResponses(service: ServiceDefinition): ServiceDefinition {
  const encoders: Record<string, (m: never) => Buffer | null> = {
    Get: encodeGetResponse,
    Subscribe: encodeSubscribeResponse,
    Set: encodeSetResponse,
  };
  return Object.fromEntries(
    Object.entries(service).map(([name, m]) => {
      const encode = encoders[name];
      if (encode === undefined) return [name, m];
      const slow = m.responseSerialize as (v: never) => Buffer;
      return [name, { ...m, responseSerialize: (v: never) => encode(v) ?? slow(v) }];
    }),
  ) as ServiceDefinition;
}

/**
 * The service definition with Set's and Subscribe's requests written by this encoder
 * (protobufjs for the shapes it leaves), for a client.
 */
export function fastClientRequests(service: ServiceDefinition): ServiceDefinition {
  const encoders: Record<string, (m: never) => Buffer | null> = {
    Set: encodeSetRequest,
    Subscribe: encodeSubscribeRequest,
  };
  return Object.fromEntries(
    Object.entries(service).map(([name, m]) => {
      const encode = encoders[name];
      if (encode === undefined) return [name, m];
      const slow = m.requestSerialize as (v: never) => Buffer;
      return [name, { ...m, requestSerialize: (v: never) => encode(v) ?? slow(v) }];
    }),
  ) as ServiceDefinition;
}
