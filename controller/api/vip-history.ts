// `GET /api/v1/switches/:switch/vips/:vip/history`: a VIP's connections over the last hour for
// the dashboard's chart: samples every 10 s (controller/vip-history.ts) of the connections
// flowpin tracks to the VIP and the pins wanted for them, and the same figures now. A pure read.

import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from 'typebox';
import type { Controller } from '../controller.js';
import { HISTORY_POINTS, SAMPLE_EVERY_MS } from '../vip-history.js';
import { errorResponses, VipParams } from './schemas.js';

const Sample = Type.Object({
  t: Type.Number({ description: 'ms since the epoch (the controller clock)' }),
  live: Type.Integer({ description: 'connections tracked to the VIP (live or unknown: not seen to end)' }),
  pinned: Type.Integer({ description: 'pins wanted for its connections' }),
});
const History = Type.Object({
  switch: Type.String(),
  vip: Type.String(),
  intervalS: Type.Number(),
  spanS: Type.Number(),
  now: Sample,
  samples: Type.Array(Sample, { description: 'oldest first, the last hour at most' }),
});

export const vipHistoryRoutes =
  (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get<{ Params: Static<typeof VipParams> }>(
      '/api/v1/switches/:switch/vips/:vip/history',
      {
        config: { access: 'read' },
        schema: {
          summary: "A VIP's tracked and pinned connections over the last hour (a sample every 10 s) and now",
          params: VipParams,
          response: { 200: History, ...errorResponses },
        },
      },
      (req) => {
        const rt = controller.runtime(req.params.switch);
        // A canonical address of a VIP of the switch, or a 400 / 404 that says which.
        const vip = controller.changeManager(rt.name).vip(req.params.vip).address;
        const t = controller.now();
        const now = controller.vipsNow(rt).get(vip) ?? { live: 0, pinned: 0 };
        const spanMs = SAMPLE_EVERY_MS * HISTORY_POINTS;
        return {
          switch: rt.name,
          vip,
          intervalS: SAMPLE_EVERY_MS / 1000,
          spanS: spanMs / 1000,
          now: { t, ...now },
          samples: controller.vipHistory.samples(rt.name, vip, t - spanMs),
        };
      },
    );
    return Promise.resolve();
  };
