// Switches, their VIPs and nexthops (state, tracked and pinned flows), and the changes:
// drain, undrain, add and remove, each with a dry run where it makes sense.

import type { FastifyPluginAsync } from 'fastify';
import type { Controller } from '../controller.js';
import { requireToken } from './auth.js';
import { errorSchema } from './errors.js';
import { badRequest } from '../errors.js';
import { requireChangeConsent, requireRemoveConsent } from './consent.js';

const nexthopView = {
  type: 'object',
  properties: { address: { type: 'string' }, state: { type: 'string', enum: ['active', 'draining', 'drained'] }, tracked: { type: 'integer' }, pinned: { type: 'integer' }, inGroup: { type: 'boolean' } },
} as const;

const changeView = {
  type: 'object',
  additionalProperties: true,
  properties: { id: { type: 'string' }, kind: { type: 'string' }, phase: { type: 'string' }, switch: { type: 'string' }, vip: { type: 'string' }, nexthop: { type: 'string' }, pinned: { type: 'integer' }, atRisk: { type: 'integer' }, remaining: { type: 'integer' } },
} as const;

const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema };
const swParams = { type: 'object', properties: { switch: { type: 'string' } }, required: ['switch'] } as const;
const vipParams = { type: 'object', properties: { switch: { type: 'string' }, vip: { type: 'string' } }, required: ['switch', 'vip'] } as const;
const nhParams = { type: 'object', properties: { switch: { type: 'string' }, vip: { type: 'string' }, nexthop: { type: 'string' } }, required: ['switch', 'vip', 'nexthop'] } as const;

interface NhParams {
  switch: string;
  vip: string;
  nexthop: string;
}

export const switchRoutes = (controller: Controller, token: string | undefined): FastifyPluginAsync =>
  (app) => {
    const auth = requireToken(token);

    app.get('/api/v1/switches', { schema: { summary: 'Switches with their connection and pin state' } }, () => ({ switches: controller.readiness().switches }));

    app.get<{ Params: { switch: string } }>('/api/v1/switches/:switch/vips', { schema: { summary: 'VIPs of a switch with their nexthops', params: swParams, response: { 200: { type: 'object', properties: { vips: { type: 'array', items: { type: 'object', properties: { address: { type: 'string' }, nexthops: { type: 'array', items: nexthopView } } } } } }, ...errors } } }, (req) => {
      const rt = controller.runtime(req.params.switch);
      const cm = controller.changeManager(req.params.switch);
      return {
        vips: [...rt.vips.values()].map((v) => ({
          address: v.address,
          nexthops: [...v.nexthops].sort().map((nh) => ({ address: nh, state: cm.stateOf(v, nh), tracked: rt.flowsOn(v.address, nh).length, pinned: rt.pinnedOn(v.address, nh), inGroup: v.members.has(nh) })),
        })),
      };
    });

    app.get<{ Params: { switch: string } }>('/api/v1/switches/:switch/changes', { schema: { summary: 'Changes in progress and recent ones', params: swParams, response: { 200: { type: 'object', properties: { changes: { type: 'array', items: changeView } } }, ...errors } } }, (req) => {
      controller.changeManager(req.params.switch).track();
      return { changes: controller.changeManager(req.params.switch).records };
    });

    app.post<{ Params: NhParams; Body: { dryRun?: boolean; deadlineSeconds?: number; acceptRisk?: boolean } }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop/drain',
      {
        preHandler: auth,
        schema: {
          summary: 'Drain a nexthop: pin its live flows, take it out of the ECMP group, track its pinned flows to zero (dryRun: report only; a drain that puts connections at risk needs acceptRisk: 409 with the report otherwise)',
          params: nhParams,
          body: { type: 'object', additionalProperties: false, properties: { dryRun: { type: 'boolean', default: false }, deadlineSeconds: { type: 'number', minimum: 0 }, acceptRisk: { type: 'boolean', default: false } } },
          response: { 200: { type: 'object', additionalProperties: true }, 202: changeView, ...errors },
        },
      },
      async (req, reply) => {
        const body = req.body ?? {};
        const cm = controller.changeManager(req.params.switch);
        if (body.dryRun !== true && body.acceptRisk !== true) await requireChangeConsent(controller, req.params.switch, { kind: 'drain', vip: req.params.vip, nexthop: req.params.nexthop });
        const r = await cm.drain(req.params.vip, req.params.nexthop, { dryRun: body.dryRun ?? false, acceptRisk: body.acceptRisk ?? false, ...(body.deadlineSeconds === undefined ? {} : { deadlineSeconds: body.deadlineSeconds }) });
        return reply.status('dryRun' in r ? 200 : 202).send(r);
      },
    );

    // The body is optional here (`{"acceptRisk": true}` at most), so it is checked by hand.
    app.post<{ Params: NhParams; Body: unknown }>('/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop/undrain', { preHandler: auth, schema: { summary: 'Put a drained nexthop back into the ECMP group (optional body {"acceptRisk": bool})', params: nhParams, response: { 200: nexthopView, ...errors } } }, async (req) => {
      const body = req.body ?? {};
      if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body must be an object', 'body');
      const extra = Object.keys(body).filter((k) => k !== 'acceptRisk');
      if (extra.length > 0) throw badRequest(`unknown property '${(extra[0] ?? '').slice(0, 64)}'`, `body.${(extra[0] ?? '').slice(0, 64)}`);
      const accept = (body as { acceptRisk?: unknown }).acceptRisk;
      if (accept !== undefined && typeof accept !== 'boolean') throw badRequest('must be a boolean', 'body.acceptRisk');
      if (accept !== true) await requireChangeConsent(controller, req.params.switch, { kind: 'undrain', vip: req.params.vip, nexthop: req.params.nexthop });
      return controller.changeManager(req.params.switch).undrain(req.params.vip, req.params.nexthop, { acceptRisk: accept === true }).then((r) => ({ address: r.nexthop, state: r.state }));
    });

    app.post<{ Params: { switch: string; vip: string }; Body: { address: string; dryRun?: boolean; acceptRisk?: boolean } }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops',
      {
        preHandler: auth,
        schema: {
          summary: 'Add a nexthop to the VIP\'s ECMP group without moving any pinned connection (dryRun: report only; an addition that puts connections at risk needs acceptRisk: 409 with the report otherwise)',
          params: vipParams,
          body: { type: 'object', additionalProperties: false, required: ['address'], properties: { address: { type: 'string', minLength: 1 }, dryRun: { type: 'boolean', default: false }, acceptRisk: { type: 'boolean', default: false } } },
          response: { 200: { type: 'object', additionalProperties: true }, 201: changeView, ...errors },
        },
      },
      async (req, reply) => {
        const cm = controller.changeManager(req.params.switch);
        if (req.body.dryRun !== true && req.body.acceptRisk !== true) await requireChangeConsent(controller, req.params.switch, { kind: 'add', vip: req.params.vip, nexthop: req.body.address });
        const r = await cm.add(req.params.vip, req.body.address, { dryRun: req.body.dryRun ?? false, acceptRisk: req.body.acceptRisk ?? false });
        return reply.status('dryRun' in r ? 200 : 201).send(r);
      },
    );

    app.delete<{ Params: NhParams; Querystring: { force?: boolean; acceptRisk?: boolean } }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop',
      { preHandler: auth, schema: { summary: 'Forget a nexthop that is out of the group (refused while pinned flows remain: 409 with the report, unless acceptRisk, or force)', params: nhParams, querystring: { type: 'object', properties: { force: { type: 'boolean', default: false }, acceptRisk: { type: 'boolean', default: false } } }, response: { 200: { type: 'object', additionalProperties: true }, ...errors } } },
      (req) => {
        const accept = req.query.acceptRisk === true || req.query.force === true;
        if (!accept) requireRemoveConsent(controller, req.params.switch, req.params.vip, req.params.nexthop);
        return controller.changeManager(req.params.switch).remove(req.params.vip, req.params.nexthop, accept);
      },
    );
    return Promise.resolve();
  };
