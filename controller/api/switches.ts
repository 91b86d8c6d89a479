// Switches, their VIPs and nexthops (state, tracked and pinned flows), and the changes:
// drain, undrain, add and remove, each with a dry run where it makes sense. Changes need an
// operator token (auth.ts); bodies are checked strictly (validator.ts).

import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Controller } from '../controller.js';
import { requireChangeConsent, requireRemoveConsent } from './consent.js';
import { ChangeView, errorResponses, NexthopParams, NexthopView, Report, SwitchParams, VipParams, type NexthopParamsT } from './schemas.js';

const DrainBody = Type.Object({
  dryRun: Type.Boolean({ default: false, description: 'report only, change nothing' }),
  deadlineSeconds: Type.Optional(Type.Number({ minimum: 0, description: 'complete the drain after this long even with pinned flows left' })),
  acceptRisk: Type.Boolean({ default: false, description: 'go ahead although the dry run finds connections at risk' }),
}, { additionalProperties: false });

const UndrainBody = Type.Object({ acceptRisk: Type.Boolean({ default: false }) }, { additionalProperties: false });

const AddBody = Type.Object({
  address: Type.String({ minLength: 1, maxLength: 64, description: 'the new nexthop: a unicast address of the VIP\'s family' }),
  dryRun: Type.Boolean({ default: false }),
  acceptRisk: Type.Boolean({ default: false }),
}, { additionalProperties: false });

const RemoveQuery = Type.Object({
  acceptRisk: Type.Boolean({ default: false, description: 'forget it even with pinned flows left, whose connections then lose their pins (never while in the group)' }),
  force: Type.Boolean({ default: false, description: 'the older name of acceptRisk' }),
}, { additionalProperties: false });

const VipsView = Type.Object({ vips: Type.Array(Type.Object({ address: Type.String(), nexthops: Type.Array(NexthopView) })) });

const operator = { access: 'operator' as const };
const read = { access: 'read' as const };

export const switchRoutes = (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get('/api/v1/switches', { config: read, schema: { summary: 'Switches with their connection and pin state', response: { 200: Type.Object({ switches: Type.Array(Report) }), ...errorResponses } } }, () => ({ switches: controller.readiness().switches }));

    app.get<{ Params: Static<typeof SwitchParams> }>('/api/v1/switches/:switch/vips', { config: read, schema: { summary: 'VIPs of a switch with their nexthops', params: SwitchParams, response: { 200: VipsView, ...errorResponses } } }, (req) => {
      const rt = controller.runtime(req.params.switch);
      const cm = controller.changeManager(req.params.switch);
      return {
        vips: [...rt.vips.values()].map((v) => ({
          address: v.address,
          nexthops: [...v.nexthops].sort().map((nh) => ({ address: nh, state: cm.stateOf(v, nh), tracked: rt.flowsOn(v.address, nh).length, pinned: rt.pinnedOn(v.address, nh), inGroup: v.members.has(nh) })),
        })),
      };
    });

    app.get<{ Params: Static<typeof SwitchParams> }>('/api/v1/switches/:switch/changes', { config: read, schema: { summary: 'Changes in progress and recent ones', params: SwitchParams, response: { 200: Type.Object({ changes: Type.Array(ChangeView) }), ...errorResponses } } }, (req) => {
      controller.changeManager(req.params.switch).track();
      return { changes: controller.changeManager(req.params.switch).withResets() };
    });

    app.post<{ Params: NexthopParamsT; Body: Static<typeof DrainBody> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop/drain',
      {
        config: operator,
        schema: {
          summary: 'Drain a nexthop: pin its live flows, take it out of the ECMP group, track its pinned flows to zero (dryRun: report only; a drain that puts connections at risk needs acceptRisk: 409 with the report otherwise)',
          params: NexthopParams,
          body: DrainBody,
          response: { 200: Report, 202: ChangeView, ...errorResponses },
        },
      },
      async (req, reply) => {
        const body = req.body;
        const cm = controller.changeManager(req.params.switch);
        if (!body.dryRun && !body.acceptRisk) await requireChangeConsent(controller, req.params.switch, { kind: 'drain', vip: req.params.vip, nexthop: req.params.nexthop });
        const r = await cm.drain(req.params.vip, req.params.nexthop, { dryRun: body.dryRun, acceptRisk: body.acceptRisk, ...(body.deadlineSeconds === undefined ? {} : { deadlineSeconds: body.deadlineSeconds }) });
        return reply.status('dryRun' in r ? 200 : 202).send(r);
      },
    );

    app.post<{ Params: NexthopParamsT; Body: Static<typeof UndrainBody> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop/undrain',
      { config: operator, schema: { summary: 'Put a drained nexthop back into the ECMP group (optional body {"acceptRisk": bool})', params: NexthopParams, body: UndrainBody, response: { 200: NexthopView, ...errorResponses } } },
      async (req) => {
        if (!req.body.acceptRisk) await requireChangeConsent(controller, req.params.switch, { kind: 'undrain', vip: req.params.vip, nexthop: req.params.nexthop });
        const r = await controller.changeManager(req.params.switch).undrain(req.params.vip, req.params.nexthop, { acceptRisk: req.body.acceptRisk });
        return { address: r.nexthop, state: r.state };
      },
    );

    app.post<{ Params: Static<typeof VipParams>; Body: Static<typeof AddBody> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops',
      {
        config: operator,
        schema: {
          summary: 'Add a nexthop to the VIP\'s ECMP group without moving any pinned connection (dryRun: report only; an addition that puts connections at risk needs acceptRisk: 409 with the report otherwise)',
          params: VipParams,
          body: AddBody,
          response: { 200: Report, 201: ChangeView, ...errorResponses },
        },
      },
      async (req, reply) => {
        const cm = controller.changeManager(req.params.switch);
        if (!req.body.dryRun && !req.body.acceptRisk) await requireChangeConsent(controller, req.params.switch, { kind: 'add', vip: req.params.vip, nexthop: req.body.address });
        const r = await cm.add(req.params.vip, req.body.address, { dryRun: req.body.dryRun, acceptRisk: req.body.acceptRisk });
        return reply.status('dryRun' in r ? 200 : 201).send(r);
      },
    );

    app.delete<{ Params: NexthopParamsT; Querystring: Static<typeof RemoveQuery> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop',
      { config: operator, schema: { summary: 'Forget a nexthop that is out of the group (refused while pinned flows remain: 409 with the report, unless acceptRisk, or force)', params: NexthopParams, querystring: RemoveQuery, response: { 200: Report, ...errorResponses } } },
      (req) => {
        const accept = req.query.acceptRisk || req.query.force;
        if (!accept) requireRemoveConsent(controller, req.params.switch, req.params.vip, req.params.nexthop);
        return controller.changeManager(req.params.switch).remove(req.params.vip, req.params.nexthop, accept);
      },
    );
    return Promise.resolve();
  };
