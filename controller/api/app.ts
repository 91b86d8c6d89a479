// buildApp: the fastify application (no listening here), each API area an encapsulated
// plugin. Tested with inject(); `listen.ts` puts it on a port. Routes declare TypeBox schemas
// (schemas.ts); validator.ts checks requests against them and @fastify/swagger makes the
// OpenAPI document from them (`/openapi.json`, browsable at `/docs` with @fastify/swagger-ui,
// its files served from the package, no CDN). No CORS headers are sent: browsers on other
// origins cannot read the API.

import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ApiToken } from '../config.js';
import type { Controller } from '../controller.js';
import { installAuth, type NamedToken } from './auth.js';
import { changeDetailRoutes } from './change-detail.js';
import { dashboardRoutes } from './dashboard.js';
import { clientErrorHandler, frameworkErrors, installErrorHandler } from './errors.js';
import { eventRoutes, type EventHub } from './events.js';
import { flowRoutes } from './flows.js';
import { healthRoutes } from './health.js';
import type { SimulatorCounters } from './snapshot.js';
import { switchRoutes } from './switches.js';
import { installValidator } from './validator.js';
import { reloadRoutes, type ReloadAnswer } from './reload.js';
import { vipHistoryRoutes } from './vip-history.js';

export interface AppDeps {
  controller: Controller;
  /** An operator token (kept for callers that have one token only); `auth.tokens` adds to it. */
  token: string | undefined;
  /**
   * Tokens with roles (and the names change records give their holders: `token` unless given), and whether
   * reads need one (config.api).
   */
  auth?: {
    tokens: readonly (Pick<ApiToken, 'role' | 'token'> & { name?: string })[];
    readsNeedToken: boolean;
    requestTimeoutMs?: number;
  };
  /**
   * Where the tokens are read at each request instead (a reload may change them): the running
   * configuration's.
   */
  authSource?: () => {
    tokens: readonly (Pick<ApiToken, 'role' | 'token'> & { name?: string })[];
    readsNeedToken: boolean;
  };
  /** Reloads the configuration file (POST /api/v1/reload); absent where flowpin has none (flowpin start). */
  reload?: () => Promise<ReloadAnswer>;
  /**
   * Failed authentications before 429: per token tried (10) and per client address (100), per window (60 s),
   * unless given.
   */
  authLimit?: { maxFailures: number; maxAddressFailures?: number; windowMs: number };
  logger?: Logger;
  /** In the demo: the simulator's connection counters, shown on the dashboard. */
  simulator?: () => SimulatorCounters;
  /** Interval of the dashboard's server-sent snapshots (1 s unless given). */
  eventIntervalMs?: number;
  /** Receives the event hub (pages connected, snapshots built). */
  onEventHub?: (hub: EventHub) => void;
  /** Where the built dashboard is (dist/dashboard unless given). */
  dashboardDir?: string;
}

/** Largest request body, bytes: the API's bodies are a few small fields. */
const BODY_LIMIT = 64 * 1024;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const requestTimeoutMs = deps.auth?.requestTimeoutMs ?? 30_000;
  const app = Fastify({
    loggerInstance: deps.logger,
    // No log line per request (the API logs what it does itself); fastify 5.12's form of
    // disableRequestLogging.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    requestTimeout: requestTimeoutMs,
    // Node checks request timeouts on this interval (30 s by default): a slow request gets its 408 promptly.
    http: { connectionsCheckingInterval: Math.min(1000, requestTimeoutMs) },
    clientErrorHandler,
    frameworkErrors,
  }) as unknown as FastifyInstance;
  installErrorHandler(app);
  installValidator(app);
  // Bodies are JSON: any other type is a 415, not text handed to a JSON schema.
  app.removeContentTypeParser('text/plain');
  // The configuration's tokens first: where `token` is one of them, its configured name is the one given.
  const withToken = (
    given: readonly (Pick<ApiToken, 'role' | 'token'> & { name?: string })[],
  ): NamedToken[] => {
    const configured = given.map((t) => ({ role: t.role, token: t.token, name: t.name ?? 'token' }));
    return [
      ...configured,
      ...(deps.token === undefined || configured.some((t) => t.token === deps.token)
        ? []
        : [{ role: 'operator' as const, token: deps.token, name: 'token' }]),
    ];
  };
  const source = deps.authSource;
  const fixed = withToken(deps.auth?.tokens ?? []);
  // A source is read at each request; its list is rebuilt only when the source gives a new one.
  let seen: unknown;
  let built: NamedToken[] = [];
  const tokens =
    source === undefined
      ? fixed
      : (): NamedToken[] => {
          const now = source().tokens;
          if (now !== seen) {
            seen = now;
            built = withToken(now);
          }
          return built;
        };
  const readsNeedToken =
    source === undefined ? (deps.auth?.readsNeedToken ?? false) : source().readsNeedToken;
  installAuth(app, {
    tokens,
    readsNeedToken: source === undefined ? readsNeedToken : () => source().readsNeedToken,
    ...(deps.authLimit ?? {}),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'flowpin',
        version: '1',
        description:
          'Connection-pinning ECMP controller: drain and add servers behind an anycast VIP without resetting connections. Changes need an operator token; reads need a read or operator token when one is configured.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    // A route's access (auth.ts) marks it in the document: which calls need the bearer token.
    transform: ({ schema, url, route }) => {
      const access = (route.config as { access?: string } | undefined)?.access;
      const secured = access === 'operator' || (access === 'read' && readsNeedToken);
      return { schema: secured ? { ...schema, security: [{ bearer: [] }] } : schema, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(healthRoutes(deps.controller));
  await app.register(switchRoutes(deps.controller));
  await app.register(flowRoutes(deps.controller));
  await app.register(changeDetailRoutes(deps.controller));
  await app.register(reloadRoutes(deps.reload));
  await app.register(vipHistoryRoutes(deps.controller));
  await app.register((await import('./flow-detail.js')).flowDetailRoutes(deps.controller));
  await app.register(
    eventRoutes(
      deps.controller,
      {
        ...(deps.eventIntervalMs === undefined ? {} : { intervalMs: deps.eventIntervalMs }),
        ...(deps.simulator === undefined ? {} : { simulator: deps.simulator }),
      },
      (hub) => deps.onEventHub?.(hub),
    ),
  );
  await app.register(dashboardRoutes(deps.dashboardDir));
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  return app;
}
