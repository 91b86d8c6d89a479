// docs/flowpin.example.yaml shows every key: it is a document of the configuration schema
// (controller/config-schema.ts, checked with TypeBox), and every key the schema has, at every
// level and for every adapter (eAPI, gNMI, Linux), is set in it, but for the alternatives
// that exclude each other, which must be there as comments. A key added to the schema and not
// to the example fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { parse } from 'yaml';
import { readConfig } from '../controller/config.js';
import { ConfigSchema } from '../controller/config-schema.js';
import { Reader } from '../lib/validate.js';
import { repoRoot } from './helpers/tools.js';

/** Keys that exclude another one set in the example: shown commented out instead. */
const ALTERNATIVES = [
  'switches[].eapi.groupCommands',
  'switches[].eapi.groupCommands.add',
  'switches[].eapi.groupCommands.remove',
];

type Node = { type?: string; properties?: Record<string, TSchema>; items?: TSchema; anyOf?: TSchema[] };

/** Every key path of a schema: `a.b`, with `[]` for array items. */
function schemaPaths(s: TSchema, at: string, out: string[]): string[] {
  const n = s as unknown as Node;
  for (const alt of n.anyOf ?? []) schemaPaths(alt, at, out);
  if (n.items !== undefined) schemaPaths(n.items, `${at}[]`, out);
  for (const [k, v] of Object.entries(n.properties ?? {})) {
    const p = at === '' ? k : `${at}.${k}`;
    out.push(p);
    schemaPaths(v, p, out);
  }
  return out;
}

/** Every key path a document sets. */
function docPaths(v: unknown, at: string, out: Set<string>): Set<string> {
  if (Array.isArray(v)) for (const x of v) docPaths(x, `${at}[]`, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const p = at === '' ? k : `${at}.${k}`;
      out.add(p);
      docPaths(x, p, out);
    }
  }
  return out;
}

test(
  'the example configuration is valid against the schema and sets every key of every adapter',
  { timeout: 30_000 },
  () => {
    const text = readFileSync(path.join(repoRoot, 'docs', 'flowpin.example.yaml'), 'utf8');
    const doc = parse(text) as unknown;
    const check = Compile(ConfigSchema);
    // Defaults filled in first, as the loader does (lib/validate.ts).
    const errors = [...check.Errors(Value.Default(ConfigSchema, structuredClone(doc)))].map(
      (e) => `${e.instancePath}: ${e.message}`,
    );
    assert.deepEqual(errors, [], 'the example is a valid document');
    const set = docPaths(doc, '', new Set());
    const missing = [...new Set(schemaPaths(ConfigSchema, '', []))].filter(
      (p) => !set.has(p) && !ALTERNATIVES.includes(p),
    );
    assert.deepEqual(missing, [], 'keys of the schema the example does not show');
    for (const alt of ALTERNATIVES) {
      const key = alt.split('.').pop() ?? '';
      assert.match(text, new RegExp(`^\\s*#\\s+${key}:`, 'm'), `${alt} is shown as a comment`);
    }
    const adapters = (doc as { switches: { adapter: string }[] }).switches.map((s) => s.adapter);
    for (const a of ['arista-eapi', 'gnmi', 'linux']) assert.ok(adapters.includes(a), `a ${a} switch`);
  },
);

test(
  'the example configuration loads through the real loader, with its files and secrets stood in for',
  { timeout: 30_000 },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flowpin-example-'));
    try {
      const text = readFileSync(path.join(repoRoot, 'docs', 'flowpin.example.yaml'), 'utf8').replaceAll(
        '/etc/flowpin/',
        `${dir}/`,
      );
      for (const f of new Set(
        [...text.matchAll(new RegExp(`${dir}/([\\w.-]+)`, 'g'))].map((m) => m[1] ?? ''),
      )) {
        // Files are read at load, not parsed (a CA file's content matters at connect).
        writeFileSync(path.join(dir, f), `a-token-for-${f}\n`, { mode: 0o600 });
      }
      const file = path.join(dir, 'flowpin.yaml');
      writeFileSync(file, text);
      const env = {
        FLOWPIN_TOKEN: 'x',
        FLOWPIN_EAPI_PASSWORD: 'y',
        FLOWPIN_ENABLE_SECRET: 'z',
        FLOWPIN_GNMI_PASSWORD: 'w',
      };
      const c = readConfig(Reader.fromFile(file), env);
      assert.deepEqual(
        c.switches.map((s) => s.name),
        ['leaf1', 'leaf2', 'router1'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
