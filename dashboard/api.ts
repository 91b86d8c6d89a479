// The dashboard's calls to the flowpin API. The bearer token is asked for on the page and
// kept in this tab only (sessionStorage): never in localStorage, a cookie or the URL.

const TOKEN_KEY = 'flowpin.token';
const listeners = new Set<() => void>();

export const token = {
  get(): string {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  },
  set(value: string): void {
    if (value === '') sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, value);
    for (const l of listeners) l();
  },
  /** Calls `fn` whenever the token is set or forgotten; returns its removal. */
  watch(fn: () => void): () => void {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const t = token.get();
  if (method !== 'GET' && t !== '') headers['authorization'] = `Bearer ${t}`;
  const res = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const json = (text === '' ? {} : JSON.parse(text)) as T & { error?: string; message?: string };
  if (!res.ok)
    throw new ApiError(
      res.status,
      json.error ?? 'error',
      json.message ?? `${method} ${path}: HTTP ${res.status}`,
    );
  return json;
}

export const enc = encodeURIComponent;

export function nexthopPath(sw: string, vip: string, nh?: string): string {
  return `/api/v1/switches/${enc(sw)}/vips/${enc(vip)}/nexthops${nh === undefined ? '' : `/${enc(nh)}`}`;
}
