// One change by its id, `GET /api/v1/switches/:switch/changes/:id`: the record as the list of
// changes gives it (phase, the time of each step, the bound and the figures checked against it,
// pinned, at risk by reason, unseen, change-window flows, connections left and the drain's
// progress, server resets seen after it), or 404; and `.../counted`, the connections it counted
// at risk or in its window, by flow. Pure reads.

import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Controller } from '../controller.js';
import { notFound } from '../errors.js';
import { ChangeParams, ChangeView, errorResponses } from './schemas.js';

export const changeDetailRoutes =
  (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get<{ Params: Static<typeof ChangeParams> }>(
      '/api/v1/switches/:switch/changes/:id',
      {
        config: { access: 'read' },
        schema: {
          summary: 'One change by id (queued, in progress or recent)',
          params: ChangeParams,
          response: { 200: ChangeView, ...errorResponses },
        },
      },
      (req) => {
        const rec = controller.ownedChanges(req.params.switch).get(req.params.id);
        if (rec === undefined)
          throw notFound(
            `switch ${req.params.switch} has no change ${req.params.id.slice(0, 64)} (recent changes are kept, older ones are forgotten)`,
            { switch: req.params.switch, id: req.params.id.slice(0, 100) },
          );
        return rec;
      },
    );
    app.get<{ Params: Static<typeof ChangeParams> }>(
      '/api/v1/switches/:switch/changes/:id/counted',
      {
        config: { access: 'read' },
        schema: {
          summary: 'The connections a change counted at risk or in its window, by flow (the first 100,000)',
          params: ChangeParams,
          response: {
            200: Type.Object({
              items: Type.Array(Type.Object({ flow: Type.String(), why: Type.String() })),
              truncated: Type.Boolean(),
              lost: Type.Optional(
                Type.Boolean({
                  description:
                    'true where the change counted flows before a restart: those are not named (the figures in the record count them)',
                }),
              ),
            }),
            ...errorResponses,
          },
        },
      },
      (req) => {
        const cm = controller.ownedChanges(req.params.switch);
        if (cm.get(req.params.id) === undefined)
          throw notFound(`switch ${req.params.switch} has no change ${req.params.id.slice(0, 64)}`, {
            switch: req.params.switch,
            id: req.params.id.slice(0, 100),
          });
        return cm.counted(req.params.id);
      },
    );
    return Promise.resolve();
  };
