// The operator CLI's API client: the controller's URL (--url, FLOWPIN_URL, or the default
// listener), the bearer token (FLOWPIN_TOKEN or --token-file; only changes send it), and
// errors that carry the API's error code and message.

import { readFileSync } from 'node:fs';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Client {
  constructor(
    readonly url: string,
    private readonly token: string | undefined,
  ) {}

  static from(opts: { url?: string; 'token-file'?: string }): Client {
    const url = (opts.url ?? process.env['FLOWPIN_URL'] ?? DEFAULT_URL).replace(/\/+$/, '');
    const token = opts['token-file'] !== undefined ? readFileSync(opts['token-file'], 'utf8').trim() : process.env['FLOWPIN_TOKEN'];
    return new Client(url, token === '' ? undefined : token);
  }

  async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method, headers, signal: AbortSignal.timeout(120_000), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      throw new ApiError(0, 'unreachable', `cannot reach flowpin at ${this.url}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new ApiError(res.status, 'bad-response', `${method} ${path}: HTTP ${res.status}, not JSON`);
    }
    if (!res.ok) {
      const e = json as { error?: string; message?: string };
      const hint = res.status === 401 && this.token === undefined ? ' (set FLOWPIN_TOKEN or pass --token-file)' : '';
      throw new ApiError(res.status, e.error ?? 'error', `${e.message ?? `${method} ${path}: HTTP ${res.status}`}${hint}`);
    }
    return json as T;
  }
}

export const enc = encodeURIComponent;
export const nexthopPath = (sw: string, vip: string, nh?: string): string => `/api/v1/switches/${enc(sw)}/vips/${enc(vip)}/nexthops${nh === undefined ? '' : `/${enc(nh)}`}`;
