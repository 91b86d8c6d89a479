// Liveness, readiness (503 with the switches at fault when degraded) and Prometheus metrics.

import type { FastifyPluginAsync } from 'fastify';
import type { Controller } from '../controller.js';
import { exposition, EXPOSITION_TYPE } from '../metrics.js';

export const healthRoutes = (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get('/healthz', { schema: { summary: 'The process is up', response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, () => ({ ok: true }));
    app.get('/readyz', { schema: { summary: 'Every switch answers and its pins are in sync (503 otherwise)' } }, (_req, reply) => {
      const r = controller.readiness();
      return reply.status(r.ready ? 200 : 503).send(r);
    });
    app.get('/metrics', { schema: { summary: 'Prometheus metrics' } }, async (_req, reply) => reply.type(EXPOSITION_TYPE).send(await exposition(controller.metrics)));
    return Promise.resolve();
  };
