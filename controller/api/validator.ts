// Request validation from the routes' TypeBox schemas (the same schemas the OpenAPI document is
// made from). Bodies are JSON and taken as they are: no coercion, so `"true"`, `1` or `null`
// never pass for a boolean or a number. Query strings and path parameters are text by nature:
// a number or boolean there is read from its exact spelling only (`10`, `true`, `false`).
// A failure is a 400 naming the field (`body.dryRun`, `querystring.limit`).

import type { FastifyInstance, FastifySchema } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { badRequest } from '../errors.js';
import { describeErrors, keyOf } from '../../lib/validate.js';

type Part = 'body' | 'querystring' | 'params' | 'headers';

const INTEGER = /^-?\d{1,15}$/;
const NUMBER = /^-?\d{1,15}(\.\d{1,15})?$/;

function typeOf(schema: unknown): string | undefined {
  const t = (schema as { type?: unknown } | undefined)?.type;
  return typeof t === 'string' ? t : undefined;
}

/** Text from a URL as the schema's scalar type, where its spelling is exact; else as it was. */
function fromText(schema: unknown, v: unknown): unknown {
  if (typeof v !== 'string') return v;
  switch (typeOf(schema)) {
    case 'integer':
      return INTEGER.test(v) ? Number(v) : v;
    case 'number':
      return NUMBER.test(v) ? Number(v) : v;
    case 'boolean':
      return v === 'true' ? true : v === 'false' ? false : v;
    default:
      return v;
  }
}

function convertText(schema: TSchema, data: unknown): unknown {
  const props = (schema as { properties?: Record<string, unknown> }).properties;
  if (props === undefined || typeof data !== 'object' || data === null) return data;
  const out: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  for (const [k, s] of Object.entries(props)) if (k in out) out[k] = fromText(s, out[k]);
  return out;
}

export function installValidator(app: FastifyInstance): void {
  app.setValidatorCompiler<FastifySchema>(({ schema, httpPart }) => {
    const s = schema as TSchema;
    const check = Compile(s);
    const part = (httpPart ?? 'body') as Part;
    return (data: unknown) => {
      // No body at all is an empty object: every body property here is optional or required by name.
      let value =
        part === 'body' && (data === null || data === undefined) && typeOf(s) === 'object' ? {} : data;
      if (part !== 'body') value = convertText(s, value);
      value = Value.Default(s, value);
      if (check.Check(value)) return { value };
      const { path, problem } = describeErrors(check.Errors(value), value, 'is not a known property');
      const field = keyOf([part, ...path]);
      return { error: badRequest(`${field} ${problem}`, field) };
    };
  });
}
