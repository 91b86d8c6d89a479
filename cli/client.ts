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
    /** The API error's `detail`, where it gave one. */
    readonly detail?: Record<string, unknown>,
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
    const token =
      opts['token-file'] !== undefined
        ? readFileSync(opts['token-file'], 'utf8').trim()
        : process.env['FLOWPIN_TOKEN'];
    return new Client(url, token === '' ? undefined : token);
  }

  /** One request; `timeoutMs` is its deadline (120 s unless given: a change may wait for its switch). */
  async call<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    timeoutMs = 120_000,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    let res: { status: number; text: string };
    try {
      res = await send(
        `${this.url}${path}`,
        method,
        headers,
        body === undefined ? undefined : JSON.stringify(body),
        timeoutMs,
      );
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError')
        throw new ApiError(
          0,
          'timeout',
          `flowpin at ${this.url} did not answer ${method} ${path} within ${timeoutMs / 1000} s`,
        );
      throw new ApiError(
        0,
        'unreachable',
        `cannot reach flowpin at ${this.url}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    let json: unknown;
    try {
      json = res.text === '' ? {} : JSON.parse(res.text);
    } catch {
      throw new ApiError(res.status, 'bad-response', `${method} ${path}: HTTP ${res.status}, not JSON`);
    }
    if (res.status < 200 || res.status > 299) {
      const e = json as { error?: string; message?: string; detail?: Record<string, unknown> };
      const hint =
        res.status === 401 && this.token === undefined ? ' (set FLOWPIN_TOKEN or pass --token-file)' : '';
      throw new ApiError(
        res.status,
        e.error ?? 'error',
        `${e.message ?? `${method} ${path}: HTTP ${res.status}`}${hint}`,
        e.detail,
      );
    }
    return json as T;
  }
}

/**
 * One HTTP(S) request with a deadline for the whole exchange. node:http rather than fetch:
 * fetch loads undici on first use, about 100 ms of every operator command's start-up.
 */
async function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = lib.request(
      u,
      {
        method,
        headers: {
          ...headers,
          ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
        },
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (err: Error) =>
      reject(
        err.name === 'AbortError' && err.cause instanceof Error && err.cause.name === 'TimeoutError'
          ? err.cause
          : err,
      ),
    );
    req.end(body);
  });
}

export const enc = encodeURIComponent;
export const nexthopPath = (sw: string, vip: string, nh?: string): string =>
  `/api/v1/switches/${enc(sw)}/vips/${enc(vip)}/nexthops${nh === undefined ? '' : `/${enc(nh)}`}`;
