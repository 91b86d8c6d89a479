// Flows and pins, filtered by switch, VIP, nexthop and client address (flows also by client
// port and pinned), paged. Flows come most recently seen first; pins in the order the
// controller holds them (pending and installed pins, then failed ones).

import { isIP } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Controller } from '../controller.js';
import { badRequest } from '../errors.js';
import { canonicalIp } from '../../lib/addr.js';
import { errorResponses } from './schemas.js';

const filters = {
  switch: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  vip: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  nexthop: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  client: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
};

/** Flows only: the client's port, and whether a pin is wanted for the flow. */
const FlowQuery = Type.Object(
  {
    ...filters,
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    pinned: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
type Filters = Static<typeof FlowQuery>;

/**
 * `pending`: accepted, not (yet) programmed; `installed`: programmed; `desired`: either; `failed`: refused.
 */
const PinQuery = Type.Object(
  { ...filters, state: Type.Optional(Type.Enum(['pending', 'installed', 'failed', 'desired'])) },
  { additionalProperties: false },
);

const FlowView = Type.Object(
  {
    switch: Type.String(),
    src: Type.String(),
    dst: Type.String(),
    sport: Type.Integer(),
    dport: Type.Integer(),
    nexthop: Type.Union([Type.String(), Type.Null()]),
    pinned: Type.Boolean(),
    lastSeen: Type.Number(),
  },
  { additionalProperties: true },
);
const PinView = Type.Object(
  {
    switch: Type.String(),
    src: Type.String(),
    dst: Type.String(),
    sport: Type.Integer(),
    dport: Type.Integer(),
    nexthop: Type.String(),
    state: Type.Enum(['pending', 'installed', 'failed']),
    reason: Type.String(),
  },
  { additionalProperties: true },
);
const page = { total: Type.Integer(), offset: Type.Integer(), limit: Type.Integer() };

const defined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/**
 * The address filters (vip, nexthop, client) in canonical form; a value that is no IP address
 * is a 400 naming the parameter, not an empty page that reads as "no such flow".
 */
function addresses<
  T extends { vip?: string | undefined; nexthop?: string | undefined; client?: string | undefined },
>(q: T): T {
  const out = { ...q };
  for (const k of ['vip', 'nexthop', 'client'] as const) {
    const v = q[k];
    if (v === undefined) continue;
    if (isIP(v) === 0)
      throw badRequest(`${k} must be an IP address, not '${v.slice(0, 64)}'`, `querystring.${k}`);
    out[k] = canonicalIp(v);
  }
  return out;
}

export const flowRoutes =
  (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get<{ Querystring: Filters }>(
      '/api/v1/flows',
      {
        config: { access: 'read' },
        schema: {
          summary: 'Tracked flows, most recently seen first',
          querystring: FlowQuery,
          response: { 200: Type.Object({ ...page, flows: Type.Array(FlowView) }), ...errorResponses },
        },
      },
      (req) => {
        const { limit, offset, ...f } = addresses(req.query);
        const p = controller.flows(defined(f), offset, limit);
        return { total: p.total, offset, limit, flows: p.items };
      },
    );
    app.get<{ Querystring: Static<typeof PinQuery> }>(
      '/api/v1/pins',
      {
        config: { access: 'read' },
        schema: {
          summary:
            'Pins: pending (not yet programmed), installed (programmed) or failed; desired is pending or installed',
          querystring: PinQuery,
          response: { 200: Type.Object({ ...page, pins: Type.Array(PinView) }), ...errorResponses },
        },
      },
      (req) => {
        const { limit, offset, state, ...f } = addresses(req.query);
        if (state !== 'pending') {
          const p = controller.pins(defined({ ...f, state }), offset, limit);
          return { total: p.total, offset, limit, pins: p.items };
        }
        // The controller lists wanted pins (pending and installed) together: keep the pending ones.
        const pending = controller
          .pins(defined({ ...f, state: 'desired' as const }), 0, Number.MAX_SAFE_INTEGER)
          .items.filter((p) => p.state === 'pending');
        return { total: pending.length, offset, limit, pins: pending.slice(offset, offset + limit) };
      },
    );
    return Promise.resolve();
  };
