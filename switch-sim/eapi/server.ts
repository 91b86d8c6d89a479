// The simulator's eAPI: JSON-RPC 2.0 `runCmds` at POST /command-api over HTTP or HTTPS with
// basic auth. Commands run in order in one CLI session and stop at the first error, which
// is reported in eAPI's shape: {"error":{"code","message","data":[results..., {"errors":[...]}]}}.

import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { SimSwitch } from '../sim-switch.js';
import { delay, FaultInjector } from '../faults.js';
import { CommandError } from './errors.js';
import { DEFAULT_PROFILE, type EosProfile } from './profile.js';
import { CliSession, type ConfigSession } from './session.js';
import type { Result } from './show.js';

export interface EapiServerOptions {
  host: string;
  port: number;
  username: string;
  password: string;
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Largest request body accepted, bytes. */
  maxBodyBytes?: number;
  /** What the simulated EOS is and how it answers where releases differ (defaults: DEFAULT_PROFILE). */
  eos?: Partial<EosProfile>;
}

export interface EapiStats {
  requests: number;
  commands: number;
  errors: number;
  authFailures: number;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const COMMAND_LOG_MAX = 10_000;
/** The longest a request runs commands before it lets the rest of the simulator run (ms). */
const YIELD_MS = 4;

function rpcError(id: Json, code: number, message: string, data?: Json): Json {
  const error: { [k: string]: Json } = { code, message };
  if (data !== undefined) error['data'] = data;
  return { jsonrpc: '2.0', id, error };
}

export class EapiServer {
  readonly faults = new FaultInjector(11);
  readonly stats: EapiStats = { requests: 0, commands: 0, errors: 0, authFailures: 0 };
  /**
   * The last commands run (at least COMMAND_LOG_MAX of them), in order: what tests read to tell what a client
   * sent.
   */
  readonly commandLog: string[] = [];
  /** The simulated EOS; tests may change it between requests. */
  readonly profile: EosProfile;
  /** Configuration sessions pending commit (kept across requests, as EOS keeps them). */
  readonly configSessions = new Map<string, ConfigSession>();
  private server: Server | undefined;
  private readonly expectedAuth: Buffer;

  constructor(
    private readonly sw: SimSwitch,
    private readonly options: EapiServerOptions,
  ) {
    this.expectedAuth = Buffer.from(
      `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`,
    );
    this.profile = {
      ...DEFAULT_PROFILE,
      privilegedShows: [...DEFAULT_PROFILE.privilegedShows],
      ...options.eos,
    };
  }

  async start(): Promise<{ url: string; port: number }> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent)
          this.send(
            res,
            500,
            rpcError(null, -32603, `internal error: ${err instanceof Error ? err.message : String(err)}`),
          );
      });
    };
    const server = this.options.tls
      ? createHttpsServer({ key: this.options.tls.key, cert: this.options.tls.cert }, handler)
      : createHttpServer(handler);
    server.keepAliveTimeout = 30_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return { url: `${this.options.tls ? 'https' : 'http'}://${host}:${port}/command-api`, port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url !== '/command-api') return this.send(res, 404, { error: 'not found' });
    if (req.method !== 'POST') return this.send(res, 405, { error: 'use POST' });
    const auth = Buffer.from(req.headers.authorization ?? '');
    if (auth.length !== this.expectedAuth.length || !timingSafeEqual(auth, this.expectedAuth)) {
      this.stats.authFailures++;
      res.setHeader('WWW-Authenticate', 'Basic realm="eAPI"');
      return this.send(res, 401, { error: 'Unauthorized' });
    }
    const body = await this.readBody(req);
    if (body === undefined) return this.send(res, 413, rpcError(null, -32600, 'request too large'));
    this.stats.requests++;
    const action = this.faults.next();
    await delay(this.faults.current.latencyMs);
    if (action === 'drop') {
      req.socket.destroy();
      return;
    }
    if (action === 'hang') {
      const t = setTimeout(() => req.socket.destroy(), this.faults.current.hangMs);
      req.socket.once('close', () => clearTimeout(t));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      return this.send(
        res,
        200,
        rpcError(null, -32700, `parse error: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
    const reply =
      action === 'fail'
        ? rpcError(idOf(parsed), 1000, 'Internal error (injected fault)')
        : await this.runCmds(parsed);
    if (action === 'lost-reply') {
      // Carried out; the reply is lost.
      const t = setTimeout(() => req.socket.destroy(), this.faults.current.hangMs);
      req.socket.once('close', () => clearTimeout(t));
      return;
    }
    this.send(res, 200, reply);
  }

  private async runCmds(request: unknown): Promise<Json> {
    if (typeof request !== 'object' || request === null || Array.isArray(request))
      return rpcError(null, -32600, 'invalid request: expected a JSON-RPC object');
    const r = request as Record<string, unknown>;
    const id = idOf(r);
    if (r['jsonrpc'] !== '2.0') return rpcError(id, -32600, "invalid request: jsonrpc must be '2.0'");
    if (r['method'] !== 'runCmds') return rpcError(id, -32601, `method not found: ${String(r['method'])}`);
    const params = r['params'];
    if (typeof params !== 'object' || params === null)
      return rpcError(id, -32602, 'invalid params: expected an object');
    const p = params as Record<string, unknown>;
    if (p['version'] !== 1 && p['version'] !== 'latest')
      return rpcError(id, -32602, 'invalid params: version must be 1 or "latest"');
    const format = p['format'] ?? 'json';
    if (format !== 'json' && format !== 'text')
      return rpcError(id, -32602, 'invalid params: format must be "json" or "text"');
    const cmdsRaw = p['cmds'];
    if (!Array.isArray(cmdsRaw) || cmdsRaw.length === 0)
      return rpcError(id, -32602, 'invalid params: cmds must be a non-empty list');
    const cmds: { cmd: string; input: string | undefined }[] = [];
    for (const c of cmdsRaw) {
      const obj = typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : undefined;
      const cmd: unknown = obj !== undefined ? obj['cmd'] : c;
      const input: unknown = obj?.['input'];
      if (typeof cmd !== 'string' || (input !== undefined && typeof input !== 'string'))
        return rpcError(
          id,
          -32602,
          'invalid params: each command is a string or {"cmd": string, "input"?: string}',
        );
      cmds.push({ cmd, input });
    }
    const session = new CliSession(this.sw, this.profile, this.configSessions);
    const results: Json[] = [];
    let slice = performance.now();
    for (let i = 0; i < cmds.length; i++) {
      // A long request does not stop the rest of the switch: after every YIELD_MS of commands
      // the event loop runs what waits (forwarding, the mirror, other requests), as a switch's
      // CLI runs beside its forwarding. A configuration session still lands whole, at its commit.
      if (performance.now() - slice >= YIELD_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        slice = performance.now();
      }
      const { cmd, input } = cmds[i] as { cmd: string; input: string | undefined };
      this.stats.commands++;
      this.commandLog.push(cmd);
      // Trimmed in blocks: a busy client does not pay a copy per command.
      if (this.commandLog.length >= 2 * COMMAND_LOG_MAX) this.commandLog.splice(0, COMMAND_LOG_MAX);
      try {
        results.push(session.run(cmd, format, input) as Json & Result);
      } catch (err) {
        session.finish();
        this.stats.errors++;
        if (!(err instanceof CommandError)) throw err;
        return rpcError(id, err.code, `CLI command ${i + 1} of ${cmds.length} '${cmd}' failed: ${err.kind}`, [
          ...results,
          { errors: err.errors },
        ]);
      }
    }
    session.finish();
    return { jsonrpc: '2.0', id, result: results };
  }

  private readBody(req: IncomingMessage): Promise<string | undefined> {
    const max = this.options.maxBodyBytes ?? 16 * 1024 * 1024;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= max) chunks.push(c);
      });
      req.on('end', () => resolve(size > max ? undefined : Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}

function idOf(r: unknown): Json {
  if (typeof r !== 'object' || r === null) return null;
  const id = (r as Record<string, unknown>)['id'];
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}
