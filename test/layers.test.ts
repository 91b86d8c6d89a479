// Layers point down only. Every import of every module of flowpin's source folders is read
// (the TypeScript parser: static, type-only, re-exports and dynamic imports) and checked
// against the rules below; a module that imports from a layer above its own fails here,
// naming the file, the import and the rule.
//
//   lib/               shared pieces (addresses, prefixes, clock-free helpers, validation):
//                      imports nothing of ours
//   proto/             the gNMI wire definitions: imports nothing of ours
//   mirror-receiver/   imports lib only
//   switch-adapters/   lib, proto, mirror-receiver types, and the contract (contract.ts,
//                      errors.ts, kind.ts, fence.ts); an adapter folder nothing of another adapter's;
//                      never switch-sim or the controller (registry.ts alone lists the folders)
//   switch-sim/        never the controller, the adapters, the CLI or anything above
//   controller/        never switch-sim or the CLI (nor torture, bench, reliability)
//   anything           outside test/ never imports test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { repoRoot } from './helpers/tools.js';

const FOLDERS = [
  'controller',
  'switch-adapters',
  'switch-sim',
  'mirror-receiver',
  'lib',
  'proto',
  'cli',
  'torture',
  'bench',
  'reliability',
];

/**
 * Imports the rules would refuse but that stay, each with its reason. Key: `from -> to`
 * (paths from the repository root, without extension).
 */
const EXCEPTIONS: Record<string, string> = {};

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'build') out.push(...tsFiles(rel));
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** The relative imports of a module, resolved to repository paths without extension. */
function importsOf(file: string): Import[] {
  const src = ts.createSourceFile(
    file,
    readFileSync(path.join(repoRoot, file), 'utf8'),
    ts.ScriptTarget.Latest,
    false,
  );
  const out: Import[] = [];
  const add = (spec: string, typeOnly: boolean): void => {
    if (!spec.startsWith('.')) return;
    const to = path.normalize(path.join(path.dirname(file), spec)).replace(/\.(js|ts|mjs|cjs|json)$/, '');
    out.push({ from: file.replace(/\.ts$/, ''), to, typeOnly });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      const named =
        c?.namedBindings !== undefined && ts.isNamedImports(c.namedBindings)
          ? c.namedBindings.elements
          : undefined;
      const typeOnly =
        c !== undefined &&
        (c.isTypeOnly ||
          (c.name === undefined &&
            named !== undefined &&
            named.length > 0 &&
            named.every((e) => e.isTypeOnly)));
      add(n.moduleSpecifier.text, typeOnly);
    } else if (
      ts.isExportDeclaration(n) &&
      n.moduleSpecifier !== undefined &&
      ts.isStringLiteral(n.moduleSpecifier)
    ) {
      add(n.moduleSpecifier.text, n.isTypeOnly);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = n.arguments;
      if (arg !== undefined && ts.isStringLiteral(arg)) add(arg.text, false);
    } else if (
      ts.isImportTypeNode(n) &&
      ts.isLiteralTypeNode(n.argument) &&
      ts.isStringLiteral(n.argument.literal)
    ) {
      add(n.argument.literal.text, true);
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

const layerOf = (p: string): string => p.split(path.sep)[0] ?? '';
const ADAPTER_CONTRACT = new Set([
  'switch-adapters/contract',
  'switch-adapters/errors',
  'switch-adapters/kind',
  'switch-adapters/fence',
]);
/** The adapter folder of a module under switch-adapters/ (undefined for the contract's own files). */
const adapterFolder = (p: string): string | undefined => {
  const parts = p.split(path.sep);
  return parts[0] === 'switch-adapters' && parts.length > 2 ? parts[1] : undefined;
};

/** Why an import breaks a rule, or undefined. */
function broken(i: Import): string | undefined {
  const from = layerOf(i.from);
  const to = layerOf(i.to);
  if (to === 'test' && from !== 'test') return 'nothing outside test/ imports test/';
  if (from === to && from !== 'switch-adapters') return undefined;
  switch (from) {
    case 'lib':
    case 'proto':
      return `${from}/ imports nothing of ours`;
    case 'mirror-receiver':
      return to === 'lib' ? undefined : 'mirror-receiver/ imports lib/ only';
    case 'switch-adapters': {
      if (to === 'lib' || to === 'proto') return undefined;
      if (to === 'mirror-receiver')
        return i.typeOnly
          ? undefined
          : 'switch-adapters/ take types only from mirror-receiver/ (shared code is in lib/)';
      if (to !== 'switch-adapters')
        return 'switch-adapters/ import lib/, proto/, mirror-receiver types and their contract; never switch-sim/ or the controller';
      const a = adapterFolder(i.from);
      const b = adapterFolder(i.to);
      if (ADAPTER_CONTRACT.has(i.to) || a === b) return undefined;
      if (i.from === 'switch-adapters/registry' && i.to.endsWith(`${path.sep}kind`)) return undefined;
      return a === undefined
        ? 'the contract imports no adapter folder (registry.ts lists their kinds)'
        : `adapter folder ${a}/ imports nothing of another adapter's (${b ?? i.to}): shared code goes to lib/`;
    }
    case 'switch-sim':
      return ['lib', 'proto', 'mirror-receiver'].includes(to)
        ? undefined
        : 'switch-sim/ imports lib/, proto/ and mirror-receiver/ only';
    case 'controller':
      return ['switch-sim', 'cli', 'torture', 'bench', 'reliability'].includes(to)
        ? `controller/ never imports ${to}/`
        : undefined;
    default:
      return undefined;
  }
}

test('every module imports only from its own layer or the layers below it', { timeout: 60_000 }, () => {
  const files = FOLDERS.flatMap(tsFiles);
  assert.ok(files.length > 150, `read ${files.length} modules`);
  const imports = files.flatMap(importsOf);
  assert.ok(imports.length > 400, `read ${imports.length} imports`);
  const violations = imports.flatMap((i) => {
    const why = broken(i);
    const key = `${i.from} -> ${i.to}`;
    return why === undefined || EXCEPTIONS[key] !== undefined ? [] : [`${key}: ${why}`];
  });
  assert.deepEqual(violations, []);
  // An exception no import needs any more is removed, not kept.
  const used = new Set(imports.map((i) => `${i.from} -> ${i.to}`));
  assert.deepEqual(
    Object.keys(EXCEPTIONS).filter((k) => !used.has(k)),
    [],
    'exceptions no import needs',
  );
});

test(
  'the checker sees what it must: type-only imports, re-exports, dynamic imports',
  { timeout: 10_000 },
  () => {
    const check = (from: string, to: string, typeOnly = false): string | undefined =>
      broken({ from, to, typeOnly });
    assert.match(check('lib/addr', 'mirror-receiver/tuple') ?? '', /imports nothing of ours/);
    assert.match(
      check('switch-adapters/sim/adapter', 'switch-sim/sim-switch', true) ?? '',
      /never switch-sim/,
    );
    assert.match(
      check('switch-adapters/arista-eapi/resolver', 'switch-sim/prefix') ?? '',
      /never switch-sim/,
    );
    assert.match(
      check('switch-adapters/sim/adapter', 'switch-adapters/arista-eapi/directflow') ?? '',
      /another adapter's/,
    );
    assert.equal(check('switch-adapters/gnmi/adapter', 'mirror-receiver/flow-event', true), undefined);
    assert.match(check('switch-adapters/gnmi/adapter', 'mirror-receiver/tuple') ?? '', /types only/);
    assert.match(check('controller/config', 'switch-sim/scenario') ?? '', /never imports switch-sim/);
    assert.match(check('reliability/run', 'test/helpers/figures') ?? '', /outside test/);
    assert.match(check('switch-sim/scenario', 'controller/validate') ?? '', /switch-sim\/ imports lib/);
    const probe = importsOf('test/layers.test.ts');
    assert.ok(
      probe.some((i) => i.to === 'test/helpers/tools' && !i.typeOnly),
      'a value import is read',
    );
  },
);
