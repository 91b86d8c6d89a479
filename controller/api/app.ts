// buildApp: the fastify application (no listening here), each API area an encapsulated
// plugin. Tested with inject(); `listen.ts` puts it on a port.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Controller } from '../controller.js';
import { installErrorHandler } from './errors.js';
import { flowRoutes } from './flows.js';
import { healthRoutes } from './health.js';
import { collectOpenApi } from './openapi.js';
import { switchRoutes } from './switches.js';

export interface AppDeps {
  controller: Controller;
  token: string | undefined;
  logger?: Logger;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: deps.logger, disableRequestLogging: true, ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true } } }) as unknown as FastifyInstance;
  installErrorHandler(app);
  const openapi = collectOpenApi(app);
  await app.register(healthRoutes(deps.controller));
  await app.register(switchRoutes(deps.controller, deps.token));
  await app.register(flowRoutes(deps.controller));
  app.get('/openapi.json', () => openapi());
  return app;
}
