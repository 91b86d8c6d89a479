// buildApp: the fastify application (no listening here), each API area an encapsulated
// plugin. Tested with inject(); `listen.ts` puts it on a port.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Controller } from '../controller.js';
import { dashboardRoutes } from './dashboard.js';
import { installErrorHandler } from './errors.js';
import { eventRoutes, type EventHub } from './events.js';
import { flowRoutes } from './flows.js';
import { healthRoutes } from './health.js';
import { collectOpenApi } from './openapi.js';
import type { SimulatorCounters } from './snapshot.js';
import { switchRoutes } from './switches.js';

export interface AppDeps {
  controller: Controller;
  token: string | undefined;
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

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.logger, disableRequestLogging: true, ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true } } }) as unknown as FastifyInstance;
  installErrorHandler(app);
  const openapi = collectOpenApi(app);
  await app.register(healthRoutes(deps.controller));
  await app.register(switchRoutes(deps.controller, deps.token));
  await app.register(flowRoutes(deps.controller));
  await app.register((await import('./flow-detail.js')).flowDetailRoutes(deps.controller));
  await app.register(eventRoutes(deps.controller, { ...(deps.eventIntervalMs === undefined ? {} : { intervalMs: deps.eventIntervalMs }), ...(deps.simulator === undefined ? {} : { simulator: deps.simulator }) }, (hub) => deps.onEventHub?.(hub)));
  await app.register(dashboardRoutes(deps.dashboardDir));
  app.get('/openapi.json', () => openapi());
  return app;
}
