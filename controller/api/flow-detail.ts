// One tracked flow in detail: `GET /api/v1/flows/:switch/:src/:sport/:dst/:dport` answers when
// it was seen, its nexthop and how flowpin learned it, the state of its pin on the switch,
// and the time left before its pin idles out and before flowpin forgets the flow.
//
// Times are the controller's clock (ms since the epoch in production). The mirror shows a
// flow's SYN (and its FIN/RST where the switch mirrors them, which ends it): `firstSeen` is
// the SYN that led to the flow's pin where there is one, `lastSeen` the last mirrored SYN.
// `lastActive` is when the pin's packet counter on the switch last moved, as flowpin last
// read it; the pin idles out `pinIdleTimeoutS` after that (on the switch itself where the
// adapter programs native idle timeouts, by flowpin's own aging otherwise).

import type { FastifyPluginAsync } from 'fastify';
import type { Controller } from '../controller.js';
import { notFound, badRequest } from '../errors.js';
import { flowKey, UNRESOLVED } from '../flow-table.js';
import { flowId } from '../../switch-adapters/contract.js';
import { parseIp } from '../../lib/addr.js';
import { tupleOf } from '../../mirror-receiver/tuple.js';
import { Type } from 'typebox';
import { errorResponses } from './schemas.js';

export type PinState = 'programmed' | 'pending' | 'failed' | 'none';

export interface FlowDetail {
  switch: string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  nexthop: string | null;
  /** How the nexthop was learned: the adapter's look-up, a pin found on the switch, or not yet. */
  learned: { how: 'look-up' | 'adopted' | 'unresolved'; detail: string };
  firstSeen: number;
  lastSeen: number;
  pin: {
    state: PinState;
    /** Why the pin is wanted: 'always', 'adopted', or the id of the change that wants it. */
    wantedFor: string | null;
    /** Why the switch does not forward by it (not programmed), or why it failed. */
    reason: string | null;
    packets: number | null;
    lastActive: number | null;
  };
  idle: {
    pinIdleTimeoutS: number;
    agedBy: 'switch' | 'controller';
    /** Seconds until the pin idles out if no packet moves its counter; null without a pin on the switch. */
    pinLeftS: number | null;
    /** Seconds until flowpin forgets the flow if it sees no SYN of it again. */
    trackedLeftS: number;
  };
}

interface Params {
  switch: string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

export function flowDetail(controller: Controller, p: Params): FlowDetail {
  const rt = controller.runtime(p.switch);
  let family: 4 | 6;
  try {
    family = parseIp(p.src).family;
    if (parseIp(p.dst).family !== family) throw new Error('families differ');
  } catch {
    throw badRequest(`${p.src} and ${p.dst} are not IP addresses of one family`, 'params.src');
  }
  const flow = { family, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport };
  const key = flowKey(rt.id, tupleOf(flow));
  const e = controller.flowTable.entry(key);
  if (e === undefined)
    throw notFound(`flowpin tracks no flow ${p.src}:${p.sport} -> ${p.dst}:${p.dport} on ${rt.name}`, {
      switch: rt.name,
    });
  const now = controller.now();
  const r = rt.reconciler;
  const spec = { family: e.family, src: e.src, dst: e.dst, sport: e.sport, dport: e.dport };
  const id = flowId(spec);
  const want = r.desired.get(id);
  const inst = r.installed.get(id);
  const failed = r.failed.get(id);
  const nexthop = e.nexthopId === UNRESOLVED ? null : (controller.registry.ref(e.nexthopId)?.nexthop ?? null);
  const { pinIdleS, flowMaxAgeS } = controller.timeouts;

  let state: PinState = 'none';
  let reason: string | null = null;
  if (want !== undefined && inst !== undefined && inst.nexthop === want.nexthop && inst.programmed)
    state = 'programmed';
  else if (want !== undefined) {
    state = 'pending';
    reason =
      inst?.reason ??
      (inst === undefined
        ? 'not written yet'
        : inst.nexthop !== want.nexthop
          ? `on the switch towards ${inst.nexthop}`
          : 'not programmed');
  } else if (failed !== undefined) {
    state = 'failed';
    reason = `${failed.why}: ${failed.detail}`;
  }
  const onSwitch = state === 'programmed' && inst !== undefined;
  const learned: FlowDetail['learned'] =
    nexthop === null
      ? { how: 'unresolved', detail: 'not looked up yet, or the switch could not tell' }
      : want?.reason === 'adopted'
        ? { how: 'adopted', detail: 'its pin was found on the switch at a resync' }
        : {
            how: 'look-up',
            detail: `the ${rt.adapter.kind} adapter's look-up of the flow on the switch (or the state file, for a flow restored at start)`,
          };
  return {
    switch: rt.name,
    src: e.src,
    sport: e.sport,
    dst: e.dst,
    dport: e.dport,
    nexthop,
    learned,
    firstSeen: Math.min(want?.since ?? e.lastSeen, e.lastSeen),
    lastSeen: e.lastSeen,
    pin: {
      state,
      wantedFor: want?.reason ?? null,
      reason,
      packets: inst?.packets ?? null,
      lastActive: inst?.lastActive ?? null,
    },
    idle: {
      pinIdleTimeoutS: pinIdleS,
      agedBy: rt.adapter.capabilities.nativeIdleTimeout ? 'switch' : 'controller',
      pinLeftS: onSwitch ? round1(Math.max(0, inst.lastActive + pinIdleS * 1000 - now) / 1000) : null,
      trackedLeftS: round1(Math.max(0, e.lastSeen + flowMaxAgeS * 1000 - now) / 1000),
    },
  };
}

const params = Type.Object({
  switch: Type.String({ minLength: 1, maxLength: 64 }),
  src: Type.String({ minLength: 1, maxLength: 64 }),
  sport: Type.Integer({ minimum: 0, maximum: 65535 }),
  dst: Type.String({ minLength: 1, maxLength: 64 }),
  dport: Type.Integer({ minimum: 0, maximum: 65535 }),
});

const open = { additionalProperties: true } as const;
const Detail = Type.Object(
  {
    switch: Type.String(),
    src: Type.String(),
    sport: Type.Integer(),
    dst: Type.String(),
    dport: Type.Integer(),
    nexthop: Type.Union([Type.String(), Type.Null()]),
    learned: Type.Object({ how: Type.String(), detail: Type.String() }, open),
    firstSeen: Type.Number(),
    lastSeen: Type.Number(),
    pin: Type.Object({ state: Type.Enum(['programmed', 'pending', 'failed', 'none']) }, open),
    idle: Type.Object(
      {
        pinIdleTimeoutS: Type.Number(),
        agedBy: Type.Enum(['switch', 'controller']),
        pinLeftS: Type.Union([Type.Number(), Type.Null()]),
        trackedLeftS: Type.Number(),
      },
      open,
    ),
  },
  open,
);

export const flowDetailRoutes =
  (controller: Controller): FastifyPluginAsync =>
  (app) => {
    app.get<{ Params: Params }>(
      '/api/v1/flows/:switch/:src/:sport/:dst/:dport',
      {
        config: { access: 'read' },
        schema: {
          summary:
            'One tracked flow: first and last seen, nexthop and how it was learned, pin state, idle time left',
          params,
          response: { 200: Detail, ...errorResponses },
        },
      },
      (req) => flowDetail(controller, req.params),
    );
    return Promise.resolve();
  };
