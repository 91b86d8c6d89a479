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
// with the address and route, never with the presented credential. Each request knows who made
// it (`actorOf`: the name of the token that matched, and the client's address), and every call
// that needs an operator token is logged with them and its outcome once answered: the audit log
// (change records keep the same names).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { Actor } from '../change-record.js';
import { HttpError } from './errors.js';

export type Role = 'read' | 'operator';
/** What a route needs: nothing, a read token (when reads are closed) or an operator token. */
export type Access = 'open' | 'read' | 'operator';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** Who made the request, once authenticated (auth.ts). */
    actor?: Actor;
  }
}

export type NamedToken = { role: Role; token: string; name: string };

export interface AuthOptions {
  /**
   * Each token with its role and the name change records and the audit log give its holder; a function: read
   * at each request (a reload may change them).
   */
  tokens: readonly NamedToken[] | (() => readonly NamedToken[]);
  /** Reads need a token (true when a read token is configured). */
  readsNeedToken: boolean | (() => boolean);
  /**
   * Failed attempts with one token (any address) in `windowMs` before that token gets 429 (10 in 60 s unless
   * given).
   */
  maxFailures?: number;
  /**
   * Failed attempts from one client address (any token) in `windowMs` before that address gets 429 (100
   * unless given).
   */
  maxAddressFailures?: number;
  windowMs?: number;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The role and name of a presented bearer token, or undefined; compares against every token. */
export function roleOf(
  tokens: readonly { role: Role; digest: Buffer; name: string }[],
  header: string | undefined,
): { role: Role; name: string } | undefined {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  const got = digest(m?.[1] ?? '');
  let found: { role: Role; name: string } | undefined;
  for (const t of tokens) {
    // Every token is compared, whatever matched before: the time does not tell which one did.
    // The same token given twice: the operator role wins, and the first name given with it.
    if (
      timingSafeEqual(got, t.digest) &&
      m !== null &&
      found?.role !== 'operator' &&
      (found === undefined || t.role === 'operator')
    )
      found = { role: t.role, name: t.name };
  }
  return found;
}

/** Who made a request: the name of its token (null without one) and the client's address. */
export function actorOf(req: FastifyRequest): Actor {
  return req.actor ?? { token: null, client: req.ip };
}

export function installAuth(app: FastifyInstance, opts: AuthOptions): void {
  // Digests made once per list of tokens (a reload gives a new list).
  let given: readonly NamedToken[] | undefined;
  let tokens: { role: Role; name: string; digest: Buffer }[] = [];
  const current = (): typeof tokens => {
    const now = typeof opts.tokens === 'function' ? opts.tokens() : opts.tokens;
    if (now !== given) {
      given = now;
      tokens = now.map((t) => ({ role: t.role, name: t.name, digest: digest(t.token) }));
    }
    return tokens;
  };
  const readsNeedToken = (): boolean =>
    typeof opts.readsNeedToken === 'function' ? opts.readsNeedToken() : opts.readsNeedToken;
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
    if (access === 'open' || (access === 'read' && !readsNeedToken())) return done();
    const client = req.ip;
    const tried = `t:${createHash('sha256')
      .update(/^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '')
      .digest('hex')}`;
    const now = Date.now();
    const byAddress = limited(`a:${client}`, perAddress, now);
    const byToken = limited(tried, perToken, now);
    const until = byAddress ?? byToken;
    if (until !== undefined) {
      const retry = String(Math.max(1, Math.ceil((until - now) / 1000)));
      const why =
        byAddress !== undefined
          ? 'too many failed authentications from this address'
          : 'this token failed too many times';
      return done(
        new HttpError(429, 'too-many-requests', `${why}; retry in ${retry} s`, { 'retry-after': retry }),
      );
    }
    const tokens = current();
    const who = roleOf(tokens, req.headers.authorization);
    const role = who?.role;
    if (who !== undefined) req.actor = { token: who.name, client };
    if (role === 'operator' || (role === 'read' && access === 'read')) return done();
    if (role === 'read')
      return done(
        new HttpError(403, 'forbidden', 'this call needs an operator token; the token given is read-only'),
      );
    const fromAddress = count(`a:${client}`, now);
    const withToken = count(tried, now);
    req.log.warn(
      {
        client,
        method: req.method,
        route: req.routeOptions.url,
        failures: fromAddress,
        failuresWithToken: withToken,
      },
      'API authentication failed',
    );
    if (access === 'operator' && !tokens.some((t) => t.role === 'operator'))
      return done(
        new HttpError(
          401,
          'unauthorized',
          'changes through the API need an operator token (api.token, api.tokens or FLOWPIN_TOKEN)',
        ),
      );
    return done(new HttpError(401, 'unauthorized', 'missing or wrong bearer token'));
  });
  // The audit log: every call that needs an operator token, with who made it and how it ended.
  app.addHook('onResponse', (req, reply, done) => {
    if (req.routeOptions.config.access === 'operator') {
      const a = actorOf(req);
      req.log.info(
        {
          audit: true,
          token: a.token,
          client: a.client,
          method: req.method,
          url: req.url.slice(0, 300),
          status: reply.statusCode,
        },
        'operator call',
      );
    }
    done();
  });
}
