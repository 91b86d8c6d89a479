// Who may call what. Tokens have a role: `read` (GET calls under /api/v1) or `operator` (those and
// every change). Changes always need an operator token; reads are open unless a read token is
// configured (then they need a read or operator token). Health, readiness, metrics, the
// OpenAPI document and the pages stay open. The check runs in onRequest, before the body is
// read or validated (a bad token is a 401, not a 400). Tokens are compared in constant time
// (SHA-256 of each, timingSafeEqual, every token compared). Failed attempts are counted per
// client address; past the limit that address gets 429 for a while, right token or not. A
// failure is logged with the address and route, never with the presented credential.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { HttpError } from './errors.js';

export type Role = 'read' | 'operator';
/** What a route needs: nothing, a read token (when reads are closed) or an operator token. */
export type Access = 'open' | 'read' | 'operator';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

export interface AuthOptions {
  tokens: readonly { role: Role; token: string }[];
  /** Reads need a token (true when a read token is configured). */
  readsNeedToken: boolean;
  /** Failed attempts per client address in `windowMs` before 429 (10 in 60 s unless given). */
  maxFailures?: number;
  windowMs?: number;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The role of a presented bearer token, or undefined; compares against every token. */
export function roleOf(tokens: readonly { role: Role; digest: Buffer }[], header: string | undefined): Role | undefined {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  const got = digest(m?.[1] ?? '');
  let role: Role | undefined;
  for (const t of tokens) {
    // Every token is compared, whatever matched before: the time does not tell which one did.
    if (timingSafeEqual(got, t.digest) && m !== null) role = role === 'operator' ? role : t.role;
  }
  return role;
}

export function installAuth(app: FastifyInstance, opts: AuthOptions): void {
  const tokens = opts.tokens.map((t) => ({ role: t.role, digest: digest(t.token) }));
  const hasOperator = tokens.some((t) => t.role === 'operator');
  const maxFailures = opts.maxFailures ?? 10;
  const windowMs = opts.windowMs ?? 60_000;
  const failures = new LRUCache<string, { n: number; until: number }>({ max: 10_000, ttl: windowMs });

  app.addHook('onRequest', (req: FastifyRequest, _reply, done) => {
    const access = req.routeOptions.config.access ?? 'open';
    if (access === 'open' || (access === 'read' && !opts.readsNeedToken)) return done();
    const client = req.ip;
    const seen = failures.get(client);
    const now = Date.now();
    if (seen !== undefined && seen.n >= maxFailures && now < seen.until) {
      const retry = String(Math.max(1, Math.ceil((seen.until - now) / 1000)));
      return done(new HttpError(429, 'too-many-requests', `too many failed authentications from this address; retry in ${retry} s`, { 'retry-after': retry }));
    }
    const role = roleOf(tokens, req.headers.authorization);
    if (role === 'operator' || (role === 'read' && access === 'read')) return done();
    if (role === 'read') return done(new HttpError(403, 'forbidden', 'this call needs an operator token; the token given is read-only'));
    const f = seen ?? { n: 0, until: 0 };
    f.n++;
    f.until = now + windowMs;
    failures.set(client, f);
    req.log.warn({ client, method: req.method, route: req.routeOptions.url, failures: f.n }, 'API authentication failed');
    if (access === 'operator' && !hasOperator) return done(new HttpError(401, 'unauthorized', 'changes through the API need an operator token (api.token, api.tokens or FLOWPIN_TOKEN)'));
    return done(new HttpError(401, 'unauthorized', 'missing or wrong bearer token'));
  });
}
