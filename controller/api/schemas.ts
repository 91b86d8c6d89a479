// Schemas the API's routes share (TypeBox): the error body, path parameters, and the views of
// nexthops and changes. Routes build their own from these; validation, TypeScript types
// (Static) and the OpenAPI document all come from them.

import { Type, type Static } from 'typebox';

export const ErrorSchema = Type.Object({
  error: Type.String({ description: 'machine-readable code, e.g. bad-request, unauthorized, not-found' }),
  message: Type.String({ description: 'what went wrong, in words (input is quoted at most 64 characters)' }),
  field: Type.Optional(Type.String({ description: 'the request field at fault, e.g. body.dryRun' })),
  detail: Type.Optional(Type.Object({}, { additionalProperties: true })),
});
export type ErrorBody = Static<typeof ErrorSchema>;

/** The error answers every route can give, by status. */
export const errorResponses = {
  400: ErrorSchema,
  401: ErrorSchema,
  403: ErrorSchema,
  404: ErrorSchema,
  409: ErrorSchema,
  421: ErrorSchema,
  429: ErrorSchema,
  503: ErrorSchema,
};

const Name = Type.String({ minLength: 1, maxLength: 64 });
const Address = Type.String({ minLength: 1, maxLength: 64, description: 'IPv4 or IPv6 address' });
export const SwitchParams = Type.Object({ switch: Name });
export const VipParams = Type.Object({ switch: Name, vip: Address });
export const NexthopParams = Type.Object({ switch: Name, vip: Address, nexthop: Address });
export type NexthopParamsT = Static<typeof NexthopParams>;
export const ChangeParams = Type.Object({
  switch: Name,
  id: Type.String({
    minLength: 1,
    maxLength: 100,
    description: 'the change id, as the change and the list of changes give it',
  }),
});
export type ChangeParamsT = Static<typeof ChangeParams>;

export const NexthopView = Type.Object({
  address: Type.String(),
  state: Type.Enum(['active', 'draining', 'deadline-passed', 'drained']),
  tracked: Type.Optional(Type.Integer()),
  pinned: Type.Optional(Type.Integer()),
  inGroup: Type.Optional(Type.Boolean()),
});

export const ChangeView = Type.Object(
  {
    id: Type.Optional(Type.String()),
    kind: Type.Optional(Type.String()),
    phase: Type.Optional(Type.String()),
    switch: Type.Optional(Type.String()),
    vip: Type.Optional(Type.String()),
    nexthop: Type.Optional(Type.String()),
    // null where the record did not measure them (a change resumed after a kill in its window): never shown
    // as 0.
    pinned: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    pinnedLate: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    atRisk: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    remaining: Type.Optional(Type.Integer()),
    resetsSeen: Type.Optional(
      Type.Union([Type.Integer(), Type.Null()], {
        description:
          'server resets (RST from the VIP) seen on the reply mirror after the change, until the next change of the VIP; null where the switch does not mirror them',
      }),
    ),
  },
  { additionalProperties: true },
);

/** A report whose fields are the controller's (dry runs, removals): described, passed through whole. */
export const Report = Type.Object({}, { additionalProperties: true });
