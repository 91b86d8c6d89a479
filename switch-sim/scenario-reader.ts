// The simulator scenario's key-by-key reader: walks one mapping; every accessor checks the
// type and range of one key and returns it typed, and `done()` refuses keys never read.
// (flowpin's own configuration is checked against its TypeBox schema: controller/config-schema.ts.)

import { ConfigError } from '../lib/validate.js';

type Obj = Record<string, unknown>;

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : (JSON.stringify(v) ?? String(v)));

export class FieldReader {
  private readonly seen = new Set<string>();

  constructor(
    readonly file: string,
    readonly path: string,
    private readonly obj: Obj,
  ) {}

  /**
   * A FieldReader over an already parsed document (e.g. a file's YAML with command-line overrides applied).
   */
  static fromObject(file: string, doc: unknown): FieldReader {
    if (doc === null || doc === undefined) doc = {};
    if (typeof doc !== 'object' || Array.isArray(doc))
      throw new ConfigError(file, '', 'the top level must be a mapping');
    return new FieldReader(file, '', doc as Obj);
  }

  private key(k: string): string {
    return this.path === '' ? k : `${this.path}.${k}`;
  }

  fail(k: string, problem: string): never {
    throw new ConfigError(this.file, this.key(k), problem);
  }

  has(k: string): boolean {
    return this.obj[k] !== undefined && this.obj[k] !== null;
  }

  private get(k: string): unknown {
    this.seen.add(k);
    return this.obj[k];
  }

  number(
    k: string,
    def: number | undefined,
    opts: { min?: number; max?: number; integer?: boolean } = {},
  ): number {
    const v = this.get(k) ?? def;
    if (v === undefined) this.fail(k, 'is required');
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(k, `must be a number, got ${show(v)}`);
    if (opts.integer && !Number.isInteger(v)) this.fail(k, `must be a whole number, got ${v}`);
    if (opts.min !== undefined && v < opts.min) this.fail(k, `must be at least ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) this.fail(k, `must be at most ${opts.max}, got ${v}`);
    return v;
  }

  port(k: string, def: number | undefined): number {
    return this.number(k, def, { min: 0, max: 65535, integer: true });
  }

  /** A list of ports (empty when absent). */
  ports(k: string): number[] {
    const v = this.get(k) ?? [];
    if (!Array.isArray(v)) this.fail(k, `must be a list of ports, got ${show(v)}`);
    return v.map((p, i) => {
      if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535)
        this.fail(`${k}[${i}]`, `must be a port (1-65535), got ${show(p)}`);
      return p;
    });
  }

  string(k: string, def?: string): string {
    const v = this.get(k) ?? def;
    if (v === undefined) this.fail(k, 'is required');
    if (typeof v !== 'string' || v === '') this.fail(k, `must be a non-empty string, got ${show(v)}`);
    return v;
  }

  optionalString(k: string): string | undefined {
    return this.has(k) ? this.string(k) : (this.get(k), undefined);
  }

  boolean(k: string, def: boolean): boolean {
    const v = this.get(k) ?? def;
    if (typeof v !== 'boolean') this.fail(k, `must be true or false, got ${show(v)}`);
    return v;
  }

  oneOf<T extends string>(k: string, values: readonly T[], def: T): T {
    const v = this.get(k) ?? def;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      this.fail(k, `must be one of ${values.join(', ')}, got ${show(v)}`);
    return v as T;
  }

  /** A string checked by `check`, which returns an error text or undefined. */
  checked(k: string, def: string | undefined, check: (v: string) => string | undefined): string {
    const v = this.string(k, def);
    const problem = check(v);
    if (problem !== undefined) this.fail(k, problem);
    return v;
  }

  object(k: string): FieldReader {
    const v = this.get(k) ?? {};
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      this.fail(k, `must be a mapping, got ${show(v)}`);
    return new FieldReader(this.file, this.key(k), v as Obj);
  }

  /** A list; each element read by `each` with a Reader (mappings) or raw value. */
  list<T>(
    k: string,
    def: unknown[] | undefined,
    each: (item: unknown, at: string, reader: () => FieldReader) => T,
  ): T[] {
    const v = this.get(k) ?? def;
    if (v === undefined) this.fail(k, 'is required');
    if (!Array.isArray(v)) this.fail(k, `must be a list, got ${show(v)}`);
    return v.map((item, i) => {
      const at = `${this.key(k)}[${i}]`;
      return each(item, at, () => {
        if (typeof item !== 'object' || item === null || Array.isArray(item))
          throw new ConfigError(this.file, at, `must be a mapping, got ${show(item)}`);
        return new FieldReader(this.file, at, item as Obj);
      });
    });
  }

  /** Fails on keys that were never read: a misspelt key is an error, not a silent default. */
  done(): void {
    for (const k of Object.keys(this.obj)) if (!this.seen.has(k)) this.fail(k, 'is not a known setting');
  }
}
