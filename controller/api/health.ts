// Liveness, readiness (503 with the switches at fault when degraded) and Prometheus metrics.
// Open to all: probes and scrapers carry no token.

import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { Controller } from '../controller.js';
import { Report } from './schemas.js';
import { exposition, EXPOSITION_TYPE } from '../metrics.js';

export const healthRoutes =
  (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get(
      '/healthz',
      { schema: { summary: 'The process is up', response: { 200: Type.Object({ ok: Type.Boolean() }) } } },
      () => ({ ok: true }),
    );
    app.get(
      '/readyz',
      {
        schema: {
          summary: 'Every switch answers and its pins are in sync (503 otherwise)',
          response: { 200: Report, 503: Report },
        },
      },
      (_req, reply) => {
        const r = controller.readiness();
        return reply.status(r.ready ? 200 : 503).send(r);
      },
    );
    app.get(
      '/metrics',
      { schema: { summary: 'Prometheus metrics (text exposition format)' } },
      async (_req, reply) => reply.type(EXPOSITION_TYPE).send(await exposition(controller.metrics)),
    );
    return Promise.resolve();
  };
