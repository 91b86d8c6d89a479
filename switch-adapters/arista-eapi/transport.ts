// JSON-RPC 2.0 `runCmds` over HTTP or HTTPS to an eAPI endpoint: basic auth, keep-alive
// connection reuse, a bounded number of concurrent connections, a per-request timeout, and
// certificate verification on by default (with an optional CA file). Knows nothing of
// DirectFlow: it moves command lists and results, and maps failures to typed errors.

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import {
  SwitchError,
  SwitchAuthError,
  SwitchCommandError,
  SwitchProtocolError,
  SwitchTimeoutError,
  SwitchTransportError,
} from '../errors.js';

export interface EapiTransportOptions {
  switchName: string;
  /** e.g. https://192.0.2.1/command-api */
  url: string;
  username: string;
  password: string;
  timeoutMs?: number;
  /** Most requests in flight at once (connections kept alive for reuse). */
  maxConcurrent?: number;
  /** PEM file of the CA that signed the switch's certificate. */
  caFile?: string;
  /** Skip certificate verification (lab switches with self-signed certificates). */
  insecureSkipVerify?: boolean;
}

export type CommandResult = Record<string, unknown>;

/**
 * A command as eAPI takes it: a line, or a line with input for its prompt (`enable` with the
 * enable secret, as pyeapi sends it: `{"cmd": "enable", "input": SECRET}`).
 */
export type EapiCommand = string | { cmd: string; input: string };

/** The text of a command, for messages. */
export const commandText = (c: EapiCommand | undefined): string =>
  c === undefined ? '?' : typeof c === 'string' ? c : c.cmd;

export type RunResult =
  | { ok: true; results: CommandResult[] }
  | {
      ok: false;
      /** eAPI error code (1002 invalid command, ...). */
      code: number;
      message: string;
      /** Results of the commands before the failing one. */
      results: CommandResult[];
      /** Index of the failing command in the request (a failure of the whole request throws instead). */
      failedIndex: number;
      /** What the CLI said about the failing command. */
      errors: string[];
    };

export class EapiTransport {
  private readonly agent: HttpAgent;
  private readonly url: URL;
  private readonly auth: string;
  private readonly timeoutMs: number;
  private nextId = 1;
  readonly stats = { requests: 0, failures: 0, timeouts: 0 };

  constructor(private readonly options: EapiTransportOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:')
      throw new TypeError(`eAPI url must be http or https: ${options.url}`);
    this.auth = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const common = { keepAlive: true, maxSockets: options.maxConcurrent ?? 4, keepAliveMsecs: 10_000 };
    this.agent =
      this.url.protocol === 'https:'
        ? new HttpsAgent({
            ...common,
            rejectUnauthorized: !(options.insecureSkipVerify ?? false),
            ...(options.caFile ? { ca: readFileSync(options.caFile) } : {}),
          })
        : new HttpAgent(common);
  }

  /**
   * Runs commands in one request; eAPI command failures come back as a value, transport failures throw.
   * `beforeSend`, where given, runs at the moment the request has its connection, just before its
   * bytes are written, and stops it there by throwing (a write's fence: see ../fence.ts).
   */
  async runCmds(
    cmds: readonly EapiCommand[],
    format: 'json' | 'text' = 'json',
    beforeSend?: () => void,
  ): Promise<RunResult> {
    const id = this.nextId++;
    const body = JSON.stringify({
      jsonrpc: '2.0',
      method: 'runCmds',
      params: { version: 1, cmds, format },
      id,
    });
    this.stats.requests++;
    const { status, text } = await this.post(body, beforeSend);
    const name = this.options.switchName;
    if (status === 401 || status === 403)
      throw new SwitchAuthError(
        name,
        `eAPI refused the credentials of user '${this.options.username}' (HTTP ${status})`,
      );
    if (status !== 200) {
      this.stats.failures++;
      throw new SwitchTransportError(name, `eAPI answered HTTP ${status}: ${text.slice(0, 200)}`);
    }
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch (err) {
      throw new SwitchProtocolError(name, `eAPI answer is not JSON: ${text.slice(0, 100)}`, { cause: err });
    }
    if (typeof reply !== 'object' || reply === null)
      throw new SwitchProtocolError(name, 'eAPI answer is not a JSON-RPC object');
    const r = reply as { result?: unknown; error?: { code?: unknown; message?: unknown; data?: unknown } };
    if (Array.isArray(r.result)) return { ok: true, results: r.result as CommandResult[] };
    if (r.error !== undefined) {
      const code = typeof r.error.code === 'number' ? r.error.code : -1;
      const message = typeof r.error.message === 'string' ? r.error.message : 'unknown error';
      const data = Array.isArray(r.error.data) ? (r.error.data as CommandResult[]) : [];
      this.stats.failures++;
      // A command that fails comes with `data` (the results before it and its errors); an
      // error without it is about the whole request, and the request may be sent again.
      if (data.length === 0)
        throw new SwitchCommandError(name, '(request)', message, code, { retryable: true });
      const last = data[data.length - 1];
      const errors = Array.isArray(last?.['errors']) ? (last['errors'] as unknown[]).map(String) : [message];
      return {
        ok: false,
        code,
        message,
        results: data.slice(0, Math.max(0, data.length - 1)),
        failedIndex: Math.max(0, data.length - 1),
        errors,
      };
    }
    throw new SwitchProtocolError(name, 'eAPI answer has neither result nor error');
  }

  close(): void {
    this.agent.destroy();
  }

  private post(body: string, beforeSend?: () => void): Promise<{ status: number; text: string }> {
    const name = this.options.switchName;
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            authorization: this.auth,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (err) =>
            reject(new SwitchTransportError(name, `eAPI response broke off: ${err.message}`, { cause: err })),
          );
        },
      );
      req.setTimeout(this.timeoutMs, () => {
        this.stats.timeouts++;
        req.destroy(new SwitchTimeoutError(name, `eAPI did not answer within ${this.timeoutMs} ms`));
      });
      req.on('error', (err) => {
        if (err instanceof SwitchError) reject(err);
        else {
          this.stats.failures++;
          reject(
            new SwitchTransportError(name, `eAPI request to ${this.url.host} failed: ${err.message}`, {
              cause: err,
            }),
          );
        }
      });
      if (beforeSend === undefined) {
        req.end(body);
        return;
      }
      // The request waits here for a free connection (and a new one for its handshake), for as long as
      // the process may be paused: the check runs when the bytes would leave, not when the write began.
      req.once('socket', (socket) => {
        const send = (): void => {
          try {
            beforeSend();
          } catch (err) {
            req.destroy(err as Error);
            return;
          }
          req.end(body);
        };
        if (!socket.connecting) send();
        else socket.once(this.url.protocol === 'https:' ? 'secureConnect' : 'connect', send);
      });
    });
  }
}
