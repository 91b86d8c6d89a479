// Switches, their VIPs and nexthops (state, tracked and pinned flows), and the changes:
// drain, undrain, add and remove, each with a dry run where it makes sense, and the cancel of a
// change before its group write. Changes need an operator token (auth.ts); bodies are checked
// strictly (validator.ts).

import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Controller } from '../controller.js';
import { badRequest } from '../errors.js';
import { actorOf } from './auth.js';
import {
  ChangeParams,
  ChangeView,
  errorResponses,
  NexthopParams,
  NexthopView,
  Report,
  SwitchParams,
  VipParams,
  type ChangeParamsT,
  type NexthopParamsT,
} from './schemas.js';

const MaxAtRisk = Type.Union([Type.Integer({ minimum: 0 }), Type.Literal('unbounded')], {
  default: 0,
  description:
    'the most connections the change may cost (at risk, never seen, expected in its change window above the threshold): it is refused, or stops before its group write, where the figures exceed it; "unbounded" consents to any figure, and to a mirror flowpin cannot count from',
});
const AcceptRisk = Type.Optional(
  Type.Boolean({ description: 'replaced by maxAtRisk: refused with a message saying so' }),
);

const DrainBody = Type.Object(
  {
    dryRun: Type.Boolean({ default: false, description: 'report only, change nothing' }),
    deadlineSeconds: Type.Optional(
      Type.Number({
        minimum: 0,
        description:
          'stop waiting for its connections after this long: the drain then reads deadline-passed (with what is left), never drained',
      }),
    ),
    maxAtRisk: MaxAtRisk,
    acceptRisk: AcceptRisk,
  },
  { additionalProperties: false },
);

const UndrainBody = Type.Object(
  { maxAtRisk: MaxAtRisk, acceptRisk: AcceptRisk },
  { additionalProperties: false },
);

const AddBody = Type.Object(
  {
    address: Type.String({
      minLength: 1,
      maxLength: 64,
      description: "the new nexthop: a unicast address of the VIP's family",
    }),
    dryRun: Type.Boolean({ default: false }),
    maxAtRisk: MaxAtRisk,
    acceptRisk: AcceptRisk,
  },
  { additionalProperties: false },
);

const RemoveQuery = Type.Object(
  {
    dryRun: Type.Boolean({
      default: false,
      description: 'report what the removal would lose, change nothing',
    }),
    maxAtRisk: Type.Union([Type.Integer({ minimum: 0 }), Type.Literal('unbounded')], {
      default: 0,
      description:
        'the most connections still on the nexthop (live, unknown) the removal may cost: their pins go',
    }),
    acceptRisk: AcceptRisk,
    force: Type.Optional(Type.Boolean({ description: 'replaced by maxAtRisk' })),
  },
  { additionalProperties: false },
);

/** An old request that still says acceptRisk (or force): refused, saying what replaced it. */
function noAcceptRisk(
  body: { acceptRisk?: boolean | undefined; force?: boolean | undefined },
  field: string,
): void {
  if (body.acceptRisk === undefined && body.force === undefined) return;
  throw badRequest(
    'acceptRisk (and force) were replaced by maxAtRisk: the most connections the change may cost, checked against the dry run and again right before the group write (0 unless given; "unbounded" for any)',
    `${field}.${body.acceptRisk === undefined ? 'force' : 'acceptRisk'}`,
  );
}

const VipsView = Type.Object({
  vips: Type.Array(Type.Object({ address: Type.String(), nexthops: Type.Array(NexthopView) })),
});

const operator = { access: 'operator' as const };
const read = { access: 'read' as const };

export const switchRoutes =
  (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get(
      '/api/v1/switches',
      {
        config: read,
        schema: {
          summary: 'Switches with their connection and pin state',
          response: { 200: Type.Object({ switches: Type.Array(Report) }), ...errorResponses },
        },
      },
      () => ({ switches: controller.readiness().switches }),
    );

    app.get<{ Params: Static<typeof SwitchParams> }>(
      '/api/v1/switches/:switch/vips',
      {
        config: read,
        schema: {
          summary: 'VIPs of a switch with their nexthops',
          params: SwitchParams,
          response: { 200: VipsView, ...errorResponses },
        },
      },
      (req) => {
        const rt = controller.runtime(req.params.switch);
        const cm = controller.changeManager(req.params.switch);
        return {
          vips: [...rt.vips.values()].map((v) => ({
            address: v.address,
            nexthops: [...v.nexthops].sort().map((nh) => ({
              address: nh,
              state: cm.stateOf(v, nh),
              tracked: rt.flowsOn(v.address, nh).length,
              pinned: rt.pinnedOn(v.address, nh),
              inGroup: v.members.has(nh),
            })),
          })),
        };
      },
    );

    app.get<{ Params: Static<typeof SwitchParams> }>(
      '/api/v1/switches/:switch/changes',
      {
        config: read,
        schema: {
          summary: 'Changes in progress and recent ones (a read: it changes nothing)',
          params: SwitchParams,
          response: { 200: Type.Object({ changes: Type.Array(ChangeView) }), ...errorResponses },
        },
      },
      (req) => ({ changes: controller.ownedChanges(req.params.switch).withResets() }),
    );

    app.post<{ Params: ChangeParamsT }>(
      '/api/v1/switches/:switch/changes/:id/cancel',
      {
        config: operator,
        schema: {
          summary:
            'Cancel a change before its group write: a queued change leaves the queue, a pending one stops and releases its pins (200 with the record, phase cancelled). After its group write: 409 saying what would undo it (the opposite change, with its own bound); nothing is undone by this call',
          params: ChangeParams,
          body: Type.Object(
            {},
            { additionalProperties: false, description: 'none (an empty object, or no body)' },
          ),
          response: { 200: ChangeView, ...errorResponses },
        },
      },
      async (req) => {
        controller.stateWritable();
        return controller.ownedChanges(req.params.switch).cancel(req.params.id, actorOf(req));
      },
    );

    app.post<{ Params: NexthopParamsT; Body: Static<typeof DrainBody> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop/drain',
      {
        config: operator,
        schema: {
          summary:
            'Drain a nexthop: pin its live connections, take it out of the ECMP group, track its connections until none is left (dryRun: report only; a drain whose figures exceed maxAtRisk is refused: 409 with the report)',
          params: NexthopParams,
          body: DrainBody,
          response: { 200: Report, 202: ChangeView, ...errorResponses },
        },
      },
      async (req, reply) => {
        const body = req.body;
        noAcceptRisk(body, 'body');
        const cm = controller.ownedChanges(req.params.switch);
        if (!body.dryRun) controller.stateWritable();
        const r = await cm.drain(req.params.vip, req.params.nexthop, {
          dryRun: body.dryRun,
          maxAtRisk: body.maxAtRisk,
          by: actorOf(req),
          ...(body.deadlineSeconds === undefined ? {} : { deadlineSeconds: body.deadlineSeconds }),
        });
        return reply.status('dryRun' in r ? 200 : 202).send(r);
      },
    );

    app.post<{ Params: NexthopParamsT; Body: Static<typeof UndrainBody> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop/undrain',
      {
        config: operator,
        schema: {
          summary: 'Put a drained nexthop back into the ECMP group (optional body {"maxAtRisk": N})',
          params: NexthopParams,
          body: UndrainBody,
          response: { 200: NexthopView, ...errorResponses },
        },
      },
      async (req) => {
        noAcceptRisk(req.body, 'body');
        controller.stateWritable();
        const r = await controller
          .ownedChanges(req.params.switch)
          .undrain(req.params.vip, req.params.nexthop, { maxAtRisk: req.body.maxAtRisk, by: actorOf(req) });
        return { address: r.nexthop, state: r.state };
      },
    );

    app.post<{ Params: Static<typeof VipParams>; Body: Static<typeof AddBody> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops',
      {
        config: operator,
        schema: {
          summary:
            "Add a nexthop to the VIP's ECMP group without moving any pinned connection (dryRun: report only; an addition whose figures exceed maxAtRisk is refused: 409 with the report)",
          params: VipParams,
          body: AddBody,
          response: { 200: Report, 201: ChangeView, ...errorResponses },
        },
      },
      async (req, reply) => {
        noAcceptRisk(req.body, 'body');
        const cm = controller.ownedChanges(req.params.switch);
        if (!req.body.dryRun) controller.stateWritable();
        const r = await cm.add(req.params.vip, req.body.address, {
          dryRun: req.body.dryRun,
          maxAtRisk: req.body.maxAtRisk,
          by: actorOf(req),
        });
        return reply.status('dryRun' in r ? 200 : 201).send(r);
      },
    );

    app.delete<{ Params: NexthopParamsT; Querystring: Static<typeof RemoveQuery> }>(
      '/api/v1/switches/:switch/vips/:vip/nexthops/:nexthop',
      {
        config: operator,
        schema: {
          summary:
            'Forget a nexthop that is out of the group (refused while connections remain on it beyond maxAtRisk: 409 with what is left; dryRun: report only)',
          params: NexthopParams,
          querystring: RemoveQuery,
          response: { 200: Report, ...errorResponses },
        },
      },
      (req) => {
        noAcceptRisk(req.query, 'querystring');
        if (!req.query.dryRun) controller.stateWritable();
        return controller.ownedChanges(req.params.switch).remove(req.params.vip, req.params.nexthop, {
          dryRun: req.query.dryRun,
          maxAtRisk: req.query.maxAtRisk,
        });
      },
    );
    return Promise.resolve();
  };
