// Flows and pins, filtered by switch, VIP, nexthop and client address (flows also by client
// port and pinned), paged.

import type { FastifyPluginAsync } from 'fastify';
import type { Controller } from '../controller.js';
import { errorSchema } from './errors.js';

const filters = {
  switch: { type: 'string' },
  vip: { type: 'string' },
  nexthop: { type: 'string' },
  client: { type: 'string' },
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  offset: { type: 'integer', minimum: 0, default: 0 },
} as const;

/** Flows only: the client's port, and whether a pin is wanted for the flow. */
const flowFilters = { port: { type: 'integer', minimum: 0, maximum: 65535 }, pinned: { type: 'boolean' } } as const;

interface Filters {
  switch?: string;
  vip?: string;
  nexthop?: string;
  client?: string;
  limit: number;
  offset: number;
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export const flowRoutes = (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get<{ Querystring: Filters & { port?: number; pinned?: boolean } }>('/api/v1/flows', { schema: { summary: 'Tracked flows, newest first', querystring: { type: 'object', additionalProperties: false, properties: { ...filters, ...flowFilters } }, response: { 400: errorSchema, 404: errorSchema } } }, (req) => {
      const { limit, offset, ...f } = req.query;
      const page = controller.flows(defined(f), offset, limit);
      return { total: page.total, offset, limit, flows: page.items };
    });
    app.get<{ Querystring: Filters & { state?: 'desired' | 'installed' | 'failed' } }>(
      '/api/v1/pins',
      { schema: { summary: 'Pins wanted, installed or failed', querystring: { type: 'object', additionalProperties: false, properties: { ...filters, state: { type: 'string', enum: ['desired', 'installed', 'failed'] } } }, response: { 400: errorSchema, 404: errorSchema } } },
      (req) => {
        const { limit, offset, ...f } = req.query;
        const page = controller.pins(defined(f), offset, limit);
        return { total: page.total, offset, limit, pins: page.items };
      },
    );
    return Promise.resolve();
  };
