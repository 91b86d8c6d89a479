// Reading a YAML/JSON document and checking it against a TypeBox schema, with errors that
// name the file and the key at fault (dotted path, `switches[0].eapi.url`). The same error
// wording serves the API (controller/api/validator.ts): a schema error becomes one key and one
// short problem, never the offending input at length.

import { readFileSync } from 'node:fs';
import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import type { TLocalizedValidationError } from 'typebox/error';
import { Value } from 'typebox/value';
import { parse as parseYaml } from 'yaml';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly key: string,
    problem: string,
  ) {
    super(`${file}: ${key === '' ? '' : `${key}: `}${problem}`);
  }
}

/** Longest piece of input quoted back in an error. */
const QUOTE_MAX = 64;

/** A value as an error quotes it: short, one line. */
export function show(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = `'${v}'`;
  else if (v === undefined) s = 'nothing';
  else {
    try {
      s = JSON.stringify(v) ?? typeof v;
    } catch {
      s = typeof v;
    }
  }
  s = s.replace(/[\r\n\t]/g, ' ');
  return s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}...` : s;
}

/** A key as errors name it, e.g. ['switches', 0, 'eapi'] → `switches[0].eapi`. */
export function keyOf(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const name = p.length > QUOTE_MAX ? `${p.slice(0, QUOTE_MAX)}...` : p;
      out += out === '' ? name : `.${name}`;
    }
  }
  return out;
}

/** One schema violation: where (as a path) and what, in words. */
export interface SchemaProblem {
  path: (string | number)[];
  problem: string;
}

function pointerPath(pointer: string, root: unknown): (string | number)[] {
  if (pointer === '') return [];
  const out: (string | number)[] = [];
  let at: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const step: string | number = Array.isArray(at) && /^\d+$/.test(part) ? Number(part) : part;
    out.push(step);
    at = typeof at === 'object' && at !== null ? (at as Record<string | number, unknown>)[step] : undefined;
  }
  return out;
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let at = root;
  for (const p of path)
    at = typeof at === 'object' && at !== null ? (at as Record<string | number, unknown>)[p] : undefined;
  return at;
}

const TYPE_WORDS: Record<string, string> = {
  boolean: 'true or false',
  integer: 'a whole number',
  number: 'a number',
  string: 'a string',
  object: 'a mapping',
  array: 'a list',
  null: 'null',
};

/** The most telling of a value's schema errors, as a key and a problem. */
export function describeErrors(
  errors: readonly TLocalizedValidationError[],
  root: unknown,
  unknownKey = 'is not a known setting',
): SchemaProblem {
  // An unknown key is reported twice (the key itself, and the object); the key is the clearer.
  const e =
    errors.find((x) => x.keyword === 'boolean' && x.schemaPath.endsWith('additionalProperties')) ??
    errors.find((x) => x.keyword !== 'anyOf') ??
    errors[0];
  if (e === undefined) return { path: [], problem: 'is invalid' };
  const path = pointerPath(e.instancePath, root);
  const v = valueAt(root, path);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'boolean':
      return { path, problem: unknownKey };
    case 'additionalProperties': {
      const extra = (p['additionalProperties'] as string[] | undefined)?.[0] ?? '';
      return { path: [...path, extra], problem: unknownKey };
    }
    case 'required': {
      const missing =
        (p['requiredProperties'] as string[] | undefined)?.find((k) => valueAt(v, [k]) === undefined) ?? '';
      return { path: [...path, missing], problem: 'is required' };
    }
    case 'type': {
      const t = p['type'];
      const want = Array.isArray(t)
        ? t.map((x) => TYPE_WORDS[String(x)] ?? String(x)).join(' or ')
        : (TYPE_WORDS[String(t)] ?? String(t));
      return { path, problem: `must be ${want}, got ${show(v)}` };
    }
    case 'enum':
      return {
        path,
        problem: `must be one of ${(p['allowedValues'] as unknown[] | undefined)?.map(String).join(', ') ?? 'the listed values'}, got ${show(v)}`,
      };
    case 'const':
      return { path, problem: `must be ${show(p['allowedValue'])}, got ${show(v)}` };
    case 'minimum':
    case 'exclusiveMinimum':
      return {
        path,
        problem: `must be ${e.keyword === 'minimum' ? 'at least' : 'more than'} ${String(p['limit'])}, got ${show(v)}`,
      };
    case 'maximum':
    case 'exclusiveMaximum':
      return {
        path,
        problem: `must be ${e.keyword === 'maximum' ? 'at most' : 'less than'} ${String(p['limit'])}, got ${show(v)}`,
      };
    case 'minLength':
      return { path, problem: `must not be empty, got ${show(v)}` };
    case 'maxLength':
      return { path, problem: `is too long (at most ${Number(p['limit'])} characters)` };
    case 'minItems': {
      const n = Number(p['limit'] ?? 1);
      return { path, problem: n === 1 ? 'needs at least one entry' : `needs at least ${n} entries` };
    }
    case 'maxItems':
      return { path, problem: `has too many entries (at most ${Number(p['limit'])})` };
    default:
      return { path, problem: `${e.message}, got ${show(v)}` };
  }
}

/** Removes `undefined` members (a key given as undefined is a key not given), recursively. */
export function withoutUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutUndefined);
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, withoutUndefined(x)]),
    );
  }
  return v;
}

/**
 * Checks a document against a schema (defaults filled in first, on a copy) and returns it
 * typed; throws a ConfigError naming the file and the first key at fault.
 */
export function checkSchema<T extends TSchema>(file: string, schema: T, doc: unknown): Static<T> {
  const validator = Compile(schema);
  const value = Value.Default(schema, withoutUndefined(doc));
  if (validator.Check(value)) return value;
  const { path, problem } = describeErrors(validator.Errors(value), value);
  throw new ConfigError(file, keyOf(path), problem);
}

/** The key of a value that contains itself (a YAML alias inside its own anchor), if any. */
function cycleIn(
  v: unknown,
  at: (string | number)[] = [],
  open = new Set<unknown>(),
): (string | number)[] | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (open.has(v)) return at;
  open.add(v);
  const entries: [string | number, unknown][] = Array.isArray(v)
    ? v.map((x, i) => [i, x])
    : Object.entries(v);
  for (const [k, x] of entries) {
    const found = cycleIn(x, [...at, k], open);
    if (found !== undefined) return found;
  }
  open.delete(v);
  return undefined;
}

function parseText(file: string, text: string): unknown {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 }) as unknown;
  } catch (err) {
    const msg = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new ConfigError(file, '', `not valid YAML: ${msg.slice(0, 200)}`);
  }
  const cycle = cycleIn(doc);
  if (cycle !== undefined)
    throw new ConfigError(file, keyOf(cycle), 'refers to itself (a YAML alias inside its own anchor)');
  return doc;
}

/** What a file error means, in words (ENOENT, EISDIR, EACCES...). */
export function fileProblem(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file (ENOENT)';
    case 'EISDIR':
      return 'is a directory, not a file (EISDIR)';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'ENOTDIR':
      return 'a part of the path is not a directory (ENOTDIR)';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/**
 * A configuration document and the file it came from: what the loaders (readConfig, the
 * simulator's readScenario) take. `fromObject` serves documents built in code.
 */
export class Reader {
  constructor(
    readonly file: string,
    readonly doc: unknown,
  ) {}

  /** Reads a YAML or JSON file. */
  static fromFile(file: string): Reader {
    return new Reader(file, Reader.parseFile(file));
  }

  /** An already parsed document (e.g. a file's YAML with command-line overrides applied). */
  static fromObject(file: string, doc: unknown): Reader {
    return new Reader(file, doc);
  }

  static fromText(file: string, text: string): Reader {
    return new Reader(file, parseText(file, text));
  }

  /** The parsed document of a YAML or JSON file. */
  static parseFile(file: string): unknown {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(file, '', `cannot read: ${fileProblem(err)}`);
    }
    return parseText(file, text);
  }
}

/** Freezes an object and everything in it: configuration is read once, then never changed. */
export function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
