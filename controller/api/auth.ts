// Who may call what. Tokens have a role: `read` (GET calls under /api/v1) or `operator` (those and
// every change). Changes always need an operator token; reads are open unless a read token is
// configured (then they need a read or operator token). Health, readiness, metrics, the
// OpenAPI document and the pages stay open. The check runs in onRequest, before the body is
// read or validated (a bad token is a 401, not a 400). Tokens are compared in constant time
// (SHA-256 of each, timingSafeEqual, every token compared). Failed attempts are counted twice:
// per token tried (by its SHA-256, whatever the address: a client repeating a wrong token is
// refused with 429 without its token being compared again), and per client address with a
// higher bound (many different guesses from one address: past it that address gets 429, right
// token or not). So a shared bastion where one user's script sends a stale token a few times
// does not lock out the others, while guessing stays bounded per address. A failure is logged
// with the address and route, never with the presented credential.

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
  /** Failed attempts with one token (any address) in `windowMs` before that token gets 429 (10 in 60 s unless given). */
  maxFailures?: number;
  /** Failed attempts from one client address (any token) in `windowMs` before that address gets 429 (100 unless given). */
  maxAddressFailures?: number;
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
  const perToken = opts.maxFailures ?? 10;
  const perAddress = opts.maxAddressFailures ?? 100;
  const windowMs = opts.windowMs ?? 60_000;
  // Keys: `a:<address>` and `t:<hex SHA-256 of the token tried>`; bounded, entries age out with the window.
  const failures = new LRUCache<string, { n: number; until: number }>({ max: 20_000, ttl: windowMs });
  const limited = (key: string, max: number, now: number): number | undefined => {
    const seen = failures.get(key);
    return seen !== undefined && seen.n >= max && now < seen.until ? seen.until : undefined;
  };
  const count = (key: string, now: number): number => {
    const f = failures.get(key) ?? { n: 0, until: 0 };
    f.n++;
    f.until = now + windowMs;
    failures.set(key, f);
    return f.n;
  };

  app.addHook('onRequest', (req: FastifyRequest, _reply, done) => {
    const access = req.routeOptions.config.access ?? 'open';
    if (access === 'open' || (access === 'read' && !opts.readsNeedToken)) return done();
    const client = req.ip;
    const tried = `t:${createHash('sha256').update(/^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '').digest('hex')}`;
    const now = Date.now();
    const byAddress = limited(`a:${client}`, perAddress, now);
    const byToken = limited(tried, perToken, now);
    const until = byAddress ?? byToken;
    if (until !== undefined) {
      const retry = String(Math.max(1, Math.ceil((until - now) / 1000)));
      const why = byAddress !== undefined ? 'too many failed authentications from this address' : 'this token failed too many times';
      return done(new HttpError(429, 'too-many-requests', `${why}; retry in ${retry} s`, { 'retry-after': retry }));
    }
    const role = roleOf(tokens, req.headers.authorization);
    if (role === 'operator' || (role === 'read' && access === 'read')) return done();
    if (role === 'read') return done(new HttpError(403, 'forbidden', 'this call needs an operator token; the token given is read-only'));
    const fromAddress = count(`a:${client}`, now);
    const withToken = count(tried, now);
    req.log.warn({ client, method: req.method, route: req.routeOptions.url, failures: fromAddress, failuresWithToken: withToken }, 'API authentication failed');
    if (access === 'operator' && !hasOperator) return done(new HttpError(401, 'unauthorized', 'changes through the API need an operator token (api.token, api.tokens or FLOWPIN_TOKEN)'));
    return done(new HttpError(401, 'unauthorized', 'missing or wrong bearer token'));
  });
}
