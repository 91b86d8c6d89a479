// Shorthands for TypeBox configuration schemas: non-empty strings, bounded integers and
// numbers with defaults, ports, lists of strings, closed objects. Used by the controller's
// configuration schema and by each switch adapter's own section, so both read alike.

import { Type } from 'typebox';

export const Str = (opts: { default?: string; description?: string } = {}) =>
  Type.String({ minLength: 1, ...opts });
export const Int = (min: number, max: number | undefined, def?: number) =>
  Type.Integer({
    minimum: min,
    ...(max === undefined ? {} : { maximum: max }),
    ...(def === undefined ? {} : { default: def }),
  });
export const Num = (min: number, max: number | undefined, def?: number) =>
  Type.Number({
    minimum: min,
    ...(max === undefined ? {} : { maximum: max }),
    ...(def === undefined ? {} : { default: def }),
  });
export const Port = (def?: number) => Int(0, 65535, def);
export const Strs = (minItems = 0) => Type.Array(Str(), minItems > 0 ? { minItems } : {});
/** Objects refuse keys they do not name (a misspelt key is an error, not a silent default). */
export const strict = { additionalProperties: false } as const;
