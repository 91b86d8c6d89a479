// The simulator's gNMI target over @grpc/grpc-js: Capabilities, Get, Set (one SetRequest is
// one transaction) and Subscribe (ONCE, POLL, and STREAM with SAMPLE or ON_CHANGE) on the
// OpenConfig paths of model.ts. Optional username/password metadata, TLS, injected faults
// (a dropped connection is reported as UNAVAILABLE, which is what a client sees).

import { Server, ServerCredentials, status, type Metadata, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { gnmiProto, joinPath, pathToString, type CapabilityResponse, type GetRequest, type GetResponse, type Notification, type PathElem, type SetRequest, type SetResponse, type SubscribeRequest, type SubscribeResponse, type Subscription, type Update } from '../../proto/gnmi.js';
import { delay, FaultInjector } from '../faults.js';
import type { SimSwitch } from '../sim-switch.js';
import { applySet, GnmiError, leaves, scalarToTyped, under, type Leaf } from './model.js';

export interface GnmiServerOptions {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls?: { key: Buffer; cert: Buffer };
  networkInstance?: string;
  /** How often ON_CHANGE subscriptions look for changes, ms. */
  changeScanMs?: number;
}

const nowNs = (): string => (BigInt(Date.now()) * 1_000_000n).toString();
const leafKey = (elems: PathElem[]): string => pathToString({ elem: elems });

class RpcFailure extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
  }
}

export class GnmiServer {
  readonly faults = new FaultInjector(13);
  readonly stats = { get: 0, set: 0, subscribe: 0, capabilities: 0, errors: 0 };
  private server: Server | undefined;
  private readonly streams = new Set<() => void>();

  constructor(
    private readonly sw: SimSwitch,
    private readonly options: GnmiServerOptions,
  ) {}

  async start(): Promise<{ address: string; port: number }> {
    const server = new Server();
    const impl: UntypedServiceImplementation = {
      Capabilities: (call: ServerUnaryCall<unknown, CapabilityResponse>, cb: sendUnaryData<CapabilityResponse>) => this.unary('capabilities', call, cb, () => this.capabilities()),
      Get: (call: ServerUnaryCall<GetRequest, GetResponse>, cb: sendUnaryData<GetResponse>) => this.unary('get', call, cb, () => this.get(call.request)),
      Set: (call: ServerUnaryCall<SetRequest, SetResponse>, cb: sendUnaryData<SetResponse>) => this.unary('set', call, cb, () => this.set(call.request)),
      Subscribe: (call: ServerDuplexStream<SubscribeRequest, SubscribeResponse>) => this.subscribe(call),
    };
    server.addService(gnmiProto().service, impl);
    const creds = this.options.tls ? ServerCredentials.createSsl(null, [{ private_key: this.options.tls.key, cert_chain: this.options.tls.cert }], false) : ServerCredentials.createInsecure();
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:${this.options.port}`, creds, (err, p) => (err ? reject(err) : resolve(p))));
    this.server = server;
    return { address: `${host}:${port}`, port };
  }

  async stop(): Promise<void> {
    for (const end of [...this.streams]) end();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  private authorize(md: Metadata): void {
    if (this.options.username === undefined) return;
    const user = md.get('username')[0];
    const pass = md.get('password')[0];
    if (user !== this.options.username || pass !== this.options.password) throw new RpcFailure(status.UNAUTHENTICATED, 'bad or missing username/password metadata');
  }

  /** Runs a unary RPC through auth and the fault plan, mapping errors to gRPC statuses. */
  private unary<Req, Res>(kind: 'capabilities' | 'get' | 'set', call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>, fn: () => Res): void {
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

  private capabilities(): CapabilityResponse {
    return {
      supported_models: [
        { name: 'openconfig-network-instance', organization: 'OpenConfig working group', version: '4.4.0' },
        { name: 'openconfig-policy-forwarding', organization: 'OpenConfig working group', version: '0.7.0' },
      ],
      supported_encodings: ['JSON', 'JSON_IETF'],
      gNMI_version: '0.7.0',
    };
  }

  private get(req: GetRequest): GetResponse {
    const enc = req.encoding ?? 'JSON';
    if (enc !== 'JSON' && enc !== 'JSON_IETF') throw new GnmiError('UNIMPLEMENTED', `encoding ${enc} is not supported; use JSON or JSON_IETF`);
    const all = leaves(this.sw, this.options.networkInstance);
    const paths = (req.path ?? []).length > 0 ? (req.path ?? []) : [{}];
    const notification: Notification[] = paths.map((p) => {
      const q = joinPath(req.prefix, p);
      const update: Update[] = all.filter((l) => under(l.elems, q)).map((l) => ({ path: { elem: l.elems }, val: { [enc === 'JSON' ? 'json_val' : 'json_ietf_val']: Buffer.from(JSON.stringify(l.value)) } }));
      return { timestamp: nowNs(), update };
    });
    return { notification };
  }

  private set(req: SetRequest): SetResponse {
    const response = applySet(this.sw, req);
    return { prefix: req.prefix ?? {}, response, timestamp: nowNs() };
  }

  private subscribe(call: ServerDuplexStream<SubscribeRequest, SubscribeResponse>): void {
    this.stats.subscribe++;
    const timers: NodeJS.Timeout[] = [];
    let ended = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      timers.forEach((t) => clearInterval(t));
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
    let subs: { list: Required<Pick<SubscribeRequest, 'subscribe'>>['subscribe']; queries: { sub: Subscription; q: PathElem[] }[] } | undefined;
    const send = (q: PathElem[], only?: Set<string>, deleted?: PathElem[][]): void => {
      const matching = leaves(this.sw, this.options.networkInstance).filter((l) => under(l.elems, q) && (only === undefined || only.has(leafKey(l.elems))));
      if (matching.length === 0 && (deleted ?? []).length === 0) return;
      call.write({ update: { timestamp: nowNs(), update: matching.map((l) => ({ path: { elem: l.elems }, val: scalarToTyped(l.value) })), delete: (deleted ?? []).map((elem) => ({ elem })) } });
    };
    const snapshot = (q: PathElem[]): Map<string, Leaf> => new Map(leaves(this.sw, this.options.networkInstance).filter((l) => under(l.elems, q)).map((l) => [leafKey(l.elems), l]));

    call.on('data', (req: SubscribeRequest) => {
      try {
        if (ended) return;
        if (req.subscribe !== undefined && subs === undefined) {
          this.authorize(call.metadata);
          const list = req.subscribe;
          const queries = (list.subscription ?? []).map((sub) => ({ sub, q: joinPath(list.prefix, sub.path) }));
          if (queries.length === 0) throw new GnmiError('INVALID_ARGUMENT', 'a subscription list needs at least one subscription');
          subs = { list, queries };
          const mode = list.mode ?? 'STREAM';
          if (!list.updates_only) for (const { q } of queries) send(q);
          call.write({ sync_response: true });
          if (mode === 'ONCE') return end();
          if (mode === 'STREAM') for (const { sub, q } of queries) this.stream(sub, q, send, snapshot, timers);
        } else if (req.poll !== undefined || req.request === 'poll') {
          if (subs === undefined || subs.list.mode !== 'POLL') throw new GnmiError('INVALID_ARGUMENT', 'poll without a POLL subscription');
          for (const { q } of subs.queries) send(q);
          call.write({ sync_response: true });
        } else {
          throw new GnmiError('INVALID_ARGUMENT', subs === undefined ? 'the first message must be a subscription list' : 'only polls may follow the subscription list');
        }
      } catch (err) {
        end(err);
      }
    });
  }

  private stream(sub: Subscription, q: PathElem[], send: (q: PathElem[], only?: Set<string>, deleted?: PathElem[][]) => void, snapshot: (q: PathElem[]) => Map<string, Leaf>, timers: NodeJS.Timeout[]): void {
    const mode = sub.mode ?? 'TARGET_DEFINED';
    if (mode === 'SAMPLE') {
      const ms = Math.max(10, Number(BigInt(sub.sample_interval ?? 0) / 1_000_000n) || 1000);
      timers.push(setInterval(() => send(q), ms));
      return;
    }
    // ON_CHANGE (and TARGET_DEFINED): scan for changed and deleted leaves.
    let last = snapshot(q);
    timers.push(
      setInterval(() => {
        const cur = snapshot(q);
        const changed = new Set<string>();
        for (const [k, l] of cur) if (last.get(k)?.value !== l.value) changed.add(k);
        const deleted = [...last.keys()].filter((k) => !cur.has(k)).map((k) => (last.get(k) as Leaf).elems);
        last = cur;
        if (changed.size > 0 || deleted.length > 0) send(q, changed, deleted);
      }, this.options.changeScanMs ?? 50),
    );
  }
}

function toStatus(err: unknown): { code: status; details: string } {
  if (err instanceof RpcFailure) return { code: err.code, details: err.message };
  if (err instanceof GnmiError) return { code: status[err.status], details: err.message };
  return { code: status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}
