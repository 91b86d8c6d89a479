// gNMI over @grpc/grpc-js with the project's proto/: TLS with a CA file (or insecure only
// when configured explicitly), username and password as call metadata (the gNMI
// authentication convention, gnmi-authentication.md), a deadline on every unary call and on
// Subscribe ONCE reads, and gRPC statuses mapped to the typed switch errors. The channel reconnects by itself
// with
// gRPC's exponential backoff; streams are re-established by their owner (counters.ts).
// Knows nothing of OpenConfig.

import { readFileSync } from 'node:fs';
import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  status,
  type Client,
  type ClientDuplexStream,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { fastClientResponses } from '../../proto/decode.js';
import { fastClientRequests } from '../../proto/encode.js';
import {
  gnmiProto,
  type CapabilityResponse,
  type GetRequest,
  type GetResponse,
  type Notification,
  type SetRequest,
  type SetResponse,
  type SubscribeRequest,
  type SubscribeResponse,
  type SubscriptionList,
} from '../../proto/gnmi.js';
import {
  SwitchAuthError,
  SwitchCommandError,
  SwitchError,
  SwitchTimeoutError,
  SwitchTransportError,
} from '../errors.js';

export interface GnmiTransportOptions {
  switchName: string;
  /** host:port of the gNMI target. */
  address: string;
  username?: string;
  password?: string;
  /** PEM file of the CA that signed the target's certificate (TLS). */
  caFile?: string;
  /** Plaintext gRPC; only when set explicitly. */
  insecure?: boolean;
  /** TLS server name to verify, when it differs from the address. */
  tlsServerName?: string;
  /** Deadline of each unary call, ms. */
  timeoutMs?: number;
}

let client: ServiceClientConstructor | undefined;

/**
 * The gNMI client: its notification and Set responses read by the direct decoder
 * (proto/decode.ts), its Set and Subscribe requests written by the direct encoder (proto/encode.ts).
 */
function fastClient(): ServiceClientConstructor {
  client ??= makeGenericClientConstructor(
    fastClientRequests(fastClientResponses(gnmiProto().service)),
    'gNMI',
  );
  return client;
}

type Unary<Req, Res> = (
  req: Req,
  md: Metadata,
  opts: { deadline: number },
  cb: (err: ServiceError | null, res: Res) => void,
) => void;

export class GnmiTransport {
  private readonly client: Client & Record<string, unknown>;
  private readonly timeoutMs: number;
  readonly stats = { calls: 0, failures: 0, timeouts: 0 };

  constructor(private readonly options: GnmiTransportOptions) {
    if (options.insecure !== true && options.caFile === undefined)
      throw new TypeError(
        `${options.switchName}: gNMI needs a caFile for TLS, or insecure: true for plaintext`,
      );
    const creds =
      options.insecure === true
        ? credentials.createInsecure()
        : credentials.createSsl(readFileSync(options.caFile as string));
    const Ctor = fastClient();
    const channelOptions: Record<string, string | number> = {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    };
    if (options.tlsServerName !== undefined)
      channelOptions['grpc.ssl_target_name_override'] = options.tlsServerName;
    this.client = new Ctor(options.address, creds, channelOptions);
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  metadata(): Metadata {
    const md = new Metadata();
    if (this.options.username !== undefined) md.set('username', this.options.username);
    if (this.options.password !== undefined) md.set('password', this.options.password);
    return md;
  }

  capabilities(): Promise<CapabilityResponse> {
    return this.unary('Capabilities', {});
  }

  get(req: GetRequest): Promise<GetResponse> {
    return this.unary('Get', req);
  }

  set(req: SetRequest): Promise<SetResponse> {
    return this.unary('Set', req);
  }

  /** Opens a Subscribe stream (no deadline: it lives until cancelled or broken). */
  subscribe(): ClientDuplexStream<SubscribeRequest, SubscribeResponse> {
    const fn = this.client['Subscribe'] as (
      md: Metadata,
    ) => ClientDuplexStream<SubscribeRequest, SubscribeResponse>;
    return fn.call(this.client, this.metadata());
  }

  /**
   * A Subscribe in ONCE mode (gNMI 3.5.1.5.1): the notifications sent up to sync_response,
   * within the unary deadline. Unlike a Get, a path with no data sends nothing and fails
   * nothing (3.5.2.4), so many entries can be read where some may be gone.
   */
  once(list: Omit<SubscriptionList, 'mode'>): Promise<Notification[]> {
    this.stats.calls++;
    const s = this.subscribe();
    return new Promise((resolve, reject) => {
      const out: Notification[] = [];
      let done = false;
      const finish = (err?: SwitchError): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.cancel();
        if (err === undefined) resolve(out);
        else {
          this.stats.failures++;
          reject(err);
        }
      };
      const timer = setTimeout(() => {
        this.stats.timeouts++;
        finish(
          new SwitchTimeoutError(
            this.options.switchName,
            `gNMI Subscribe ONCE did not sync within ${this.timeoutMs} ms`,
          ),
        );
      }, this.timeoutMs);
      s.on('data', (m: SubscribeResponse) => {
        if (m.sync_response === true) finish();
        else if (m.update !== undefined && m.update !== null) out.push(m.update);
      });
      s.on('error', (err: ServiceError) => finish(this.toSwitchError(err, 'Subscribe ONCE')));
      s.on('end', () =>
        finish(
          new SwitchTransportError(
            this.options.switchName,
            'gNMI Subscribe ONCE ended before its sync_response',
          ),
        ),
      );
      s.write({ subscribe: { ...list, mode: 'ONCE' } });
    });
  }

  close(): void {
    this.client.close();
  }

  /** Maps a gRPC error to the typed switch error of its failure mode. */
  toSwitchError(err: ServiceError | Error, what: string): SwitchError {
    const name = this.options.switchName;
    const code = (err as Partial<ServiceError>).code;
    const detail = (err as Partial<ServiceError>).details ?? err.message;
    switch (code) {
      case status.DEADLINE_EXCEEDED:
        this.stats.timeouts++;
        return new SwitchTimeoutError(name, `gNMI ${what} did not answer within ${this.timeoutMs} ms`, {
          cause: err,
        });
      case status.UNAVAILABLE:
      case status.CANCELLED:
      case status.INTERNAL:
      case status.UNKNOWN:
        return new SwitchTransportError(name, `gNMI ${what} failed: ${detail}`, { cause: err });
      case status.UNAUTHENTICATED:
      case status.PERMISSION_DENIED:
        return new SwitchAuthError(
          name,
          `gNMI ${what} refused the credentials of user '${this.options.username ?? ''}': ${detail}`,
          { cause: err },
        );
      default:
        return new SwitchCommandError(name, `gNMI ${what}`, detail, code ?? -1, {
          cause: err,
          retryable: code === status.ABORTED,
        });
    }
  }

  private unary<Req, Res>(method: 'Capabilities' | 'Get' | 'Set', req: Req): Promise<Res> {
    this.stats.calls++;
    const fn = this.client[method] as Unary<Req, Res>;
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, this.metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err) {
          this.stats.failures++;
          reject(this.toSwitchError(err, method));
        } else resolve(res);
      });
    });
  }
}
