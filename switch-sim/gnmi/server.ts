// The simulator's gNMI target over @grpc/grpc-js, to the gNMI 0.10.0 specification
// (openconfig/reference rpc/gnmi/gnmi-specification.md): Capabilities; Get with data types
// and encodings, NOT_FOUND / UNIMPLEMENTED / INVALID_ARGUMENT as its behaviour table says;
// Get answers a node with children as one JSON subtree per node (2.3.1); Subscribe sends
// leaves. Set as one transaction (union_replace included); Subscribe ONCE, POLL and STREAM (SAMPLE
// with suppress_redundant and heartbeat_interval, ON_CHANGE with heartbeat). prefix.target
// is reflected in responses (2.2.2.1); extensions the target does not support are refused,
// never ignored, except master arbitration on Set, enforced as the specification says
// (arbiter.ts). Optional username/password metadata, TLS, injected faults, and a device
// restart (counters reset, streams cut).

import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  GNMI_VERSION,
  gnmiProto,
  joinPath,
  pathToString,
  type CapabilityRequest,
  type CapabilityResponse,
  type Encoding,
  type Extension,
  type GetRequest,
  type GetResponse,
  type Notification,
  type Path,
  type PathElem,
  type SetRequest,
  type SetResponse,
  type SubscribeRequest,
  type SubscribeResponse,
  type Subscription,
  type SubscriptionList,
  type TypedValue,
  type Update,
} from '../../proto/gnmi.js';
import { fastResponses } from '../../proto/encode.js';
import { fastRequests } from '../../proto/decode.js';
import { delay, FaultInjector } from '../faults.js';
import { MasterArbiter } from './arbiter.js';
import type { SimSwitch } from '../sim-switch.js';
import { checkOrigin, GnmiError, OpenConfigModel, type Leaf } from './model.js';
import { nodeByNames, resolve, type SchemaNode } from './schema.js';
import { elemText } from './store.js';

export interface GnmiServerOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls?: { key: Buffer; cert: Buffer };
  networkInstance?: string;
  staticProtocol?: string;
  pinTableComponent?: string;
  pinTableResource?: string;
  /** How often ON_CHANGE subscriptions look for changes, ms. */
  changeScanMs?: number;
  /** Shortest SAMPLE interval the target supports, ms (also used for sample_interval 0). */
  minSampleMs?: number;
  /**
   * The device's clock, which stream subscriptions sample and scan on: by default the
   * machine's. A simulated switch on a virtual clock samples on that clock.
   */
  clock?: DeviceClock;
}

export interface DeviceClock {
  now(): number;
  /** Runs `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}

const REAL_CLOCK: DeviceClock = {
  now: () => Date.now(),
  every: (ms, fn) => {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
};

/** Most updates in one notification of a Subscribe stream. */
const NOTIFICATION_UPDATES = 1000;
const nowNs = (): string => (BigInt(Date.now()) * 1_000_000n).toString();
const leafKey = (elems: PathElem[]): string => pathToString({ elem: elems });
const ENCODINGS: readonly Encoding[] = ['JSON', 'JSON_IETF', 'PROTO'];

/**
 * Models the target announces (gNMI 3.2.2: name, organization and version, as in their
 * `organization` and `oc-ext:openconfig-version` statements in openconfig/public), including
 * the modules whose identities appear in values (RFC 7951 6.8: IP_TCP of
 * openconfig-packet-match-types, STATIC of openconfig-policy-types).
 */
export const SUPPORTED_MODELS = [
  { name: 'openconfig-network-instance', organization: 'OpenConfig working group', version: '4.7.0' },
  { name: 'openconfig-policy-forwarding', organization: 'OpenConfig working group', version: '1.2.0' },
  { name: 'openconfig-packet-match', organization: 'OpenConfig working group', version: '2.3.0' },
  { name: 'openconfig-packet-match-types', organization: 'OpenConfig working group', version: '1.3.4' },
  { name: 'openconfig-policy-types', organization: 'OpenConfig working group', version: '3.3.0' },
  { name: 'openconfig-local-routing', organization: 'OpenConfig working group', version: '4.1.0' },
  { name: 'openconfig-platform', organization: 'OpenConfig working group', version: '0.32.0' },
];

class RpcFailure extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** A leaf's JSON value (RFC 7951 conventions for JSON_IETF). */
function jsonValue(l: Leaf, enc: 'JSON' | 'JSON_IETF'): unknown {
  const t = l.node.type?.t;
  const v = l.value;
  if (enc === 'JSON') return v;
  // RFC 7951 6.1: 64-bit integers (counter64, uint64) as strings; 6.8: identities with their module.
  if (t === 'uint64' && typeof v === 'number') return String(v);
  if (l.node.type?.t === 'identity' && typeof v === 'string') return `${l.node.type.module}:${v}`;
  if (t === 'ip-protocol' && typeof v === 'string') return `openconfig-packet-match-types:${v}`;
  return v;
}

/** A value in the requested encoding (gNMI 2.3): RFC 7951 for JSON_IETF, scalar TypedValues for PROTO. */
export function encodeValue(l: Leaf, enc: Encoding): TypedValue {
  const t = l.node.type?.t;
  const v = l.value;
  if (enc === 'PROTO') {
    if (typeof v === 'boolean') return { bool_val: v };
    if (typeof v === 'number' && (t === 'uint' || t === 'uint64' || t === 'port' || t === 'ip-protocol'))
      return { uint_val: String(v) };
    return { string_val: String(v) };
  }
  const json = Buffer.from(JSON.stringify(jsonValue(l, enc === 'JSON' ? 'JSON' : 'JSON_IETF')));
  return enc === 'JSON' ? { json_val: json } : { json_ietf_val: json };
}

/**
 * Leaves under one data node (`parent`, at `depth`) as its JSON subtree (gNMI 2.3.1: a node
 * with children is sent as one serialised JSON entity), lists as arrays of entries with their
 * keys (RFC 7951 5.4), member names module-qualified where the module changes (JSON_IETF,
 * RFC 7951 4).
 */
function subtree(
  leaves: Leaf[],
  depth: number,
  enc: 'JSON' | 'JSON_IETF',
  parent: SchemaNode,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Leaves come from a walk of the store, depth first: a node's leaves follow one another and
  // share its element object, so a name or list entry is looked up only where it changes
  // (a listing groups every leaf of every rule here).
  const groups = new Map<string, Leaf[]>();
  let lastName: string | undefined;
  let last: Leaf[] | undefined;
  for (const l of leaves) {
    const name = l.elems[depth]?.name ?? '';
    if (last === undefined || name !== lastName) {
      lastName = name;
      last = groups.get(name);
      if (last === undefined) groups.set(name, (last = []));
    }
    last.push(l);
  }
  for (const [name, group] of groups) {
    const node = parent.children.get(name);
    if (node === undefined) continue;
    const member = enc === 'JSON_IETF' && node.module !== parent.module ? `${node.module}:${name}` : name;
    if (node.kind === 'leaf') {
      out[member] = jsonValue(group[0] as Leaf, enc);
    } else if (node.kind === 'list') {
      const entries = new Map<string, { elem: PathElem; leaves: Leaf[] }>();
      let lastElem: PathElem | undefined;
      let entry: { elem: PathElem; leaves: Leaf[] } | undefined;
      for (const l of group) {
        const elem = l.elems[depth] as PathElem;
        if (entry === undefined || elem !== lastElem) {
          lastElem = elem;
          const k = elemText(elem);
          entry = entries.get(k);
          if (entry === undefined) entries.set(k, (entry = { elem, leaves: [] }));
        }
        if (l.elems.length > depth + 1) entry.leaves.push(l);
      }
      const list: Record<string, unknown>[] = [];
      for (const { elem, leaves: ls } of entries.values()) {
        const value = subtree(ls, depth + 1, enc, node);
        const key = elem.key;
        if (key !== undefined && key !== null)
          for (const kn in key) {
            if (value[kn] === undefined)
              value[kn] = node.keys.find((x) => x.name === kn)?.type.t === 'uint' ? Number(key[kn]) : key[kn];
          }
        list.push(value);
      }
      out[member] = list;
    } else {
      out[member] = subtree(group, depth + 1, enc, node);
    }
  }
  return out;
}

/**
 * Updates for the leaves matching one query: leaves as they are; JSON encodings one subtree per matched node.
 */
function updatesFor(matching: Leaf[], q: PathElem[], enc: Encoding, strip: number): Update[] {
  const node = nodeByNames(q.map((e) => e.name));
  if (enc === 'PROTO' || node === undefined || node.kind === 'leaf')
    return matching.map((l) => ({ path: { elem: l.elems.slice(strip) }, val: encodeValue(l, enc) }));
  // One update per concrete node the query names (wildcard keys filled in from the data).
  // Leaves of one node differ from those of another only at the query's wildcard positions.
  const wild = q.flatMap((e, i) => (Object.values(e.key ?? {}).includes('*') ? [i] : []));
  const byNode = new Map<string, Leaf[]>();
  for (const l of matching) {
    let k = '';
    for (const i of wild) k += `${elemText(l.elems[i] as PathElem)}/`;
    const g = byNode.get(k);
    if (g) g.push(l);
    else byNode.set(k, [l]);
  }
  return [...byNode.values()].map((ls) => {
    const at = (ls[0] as Leaf).elems.slice(0, q.length);
    const value = subtree(ls, q.length, enc === 'JSON' ? 'JSON' : 'JSON_IETF', node);
    const buf = Buffer.from(JSON.stringify(value));
    return {
      path: { elem: at.slice(strip) },
      val: enc === 'JSON' ? { json_val: buf } : { json_ietf_val: buf },
    };
  });
}

/**
 * Refuses every extension of an RPC other than Set: this target implements none there (gnmi-extensions.md:
 * an extension may fail the RPC). A Set's master arbitration is the arbiter's (arbiter.ts), which refuses
 * any other extension the same way.
 */
function refuseExtensions(ext: Extension[] | undefined): void {
  const first = (ext ?? [])[0];
  if (first === undefined) return;
  const what = first.ext ?? 'of a gNMI release after 0.10.0 (for example commit confirmed)';
  throw new RpcFailure(status.UNIMPLEMENTED, `extension ${what} is not supported by this target`);
}

function checkEncoding(enc: Encoding | undefined): Encoding {
  const e = enc ?? 'JSON';
  if (!ENCODINGS.includes(e))
    throw new GnmiError('UNIMPLEMENTED', `encoding ${e} is unsupported; supported: ${ENCODINGS.join(', ')}`);
  return e;
}

/**
 * The prefix of a response: the request's prefix when it has no wildcards (paths are then relative to it),
 * else only its target.
 */
function responsePrefix(prefix: Path | null | undefined): { prefix?: Path; strip: number } {
  if (prefix === undefined || prefix === null) return { strip: 0 };
  const elems = prefix.elem ?? [];
  const wild = elems.some((e) => Object.values(e.key ?? {}).includes('*'));
  const out: Path = {};
  if (prefix.target) out.target = prefix.target;
  if (prefix.origin) out.origin = prefix.origin;
  if (!wild && elems.length > 0) out.elem = elems;
  return { prefix: out, strip: wild ? 0 : elems.length };
}

export class GnmiServer {
  readonly faults = new FaultInjector(13);
  readonly stats = { get: 0, set: 0, subscribe: 0, capabilities: 0, errors: 0 };
  readonly model: OpenConfigModel;
  /** Master arbitration of Sets: stored election ids and stale Sets refused (and landed: 0). */
  readonly arbiter = new MasterArbiter();
  private server: Server | undefined;
  private readonly streams = new Set<(err?: unknown) => void>();

  constructor(
    private readonly sw: SimSwitch,
    private readonly options: GnmiServerOptions,
  ) {
    this.model = new OpenConfigModel(sw, {
      networkInstance: options.networkInstance ?? 'default',
      staticProtocol: options.staticProtocol ?? 'STATIC',
      pinTableComponent: options.pinTableComponent ?? 'Chip0',
      pinTableResource: options.pinTableResource ?? 'policy-forwarding-rules',
    });
  }

  async start(): Promise<{ address: string; port: number }> {
    const server = new Server();
    const impl: UntypedServiceImplementation = {
      Capabilities: (
        call: ServerUnaryCall<CapabilityRequest, CapabilityResponse>,
        cb: sendUnaryData<CapabilityResponse>,
      ) => this.unary('capabilities', call, cb, () => this.capabilities(call.request)),
      Get: (call: ServerUnaryCall<GetRequest, GetResponse>, cb: sendUnaryData<GetResponse>) =>
        this.unary('get', call, cb, () => this.get(call.request)),
      Set: (call: ServerUnaryCall<SetRequest, SetResponse>, cb: sendUnaryData<SetResponse>) =>
        this.unary('set', call, cb, () => this.set(call.request)),
      Subscribe: (call: ServerDuplexStream<SubscribeRequest, SubscribeResponse>) => this.subscribe(call),
    };
    server.addService(fastRequests(fastResponses(gnmiProto().service)), impl);
    const creds = this.options.tls
      ? ServerCredentials.createSsl(
          null,
          [{ private_key: this.options.tls.key, cert_chain: this.options.tls.cert }],
          false,
        )
      : ServerCredentials.createInsecure();
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${this.options.port}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    return { address: `${host}:${port}`, port };
  }

  async stop(): Promise<void> {
    for (const end of [...this.streams]) end(new RpcFailure(status.UNAVAILABLE, 'target shutting down'));
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 500);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Cuts every Subscribe stream (UNAVAILABLE), as a broken connection would. */
  dropStreams(): number {
    const n = this.streams.size;
    for (const end of [...this.streams]) end(new RpcFailure(status.UNAVAILABLE, 'stream dropped (injected)'));
    return n;
  }

  /** A device restart: streams cut, pins programmed again from configuration with counters at zero. */
  restartDevice(): void {
    this.dropStreams();
    this.model.restart();
  }

  get streamCount(): number {
    return this.streams.size;
  }

  private authorize(md: Metadata): void {
    if (this.options.username === undefined) return;
    const user = md.get('username')[0];
    const pass = md.get('password')[0];
    if (user !== this.options.username || pass !== this.options.password)
      throw new RpcFailure(status.UNAUTHENTICATED, 'bad or missing username/password metadata');
  }

  /** Runs a unary RPC through auth and the fault plan, mapping errors to gRPC statuses. */
  private unary<Req, Res>(
    kind: 'capabilities' | 'get' | 'set',
    call: ServerUnaryCall<Req, Res>,
    cb: sendUnaryData<Res>,
    fn: () => Res,
  ): void {
    this.stats[kind]++;
    const run = async (): Promise<Res> => {
      this.authorize(call.metadata);
      const action = this.faults.next();
      await delay(this.faults.current.latencyMs);
      if (action === 'fail') throw new RpcFailure(status.UNAVAILABLE, 'injected fault');
      if (action === 'drop') throw new RpcFailure(status.UNAVAILABLE, 'connection dropped (injected)');
      if (action === 'hang') {
        await delay(this.faults.current.hangMs);
        throw new RpcFailure(status.DEADLINE_EXCEEDED, 'no answer (injected)');
      }
      if (action === 'lost-reply') {
        // Carried out; the reply is lost (the client has timed out by then).
        fn();
        await delay(this.faults.current.hangMs);
        throw new RpcFailure(status.DEADLINE_EXCEEDED, 'reply lost (injected)');
      }
      return fn();
    };
    run().then(
      (res) => cb(null, res),
      (err: unknown) => {
        this.stats.errors++;
        cb(toStatus(err));
      },
    );
  }

  private capabilities(req: CapabilityRequest): CapabilityResponse {
    refuseExtensions(req.extension);
    return {
      supported_models: SUPPORTED_MODELS,
      supported_encodings: [...ENCODINGS],
      gNMI_version: GNMI_VERSION,
    };
  }

  /** Resolves a Get/Subscribe path: syntax and schema errors throw; returns the query elements. */
  /**
   * Resolves the paths of a Get or a subscription list, each joined to the prefix (resolved
   * once: a read-back names thousands of paths under one prefix). A path's text is made only
   * for an error.
   */
  private queries(prefix: Path | undefined, paths: readonly (Path | undefined)[]): PathElem[][] {
    const located = <T>(p: Path | undefined, fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        if (err instanceof GnmiError)
          throw new GnmiError(err.status, `${pathToString({ elem: joinPath(prefix, p) })}${err.message}`);
        throw err;
      }
    };
    const pre = located(undefined, () => resolve(prefix?.elem ?? [], ''));
    return paths.map((p) =>
      located(p, () => {
        checkOrigin(prefix, p, '');
        return resolve(p?.elem ?? [], '', 'UNIMPLEMENTED', pre).elems;
      }),
    );
  }

  private get(req: GetRequest): GetResponse {
    refuseExtensions(req.extension);
    const enc = checkEncoding(req.encoding);
    const paths = (req.path ?? []).length > 0 ? (req.path ?? []) : [{}];
    const queries = this.queries(req.prefix, paths);
    const { prefix, strip } = responsePrefix(req.prefix);
    // Each path read on its own: what it names, whatever else the target holds.
    const each = this.model.leavesEach(req.type ?? 'ALL', queries);
    const notification: Notification[] = queries.map((q, i) => {
      const matching = each[i] ?? [];
      if (matching.length === 0) throw new GnmiError('NOT_FOUND', `${pathToString({ elem: q })}: no data`);
      return {
        timestamp: nowNs(),
        ...(prefix ? { prefix } : {}),
        update: updatesFor(matching, q, enc, strip),
      };
    });
    return { notification };
  }

  private set(req: SetRequest): SetResponse {
    const admitted = this.arbiter.check(req.extension);
    const response = this.model.applySet(req);
    this.arbiter.landed(admitted);
    const out: SetResponse = { response, timestamp: nowNs() };
    if (req.prefix !== undefined && req.prefix !== null) out.prefix = req.prefix;
    return out;
  }

  private subscribe(call: ServerDuplexStream<SubscribeRequest, SubscribeResponse>): void {
    this.stats.subscribe++;
    const timers: (() => void)[] = [];
    let ended = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      timers.forEach((cancel) => cancel());
      this.streams.delete(end);
      if (err !== undefined) {
        this.stats.errors++;
        call.emit('error', toStatus(err));
      } else call.end();
    };
    this.streams.add(end);
    call.on('cancelled', () => end());
    call.on('error', () => end());
    call.on('end', () => end());
    let list: SubscriptionList | undefined;
    let queries: { sub: Subscription; q: PathElem[] }[] = [];
    let enc: Encoding = 'JSON';
    let respPrefix: { prefix?: Path; strip: number } = { strip: 0 };
    const matching = (q: PathElem[]): Leaf[] => this.model.leaves('ALL', [q]);
    // Updates taken at one time are bundled (3.5.2.1), at most NOTIFICATION_UPDATES a notification.
    const send = (ls: Leaf[], deleted: PathElem[][] = [], timestamp = nowNs()): void => {
      if (ended || (ls.length === 0 && deleted.length === 0)) return;
      const { prefix, strip } = respPrefix;
      for (let at = 0; at === 0 || at < ls.length; at += NOTIFICATION_UPDATES) {
        const update = ls
          .slice(at, at + NOTIFICATION_UPDATES)
          .map((l) => ({ path: { elem: l.elems.slice(strip) }, val: encodeValue(l, enc) }));
        call.write({
          update: {
            timestamp,
            ...(prefix ? { prefix } : {}),
            update,
            delete: at === 0 ? deleted.map((elem) => ({ elem: elem.slice(strip) })) : [],
          },
        });
      }
    };
    const all = (): Leaf[] =>
      this.model
        .leavesEach(
          'ALL',
          queries.map((x) => x.q),
        )
        .flat();

    call.on('data', (req: SubscribeRequest) => {
      try {
        if (ended) return;
        refuseExtensions(req.extension);
        if (req.subscribe !== undefined && req.subscribe !== null && list === undefined) {
          this.authorize(call.metadata);
          const l = req.subscribe;
          enc = checkEncoding(l.encoding);
          const subs = l.subscription ?? [];
          const qs = this.queries(
            l.prefix,
            subs.map((sub) => sub.path ?? undefined),
          );
          queries = subs.map((sub, i) => ({ sub, q: qs[i] as PathElem[] }));
          if (queries.length === 0)
            throw new GnmiError('INVALID_ARGUMENT', 'a subscription list needs at least one subscription');
          const mode = l.mode ?? 'STREAM';
          if (mode === 'STREAM') for (const { sub } of queries) this.checkStreamSub(sub);
          list = l;
          respPrefix = responsePrefix(l.prefix);
          if (!l.updates_only) send(all());
          call.write({ sync_response: true });
          if (mode === 'ONCE') return end();
          if (mode === 'STREAM')
            for (const { sub, q } of queries) this.stream(sub, q, matching, send, timers);
        } else if (req.poll !== undefined && req.poll !== null) {
          if (list === undefined || list.mode !== 'POLL')
            throw new GnmiError('INVALID_ARGUMENT', 'poll without a POLL subscription');
          send(all());
          call.write({ sync_response: true });
        } else {
          throw new GnmiError(
            'INVALID_ARGUMENT',
            list === undefined
              ? 'the first message must be a subscription list'
              : 'only polls may follow the subscription list',
          );
        }
      } catch (err) {
        end(err);
      }
    });
  }

  private minSampleNs(): bigint {
    return BigInt(this.options.minSampleMs ?? 10) * 1_000_000n;
  }

  /** Refuses stream subscriptions the target cannot honour (gNMI 3.5.1.5.2). */
  private checkStreamSub(sub: Subscription): void {
    const mode = sub.mode ?? 'TARGET_DEFINED';
    const interval = BigInt(sub.sample_interval ?? 0);
    if (mode === 'SAMPLE' && interval !== 0n && interval < this.minSampleNs())
      throw new GnmiError(
        'INVALID_ARGUMENT',
        `sample_interval ${interval} ns is below the target's minimum ${this.minSampleNs()} ns`,
      );
    if (mode === 'TARGET_DEFINED' && interval !== 0n)
      throw new GnmiError('INVALID_ARGUMENT', 'TARGET_DEFINED subscriptions take no sample_interval');
  }

  private stream(
    sub: Subscription,
    q: PathElem[],
    matching: (q: PathElem[]) => Leaf[],
    send: (ls: Leaf[], deleted?: PathElem[][], timestamp?: string) => void,
    timers: (() => void)[],
  ): void {
    const mode = sub.mode ?? 'TARGET_DEFINED';
    const toMs = (ns: bigint): number => Number(ns / 1_000_000n);
    const heartbeatMs = toMs(BigInt(sub.heartbeat_interval ?? 0));
    const clock = this.options.clock ?? REAL_CLOCK;
    const every = (ms: number, fn: () => void): (() => void) => clock.every(ms, fn);
    if (mode === 'SAMPLE' && sub.suppress_redundant !== true) {
      // Every leaf, every interval: nothing to remember between samples (deletes are
      // optional in SAMPLE mode, 3.5.2.3). A sample is built and sent a part at a time, its
      // notifications sharing one timestamp.
      const interval = BigInt(sub.sample_interval ?? 0);
      timers.push(
        every(interval === 0n ? toMs(this.minSampleNs()) : Math.max(1, toMs(interval)), () => {
          const timestamp = nowNs();
          this.model.leavesInParts('ALL', q, (ls) => send(ls, [], timestamp));
        }),
      );
      return;
    }
    let last = new Map<string, Leaf>(matching(q).map((l) => [leafKey(l.elems), l]));
    let lastFull = clock.now();
    const tick = (changedOnly: boolean): void => {
      const cur = new Map(matching(q).map((l) => [leafKey(l.elems), l]));
      const deleted = [...last.keys()].filter((k) => !cur.has(k)).map((k) => (last.get(k) as Leaf).elems);
      const heartbeat = heartbeatMs > 0 && clock.now() - lastFull >= heartbeatMs;
      last = new Map([...cur].map(([k, l]) => [k, l]));
      const prev = new Map(lastSeen);
      for (const [k, l] of cur) lastSeen.set(k, l.value);
      if (!changedOnly || heartbeat) {
        lastFull = clock.now();
        send([...cur.values()], deleted);
        return;
      }
      send(
        [...cur].filter(([k, l]) => prev.get(k) !== l.value).map(([, l]) => l),
        deleted,
      );
    };
    const lastSeen = new Map<string, unknown>([...last].map(([k, l]) => [k, l.value]));
    if (mode === 'SAMPLE') {
      const interval = BigInt(sub.sample_interval ?? 0);
      const ms = interval === 0n ? toMs(this.minSampleNs()) : Math.max(1, toMs(interval));
      // suppress_redundant: only leaves that changed, except once per heartbeat interval (3.5.1.5.2).
      timers.push(every(ms, () => tick(true)));
      return;
    }
    // ON_CHANGE (and TARGET_DEFINED, where every leaf is reported on change): scan for
    // changed and deleted leaves; with a heartbeat, everything again once per interval.
    timers.push(
      every(Math.min(this.options.changeScanMs ?? 50, heartbeatMs > 0 ? heartbeatMs : Infinity), () =>
        tick(true),
      ),
    );
  }
}

function toStatus(err: unknown): { code: status; details: string } {
  if (err instanceof RpcFailure) return { code: err.code, details: err.message };
  if (err instanceof GnmiError) return { code: status[err.status], details: err.message };
  return { code: status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}
